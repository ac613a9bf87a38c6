//! Where records go. A [`Sink`] writes batches; the pipeline gives each sink its own
//! thread, filter, alias set, retries and spool.
//!
//! Sinks in this crate: [`Console`] (human one-line or JSON), [`JsonLines`] (file with
//! rotation by size and time and a retention count) and [`Listener`] (your own code).

mod console;
#[cfg(feature = "http")]
mod http;
pub(crate) mod isolate;
mod jsonl;
mod listener;
#[cfg(feature = "nats")]
pub(crate) mod nats;
mod writeback;

use std::fmt;
use std::sync::Arc;

use crate::record::Record;
use crate::spec::EventSpec;

pub use console::Console;
#[cfg(feature = "http")]
pub use http::{Http, HttpFormat, HttpHealth, HttpOptions};
pub use jsonl::JsonLines;
pub use listener::{Listen, Listener};
#[cfg(feature = "nats")]
pub use nats::{CheckpointBucket, Nats, NatsConnection, NatsOptions, Retention};

/// Why a sink could not take a batch, and whether trying again can help.
///
/// ```
/// use audit_runtime::sinks::SinkError;
/// let e = SinkError::retryable("connection refused");
/// assert!(e.is_retryable());
/// assert!(!SinkError::permanent("payload rejected").is_retryable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkError {
    message: String,
    retryable: bool,
    rejected: Vec<uuid::Uuid>,
}

impl SinkError {
    /// A failure that may go away (network, disk full, server restarting).
    pub fn retryable(message: impl Into<String>) -> Self {
        SinkError {
            message: message.into(),
            retryable: true,
            rejected: Vec::new(),
        }
    }

    /// A failure that the same batch will always meet (rejected payload).
    pub fn permanent(message: impl Into<String>) -> Self {
        SinkError {
            message: message.into(),
            retryable: false,
            rejected: Vec::new(),
        }
    }

    /// Only these records of the batch were refused for good; the others were
    /// delivered. The pipeline counts the refused ones failed and keeps them in the
    /// sink's dead-letter spool.
    ///
    /// ```
    /// use audit_runtime::sinks::SinkError;
    /// let id = uuid::Uuid::nil();
    /// let e = SinkError::rejected("400 Bad Request", vec![id]);
    /// assert!(!e.is_retryable());
    /// assert_eq!(e.rejected_ids(), &[id]);
    /// ```
    pub fn rejected(message: impl Into<String>, ids: Vec<uuid::Uuid>) -> Self {
        SinkError {
            message: message.into(),
            retryable: false,
            rejected: ids,
        }
    }

    /// The records refused for good when the rest of the batch was delivered (empty:
    /// the error concerns the whole batch).
    pub fn rejected_ids(&self) -> &[uuid::Uuid] {
        &self.rejected
    }

    /// Whether a retry can help.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SinkError {}

impl From<std::io::Error> for SinkError {
    fn from(e: std::io::Error) -> Self {
        SinkError::retryable(e.to_string())
    }
}

/// One record as a sink receives it: the record and its JSON line (built once, in
/// one allocation shared by every sink), and the name this sink publishes it under
/// (the event name, or the catalog alias of the sink's alias set).
///
/// ```
/// # let record: audit_runtime::Record =
/// #     serde_json::from_str(include_str!("../record/example.json")).unwrap();
/// use audit_runtime::sinks::Item;
/// let item = Item::new(record, "launched-app-inv-track");
/// assert_eq!(item.name(), "launched-app-inv-track");
/// assert_eq!(item.record().event, "app_launch");
/// assert!(item.json().starts_with(r#"{"id":"01900000-"#));
/// ```
#[derive(Debug, Clone)]
pub struct Item {
    entry: Arc<Entry>,
    name: Arc<str>,
}

/// What every sink's item for one record shares. The pipeline builds it on the heap
/// once, then fills in the JSON when the record is linked (still unshared then).
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) record: Record,
    pub(crate) json: String,
}

impl Entry {
    /// `record` on the heap, its JSON to come when it is linked.
    #[inline]
    pub(crate) fn unlinked(record: Record) -> Arc<Entry> {
        Arc::new(Entry {
            record,
            json: String::new(),
        })
    }
}

impl Item {
    /// An item for `record`, serializing it (for records not built by the pipeline).
    pub fn new(record: Record, name: &str) -> Item {
        let json = record.to_json();
        Item::with_json(record, json, Arc::from(name))
    }

    /// An item for `record` whose JSON is already known: the exact text its hash was
    /// computed over (as linked by [`crate::integrity::Chain`], or as received from a
    /// stream).
    pub fn with_json(record: Record, json: String, name: Arc<str>) -> Item {
        Item {
            entry: Arc::new(Entry { record, json }),
            name,
        }
    }

