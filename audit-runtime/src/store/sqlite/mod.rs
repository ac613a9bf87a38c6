//! The embedded default store: one SQLite file (bundled SQLite, WAL mode).

mod ahead;
mod compress;
mod later;
mod postings;
mod samples;
mod schema;
mod segments;
mod wal;

use std::path::{Path, PathBuf};

use rusqlite::config::DbConfig;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row as SqlRow, ToSql, TransactionBehavior, params};
use uuid::Uuid;

use super::columns::column_text;
use super::core::{
    self, AnchorRow, ColumnSource, ERASED_COLUMNS, Keep, MetaTable, Purger, Snapshot, row_columns,
};
use super::events::{self, SeenEvent};
use super::link::{ChainKey, KeyState, Link};
use super::query::{Order, Param, Placeholder, Sql, field_index_name, page_of};
use super::stored::parse_record;
use super::verify::Row;
use super::{IndexFinding, Page, Purge, PurgeReport, Query, Store, StoreError, Stored, Witness};
use crate::record::Record;
use crate::sinks::{Batch, Sink, SinkError};
use crate::time::Timestamp;
use ahead::Ahead;
pub use compress::DEFAULT_RETRAIN_ROWS;
use compress::{AS_TEXT, RECORD};
pub use segments::DEFAULT_SEGMENT_ROWS;

/// The default of [`SqliteOptions::checkpoint_mib`]: 32 MiB (SQLite's own is 4).
/// Measured (`CHECKPOINT=n VARIANTS=0,2 cargo bench --bench store`, 1 M rows): the
/// segmented store wrote 49 k rows/s at 4 MiB, 59 k at 32, 62 k at 128 — an index
/// page dirtied by consecutive commits is copied into the file once per checkpoint.
pub const DEFAULT_CHECKPOINT_MIB: u32 = 32;
use postings::{Lookup, Place, Postings};
use segments::{Layout, Segment};
use wal::WalCheckpoints;

/// How hard SQLite works to make a commit survive a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// WAL `synchronous = NORMAL`: a commit survives the process crashing; the last
    /// commits may be lost if the machine loses power. The default.
    #[default]
    Normal,
    /// `synchronous = FULL`: every commit is synced to disk before it returns.
    Full,
}

/// Options of a [`Sqlite`] store.
///
/// ```
/// # fn main() -> Result<(), audit_runtime::store::StoreError> {
/// use audit_runtime::store::{Sqlite, Synchronous};
/// let dir = tempfile::tempdir().unwrap();
/// # let key = [0x5a_u8; 32];
/// let store = Sqlite::options()
///     .hmac_key(key) // 32 random bytes or more, from your secret store
///     .synchronous(Synchronous::Full)
///     .cache_mib(256)
///     .open(dir.path().join("audit.db"))?;
/// # let _ = store; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    key: ChainKey,
    synchronous: Synchronous,
    cache_mib: u32,
    name: String,
    schema_version: u32,
    index_fields: Vec<String>,
    segment_rows: usize,
    checkpoint_mib: u32,
    compress: bool,
    retrain_rows: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            key: ChainKey::none(),
            synchronous: Synchronous::Normal,
            cache_mib: 64,
            name: "sqlite".into(),
            schema_version: schema::VERSION,
            index_fields: Vec::new(),
            segment_rows: DEFAULT_SEGMENT_ROWS,
            checkpoint_mib: DEFAULT_CHECKPOINT_MIB,
            compress: true,
            retrain_rows: DEFAULT_RETRAIN_ROWS,
        }
    }
}

