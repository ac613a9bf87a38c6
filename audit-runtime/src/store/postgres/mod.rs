//! The production store: PostgreSQL, written with binary `COPY`, append-only
//! enforced by the database.

mod partitions;
mod roles;
mod schema;
mod seal;
mod tls;

pub use partitions::DEFAULT_PARTITION_ROWS;
pub use roles::{PostgresRoles, RolesReport};
pub use tls::PgTls;

use std::error::Error as _;
use std::time::{Duration, Instant};

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::error::SqlState;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, Config, GenericClient, NoTls, Statement, Transaction};
use uuid::Uuid;

use super::columns::{Columns, column_text};
use super::core::{self, AnchorRow, ColumnSource, Keep, MetaTable, Purger, Snapshot, row_columns};
use super::events::{self, SeenEvent};
use super::link::{ChainKey, KeyState, Link};
use super::query::{Param, Placeholder, Sql, page_of};
use super::stored::{hashed_json, parse_record};
use super::verify::Row;
use super::{Page, Purge, PurgeReport, Query, Store, StoreError, Stored, Witness};
use crate::record::Record;
use crate::record::hash::ChainHash;
use crate::sinks::{Batch, Item, Sink, SinkError};

/// Options of a [`Postgres`] store.
///
/// ```no_run
/// # fn main() -> Result<(), audit_runtime::store::StoreError> {
/// use audit_runtime::store::Postgres;
/// # let key = [0x5a_u8; 32];
/// let store = Postgres::options()
///     .schema("audit")
///     .hmac_key(key) // 32 random bytes or more, from your secret store
///     .connect("postgres://postgres@127.0.0.1/test")?;
/// # let _ = store; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    key: ChainKey,
    schema: Option<String>,
    name: String,
    tls: Option<PgTls>,
    index_fields: Vec<String>,
    partition_rows: u64,
    copy_connections: usize,
    schema_version: u32,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            key: ChainKey::none(),
            schema: None,
            name: "postgres".into(),
            tls: None,
            index_fields: Vec::new(),
            partition_rows: DEFAULT_PARTITION_ROWS,
            copy_connections: DEFAULT_COPY_CONNECTIONS,
            schema_version: schema::VERSION,
        }
    }
}

impl PostgresOptions {
    /// Links rows with HMAC-SHA-256 under `key` (see [`super::SqliteOptions::hmac_key`]).
    pub fn hmac_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.key = ChainKey::hmac(key);
        self
    }

    /// Keeps the store's tables in this schema (created if missing) instead of the
    /// connection's default (`public`).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The sink's name in metrics and spool paths (default `postgres`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Keeps an index on metadata field `name` for [`Query::field`] (besides the
    /// fields marked `indexed = true` in the catalogs of this binary's events). A
    /// missing index is created on connect, which needs a role that may create
    /// indexes (the owner); roles that only read or append connect once it exists.
    pub fn index_field(mut self, name: impl Into<String>) -> Self {
        self.index_fields.push(name.into());
        self
    }

    /// Positions per partition of the records table (default
    /// [`DEFAULT_PARTITION_ROWS`]): each partition has its own query indexes, kept
    /// small, and a purge drops whole partitions. Applies to the partitions this
    /// store makes; those made already keep their size.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), audit_runtime::store::StoreError> {
    /// use audit_runtime::store::Postgres;
    /// let store = Postgres::options()
    ///     .partition_rows(1_000_000)
    ///     .connect("postgres://postgres@127.0.0.1/test")?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn partition_rows(mut self, rows: u64) -> Self {
        self.partition_rows = rows.max(1);
        self
    }

    /// Connections a large batch is written over (default
    /// [`DEFAULT_COPY_CONNECTIONS`]; 1 writes every batch over one). A batch of at
    /// least [`PARALLEL_COPY_ROWS`] records is linked first, then cut into that many
    /// runs of consecutive positions, each sent with its own `COPY` in its own
    /// transaction at the same time, and the transactions commit in position order
    /// (none if any run failed): a failure leaves the chain whole, with at most a
    /// prefix of the batch stored, which a retry completes. The extra connections
    /// are opened at the first large batch; one that cannot be opened is done
    /// without.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), audit_runtime::store::StoreError> {
    /// use audit_runtime::store::Postgres;
    /// let store = Postgres::options()
    ///     .copy_connections(1)
    ///     .connect("postgres://postgres@127.0.0.1/test")?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn copy_connections(mut self, n: usize) -> Self {
        self.copy_connections = n.clamp(1, 16);
        self
    }

    /// Stops migrating at this schema version (to test migrations from older ones:
    /// such a store can be read and verified, not written).
    #[doc(hidden)]
    pub fn schema_version(mut self, v: u32) -> Self {
        self.schema_version = v;
        self
    }

    /// How the connection is protected, in place of the parameters' `sslmode` /
    /// `sslrootcert` (and `PGSSLMODE` / `PGSSLROOTCERT`); see [`PgTls`].
    pub fn tls(mut self, tls: PgTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The driver's configuration and the TLS setting of `params`.
    fn config(&self, params: &str) -> Result<(Config, PgTls), StoreError> {
        let (from_params, rest) = PgTls::from_params(params)?;
        let tls = self.tls.clone().unwrap_or(from_params);
        let mut config: Config = rest.parse().map_err(|e: postgres::Error| {
            StoreError::Database(format!("`{}`: {e}", redact_password(params)))
        })?;
        config.ssl_mode(tls.ssl_mode());
        Ok((config, tls))
    }

    /// Connects (`postgres://user@host/db` or `host=… user=… dbname=…`), creating
    /// and migrating the schema if needed.
    pub fn connect(self, params: &str) -> Result<Postgres, StoreError> {
        self.key.check_strength()?;
        let (mut config, tls) = self.config(params)?;
        if config.get_application_name().is_none() {
            // Names the store's sessions in pg_stat_activity.
            config.application_name(&format!("audit {}", self.name));
        }
        let mut store = Postgres {
            config,
            tls,
            client: None,
            key: self.key,
            key_state: KeyState::Usable,
            schema: self.schema,
            name: self.name,
            placement: partitions::Placement::new(self.partition_rows),
            statements: Statements::new(),
            helpers: Vec::new(),
            copy_connections: self.copy_connections,
            sealer: None,
        };
        let client = store.client()?;
        let version = schema::migrate(client, self.schema_version)?;
        if version >= schema::SEAL_APART {
            let (config, tls, schema) = (
                store.config.clone(),
                store.tls.clone(),
                store.schema.clone(),
            );
            store.sealer = Some(seal::Sealer::new(std::sync::Arc::new(move || {
                session(&config, &tls, schema.as_deref())
            })));
        }
        create_field_indexes(store.client()?, &self.index_fields)?;
        let key = store.key.clone();
        store.key_state = core::check_key(&mut Meta(store.client()?), &key)?;
        Ok(store)
    }
}