    /// An item for a linked entry.
    pub(crate) fn from_entry(entry: Arc<Entry>, name: Arc<str>) -> Item {
        Item { entry, name }
    }

    /// The same record under another published name.
    pub(crate) fn renamed(&self, name: Arc<str>) -> Item {
        Item {
            entry: Arc::clone(&self.entry),
            name,
        }
    }

    /// The record.
    pub fn record(&self) -> &Record {
        &self.entry.record
    }

    /// The record as one line of JSON, `hash` included.
    pub fn json(&self) -> &str {
        &self.entry.json
    }

    /// The name this sink publishes the record under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The published name, shared.
    pub(crate) fn shared_name(&self) -> &Arc<str> {
        &self.name
    }
}

/// A batch of records, in emission order per producer.
pub type Batch = [Item];

/// A destination for records.
///
/// `write` is called from the sink's own thread with batches in order; an error
/// that [`SinkError::is_retryable`] is retried with backoff and then spooled, so a
/// sink should make a batch either wholly written or safe to write again (records
/// carry a unique `id` for de-duplication).
///
/// ```
/// use audit_runtime::sinks::{Batch, Sink, SinkError};
/// struct Count(usize);
/// impl Sink for Count {
///     fn name(&self) -> &str { "count" }
///     fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
///         self.0 += batch.len();
///         Ok(())
///     }
/// }
/// ```
pub trait Sink: Send + 'static {
    /// A stable name: used in metrics and as the spool directory.
    fn name(&self) -> &str;

    /// Writes a batch.
    fn write(&mut self, batch: &Batch) -> Result<(), SinkError>;

    /// Makes everything written durable or visible.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Whether the sink can take writes now (checked before replaying a spool).
    fn health(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        (**self).write(batch)
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }
    fn health(&mut self) -> Result<(), SinkError> {
        (**self).health()
    }
}

/// Which records a sink takes, and how it names them.
///
/// ```
/// use audit_runtime::{Level, sinks::SinkOptions};
/// let o = SinkOptions::new().categories(["app"]).min_level(Level::Warn).alias("intercom");
/// # let _ = o;
/// ```
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    pub(crate) events: Option<Vec<String>>,
    pub(crate) categories: Option<Vec<String>>,
    pub(crate) levels: Option<Vec<crate::Level>>,
    pub(crate) alias: Option<String>,
    pub(crate) primary: bool,
    pub(crate) name: Option<String>,
}

impl SinkOptions {
    /// Every record, under its event name.
    pub fn new() -> Self {
        SinkOptions::default()
    }

    /// Only these events.
    pub fn events<I: IntoIterator<Item = S>, S: Into<String>>(mut self, events: I) -> Self {
        self.events = Some(events.into_iter().map(Into::into).collect());
        self
    }

    /// Only these categories.
    pub fn categories<I: IntoIterator<Item = S>, S: Into<String>>(mut self, cats: I) -> Self {
        self.categories = Some(cats.into_iter().map(Into::into).collect());
        self
    }

    /// Only these levels.
    pub fn levels<I: IntoIterator<Item = crate::Level>>(mut self, levels: I) -> Self {
        self.levels = Some(levels.into_iter().collect());
        self
    }

    /// Only this level and above.
    pub fn min_level(self, min: crate::Level) -> Self {
        let levels = [crate::Level::Info, crate::Level::Warn, crate::Level::Error]
            .into_iter()
            .filter(|l| *l >= min);
        self.levels(levels)
    }

    /// Publish events under the catalog's aliases of this set (`intercom`), and the
    /// others under their names.
    pub fn alias(mut self, set: impl Into<String>) -> Self {
        self.alias = Some(set.into());
        self
    }

    /// A primary sink: `sync` events return only after it committed them. With no
    /// primary sink, `sync` events wait for every sink.
    pub fn primary(mut self) -> Self {
        self.primary = true;
        self
    }

    /// Overrides the sink's name (metrics, spool directory).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub(crate) fn accepts(&self, record: &Record) -> bool {
        self.events
            .as_ref()
            .is_none_or(|e| e.iter().any(|n| *n == *record.event))
            && self
                .categories
                .as_ref()
                .is_none_or(|c| c.iter().any(|n| *n == *record.category))
            && self
                .levels
                .as_ref()
                .is_none_or(|l| l.contains(&record.level))
    }

    /// The name this sink publishes `record` under, if not its event name.
    /// Whether the sink publishes under an alias set.
    pub(crate) fn has_aliases(&self) -> bool {
        self.alias.is_some()
    }

    pub(crate) fn alias_name(&self, spec: Option<&EventSpec>, record: &Record) -> Option<Arc<str>> {
        let template = spec?.alias_template(self.alias.as_deref()?)?;
        Some(Arc::from(record.render_name(template)))
    }
}