impl SqliteOptions {
    /// Links rows with HMAC-SHA-256 under `key`: repairing a tampered chain then
    /// needs the key. A store is keyed or not from its first open; opening it with
    /// another key is an error, and without one it can be queried but not written
    /// or verified.
    pub fn hmac_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.key = ChainKey::hmac(key);
        self
    }

    /// Commit durability (default [`Synchronous::Normal`]).
    pub fn synchronous(mut self, s: Synchronous) -> Self {
        self.synchronous = s;
        self
    }

    /// SQLite's page cache, in MiB (default 64): index pages that stay cached make
    /// inserts cheap.
    pub fn cache_mib(mut self, mib: u32) -> Self {
        self.cache_mib = mib.max(1);
        self
    }

    /// The sink's name in metrics and spool paths (default `sqlite`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Keeps an index on metadata field `name` for [`Query::field`] (besides the
    /// fields marked `indexed = true` in the catalogs of this binary's events,
    /// which are indexed anyway). An index is built once, when the store first
    /// opens with it.
    pub fn index_field(mut self, name: impl Into<String>) -> Self {
        self.index_fields.push(name.into());
        self
    }

    /// How many rows a segment holds before the next one starts (default
    /// [`DEFAULT_SEGMENT_ROWS`]). The store is a list of tables of the same
    /// shape, written one after the other: each one's indexes stay small, so
    /// writing with every query index stays fast as the store grows; a page reads
    /// the newest segments first and stops as soon as the older ones cannot change
    /// it; a purge drops whole segments. The open segment has no index on the
    /// actor or the entity (its seal builds them): a page filtered on those walks
    /// its tail index, so this also bounds that walk (20 000 rows: ~2 ms). Read by
    /// the writer only: stores written with different values stay readable by any.
    ///
    /// ```
    /// # fn main() -> Result<(), audit_runtime::store::StoreError> {
    /// use audit_runtime::store::Sqlite;
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = Sqlite::options().segment_rows(100_000).open(dir.path().join("audit.db"))?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn segment_rows(mut self, rows: usize) -> Self {
        self.segment_rows = rows.max(1);
        self
    }

    /// How large the write-ahead log grows, in MiB, before its pages are copied
    /// into the database file (default [`DEFAULT_CHECKPOINT_MIB`]). An index
    /// page written by many commits in a row is copied once per checkpoint, so a
    /// larger log writes less to the database file; readers find recent pages in
    /// the log either way, and the log's disk space is reused after each
    /// checkpoint.
    ///
    /// The copy runs on a helper thread with its own connection while the writer
    /// goes on; the log starts over once the helper has caught up. When the log
    /// reaches four times this size (a writer faster than its helper, or a second
    /// writer on the same file beginning its transactions between the copy and
    /// ours), the writer waits while the helper copies it whole and starts it
    /// over: the log file takes up to four times this on disk (128 MiB at the
    /// default), and a batch of each writer. A reader that keeps its snapshot
    /// open for more than a second holds the log's frames, as with SQLite's own
    /// checkpoint; the log then grows, and the writer waits a second per four
    /// times this size of writes.
    ///
    /// ```
    /// # fn main() -> Result<(), audit_runtime::store::StoreError> {
    /// use audit_runtime::store::Sqlite;
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = Sqlite::options().checkpoint_mib(16).open(dir.path().join("audit.db"))?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn checkpoint_mib(mut self, mib: u32) -> Self {
        self.checkpoint_mib = mib.max(1);
        self
    }

    /// Whether new rows store their record compressed (default `true`): a zstd
    /// frame made with a dictionary the store trains on its own records at a
    /// segment's seal (the first once a segment is sealed; a new one every 200 000
    /// rows). Measured on 1 M realistic records: 945 bytes of JSON become about 200.
    /// The record hash still covers the JSON text; reads, filters and exports see
    /// the text. With `false` records are stored as JSON text, for databases that
    /// other programs read with SQL's JSON functions (`docs/FORMAT.md` says how to
    /// read a compressed row: the SQL function `audit_record(record)` on this
    /// store's connections, or zstd with the row's dictionary elsewhere).
    ///
    /// ```
    /// # fn main() -> Result<(), audit_runtime::store::StoreError> {
    /// use audit_runtime::store::Sqlite;
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = Sqlite::options().compress(false).open(dir.path().join("audit.db"))?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn compress(mut self, on: bool) -> Self {
        self.compress = on;
        self
    }

    /// How many rows a dictionary of [`compress`](Self::compress) serves before
    /// the store trains the next one, at the next seal (default
    /// [`DEFAULT_RETRAIN_ROWS`]), so that dictionaries follow what the records
    /// hold. Each is a few KiB; a purge removes those no row left needs.
    ///
    /// ```
    /// # fn main() -> Result<(), audit_runtime::store::StoreError> {
    /// use audit_runtime::store::Sqlite;
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = Sqlite::options().retrain_rows(1_000_000).open(dir.path().join("audit.db"))?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn retrain_rows(mut self, rows: usize) -> Self {
        self.retrain_rows = rows.max(1);
        self
    }

    /// Stops migrating at this schema version (to test migrations from older ones).
    #[doc(hidden)]
    pub fn schema_version(mut self, v: u32) -> Self {
        self.schema_version = v;
        self
    }

    /// Opens (creating and migrating if needed) the store at `path`.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Sqlite, StoreError> {
        Sqlite::open_with(path.as_ref(), self)
    }
}

/// The embedded default store: a SQLite file holding every record, queryable with
/// [`Query`], verifiable, purgeable. It is a [`Sink`] (give it to
/// `Auditor::builder().sink(...)`) and a [`Store`] (open the same file again to
/// read it: WAL mode lets readers run beside the writer, in this process or others).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use audit_runtime::store::{Query, Sqlite, Store};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("audit.db");
/// let auditor = audit_runtime::Auditor::builder().sink(Sqlite::open(&path)?).build()?;
/// // … handlers run, `auditor.flush()` …
/// # drop(auditor);
/// let mut reader = Sqlite::open(&path)?;
/// let page = reader.query(&Query::all().limit(20))?;
/// # assert!(page.records.is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Sqlite {
    /// The thread that makes sealed segments' postings (schema 8), started by
    /// this handle's first write; stopped first, so that the writing connection
    /// is the last to close (and checkpoints and removes the log).
    later: Option<later::Later>,
    /// Whether starting that thread failed: it is tried again after the next seal,
    /// not at every batch (the segments wait meanwhile, and are read).
    later_failed: bool,
    /// Stopped before the connection closes (which then checkpoints what is left
    /// and removes the log, as the last connection to the file).
    _checkpoints: Option<WalCheckpoints>,
    conn: Connection,
    path: PathBuf,
    key: ChainKey,
    key_state: KeyState,
    name: String,
    schema: u32,
    segment_rows: usize,
    /// Whether new rows are compressed (from schema 5 on).
    compress: bool,
    retrain_rows: usize,
    /// The store's newest dictionary, prepared (refreshed at each write).
    encoder: Option<compress::Encoder>,
}

/// A database error as a store error.
fn db_error(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// A database error as a sink error: busy, locked, I/O and full-disk errors can pass.
fn sink_error(e: rusqlite::Error) -> SinkError {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(
            DatabaseBusy
            | DatabaseLocked
            | SystemIoFailure
            | DiskFull
            | CannotOpen
            | OutOfMemory
            | FileLockingProtocolFailed,
        )
        | None => SinkError::retryable(format!("sqlite: {e}")),
        Some(_) => SinkError::permanent(format!("sqlite: {e}")),
    }
}

impl Sqlite {
    /// Opens (creating and migrating if needed) the store at `path` with default
    /// options.
    pub fn open(path: impl AsRef<Path>) -> Result<Sqlite, StoreError> {
        Sqlite::open_with(path.as_ref(), SqliteOptions::default())
    }

    /// Options for opening a store.
    pub fn options() -> SqliteOptions {
        SqliteOptions::default()
    }