/// The production store: every record in one PostgreSQL table (the record as `json`
/// plus indexed filter columns), the same [`Query`] model, [`Store::verify`] and
/// [`Store::purge`] as [`super::Sqlite`], append-only enforced by a trigger. As a
/// [`Sink`] it writes each batch with binary `COPY` in one transaction, a large one
/// over several connections at once (see [`PostgresOptions::copy_connections`]); a
/// lost connection is re-established on the next write (the pipeline retries and
/// spools meanwhile), and a replayed batch is skipped by record id.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use audit_runtime::store::{Postgres, Query, Store};
/// let auditor = audit_runtime::Auditor::builder()
///     .sink(Postgres::connect("postgres://postgres@127.0.0.1/test")?)
///     .build()?;
/// let mut reader = Postgres::connect("postgres://postgres@127.0.0.1/test")?;
/// let page = reader.query(&Query::for_tenant("acme").limit(50))?;
/// # drop(auditor); Ok(()) }
/// ```
pub struct Postgres {
    config: Config,
    tls: PgTls,
    client: Option<Client>,
    key: ChainKey,
    key_state: KeyState,
    schema: Option<String>,
    name: String,
    placement: partitions::Placement,
    /// Statements prepared on the current connection, by their SQL (see [`prepared`]).
    statements: Statements,
    /// The connections besides `client` that large batches are copied over.
    helpers: Vec<Client>,
    /// `client` and the helpers, at most.
    copy_connections: usize,
    /// Seals partitions beside the writes (schema 8 on: `None` before).
    sealer: Option<seal::Sealer>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("schema", &self.schema)
            .field("key", &self.key)
            .field("tls", &self.tls)
            .field("connected", &self.client.is_some())
            .finish()
    }
}

/// A connection, encrypted as `tls` says.
fn connect(config: &Config, tls: &PgTls) -> Result<Client, StoreError> {
    match tls {
        PgTls::Disable => config.connect(NoTls),
        _ => config.connect(tls.connector()?),
    }
    .map_err(db_error)
}

/// A connection set up as the store's sessions are: its schema first in the
/// search path (the schema created if missing) and generic plans.
fn session(config: &Config, tls: &PgTls, schema: Option<&str>) -> Result<Client, StoreError> {
    let mut client = connect(config, tls)?;
    if let Some(schema) = schema {
        let quoted = quote_ident(schema);
        // Created only when missing: a least-privileged role may not create one.
        let exists = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                &[&schema],
            )
            .map_err(db_error)?
            .get::<_, bool>(0);
        if !exists {
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}"))
                .map_err(db_error)?;
        }
        client
            .batch_execute(&format!("SET search_path TO {quoted}"))
            .map_err(db_error)?;
    }
    // Plans made without the parameters' values, kept by named statements (see
    // `prepared`): a plan over `audit_records` costs ~0.15 ms per partition to make
    // (14 ms at 100 partitions, for a 0.2 ms page). Where values decide which
    // partitions a statement reads, they are written into its SQL (positions, never
    // text), so the plan covers only those partitions.
    client
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .map_err(db_error)?;
    Ok(client)
}

