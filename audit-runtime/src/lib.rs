//! The audit runtime: the record model, the ambient context, emission, test capture
//! and the registry of emission sites.
//!
//! Users depend on the `audit` facade, which re-exports this crate together with the
//! `#[audited]` macro.
//!
//! Data flows one way: `#[audited]` builds an [`Event`] on the caller's thread (typed
//! values, the context handle, id and time; no JSON, no I/O) and hands it to
//! [`dispatch::emit`]. An active [`testing`] capture takes it; otherwise the installed
//! [`Dispatch`] does; with neither, it is counted in [`dispatch::undelivered`] and a
//! warning is printed once. [`Record::from_event`] renders the description and applies
//! redaction wherever events become records.

mod context;
pub mod dispatch;
pub mod entity;
mod event;
pub mod integrity;
pub mod interop;
mod json;
pub mod outbox;
mod panic;
pub mod pipeline;
#[doc(hidden)]
pub mod private;
pub mod record;
pub mod registry;
mod scoped;
pub mod sinks;
mod spec;
pub mod spool;
pub mod store;
pub mod testing;
mod time;
mod value;
#[cfg(feature = "axum")]
pub mod web;

pub use audit_catalog::{Durability, Level, REDACTED};
pub use context::{Actor, ActorKind, AuditScopeExt, Context, Request, Scoped, current, scope};
pub use dispatch::{DeliveryError, Dispatch, flush};
pub use entity::{AuditDiff, AuditEntity, EntityPart};
pub use event::{Event, Outcome};
pub use pipeline::{
    Auditor, AuditorBuilder, AuditorGuard, BuildError, Metrics, Overflow, Retry, ShutdownReport,
    SinkMetrics,
};
pub use record::limits;
pub use record::{Changes, EntityRef, Metadata, MetadataIter, OutcomeKind, Record, SiteInfo};
pub use spec::{CatalogRef, EmbeddedCatalog, EntitySpec, EventSpec, FieldSpec, Site};
pub use time::{Timestamp, TimestampError};
/// Record ids are UUIDv7s.
pub use uuid::Uuid;
pub use value::{Encode, Value, kind};

/// `audit ingest`: a JetStream stream into a store (beside the NATS sink it pairs with).
#[cfg(feature = "nats")]
pub use sinks::nats::ingest;