    fn open_with(path: &Path, options: SqliteOptions) -> Result<Sqlite, StoreError> {
        options.key.check_strength()?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut conn = Connection::open(path).map_err(db_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db_error)?;
        let journal: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(db_error)?;
        let sync = match options.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(db_error)?;
        conn.pragma_update(None, "cache_size", -(i64::from(options.cache_mib) * 1024))
            .map_err(db_error)?;
        // The log is copied into the file by a helper thread once it holds
        // `checkpoint_mib` (in pages of 4 KiB), not by the writer after its commit.
        let checkpoints = match journal.eq_ignore_ascii_case("wal") {
            true => WalCheckpoints::install(&mut conn, i64::from(options.checkpoint_mib) * 256)
                .map_err(db_error)?,
            false => None,
        };
        // Space freed inside pages written anyway is zeroed, so that a tenant
        // purge leaves no copy of erased records in page slack.
        conn.pragma_update(None, "secure_delete", "FAST")
            .map_err(db_error)?;
        // One statement per segment and query shape.
        conn.set_prepared_statement_cache_capacity(256);
        // Plans that do not depend on bound values: without this, SQLite marks a
        // statement with `column = ?` terms to be prepared again whenever those
        // values change, which was 75 % of a page's time (the plans are the same:
        // each filter has its ordered index).
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(db_error)?;
        compress::register(&conn).map_err(db_error)?;
        let schema = schema::migrate(&mut conn, options.schema_version)?;
        create_field_indexes(&conn, schema, &options.index_fields)?;
        let key_state = core::check_key(&mut Meta(&conn), &options.key)?;
        Ok(Sqlite {
            later: None,
            later_failed: false,
            _checkpoints: checkpoints,
            conn,
            path: path.to_path_buf(),
            key: options.key,
            key_state,
            name: options.name,
            schema,
            segment_rows: options.segment_rows,
            compress: options.compress && schema >= schema::DICTIONARIES,
            retrain_rows: options.retrain_rows,
            encoder: None,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db_error)
    }

    /// Rows in the store.
    pub fn count(&mut self) -> Result<u64, StoreError> {
        Ok(self.segments()?.iter().map(|(_, n)| n).sum())
    }

    /// Writes the postings of every sealed segment that still waits for them
    /// (from schema 8 they are made off the writer after each seal and written by
    /// a later batch; a segment waiting is read through its time index, a little
    /// slower for pages filtered on a key) and returns how many it wrote. For
    /// tests, benchmarks and tools that read a store just written; a writer never
    /// needs it.
    ///
    /// ```
    /// # fn main() -> Result<(), audit_runtime::store::StoreError> {
    /// use audit_runtime::store::Sqlite;
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut store = Sqlite::open(dir.path().join("audit.db"))?;
    /// assert_eq!(store.settle()?, 0);
    /// # Ok(()) }
    /// ```
    pub fn settle(&mut self) -> Result<usize, StoreError> {
        let place = self.place();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        let segs = segments::list(&tx, self.schema).map_err(db_error)?;
        let mut written = 0;
        for s in segs.iter().filter(|s| s.waits()) {
            remake_postings(&tx, s, place)?;
            written += 1;
        }
        tx.commit().map_err(db_error)?;
        Ok(written)
    }

    /// The segments the store is made of: `(table, rows)`, oldest first.
    ///
    /// ```
    /// # fn main() -> Result<(), audit_runtime::store::StoreError> {
    /// use audit_runtime::store::Sqlite;
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut store = Sqlite::open(dir.path().join("audit.db"))?;
    /// assert_eq!(store.segments()?, vec![("audit_records".to_string(), 0)]);
    /// # Ok(()) }
    /// ```
    pub fn segments(&mut self) -> Result<Vec<(String, u64)>, StoreError> {
        let (tx, segs) = self.snapshot()?;
        let mut out = Vec::new();
        for s in segs {
            let n: i64 = tx
                .query_row(&format!("SELECT count(*) FROM {}", s.table), [], |r| {
                    r.get(0)
                })
                .map_err(db_error)?;
            out.push((s.table, n as u64));
        }
        Ok(out)
    }

    /// A read transaction (one snapshot across the segments) and the segments
    /// it sees.
    fn snapshot(&mut self) -> Result<(rusqlite::Transaction<'_>, Vec<Segment>), StoreError> {
        let tx = self.conn.transaction().map_err(db_error)?;
        let segs = segments::list(&tx, self.schema).map_err(db_error)?;
        Ok((tx, segs))
    }

    /// The rows of the oldest segment, when it is sealed and every one of them
    /// comes before `keep_from`, handed to `keep` `chunk` at a time from one
    /// snapshot; the segment's table. `None` when it also holds rows to keep.
    fn export_segment(
        &mut self,
        keep_from: i64,
        chunk: usize,
        keep: &mut Keep<'_>,
    ) -> Result<Option<String>, StoreError> {
        let (tx, segs) = self.snapshot()?;
        let Some(s) = segs.first() else {
            return Ok(None);
        };
        if s.sealed.as_ref().is_none_or(|x| x.last_seq >= keep_from) {
            return Ok(None);
        }
        let mut stmt = tx
            .prepare(&format!("SELECT {RECORD} FROM {} ORDER BY seq", s.table))
            .map_err(db_error)?;
        let mut rows = stmt.query([]).map_err(db_error)?;
        let mut chunks = core::Chunks::new(keep, chunk);
        while let Some(r) = rows.next().map_err(db_error)? {
            chunks.push(r.get(0).map_err(db_error)?)?;
        }
        chunks.flush()?;
        Ok(Some(s.table.clone()))
    }

    /// Where this store keeps the postings it writes: the one table from schema
    /// 9 (whose migration moved every segment's there), a table per segment in
    /// schema 8.
    fn place(&self) -> Place {
        match self.schema >= schema::SHARED_POSTINGS {
            true => Place::Shared,
            false => Place::Own,
        }
    }

    fn require_key(&self) -> Result<(), StoreError> {
        self.key_state.require()
    }

    /// Inserts a batch in one transaction, after the store's last link, into the
    /// open segment (sealing it and opening the next when full). A record already
    /// stored (same id: a replayed batch) is skipped.
    fn insert(&mut self, batch: &Batch) -> Result<(), SinkError> {
        self.require_key()?;
        let place = self.place();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sink_error)?;
        let mut segs = segments::list(&tx, self.schema).map_err(sink_error)?;
        // Postings made since the last batch, for segments that still wait.
        if let Some(later) = self.later.as_mut() {
            for (t, blocks) in later.take() {
                if let Some(s) = segs.iter_mut().find(|s| s.table == t && s.waits()) {
                    s.layout =
                        segments::write_postings(&tx, s, place, blocks).map_err(sink_error)?;
                }
            }
        }
        let sealed_before = segs.len();
        let (mut seq, mut prev) = last_link(&tx, &segs)?;
        let segmented = self.schema >= schema::SEGMENTS;
        if self.compress {
            self.encoder =
                compress::Encoder::newest(&tx, self.encoder.take()).map_err(sink_error)?;
        }
        // The rows that go into the open segment whatever happens (a skipped
        // duplicate only moves the seal later) are compressed ahead, with the
        // dictionary they must use, while the rows before them are inserted.
        let open = segs.last().expect("a store has an open segment");
        let room = match segmented {
            true => (open.first_seq + self.segment_rows as i64 - (seq + 1)).max(0) as usize,
            false => usize::MAX,
        };
        let encoder = &mut self.encoder;
        std::thread::scope(|scope| {
            let mut ahead = Ahead::start(scope, &batch[..batch.len().min(room)], encoder);
            // The insert into the open segment, prepared again only after a seal.
            let mut insert: Option<(String, rusqlite::CachedStatement<'_>)> = None;
            for item in batch {
                let made = ahead.next();
                // A full open segment is sealed first, so that the duplicate check
                // below sees the rows it holds (a replayed batch reaching it would
                // otherwise go into the next segment a second time).
                let open = segs.last().expect("a store has an open segment");
                if segmented && seq + 1 - open.first_seq >= self.segment_rows as i64 {
                    ahead.finish(encoder);
                    segments::seal(&tx, self.schema, &mut segs, seq).map_err(sink_error)?;
                    if self.compress {
                        let held = encoder.take();
                        *encoder = compress::Encoder::at_seal(
                            &tx,
                            &segs,
                            seq + 1,
                            held,
                            self.retrain_rows,
                        )
                        .map_err(sink_error)?;
                    }
                }
                let row = match made {
                    Some(row) => row?,
                    None => {
                        ahead.finish(encoder);
                        ahead::prepare(item, encoder.as_mut())?
                    }
                };
                let c = &row.columns;
                if stored_before(&tx, &segs, &c.id)? {
                    continue;
                }
                let table = &segs.last().expect("a store has an open segment").table;
                if insert.as_ref().is_none_or(|(t, _)| t != table) {
                    let statement = tx.prepare_cached(&insert_sql(table)).map_err(sink_error)?;
                    insert = Some((table.clone(), statement));
                }
                let (_, statement) = insert.as_mut().expect("prepared above");
                let link = self.key.link(&prev, &row.hash);
                // Compact rows (with a dictionary): the hash and link as 32 bytes each.
                let hash_text = row.hash.as_str();
                let link_text;
                let (hash_value, link_value): (&dyn ToSql, &dyn ToSql) = match &row.hash_bytes {
                    Some(bytes) => (bytes, &link.0),
                    None => {
                        link_text = link.to_string();
                        (&hash_text, &link_text)
                    }
                };
                let inserted = statement
                    .execute(params![
                        seq + 1,
                        c.id,
                        c.time_ns,
                        c.event,
                        c.code,
                        c.category,
                        c.level,
                        c.outcome,
                        c.actor_id,
                        c.actor_email,
                        c.tenant,
                        c.entity_type,
                        c.entity_type_code,
                        c.entity_id,
                        c.description,
                        hash_value,
                        link_value,
                        row.record,
                    ])
                    .map_err(sink_error)?;
                if inserted == 1 {
                    prev = link;
                    seq += 1;
                }
            }
            ahead.finish(encoder);
            Ok::<_, SinkError>(())
        })?;
        tx.commit().map_err(sink_error)?;
        self.ask_for_postings(segs.len() > sealed_before, &segs);
        Ok(())
    }

    /// After a seal, and at this handle's first write (a crash, a handle that
    /// stopped, a build that failed may have left some): asks for the postings of
    /// every waiting segment, starting the thread that makes them if need be. The
    /// batch is committed whatever happens here: without the thread, the segments
    /// wait (and are read) until a later write. A thread that failed to start is
    /// tried again at the next seal only, not at every batch.
    fn ask_for_postings(&mut self, sealed: bool, segs: &[Segment]) {
        let first_write = self.later.is_none() && !self.later_failed;
        let wanted = sealed || (first_write && segs.iter().any(Segment::waits));
        if !wanted {
            return;
        }
        if self.later.is_none() {
            match later::Later::start(&self.path) {
                Ok(later) => self.later = Some(later),
                Err(e) => {
                    self.later_failed = true;
                    eprintln!("audit: sealed segments wait for their postings: {e}");
                }
            }
        }
        if let Some(later) = self.later.as_mut() {
            for s in segs.iter().filter(|s| s.waits()) {
                later.ask(&s.table);
            }
        }
    }
}

/// Makes the postings of sealed segment `s` again, after a purge changed its
/// rows: those it has, where they are, or those it waits for, at `place` (blocks
/// made from its rows before are then never written: it no longer waits).
fn remake_postings(tx: &Connection, s: &Segment, place: Place) -> Result<(), StoreError> {
    let place = match s.layout {
        Layout::Postings(held) => held,
        _ if s.waits() => place,
        _ => return Ok(()),
    };
    let blocks = postings::made(tx, &s.table).map_err(db_error)?;
    segments::write_postings(tx, s, place, blocks).map_err(db_error)?;
    Ok(())
}

/// Whether a row with this id is in a sealed segment (the open one's unique index
/// sees the rest). Ids are UUIDv7, which grow with time: a new one is past every
/// sealed segment's range and costs no lookup.
fn stored_before(conn: &Connection, segs: &[Segment], id: &str) -> Result<bool, SinkError> {
    for s in segs
        .iter()
        .filter(|s| s.sealed.is_some() && s.may_hold_id(id))
    {
        let found = conn
            .prepare_cached(&format!("SELECT 1 FROM {} WHERE id = ?1", s.table))
            .map_err(sink_error)?
            .exists([id])
            .map_err(sink_error)?;
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The insert into segment `table`; a row whose id it holds already is skipped.
fn insert_sql(table: &str) -> String {
    format!(
        "INSERT INTO {table} (seq, id, time_ns, event, code, category, level, \
         outcome, actor_id, actor_email, tenant, entity_type, entity_type_code, entity_id, \
         description, hash, link, record) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
         ON CONFLICT (id) DO NOTHING"
    )
}

/// The indexes of [`Query::field`], on every segment: the fields asked for and
/// those the catalogs of this binary's events mark `indexed = true` (missing ones
/// only: no write when all exist, so a reader opens a store it cannot write).
fn create_field_indexes(
    conn: &Connection,
    schema: u32,
    asked: &[String],
) -> Result<(), StoreError> {
    for s in segments::list(conn, schema).map_err(db_error)? {
        for name in super::query::indexed_field_names(asked) {
            let index = field_index_name(&s.table, name);
            let sql: Option<String> = conn
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
                    [&index],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_error)?;
            // Indexes made before schema 5 read `json_extract(record, …)`: made
            // again over `audit_record(record)`, which queries now use.
            let current = sql.as_deref().is_some_and(|s| s.contains(RECORD));
            if sql.is_some() && !current {
                conn.execute_batch(&format!("DROP INDEX {index}"))
                    .map_err(db_error)?;
            }
            if !current {
                conn.execute_batch(&super::query::field_index_sql(
                    Placeholder::Question,
                    &s.table,
                    name,
                ))
                .map_err(db_error)?;
            }
        }
    }
    Ok(())
}

/// The last purge's anchor row.
fn read_anchor(conn: &Connection) -> Result<Option<AnchorRow>, StoreError> {
    conn.query_row(
        "SELECT seq, link, purged, before_ns, at_ns FROM audit_anchor ORDER BY rowid DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .optional()
    .map_err(db_error)
}

/// The position and link the next row follows: the last row's, else the last
/// purge's anchor, else the genesis link at position 0.
fn last_link(conn: &Connection, segs: &[Segment]) -> Result<(i64, Link), SinkError> {
    let last = match segments::head(conn, segs).map_err(sink_error)? {
        Some(l) => Some(l),
        None => conn
            .query_row(
                "SELECT seq, link FROM audit_anchor ORDER BY rowid DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sink_error)?,
    };
    match last {
        None => Ok((0, Link::GENESIS)),
        Some((seq, l)) => l
            .parse()
            .map(|link| (seq, link))
            .map_err(|m| SinkError::permanent(format!("the store's last link is corrupt: {m}"))),
    }
}

/// `audit_meta` through a connection.
struct Meta<'a>(&'a Connection);

impl MetaTable for Meta<'_> {
    fn init(&mut self, chain: &str, key_check: &str) -> Result<(), StoreError> {
        self.0
            .execute(
                "INSERT OR IGNORE INTO audit_meta (key, value) VALUES ('chain', ?1), ('key_check', ?2)",
                params![chain, key_check],
            )
            .map(drop)
            .map_err(db_error)
    }

    fn put(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.0
            .execute(
                "INSERT OR IGNORE INTO audit_meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )
            .map(drop)
            .map_err(db_error)
    }

    fn get(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        self.0
            .query_row("SELECT value FROM audit_meta WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db_error)
    }
}

fn to_sql_values(params: &[Param]) -> impl Iterator<Item = SqlValue> + '_ {
    params.iter().map(|p| match p {
        Param::Int(i) => SqlValue::Integer(*i),
        Param::Text(s) => SqlValue::Text(s.clone()),
    })
}

impl ColumnSource for SqlRow<'_> {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.get(i).map_err(db_error)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.get(i).map_err(db_error)
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.get(i).map_err(db_error)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.get(i).map_err(db_error)
    }
    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        self.get(i).map_err(db_error)
    }
}