/// `s` as a quoted SQL identifier.
pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Connection parameters fit to print: the password of a URL
/// (`postgres://user:secret@host`) or of a key-value string (`password=secret`)
/// replaced by `***`.
///
/// ```
/// use audit_runtime::store::redact_password;
/// assert_eq!(
///     redact_password("postgres://app:s3cret@db/audit"),
///     "postgres://app:***@db/audit"
/// );
/// assert_eq!(redact_password("host=db password='x y' user=app"), "host=db password=*** user=app");
/// ```
pub fn redact_password(params: &str) -> String {
    if let Some(rest) = params
        .strip_prefix("postgres://")
        .or_else(|| params.strip_prefix("postgresql://"))
    {
        let scheme = &params[..params.len() - rest.len()];
        // The user-info ends at the last `@` before the path.
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let Some(at) = rest[..authority_end].rfind('@') else {
            return params.to_string();
        };
        let userinfo = &rest[..at];
        return match userinfo.find(':') {
            Some(colon) => format!("{scheme}{}:***{}", &userinfo[..colon], &rest[at..]),
            None => params.to_string(),
        };
    }
    // key=value pairs; a value may be single-quoted with backslash escapes.
    let mut out = String::with_capacity(params.len());
    let mut rest = params;
    while let Some(i) = rest.find("password") {
        let after = &rest[i + "password".len()..];
        let trimmed = after.trim_start();
        let at_word_start = i == 0 || rest[..i].ends_with(char::is_whitespace);
        let Some(value) = trimmed.strip_prefix('=').filter(|_| at_word_start) else {
            out.push_str(&rest[..i + "password".len()]);
            rest = after;
            continue;
        };
        let value = value.trim_start();
        let len = if let Some(quoted) = value.strip_prefix('\'') {
            let mut escaped = false;
            let mut end = quoted.len();
            for (j, c) in quoted.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '\'' => {
                        end = j + 1;
                        break;
                    }
                    _ => {}
                }
            }
            1 + end
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        out.push_str(&rest[..i]);
        out.push_str("password=***");
        rest = &value[len..];
    }
    out.push_str(rest);
    out
}

/// A database error as a store error (with the server's message, not just its kind).
fn db_error(e: postgres::Error) -> StoreError {
    StoreError::Database(describe(&e))
}

fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match e.source() {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    }
}

/// Whether a retry can help: connection trouble, server shutting down, lock or
/// serialization conflicts, a lock waited for too long, resources exhausted.
fn sink_error(e: postgres::Error) -> SinkError {
    let retryable = match e.code() {
        None => true,
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || c.starts_with("53")
                || c.starts_with("57")
                || c == "40001"
                || c == "40P01"
                || c == "55P03"
        }
    };
    let message = format!("postgres: {}", describe(&e));
    if retryable {
        SinkError::retryable(message)
    } else {
        SinkError::permanent(message)
    }
}

/// The record's JSON text, sent as PostgreSQL `json` exactly as written.
#[derive(Debug)]
struct RawJson<'a>(&'a str);

impl ToSql for RawJson<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON
    }

    to_sql_checked!();
}

/// The column types of a binary `COPY` of records, in [`COPY`]'s order.
const COPY_TYPES: [Type; 18] = [
    Type::INT8,
    Type::UUID,
    Type::INT8,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::JSON,
];

const COPY: &str = "COPY audit_records (seq, id, time_ns, event, code, category, level, outcome, \
     actor_id, actor_email, tenant, entity_type, entity_type_code, entity_id, description, \
     hash, link, record) FROM STDIN BINARY";

impl Postgres {
    /// Connects with default options (see [`PostgresOptions::connect`]).
    pub fn connect(params: &str) -> Result<Postgres, StoreError> {
        PostgresOptions::default().connect(params)
    }

    /// Options for connecting.
    pub fn options() -> PostgresOptions {
        PostgresOptions::default()
    }

    /// The connection, re-established if it was lost.
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            self.statements.clear();
            self.client = Some(session(&self.config, &self.tls, self.schema.as_deref())?);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// The extra connections a large batch is copied over (see
    /// [`PostgresOptions::copy_connections`]): lost ones are dropped and missing ones
    /// opened; one that cannot be opened is done without until the next batch.
    fn helpers(&mut self) -> &mut [Client] {
        self.helpers.retain(|c| !c.is_closed());
        while self.helpers.len() + 1 < self.copy_connections {
            match session(&self.config, &self.tls, self.schema.as_deref()) {
                Ok(c) => self.helpers.push(c),
                Err(_) => break,
            }
        }
        &mut self.helpers
    }

    /// A read-only REPEATABLE READ transaction: every read in it sees one snapshot.
    fn snapshot(&mut self) -> Result<Tx<'_>, StoreError> {
        self.client()?
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map(Tx)
            .map_err(db_error)
    }

    /// The connection and the statements prepared on it.
    fn session(&mut self) -> Result<(&mut Client, &mut Statements), StoreError> {
        self.client()?;
        Ok((
            self.client.as_mut().expect("connected above"),
            &mut self.statements,
        ))
    }

    /// Runs `sql` (a statement of fixed text) as a statement prepared once on this
    /// connection.
    fn query_cached(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, StoreError> {
        let (client, statements) = self.session()?;
        let statement = prepared(client, statements, sql).map_err(db_error)?;
        client.query(&statement, params).map_err(db_error)
    }

    /// The schema holding the store's tables, if not the connection's default.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Rows in the store.
    pub fn count(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self.query_cached("SELECT count(*) FROM audit_records", &[])?[0].get(0);
        Ok(n as u64)
    }

    fn insert(&mut self, batch: &Batch) -> Result<(), SinkError> {
        self.key_state.require()?;
        self.client().map_err(SinkError::from)?;
        if let Some(sealer) = &mut self.sealer {
            sealer.collect();
        }
        let parallel = batch.len() >= PARALLEL_COPY_ROWS && self.copy_connections > 1;
        if parallel {
            self.helpers();
        }
        let Postgres {
            client,
            helpers,
            statements,
            key,
            placement,
            ..
        } = self;
        let client = client.as_mut().expect("connected above");
        let result = match parallel && !helpers.is_empty() {
            true => insert_parallel(client, helpers, statements, key, placement, batch),
            false => insert(client, statements, key, placement, batch),
        }
        .map_err(sink_error);
        // A failed parallel write may leave its session lock held: the connection
        // goes (closing it releases the lock).
        if result.is_err() && (parallel || client.is_closed()) {
            self.client = None;
        }
        // A partition made (even by a batch that then failed: the parallel path
        // commits partitions first) seals the ones before it, beside what follows.
        if self.placement.take_made()
            && let Some(sealer) = &mut self.sealer
        {
            sealer.request();
        }
        result
    }

    /// Waits until the partitions this store made are sealed: each gets its
    /// actor, email and entity indexes (and loses its tail) on a connection of the
    /// store's own once the batch that made the next partition has committed, while
    /// the writes go on (docs/STORAGE.md). Dropping the store waits too. Returns the
    /// first failure of a seal since the last call; the next seal, by this store or
    /// another, seals what a failed one did not.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use audit_runtime::store::Postgres;
    /// let mut store = Postgres::connect("postgres://postgres@127.0.0.1/test")?;
    /// // … writes …
    /// store.wait_for_seals()?;
    /// # Ok(()) }
    /// ```
    pub fn wait_for_seals(&mut self) -> Result<(), StoreError> {
        match &mut self.sealer {
            Some(sealer) => sealer.wait(),
            None => Ok(()),
        }
    }
}

