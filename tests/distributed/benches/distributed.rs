//! Beyond one machine (issue 8): PostgreSQL write throughput with the query indexes,
//! a filtered page from it, and the whole distributed path
//! `#[audited]` -> `Auditor` -> NATS JetStream -> `audit ingest` -> PostgreSQL.
//!
//! ```sh
//! cargo bench -p audit-distributed-tests --bench distributed   # ROWS=300000 BATCH=10000 E2E=100000 INGESTS=1 PARTITION=50000 COPY=2 PER_MESSAGE=1 INGEST_BATCH=5000 SCHEMA=8
//! ROUNDS=3 ROWS=1000000 E2E=1000 cargo bench -p audit-distributed-tests --bench distributed  # median ratio of rounds
//! WARM_MIB=0 cargo bench -p audit-distributed-tests --bench distributed  # skip the memory warm-up
//! ```
//!
//! Needs the real servers (`AUDIT_TEST_POSTGRES`, `AUDIT_TEST_NATS`, defaults on
//! loopback). Each run uses its own PostgreSQL schema and JetStream stream and drops
//! them at the end.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use audit::ingest::Ingest;
use audit::sinks::{Nats, Sink, SinkOptions};
use audit::store::{Postgres, Query, Store};
use audit::{Auditor, Timestamp, audited};

#[path = "../../../benches/support/records.rs"]
mod records;
use records::{T0, env, items};
#[path = "../../../benches/support/measuring.rs"]
mod measuring;

use audit_distributed_tests::{delete_stream, nats_url, pg_url};

#[audited(event = "widget_create", meta(name = name))]
fn create_widget(name: &str) {}

/// Rows per second writing `items` into `store` in batches of `batch`, and the
/// longest batch's write.
/// A page's query, drawn at random.
type PageOf<'a> = dyn Fn(&mut fastrand::Rng) -> Query + 'a;

fn write_rate(store: &mut Postgres, items: &[audit::sinks::Item], batch: usize) -> (f64, Duration) {
    let start = Instant::now();
    let mut longest = Duration::ZERO;
    for b in items.chunks(batch) {
        let t = Instant::now();
        store.write(b).unwrap();
        longest = longest.max(t.elapsed());
    }
    // The last partitions' seals, which run beside the writes, count too.
    store.wait_for_seals().unwrap();
    (items.len() as f64 / start.elapsed().as_secs_f64(), longest)
}

/// Drops the query indexes of the store in `schema`, the table's and its
/// partitions' own (schema 7: the open partition's tail, the ones built at seal);
/// the unique keys stay.
fn drop_query_indexes(admin: &mut postgres::Client, schema: &str) {
    let own: bool = admin
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{schema}.audit_partition_indexes")],
        )
        .unwrap()
        .get(0);
    if own {
        admin
            .batch_execute(&format!("DELETE FROM {schema}.audit_partition_indexes"))
            .unwrap();
    }
    // The table's first: a partition's copy of one goes with it.
    for row in admin
        .query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = $1 \
             AND indexdef NOT LIKE 'CREATE UNIQUE%' ORDER BY tablename <> 'audit_records'",
            &[&schema],
        )
        .unwrap()
    {
        let name: String = row.get(0);
        admin
            .batch_execute(&format!("DROP INDEX IF EXISTS {schema}.{name}"))
            .unwrap();
    }
}

