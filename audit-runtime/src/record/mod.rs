//! The record: one shape for every sink and store, and its parts.
//!
//! ```
//! use audit_runtime::record::{Metadata, REDACTED};
//! let mut m = Metadata::new();
//! m.insert("password", REDACTED.into());
//! assert_eq!(m["password"], "[REDACTED]");
//! ```

mod encode;
pub(crate) mod hash;
pub mod limits;
mod metadata;
mod operation;
mod redact;
mod trace;
mod wire;

/// Mutes the keys of the built-in redaction list in `changes` (for `Debug` output,
/// which has no event's catalog entries at hand).
pub(crate) fn redact_builtin(changes: &mut Changes) {
    redact::changes(changes, &[], &mut redact::Secrets::default());
}

pub use crate::entity::Changes;
pub use crate::time::TimestampError;
pub use audit_catalog::REDACTED;
pub(crate) use encode::HASH_KEY;
pub use metadata::{Iter as MetadataIter, Metadata};
pub use operation::Operation;
pub use trace::Trace;
pub(crate) use trace::current as current_trace;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use uuid::Uuid;

use audit_catalog::{FAILURE_ERROR, Level};

use std::sync::{Arc, LazyLock};

use crate::context::Context;
use crate::event::{Event, Outcome};
use crate::time::Timestamp;
use crate::value::Value;
use hash::ChainHash;

/// `success` or `failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeKind {
    /// The handler succeeded.
    Success,
    /// The handler failed; the record's `error` says why.
    Failure,
}

/// The entity an event concerns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityRef {
    /// Entity type name.
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
    /// Entity type code.
    pub type_code: u32,
    /// The entity's id, when known.
    pub id: Option<Json>,
}

/// Where the event was emitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteInfo {
    /// Module path.
    pub module: Cow<'static, str>,
    /// Source file.
    pub file: Cow<'static, str>,
    /// Line.
    pub line: u32,
    /// Function name.
    pub function: Cow<'static, str>,
}

/// One audit record, as every sink and store sees it. Its JSON keys are those of the
/// design: `id`, `time`, `event`, `code`, `category`, `level`, `outcome`, `error`,
/// `duration_ns`, `description`, `actor`, `impersonator`, `tenant`, `environment`,
/// `source`, `request`, `entity`, `changes`, `metadata`, `site`, [`trace`](Record::trace),
/// [`operation`](Record::operation), [`reverts`](Record::reverts), `prev_hash`, `hash`
/// (the six context keys live in [`Record::context`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "wire::Wire")]
pub struct Record {
    /// UUIDv7.
    pub id: Uuid,
    /// When (UTC, ns).
    pub time: Timestamp,
    /// Event name (borrowed from the binary when built by this process).
    pub event: Cow<'static, str>,
    /// Event code.
    pub code: u32,
    /// Category.
    pub category: Cow<'static, str>,
    /// Level.
    pub level: Level,
    /// Success or failure.
    pub outcome: OutcomeKind,
    /// The error's text, on failure.
    pub error: Option<String>,
    /// The handler's wall-clock duration.
    pub duration_ns: u64,
    /// The rendered description (redacted values stay redacted).
    pub description: String,
    /// Who acted, for whom, from where: `actor`, `impersonator`, `tenant`,
    /// `environment`, `source` and `request`, flattened into the record's JSON. Shared
    /// with the emitting call (a reference count, not a copy).
    #[serde(flatten)]
    pub context: Arc<Context>,
    /// The entity concerned.
    pub entity: Option<EntityRef>,
    /// Before / after / difference.
    pub changes: Option<Changes>,
    /// Metadata, in catalog order, redacted.
    pub metadata: Metadata,
    /// Emission site.
    pub site: SiteInfo,
    /// The OpenTelemetry trace the call ended in (feature `opentelemetry`); absent
    /// from the JSON when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
    /// The bulk call it belongs to (`#[audited(each = ...)]`); absent from the JSON
    /// when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// The id of the record whose change this one reverts (an event marked
    /// `reverts = true` in the catalog); absent from the JSON when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverts: Option<Uuid>,
    /// Hash of the previous record of the chain.
    pub prev_hash: Option<ChainHash>,
    /// This record's hash.
    pub hash: Option<ChainHash>,
}

/// The context of records emitted outside any scope (shared, never reallocated).
fn empty_context() -> Arc<Context> {
    static EMPTY: LazyLock<Arc<Context>> = LazyLock::new(Arc::default);
    Arc::clone(&EMPTY)
}

impl Record {
    /// Builds the record of an event: renders the description and applies the
    /// catalog's redaction. The hash fields are left to the delivery pipeline.
    pub fn from_event(event: &Event) -> Record {
        Record::build(event, event.metadata.iter().cloned())
    }

    /// Like [`Record::from_event`], moving the event's values instead of copying them
    /// (what the pipeline's worker does).
    pub fn from_event_owned(mut event: Event) -> Record {
        let values = std::mem::take(&mut event.metadata);
        Record::build(&event, values)
    }