/// Batches from this many records up are copied over several connections (see
/// [`PostgresOptions::copy_connections`]); smaller ones are not worth the threads.
pub const PARALLEL_COPY_ROWS: usize = 1_000;

/// Connections a large batch is copied over unless
/// [`PostgresOptions::copy_connections`] says otherwise: two. On the benchmarks'
/// two-core machine a second backend lifts the write with every index by about a
/// tenth (BENCHMARKS.md, issue 19); more backends than cores only share them.
pub const DEFAULT_COPY_CONNECTIONS: usize = 2;

/// The advisory lock that serializes the store's writers (and its purges and
/// partition making, in the schema's functions).
const WRITER_LOCK: &str = "7317002";

/// The locks of a transaction that removes or rewrites rows (a purge, a tenant's
/// erasure): the writers' and the seals' (7317003, taken by `audit_seal`). A seal
/// builds indexes on older partitions, which is what those transactions touch; each
/// waiting for a table lock the other holds would be a deadlock, so they take turns.
const REMOVER_LOCKS: &str = "SELECT pg_advisory_xact_lock(7317002), pg_advisory_xact_lock(7317003)";

/// A row ready for `COPY`: its position, record, hash, JSON and link.
struct Ready<'a> {
    seq: i64,
    item: &'a Item,
    hash: ChainHash,
    json: std::borrow::Cow<'a, str>,
    link: Link,
}

/// Of `batch`, the records not stored yet (by id, first occurrence) linked after
/// `prev` at the positions after `seq`.
fn link_fresh<'a>(
    batch: &'a Batch,
    stored: &std::collections::HashSet<Uuid>,
    key: &ChainKey,
    mut seq: i64,
    mut prev: Link,
) -> Vec<Ready<'a>> {
    let mut seen = std::collections::HashSet::new();
    batch
        .iter()
        .filter(|i| !stored.contains(&i.record().id) && seen.insert(i.record().id))
        .map(|item| {
            let (hash, json) = hashed_json(item.record(), item.json());
            let link = key.link(&prev, &hash);
            prev = link;
            seq += 1;
            Ready {
                seq,
                item,
                hash,
                json,
                link,
            }
        })
        .collect()
}

/// In `tx`, under the writers' lock: the records of `batch` not stored yet, linked
/// after the last row, with the partitions that will hold them made.
fn linked<'a>(
    tx: &mut Transaction<'_>,
    statements: &mut Statements,
    key: &ChainKey,
    placement: &mut partitions::Placement,
    batch: &'a Batch,
) -> Result<Vec<Ready<'a>>, postgres::Error> {
    let (seq, prev) = head(tx, statements)?;
    let ids: Vec<Uuid> = batch.iter().map(|i| i.record().id).collect();
    let stored = placement.stored_ids(tx, seq + 1, &ids)?;
    let rows = link_fresh(batch, &stored, key, seq, prev);
    if let Some(last) = rows.last() {
        placement.extend(tx, last.seq)?;
    }
    Ok(rows)
}

/// One batch in one transaction: writers are serialized by an advisory lock (the
/// chain needs the last link), records already stored are skipped, the rest take
/// the next positions and go in with one binary `COPY` (into the partitions that
/// hold those positions, made first if missing).
fn insert(
    client: &mut Client,
    statements: &mut Statements,
    key: &ChainKey,
    placement: &mut partitions::Placement,
    batch: &Batch,
) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.batch_execute(&format!("SELECT pg_advisory_xact_lock({WRITER_LOCK})"))?;
    let rows = linked(&mut tx, statements, key, placement, batch)?;
    if !rows.is_empty() {
        copy_rows(&mut tx, &rows)?;
    }
    tx.commit()
}

