//! The transactional outbox: audit records that commit or roll back with the
//! business change they describe.
//!
//! Events emitted inside a [`Scope`] are kept, not delivered; [`Scope::write`] puts
//! their records into the `audit_outbox` table *inside the application's own
//! transaction*. If the transaction commits, the records are there, exactly once;
//! if it rolls back (or the process dies before the commit), so do they. A
//! [`Relay`] then moves committed rows into a store or sink, chaining them as it
//! delivers, and deletes them only once the target committed them: a relay killed
//! at any point and restarted delivers every row exactly once (stores skip a
//! record id they already hold).
//!
//! A failed attempt is different: it changed nothing, so it must survive the
//! rollback. Failure records (a handler's `Err`, a panic, a cancelled future) bypass
//! the outbox and go to the pipeline at once, as they would without a scope. A
//! `sync` event inside a scope is kept like the others: its durability is the
//! transaction's commit.
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! # let dir = tempfile::tempdir().unwrap();
//! use audit_runtime::outbox::{self, Scope};
//! let mut conn = rusqlite::Connection::open(dir.path().join("app.db")).unwrap();
//! outbox::sqlite::install(&conn).unwrap();
//! let mut tx = conn.transaction().unwrap();
//! let scope = Scope::new();
//! scope.run(|| { /* call #[audited] handlers that use `tx` */ });
//! scope.write(&mut tx).unwrap();  // the records join the transaction
//! tx.commit().unwrap();          // ... and commit with it
//! # }
//! ```
//!
//! In async code, [`Scope::run_async`] wraps the future (its events are kept
//! whichever thread polls it), then `write` (or `write_async` on tokio-postgres).

// Without a database feature only the scope and the relay remain.
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]

#[cfg(feature = "postgres")]
pub mod postgres;
mod relay;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use crate::dispatch::{self, DeliveryError, Dispatch, WithDispatch, WithDispatchExt as _};
use crate::event::Event;
use crate::integrity::ChainHash;
use crate::record::{Record, limits};

pub use relay::{Deliver, OutboxRow, OutboxSource, Relay, RelayReport};

/// An outbox that could not be written or relayed.
#[derive(Debug)]
#[non_exhaustive]
pub enum OutboxError {
    /// The database refused (the message says why; a missing table says how to
    /// install it).
    Database(String),
    /// The target of a relay did not take the records (they stay in the outbox).
    Target(String),
    /// A row of the outbox does not read as a record.
    Corrupt {
        /// The row's position in the outbox.
        seq: i64,
        /// What is wrong with it.
        message: String,
    },
}

impl fmt::Display for OutboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutboxError::Database(m) => write!(f, "audit outbox: {m}"),
            OutboxError::Target(m) => write!(f, "audit relay: the target refused: {m}"),
            OutboxError::Corrupt { seq, message } => {
                write!(f, "audit outbox: row {seq} cannot be read: {message}")
            }
        }
    }
}

impl std::error::Error for OutboxError {}

/// Where this process's outbox rows come from, unless a scope names its producer:
/// one id per process, so that the relay keeps each process's commit order.
pub fn default_producer() -> &'static str {
    static PRODUCER: OnceLock<String> = OnceLock::new();
    PRODUCER.get_or_init(|| format!("{}-{}", std::process::id(), uuid::Uuid::now_v7()))
}

/// The records of one unit of work, kept until [`Scope::write`] puts them into the
/// application's transaction.
///
/// A scope dropped with records it never wrote says so on stderr and counts them in
/// [`dispatch::undelivered`]: they were never written anywhere.
pub struct Scope {
    kept: Arc<Kept>,
    /// Records taken from `kept` whose write failed: the next write takes them.
    rows: Mutex<Vec<NewRow>>,
    producer: String,
}

/// The scope's dispatcher: keeps successes, hands failures on.
struct Kept {
    events: Mutex<Vec<Event>>,
    /// The dispatcher that was local when the scope began (else the global one
    /// takes the failures).
    outer: Option<Arc<dyn Dispatch>>,
}

