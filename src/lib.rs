//! Declarative, compile-time-checked audit logging.
//!
//! Declare every audit event once in a catalog (`audit.toml`), annotate handlers with
//! [`audited`], and every call emits a typed event checked against the catalog at
//! compile time.
//!
//! ```
//! use audit::{Actor, Context};
//!
//! struct App { id: i64, uid: String, name: String, nid: String }
//!
//! #[derive(Debug)]
//! struct AppError;
//! impl std::fmt::Display for AppError {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("app is locked") }
//! }
//!
//! #[audit::audited(event = "app_destroy", meta(id = app.id, uid = &app.uid, name = &app.name, app_nid = &app.nid))]
//! fn destroy_app(app: &App) -> Result<(), AppError> {
//!     Ok(())
//! }
//!
//! let app = App { id: 7, uid: "cld-89r7".into(), name: "DemoApplication".into(), nid: "demo-app".into() };
//! let records = audit::testing::capture(|| {
//!     audit::scope(Context::new().actor(Actor::user("u1").email("ann@example.com")), || {
//!         destroy_app(&app).unwrap();
//!     })
//! });
//! assert_eq!(records[0].event, "app_destroy");
//! assert_eq!(records[0].description, "DemoApplication deleted");
//! assert_eq!(records[0].metadata["app_nid"], "demo-app");
//! assert_eq!(records[0].context.actor.as_ref().unwrap().email.as_deref(), Some("ann@example.com"));
//! ```
//!
//! # `#[audited(...)]` arguments
//!
//! - `event = "name"` (required): a catalog event. An unknown name is a compile error
//!   with "did you mean".
//! - `meta(field = expr, ...)`: one expression per declared field (optional fields may
//!   be left out). Expressions see the arguments as they are at entry; `ret` names the
//!   return value (the `Ok` value of a `Result`), and fields using it are null when the
//!   call fails. A missing required field, an unknown or repeated field, and a value
//!   whose type does not fit the declared type are compile errors that name the event,
//!   the field and the catalog line.
//! - `on = "always" | "success" | "failure"`: which calls emit (default `always`).
//! - `actor = expr` (anything `Into<Actor>`), `tenant = expr` (`Into<String>`):
//!   override the ambient context for this call.
//! - `crate = path`: where the `audit` crate is, if renamed.
//!
//! A `Result` return records `outcome = success` for `Ok` and `failure` with the
//! error's `Display` text for `Err`; any other return type is a success. The handler's
//! wall-clock duration is recorded. It works on free functions, inherent and trait
//! methods (`self`, `&self`, `&mut self`), generics, `impl Trait` returns, `?` and early
//! `return`, and `async fn`: the event is emitted when the future completes, with the
//! context in effect when the body starts running (its first poll).
//!
//! With `#[async_trait]` on the impl block, `async_trait` runs first and turns the
//! method into one returning `Box::pin(async move { .. })`; `#[audited]` recognizes
//! that shape and instruments the future itself, so the event is emitted when the
//! future completes (with its outcome and duration), exactly as for an `async fn`.
//!
//! # Entities: before, after, difference
//!
//! `#[derive(AuditEntity)]` compares a struct field by field (`PartialEq`), descends
//! into fields whose type also derives it (`"address.city"`), and serializes only what
//! changed. Field attributes: `#[audit(id)]` (the id stored on the record),
//! `#[audit(redact)]` (value replaced by `[REDACTED]`; a change is still reported),
//! `#[audit(skip)]` (never compared or stored), `#[audit(rename = "...")]`,
//! `#[audit(diff = "elements")]` (lists by position `tags.2`, maps by key
//! `limits.daily`, instead of the whole value), `#[audit(with = path)]` (a module with
//! `audit_eq(&T, &T) -> bool` and `audit_json(&T) -> serde_json::Value`). Enums diff
//! their fields within one variant; a variant change is a change of the whole value.
//! Tuple structs and generics work (type parameters get `PartialEq + Serialize`). With
//! `#[audit(entity = "...")]` (checked against the catalog's `[entities]`) it also
//! implements [`AuditEntity`].
//!
//! ```
//! #[derive(Clone, audit::AuditEntity)]
//! #[audit(entity = "user")]
//! struct User {
//!     #[audit(id)] id: i64,
//!     email: String,
//!     #[audit(redact)] password_hash: String,
//! }
//!
//! #[audit::audited(event = "user_update", entity = user, meta(user_email = &user.email))]
//! fn change_email(user: &mut User, email: &str) {
//!     user.email = email.to_owned();
//! }
//!
//! let mut u = User { id: 7, email: "a@example.com".into(), password_hash: "x".into() };
//! let records = audit::testing::capture(|| change_email(&mut u, "b@example.com"));
//! let changes = records[0].changes.as_ref().unwrap();
//! assert_eq!(changes.difference["email"], serde_json::json!(["a@example.com", "b@example.com"]));
//! assert_eq!(records[0].entity.as_ref().unwrap().id, Some(serde_json::json!(7)));
//! ```
//!
//! `entity = x` snapshots `x` (a clone, so the type must be `Clone`) when the call
//! starts and diffs it when the call returns; the body borrows `x` rather than taking
//! it. `entity = ret` records a creation (previous is null), `op = "delete"` a deletion
//! (current is null). An update that changed nothing is emitted with an empty
//! `difference` (the attempt is part of the trail); `emit_unchanged = false` silences
//! it. Events with `changes = true` in the catalog require `entity`; others refuse it.
//!
//! # Bulk calls and reverts
//!
//! `each = users` (a slice, `Vec`, or anything whose `.iter()` yields the entities)
//! writes one record per entity, each with its own difference, all sharing one
//! [`record::Operation`] id; an event marked `summary = true` in the catalog then
//! writes a summary record (their count, no entity of its own). Entities are
//! paired by id, not position: one that appears is a creation, one that leaves the
//! collection a removal. `each = ret` records creations, `op = "delete"` deletions.
//! A call that panics or is cancelled records one failure naming its operation.
//! [`store::Query::operation`] reads an operation's records back.
//!
//! An event marked `reverts = true` is a revert: every site names the record it
//! reverts (`reverts = &record` or its id), and its records carry that id in
//! [`Record::reverts`]. [`record::Changes::inverse`] gives the difference to apply.
//!
//! ```
//! use audit::{AuditEntity, audited};
//!
//! #[derive(Clone, AuditEntity)]
//! #[audit(entity = "user")]
//! struct User {
//!     #[audit(id)]
//!     id: i64,
//!     active: bool,
//! }
//!
//! #[audited(event = "users_deactivate", each = users, meta(reason = reason))]
//! fn deactivate(users: &mut [User], reason: &str) {
//!     users.iter_mut().for_each(|u| u.active = false);
//! }
//!
//! let mut users = vec![User { id: 1, active: true }, User { id: 2, active: true }];
//! let records = audit::testing::capture(|| deactivate(&mut users, "offboarding"));
//! assert_eq!(records.len(), 3); // one per user, then the summary
//! let op = records[2].operation.unwrap();
//! assert_eq!((op.count, op.index), (Some(2), None));
//! assert!(records.iter().all(|r| r.operation.unwrap().id == op.id));
//! let difference = &records[1].changes.as_ref().unwrap().difference;
//! assert_eq!(difference["active"], serde_json::json!([true, false]));
//! ```
//!
//! # Registry
//!
//! Every site registers itself (see [`registry`]); the catalog is embedded in the
//! binary, so [`registry::coverage`] lists the declared events no linked code emits,
//! and [`registry::assert_complete`] fails a test on such gaps.