/// One large batch over `client` and `helpers` at once. Under the writers' lock,
/// held by `client`'s session until every transaction has ended: the batch is
/// linked after the last row and its partitions made (committed, so that every
/// connection sees them); then each connection copies its run of consecutive
/// positions in a transaction of its own, and the transactions commit in
/// position order, none if a copy failed. A commit that fails leaves a prefix of
/// the batch stored, the chain whole: the retry skips what is stored.
fn insert_parallel(
    client: &mut Client,
    helpers: &mut [Client],
    statements: &mut Statements,
    key: &ChainKey,
    placement: &mut partitions::Placement,
    batch: &Batch,
) -> Result<(), postgres::Error> {
    client.batch_execute(&format!("SELECT pg_advisory_lock({WRITER_LOCK})"))?;
    let written = (|| {
        let mut tx = client.transaction()?;
        let rows = linked(&mut tx, statements, key, placement, batch)?;
        tx.commit()?;
        if rows.is_empty() {
            return Ok(());
        }
        copy_in_runs(client, helpers, &rows)
    })();
    let unlocked = client.batch_execute(&format!("SELECT pg_advisory_unlock({WRITER_LOCK})"));
    written.and(unlocked)
}

/// How long a copy of a large batch waits for a table lock before its batch fails
/// (retryably, nothing of it stored). The store waits for its copies on the client
/// side, where the server's deadlock detector cannot see: a session that waits for
/// one copy's transaction while holding a lock another copy needs (hand-made DDL,
/// say) would otherwise hold every connection, and the writers' lock, for good.
const COPY_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A transaction for one run of a large batch, waiting at most
/// [`COPY_LOCK_TIMEOUT`] for a lock.
fn copy_transaction(client: &mut Client) -> Result<Transaction<'_>, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = {}",
        COPY_LOCK_TIMEOUT.as_millis()
    ))?;
    Ok(tx)
}

/// `rows` (not empty) cut into runs of consecutive positions, one per connection,
/// copied at once and committed in position order; none commits if a copy failed.
fn copy_in_runs(
    client: &mut Client,
    helpers: &mut [Client],
    rows: &[Ready<'_>],
) -> Result<(), postgres::Error> {
    let runs: Vec<&[Ready<'_>]> = rows
        .chunks(rows.len().div_ceil(helpers.len() + 1))
        .collect();
    let (own, others) = runs.split_first().expect("rows make at least one run");
    std::thread::scope(|scope| {
        let copies: Vec<_> = helpers
            .iter_mut()
            .zip(others)
            .map(|(helper, run)| {
                scope.spawn(move || {
                    let mut tx = copy_transaction(helper)?;
                    copy_rows(&mut tx, run)?;
                    Ok::<_, postgres::Error>(tx)
                })
            })
            .collect();
        let mut first = copy_transaction(client)?;
        let copied = copy_rows(&mut first, own);
        let others: Vec<_> = copies
            .into_iter()
            .map(|c| c.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        // Any failure: every transaction is dropped, i.e. rolled back.
        copied?;
        let others = others.into_iter().collect::<Result<Vec<_>, _>>()?;
        first.commit()?;
        others.into_iter().try_for_each(|tx| tx.commit())
    })
}

/// `rows` in one binary `COPY`.
fn copy_rows(tx: &mut Transaction<'_>, rows: &[Ready<'_>]) -> Result<(), postgres::Error> {
    let sink = tx.copy_in(COPY)?;
    let mut writer = BinaryCopyInWriter::new(sink, &COPY_TYPES);
    for row in rows {
        let record = row.item.record();
        let c = Columns::of(record);
        let link = row.link.to_string();
        writer.write(&[
            &row.seq,
            &record.id,
            &c.time_ns,
            &c.event.as_ref(),
            &c.code,
            &c.category.as_ref(),
            &c.level.as_ref(),
            &c.outcome.as_ref(),
            &c.actor_id.as_deref(),
            &c.actor_email.as_deref(),
            &c.tenant.as_deref(),
            &c.entity_type.as_deref(),
            &c.entity_type_code,
            &c.entity_id.as_deref(),
            &c.description.as_ref(),
            &row.hash.as_str(),
            &link,
            &RawJson(&row.json),
        ])?;
    }
    writer.finish()?;
    Ok(())
}

/// Statements prepared on a connection, by their SQL.
type Statements = std::collections::HashMap<String, Statement>;

/// `sql` prepared once per connection: a named statement, whose plan PostgreSQL
/// keeps, rather than one planned again at every execution.
fn prepared(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    sql: &str,
) -> Result<Statement, postgres::Error> {
    if let Some(s) = statements.get(sql) {
        return Ok(s.clone());
    }
    let s = client.prepare(sql)?;
    statements.insert(sql.to_owned(), s.clone());
    Ok(s)
}

/// The position and link the next row follows: the last row's, else the last
/// purge's anchor, else none (0 and the genesis link).
fn head(
    tx: &mut Transaction<'_>,
    statements: &mut Statements,
) -> Result<(i64, Link), postgres::Error> {
    let statement = prepared(
        tx,
        statements,
        "SELECT seq, link FROM (
             (SELECT 0, seq, link FROM audit_records ORDER BY seq DESC LIMIT 1)
             UNION ALL
             (SELECT 1, seq, link FROM audit_anchor ORDER BY n DESC LIMIT 1)
         ) AS h (k, seq, link) ORDER BY k LIMIT 1",
    )?;
    let row = tx.query_opt(&statement, &[])?;
    Ok(row.map_or((0, Link::GENESIS), |r| {
        let link: String = r.get(1);
        (r.get(0), link.parse().unwrap_or(Link::GENESIS))
    }))
}

/// `audit_meta` through a client.
struct Meta<'a>(&'a mut Client);