impl Dispatch for Kept {
    fn dispatch(&self, event: Event) -> Result<(), DeliveryError> {
        if event.outcome().is_success() {
            lock(&self.events).push(event);
            Ok(())
        } else {
            dispatch::emit_to(self.outer.as_ref(), event)
        }
    }
}

impl Default for Scope {
    fn default() -> Self {
        Self::new()
    }
}

impl Scope {
    /// A scope whose rows carry this process's producer id.
    pub fn new() -> Self {
        Scope {
            kept: Arc::new(Kept {
                events: Mutex::new(Vec::new()),
                outer: dispatch::local(),
            }),
            rows: Mutex::new(Vec::new()),
            producer: default_producer().to_owned(),
        }
    }

    /// Names the producer of this scope's rows: a relay delivers each producer's
    /// rows in the order they were written, one relay at a time.
    pub fn producer(mut self, producer: impl Into<String>) -> Self {
        self.producer = producer.into();
        self
    }

    /// Runs `f`; the events it emits on this thread are kept by the scope.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let kept: Arc<dyn Dispatch> = self.kept.clone();
        dispatch::with_dispatch(kept, f)
    }

    /// `fut`, its events kept by the scope whichever thread polls it.
    pub fn run_async<F: Future>(&self, fut: F) -> WithDispatch<F> {
        let kept: Arc<dyn Dispatch> = self.kept.clone();
        fut.with_dispatch(kept)
    }

    /// How many records the scope holds, not yet written.
    pub fn len(&self) -> usize {
        lock(&self.kept.events).len() + lock(&self.rows).len()
    }

    /// Whether the scope holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kept records as outbox rows (built now, on the caller's thread: the
    /// description rendered and the catalog's redaction applied, as the pipeline
    /// would), added to those a failed write left.
    pub(crate) fn rows(&self) -> std::sync::MutexGuard<'_, Vec<NewRow>> {
        let events = std::mem::take(&mut *lock(&self.kept.events));
        let mut rows = lock(&self.rows);
        rows.extend(
            events
                .into_iter()
                .map(|e| NewRow::of(Record::from_event_owned(e), &self.producer)),
        );
        rows
    }

    /// Hands out the kept records as outbox rows, for the application to insert
    /// with a client this crate does not wrap (sqlx, whose SQLite driver cannot
    /// share a build with rusqlite; diesel): one [`INSERT_ROW_POSTGRES`] (or
    /// [`INSERT_ROW_SQLITE`]) per row, in the business transaction. The rows are no
    /// longer the scope's: if the insert fails, [`Scope::restore_rows`] gives them
    /// back (else they are lost with the rollback, which for a rolled-back change
    /// is right).
    ///
    /// ```
    /// let scope = audit_runtime::outbox::Scope::new();
    /// for row in scope.take_rows() {
    ///     // sqlx::query(audit_runtime::outbox::INSERT_ROW_POSTGRES)
    ///     //     .bind(row.id).bind(&row.producer).bind(&row.json).bind(row.created_ns)
    ///     //     .execute(&mut *tx).await?;
    ///     let _ = row;
    /// }
    /// assert!(scope.is_empty());
    /// ```
    pub fn take_rows(&self) -> Vec<NewRow> {
        std::mem::take(&mut *self.rows())
    }

    /// Gives back rows taken with [`Scope::take_rows`] whose insert failed, ahead
    /// of any kept since (another transaction may write them).
    pub fn restore_rows(&self, rows: Vec<NewRow>) {
        self.rows().splice(0..0, rows);
    }

    /// Writes the kept records into `tx`'s `audit_outbox` (a `rusqlite` or `postgres`
    /// transaction): they commit or roll back with it. Returns how many. On an
    /// error the records stay in the scope (another transaction may take them);
    /// the transaction should then roll back.
    pub fn write<T: Transaction + ?Sized>(&self, tx: &mut T) -> Result<usize, OutboxError> {
        let mut rows = self.rows();
        tx.insert_rows(&rows)?;
        let n = rows.len();
        rows.clear();
        Ok(n)
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let n = self.rows().len();
        if n > 0 {
            dispatch::count_undelivered(n as u64);
            eprintln!(
                "audit: an outbox scope ended with {n} record(s) never written to a \
                 transaction (call Scope::write before the commit); they are counted as undelivered"
            );
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One record on its way into the outbox: the values of one `audit_outbox` row.
/// [`Scope::take_rows`] hands them out for a client this crate does not wrap.
#[derive(Debug, Clone)]
pub struct NewRow {
    /// The record's id (column `id`).
    pub id: uuid::Uuid,
    /// The producer whose order the relay keeps (column `producer`).
    pub producer: String,
    /// The record's JSON, unchained (`prev_hash` and `hash` null): the relay links
    /// it (column `record`).
    pub json: String,
    /// The record's time, nanoseconds since the epoch (column `created_ns`).
    pub created_ns: i64,
}

/// Inserts one [`NewRow`] into a PostgreSQL outbox, for a client this crate does not
/// wrap (sqlx, diesel): `$1` the id (`uuid`), `$2` the producer, `$3` the record
/// JSON (`text`), `$4` `created_ns` (`bigint`).
pub const INSERT_ROW_POSTGRES: &str =
    "INSERT INTO audit_outbox (id, producer, record, created_ns) VALUES ($1, $2, $3, $4)";

/// Inserts one [`NewRow`] into a SQLite outbox: `?1` the id (its hyphenated text),
/// `?2` the producer, `?3` the record JSON, `?4` `created_ns`.
pub const INSERT_ROW_SQLITE: &str =
    "INSERT INTO audit_outbox (id, producer, record, created_ns) VALUES (?1, ?2, ?3, ?4)";

impl NewRow {
    fn of(mut record: Record, producer: &str) -> NewRow {
        limits::enforce(&mut record);
        let mut json = record.to_json();
        // Room for the chain's two hashes, which the relay writes.
        if json.len() + 2 * 64 > limits::MAX_RECORD_BYTES {
            limits::shrink(&mut record, json.len() + 2 * 64);
            json = record.to_json();
        }
        NewRow {
            id: record.id,
            producer: producer.to_owned(),
            created_ns: record.time.as_nanos(),
            json,
        }
    }
}

/// A database transaction the outbox can write into: `rusqlite::Transaction`
/// (feature `sqlite`) and `postgres::Transaction` (feature `postgres`).
pub trait Transaction {
    #[doc(hidden)]
    fn insert_rows(&mut self, rows: &[NewRow]) -> Result<(), OutboxError>;
}

/// The SQL of the outbox tables (the same in both dialects but for the key).
pub(crate) fn tables(seq: &str, id: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS audit_outbox (
            seq        {seq},
            id         {id} NOT NULL UNIQUE,
            producer   text NOT NULL,
            record     text NOT NULL,
            created_ns bigint NOT NULL
        );
        CREATE INDEX IF NOT EXISTS audit_outbox_producer ON audit_outbox (producer, seq);
        CREATE TABLE IF NOT EXISTS audit_outbox_relay (
            name      text PRIMARY KEY,
            head      text,
            delivered bigint NOT NULL DEFAULT 0
        );"
    )
}

/// A database error, with the way out when the outbox was never installed.
pub(crate) fn db_error(e: impl fmt::Display, install: &str) -> OutboxError {
    let m = e.to_string();
    if m.contains("audit_outbox") && (m.contains("no such table") || m.contains("does not exist")) {
        OutboxError::Database(format!("{m} (create the outbox tables first: {install})"))
    } else {
        OutboxError::Database(m)
    }
}

/// A relay's stored chain head.
pub(crate) fn parse_head(head: Option<String>) -> Result<Option<ChainHash>, OutboxError> {
    head.map(|h| {
        h.parse::<ChainHash>().map_err(|e| OutboxError::Corrupt {
            seq: 0,
            message: format!("the relay's chain head: {e}"),
        })
    })
    .transpose()
}
