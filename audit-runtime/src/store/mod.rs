//! Stores: sinks that keep records where they can be queried, verified and purged.
//!
//! Every store answers the same [`Query`] model (time range, events, categories, codes,
//! actor, entity, outcome, level, text; keyset pagination with an opaque [`Cursor`];
//! tenant scoping with [`Query::for_tenant`]), proves its rows untampered with
//! [`Store::verify`] and removes old rows with [`Store::purge`].
//!
//! Integrity has two layers. Each record carries the producer's hash chain
//! (`prev_hash`, `hash`: see [`crate::integrity`]). On top, the store links its rows in
//! insertion order: `link = SHA-256(previous link ‖ record hash)`, or HMAC-SHA-256
//! with a key ([`SqliteOptions::hmac_key`]), so that changing, removing, inserting or
//! reordering a row breaks the chain at that row — and, with a key, repairing the
//! chain needs the key. A purge keeps the link of its last removed row as an
//! [`Anchor`], so the rest stays verifiable. What no chain inside the store can show
//! is the removal of its newest rows: for that, record [`Store::last_seq`] and the
//! last link somewhere the database's users cannot write (another system's log).
//!
//! ```
//! # fn main() -> Result<(), audit_runtime::store::StoreError> {
//! # #[cfg(feature = "sqlite")] {
//! use audit_runtime::store::{Query, Sqlite, Store};
//! let dir = tempfile::tempdir().unwrap();
//! let mut store = Sqlite::open(dir.path().join("audit.db"))?;
//! let page = store.query(&Query::for_tenant("acme").actor("u-1").limit(50))?;
//! assert!(page.records.is_empty() && page.next.is_none());
//! assert!(store.verify()?.is_intact());
//! # }
//! # Ok(()) }
//! ```

// Without a database feature only the shared model remains; its SQL helpers idle.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(dead_code, unused_macros)
)]

/// The SQL assignments (both dialects) that erase a row in a tenant purge: the
/// record becomes JSON `null`, the columns that could name a person, the tenant or
/// an object are emptied. A macro so that the schema's migrations can `concat!` it.
macro_rules! erased_columns {
    () => {
        "record = 'null', actor_id = NULL, actor_email = NULL, tenant = NULL, \
         entity_type = NULL, entity_type_code = NULL, entity_id = NULL, description = ''"
    };
}

pub mod checkpoint;
mod columns;
mod core;
mod events;
mod follow;
mod history;
mod link;
#[cfg(feature = "postgres")]
mod postgres;
mod purge;
mod query;
#[cfg(feature = "sqlite")]
mod sqlite;
mod stored;
mod verify;

use std::fmt;

use uuid::Uuid;

use crate::record::Record;

pub use checkpoint::{Checkpoint, CheckpointError, CheckpointKey, Finding, PublicKey, Witness};
pub use events::SeenEvent;
pub use follow::Follower;
pub use history::{History, State};
pub use link::{ChainKey, Link};
#[cfg(feature = "postgres")]
pub use postgres::{
    DEFAULT_COPY_CONNECTIONS, DEFAULT_PARTITION_ROWS, PARALLEL_COPY_ROWS, PgTls, Postgres,
    PostgresOptions, PostgresRoles, RolesReport, redact_password,
};
pub use purge::{Purge, PurgeReport};
pub use query::{Cursor, FieldValue, OPERATION_WINDOW, Order, Page, Query};
#[cfg(feature = "sqlite")]
pub use sqlite::{
    DEFAULT_CHECKPOINT_MIB, DEFAULT_RETRAIN_ROWS, DEFAULT_SEGMENT_ROWS, Sqlite, SqliteOptions,
    Synchronous,
};
pub use verify::{Anchor, Break, IndexFinding, Verification};

/// A store's answer to what went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reported an error.
    Database(String),
    /// A file (the store, an export) could not be read or written.
    Io(std::io::Error),
    /// The database was written by a newer version of this crate.
    SchemaTooNew {
        /// The database's schema version.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A cursor string that no query of this crate produced.
    InvalidCursor(String),
    /// The store's chain is keyed and no key, or another key, was given.
    WrongKey(String),
    /// An HMAC key shorter than [`ChainKey::MIN_BYTES`] (32) was given.
    WeakKey {
        /// The key's length.
        bytes: usize,
    },
    /// A checkpoint or checkpoint key that cannot be used (see [`CheckpointError`]).
    Checkpoint(String),
    /// A stored row that cannot be read back as a record.
    Corrupt {
        /// The row's position in the store.
        seq: i64,
        /// What is wrong with it.
        message: String,
    },
}

