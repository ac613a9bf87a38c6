//! `audit query | show | verify | purge | tail`: reading a store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use std::sync::atomic::AtomicBool;

use audit_runtime::ingest::Ingest;
use audit_runtime::sinks::NatsConnection;
use audit_runtime::sinks::Sink;
use audit_runtime::store::{
    Checkpoint, CheckpointKey, Follower, Order, Postgres, PublicKey, Purge, Query, Sqlite, Store,
    StoreError,
};
use audit_runtime::{Level, OutcomeKind, Timestamp};
use clap::{Args, ValueEnum};

use crate::render;

/// Which store, and its chain key.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The store: a SQLite file, or a PostgreSQL URL (`postgres://user@host/db`).
    #[arg(
        long,
        env = "AUDIT_DB",
        hide_env_values = true,
        default_value = "audit.db"
    )]
    db: String,
    /// Name of the environment variable holding the chain's HMAC key, for keyed stores.
    #[arg(long, default_value = "AUDIT_HMAC_KEY")]
    key_env: String,
    /// A file holding the chain's HMAC key (its bytes, a trailing newline removed),
    /// in place of the environment variable. Never the key itself on the command line.
    #[arg(long, conflicts_with = "key_env")]
    key_file: Option<PathBuf>,
}

/// The HMAC key from `--key-file`, else from the variable `--key-env` names.
fn hmac_key(file: Option<&Path>, env: &str) -> Result<Option<Vec<u8>>, String> {
    match file {
        Some(path) => {
            let mut key = std::fs::read(path).map_err(|e| format!("`{}`: {e}", path.display()))?;
            while key.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                key.pop();
            }
            Ok(Some(key))
        }
        None => Ok(std::env::var_os(env)
            .filter(|k| !k.is_empty())
            .map(|k| k.into_encoded_bytes())),
    }
}

impl StoreArgs {
    /// The store as messages name it: a URL's password is never printed.
    fn shown(&self) -> String {
        audit_runtime::store::redact_password(&self.db)
    }

    /// Opens an existing store (a SQLite file is never created: a mistyped path is
    /// an error), or connects to a PostgreSQL one.
    pub fn open(&self) -> Result<Box<dyn Store>, String> {
        self.open_send().map(|s| s as Box<dyn Store>)
    }

    /// [`StoreArgs::open`], for a store used from other threads (`audit serve`).
    pub fn open_send(&self) -> Result<Box<dyn Store + Send>, String> {
        let key = hmac_key(self.key_file.as_deref(), &self.key_env)?;
        if self.db.starts_with("postgres://") || self.db.starts_with("postgresql://") {
            let mut options = Postgres::options();
            if let Some(key) = key {
                options = options.hmac_key(key);
            }
            return options
                .connect(&self.db)
                .map(|s| Box::new(s) as Box<dyn Store + Send>)
                .map_err(|e| e.to_string());
        }
        let path = PathBuf::from(&self.db);
        if !path.exists() {
            return Err(format!("no store at `{}`", path.display()));
        }
        let mut options = Sqlite::options();
        if let Some(key) = key {
            options = options.hmac_key(key);
        }
        options
            .open(&path)
            .map(|s| Box::new(s) as Box<dyn Store + Send>)
            .map_err(|e| format!("`{}`: {e}", path.display()))
    }
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum OutcomeArg {
    Success,
    Failure,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum LevelArg {
    Info,
    Warn,
    Error,
}

impl LevelArg {
    fn level(self) -> Level {
        match self {
            LevelArg::Info => Level::Info,
            LevelArg::Warn => Level::Warn,
            LevelArg::Error => Level::Error,
        }
    }
}

/// The filters of `audit query` (and `audit tail`).
#[derive(Args, Debug, Clone)]
pub struct QueryArgs {
    /// At or after: a duration ago (`2d`, `90min`) or an RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Before: a duration ago or an RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
    /// Event name (repeat for several).
    #[arg(long = "event")]
    events: Vec<String>,
    /// Category (repeat for several).
    #[arg(long = "category")]
    categories: Vec<String>,
    /// Event code (repeat for several).
    #[arg(long = "code")]
    codes: Vec<u32>,
    /// Actor id or email.
    #[arg(long)]
    actor: Option<String>,
    /// Only this tenant's records.
    #[arg(long)]
    tenant: Option<String>,
    /// Entity `type` or `type:id`.
    #[arg(long)]
    entity: Option<String>,
    /// Outcome.
    #[arg(long, value_enum)]
    outcome: Option<OutcomeArg>,
    /// Level (repeat for several).
    #[arg(long = "level", value_enum)]
    levels: Vec<LevelArg>,
    /// Text in the description.
    #[arg(long)]
    text: Option<String>,
    /// A metadata field's value, `name=value` (repeat for several; fields marked
    /// `indexed = true` in the catalog are served by an index).
    #[arg(long = "field", value_name = "NAME=VALUE")]
    fields: Vec<String>,
    /// The records of one bulk call: its `operation.id`.
    #[arg(long, value_name = "ID")]
    operation: Option<uuid::Uuid>,
}

/// A time argument: `2d` (ago) or an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(Timestamp::from(SystemTime::now() - d));
    }
    s.parse::<Timestamp>()
        .map_err(|_| format!("`{s}` is neither a duration (2d, 12h) nor an RFC 3339 time"))
}

