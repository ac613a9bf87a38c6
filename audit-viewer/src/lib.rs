//! The audit trail over HTTP, read-only: an axum [`Router`] over a store, which
//! `audit serve` runs and an application can mount behind its own authentication
//! (at `/admin/audit`, say), handing each customer organisation a view of its own.
//!
//! | endpoint | answers |
//! |---|---|
//! | `GET /` | the viewer's page (filters in its URL, pages, details, verify badge, export, live mode) |
//! | `GET /api/session` | who the caller is: `{"scope": "admin" \| "tenant", "tenant": ..., "tokens": bool}` |
//! | `GET /api/records?<filters>` | `{"records": [...], "next": "<cursor>" \| null}`, newest first |
//! | `GET /api/records/{id}` | one record (404 if it is not the caller's to see) |
//! | `GET /api/verify` | the verification report (admins only) |
//! | `GET /api/export?<filters>&format=jsonl\|csv` | every matching record, streamed (constant memory) |
//! | `GET /api/catalog` | `{"events": [...]}`: declared and recorded events, for filter pickers |
//! | `GET /api/tail?<filters>` | new records as Server-Sent Events (`id:` is the position to resume from) |
//!
//! Filters, each optional: `since`, `until` (RFC 3339, or an age such as `2d`,
//! `90m`), `event` (repeatable), `category` (repeatable), `code` (repeatable),
//! `actor` (id or email), `entity` (`type` or `type:id`), `tenant`, `outcome`
//! (`success` / `failure`), `level` (repeatable), `q` (text in the description),
//! `field` (`name=value`, repeatable), `operation` (a bulk call's id), `order`
//! (`newest` / `oldest`), `limit`, `cursor`. Errors are `{"error": "..."}` with 400 (a bad filter or cursor), 401 (no
//! or unknown token), 403 (not the caller's to see) or 404.
//!
//! Who sees what ([`Access`]): with tokens, an admin token sees every tenant and a
//! tenant token only its tenant, on every endpoint; without tokens every caller is
//! an admin (`audit serve` then binds loopback only).
//!
//! ```no_run
//! use audit_viewer::{Access, Viewer};
//! let viewer = Viewer::new(|| Ok(Box::new(audit_runtime::store::Sqlite::open("audit.db")?) as _), Access::open());
//! let app: axum::Router = axum::Router::new().nest("/admin/audit", viewer.router());
//! # let _ = app;
//! ```

mod access;
mod api;
mod catalog;
mod error;
mod export;
mod page;
mod params;
mod pool;
mod tail;

use std::sync::Arc;
use std::time::Duration;

use audit_catalog::Catalog;
use axum::Router;
use axum::routing::get;

pub use access::{Access, AccessError, Scope};
pub use error::ApiError;
pub use pool::StoreFactory;

/// The API over one store.
#[derive(Clone)]
pub struct Viewer {
    state: Arc<State>,
}

pub(crate) struct State {
    pub(crate) stores: Arc<pool::Pool>,
    pub(crate) access: Access,
    pub(crate) catalogs: Vec<Catalog>,
    pub(crate) tail_interval: Duration,
}

impl Viewer {
    /// The API over the stores `open` makes (one per request in flight, kept for
    /// reuse), answering as `access` allows.
    pub fn new(
        open: impl Fn() -> Result<
            Box<dyn audit_runtime::store::Store + Send>,
            audit_runtime::store::StoreError,
        > + Send
        + Sync
        + 'static,
        access: Access,
    ) -> Self {
        Viewer {
            state: Arc::new(State {
                stores: Arc::new(pool::Pool::new(Box::new(open))),
                access,
                catalogs: Vec::new(),
                tail_interval: Duration::from_millis(500),
            }),
        }
    }

    /// Declares these catalogs' events to `GET /api/catalog` (with their codes,
    /// fields and templates), beside the events the store holds records of. An
    /// application hands over its own: [`audit_runtime::registry::catalogs`].
    pub fn catalogs(mut self, catalogs: Vec<Catalog>) -> Self {
        self.state_mut().catalogs = catalogs;
        self
    }

    /// How often `GET /api/tail` looks for new records (500 ms by default).
    pub fn tail_interval(mut self, every: Duration) -> Self {
        self.state_mut().tail_interval = every;
        self
    }

    fn state_mut(&mut self) -> &mut State {
        Arc::get_mut(&mut self.state).expect("a Viewer is configured before it is cloned")
    }

    /// The routes (`/api/...`), to serve or to nest in an application's router.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(page::index))
            .route("/assets/viewer.js", get(page::script))
            .route("/assets/viewer.css", get(page::style))
            .route("/api/session", get(api::session))
            .route("/api/records", get(api::records))
            .route("/api/records/{id}", get(api::record))
            .route("/api/verify", get(api::verify))
            .route("/api/export", get(export::export))
            .route("/api/catalog", get(catalog::catalog))
            .route("/api/tail", get(tail::tail))
            .fallback(api::not_found)
            .with_state(Arc::clone(&self.state))
    }
}
