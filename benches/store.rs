//! The SQLite store (issue 7): write throughput with and without the query indexes,
//! a filtered page from a large store, and the whole path from `#[audited]` into it.
//!
//! ```sh
//! cargo bench --bench store              # ROWS=1000000 BATCH=1000 E2E=200000
//! VARIANTS=0,2,3 cargo bench --bench store    # 0: no indexes, 1: FULL, 2: default, 3: one table, 4: default as text
//! SEGMENT=20000 VARIANTS=0,2 cargo bench --bench store   # another segment size
//! KEEP=1 ROWS=200000 VARIANTS=2 cargo bench --bench store  # keep the files
//! ROUNDS=3 E2E=1000 VARIANTS=0,2 cargo bench --bench store # variants in turn, median ratio
//! WARM_MIB=0 cargo bench --bench store     # skip the memory warm-up (support/measuring.rs)
//! ```
//!
//! Rows are realistic records (`support/records.rs`: ~944 bytes of JSON, 1 000
//! actors, 10 tenants, 100 000 entity ids, 6 events, producer-chained) written
//! through the store's sink side in batches of BATCH rows, one transaction each,
//! into a file on disk (the target directory). Pages of 50 (an actor in a time
//! window, an actor's newest, the newest rows, a tenant's rows of one event, an
//! entity) are read from a store of
//! ROWS rows, from the default store (segments of 20 000 rows, the open one read
//! through its tail index) and from one table (schema 3, the layout before
//! segments); "purge" removes the oldest PURGE rows (default 100 000) of each, then
//! the next PURGE rows with an export.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use audit::sinks::{Item, Sink};
use audit::store::{Query, Sqlite, Store, Synchronous};
use audit::{Auditor, Timestamp};

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/records.rs"]
mod records;
use cpu::Cpu;
use records::{T0, env, items};

/// Rows per second writing `items` in batches into a fresh store, and the CPU time
/// the process spent on it (every thread: the writer and its compressing helper).
fn write_rate(path: &std::path::Path, items: &[Item], batch: usize, store: Sqlite) -> (f64, Cpu) {
    let mut store = store;
    let start = Instant::now();
    let cpu = Cpu::now();
    for b in items.chunks(batch) {
        store.write(b).expect("write");
    }
    let rate = items.len() as f64 / start.elapsed().as_secs_f64();
    let cpu = Cpu::now().since(cpu);
    assert_eq!(
        store.count().unwrap(),
        items.len() as u64,
        "{}",
        path.display()
    );
    (rate, cpu)
}

/// `CHECKPOINT` (MiB of write-ahead log between checkpoints), else the default.
fn checkpoint() -> u32 {
    env("CHECKPOINT", audit::store::DEFAULT_CHECKPOINT_MIB as usize) as u32
}

/// Opens the store of one write variant.
type Opener = Box<dyn Fn(&std::path::Path) -> Sqlite>;

/// Medians and p99 of pages of 50 from a store of `rows` rows: an actor in a time
/// window (500 random), the newest rows, a tenant's rows of one event, an entity
/// (200 random).
fn pages(store: &mut Sqlite, rows: usize, name: &str) {
    let mut rng = fastrand::Rng::with_seed(11);
    let span = rows as i64 * 1_000_000;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("\n| page of 50 from {rows} rows ({name}) | median | p99 | rows per page |");
    println!("| --- | ---: | ---: | ---: |");
    let mut measure =
        |label: &str, n: usize, query: &mut dyn FnMut(&mut fastrand::Rng) -> Query| {
            let mut times = Vec::new();
            let mut returned = 0;
            for _ in 0..n {
                let q = query(&mut rng);
                let start = Instant::now();
                let page = black_box(store.query(&q).unwrap());
                times.push(start.elapsed());
                returned += page.records.len();
            }
            times.sort();
            println!(
                "| {label} | {:.2} ms | {:.2} ms | {:.1} |",
                ms(times[times.len() / 2]),
                ms(times[times.len() * 99 / 100]),
                returned as f64 / n as f64
            );
        };
    measure("actor + time range (500 random)", 500, &mut |rng| {
        let from = T0 + rng.i64(0..span / 2);
        Query::all()
            .actor(format!("user-{}", rng.usize(..1000)))
            .since(Timestamp::from_nanos(from))
            .until(Timestamp::from_nanos(from + span / 2))
            .limit(50)
    });
    measure("actor, newest (500 random)", 500, &mut |rng| {
        Query::all()
            .actor(format!("user-{}", rng.usize(..1000)))
            .limit(50)
    });
    measure("newest rows", 200, &mut |_| Query::all().limit(50));
    measure("tenant + event (200 random)", 200, &mut |rng| {
        Query::for_tenant(format!("tenant-{}", rng.usize(..10)))
            .events([records::EVENTS[rng.usize(..records::EVENTS.len())]])
            .limit(50)
    });
    measure("entity (200 random)", 200, &mut |rng| {
        Query::all()
            .entity("app", Some(format!("app-{}", rng.usize(..100_000))))
            .limit(50)
    });
}