impl QueryArgs {
    fn to_query(&self) -> Result<Query, String> {
        let mut q = match &self.tenant {
            Some(t) => Query::for_tenant(t),
            None => Query::all(),
        };
        if let Some(s) = &self.since {
            q = q.since(parse_time(s)?);
        }
        if let Some(s) = &self.until {
            q = q.until(parse_time(s)?);
        }
        q = q
            .events(self.events.iter().cloned())
            .categories(self.categories.iter().cloned())
            .codes(self.codes.iter().copied())
            .levels(self.levels.iter().map(|l| l.level()));
        if let Some(a) = &self.actor {
            q = q.actor(a);
        }
        if let Some(e) = &self.entity {
            q = match e.split_once(':') {
                Some((kind, id)) => q.entity(kind, Some(id)),
                None => q.entity_type(e),
            };
        }
        for f in &self.fields {
            let Some((name, value)) = f.split_once('=') else {
                return Err(format!("`--field {f}`: write it as name=value"));
            };
            q = q.field(name, value);
        }
        if let Some(o) = self.outcome {
            q = q.outcome(match o {
                OutcomeArg::Success => OutcomeKind::Success,
                OutcomeArg::Failure => OutcomeKind::Failure,
            });
        }
        if let Some(t) = &self.text {
            q = q.text(t);
        }
        if let Some(id) = self.operation {
            q = q.operation(id);
        }
        Ok(q)
    }
}

/// `audit query`.
#[derive(Args, Debug)]
pub struct QueryCmd {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    filters: QueryArgs,
    /// Records per page.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Continue after this cursor (printed at the end of the previous page).
    #[arg(long)]
    cursor: Option<String>,
    /// Oldest first.
    #[arg(long)]
    oldest_first: bool,
    /// JSON Lines (one record per line) instead of a table.
    #[arg(long)]
    json: bool,
}

/// `audit show`.
#[derive(Args, Debug)]
pub struct ShowCmd {
    /// The record's id.
    id: String,
    #[command(flatten)]
    store: StoreArgs,
    /// Only if it is this tenant's record (what a tenant-facing tool passes).
    #[arg(long)]
    tenant: Option<String>,
    /// The record as JSON.
    #[arg(long)]
    json: bool,
}