/// A store used as a sink: I/O and database errors may pass (retried, then spooled);
/// the others will not.
impl From<StoreError> for crate::sinks::SinkError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Io(_) | StoreError::Database(_) => Self::retryable(e.to_string()),
            _ => Self::permanent(e.to_string()),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Database(m) => write!(f, "database error: {m}"),
            StoreError::Io(e) => write!(f, "i/o error: {e}"),
            StoreError::SchemaTooNew { found, supported } => write!(
                f,
                "the store's schema is version {found}, newer than this build's {supported}: upgrade the `audit` crate"
            ),
            StoreError::InvalidCursor(c) => write!(f, "invalid cursor `{c}`"),
            StoreError::WrongKey(m) => write!(f, "{m}"),
            StoreError::Checkpoint(m) => write!(f, "checkpoint: {m}"),
            StoreError::WeakKey { bytes } => write!(
                f,
                "the HMAC key is {bytes} bytes; at least {} random bytes are required (its \
                 fingerprint is stored with the chain, so a short key can be guessed offline): \
                 make one with `head -c 32 /dev/urandom | base64`",
                ChainKey::MIN_BYTES
            ),
            StoreError::Corrupt { seq, message } => {
                write!(f, "row {seq} cannot be read as a record: {message}")
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

/// A record as a store keeps it: its position in the store and the record.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Insertion position (increasing; the store's chain follows it).
    pub seq: i64,
    /// The record.
    pub record: Record,
}

/// A store seen by one tenant: every read — [`TenantView::query`], [`TenantView::get`],
/// [`TenantView::follow`] — returns that tenant's records only, whatever it is asked.
///
/// ```
/// # fn main() -> Result<(), audit_runtime::store::StoreError> {
/// # #[cfg(feature = "sqlite")] {
/// use audit_runtime::store::{Query, Sqlite, Store};
/// let dir = tempfile::tempdir().unwrap();
/// let mut store = Sqlite::open(dir.path().join("audit.db"))?;
/// let mut acme = store.tenant("acme");
/// assert!(acme.query(&Query::all())?.records.is_empty());
/// assert!(acme.get(uuid::Uuid::nil())?.is_none());
/// # }
/// # Ok(()) }
/// ```
pub struct TenantView<'a> {
    store: &'a mut dyn Store,
    tenant: String,
}