    fn build(event: &Event, values: impl IntoIterator<Item = Value>) -> Record {
        let spec = event.spec();
        let mut metadata = Metadata::with_capacity(spec.fields.len());
        let mut secrets = redact::Secrets::default();
        for (field, value) in spec.fields.iter().zip(values) {
            // `field.redact` holds the catalog's verdict (its names, patterns and the
            // built-in list), decided at compile time.
            let json = if field.redact {
                secrets.value(&value);
                Json::String(REDACTED.into())
            } else {
                let mut j = value.into_json();
                if j.is_object() || j.is_array() {
                    redact::json(&mut j, spec.redact, &mut secrets);
                    limits::cap_depth(&mut j);
                }
                j
            };
            metadata.push(field.name, json);
        }
        // Only events that record changes carry them; others name their entity.
        let changes = event
            .entity
            .as_ref()
            .filter(|p| spec.changes && !p.is_reference())
            .map(|p| {
                let mut changes = p.changes.clone();
                redact::changes(&mut changes, spec.redact, &mut secrets);
                changes
            });
        let (outcome, mut error) = match &event.outcome {
            Outcome::Success => (OutcomeKind::Success, None),
            Outcome::Failure(e) => (OutcomeKind::Failure, Some(e.clone())),
        };
        // A failure gets its own sentence (never the success one), which may quote
        // the error text.
        let template = match outcome {
            OutcomeKind::Success => spec.description_template(),
            OutcomeKind::Failure => spec.failure_template(),
        };
        let description = template
            .map(|t| {
                t.render_with(|name, out| match metadata.get(name) {
                    Some(Json::String(s)) => out.push_str(s),
                    Some(Json::Null) => {}
                    None if name == FAILURE_ERROR => {
                        out.push_str(error.as_deref().unwrap_or_default())
                    }
                    None => {}
                    Some(other) => {
                        use std::fmt::Write;
                        let _ = write!(out, "{other}");
                    }
                })
            })
            .unwrap_or_default();
        // A muted value quoted by the handler's error (or a panic message), or by a
        // description, goes too.
        let mut description = description;
        if !secrets.is_empty() {
            if let Some(e) = &mut error {
                secrets.scrub(e);
            }
            secrets.scrub(&mut description);
        }
        let mut record = Record {
            id: event.id,
            time: event.time,
            event: Cow::Borrowed(spec.name),
            code: spec.code,
            category: Cow::Borrowed(spec.category),
            level: spec.level,
            outcome,
            error,
            duration_ns: event.duration_ns,
            description,
            context: event.context.clone().unwrap_or_else(empty_context),
            entity: spec.entity.map(|e| EntityRef {
                kind: Cow::Borrowed(e.name),
                type_code: e.code,
                id: event.entity.as_ref().map(|p| p.id.clone()),
            }),
            changes,
            metadata,
            site: SiteInfo {
                module: Cow::Borrowed(event.site.module),
                file: Cow::Borrowed(event.site.file),
                line: event.site.line,
                function: Cow::Borrowed(event.site.function),
            },
            trace: event.trace.as_deref().copied(),
            operation: event.related.as_ref().and_then(|r| r.operation),
            reverts: event.related.as_ref().and_then(|r| r.reverts),
            prev_hash: None,
            hash: None,
        };
        if record.entity.is_some() {
            limits::cap_entity_depth(&mut record);
        }
        record
    }

    /// The record that stands for an event whose record could not be built (a panic
    /// in the builder, which is a bug): its id, time, event and site, outcome
    /// `failure` with an error naming the panic, every metadata field null.
    pub(crate) fn unbuilt(
        site: &'static crate::spec::Site,
        id: Uuid,
        time: Timestamp,
        panic: &str,
    ) -> Record {
        let spec = site.spec;
        let mut metadata = Metadata::with_capacity(spec.fields.len());
        for field in spec.fields {
            metadata.push(field.name, Json::Null);
        }
        Record {
            id,
            time,
            event: Cow::Borrowed(spec.name),
            code: spec.code,
            category: Cow::Borrowed(spec.category),
            level: spec.level,
            outcome: OutcomeKind::Failure,
            error: Some(format!(
                "audit: this record could not be built (panic: {panic}); its metadata is lost"
            )),
            duration_ns: 0,
            description: String::new(),
            context: empty_context(),
            entity: None,
            changes: None,
            metadata,
            site: SiteInfo {
                module: Cow::Borrowed(site.module),
                file: Cow::Borrowed(site.file),
                line: site.line,
                function: Cow::Borrowed(site.function),
            },
            trace: None,
            operation: None,
            reverts: None,
            prev_hash: None,
            hash: None,
        }
    }

    /// The name a sink created with alias set `sink` publishes this event under:
    /// the catalog alias rendered with the metadata, else the event name.
    pub fn name_for(&self, spec_alias: Option<&str>) -> String {
        match spec_alias
            .and_then(|t| audit_catalog::Template::parse(t, audit_catalog::Syntax::Brace).ok())
        {
            Some(template) => self.render_name(&template),
            None => self.event.to_string(),
        }
    }

    /// Renders an alias template (`{field}` placeholders) with this record's metadata.
    pub fn render_name(&self, template: &audit_catalog::Template) -> String {
        template.render_with(|f, out| match self.metadata.get(f) {
            Some(Json::String(s)) => out.push_str(s),
            Some(other) => {
                use std::fmt::Write;
                let _ = write!(out, "{other}");
            }
            None => {}
        })
    }

    /// A metadata value, as JSON (`None` when the event has no such field).
    pub fn meta(&self, field: &str) -> Option<&Json> {
        self.metadata.get(field)
    }
}

impl From<&Event> for Record {
    fn from(e: &Event) -> Self {
        Record::from_event(e)
    }
}