/// `audit verify`.
#[derive(Args, Debug)]
pub struct VerifyCmd {
    #[command(flatten)]
    store: StoreArgs,
    /// Signed checkpoints (`audit checkpoint`) the store must still hold (repeat for
    /// several): removal of the newest rows, a rewritten history and another store are
    /// each named (exit 1).
    #[arg(long = "checkpoint", requires = "public_key")]
    checkpoints: Vec<PathBuf>,
    /// The trusted public key of the checkpoints (`audit keygen` writes it).
    #[arg(long)]
    public_key: Option<PathBuf>,
}

/// `audit checkpoint`.
#[derive(Args, Debug)]
pub struct CheckpointCmd {
    #[command(flatten)]
    store: StoreArgs,
    /// The secret signing key (`audit keygen`); keep it away from the database.
    #[arg(long)]
    key: PathBuf,
    /// Write the checkpoint here (default: standard output).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

/// `audit keygen`.
#[derive(Args, Debug)]
pub struct KeygenCmd {
    /// The secret key file to create (never overwritten; mode 0600); the public key
    /// goes beside it with `.pub` appended.
    #[arg(long, short)]
    out: PathBuf,
}

/// `audit purge`.
#[derive(Args, Debug)]
pub struct PurgeCmd {
    #[command(flatten)]
    store: StoreArgs,
    /// Remove records older than this (`90d`) or before this RFC 3339 time (with
    /// `--tenant`: erase only that tenant's records older than this).
    #[arg(long, required_unless_present = "tenant")]
    older_than: Option<String>,
    /// Erase this tenant's records (all of them, or those older than
    /// `--older-than`) wherever they are: each row keeps its place in the chain and
    /// loses its content, so the store still verifies.
    #[arg(long)]
    tenant: Option<String>,
    /// Append the removed (or erased) records to this JSON Lines file first.
    #[arg(long)]
    export: Option<PathBuf>,
}

/// `audit tail`.
#[derive(Args, Debug)]
pub struct TailCmd {
    #[command(flatten)]
    store: StoreArgs,
    /// Only this tenant's records.
    #[arg(long)]
    tenant: Option<String>,
    /// Only these events (repeat for several).
    #[arg(long = "event")]
    events: Vec<String>,
    /// Only these levels (repeat for several).
    #[arg(long = "level", value_enum)]
    levels: Vec<LevelArg>,
    /// Print this many existing records first.
    #[arg(long, short = 'n', default_value_t = 10)]
    lines: usize,
    /// How often to look for new records.
    #[arg(long, default_value = "500ms")]
    interval: humantime::Duration,
    /// JSON Lines instead of a table.
    #[arg(long)]
    json: bool,
    /// Stop after this long (default: follow until interrupted).
    #[arg(long)]
    for_: Option<humantime::Duration>,
}

/// `audit ingest`.
#[derive(Args, Debug)]
pub struct IngestCmd {
    /// The NATS server.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    from: String,
    /// The JetStream stream.
    #[arg(long, default_value = "AUDIT")]
    stream: String,
    /// The durable consumer (shared by every ingest process of one store).
    #[arg(long, default_value = "audit-ingest")]
    consumer: String,
    #[command(flatten)]
    target: TargetArgs,
    /// Records per store transaction.
    #[arg(long, default_value_t = audit_runtime::ingest::DEFAULT_INGEST_BATCH)]
    batch: usize,
    /// How long a delivered, unacknowledged batch waits before redelivery.
    #[arg(long, default_value = "30s")]
    ack_wait: humantime::Duration,
    /// Exit once no record arrived for this long (default: run until killed).
    #[arg(long)]
    exit_when_idle: Option<humantime::Duration>,
    /// Where poison messages (not records, or refused by the store for good) are
    /// kept with the reason (default: a directory per process under the user's
    /// state directory).
    #[arg(long)]
    dead_letters: Option<std::path::PathBuf>,
    /// Trust this certificate authority (PEM) for the NATS server, and require TLS.
    #[arg(long)]
    nats_ca: Option<std::path::PathBuf>,
    /// Authenticate to NATS with this `.creds` file (user JWT and nkey seed).
    #[arg(long)]
    nats_creds: Option<std::path::PathBuf>,
    /// Authenticate to NATS with the nkey seed in this file.
    #[arg(long)]
    nats_nkey: Option<std::path::PathBuf>,
}

pub(crate) fn finish(result: Result<ExitCode, String>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn store_err(e: StoreError) -> String {
    e.to_string()
}

pub fn query(cmd: QueryCmd) -> ExitCode {
    finish((|| {
        let mut store = cmd.store.open()?;
        let mut q = cmd.filters.to_query()?.limit(cmd.limit);
        if cmd.oldest_first {
            q = q.order(Order::OldestFirst);
        }
        if let Some(c) = &cmd.cursor {
            q = q.after(c.parse().map_err(store_err)?);
        }
        let page = store.query(&q).map_err(store_err)?;
        let mut out = std::io::stdout().lock();
        if cmd.json {
            render::json_lines(&mut out, &page.records)
        } else {
            render::table(&mut out, &page.records)
        }
        .map_err(|e| e.to_string())?;
        if let Some(next) = page.next {
            eprintln!("more: {}", next_page_command(&next.to_string()));
        }
        Ok(ExitCode::SUCCESS)
    })())
}

/// The one record whose id starts with `prefix` (at least 8 hex digits: record ids
/// are UUIDv7s, whose first 12 digits are their millisecond, so the prefix names a
/// time window to look in).
fn by_prefix(
    store: &mut dyn Store,
    prefix: &str,
    tenant: Option<&str>,
) -> Result<uuid::Uuid, String> {
    let digits: String = prefix.chars().filter(|c| *c != '-').collect();
    if digits.len() < 8 || digits.len() > 32 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "`{prefix}` is not a record id or a prefix of one (8 hex digits or more)"
        ));
    }
    let digits = digits.to_ascii_lowercase();
    let ms = |pad: char| {
        let mut t: String = digits.chars().take(12).collect();
        while t.len() < 12 {
            t.push(pad);
        }
        i64::from_str_radix(&t, 16).unwrap_or(0)
    };
    let (from, to) = (ms('0'), ms('f') + 1);
    let scope = || match tenant {
        Some(t) => Query::for_tenant(t),
        None => Query::all(),
    };
    let window = scope()
        .since(Timestamp::from_nanos(from.saturating_mul(1_000_000)))
        .until(Timestamp::from_nanos(to.saturating_mul(1_000_000)));
    let mut found = matching(store, window, &digits)?;
    if found.is_empty() {
        // A record whose id was not made from its own time (imported, or written by
        // hand): look through every record.
        found = matching(store, scope(), &digits)?;
    }
    match found.as_slice() {
        [id] => Ok(*id),
        [] => Err(format!("no record id starts with `{prefix}`")),
        _ => Err(format!(
            "more than one record id starts with `{prefix}`: give more digits"
        )),
    }
}