// What users write: the attribute and the derive, the pipeline, the context, the
// record. Everything else lives in a module named for its job, at one path.
pub use audit_macros::{AuditEntity, audited};
pub use audit_runtime::{
    Actor, ActorKind, AuditDiff, AuditEntity, AuditScopeExt, Auditor, Context, DeliveryError,
    Level, OutcomeKind, Record, Request, Timestamp, current, flush, scope,
};

pub use audit_catalog as catalog;
/// Record ids (and `Store::get`'s argument): re-exported so that callers need not
/// depend on `uuid` themselves.
pub use audit_runtime::Uuid;
#[cfg(feature = "axum")]
pub use audit_runtime::web;
pub use audit_runtime::{
    integrity, interop, limits, outbox, registry, sinks, spool, store, testing,
};

/// Configuring and watching the delivery pipeline: see [`Auditor::builder`].
pub mod pipeline {
    pub use audit_runtime::pipeline::{
        AuditorBuilder, AuditorGuard, BuildError, Metrics, Overflow, Retry, ShutdownReport,
        SinkMetrics,
    };
}

/// The parts of a [`Record`]: its metadata, entity, changes and site.
pub mod record {
    pub use audit_runtime::record::{
        Changes, EntityRef, Metadata, MetadataIter, Operation, REDACTED, SiteInfo, TimestampError,
    };
}

/// Where emitted events go, and what a dispatcher receives: for tests that route
/// events, and for those who write their own [`dispatch::Dispatch`].
pub mod dispatch {
    pub use audit_runtime::dispatch::{
        AlreadySet, Deferred, Dispatch, EntityPart, Event, EventSpec, FieldSpec, Outcome, Site,
        Value, WithDispatch, WithDispatchExt, emit, global, set_global, undelivered, with_dispatch,
    };
}

/// The context's plumbing: the future [`AuditScopeExt::audit_scope`] returns.
pub mod context {
    pub use audit_runtime::Scoped;
}

#[cfg(feature = "nats")]
pub use audit_runtime::ingest;

/// The viewer and its read-only JSON API, an axum `Router` over a store, to mount
/// behind the application's own authentication (feature `viewer`): see
/// [`viewer::Viewer`].
#[cfg(feature = "viewer")]
pub use audit_viewer as viewer;

#[doc(hidden)]
pub mod __private {
    pub use audit_runtime::private::*;
}