fn main() {
    let rows = env("ROWS", 300_000);
    // Positions per partition (a number past ROWS: one partition, as before schema 6).
    let partition = env("PARTITION", audit::store::DEFAULT_PARTITION_ROWS as usize) as u64;
    // Connections a batch is copied over (COPY=1: one, as before issue 19's parallel copy).
    let copies = env("COPY", audit::store::DEFAULT_COPY_CONNECTIONS);
    // The schema version to stop at (SCHEMA=7: seals inside the writer's
    // transaction, as before schema 8).
    let version = env("SCHEMA", 0);
    let options = || {
        let options = Postgres::options()
            .partition_rows(partition)
            .copy_connections(copies);
        match version {
            0 => options,
            v => options.schema_version(v as u32),
        }
    };
    let batch = env("BATCH", 10_000);
    let e2e = env("E2E", 100_000);
    let tag = std::process::id();
    let schema = format!("audit_bench_{tag}");
    let mut admin = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();

    eprintln!("building {rows} records…");
    let items = items(rows);
    // The server's files for both stores (~1.5 KB per row each) and its log.
    measuring::warm_memory(rows * 4 / 1024 + 1024);
    // Each round writes the records into a store whose query indexes are dropped
    // (the index-free rate of issue 19's ratio), then into one with them; the
    // ratio printed is the median of the rounds' own (this machine's rates drift
    // by a third between minutes; a round's two writes share one). The last
    // round's indexed store is read below.
    let mut ratios = Vec::new();
    let rounds = env("ROUNDS", 1).max(1);
    for round in 0..rounds {
        let free_schema = format!("{schema}_free");
        let mut free = options().schema(&free_schema).connect(&pg_url()).unwrap();
        drop_query_indexes(&mut admin, &free_schema);
        let (free_rate, _) = write_rate(&mut free, &items, batch);
        drop(free);
        admin
            .batch_execute(&format!("DROP SCHEMA {free_schema} CASCADE"))
            .unwrap();
        admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .unwrap();
        let mut store = options().schema(&schema).connect(&pg_url()).unwrap();
        let (rate, longest) = write_rate(&mut store, &items, batch);
        assert_eq!(store.count().unwrap(), rows as u64);
        println!(
            "| PostgreSQL write ({rows} rows, batches of {batch}, partitions of {partition}, {copies} connections, no query indexes) | {:.0} k rows/s |",
            free_rate / 1000.0
        );
        println!(
            "| PostgreSQL write ({rows} rows, batches of {batch}, partitions of {partition}, {copies} connections, query indexes) | {:.0} k rows/s (longest batch {:.0} ms) |",
            rate / 1000.0,
            longest.as_secs_f64() * 1e3
        );
        ratios.push(rate / free_rate);
        if round + 1 < rounds {
            println!("round {}: {:.2}x", round + 1, rate / free_rate);
        }
    }
    drop(items);
    let each = ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>();
    println!(
        "\nindexed/index-free: {:.2}x (rounds: {})\n",
        measuring::median(&ratios),
        each.join(", ")
    );
    let mut store = options().schema(&schema).connect(&pg_url()).unwrap();

    admin
        .batch_execute(&format!("ANALYZE {schema}.audit_records"))
        .unwrap();
    let mut rng = fastrand::Rng::with_seed(11);
    let span = rows as i64 * 1_000_000;
    // Pages of 50, each kind 300 times: over sealed partitions (their own indexes)
    // and the open one (its tail for actor and entity, the table's indexes for the rest).
    let pages: [(&str, &PageOf<'_>); 4] = [
        ("actor + time range", &|rng| {
            let from = T0 + rng.i64(0..span / 2);
            Query::all()
                .actor(format!("user-{}", rng.usize(..1000)))
                .since(Timestamp::from_nanos(from))
                .until(Timestamp::from_nanos(from + span / 2))
        }),
        ("tenant, newest first", &|rng| {
            Query::for_tenant(format!("tenant-{}", rng.usize(..10)))
        }),
        ("time range", &|rng| {
            let from = T0 + rng.i64(0..span);
            Query::all().since(Timestamp::from_nanos(from))
        }),
        ("newest", &|_| Query::all()),
    ];
    for (name, page) in pages {
        let mut times = Vec::new();
        for _ in 0..300 {
            let q = page(&mut rng).limit(50);
            let t = Instant::now();
            black_box(store.query(&q).unwrap());
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "| PostgreSQL page of 50 ({name}) from {rows} rows | median {:.2} ms, p99 {:.2} ms |",
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() * 99 / 100].as_secs_f64() * 1e3
        );
    }
    let t = Instant::now();
    assert!(store.verify().unwrap().is_intact());
    println!(
        "| PostgreSQL verify {rows} rows | {:.0} k rows/s |",
        rows as f64 / t.elapsed().as_secs_f64() / 1000.0
    );
    // Retention: the oldest PURGE rows (record i is T0 + i ms), no export.
    let purge = env("PURGE", 100_000).min(rows);
    let cut = Timestamp::from_nanos(T0 + purge as i64 * 1_000_000);
    let t = Instant::now();
    let report = store
        .purge(&audit::store::Purge::older_than(cut), &mut |_, _| {})
        .unwrap();
    println!(
        "| PostgreSQL purge of the oldest {} rows | {:.0} ms |",
        report.removed,
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(report.removed, purge as u64);
    // The next PURGE rows, exported to a file first.
    let purge2 = purge.min(rows - purge);
    let cut = Timestamp::from_nanos(T0 + (purge + purge2) as i64 * 1_000_000);
    let archive = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let report = store
        .purge(
            &audit::store::Purge::older_than(cut).export(archive.path().join("archive.jsonl")),
            &mut |_, _| {},
        )
        .unwrap();
    println!(
        "| PostgreSQL purge of the next {} rows, exported | {:.0} ms |",
        report.removed,
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(
        (report.removed, report.exported),
        (purge2 as u64, purge2 as u64)
    );
    assert!(store.verify().unwrap().is_intact());
    drop(store);
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();

    // The distributed path, producer and ingest in this process, each on its threads.
    let stream = format!("AUDIT_BENCH{tag}");
    let prefix = format!("audit_bench{tag}");
    // Records in a message (the sink's `records_per_message`).
    let per_message = env("PER_MESSAGE", 1);
    let nats = Nats::options()
        .stream(&stream)
        .subject_prefix(&prefix)
        .records_per_message(per_message)
        .connect(&nats_url())
        .unwrap();
    let spool = tempfile::tempdir().unwrap();
    let auditor = Auditor::builder()
        .sink_with(nats, SinkOptions::new())
        .batch_size(1000)
        .spool_dir(spool.path())
        .build()
        .unwrap();
    // INGESTS ingest workers share the durable consumer, each with its own store
    // connection (as separate `audit ingest` processes would).
    let ingests = env("INGESTS", 1);
    // Records per ingest batch (one store transaction each).
    let ingest_batch = env("INGEST_BATCH", audit::ingest::DEFAULT_INGEST_BATCH);
    let start = Instant::now();
    let workers: Vec<_> = (0..ingests)
        .map(|_| {
            let stream = stream.clone();
            let mut store = options().schema(&schema).connect(&pg_url()).unwrap();
            std::thread::spawn(move || {
                Ingest::new(&stream)
                    .batch(ingest_batch)
                    .exit_when_idle(Duration::from_secs(3))
                    .run(&nats_url(), &mut store, &AtomicBool::new(false))
                    .unwrap()
            })
        })
        .collect();
    let d: Arc<dyn audit::dispatch::Dispatch> = Arc::new(auditor.clone());
    audit::dispatch::with_dispatch(d, || {
        for i in 0..e2e {
            create_widget(&format!("w{i}"));
        }
    });
    let report = auditor.shutdown();
    assert!(report.is_clean(), "{report}");
    let published = start.elapsed();
    // Polled by the newest position (an index probe per partition): a count every
    // few milliseconds would scan the table and take a core from the ingest.
    let newest = format!("SELECT coalesce(max(seq), 0) FROM {schema}.audit_records");
    while admin.query_one(&newest, &[]).unwrap().get::<_, i64>(0) < e2e as i64 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stored = start.elapsed();
    let mut check = Postgres::options()
        .schema(&schema)
        .connect(&pg_url())
        .unwrap();
    let batches: u64 = workers.into_iter().map(|w| w.join().unwrap().batches).sum();
    assert_eq!(check.count().unwrap(), e2e as u64);
    assert!(check.verify().unwrap().is_intact());
    println!(
        "| end to end ({e2e} events): #[audited] -> JetStream ({per_message} per message) -> {ingests} ingest(s) -> PostgreSQL | {:.0} k events/s (published in {:.1} s, stored in {:.1} s, {batches} batches) |",
        e2e as f64 / stored.as_secs_f64() / 1000.0,
        published.as_secs_f64(),
        stored.as_secs_f64(),
    );
    drop(check);
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
    delete_stream(&stream);
}
