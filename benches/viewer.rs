//! The viewer's API over a big SQLite store (issue 17): how long a page of 50
//! takes over HTTP for the filters people use, the catalog, and an export of every
//! row with the server's memory watched while it streams.
//!
//! ```sh
//! cargo bench --bench viewer            # ROWS=1000000 RUNS=41; the store is kept in
//!                                       # target/tmp/viewer-bench and reused (REUSE=0: rebuild)
//! POSTGRES=postgres://postgres@127.0.0.1:5432/test cargo bench --bench viewer
//!                                       # the same on PostgreSQL (schema audit_viewer_bench, kept)
//! ```
//!
//! Rows are the store bench's realistic records (`support/records.rs`: ~950 bytes of
//! JSON, 1 000 actors, 10 tenants, 100 000 entity ids). Each request is timed from
//! the client (a loopback HTTP request, the JSON read whole); the table gives the
//! median and the 90th percentile of RUNS requests.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use audit::sinks::{Item, Sink};
use audit::store::{Postgres, Sqlite, Store, StoreError};
use audit_viewer::{Access, Viewer};

#[path = "support/records.rs"]
mod records;
use records::{Items, env};

const ADMIN: &str = "admin-token-0123456789";
const TENANT: &str = "tenant-token-0123456789";

/// Opens the store under test: SQLite at a path, or PostgreSQL.
#[derive(Clone)]
enum Target {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Target {
    fn open(&self) -> Result<Box<dyn Store + Send>, StoreError> {
        Ok(match self {
            Target::Sqlite(path) => Box::new(Sqlite::open(path)?),
            Target::Postgres(url) => Box::new(Postgres::options().schema(SCHEMA).connect(url)?),
        })
    }

    fn writer(&self) -> Box<dyn Sink> {
        match self {
            Target::Sqlite(path) => Box::new(Sqlite::open(path).unwrap()),
            Target::Postgres(url) => {
                Box::new(Postgres::options().schema(SCHEMA).connect(url).unwrap())
            }
        }
    }