impl MetaTable for Meta<'_> {
    fn init(&mut self, chain: &str, key_check: &str) -> Result<(), StoreError> {
        self.0
            .execute(
                "INSERT INTO audit_meta (key, value) VALUES ('chain', $1), ('key_check', $2)
                 ON CONFLICT (key) DO NOTHING",
                &[&chain, &key_check],
            )
            .map(drop)
            .map_err(db_error)
    }

    fn put(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.0
            .execute(
                "INSERT INTO audit_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )
            .map(drop)
            .map_err(db_error)
    }

    fn get(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .0
            .query_opt("SELECT value FROM audit_meta WHERE key = $1", &[&key])
            .map_err(db_error)?
            .map(|r| r.get(0)))
    }
}

fn read_anchor(client: &mut impl postgres::GenericClient) -> Result<Option<AnchorRow>, StoreError> {
    Ok(client
        .query_opt(
            "SELECT seq, link, purged, before_ns, at_ns FROM audit_anchor ORDER BY n DESC LIMIT 1",
            &[],
        )
        .map_err(db_error)?
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))))
}

/// The indexes of [`Query::field`] that are missing (see
/// [`PostgresOptions::index_field`]).
fn create_field_indexes(client: &mut Client, asked: &[String]) -> Result<(), StoreError> {
    for name in super::query::indexed_field_names(asked) {
        let index = format!("audit_field_{name}");
        let exists: bool = client
            .query_one(
                "SELECT to_regclass(quote_ident(current_schema()) || '.' || $1) IS NOT NULL",
                &[&index],
            )
            .map_err(db_error)?
            .get(0);
        if !exists {
            client
                .batch_execute(&super::query::field_index_sql(
                    Placeholder::Dollar,
                    "audit_records",
                    name,
                ))
                .map_err(|e| {
                    StoreError::Database(format!(
                        "the index of field `{name}` is missing and this role cannot create it \
                         (connect once as the schema's owner): {}",
                        db_error(e)
                    ))
                })?;
        }
    }
    Ok(())
}

impl ColumnSource for postgres::Row {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.try_get(i).map_err(db_error)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.try_get(i).map_err(db_error)
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.try_get(i).map_err(db_error)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.try_get(i).map_err(db_error)
    }
    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        self.try_get(i).map_err(db_error)
    }
}

/// One REPEATABLE READ transaction: what [`core::witness`] walks, through portals
/// (no whole table in memory).
struct Tx<'a>(Transaction<'a>);

impl Tx<'_> {
    /// Calls `each` for every row of `sql`, 10 000 at a time, until it says stop.
    fn each_row(
        &mut self,
        sql: &str,
        each: &mut dyn FnMut(&postgres::Row) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let portal = self.0.bind(sql, &[]).map_err(db_error)?;
        loop {
            let rows = self.0.query_portal(&portal, 10_000).map_err(db_error)?;
            if rows.is_empty() {
                return Ok(());
            }
            for r in &rows {
                if !each(r)? {
                    return Ok(());
                }
            }
        }
    }
}

impl Snapshot for Tx<'_> {
    fn store_id(&mut self) -> Result<Option<String>, StoreError> {
        Ok(self
            .0
            .query_opt("SELECT value FROM audit_meta WHERE key = 'store_id'", &[])
            .map_err(db_error)?
            .map(|r| r.get(0)))
    }

    fn anchor(&mut self) -> Result<Option<AnchorRow>, StoreError> {
        read_anchor(&mut self.0)
    }

    fn rows(&mut self, each: &mut dyn FnMut(&Row<'_>) -> bool) -> Result<(), StoreError> {
        let sql = format!(
            "SELECT {} FROM audit_records ORDER BY seq",
            row_columns(
                &core::AsText {
                    hash: "hash",
                    link: "link",
                    record: "record",
                },
                "::text"
            )
        );
        self.each_row(&sql, &mut |r| {
            Ok(each(&Row {
                seq: r.int(0)?,
                hash: r.get(1),
                link: r.get(2),
                json: r.get(3),
                columns: r.filter_columns()?,
                erased: r.flag(18)?,
            }))
        })
    }

    fn links(&mut self, each: &mut dyn FnMut(i64, &str, &str)) -> Result<(), StoreError> {
        self.each_row(
            "SELECT seq, hash, link FROM audit_records ORDER BY seq",
            &mut |r| {
                each(r.get(0), r.get(1), r.get(2));
                Ok(true)
            },
        )
    }
}

/// How long a purge step keeps trying to drop a partition that readers hold open.
const PURGE_BUSY_LIMIT: Duration = Duration::from_secs(30);

/// How a purge step ended.
enum Step {
    /// Rows were removed (how many, the last one's `seq`), or none was left.
    Done(Option<(u64, i64)>),
    /// A partition could not be dropped while readers had the table open; nothing
    /// was removed.
    Busy,
}

impl Postgres {
    /// One purge step in one transaction (see [`Purger::remove_chunk`]).
    fn remove_step(
        &mut self,
        keep_from: i64,
        chunk: usize,
        before_ns: i64,
        keep: Option<&mut Keep<'_>>,
    ) -> Result<Step, StoreError> {
        let (client, statements) = self.session()?;
        let mut tx = client.transaction().map_err(db_error)?;
        tx.batch_execute(REMOVER_LOCKS).map_err(db_error)?;
        // Without an export, the rows of a whole partition go at once (dropped,
        // not deleted); with one, `chunk` rows at a time through the export.
        let last_seq = match keep {
            None => partitions::whole_step(&mut tx, keep_from).map_err(db_error)?,
            Some(keep) => kept_chunk(
                &mut tx,
                statements,
                "SELECT seq, record::text FROM audit_records WHERE seq < $1 ORDER BY seq LIMIT $2",
                &[&keep_from, &(chunk as i64)],
                keep,
            )?,
        };
        let Some(last_seq) = last_seq else {
            return Ok(Step::Done(None));
        };
        purge_through(tx, last_seq, before_ns)
    }

