//! The embedded default store: one SQLite file (bundled SQLite, WAL mode).

mod schema;

use std::path::{Path, PathBuf};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row as SqlRow, TransactionBehavior, params};
use uuid::Uuid;

use super::columns::{Columns, column_text};
use super::core::{
    self, AnchorRow, ColumnSource, ERASED_COLUMNS, MetaTable, Purger, Snapshot, row_columns,
};
use super::events::{self, SeenEvent};
use super::link::{ChainKey, KeyState, Link};
use super::query::{Param, Placeholder, Sql, page_of};
use super::stored::{hashed_json, parse_record};
use super::verify::Row;
use super::{Page, Purge, PurgeReport, Query, Store, StoreError, Stored, Witness};
use crate::record::Record;
use crate::sinks::{Batch, Sink, SinkError};
use crate::time::Timestamp;

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
    conn: Connection,
    path: PathBuf,
    key: ChainKey,
    key_state: KeyState,
    name: String,
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

const INSERT: &str = "INSERT INTO audit_records (id, time_ns, event, code, category, level, \
     outcome, actor_id, actor_email, tenant, entity_type, entity_type_code, entity_id, \
     description, hash, link, record) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) \
     ON CONFLICT (id) DO NOTHING";

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
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_error)?;
        let sync = match options.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(db_error)?;
        conn.pragma_update(None, "cache_size", -(i64::from(options.cache_mib) * 1024))
            .map_err(db_error)?;
        // Space freed inside pages written anyway is zeroed, so that a tenant
        // purge leaves no copy of erased records in page slack.
        conn.pragma_update(None, "secure_delete", "FAST")
            .map_err(db_error)?;
        schema::migrate(&mut conn, options.schema_version)?;
        create_field_indexes(&conn, &options.index_fields)?;
        let key_state = core::check_key(&mut Meta(&conn), &options.key)?;
        Ok(Sqlite {
            conn,
            path: path.to_path_buf(),
            key: options.key,
            key_state,
            name: options.name,
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
    pub fn count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM audit_records", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(db_error)
    }

    fn require_key(&self) -> Result<(), StoreError> {
        self.key_state.require()
    }

    /// Inserts a batch in one transaction, after the store's last link. A record
    /// already stored (same id: a replayed batch) is skipped.
    fn insert(&mut self, batch: &Batch) -> Result<(), SinkError> {
        self.require_key()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sink_error)?;
        let mut prev = last_link(&tx)?;
        {
            let mut stmt = tx.prepare_cached(INSERT).map_err(sink_error)?;
            for item in batch {
                let (hash, json) = hashed_json(item.record(), item.json());
                let link = self.key.link(&prev, &hash);
                let c = Columns::of(item.record());
                let inserted = stmt
                    .execute(params![
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
                        hash.as_str(),
                        link.to_string(),
                        json,
                    ])
                    .map_err(sink_error)?;
                if inserted == 1 {
                    prev = link;
                }
            }
        }
        tx.commit().map_err(sink_error)
    }
}

