//! The event as the caller hands it off: typed values, no JSON, no I/O.

use std::sync::Arc;

use uuid::Uuid;

use crate::context::Context;
use crate::entity::EntityPart;
use crate::spec::{EventSpec, Site};
use crate::time::Timestamp;
use crate::value::Value;

/// The metadata values of one event: held inline up to four (most events), so the
/// hand-off allocates nothing for them.
pub type Fields = smallvec::SmallVec<[Value; 4]>;

/// How a handler ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `Ok`, or a handler that does not return `Result`.
    Success,
    /// `Err`, with the error's `Display` text.
    Failure(String),
}

impl Outcome {
    /// Whether it is a success.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success)
    }
}

/// One emission, built on the caller's thread: its id and time, the site, the
/// outcome, the metadata values in catalog field order, and the context.
///
/// Turning it into a [`Record`](crate::Record) (rendering, redaction, JSON) is the
/// delivery worker's job, never the caller's. Its `Debug` shows the record it
/// becomes, redacted: never a muted value.
pub struct Event {
    pub(crate) id: Uuid,
    pub(crate) time: Timestamp,
    pub(crate) site: &'static Site,
    pub(crate) outcome: Outcome,
    pub(crate) duration_ns: u64,
    pub(crate) metadata: Fields,
    pub(crate) context: Option<Arc<Context>>,
    pub(crate) entity: Option<Box<EntityPart>>,
    /// The OpenTelemetry trace current when it was made (feature `opentelemetry`).
    pub(crate) trace: Option<Box<crate::record::Trace>>,
    /// The bulk call it belongs to and the record it reverts, when either is set.
    pub(crate) related: Option<Box<Related>>,
}

/// What ties an event to other records: the bulk call it is one record of, the
/// record whose change it reverts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Related {
    pub(crate) operation: Option<crate::record::Operation>,
    pub(crate) reverts: Option<Uuid>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Event")
            .field(&crate::record::Record::from_event(self))
            .finish()
    }
}

/// A UUIDv7 for `time`: its millisecond prefix is the record's own time, its random
/// bits come from a thread-local generator (no shared lock, no system call).
pub(crate) fn uuid_v7(time: Timestamp) -> Uuid {
    let ns = time.as_nanos().max(0) as u64;
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        ns / 1_000_000_000,
        (ns % 1_000_000_000) as u32,
    );
    Uuid::new_v7(ts)
}

impl Event {
    /// Builds an event stamped now with a fresh UUIDv7. `metadata` holds one value per
    /// field of the site's event, in catalog order.
    #[inline]
    pub fn new(
        site: &'static Site,
        outcome: Outcome,
        duration_ns: u64,
        metadata: impl Into<Fields>,
        context: Option<Arc<Context>>,
    ) -> Self {
        let metadata = metadata.into();
        debug_assert_eq!(metadata.len(), site.spec.fields.len());
        let time = Timestamp::now();
        Event {
            id: uuid_v7(time),
            time,
            site,
            outcome,
            duration_ns,
            metadata,
            context,
            entity: None,
            trace: crate::record::current_trace(),
            related: None,
        }
    }

    /// With the entity's id and changes (set by `#[audited(entity = ...)]`).
    pub fn with_entity(mut self, entity: Option<Box<EntityPart>>) -> Self {
        self.entity = entity;
        self
    }

    /// Its UUIDv7.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// When it was emitted.
    pub fn time(&self) -> Timestamp {
        self.time
    }

    /// Its catalog entry.
    pub fn spec(&self) -> &'static EventSpec {
        self.site.spec
    }

    /// Where it was emitted.
    pub fn site(&self) -> &'static Site {
        self.site
    }

    /// How the handler ended.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// The handler's wall-clock duration.
    pub fn duration_ns(&self) -> u64 {
        self.duration_ns
    }

    /// The context it was emitted in.
    pub fn context(&self) -> Option<&Context> {
        self.context.as_deref()
    }

    /// (field name, value) pairs, in catalog order; values are not yet redacted.
    pub fn metadata(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.site
            .spec
            .fields
            .iter()
            .map(|f| f.name)
            .zip(self.metadata.iter())
    }
}
