//! What the transactional outbox adds to a business transaction (issue 18): the
//! same transaction — one business `INSERT`, commit — with and without an
//! `#[audited]` handler whose record is written into `audit_outbox` in it, on
//! SQLite (WAL, `synchronous = NORMAL`) and on PostgreSQL. Variants alternate in
//! rounds so that the machine's drift hits both.
//!
//! ```sh
//! cargo bench --bench outbox        # TX=2000 ROUNDS=3; POSTGRES=url (default: the local test server)
//! ```

use std::time::{Duration, Instant};

use audit::audited;
use audit::outbox::Scope;

#[path = "support/records.rs"]
mod records;
use records::env;

/// The business write, audited.
#[audited(event = "widget_create", meta(name = name))]
fn add_widget_sqlite(tx: &rusqlite::Transaction<'_>, name: &str) {
    tx.execute("INSERT INTO widgets (name) VALUES (?1)", [name])
        .unwrap();
}

#[audited(event = "widget_create", meta(name = name))]
fn add_widget_pg(tx: &mut postgres::Transaction<'_>, name: &str) {
    tx.execute("INSERT INTO widgets (name) VALUES ($1)", &[&name])
        .unwrap();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn sqlite(n: usize, outbox: bool, conn: &mut rusqlite::Connection) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            let name = format!("widget {i}");
            let start = Instant::now();
            let tx = conn.transaction().unwrap();
            if outbox {
                let scope = Scope::new();
                scope.run(|| add_widget_sqlite(&tx, &name));
                let mut tx = tx;
                scope.write(&mut tx).unwrap();
                tx.commit().unwrap();
            } else {
                tx.execute("INSERT INTO widgets (name) VALUES (?1)", [&name])
                    .unwrap();
                tx.commit().unwrap();
            }
            start.elapsed()
        })
        .collect()
}

fn pg(n: usize, outbox: bool, client: &mut postgres::Client) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            let name = format!("widget {i}");
            let start = Instant::now();
            let mut tx = client.transaction().unwrap();
            if outbox {
                let scope = Scope::new();
                scope.run(|| add_widget_pg(&mut tx, &name));
                scope.write(&mut tx).unwrap();
            } else {
                tx.execute("INSERT INTO widgets (name) VALUES ($1)", &[&name])
                    .unwrap();
            }
            tx.commit().unwrap();
            start.elapsed()
        })
        .collect()
}

fn main() {
    let n = env("TX", 2000);
    let rounds = env("ROUNDS", 3);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("outbox-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut conn = rusqlite::Connection::open(dir.join("app.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE widgets (name text)",
    )
    .unwrap();
    audit::outbox::sqlite::install(&conn).unwrap();

    let url = std::env::var("POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .batch_execute(
            "DROP SCHEMA IF EXISTS audit_outbox_bench CASCADE; CREATE SCHEMA audit_outbox_bench;
             SET search_path TO audit_outbox_bench; CREATE TABLE widgets (name text)",
        )
        .unwrap();
    audit::outbox::postgres::install(&mut client).unwrap();

    let mut table: Vec<(String, Vec<Duration>)> = ["SQLite", "PostgreSQL"]
        .iter()
        .flat_map(|db| {
            [
                (format!("{db}: INSERT, commit"), Vec::new()),
                (
                    format!("{db}: INSERT + its audit record in the outbox, commit"),
                    Vec::new(),
                ),
            ]
        })
        .collect();
    for _ in 0..rounds {
        table[0].1.extend(sqlite(n, false, &mut conn));
        table[1].1.extend(sqlite(n, true, &mut conn));
        table[2].1.extend(pg(n, false, &mut client));
        table[3].1.extend(pg(n, true, &mut client));
    }
    println!("\n{n} transactions x {rounds} rounds, alternating\n");
    println!("| transaction | median | p99 | added |");
    println!("|---|---:|---:|---:|");
    for pair in table.chunks(2) {
        let base = median(pair[0].1.clone());
        for (name, times) in pair {
            let mut sorted = times.clone();
            sorted.sort();
            let m = median(times.clone());
            println!(
                "| {name} | {:.1} µs | {:.1} µs | {:+.1} µs |",
                us(m),
                us(sorted[sorted.len() * 99 / 100]),
                us(m) - us(base)
            );
        }
    }
    client
        .batch_execute("DROP SCHEMA audit_outbox_bench CASCADE")
        .unwrap();
}