/// The indexes of [`Query::field`]: the fields asked for and those the catalogs of
/// this binary's events mark `indexed = true` (missing ones only: no write when all
/// exist, so a reader opens a store it cannot write).
fn create_field_indexes(conn: &Connection, asked: &[String]) -> Result<(), StoreError> {
    for name in super::query::indexed_field_names(asked) {
        let exists: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1)",
                [format!("audit_field_{name}")],
                |r| r.get(0),
            )
            .map_err(db_error)?;
        if !exists {
            conn.execute_batch(&super::query::field_index_sql(Placeholder::Question, name))
                .map_err(db_error)?;
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

/// The link the next row follows: the last row's, else the last purge's anchor, else
/// the genesis link.
fn last_link(conn: &Connection) -> Result<Link, SinkError> {
    let last: Option<String> = conn
        .query_row(
            "SELECT link FROM audit_records ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(sink_error)?;
    let last = match last {
        Some(l) => Some(l),
        None => conn
            .query_row(
                "SELECT link FROM audit_anchor ORDER BY rowid DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sink_error)?,
    };
    match last {
        None => Ok(Link::GENESIS),
        Some(l) => l
            .parse()
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

fn to_sql_values(params: Vec<Param>) -> Vec<SqlValue> {
    params
        .into_iter()
        .map(|p| match p {
            Param::Int(i) => SqlValue::Integer(i),
            Param::Text(s) => SqlValue::Text(s),
        })
        .collect()
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

/// One read transaction: what [`core::witness`] walks.
struct Tx<'a>(rusqlite::Transaction<'a>);

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
        let sql = format!("SELECT {} FROM audit_records ORDER BY seq", row_columns(""));
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
                break;
            }
        }
        Ok(())
    }

    fn links(&mut self, each: &mut dyn FnMut(i64, &str, &str)) -> Result<(), StoreError> {
        let mut stmt = self
            .0
            .prepare("SELECT seq, hash, link FROM audit_records ORDER BY seq")
            .map_err(db_error)?;
        let mut rows = stmt.query([]).map_err(db_error)?;
        while let Some(r) = rows.next().map_err(db_error)? {
            each(r.int(0)?, &r.text(1)?, &r.text(2)?);
        }
        Ok(())
    }
}

impl Purger for Sqlite {
    fn prefix(&mut self, before_ns: i64) -> Result<(i64, u64), StoreError> {
        let keep_from: i64 = self
            .conn
            .query_row(
                "SELECT coalesce((SELECT seq FROM audit_records WHERE time_ns >= ?1 ORDER BY seq LIMIT 1),
                                 (SELECT max(seq) + 1 FROM audit_records), 0)",
                [before_ns],
                |r| r.get(0),
            )
            .map_err(db_error)?;
        let total: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM audit_records WHERE seq < ?1",
                [keep_from],
                |r| r.get(0),
            )
            .map_err(db_error)?;
        Ok((keep_from, total as u64))
    }

    fn remove_chunk(
        &mut self,
        keep_from: i64,
        chunk: usize,
        before_ns: i64,
        keep: &mut dyn FnMut(&[&str]) -> Result<(), StoreError>,
    ) -> Result<Option<(u64, i64)>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        let rows: Vec<(i64, String, String)> = tx
            .prepare_cached(
                "SELECT seq, link, record FROM audit_records WHERE seq < ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(db_error)?
            .query_map(params![keep_from, chunk as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(db_error)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db_error)?;
        let Some((last_seq, link, _)) = rows.last() else {
            return Ok(None);
        };
        keep(
            &rows
                .iter()
                .map(|(_, _, json)| json.as_str())
                .collect::<Vec<_>>(),
        )?;
        let n = rows.len() as i64;
        let purged_before: i64 = tx
            .query_row(
                "SELECT coalesce((SELECT purged FROM audit_anchor ORDER BY rowid DESC LIMIT 1), 0)",
                [],
                |r| r.get(0),
            )
            .map_err(db_error)?;
        tx.execute_batch("INSERT INTO audit_purging VALUES (1)")
            .map_err(db_error)?;
        tx.execute("DELETE FROM audit_records WHERE seq <= ?1", [last_seq])
            .map_err(db_error)?;
        tx.execute_batch("DELETE FROM audit_purging")
            .map_err(db_error)?;
        tx.execute(
            "INSERT INTO audit_anchor (seq, link, purged, before_ns, at_ns) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![last_seq, link, purged_before + n, before_ns, Timestamp::now().as_nanos()],
        )
        .map_err(db_error)?;
        let last_seq = *last_seq;
        tx.commit().map_err(db_error)?;
        Ok(Some((n as u64, last_seq)))
    }

    fn erasable(&mut self, tenant: &str, before_ns: i64) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM audit_records \
                 WHERE tenant = ?1 AND time_ns < ?2 AND erased_ns IS NULL",
                params![tenant, before_ns],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(db_error)
    }

    fn erase_chunk(
        &mut self,
        tenant: &str,
        before_ns: i64,
        chunk: usize,
        keep: &mut dyn FnMut(&[&str]) -> Result<(), StoreError>,
    ) -> Result<Option<(u64, i64)>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        let rows: Vec<(i64, String)> = tx
            .prepare_cached(
                "SELECT seq, record FROM audit_records \
                 WHERE tenant = ?1 AND time_ns < ?2 AND erased_ns IS NULL ORDER BY seq LIMIT ?3",
            )
            .map_err(db_error)?
            .query_map(params![tenant, before_ns, chunk as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(db_error)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db_error)?;
        let Some(&(last_seq, _)) = rows.last() else {
            return Ok(None);
        };
        keep(
            &rows
                .iter()
                .map(|(_, json)| json.as_str())
                .collect::<Vec<_>>(),
        )?;
        tx.execute_batch("INSERT INTO audit_purging VALUES (1)")
            .map_err(db_error)?;
        let n = tx
            .execute(
                &format!(
                    "UPDATE audit_records SET {ERASED_COLUMNS}, erased_ns = ?1 \
                     WHERE tenant = ?2 AND time_ns < ?3 AND erased_ns IS NULL AND seq <= ?4"
                ),
                params![Timestamp::now().as_nanos(), tenant, before_ns, last_seq],
            )
            .map_err(db_error)?;
        tx.execute_batch("DELETE FROM audit_purging")
            .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        Ok(Some((n as u64, last_seq)))
    }
}