    /// The rows of the oldest partition, when every one of them comes before
    /// `keep_from`, handed to `keep` `chunk` at a time from one snapshot (no lock
    /// held: rows before the cut change only by being purged or erased); the last
    /// one's position. `None` when that partition also holds rows to keep.
    fn export_partition(
        &mut self,
        keep_from: i64,
        chunk: usize,
        keep: &mut Keep<'_>,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.snapshot()?;
        let Some(p) = partitions::oldest(&mut tx.0).map_err(db_error)? else {
            return Ok(None);
        };
        if p.end_seq > keep_from {
            return Ok(None);
        }
        let sql = format!(
            "SELECT seq, record::text FROM audit_records WHERE {} ORDER BY seq",
            p.positions()
        );
        let (mut chunks, mut last) = (core::Chunks::new(keep, chunk), None);
        tx.each_row(&sql, &mut |r| {
            last = Some(r.get(0));
            chunks.push(r.get(1)).map(|()| true)
        })?;
        chunks.flush()?;
        tx.0.commit().map_err(db_error)?;
        Ok(last)
    }

    /// The removal of the rows up to `last_seq` after they were exported; nothing
    /// when another purge removed them meanwhile.
    fn remove_exported(&mut self, last_seq: i64, before_ns: i64) -> Result<Step, StoreError> {
        let mut tx = self.client()?.transaction().map_err(db_error)?;
        tx.batch_execute(REMOVER_LOCKS).map_err(db_error)?;
        let gone = tx
            .query_opt(
                &format!("SELECT 1 FROM audit_records WHERE seq = {last_seq}"),
                &[],
            )
            .map_err(db_error)?
            .is_none();
        if gone {
            return Ok(Step::Done(Some((0, last_seq))));
        }
        purge_through(tx, last_seq, before_ns)
    }
}

/// Removes the rows up to `last_seq` (all older than `before_ns`) through the
/// owner's function, which alone may delete rows and writes the anchor in the same
/// transaction; then commits.
fn purge_through(
    mut tx: Transaction<'_>,
    last_seq: i64,
    before_ns: i64,
) -> Result<Step, StoreError> {
    let n: i64 = match tx.query_one(
        "SELECT audit_purge_through($1, $2)",
        &[&last_seq, &before_ns],
    ) {
        Ok(row) => row.get(0),
        Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => return Ok(Step::Busy),
        Err(e) => return Err(db_error(e)),
    };
    tx.commit().map_err(db_error)?;
    Ok(Step::Done(Some((n as u64, last_seq))))
}

/// The rows of `select` (`seq, record::text`) handed to `keep` before the caller
/// removes or erases them; the last one's `seq`, or `None` when there is none.
fn kept_chunk(
    tx: &mut Transaction<'_>,
    statements: &mut Statements,
    select: &str,
    params: &[&(dyn ToSql + Sync)],
    keep: &mut dyn FnMut(&[&str]) -> Result<(), StoreError>,
) -> Result<Option<i64>, StoreError> {
    let select = prepared(tx, statements, select).map_err(db_error)?;
    let rows = tx.query(&select, params).map_err(db_error)?;
    let Some(last) = rows.last() else {
        return Ok(None);
    };
    keep(&rows.iter().map(|r| r.get::<_, &str>(1)).collect::<Vec<_>>())?;
    Ok(Some(last.get(0)))
}

impl Purger for Postgres {
    fn prefix(&mut self, before_ns: i64) -> Result<(i64, u64), StoreError> {
        // One snapshot for the walk over partitions.
        let mut tx = self.snapshot()?;
        let prefix = partitions::prefix(&mut tx.0, before_ns).map_err(db_error)?;
        tx.0.commit().map_err(db_error)?;
        Ok(prefix)
    }

    fn remove_chunk(
        &mut self,
        keep_from: i64,
        chunk: usize,
        before_ns: i64,
        mut keep: Option<&mut Keep<'_>>,
    ) -> Result<Option<(u64, i64)>, StoreError> {
        // With an export, a partition wholly before the cut is read out first,
        // outside the store's lock (it takes a while), then dropped in one step.
        let exported = match keep.as_deref_mut() {
            Some(keep) => self.export_partition(keep_from, chunk, keep)?,
            None => None,
        };
        // A step that drops a partition waits at most 200 ms for the table's readers
        // (writers queue behind it meanwhile), then gives way and is tried again.
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            let step = match exported {
                Some(last_seq) => self.remove_exported(last_seq, before_ns)?,
                None => self.remove_step(keep_from, chunk, before_ns, keep.as_deref_mut())?,
            };
            match step {
                Step::Done(removed) => return Ok(removed),
                Step::Busy if started.elapsed() < PURGE_BUSY_LIMIT => {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Step::Busy => {
                    return Err(StoreError::Database(format!(
                        "the purge could not drop a partition: readers kept `audit_records` \
                         open for {} s (a verification, an export?); nothing of that step was \
                         removed, run the purge again",
                        PURGE_BUSY_LIMIT.as_secs()
                    )));
                }
            }
        }
    }