/// The ids (two at most) of the records of `q` that start with `digits`.
fn matching(store: &mut dyn Store, q: Query, digits: &str) -> Result<Vec<uuid::Uuid>, String> {
    let mut q = q.limit(1000);
    let mut found = Vec::new();
    loop {
        let page = store.query(&q).map_err(store_err)?;
        found.extend(
            page.records
                .iter()
                .map(|r| r.id)
                .filter(|id| id.simple().to_string().starts_with(digits)),
        );
        match page.next {
            Some(c) if found.len() < 2 => q = q.after(c),
            _ => return Ok(found),
        }
    }
}

pub fn show(cmd: ShowCmd) -> ExitCode {
    finish((|| {
        let mut store = cmd.store.open()?;
        let id = match cmd.id.parse::<uuid::Uuid>() {
            Ok(id) => id,
            Err(_) => by_prefix(&mut *store, &cmd.id, cmd.tenant.as_deref())?,
        };
        let Some(record) = store.get_in(id, cmd.tenant.as_deref()).map_err(store_err)? else {
            return Err(match &cmd.tenant {
                Some(t) => format!("no record {id} of tenant `{t}` in `{}`", cmd.store.shown()),
                None => format!("no record {id} in `{}`", cmd.store.shown()),
            });
        };
        let mut out = std::io::stdout().lock();
        if cmd.json {
            render::json_lines(&mut out, std::slice::from_ref(&record))
        } else {
            render::record(&mut out, &record, render::colour())
        }
        .map_err(|e| e.to_string())?;
        Ok(ExitCode::SUCCESS)
    })())
}