impl Sqlite {
    /// The rows of a query's SQL: `(time_ns, seq, record)`.
    fn select(&mut self, sql: Sql) -> Result<Vec<(i64, i64, Record)>, StoreError> {
        let text = sql.statement("time_ns, seq, record");
        let mut stmt = self.conn.prepare_cached(&text).map_err(db_error)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(to_sql_values(sql.params)), |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(db_error)?;
        let mut out = Vec::new();
        for row in rows {
            let (time_ns, seq, json) = row.map_err(db_error)?;
            out.push((time_ns, seq, parse_record(seq, &json)?));
        }
        Ok(out)
    }
}

impl Store for Sqlite {
    fn query(&mut self, query: &Query) -> Result<Page, StoreError> {
        let rows = self.select(query.to_sql(Placeholder::Question, "LIKE"))?;
        Ok(page_of(query, rows))
    }

    fn get_in(&mut self, id: Uuid, tenant: Option<&str>) -> Result<Option<Record>, StoreError> {
        let tenant = tenant.map(|t| column_text(t, true).into_owned());
        self.conn
            .query_row(
                "SELECT seq, record FROM audit_records \
                 WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2) AND erased_ns IS NULL",
                params![id.hyphenated().to_string(), tenant],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()
            .map_err(db_error)?
            .map(|(seq, json)| parse_record(seq, &json))
            .transpose()
    }

    fn follow_matching(&mut self, after: i64, query: &Query) -> Result<Vec<Stored>, StoreError> {
        let sql = query.to_follow_sql(Placeholder::Question, "LIKE", after);
        Ok(self
            .select(sql)?
            .into_iter()
            .map(|(_, seq, record)| Stored { seq, record })
            .collect())
    }

    fn events_seen(&mut self, tenant: Option<&str>) -> Result<Vec<SeenEvent>, StoreError> {
        let tenant = tenant.map(|t| column_text(t, true).into_owned());
        let names: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare_cached(events::DISTINCT_EVENTS)
                .map_err(db_error)?;
            stmt.query_map([], |r| r.get(0))
                .map_err(db_error)?
                .collect::<Result<_, _>>()
                .map_err(db_error)?
        };
        let mut stmt = self
            .conn
            .prepare_cached(&events::newest_of_event(
                Placeholder::Question,
                tenant.is_some(),
            ))
            .map_err(db_error)?;
        let mut out = Vec::with_capacity(names.len());
        for event in names {
            let newest = |r: &SqlRow<'_>| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            };
            let row = match &tenant {
                Some(t) => stmt.query_row(params![event, t], newest),
                None => stmt.query_row(params![event], newest),
            }
            .optional()
            .map_err(db_error)?;
            if let Some((code, category, level, time_ns)) = row {
                out.push(events::seen(event, code, category, &level, time_ns)?);
            }
        }
        Ok(out)
    }

    fn last_seq(&mut self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT coalesce(max(seq), 0) FROM audit_records", [], |r| {
                r.get(0)
            })
            .map_err(db_error)
    }

    fn witness(&mut self, seqs: &[i64]) -> Result<Witness, StoreError> {
        self.require_key()?;
        // Read inside one transaction: one consistent snapshot.
        let mut tx = Tx(self.conn.transaction().map_err(db_error)?);
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