/// One read transaction and the segments it sees: what [`core::witness`] walks.
struct Tx<'a>(rusqlite::Transaction<'a>, Vec<Segment>);

impl Snapshot for Tx<'_> {
    fn store_id(&mut self) -> Result<Option<String>, StoreError> {
        self.0
            .query_row(
                "SELECT value FROM audit_meta WHERE key = 'store_id'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_error)
    }

    fn anchor(&mut self) -> Result<Option<AnchorRow>, StoreError> {
        read_anchor(&self.0)
    }

    fn rows(&mut self, each: &mut dyn FnMut(&Row<'_>) -> bool) -> Result<(), StoreError> {
        for s in &self.1 {
            let sql = format!(
                "SELECT {} FROM {} ORDER BY seq",
                row_columns(&AS_TEXT, ""),
                s.table
            );
            let mut stmt = self.0.prepare(&sql).map_err(db_error)?;
            let mut rows = stmt.query([]).map_err(db_error)?;
            while let Some(r) = rows.next().map_err(db_error)? {
                let (hash, link, json) = (r.text(1)?, r.text(2)?, r.text(3)?);
                let row = Row {
                    seq: r.int(0)?,
                    hash: &hash,
                    link: &link,
                    json: &json,
                    columns: r.filter_columns()?,
                    erased: r.flag(18)?,
                };
                if !each(&row) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn links(&mut self, each: &mut dyn FnMut(i64, &str, &str)) -> Result<(), StoreError> {
        for s in &self.1 {
            let sql = format!(
                "SELECT seq, {}, {} FROM {} ORDER BY seq",
                AS_TEXT.hash, AS_TEXT.link, s.table
            );
            let mut stmt = self.0.prepare(&sql).map_err(db_error)?;
            let mut rows = stmt.query([]).map_err(db_error)?;
            while let Some(r) = rows.next().map_err(db_error)? {
                each(r.int(0)?, &r.text(1)?, &r.text(2)?);
            }
        }
        Ok(())
    }
}

impl Purger for Sqlite {
    fn prefix(&mut self, before_ns: i64) -> Result<(i64, u64), StoreError> {
        let (tx, segs) = self.snapshot()?;
        let mut total = 0;
        for s in &segs {
            let t = &s.table;
            let first_kept: Option<i64> = tx
                .query_row(
                    &format!("SELECT min(seq) FROM {t} WHERE time_ns >= ?1"),
                    [before_ns],
                    |r| r.get(0),
                )
                .map_err(db_error)?;
            let below = match first_kept {
                Some(k) => format!("SELECT count(*) FROM {t} WHERE seq < {k}"),
                None => format!("SELECT count(*) FROM {t}"),
            };
            total += tx
                .query_row(&below, [], |r| r.get::<_, i64>(0))
                .map_err(db_error)?;
            if let Some(k) = first_kept {
                return Ok((k, total as u64));
            }
        }
        let head = segments::head(&tx, &segs).map_err(db_error)?;
        Ok((head.map_or(0, |(seq, _)| seq + 1), total as u64))
    }

    fn remove_chunk(
        &mut self,
        keep_from: i64,
        chunk: usize,
        before_ns: i64,
        mut keep: Option<&mut Keep<'_>>,
    ) -> Result<Option<(u64, i64)>, StoreError> {
        // With an export, a sealed segment wholly before the cut is read out first,
        // from a snapshot, before the write lock is taken; then dropped.
        let exported = match keep.as_deref_mut() {
            Some(keep) => self.export_segment(keep_from, chunk, keep)?,
            None => None,
        };
        let place = self.place();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        let segs = segments::list(&tx, self.schema).map_err(db_error)?;
        let purged_before: i64 = tx
            .query_row(
                "SELECT coalesce((SELECT purged FROM audit_anchor ORDER BY rowid DESC LIMIT 1), 0)",
                [],
                |r| r.get(0),
            )
            .map_err(db_error)?;
        // Up to `chunk` rows, across segments; or one whole sealed segment before
        // the first row kept, dropped rather than deleted row by row (when
        // exporting, only the one exported above).
        let mut taken: i64 = 0;
        let mut last: Option<(i64, String)> = None;
        for s in &segs {
            let t = &s.table;
            let room = chunk as i64 - taken;
            let whole = s.sealed.as_ref().is_some_and(|x| x.last_seq < keep_from)
                && (keep.is_none() || exported.as_ref() == Some(t));
            if whole {
                if taken > 0 {
                    break;
                }
                taken = tx
                    .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                    .map_err(db_error)?;
                last = segments::head(&tx, std::slice::from_ref(s)).map_err(db_error)?;
                segments::drop_segment(&tx, s).map_err(db_error)?;
                if last.is_some() {
                    break;
                }
                continue;
            }
            if room <= 0 {
                break;
            }
            let rows: Vec<(i64, String, String)> = tx
                .prepare_cached(&format!(
                    "SELECT seq, {}, {RECORD} FROM {t} WHERE seq < ?1 ORDER BY seq LIMIT ?2",
                    AS_TEXT.link
                ))
                .map_err(db_error)?
                .query_map(params![keep_from, room], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(db_error)?
                .collect::<rusqlite::Result<_>>()
                .map_err(db_error)?;
            if let Some((last_seq, link, _)) = rows.last() {
                if let Some(keep) = keep.as_mut() {
                    keep(
                        &rows
                            .iter()
                            .map(|(_, _, json)| json.as_str())
                            .collect::<Vec<_>>(),
                    )?;
                }
                purging(&tx, &format!("DELETE FROM {t} WHERE seq <= ?1"), [last_seq])
                    .map_err(db_error)?;
                taken += rows.len() as i64;
                last = Some((*last_seq, link.clone()));
            }
            let emptied = s.sealed.is_some() && is_empty(&tx, t)?;
            if emptied {
                segments::drop_segment(&tx, s).map_err(db_error)?;
            } else {
                // Rows of this segment stay: every later one stays too. Its
                // postings no longer name the rows removed.
                remake_postings(&tx, s, place)?;
                break;
            }
        }
        let removed = match last {
            None => None,
            Some((last_seq, link)) => {
                tx.execute(
                    "INSERT INTO audit_anchor (seq, link, purged, before_ns, at_ns) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![last_seq, link, purged_before + taken, before_ns, Timestamp::now().as_nanos()],
                )
                .map_err(db_error)?;
                if self.schema >= schema::DICTIONARIES {
                    compress::forget_before(&tx, last_seq + 1).map_err(db_error)?;
                }
                Some((taken as u64, last_seq))
            }
        };
        tx.commit().map_err(db_error)?;
        Ok(removed)
    }

    fn erasable(&mut self, tenant: &str, before_ns: i64) -> Result<u64, StoreError> {
        let (tx, segs) = self.snapshot()?;
        let mut n = 0;
        for s in segs {
            n += tx
                .query_row(
                    &format!(
                        "SELECT count(*) FROM {} \
                         WHERE tenant = ?1 AND time_ns < ?2 AND erased_ns IS NULL",
                        s.table
                    ),
                    params![tenant, before_ns],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(db_error)?;
        }
        Ok(n as u64)
    }

    fn erase_chunk(
        &mut self,
        tenant: &str,
        before_ns: i64,
        chunk: usize,
        keep: &mut Keep<'_>,
    ) -> Result<Option<(u64, i64)>, StoreError> {
        let place = self.place();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        let segs = segments::list(&tx, self.schema).map_err(db_error)?;
        let mut erased = None;
        for s in &segs {
            let t = &s.table;
            let rows: Vec<(i64, String)> = tx
                .prepare_cached(&format!(
                    "SELECT seq, {RECORD} FROM {t} \
                     WHERE tenant = ?1 AND time_ns < ?2 AND erased_ns IS NULL ORDER BY seq LIMIT ?3"
                ))
                .map_err(db_error)?
                .query_map(params![tenant, before_ns, chunk as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(db_error)?
                .collect::<rusqlite::Result<_>>()
                .map_err(db_error)?;
            let Some(&(last_seq, _)) = rows.last() else {
                continue;
            };
            keep(
                &rows
                    .iter()
                    .map(|(_, json)| json.as_str())
                    .collect::<Vec<_>>(),
            )?;
            let n = purging(
                &tx,
                &format!(
                    "UPDATE {t} SET {ERASED_COLUMNS}, erased_ns = ?1 \
                     WHERE tenant = ?2 AND time_ns < ?3 AND erased_ns IS NULL AND seq <= ?4"
                ),
                params![Timestamp::now().as_nanos(), tenant, before_ns, last_seq],
            )
            .map_err(db_error)?;
            // Its postings no longer hold the erased rows' keys.
            remake_postings(&tx, s, place)?;
            erased = Some((n as u64, last_seq));
            break;
        }
        tx.commit().map_err(db_error)?;
        Ok(erased)
    }
}

/// Runs one statement as a purge: with the flag (a row of `audit_purging`, inside
/// the caller's transaction) that lets the append-only triggers pass it.
fn purging(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.execute_batch("INSERT INTO audit_purging VALUES (1)")?;
    let changed = conn.execute(sql, params)?;
    conn.execute_batch("DELETE FROM audit_purging")?;
    Ok(changed)
}

/// Whether a table holds no row.
fn is_empty(conn: &Connection, table: &str) -> Result<bool, StoreError> {
    conn.query_row(
        &format!("SELECT NOT EXISTS (SELECT 1 FROM {table})"),
        [],
        |r| r.get(0),
    )
    .map_err(db_error)
}

/// The rows of a query's SQL over one segment: `(time_ns, seq, record)`. A
/// sealed segment with postings is read through those of `lookups` (the query's
/// keys: [`postings::lookups`]) when it has any, `need` rows of a page in
/// `order` inside `window` at most; `lookups` is empty for a read in position
/// order ([`Store::follow_matching`]).
fn select(
    conn: &Connection,
    segment: &Segment,
    sql: &Sql,
    lookups: &[Vec<Lookup>],
    (order, window, need): (Order, (i64, i64), usize),
) -> Result<Vec<(i64, i64, Record)>, StoreError> {
    let columns = format!("time_ns, seq, {RECORD}");
    let params: Vec<SqlValue> = to_sql_values(&sql.params).collect();
    let rows: Vec<(i64, i64, String)> = match segment.postings() {
        Some(p) if !lookups.is_empty() => {
            let candidates = postings::candidates(conn, &p, lookups)?;
            postings::fetch(
                conn,
                &segment.table,
                &candidates,
                order,
                window,
                need,
                &columns,
                &sql.filter,
                &params,
                |r| r.get::<_, String>(2),
            )?
        }
        _ => {
            let indexed = segment.layout == Layout::Indexed;
            let text = sql.statement_over(&segment.table, &columns, indexed);
            let mut stmt = conn.prepare_cached(&text).map_err(db_error)?;
            stmt.query_map(rusqlite::params_from_iter(params), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(db_error)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db_error)?
        }
    };
    rows.into_iter()
        .map(|(time_ns, seq, json)| Ok((time_ns, seq, parse_record(seq, &json)?)))
        .collect()
}

/// The newest readable row of `event` in one segment: `code, category, level,
/// time_ns`.
fn newest_of_event(
    conn: &Connection,
    segment: &Segment,
    event: &str,
    tenant: Option<&str>,
) -> Result<Option<(i64, String, String, i64)>, StoreError> {
    if let Some(p) = segment.postings() {
        let mut lookups = vec![vec![Lookup::Key(postings::Kind::Event, event.to_owned())]];
        let mut filter = "WHERE erased_ns IS NULL".to_string();
        let mut params = Vec::new();
        if let Some(t) = tenant {
            lookups.push(vec![Lookup::Key(postings::Kind::Tenant, t.to_owned())]);
            filter.push_str(" AND tenant = ?1");
            params.push(SqlValue::Text(t.to_owned()));
        }
        let candidates = postings::candidates(conn, &p, &lookups)?;
        let newest = postings::fetch(
            conn,
            &segment.table,
            &candidates,
            Order::NewestFirst,
            (i64::MIN, i64::MAX),
            1,
            "time_ns, seq, code, category, level",
            &filter,
            &params,
            |r| Ok((r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        return Ok(newest
            .into_iter()
            .next()
            .map(|(time_ns, _, (code, category, level))| (code, category, level, time_ns)));
    }
    let mut stmt = conn
        .prepare_cached(&events::newest_of_event(
            Placeholder::Question,
            &segment.table,
            tenant.is_some(),
        ))
        .map_err(db_error)?;
    let newest = |r: &SqlRow<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?));
    match tenant {
        Some(t) => stmt.query_row(params![event, t], newest),
        None => stmt.query_row(params![event], newest),
    }
    .optional()
    .map_err(db_error)
}

impl Store for Sqlite {
    fn query(&mut self, query: &Query) -> Result<Page, StoreError> {
        let sql = query.to_sql(Placeholder::Question, "LIKE");
        let (tx, segs) = self.snapshot()?;
        let window = query.time_window();
        let lookups = postings::lookups(query);
        let need = query.limit + 1;
        let rows = segments::page(&tx, &segs, query.order, window, need, |s| {
            select(&tx, s, &sql, &lookups, (query.order, window, need))
        })?;
        Ok(page_of(query, rows))
    }

    fn get_in(&mut self, id: Uuid, tenant: Option<&str>) -> Result<Option<Record>, StoreError> {
        let tenant = tenant.map(|t| column_text(t, true).into_owned());
        let id = id.hyphenated().to_string();
        let (tx, segs) = self.snapshot()?;
        for s in segs.iter().rev() {
            if !s.may_hold_id(&id) {
                continue;
            }
            let found = tx
                .prepare_cached(&format!(
                    "SELECT seq, {RECORD} FROM {} \
                     WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2) AND erased_ns IS NULL",
                    s.table
                ))
                .map_err(db_error)?
                .query_row(params![id, tenant], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .optional()
                .map_err(db_error)?;
            if let Some((seq, json)) = found {
                return parse_record(seq, &json).map(Some);
            }
        }
        Ok(None)
    }

    fn follow_matching(&mut self, after: i64, query: &Query) -> Result<Vec<Stored>, StoreError> {
        let sql = query.to_follow_sql(Placeholder::Question, "LIKE", after);
        let (tx, segs) = self.snapshot()?;
        let mut out = Vec::new();
        // Segments hold consecutive positions: their rows in order, one after the
        // other, are in position order.
        for s in segs {
            if out.len() >= query.limit {
                break;
            }
            if s.may_hold_after(after) {
                let all = (Order::OldestFirst, (i64::MIN, i64::MAX), query.limit);
                out.extend(
                    select(&tx, &s, &sql, &[], all)?
                        .into_iter()
                        .map(|(_, seq, record)| Stored { seq, record }),
                );
            }
        }
        out.truncate(query.limit);
        Ok(out)
    }

    fn events_seen(&mut self, tenant: Option<&str>) -> Result<Vec<SeenEvent>, StoreError> {
        let tenant = tenant.map(|t| column_text(t, true).into_owned());
        let (tx, segs) = self.snapshot()?;
        let mut names = std::collections::BTreeSet::new();
        for s in &segs {
            // A segment without the event index (the open one) is read in one
            // walk of its tail index, which holds the event; postings hold each
            // event's name once.
            let sql = match s.layout {
                Layout::Indexed => events::distinct_events(&s.table),
                Layout::Open => format!("SELECT DISTINCT event FROM {}", s.table),
                Layout::Postings(place) => {
                    let p = Postings::of(s.n, &s.table, place);
                    names.extend(postings::events(&tx, &p)?);
                    continue;
                }
            };
            let mut stmt = tx.prepare_cached(&sql).map_err(db_error)?;
            for name in stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(db_error)?
            {
                names.insert(name.map_err(db_error)?);
            }
        }
        let mut out = Vec::with_capacity(names.len());
        for event in names {
            // The newest row of the event: one probe per segment, newest segment
            // first, the page walk's early stop deciding when older ones cannot
            // hold a newer one.
            let all = (i64::MIN, i64::MAX);
            let newest = segments::page(&tx, &segs, Order::NewestFirst, all, 1, |s| {
                Ok(newest_of_event(&tx, s, &event, tenant.as_deref())?
                    .map(|row| (row.3, 0, row))
                    .into_iter()
                    .collect())
            })?;
            if let Some((_, _, (code, category, level, time_ns))) = newest.into_iter().next() {
                out.push(events::seen(event, code, category, &level, time_ns)?);
            }
        }
        Ok(out)
    }

    fn check_indexes(&mut self) -> Result<Vec<IndexFinding>, StoreError> {
        let (tx, segs) = self.snapshot()?;
        let mut out = Vec::new();
        for (s, p) in segs.iter().filter_map(|s| Some((s, s.postings()?))) {
            if let Some(detail) = postings::check(&tx, &s.table, &p)? {
                out.push(IndexFinding {
                    table: p.name,
                    detail,
                });
            }
        }
        Ok(out)
    }

    fn last_seq(&mut self) -> Result<i64, StoreError> {
        let (tx, segs) = self.snapshot()?;
        Ok(segments::head(&tx, &segs)
            .map_err(db_error)?
            .map_or(0, |(seq, _)| seq))
    }

    fn witness(&mut self, seqs: &[i64]) -> Result<Witness, StoreError> {
        self.require_key()?;
        // Read inside one transaction: one consistent snapshot.
        let tx = self.conn.transaction().map_err(db_error)?;
        let segs = segments::list(&tx, self.schema).map_err(db_error)?;
        let mut tx = Tx(tx, segs);
        let witness = core::witness(&mut tx, self.key.clone(), seqs)?;
        tx.0.finish().map_err(db_error)?;
        Ok(witness)
    }

    fn purge(
        &mut self,
        purge: &Purge,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<PurgeReport, StoreError> {
        self.require_key()?;
        if purge.tenant.is_none() {
            return core::purge(self, purge, progress);
        }
        // An erasure must not leave the erased bytes on free pages or in the WAL:
        // freed cells and pages are zeroed (every write zeroes the space it frees
        // inside the pages it writes anyway: `secure_delete = FAST`, set on open),
        // and the WAL is emptied once the erasure is in the database file.
        self.conn
            .pragma_update(None, "secure_delete", "ON")
            .map_err(db_error)?;
        let report = core::purge(self, purge, progress);
        let checkpoint = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(db_error);
        self.conn
            .pragma_update(None, "secure_delete", "FAST")
            .map_err(db_error)?;
        let report = report?;
        if checkpoint? != 0 {
            return Err(StoreError::Database(format!(
                "the erasure of {} records is committed, but a reader kept the write-ahead \
                 log from being emptied; the erased bytes stay in `{}-wal` until the next \
                 checkpoint (run the purge again when no reader is open)",
                report.erased,
                self.path.display()
            )));
        }
        Ok(report)
    }
}

impl Sink for Sqlite {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        self.insert(batch)
    }

    fn health(&mut self) -> Result<(), SinkError> {
        self.conn
            .query_row("SELECT count(*) FROM audit_meta", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(drop)
            .map_err(sink_error)
    }
}