pub fn verify(cmd: VerifyCmd) -> ExitCode {
    finish((|| {
        if crate::verify_lines::is_json_lines(Path::new(&cmd.store.db)) {
            return crate::verify_lines::verify_file(Path::new(&cmd.store.db));
        }
        let checkpoints = match &cmd.public_key {
            Some(key) => read_checkpoints(&cmd.checkpoints, key)?,
            None => Vec::new(),
        };
        let mut store = cmd.store.open()?;
        let (v, findings) = store.check_checkpoints(&checkpoints).map_err(store_err)?;
        println!("{} rows, chain {}", v.rows, v.algorithm);
        if let Some(a) = &v.anchor {
            println!(
                "purged: {} records (last purge at {}, before {}); the chain continues from row {}",
                a.purged, a.at, a.before, a.seq
            );
        }
        println!(
            "producer chains: {} started here, {} records continue a chain from outside the store",
            v.producers, v.continued
        );
        if v.erased > 0 {
            println!(
                "erased: {} records (tenant purges; their links are checked, their content is gone)",
                v.erased
            );
        }
        // What the store derives from the rows (SQLite's postings), made again
        // from the rows the chain vouches for.
        let mut broken = false;
        for finding in store.check_indexes().map_err(store_err)? {
            broken = true;
            println!("BROKEN: {finding}");
        }
        for ((path, cp), finding) in cmd.checkpoints.iter().zip(&checkpoints).zip(&findings) {
            broken |= !finding.holds();
            let verdict = if finding.holds() { "" } else { "BROKEN: " };
            println!(
                "checkpoint {} (row {}, {}): {verdict}{finding}",
                path.display(),
                cp.seq,
                cp.time
            );
        }
        match &v.first_break {
            None if !broken => {
                println!("intact");
                Ok(ExitCode::SUCCESS)
            }
            None => Ok(ExitCode::from(1)),
            Some(b) => {
                println!("BROKEN: {b}");
                Ok(ExitCode::from(1))
            }
        }
    })())
}

/// Reads and opens each checkpoint file with the trusted public key.
fn read_checkpoints(paths: &[PathBuf], key: &Path) -> Result<Vec<Checkpoint>, String> {
    let key = PublicKey::read(key).map_err(|e| format!("`{}`: {e}", key.display()))?;
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("`{}`: {e}", p.display()))?;
            Checkpoint::open(&text, &key).map_err(|e| format!("`{}`: {e}", p.display()))
        })
        .collect()
}

pub fn checkpoint(cmd: CheckpointCmd) -> ExitCode {
    finish((|| {
        let key =
            CheckpointKey::read(&cmd.key).map_err(|e| format!("`{}`: {e}", cmd.key.display()))?;
        let mut store = cmd.store.open()?;
        let (checkpoint, _) = store.checkpoint().map_err(store_err)?;
        let text = checkpoint.sign(&key);
        match &cmd.out {
            Some(path) => {
                std::fs::write(path, &text).map_err(|e| format!("`{}`: {e}", path.display()))?;
                eprintln!(
                    "checkpoint of store {} at row {} ({} rows) written to {}",
                    checkpoint.store,
                    checkpoint.seq,
                    checkpoint.rows,
                    path.display()
                );
            }
            None => print!("{text}"),
        }
        Ok(ExitCode::SUCCESS)
    })())
}