    /// Empties the store (a fresh file, a dropped schema).
    fn clear(&self) {
        match self {
            Target::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Target::Postgres(url) => {
                let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
                c.batch_execute(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
                    .unwrap();
            }
        }
    }
}

const SCHEMA: &str = "audit_viewer_bench";

/// A store of `rows` records, written in batches of 10 000 (kept between runs
/// unless REUSE=0), its statistics fresh.
fn fill(target: &Target, rows: usize) {
    write(target, rows);
    if let Target::Postgres(url) = target {
        // What autovacuum does after a bulk load (this machine's server runs
        // without it): the planner needs the filters' selectivity to read a page
        // from an index in order rather than sort every match.
        let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
        c.batch_execute(&format!("ANALYZE {SCHEMA}.audit_records"))
            .unwrap();
    }
}

fn write(target: &Target, rows: usize) {
    if env("REUSE", 1) == 1
        && let Ok(mut s) = target.open()
        && s.last_seq().unwrap_or(0) == rows as i64
    {
        eprintln!("reusing the store ({rows} rows)");
        return;
    }
    target.clear();
    let mut store = target.writer();
    let mut items = Items::new();
    let start = Instant::now();
    let mut written = 0;
    while written < rows {
        let batch: Vec<Item> = items.by_ref().take((rows - written).min(10_000)).collect();
        store.write(&batch).unwrap();
        written += batch.len();
        if written % 100_000 == 0 {
            eprintln!("  {written} rows ({:.0} s)", start.elapsed().as_secs_f64());
        }
    }
}

fn serve(target: &Target) -> SocketAddr {
    let target = target.clone();
    let access = Access::parse(&format!("{ADMIN} admin\n{TENANT} tenant:tenant-3\n")).unwrap();
    let viewer = Viewer::new(move || target.open(), access);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, viewer.router()).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into()
}

/// `GET path`: (time, body).
fn get(agent: &ureq::Agent, addr: SocketAddr, path: &str, token: &str) -> (Duration, String) {
    let start = Instant::now();
    let mut resp = agent
        .get(&format!("http://{addr}{path}"))
        .header("authorization", &format!("Bearer {token}"))
        .call()
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let body = resp
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_string()
        .unwrap();
    (start.elapsed(), body)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn main() {
    let rows = env("ROWS", 1_000_000);
    let runs = env("RUNS", 41);
    let target = match std::env::var("POSTGRES") {
        Ok(url) => Target::Postgres(url),
        Err(_) => {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("viewer-bench");
            std::fs::create_dir_all(&dir).unwrap();
            Target::Sqlite(dir.join(format!("audit-{rows}.db")))
        }
    };
    fill(&target, rows);
    let addr = serve(&target);
    let store_name = match &target {
        Target::Sqlite(_) => "SQLite",
        Target::Postgres(_) => "PostgreSQL",
    };
    let agent = agent();

    // A cursor 20 pages deep, for the keyset page.
    let mut cursor = String::new();
    for _ in 0..20 {
        let (_, body) = get(
            &agent,
            addr,
            &format!("/api/records?limit=50{cursor}"),
            ADMIN,
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        cursor = format!("&cursor={}", v["next"].as_str().unwrap());
    }
    let mid = records::T0 + rows as i64 / 2 * 1_000_000;
    let since = audit::Timestamp::from_nanos(mid).to_string();
    let until = audit::Timestamp::from_nanos(mid + 3_600_000_000_000).to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        ("newest 50", "/api/records?limit=50".into(), ADMIN),
        (
            "20 pages deep (cursor)",
            format!("/api/records?limit=50{cursor}"),
            ADMIN,
        ),
        (
            "actor",
            "/api/records?actor=user-{a}&limit=50".into(),
            ADMIN,
        ),
        (
            "actor email, oldest first",
            "/api/records?actor=user{a}%40example.com&order=oldest&limit=50".into(),
            ADMIN,
        ),
        (
            "entity type:id",
            "/api/records?entity=app:app-{e}&limit=50".into(),
            ADMIN,
        ),
        (
            "event + 1 h window",
            format!("/api/records?event=app_destroy&since={since}&until={until}&limit=50"),
            ADMIN,
        ),
        (
            "tenant token, newest 50",
            "/api/records?limit=50".into(),
            TENANT,
        ),
        (
            "tenant token + event",
            "/api/records?event=widget_update&limit=50".into(),
            TENANT,
        ),
        (
            "text (common word)",
            "/api/records?q=Sales&limit=50".into(),
            ADMIN,
        ),
        (
            "text (rare: full scan)",
            "/api/records?q=app%2099999%20&limit=50".into(),
            ADMIN,
        ),
        ("record by id", "/api/records/{id}".into(), ADMIN),
        ("catalog (admin)", "/api/catalog".into(), ADMIN),
        ("catalog (tenant)", "/api/catalog".into(), TENANT),
    ];
    let (_, newest) = get(&agent, addr, "/api/records?limit=50", ADMIN);
    let newest: serde_json::Value = serde_json::from_str(&newest).unwrap();
    let some_id = newest["records"][7]["id"].as_str().unwrap().to_owned();
    println!(
        "\nviewer API over a {store_name} store of {rows} rows ({runs} requests each, loopback HTTP)\n"
    );
    println!("| request | median | p90 | records |");
    println!("|---|---|---|---|");
    let mut rng = fastrand::Rng::with_seed(11);
    for (name, template, token) in &cases {
        let mut times = Vec::with_capacity(runs);
        let mut count = 0;
        let runs = if name.contains("full scan") { 5 } else { runs };
        for _ in 0..runs {
            let path = template
                .replace("{a}", &rng.usize(..1000).to_string())
                .replace("{e}", &rng.usize(..100_000).to_string())
                .replace("{id}", &some_id);
            let (t, body) = get(&agent, addr, &path, token);
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            count = v["records"]
                .as_array()
                .or(v["events"].as_array())
                .map_or(1, Vec::len);
            times.push(t);
        }
        times.sort();
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {count} |",
            ms(times[times.len() / 2]),
            ms(times[times.len() * 9 / 10])
        );
    }

    // The whole store exported, the server's memory sampled as it streams.
    for format in ["jsonl", "csv"] {
        let before = rss();
        let peak = Arc::new(AtomicU64::new(before));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(rss(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        let start = Instant::now();
        let mut resp = agent
            .get(&format!("http://{addr}/api/export?format={format}"))
            .header("authorization", &format!("Bearer {ADMIN}"))
            .call()
            .unwrap();
        let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
        let (mut bytes, mut lines, mut buf) = (0u64, 0u64, vec![0u8; 1 << 16]);
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            bytes += n as u64;
            lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        }
        let took = start.elapsed();
        done.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        let peak = peak.load(Ordering::Relaxed);
        println!(
            "\nexport {format}: {lines} lines, {:.0} MB in {:.1} s ({:.0} k rows/s); \
             process memory {:.0} MB before, {:.0} MB at most while streaming (+{:.0} MB)",
            bytes as f64 / 1e6,
            took.as_secs_f64(),
            rows as f64 / took.as_secs_f64() / 1e3,
            before as f64 / 1e6,
            peak as f64 / 1e6,
            (peak.saturating_sub(before)) as f64 / 1e6,
        );
    }
}