    fn erasable(&mut self, tenant: &str, before_ns: i64) -> Result<u64, StoreError> {
        let n: i64 = self.query_cached(
            "SELECT count(*) FROM audit_records
             WHERE tenant = $1 AND time_ns < $2 AND erased_ns IS NULL",
            &[&tenant, &before_ns],
        )?[0]
            .get(0);
        Ok(n as u64)
    }

    fn erase_chunk(
        &mut self,
        tenant: &str,
        before_ns: i64,
        chunk: usize,
        keep: &mut dyn FnMut(&[&str]) -> Result<(), StoreError>,
    ) -> Result<Option<(u64, i64)>, StoreError> {
        let (client, statements) = self.session()?;
        let mut tx = client.transaction().map_err(db_error)?;
        tx.batch_execute(REMOVER_LOCKS).map_err(db_error)?;
        let Some(last_seq) = kept_chunk(
            &mut tx,
            statements,
            "SELECT seq, record::text FROM audit_records
             WHERE tenant = $1 AND time_ns < $2 AND erased_ns IS NULL ORDER BY seq LIMIT $3",
            &[&tenant, &before_ns, &(chunk as i64)],
            keep,
        )?
        else {
            return Ok(None);
        };
        // Only this function (run as the schema's owner) may update rows, and only
        // into the erased shape.
        let n: i64 = tx
            .query_one(
                "SELECT audit_erase_tenant($1, $2, $3)",
                &[&tenant, &before_ns, &last_seq],
            )
            .map_err(db_error)?
            .get(0);
        tx.commit().map_err(db_error)?;
        Ok(Some((n as u64, last_seq)))
    }
}

impl Postgres {
    /// The rows of a query's SQL: `(time_ns, seq, record)`.
    fn select(&mut self, sql: Sql) -> Result<Vec<(i64, i64, Record)>, StoreError> {
        let text = sql.statement("audit_records", "time_ns, seq, record::text");
        let params: Vec<Box<dyn ToSql + Sync>> = sql
            .params
            .into_iter()
            .map(|p| -> Box<dyn ToSql + Sync> {
                match p {
                    Param::Int(i) => Box::new(i),
                    Param::Text(s) => Box::new(s),
                }
            })
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p).collect();
        let rows = self.query_cached(&text, &refs)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let seq: i64 = r.get(1);
            out.push((r.get(0), seq, parse_record(seq, r.get(2))?));
        }
        Ok(out)
    }
}

impl Store for Postgres {
    fn query(&mut self, query: &Query) -> Result<Page, StoreError> {
        let rows = self.select(query.to_sql(Placeholder::Dollar, "ILIKE"))?;
        Ok(page_of(query, rows))
    }

    fn get_in(&mut self, id: Uuid, tenant: Option<&str>) -> Result<Option<Record>, StoreError> {
        let tenant = tenant.map(|t| column_text(t, true).into_owned());
        self.query_cached(
            "SELECT seq, record::text FROM audit_records
             WHERE id = $1 AND ($2::text IS NULL OR tenant = $2) AND erased_ns IS NULL",
            &[&id, &tenant],
        )?
        .first()
        .map(|r| parse_record(r.get(0), r.get(1)))
        .transpose()
    }

    fn follow_matching(&mut self, after: i64, query: &Query) -> Result<Vec<Stored>, StoreError> {
        let sql = query.to_follow_sql(Placeholder::Dollar, "ILIKE", after);
        Ok(self
            .select(sql)?
            .into_iter()
            .map(|(_, seq, record)| Stored { seq, record })
            .collect())
    }

    fn events_seen(&mut self, tenant: Option<&str>) -> Result<Vec<SeenEvent>, StoreError> {
        let tenant = tenant.map(|t| column_text(t, true).into_owned());
        let newest =
            events::newest_of_event(Placeholder::Dollar, "audit_records", tenant.is_some());
        let names: Vec<String> = self
            .query_cached(&events::distinct_events("audit_records"), &[])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut out = Vec::with_capacity(names.len());
        for event in names {
            let rows = match &tenant {
                Some(t) => self.query_cached(&newest, &[&event, t]),
                None => self.query_cached(&newest, &[&event]),
            }?;
            if let Some(r) = rows.first() {
                out.push(events::seen(event, r.get(0), r.get(1), r.get(2), r.get(3))?);
            }
        }
        Ok(out)
    }

    fn last_seq(&mut self) -> Result<i64, StoreError> {
        Ok(self.query_cached("SELECT coalesce(max(seq), 0) FROM audit_records", &[])?[0].get(0))
    }

    fn witness(&mut self, seqs: &[i64]) -> Result<Witness, StoreError> {
        self.key_state.require()?;
        let key = self.key.clone();
        // One snapshot for the whole walk.
        let mut tx = self.snapshot()?;
        let witness = core::witness(&mut tx, key, seqs)?;
        tx.0.commit().map_err(db_error)?;
        Ok(witness)
    }

    fn purge(
        &mut self,
        purge: &Purge,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<PurgeReport, StoreError> {
        self.key_state.require()?;
        core::purge(self, purge, progress)
    }
}

impl Sink for Postgres {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        self.insert(batch)
    }

    fn health(&mut self) -> Result<(), SinkError> {
        let client = self.client().map_err(SinkError::from)?;
        let result = client
            .simple_query("SELECT 1")
            .map(drop)
            .map_err(sink_error);
        if result.is_err() {
            self.client = None;
        }
        result
    }
}