#[path = "support/app.rs"]
mod app;
#[path = "support/measuring.rs"]
mod measuring;
use app::{App, launch};

fn main() {
    let rows = env("ROWS", 1_000_000);
    let batch = env("BATCH", 1000);
    let e2e = env("E2E", 200_000);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("store-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    eprintln!("building {rows} records…");
    let items = items(rows);
    // Both variants' files stay until the next round: ~1.4 KB and ~0.8 KB per row,
    // plus the write-ahead logs.
    measuring::warm_memory(rows * 3 / 1024 + 512);
    let avg_json = items.iter().map(|i| i.json().len()).sum::<usize>() / rows;
    println!("rows: {rows}, batch: {batch}, average record JSON: {avg_json} bytes\n");
    println!(
        "| write ({rows} rows, batches of {batch}) | rows/s | bytes on disk per record \
         | CPU per row, user + sys |"
    );
    println!("| --- | ---: | ---: | ---: |");
    let variants: [(&str, Opener); 5] = [
        (
            "no query indexes (schema v1)",
            Box::new(|p| {
                Sqlite::options()
                    .schema_version(1)
                    .checkpoint_mib(checkpoint())
                    .open(p)
                    .unwrap()
            }),
        ),
        (
            "query indexes, synchronous=FULL",
            Box::new(|p| {
                Sqlite::options()
                    .synchronous(Synchronous::Full)
                    .open(p)
                    .unwrap()
            }),
        ),
        (
            "query indexes (default options: segments of SEGMENT rows)",
            Box::new(|p| {
                Sqlite::options()
                    .segment_rows(env("SEGMENT", audit::store::DEFAULT_SEGMENT_ROWS))
                    .checkpoint_mib(checkpoint())
                    .open(p)
                    .unwrap()
            }),
        ),
        (
            "query indexes in one table (schema 3, before segments)",
            Box::new(|p| Sqlite::options().schema_version(3).open(p).unwrap()),
        ),
        (
            "query indexes, segments, records as text (compress(false))",
            Box::new(|p| {
                Sqlite::options()
                    .segment_rows(env("SEGMENT", audit::store::DEFAULT_SEGMENT_ROWS))
                    .checkpoint_mib(checkpoint())
                    .compress(false)
                    .open(p)
                    .unwrap()
            }),
        ),
    ];
    let mut paths = [None, None, None, None, None];
    // Rates of each variant, one per round: ROUNDS > 1 writes the variants in turn
    // again, and each ratio below is the median of the rounds' own ratios (this
    // machine's rates drift by 15 % between minutes; a round's variants share one).
    let mut rates: [Vec<f64>; 5] = Default::default();
    let only: Option<Vec<usize>> = std::env::var("VARIANTS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect());
    for _ in 0..env("ROUNDS", 1).max(1) {
        for (i, (name, open)) in variants.iter().enumerate() {
            if only.as_ref().is_some_and(|o| !o.contains(&i)) {
                continue;
            }
            let path = dir.join(format!("write-{i}.db"));
            for end in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{end}", path.display()));
            }
            let (rate, cpu) = write_rate(&path, &items, batch, open(&path));
            // The store is closed (its WAL checkpointed): the file is the whole store.
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let per_row = |d: Duration| d.as_secs_f64() * 1e6 / rows as f64;
            println!(
                "| {name} | {:.0} k | {} | {:.1} + {:.1} µs |",
                rate / 1000.0,
                bytes / rows as u64,
                per_row(cpu.user),
                per_row(cpu.sys),
            );
            rates[i].push(rate);
            paths[i] = Some(path);
        }
    }
    drop(items);
    // The median over the rounds of variant `i`'s rate over the index-free one's.
    let ratio = |i: usize| -> Option<(f64, Vec<f64>)> {
        if rates[0].is_empty() || rates[i].is_empty() {
            return None;
        }
        let each: Vec<f64> = rates[0].iter().zip(&rates[i]).map(|(f, r)| r / f).collect();
        Some((measuring::median(&each), each))
    };
    let rounds = |each: &[f64]| -> String {
        match each.len() {
            1 => String::new(),
            _ => {
                let all: Vec<String> = each.iter().map(|r| format!("{r:.2}")).collect();
                format!(" (median of {} rounds: {})", each.len(), all.join(", "))
            }
        }
    };
    // Issue 19's target, on a line of its own: the default store's write rate over
    // the index-free one, same records, same run.
    if let Some((median, each)) = ratio(2) {
        println!("\nindexed/index-free: {median:.2}x{}", rounds(&each));
    }
    if let Some((median, each)) = ratio(3) {
        println!("(one table: {median:.2}x{})", rounds(&each));
    }
    if let Some((median, each)) = ratio(4) {
        println!("(segments, records as text: {median:.2}x{})", rounds(&each));
    }

    let purge = env("PURGE", 100_000);
    for (name, path) in [("segments", &paths[2]), ("one table", &paths[3])] {
        let Some(path) = path else { continue };
        // The one-table store is opened at its own schema: it stays one table.
        let mut store = match name {
            "segments" => Sqlite::open(path).unwrap(),
            _ => Sqlite::options().schema_version(3).open(path).unwrap(),
        };
        pages(&mut store, rows, name);
        let start = Instant::now();
        let cut = Timestamp::from_nanos(T0 + purge as i64 * 1_000_000);
        let report = store
            .purge(&audit::store::Purge::older_than(cut), &mut |_, _| {})
            .unwrap();
        assert_eq!(report.removed, purge as u64);
        println!(
            "purge of the oldest {purge} rows ({name}): {:.0} ms",
            start.elapsed().as_secs_f64() * 1000.0
        );
        // The next PURGE rows, exported to a file first.
        let archive = dir.join(format!("archive-{}.jsonl", name.replace(' ', "-")));
        let start = Instant::now();
        let cut = Timestamp::from_nanos(T0 + 2 * purge as i64 * 1_000_000);
        let report = store
            .purge(
                &audit::store::Purge::older_than(cut).export(&archive),
                &mut |_, _| {},
            )
            .unwrap();
        assert_eq!(
            (report.removed, report.exported),
            (purge as u64, purge as u64)
        );
        println!(
            "purge of the next {purge} rows, exported ({name}): {:.0} ms",
            start.elapsed().as_secs_f64() * 1000.0
        );
        let start = Instant::now();
        let v = store.verify().unwrap();
        assert!(v.is_intact(), "{v:?}");
        println!(
            "verify of the {} rows left ({name}): {:.1} s ({:.0} k rows/s)",
            v.rows,
            start.elapsed().as_secs_f64(),
            v.rows as f64 / start.elapsed().as_secs_f64() / 1000.0
        );
        let start = Instant::now();
        let found = store.check_indexes().unwrap();
        assert!(found.is_empty(), "{found:?}");
        println!(
            "check_indexes of the {} rows left ({name}): {:.2} s",
            v.rows,
            start.elapsed().as_secs_f64()
        );
    }

    let app = App {
        id: 42,
        uid: "uid-42".into(),
        name: "Sales dashboard".into(),
        nid: "nid-42".into(),
    };
    // End to end into the default store, then into one that writes text.
    for (label, compress) in [("", true), (", records as text", false)] {
        let e2e_path = dir.join(format!("e2e-{compress}.db"));
        let auditor = Auditor::builder()
            .sink(
                Sqlite::options()
                    .compress(compress)
                    .open(&e2e_path)
                    .unwrap(),
            )
            .queue_capacity(10_000)
            .batch_size(1000)
            .spool_dir(dir.join(format!("spool-{compress}")))
            .build()
            .unwrap();
        let d: Arc<dyn audit::dispatch::Dispatch> = Arc::new(auditor.clone());
        let start = Instant::now();
        audit::dispatch::with_dispatch(d, || {
            for _ in 0..e2e {
                launch(black_box(&app));
            }
        });
        let report = auditor.shutdown();
        assert!(report.is_clean(), "{report}");
        let rate = e2e as f64 / start.elapsed().as_secs_f64();
        assert_eq!(
            Sqlite::open(&e2e_path).unwrap().count().unwrap(),
            e2e as u64
        );
        println!(
            "\nend to end, #[audited] -> Auditor -> Sqlite{label} ({e2e} events): {:.0} k events/s",
            rate / 1000.0
        );
    }

    // One `durability = "sync"` call at a time: the caller waits for the commit.
    println!("\n| sync call into SQLite (200 calls, one at a time) | median | p99 |");
    println!("| --- | ---: | ---: |");
    for (name, sync) in [
        ("synchronous = NORMAL", Synchronous::Normal),
        ("synchronous = FULL (fsync per commit)", Synchronous::Full),
    ] {
        let path = dir.join(format!("sync-{name}.db"));
        let auditor = Auditor::builder()
            .sink(Sqlite::options().synchronous(sync).open(&path).unwrap())
            .spool_dir(dir.join("spool-sync"))
            .build()
            .unwrap();
        let d: Arc<dyn audit::dispatch::Dispatch> = Arc::new(auditor.clone());
        let mut times = Vec::with_capacity(200);
        audit::dispatch::with_dispatch(d, || {
            for _ in 0..200 {
                let start = Instant::now();
                app::launch_sync(black_box(&app)).expect("committed");
                times.push(start.elapsed());
            }
        });
        assert!(auditor.shutdown().is_clean());
        times.sort();
        println!(
            "| {name} | {:.2} ms | {:.2} ms |",
            times[100].as_secs_f64() * 1000.0,
            times[197].as_secs_f64() * 1000.0
        );
    }
    // KEEP=1 leaves the stores behind, to look inside (`dbstat`).
    if env("KEEP", 0) == 0 {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