pub fn keygen(cmd: KeygenCmd) -> ExitCode {
    finish((|| {
        let key = CheckpointKey::generate().map_err(|e| e.to_string())?;
        let public = cmd.out.with_file_name(format!(
            "{}.pub",
            cmd.out
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        if public.exists() {
            return Err(format!(
                "`{}` exists; it is never overwritten",
                public.display()
            ));
        }
        key.write(&cmd.out)
            .map_err(|e| format!("`{}`: {e}", cmd.out.display()))?;
        std::fs::write(&public, key.public().to_text())
            .map_err(|e| format!("`{}`: {e}", public.display()))?;
        println!(
            "key {} written: secret {} (keep it away from the database), public {}",
            key.public().id(),
            cmd.out.display(),
            public.display()
        );
        Ok(ExitCode::SUCCESS)
    })())
}

pub fn purge(cmd: PurgeCmd) -> ExitCode {
    finish((|| {
        let mut store = cmd.store.open()?;
        let mut request = match &cmd.older_than {
            Some(t) => Purge::older_than(parse_time(t)?),
            None => Purge::everything(),
        };
        if let Some(t) = &cmd.tenant {
            request = request.tenant(t);
        }
        if let Some(e) = &cmd.export {
            request = request.export(e);
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} records {msg}")
                .expect("a valid template"),
        );
        let report = store
            .purge(&request, &mut |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .map_err(store_err)?;
        bar.finish_and_clear();
        let age = match &cmd.older_than {
            Some(t) => format!(" older than {}", parse_time(t)?),
            None => String::new(),
        };
        match &cmd.tenant {
            Some(t) => println!("erased {} records of tenant `{t}`{age}", report.erased),
            None => println!("removed {} records{age}", report.removed),
        }
        if let Some(e) = &cmd.export {
            println!("exported {} records to {}", report.exported, e.display());
        }
        Ok(ExitCode::SUCCESS)
    })())
}

/// This very command line with `--cursor <next>` in place of any cursor it had,
/// quoted for a POSIX shell.
fn next_page_command(next: &str) -> String {
    let mut args: Vec<String> = std::env::args().collect();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--cursor" {
            args.drain(i..(i + 2).min(args.len()));
        } else if args[i].starts_with("--cursor=") {
            args.remove(i);
        } else {
            i += 1;
        }
    }
    if let Some(first) = args.first_mut() {
        // The program as the user would type it.
        if let Some(name) = std::path::Path::new(first.as_str()).file_name() {
            *first = name.to_string_lossy().into_owned();
        }
    }
    args.push("--cursor".into());
    args.push(next.to_owned());
    args.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub fn tail(cmd: TailCmd) -> ExitCode {
    finish((|| {
        let mut store = cmd.store.open()?;
        let mut out = std::io::stdout().lock();
        let levels: Vec<Level> = cmd.levels.iter().map(|l| l.level()).collect();
        let query = match &cmd.tenant {
            Some(t) => Query::for_tenant(t),
            None => Query::all(),
        }
        .events(cmd.events.iter().cloned())
        .levels(levels);
        let last = store
            .query(&query.clone().limit(cmd.lines.max(1)))
            .map_err(store_err)?;
        let mut recent = last.records;
        recent.reverse();
        if cmd.lines > 0 {
            print_records(&mut out, &recent, cmd.json)?;
        }
        // Follow by position in the store, not by time: rows from other producers
        // may carry earlier times than rows already shown.
        let mut follower = Follower::from_now(&mut *store, query.limit(1000)).map_err(store_err)?;
        let deadline = cmd
            .for_
            .map(|d| std::time::Instant::now() + Duration::from(d));
        while deadline.is_none_or(|d| std::time::Instant::now() < d) {
            let rows = follower.next(&mut *store).map_err(store_err)?;
            if rows.is_empty() {
                std::thread::sleep(cmd.interval.into());
            } else {
                let records: Vec<_> = rows.into_iter().map(|s| s.record).collect();
                print_records(&mut out, &records, cmd.json)?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })())
}

fn print_records(
    out: &mut impl std::io::Write,
    records: &[audit_runtime::Record],
    json: bool,
) -> Result<(), String> {
    if json {
        render::json_lines(out, records)
    } else {
        render::rows(out, records)
    }
    .and_then(|()| out.flush())
    .map_err(|e| e.to_string())
}

/// A store to write into (`audit ingest`, `audit relay`): a SQLite file (created if
/// missing) or a PostgreSQL URL, keyed if a key is given.
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// The store: a SQLite file (created if missing) or a PostgreSQL URL.
    #[arg(long)]
    to: String,
    /// Name of the environment variable holding the store chain's HMAC key.
    #[arg(long, default_value = "AUDIT_HMAC_KEY")]
    key_env: String,
    /// A file holding the store chain's HMAC key, in place of the environment variable.
    #[arg(long, conflicts_with = "key_env")]
    key_file: Option<PathBuf>,
    /// Rows per segment of a SQLite store (default 20 000; docs/STORAGE.md).
    #[arg(long)]
    segment_rows: Option<usize>,
    /// Positions per partition a PostgreSQL store makes (default 50 000;
    /// docs/STORAGE.md).
    #[arg(long)]
    partition_rows: Option<u64>,
}

impl TargetArgs {
    /// Opens the store as a sink.
    pub fn open(&self) -> Result<Box<dyn Sink>, String> {
        let key = hmac_key(self.key_file.as_deref(), &self.key_env)?;
        if self.to.starts_with("postgres://") || self.to.starts_with("postgresql://") {
            if self.segment_rows.is_some() {
                return Err(
                    "--segment-rows is for a SQLite store; a PostgreSQL store has \
                            partitions (--partition-rows)"
                        .into(),
                );
            }
            let mut options = Postgres::options();
            if let Some(key) = key {
                options = options.hmac_key(key);
            }
            if let Some(rows) = self.partition_rows {
                options = options.partition_rows(rows);
            }
            Ok(Box::new(options.connect(&self.to).map_err(store_err)?))
        } else {
            if self.partition_rows.is_some() {
                return Err(
                    "--partition-rows is for a PostgreSQL store; a SQLite store has \
                            segments (--segment-rows)"
                        .into(),
                );
            }
            let mut options = Sqlite::options();
            if let Some(key) = key {
                options = options.hmac_key(key);
            }
            if let Some(rows) = self.segment_rows {
                options = options.segment_rows(rows);
            }
            Ok(Box::new(options.open(&self.to).map_err(store_err)?))
        }
    }
}

pub fn ingest(cmd: IngestCmd) -> ExitCode {
    finish((|| {
        let mut ingest = Ingest::new(&cmd.stream)
            .consumer(&cmd.consumer)
            .batch(cmd.batch)
            .ack_wait(cmd.ack_wait.into());
        if let Some(idle) = cmd.exit_when_idle {
            ingest = ingest.exit_when_idle(idle.into());
        }
        if let Some(dir) = &cmd.dead_letters {
            ingest = ingest.dead_letters(dir);
        }
        let mut connection = NatsConnection::default();
        if let Some(ca) = &cmd.nats_ca {
            connection = connection.tls_root(ca);
        }
        if let Some(creds) = &cmd.nats_creds {
            connection = connection.credentials_file(creds);
        }
        if let Some(seed) = &cmd.nats_nkey {
            connection = connection.nkey_file(seed);
        }
        ingest = ingest.connection(connection);
        let stop = AtomicBool::new(false);
        let mut store = cmd.target.open()?;
        let report = ingest
            .run(&cmd.from, &mut *store, &stop)
            .map_err(|e| e.to_string())?;
        println!(
            "ingested {} records in {} batches ({} not records and {} refused by the store kept as dead letters, {} store retries)",
            report.written, report.batches, report.rejected, report.dead_lettered, report.retries
        );
        Ok(ExitCode::SUCCESS)
    })())
}