impl<'a> TenantView<'a> {
    /// `store` as `tenant` sees it.
    pub fn new(store: &'a mut dyn Store, tenant: &str) -> Self {
        TenantView {
            store,
            tenant: tenant.to_owned(),
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// One page of `query`, narrowed to this tenant (an unscoped query is scoped; a
    /// query scoped to another tenant finds nothing).
    pub fn query(&mut self, query: &Query) -> Result<Page, StoreError> {
        match query.tenant() {
            Some(t) if t != self.tenant => Ok(Page {
                records: Vec::new(),
                next: None,
            }),
            _ => self.store.query(&query.clone().scoped(&self.tenant)),
        }
    }

    /// The record with this id, if it is this tenant's.
    pub fn get(&mut self, id: Uuid) -> Result<Option<Record>, StoreError> {
        self.store.get_in(id, Some(&self.tenant))
    }

    /// This tenant's records after position `after`.
    pub fn follow(&mut self, after: i64, limit: usize) -> Result<Vec<Stored>, StoreError> {
        self.store.follow_in(after, limit, Some(&self.tenant))
    }
}

/// What every store answers. Writing goes through [`crate::sinks::Sink`].
///
/// ```
/// # fn main() -> Result<(), audit_runtime::store::StoreError> {
/// use audit_runtime::store::Store;
/// fn records_since(store: &mut dyn Store, seq: i64) -> Result<usize, audit_runtime::store::StoreError> {
///     Ok(store.follow(seq, 100)?.len())
/// }
/// # #[cfg(feature = "sqlite")] {
/// let dir = tempfile::tempdir().unwrap();
/// let mut store = audit_runtime::store::Sqlite::open(dir.path().join("audit.db"))?;
/// assert_eq!(records_since(&mut store, 0)?, 0);
/// # }
/// # Ok(()) }
/// ```
pub trait Store {
    /// One page of the records matching `query`.
    fn query(&mut self, query: &Query) -> Result<Page, StoreError>;

    /// The record with this id, whatever its tenant: an operator's read. A
    /// tenant-facing caller reads through [`TenantView`] ([`Store::tenant`]).
    fn get(&mut self, id: Uuid) -> Result<Option<Record>, StoreError> {
        self.get_in(id, None)
    }

    /// The record with this id if it belongs to `tenant` (`None`: any tenant).
    fn get_in(&mut self, id: Uuid, tenant: Option<&str>) -> Result<Option<Record>, StoreError>;

    /// Records in insertion order after position `after` (0 = from the start), at most
    /// `limit`, of every tenant.
    fn follow(&mut self, after: i64, limit: usize) -> Result<Vec<Stored>, StoreError> {
        self.follow_in(after, limit, None)
    }

    /// [`Store::follow`], only the records of `tenant` (`None`: every tenant).
    fn follow_in(
        &mut self,
        after: i64,
        limit: usize,
        tenant: Option<&str>,
    ) -> Result<Vec<Stored>, StoreError> {
        let query = match tenant {
            Some(t) => Query::for_tenant(t),
            None => Query::all(),
        };
        self.follow_matching(after, &query.limit(limit))
    }

    /// The records after position `after`, in insertion order, that match `query`'s
    /// filters (its tenant included), at most `query`'s limit; its order and cursor
    /// do not apply. Rows that do not match are skipped, so where to go on is not
    /// always the last returned `seq`: [`Follower`] keeps that right.
    fn follow_matching(&mut self, after: i64, query: &Query) -> Result<Vec<Stored>, StoreError>;

    /// The events this store holds records of (of `tenant` only, if given): each
    /// with its code, category and level and its newest record's time, by name.
    /// Cheap on big stores: one index probe per distinct event.
    fn events_seen(&mut self, tenant: Option<&str>) -> Result<Vec<SeenEvent>, StoreError>;

    /// A view of this store whose every read is limited to `tenant`.
    fn tenant(&mut self, tenant: &str) -> TenantView<'_>
    where
        Self: Sized,
    {
        TenantView::new(self, tenant)
    }

    /// The position of the newest row (0 when empty): where a follower starts.
    fn last_seq(&mut self) -> Result<i64, StoreError>;

    /// Walks the whole store and reports the first row that breaks the chain.
    fn verify(&mut self) -> Result<Verification, StoreError> {
        Ok(self.witness(&[])?.verification)
    }

    /// Checks what the store derives from its rows to find them against those
    /// rows: the SQLite store's postings (`docs/STORAGE.md`), made again from each
    /// sealed segment's rows and compared (a segment still waiting for its
    /// postings, read through its time index meanwhile, has none to check). Empty
    /// when everything matches, and on a store that keeps no such table (its
    /// database's own indexes are its own).
    /// [`Store::verify`] does not include it: it reads every key of every sealed
    /// segment again.
    ///
    /// ```
    /// # fn main() -> Result<(), audit_runtime::store::StoreError> {
    /// use audit_runtime::store::Store;
    /// # #[cfg(feature = "sqlite")] {
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut store = audit_runtime::store::Sqlite::open(dir.path().join("audit.db"))?;
    /// assert!(store.check_indexes()?.is_empty());
    /// # }
    /// # Ok(()) }
    /// ```
    fn check_indexes(&mut self) -> Result<Vec<IndexFinding>, StoreError> {
        Ok(Vec::new())
    }

    /// The verification walk of [`Store::verify`], noting the store's identity, its
    /// head and the rows at `seqs`: what checkpoints are taken and checked from.
    fn witness(&mut self, seqs: &[i64]) -> Result<Witness, StoreError>;

    /// Verifies the store and records its head as a [`Checkpoint`] (sign it with
    /// [`Checkpoint::sign`] and keep it outside the database). Refused when the
    /// chain is broken: a checkpoint of a tampered store would vouch for it.
    fn checkpoint(&mut self) -> Result<(Checkpoint, Verification), StoreError> {
        let witness = self.witness(&[])?;
        if let Some(b) = &witness.verification.first_break {
            return Err(StoreError::Checkpoint(format!(
                "the chain is broken ({b}); no checkpoint is taken of a tampered store"
            )));
        }
        Ok((witness.checkpoint()?, witness.verification))
    }

    /// Verifies the store and checks that it still holds what each checkpoint
    /// covered: one [`Finding`] per checkpoint, in order.
    fn check_checkpoints(
        &mut self,
        checkpoints: &[Checkpoint],
    ) -> Result<(Verification, Vec<Finding>), StoreError> {
        let seqs: Vec<i64> = checkpoints.iter().map(|c| c.seq).collect();
        let witness = self.witness(&seqs)?;
        let findings = checkpoints.iter().map(|c| witness.check(c)).collect();
        Ok((witness.verification, findings))
    }

    /// Removes old records, or erases one tenant's ([`Purge::tenant`]), exporting
    /// them first if asked and keeping the chain verifiable. `progress` is called
    /// with (done so far, total).
    fn purge(
        &mut self,
        purge: &Purge,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<PurgeReport, StoreError>;
}
