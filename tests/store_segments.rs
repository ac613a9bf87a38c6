//! The SQLite store split into segments: the same records read back the same as
//! from one table (every query, both orders, every page), tampering inside or
//! across sealed segments is found, purges drop whole segments and keep the
//! anchor, replays and a second writer never duplicate, and a store of the older
//! one-table schema migrates into segments.

mod sqlite_plan;
mod store_suite;
mod tmpfs;

use std::path::{Path, PathBuf};

use audit::integrity::Chain;
use audit::store::{Break, FieldValue, Order, Purge, Query, Sqlite, Store};
use audit::{OutcomeKind, Record, Timestamp};
use store_suite::{collect, record, write};

const T0: i64 = 1_780_000_000_000_000_000;
const MS: i64 = 1_000_000;

fn fresh(dir: &Path, name: &str, segment_rows: usize) -> Sqlite {
    Sqlite::options()
        .segment_rows(segment_rows)
        .open(dir.join(name))
        .unwrap()
}

/// Record `i` at a time that does not follow the write order: later records are
/// often older (clocks of several producers), and some share a time.
fn shuffled(i: usize) -> Record {
    let ms = (i as i64 * 7_919) % 400;
    record(i, Timestamp::from_nanos(T0 + ms * MS))
}

fn ids(records: &[Record]) -> Vec<uuid::Uuid> {
    records.iter().map(|r| r.id).collect()
}

/// A store of 25 shuffled records in segments of 10 (two sealed), their
/// postings written.
fn settled(dir: &Path, name: &str) -> Sqlite {
    let mut store = fresh(dir, name, 10);
    write(
        &mut store,
        &mut Chain::new(),
        (0..25).map(shuffled).collect(),
    );
    store.settle().unwrap();
    store
}

fn sql(path: &Path, sql: &str) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

fn tables(store: &mut Sqlite) -> Vec<String> {
    store
        .segments()
        .unwrap()
        .into_iter()
        .map(|(t, _)| t)
        .collect()
}

/// Each query in both orders, pages of `limit`: the same records, in the same
/// order, from `store` as from `one` (which finds some for each).
fn reads_alike(one: &mut Sqlite, store: &mut Sqlite, queries: &[Query], limit: usize) {
    for q in queries {
        for order in [Order::NewestFirst, Order::OldestFirst] {
            let q = q.clone().order(order).limit(limit);
            let a = collect(one, &q);
            assert!(!a.is_empty(), "{q:?}");
            assert_eq!(ids(&a), ids(&collect(store, &q)), "{q:?}");
        }
    }
}

/// 75 records: in one table, and the first 45 written into segments of 20 rows
/// by a store of schema `version`, at `path`, reopened at the newest schema;
/// with the chain that continues them.
fn migrating(dir: &Path, path: &Path, version: u32) -> (Vec<Record>, Sqlite, Sqlite, Chain) {
    let records: Vec<Record> = (0..75).map(shuffled).collect();
    let mut one = Sqlite::options()
        .schema_version(3)
        .open(dir.join("one.db"))
        .unwrap();
    write(&mut one, &mut Chain::new(), records.clone());
    let mut chain = Chain::new();
    let mut old = Sqlite::options()
        .schema_version(version)
        .segment_rows(20)
        .open(path)
        .unwrap();
    write(&mut old, &mut chain, records[..45].to_vec());
    drop(old);
    let store = Sqlite::options().segment_rows(20).open(path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 9);
    (records, one, store, chain)
}

/// Every query, in both orders and in pages of several sizes, gives the same
/// records in the same order from 48 segments of 5 rows, and from segments of 100
/// (the open one, 40 rows, read through its tail index), as from one table.
#[test]
fn segments_read_back_what_one_table_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut one = fresh(dir.path(), "one.db", 1_000_000);
    let mut many = fresh(dir.path(), "many.db", 5);
    let mut tail = fresh(dir.path(), "tail.db", 100);
    let records: Vec<Record> = (0..240).map(shuffled).collect();
    // Batches of odd sizes: seals fall inside batches.
    for (store, chain) in [
        (&mut one, &mut Chain::new()),
        (&mut many, &mut Chain::new()),
        (&mut tail, &mut Chain::new()),
    ] {
        for part in records.chunks(13) {
            write(store, chain, part.to_vec());
        }
    }
    assert_eq!(many.segments().unwrap().len(), 48);
    assert_eq!(tail.segments().unwrap().len(), 3);
    assert_eq!((one.count().unwrap(), many.count().unwrap()), (240, 240));
    let t = |ms: i64| Timestamp::from_nanos(T0 + ms * MS);
    let queries = [
        Query::all(),
        Query::all().actor("u-1"),
        Query::all().actor("kim@globex.test"),
        Query::all().entity("app", None::<String>),
        Query::all().entity("app", Some("app-2")),
        Query::all().events(["user_login", "app_add"]),
        Query::for_tenant("acme"),
        Query::all().since(t(100)).until(t(180)),
        Query::all().since(t(390)),
        Query::all().until(t(3)),
        Query::all().outcome(OutcomeKind::Failure),
        Query::all().text("#17 "),
        Query::all().field("n", FieldValue::Int(77)),
        Query::for_tenant("globex").actor("u-3").since(t(50)),
    ];
    for q in queries {
        for order in [Order::NewestFirst, Order::OldestFirst] {
            for limit in [1, 4, 50] {
                let q = q.clone().order(order).limit(limit);
                let (a, b) = (collect(&mut one, &q), collect(&mut many, &q));
                assert!(
                    !a.is_empty() || q.clone().limit(1) == q,
                    "{q:?} matches nothing"
                );
                assert_eq!(ids(&a), ids(&b), "{q:?}");
                assert_eq!(ids(&a), ids(&collect(&mut tail, &q)), "{q:?}");
            }
        }
    }
    for r in &records {
        assert_eq!(many.get(r.id).unwrap().map(|r| r.id), Some(r.id));
    }
    assert_eq!(
        one.events_seen(None).unwrap(),
        many.events_seen(None).unwrap()
    );
    assert_eq!(
        one.events_seen(Some("acme")).unwrap(),
        many.events_seen(Some("acme")).unwrap()
    );
    // Following from every position reads the same rows in position order.
    for after in [0, 4, 5, 6, 117, 239, 240] {
        let q = Query::all().limit(11);
        let a: Vec<i64> = one
            .follow_matching(after, &q)
            .unwrap()
            .iter()
            .map(|s| s.seq)
            .collect();
        let b: Vec<i64> = many
            .follow_matching(after, &q)
            .unwrap()
            .iter()
            .map(|s| s.seq)
            .collect();
        assert_eq!(a, b, "after {after}");
    }
    assert_eq!(many.last_seq().unwrap(), 240);
    let v = many.verify().unwrap();
    assert!(v.is_intact() && v.rows == 240, "{v:?}");
}

/// A changed row in a sealed segment, a removed segment and a hidden one are found.
#[test]
fn tampering_across_segments_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    // Records as text: the test edits them with SQL (`tests/store_compressed.rs`
    // tampers with compressed ones).
    let mut store = Sqlite::options()
        .segment_rows(10)
        .compress(false)
        .open(&path)
        .unwrap();
    write(
        &mut store,
        &mut Chain::new(),
        (0..50).map(shuffled).collect(),
    );
    assert_eq!(tables(&mut store)[2], "audit_segment_2");
    assert!(store.verify().unwrap().is_intact());

    // A value changed inside a sealed segment (rows 21-30).
    sql(
        &path,
        "DROP TRIGGER audit_segment_2_no_update;
         UPDATE audit_segment_2 SET record = replace(record, '#23 ', '#99 ') WHERE seq = 24;",
    );
    match store.verify().unwrap().first_break {
        Some(Break::Changed { seq: 24, .. }) => {}
        other => panic!("{other:?}"),
    }
    sql(
        &path,
        "UPDATE audit_segment_2 SET record = replace(record, '#99 ', '#23 ') WHERE seq = 24;",
    );
    assert!(store.verify().unwrap().is_intact());

    // A whole segment removed: table and registry row.
    let mut removed = fresh(dir.path(), "removed.db", 10);
    write(
        &mut removed,
        &mut Chain::new(),
        (0..50).map(shuffled).collect(),
    );
    sql(
        removed.path(),
        "DROP TABLE audit_segment_1; DELETE FROM audit_segments WHERE n = 1;",
    );
    match removed.verify().unwrap().first_break {
        Some(Break::Removed {
            seq: 21,
            after: Some(10),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }

    // A segment hidden from the registry is as good as removed.
    sql(&path, "DELETE FROM audit_segments WHERE n = 3;");
    match store.verify().unwrap().first_break {
        Some(Break::Removed {
            seq: 41,
            after: Some(30),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

/// A purge drops the segments wholly before the cut and deletes the rest row by
/// row; the anchor lets what remains verify, and writing goes on.
#[test]
fn a_purge_drops_whole_segments_and_keeps_the_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fresh(dir.path(), "p.db", 10);
    let mut chain = Chain::new();
    let records: Vec<Record> = (0..100)
        .map(|i| record(i, Timestamp::from_nanos(T0 + i as i64 * MS)))
        .collect();
    write(&mut store, &mut chain, records.clone());
    assert_eq!(store.segments().unwrap().len(), 10);

    let mut calls = Vec::new();
    let report = store
        .purge(
            &Purge::older_than(Timestamp::from_nanos(T0 + 35 * MS)).chunk(4),
            &mut |done, total| calls.push((done, total)),
        )
        .unwrap();
    assert_eq!((report.removed, report.last_seq), (35, Some(35)));
    // Three segments dropped whole (10 rows each, whatever the chunk), then the
    // first five rows of the fourth in chunks.
    assert_eq!(
        calls,
        [(0, 35), (10, 35), (20, 35), (30, 35), (34, 35), (35, 35)]
    );
    let segments = store.segments().unwrap();
    assert_eq!(segments[0], ("audit_segment_3".to_string(), 5));
    assert_eq!(segments.len(), 7);
    let left = collect(&mut store, &Query::all().order(Order::OldestFirst));
    assert_eq!(ids(&left), ids(&records[35..]));
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    let anchor = v.anchor.unwrap();
    assert_eq!((anchor.seq, anchor.purged), (35, 35));

    let more: Vec<Record> = (100..125)
        .map(|i| record(i, Timestamp::from_nanos(T0 + i as i64 * MS)))
        .collect();
    write(&mut store, &mut chain, more.clone());
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.rows == 90, "{v:?}");

    // With an export, every row goes through it, in order, segments dropped as
    // they empty.
    let export = dir.path().join("archive.jsonl");
    let report = store
        .purge(
            &Purge::older_than(Timestamp::from_nanos(T0 + 117 * MS))
                .export(&export)
                .chunk(7),
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!((report.removed, report.exported), (82, 82));
    let lines = std::fs::read_to_string(&export).unwrap();
    let exported: Vec<uuid::Uuid> = lines
        .lines()
        .map(|l| serde_json::from_str::<Record>(l).unwrap().id)
        .collect();
    let written: Vec<Record> = records[35..].iter().chain(&more[..17]).cloned().collect();
    assert_eq!(exported, ids(&written));
    assert_eq!(store.count().unwrap(), 8);
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.anchor.unwrap().purged, 117);

    // Everything, then writing into the empty store.
    store
        .purge(&Purge::older_than(Timestamp::now()), &mut |_, _| {})
        .unwrap();
    assert_eq!(store.count().unwrap(), 0);
    write(&mut store, &mut chain, vec![record(300, Timestamp::now())]);
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.rows == 1, "{v:?}");
    assert_eq!(store.last_seq().unwrap(), 126);
}

/// A batch written again (a replay after a lost acknowledgement) is skipped even
/// when its rows were sealed into older segments since; ids that do not grow with
/// time are looked up in every segment that may hold them.
#[test]
fn replays_are_skipped_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fresh(dir.path(), "r.db", 10);
    let mut chain = Chain::new();
    let first: Vec<Record> = (0..20).map(shuffled).collect();
    write(&mut store, &mut chain, first.clone());
    write(&mut store, &mut chain, (20..60).map(shuffled).collect());
    write(&mut store, &mut Chain::new(), first);
    // Random (not time-ordered) ids.
    let random: Vec<Record> = (60..90)
        .map(|i| {
            let mut r = shuffled(i);
            r.id = uuid::Uuid::from_u128(
                (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
            );
            r
        })
        .collect();
    write(&mut store, &mut chain, random.clone());
    let last: Vec<Record> = (90..120).map(shuffled).collect();
    write(&mut store, &mut chain, last.clone());
    // The newest segment is full (120 rows in segments of 10) and not sealed yet:
    // a replay of its rows seals it first, then finds them all there.
    write(&mut store, &mut Chain::new(), last[20..].to_vec());
    assert_eq!(store.count().unwrap(), 120);
    write(&mut store, &mut Chain::new(), random);
    assert_eq!(store.count().unwrap(), 120);
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.rows == 120, "{v:?}");
}

/// Two handles on one file (two processes, as far as SQLite is concerned) write
/// in turn; each seals and opens segments the other then writes into, and trains
/// dictionaries (one every 12 rows) the other then compresses with.
#[test]
fn two_writers_share_the_segments() {
    let dir = tempfile::tempdir().unwrap();
    let handle = || {
        Sqlite::options()
            .segment_rows(6)
            .retrain_rows(12)
            .open(dir.path().join("w.db"))
            .unwrap()
    };
    let (mut a, mut b) = (handle(), handle());
    let (mut ca, mut cb) = (Chain::new(), Chain::new());
    std::thread::scope(|s| {
        s.spawn(|| {
            for k in 0..40 {
                write(&mut a, &mut ca, (k * 4..k * 4 + 4).map(shuffled).collect());
            }
        });
        s.spawn(|| {
            for k in 0..40 {
                write(
                    &mut b,
                    &mut cb,
                    (1000 + k * 3..1000 + k * 3 + 3).map(shuffled).collect(),
                );
            }
        });
    });
    let mut store = Sqlite::open(dir.path().join("w.db")).unwrap();
    assert_eq!(store.count().unwrap(), 280);
    let segments = store.segments().unwrap();
    assert!(segments.iter().all(|(_, n)| *n <= 6 + 3), "{segments:?}");
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.rows == 280 && v.producers == 2, "{v:?}");
    let dictionaries: i64 = rusqlite::Connection::open(dir.path().join("w.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM audit_dictionaries", [], |r| r.get(0))
        .unwrap();
    assert!(dictionaries > 5, "{dictionaries}");
}

/// Two handles on one file (as two processes) write records that fill the log
/// quickly (4 KiB of random text each, 1 MiB between checkpoints) while a third
/// reads: each writer's helper copies the log beside the writes, and at four
/// times its limit a restart round starts it over whichever writer's transaction
/// comes next, so the log file stays within that and two batches. Everything is
/// there and verifies.
#[test]
fn two_writers_copy_the_log_beside_their_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let handle = || {
        Sqlite::options()
            .checkpoint_mib(1)
            .segment_rows(500)
            .open(&path)
            .unwrap()
    };
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    let (mut a, mut b) = (handle(), handle());
    let bulky = |i: usize| {
        let mut r = shuffled(i);
        let mut rng = fastrand::Rng::with_seed(i as u64);
        let text: String = (0..4096).map(|_| rng.alphanumeric()).collect();
        r.metadata.insert("blob", serde_json::Value::String(text));
        r
    };
    let done = std::sync::atomic::AtomicUsize::new(0);
    let mut largest = 0;
    std::thread::scope(|s| {
        for (store, first) in [(&mut a, 0), (&mut b, 100_000)] {
            let done = &done;
            s.spawn(move || {
                let mut chain = Chain::new();
                for k in 0..60 {
                    let batch = (first + k * 20..first + k * 20 + 20).map(bulky).collect();
                    write(store, &mut chain, batch);
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        let mut reader = Sqlite::open(&path).unwrap();
        while done.load(std::sync::atomic::Ordering::SeqCst) < 2 {
            reader.query(&Query::all().limit(20)).unwrap();
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    });
    assert!(
        largest > 1 << 20,
        "the log never reached its limit: {largest}"
    );
    assert!(largest < 6 << 20, "the log grew to {largest} bytes");
    drop((a, b));
    let mut store = Sqlite::open(&path).unwrap();
    assert_eq!(store.count().unwrap(), 2400);
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.rows == 2400 && v.producers == 2, "{v:?}");
}

/// A store of the one-table schema (version 3) migrates: its table becomes the
/// first segment, sealed at the next write when full, and everything verifies.
#[test]
fn a_one_table_store_migrates_into_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("old.db");
    let mut old = Sqlite::options().schema_version(3).open(&path).unwrap();
    let mut chain = Chain::new();
    write(&mut old, &mut chain, (0..30).map(shuffled).collect());
    drop(old);

    let mut store = Sqlite::options().segment_rows(10).open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 9);
    assert_eq!(
        store.segments().unwrap(),
        [("audit_records".to_string(), 30)]
    );
    write(&mut store, &mut chain, (30..55).map(shuffled).collect());
    assert_eq!(
        store.segments().unwrap(),
        [
            ("audit_records".to_string(), 30),
            ("audit_segment_1".to_string(), 10),
            ("audit_segment_2".to_string(), 10),
            ("audit_segment_3".to_string(), 5),
        ]
    );
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.rows == 55, "{v:?}");
    let got = collect(
        &mut store,
        &Query::all().actor("u-2").order(Order::OldestFirst),
    );
    assert_eq!(got.len(), 55 / 4 + 1);
}

/// The disk fills while segments are sealed (one per batch here): the batch that
/// does not fit fails as retryable, nothing of it is stored, what was committed
/// verifies; with room again the same batch goes in, exactly once.
#[test]
fn a_full_disk_fails_the_batch_and_keeps_the_store_whole() {
    let dir = tempfile::tempdir().unwrap();
    let disk = tmpfs::Tmpfs::mount(&dir.path().join("disk"), "1m");
    let path = dir.path().join("disk/audit.db");
    // A dictionary trained at every seal: the batch the full disk fails may have
    // trained one in the transaction it rolls back.
    let mut store = Sqlite::options()
        .segment_rows(10)
        .retrain_rows(10)
        .checkpoint_mib(1)
        .open(&path)
        .unwrap();
    let mut chain = Chain::new();
    let blob = "x".repeat(2_000);
    let batch_of = |k: usize, chain: &mut Chain| -> Vec<audit::sinks::Item> {
        (k * 10..k * 10 + 10)
            .map(|i| {
                let mut r = shuffled(i);
                r.metadata
                    .insert("blob", serde_json::Value::String(blob.clone()));
                let json = chain.link(&mut r);
                let name = r.event.to_string();
                audit::sinks::Item::with_json(r, json, std::sync::Arc::from(name))
            })
            .collect()
    };
    let mut written = 0;
    let failed = loop {
        let batch = batch_of(written, &mut chain);
        match audit::sinks::Sink::write(&mut store, &batch) {
            Ok(()) => written += 1,
            Err(e) => break (batch, e),
        }
        assert!(written < 1_000, "the 1 MiB disk never filled");
    };
    let (batch, err) = failed;
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("full"), "{err}");
    assert!(written > 5, "{written} batches fit");
    // What was committed is whole, read by another handle.
    let mut reader = Sqlite::open(&path).unwrap();
    assert_eq!(reader.count().unwrap(), written as u64 * 10);
    let v = reader.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    drop(reader);

    disk.resize("64m");
    audit::sinks::Sink::write(&mut store, &batch).unwrap();
    let next = batch_of(written + 1, &mut chain);
    audit::sinks::Sink::write(&mut store, &next).unwrap();
    assert_eq!(store.count().unwrap(), (written as u64 + 2) * 10);
    let v = store.verify().unwrap();
    assert!(
        v.is_intact() && v.producers == 1 && v.continued == 0,
        "{v:?}"
    );
    assert!(store.segments().unwrap().len() > written);
    drop(store);
    // The rows were compact: compressed with dictionaries the store kept.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (dictionaries, frames): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM audit_dictionaries), \
                    (SELECT count(*) FROM audit_segment_3 WHERE typeof(record) = 'blob')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(dictionaries > 1 && frames == 10, "{dictionaries} {frames}");
}

/// A segment table is made from its own DDL (the migrations that shaped
/// `audit_records` are never edited): same columns, same indexes, same triggers.
/// Every segment has the first's columns, triggers, unique keys and indexes (the
/// tail index: time, then the keys; the field's); a sealed one has its postings
/// too (schema 8).
#[test]
fn a_new_segment_has_the_shape_of_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Sqlite::options()
        .segment_rows(5)
        .index_field("n")
        .open(dir.path().join("s.db"))
        .unwrap();
    write(
        &mut store,
        &mut Chain::new(),
        (0..11).map(shuffled).collect(),
    );
    // The sealed segments' postings, made off the writer, all written.
    assert_eq!(store.settle().unwrap(), 2);
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let strings = |sql: &str, table: &str| -> Vec<String> {
        conn.prepare(sql)
            .unwrap()
            .query_map([table], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|s| {
                // Names and layout aside.
                let s = s
                    .unwrap()
                    .replace(table, "T")
                    .replace("audit_field_", "T_field_")
                    .replace("IF NOT EXISTS ", "");
                s.split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let indexes = "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 \
                   AND sql IS NOT NULL ORDER BY name";
    for sql in [
        "SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' || pk FROM pragma_table_info(?1)",
        indexes,
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?1 ORDER BY name",
        "SELECT name FROM pragma_index_list(?1) WHERE origin = 'u'",
    ] {
        let first = strings(sql, "audit_records");
        assert!(!first.is_empty(), "{sql}");
        assert_eq!(first, strings(sql, "audit_segment_1"), "{sql}");
        if sql != indexes {
            assert_eq!(first, strings(sql, "audit_segment_2"), "{sql}");
        }
    }
    // A sealed segment keeps its open one's indexes (the tail index, the
    // field's) and has postings beside them; the open one has none yet.
    let (sealed, open) = (
        strings(indexes, "audit_segment_1"),
        strings(indexes, "audit_segment_2"),
    );
    assert_eq!(sealed, open);
    assert!(
        open.iter().any(|i| i.contains("INDEX T_tail ON T")),
        "{open:?}"
    );
    // Their postings are rows of one table (schema 9), not a table each.
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE name LIKE '%_keys' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(tables, [] as [String; 0]);
    let postings: Vec<i64> = conn
        .prepare("SELECT DISTINCT segment FROM audit_postings ORDER BY segment")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(postings, [0, 1]);
    let keyed: Vec<(String, i64)> = conn
        .prepare("SELECT name, keyed FROM audit_segments ORDER BY n")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        keyed,
        [
            ("audit_records".to_string(), 3),
            ("audit_segment_1".to_string(), 3),
            ("audit_segment_2".to_string(), 0),
        ]
    );
}

/// A store of schema 5 (every segment with every query index) migrates to schema
/// 6 without touching a row: its segments, the open one too, keep their indexes;
/// the next segment is written with a tail index and gets the rest at its seal;
/// every query reads what the same rows give in one table, and the chain verifies.
#[test]
fn a_schema_5_store_migrates_to_indexes_built_at_seal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v5.db");
    let (records, mut one, mut store, mut chain) = migrating(dir.path(), &path, 5);
    let keyed = |path: &Path| -> Vec<(String, bool, bool)> {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT s.name, s.keyed, EXISTS (SELECT 1 FROM sqlite_master AS m \
                   WHERE m.type = 'index' AND m.tbl_name = s.name AND m.name = s.name || '_tail') \
                 FROM audit_segments AS s ORDER BY s.n",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let seg = |n: usize, keyed: bool, tail: bool| {
        let name = match n {
            0 => "audit_records".to_string(),
            n => format!("audit_segment_{n}"),
        };
        (name, keyed, tail)
    };
    assert_eq!(
        keyed(&path),
        [
            seg(0, true, false),
            seg(1, true, false),
            seg(2, true, false)
        ]
    );
    write(&mut store, &mut chain, records[45..].to_vec());
    assert_eq!(
        keyed(&path),
        [
            seg(0, true, false),
            seg(1, true, false),
            seg(2, true, false),
            seg(3, false, true)
        ]
    );
    let t = |ms: i64| Timestamp::from_nanos(T0 + ms * MS);
    let queries = [
        Query::all(),
        Query::all().actor("u-1"),
        Query::all().actor("kim@globex.test"),
        Query::all().entity("app", Some("app-2")),
        Query::for_tenant("acme").actor("u-2").since(t(100)),
    ];
    reads_alike(&mut one, &mut store, &queries, 7);
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.rows == 75, "{v:?}");
}

/// An open segment's pages filtered on the actor, the entity, the tenant or the
/// event walk its tail index (time, then those columns: its one index from
/// schema 7), never the table row by row; a sealed segment's read their keys'
/// postings by primary key, then the rows by position.
#[test]
fn an_open_segment_is_read_through_its_tail_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fresh(dir.path(), "p.db", 50);
    write(
        &mut store,
        &mut Chain::new(),
        (0..120).map(shuffled).collect(),
    );
    store.settle().unwrap();
    let order = "ORDER BY time_ns DESC, seq DESC LIMIT 51";
    let actor = "(actor_id = ?1 OR actor_email = ?1) AND erased_ns IS NULL";
    let entity = "entity_id = ?1 AND entity_type = 'app' AND erased_ns IS NULL";
    let tenant = "tenant = ?1 AND erased_ns IS NULL";
    let event = "event = ?1 AND erased_ns IS NULL";
    let uses = |sql: &str, what: &str| {
        let plan = sqlite_plan::plan(store.path(), sql, 1);
        assert!(plan.iter().any(|p| p.contains(what)), "{sql}: {plan:?}");
    };
    for filter in [actor, entity, tenant, event] {
        uses(
            &format!(
                "SELECT time_ns, seq, audit_record(record) FROM audit_segment_2 WHERE {filter} {order}"
            ),
            "USING INDEX audit_segment_2_tail",
        );
        uses(
            &format!(
                "SELECT time_ns, seq, audit_record(record) FROM audit_segment_1 WHERE {filter} \
                 AND seq IN (SELECT value FROM json_each('[1, 2]'))"
            ),
            "USING INTEGER PRIMARY KEY (rowid=?)",
        );
    }
    // A seal makes the postings from the tail index alone.
    uses(
        "SELECT time_ns, seq, actor_id, actor_email, tenant, event, entity_type, entity_id \
         FROM audit_segment_2 LIMIT ?1",
        "SCAN audit_segment_2 USING COVERING INDEX audit_segment_2_tail",
    );
    // The blocks of a key's postings: the last starting at or before it, and
    // any starting inside its range (a prefix's).
    let blocks = "SELECT block FROM audit_postings WHERE segment = 1 AND kind = ?1 \
                  AND key < 'acmf' AND key >= coalesce((SELECT max(key) FROM audit_postings \
                  WHERE segment = 1 AND kind = ?1 AND key <= 'acme'), 'acme') ORDER BY key";
    uses(
        blocks,
        "SEARCH audit_postings USING PRIMARY KEY (segment=? AND kind=? AND key>? AND key<?)",
    );
    uses(
        blocks,
        "SEARCH audit_postings USING PRIMARY KEY (segment=? AND kind=? AND key<?)",
    );
}

/// Record `i` of tenant `spies`, its actor, email and entity its own.
fn spy(i: usize) -> Record {
    let mut r = record(i, Timestamp::from_nanos(T0 + i as i64 * MS));
    let context = std::sync::Arc::make_mut(&mut r.context);
    context.tenant = Some("spies".into());
    let actor = context.actor.as_mut().unwrap();
    actor.id = format!("agent-{i}");
    actor.email = Some(format!("agent-{i}@spies.test"));
    r.entity = Some(audit::record::EntityRef {
        kind: "app".into(),
        type_code: 1,
        id: Some(serde_json::json!(format!("dossier-{i}"))),
    });
    r
}

/// Whether the store's file or log holds `needle`.
fn holds(path: &Path, needle: &str) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path.to_path_buf(), PathBuf::from(wal)]
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

/// A tenant purge erasing rows of sealed segments makes their postings again:
/// no posting keeps an erased actor, email or entity, in the file or its log,
/// and no page finds the erased rows by them; the rest reads as before.
#[test]
fn a_tenant_purge_leaves_no_erased_key_in_postings() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fresh(dir.path(), "t.db", 10);
    let records: Vec<Record> = (0..45)
        .map(|i| match i % 3 {
            0 => spy(i),
            _ => record(i, Timestamp::from_nanos(T0 + i as i64 * MS)),
        })
        .collect();
    write(&mut store, &mut Chain::new(), records.clone());
    let keys = ["agent-9@spies.test", "agent-12", "dossier-21"];
    for key in keys {
        assert!(holds(store.path(), key), "{key} is stored before the purge");
    }
    let sealed = tables(&mut store);
    assert_eq!(sealed.len(), 5, "{sealed:?}");

    let report = store
        .purge(
            &Purge::older_than(Timestamp::from_nanos(T0 + 40 * MS)).tenant("spies"),
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(report.erased, 14);
    for key in keys {
        assert!(!holds(store.path(), key), "{key} is left in the store");
    }
    for q in [
        Query::all().actor("agent-9@spies.test"),
        Query::all().actor("agent-12"),
        Query::all().entity("app", Some("dossier-21")),
        Query::for_tenant("spies"),
    ] {
        let found = collect(&mut store, &q);
        assert!(
            found
                .iter()
                .all(|r| r.time >= Timestamp::from_nanos(T0 + 40 * MS)),
            "{q:?}: {found:?}"
        );
    }
    // The spy at 42 was written after the cut: still found by its keys.
    assert_eq!(
        ids(&collect(&mut store, &Query::all().actor("agent-42"))),
        [records[42].id]
    );
    let kept: Vec<uuid::Uuid> = records
        .iter()
        .filter(|r| {
            r.context.tenant.as_deref() != Some("spies")
                || r.time >= Timestamp::from_nanos(T0 + 40 * MS)
        })
        .map(|r| r.id)
        .collect();
    let all = collect(&mut store, &Query::all().order(Order::OldestFirst));
    assert_eq!(ids(&all), kept);
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.erased == 14, "{v:?}");
}

/// A purge that cuts through a sealed segment leaves postings naming only the
/// rows kept: every keyed page reads what the same purge leaves in one table.
#[test]
fn a_segment_cut_by_a_purge_has_postings_of_its_rows_only() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Record> = (0..60)
        .map(|i| record(i, Timestamp::from_nanos(T0 + i as i64 * MS)))
        .collect();
    let mut one = Sqlite::options()
        .schema_version(3)
        .open(dir.path().join("one.db"))
        .unwrap();
    let mut store = fresh(dir.path(), "s.db", 25);
    // Rows 0 to 36 go: the first segment whole, the second up to its 13th row.
    let cut = Timestamp::from_nanos(T0 + 37 * MS);
    for s in [&mut one, &mut store] {
        write(s, &mut Chain::new(), records.clone());
        let report = s.purge(&Purge::older_than(cut), &mut |_, _| {}).unwrap();
        assert_eq!(report.removed, 37);
    }
    let left = store.segments().unwrap();
    assert_eq!(
        left,
        [
            ("audit_segment_1".to_string(), 13),
            ("audit_segment_2".to_string(), 10)
        ]
    );
    let queries = [
        Query::all().actor("u-1"),
        Query::all().actor("kim@globex.test"),
        Query::all().entity("app", Some("app-2")),
        Query::all().entity("user", None::<&str>),
        Query::for_tenant("acme"),
        Query::all().events(["app_destroy", "user_login"]),
    ];
    reads_alike(&mut one, &mut store, &queries, 3);
}

/// A posting that cannot be read is an error naming the segment's postings, not
/// a page missing rows.
#[test]
fn a_corrupt_posting_is_an_error_not_fewer_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = settled(dir.path(), "c.db");
    assert!(!collect(&mut store, &Query::for_tenant("acme")).is_empty());
    sql(
        store.path(),
        "UPDATE audit_postings SET block = x'ff' WHERE segment = 1 AND kind = 3",
    );
    let err = store
        .query(&Query::for_tenant("acme").limit(100))
        .unwrap_err();
    assert!(
        matches!(&err, audit::store::StoreError::Corrupt { message, .. }
            if message.contains("audit_postings of audit_segment_1")),
        "{err}"
    );
}

/// Queries on every kind of posting (actor id and email, entity with and without
/// an id, tenant with actor and time, event) that the migration tests read.
fn keyed_queries() -> [Query; 7] {
    [
        Query::all(),
        Query::all().actor("u-1"),
        Query::all().actor("kim@globex.test"),
        Query::all().entity("app", Some("app-2")),
        Query::all().entity("user", None::<&str>),
        Query::for_tenant("acme")
            .actor("u-2")
            .since(Timestamp::from_nanos(T0 + 100 * MS)),
        Query::all().events(["user_login"]),
    ]
}

/// A store of schema 7 (sealed segments with every query index) migrates without
/// touching a row: its sealed segments keep their indexes, the open one gets
/// postings at its seal (schema 8 on; in schema 9's one table); every query
/// reads what the same rows give in one table, and the chain verifies.
#[test]
fn a_schema_7_store_migrates_to_postings_at_seal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v7.db");
    let (records, mut one, mut store, mut chain) = migrating(dir.path(), &path, 7);
    write(&mut store, &mut chain, records[45..].to_vec());
    let queries = keyed_queries();
    // Read while the segment sealed at schema 8 may still wait for its postings,
    // and once they are written.
    reads_alike(&mut one, &mut store, &queries, 7);
    store.settle().unwrap();
    let layout: Vec<(String, i64, bool)> = rusqlite::Connection::open(&path)
        .unwrap()
        .prepare(
            "SELECT s.name, s.keyed, EXISTS (SELECT 1 FROM audit_postings AS p \
               WHERE p.segment = s.n) FROM audit_segments AS s ORDER BY s.n",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let seg = |n: usize, keyed: i64, postings: bool| {
        let name = match n {
            0 => "audit_records".to_string(),
            n => format!("audit_segment_{n}"),
        };
        (name, keyed, postings)
    };
    assert_eq!(
        layout,
        [
            seg(0, 1, false),
            seg(1, 1, false),
            seg(2, 3, true),
            seg(3, 0, false)
        ]
    );
    reads_alike(&mut one, &mut store, &queries, 7);
    for tenant in [None, Some("acme")] {
        let seen = |s: &mut Sqlite| -> Vec<(String, Timestamp)> {
            s.events_seen(tenant)
                .unwrap()
                .into_iter()
                .map(|e| (e.event, e.last))
                .collect()
        };
        assert_eq!(seen(&mut store), seen(&mut one), "{tenant:?}");
    }
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.rows == 75, "{v:?}");
}

/// A store of schema 8 (a postings table per sealed segment) migrates to schema
/// 9: the blocks move, unchanged, into the one table `audit_postings` under their
/// segment's number and the tables go; the next seal writes there too. Every
/// query reads what the same rows give in one table, `check_indexes` finds
/// nothing and the chain verifies.
#[test]
fn a_schema_8_store_moves_its_postings_into_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v8.db");
    let records: Vec<Record> = (0..75).map(shuffled).collect();
    let mut one = Sqlite::options()
        .schema_version(3)
        .open(dir.path().join("one.db"))
        .unwrap();
    write(&mut one, &mut Chain::new(), records.clone());
    let mut chain = Chain::new();
    let mut old = Sqlite::options()
        .schema_version(8)
        .segment_rows(20)
        .open(&path)
        .unwrap();
    write(&mut old, &mut chain, records[..45].to_vec());
    assert_eq!(old.settle().unwrap(), 2);
    drop(old);
    let rows = |sql: &str| -> Vec<(i64, i64, String, Vec<u8>)> {
        rusqlite::Connection::open(&path)
            .unwrap()
            .prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let before = rows(
        "SELECT 0, kind, key, block FROM audit_records_keys UNION ALL \
         SELECT 1, kind, key, block FROM audit_segment_1_keys ORDER BY 1, 2, 3",
    );
    assert!(before.len() >= 10, "{}", before.len());
    let layout = |path: &Path| -> Vec<(i64, i64)> {
        rusqlite::Connection::open(path)
            .unwrap()
            .prepare(
                "SELECT keyed, (SELECT count(*) FROM sqlite_master WHERE name LIKE '%_keys') \
                 FROM audit_segments ORDER BY n",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(layout(&path), [(2, 2), (2, 2), (0, 2)]);

    let mut store = fresh(dir.path(), "v8.db", 20);
    assert_eq!(store.schema_version().unwrap(), 9);
    assert_eq!(layout(&path), [(3, 0), (3, 0), (0, 0)]);
    let moved = rows("SELECT segment, kind, key, block FROM audit_postings ORDER BY 1, 2, 3");
    assert_eq!(moved, before);
    assert_eq!(store.check_indexes().unwrap(), []);

    write(&mut store, &mut chain, records[45..].to_vec());
    store.settle().unwrap();
    assert_eq!(layout(&path), [(3, 0), (3, 0), (3, 0), (0, 0)]);
    let queries = keyed_queries();
    reads_alike(&mut one, &mut store, &queries, 7);
    assert_eq!(store.check_indexes().unwrap(), []);
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.rows == 75, "{v:?}");
}

/// A hand-edited row whose key is not text (a BLOB, bytes that are not UTF-8)
/// does not stop its segment's seal, so writes go on; no page's text matches it.
#[test]
fn a_key_that_is_not_text_does_not_stop_the_seal() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fresh(dir.path(), "b.db", 10);
    let mut chain = Chain::new();
    let records: Vec<Record> = (0..25).map(shuffled).collect();
    write(&mut store, &mut chain, records[..5].to_vec());
    sql(
        store.path(),
        "DROP TRIGGER audit_records_no_update; \
         UPDATE audit_records SET actor_id = x'ff00', actor_email = CAST(x'c328' AS TEXT) WHERE seq = 2;",
    );
    write(&mut store, &mut chain, records[5..].to_vec());
    assert_eq!(store.segments().unwrap().len(), 3);
    let actor = records[1].context.actor.as_ref().unwrap().id.clone();
    let found = collect(&mut store, &Query::all().actor(actor));
    assert!(!found.iter().any(|r| r.id == records[1].id), "{found:?}");
    assert!(!found.is_empty());
}

/// Postings edited so that they still decode (a block of emails in the actors'
/// place: a page by actor id then misses rows) are named by `check_indexes`,
/// which makes them again from the rows; an untouched store has no finding.
#[test]
fn postings_that_no_longer_match_the_rows_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = settled(dir.path(), "i.db");
    assert_eq!(store.check_indexes().unwrap(), []);
    let u1 = Query::all().actor("u-1");
    let before = collect(&mut store, &u1).len();
    sql(
        store.path(),
        "UPDATE audit_postings SET block = (SELECT block FROM audit_postings \
         WHERE segment = 1 AND kind = 2) WHERE segment = 1 AND kind = 1",
    );
    assert!(
        collect(&mut store, &u1).len() < before,
        "the edit hides rows"
    );
    let found = store.check_indexes().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].table, "audit_postings of audit_segment_1");
    assert!(
        found[0]
            .to_string()
            .contains("the actor postings from `u-1`"),
        "{}",
        found[0]
    );
    // The chain itself is intact: the rows were not touched.
    assert!(store.verify().unwrap().is_intact());
}

/// `audit_segments.keyed` of segment `n` (0: waiting for its postings, 3: has them).
fn keyed(path: &Path, n: i64) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("SELECT keyed FROM audit_segments WHERE n = ?1", [n], |r| {
            r.get(0)
        })
        .unwrap()
}

/// Writes `records` from `from` on, one at a time (a few ms apart), until
/// segments `ns` have their postings; the position of the next record.
fn write_until_keyed(
    store: &mut Sqlite,
    chain: &mut Chain,
    records: &[Record],
    from: usize,
    ns: &[i64],
) -> usize {
    let path = store.path().to_path_buf();
    for (i, r) in records.iter().enumerate().skip(from) {
        if ns.iter().all(|n| keyed(&path, *n) == 3) {
            return i;
        }
        write(store, chain, vec![r.clone()]);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("segments {ns:?} never got their postings");
}

/// A seal only closes its segment: it waits for its postings, read through its
/// time index meanwhile (pages read what they read after), until a later batch
/// writes those made off the writer. A handle dropped right after a seal leaves
/// its segment waiting; the next handle that writes has them made.
#[test]
fn postings_are_made_off_the_writer_and_written_by_a_later_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fresh(dir.path(), "l.db", 10);
    let mut chain = Chain::new();
    let records: Vec<Record> = (0..2000).map(shuffled).collect();
    write(&mut store, &mut chain, records[..25].to_vec());
    assert_eq!((keyed(store.path(), 0), keyed(store.path(), 1)), (0, 0));
    let queries = [
        Query::all().actor("u-1"),
        Query::all().entity("app", Some("app-2")),
        Query::for_tenant("acme"),
        Query::all().events(["user_login"]),
    ];
    let read = |store: &mut Sqlite| -> Vec<Vec<uuid::Uuid>> {
        queries
            .iter()
            .map(|q| ids(&collect(store, &q.clone().limit(3))))
            .collect()
    };
    let waiting = read(&mut store);
    let next = write_until_keyed(&mut store, &mut chain, &records, 25, &[0, 1]);
    let mut one = Sqlite::options()
        .schema_version(3)
        .open(dir.path().join("one.db"))
        .unwrap();
    write(&mut one, &mut Chain::new(), records[..next].to_vec());
    let settled: Vec<Vec<uuid::Uuid>> = read(&mut store);
    assert_eq!(settled, read(&mut one));
    // The rows written since are newer: the older pages' rows are still there.
    for (w, s) in waiting.iter().zip(&settled) {
        assert!(!w.is_empty() && !s.is_empty());
    }
    assert_eq!(store.check_indexes().unwrap(), []);
    // A seal, and the handle gone before a later batch.
    let n = next;
    let to_seal = 10 - (n % 10) + 1;
    write(&mut store, &mut chain, records[n..n + to_seal].to_vec());
    let sealed = tables(&mut store).len() as i64 - 2;
    drop(store);
    // The thread's connection closed first: the writer's, last, removed the log.
    assert!(!dir.path().join("l.db-wal").exists());
    assert_eq!(keyed(&dir.path().join("l.db"), sealed), 0);
    let mut store = fresh(dir.path(), "l.db", 10);
    write_until_keyed(&mut store, &mut chain, &records, n + to_seal, &[sealed]);
    assert_eq!(store.check_indexes().unwrap(), []);
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
}

/// A purge erasing rows of segments that wait for their postings makes them in
/// its own transaction; blocks made from the rows before it are never written,
/// and no erased key is left in the file or its log.
#[test]
fn a_purge_while_postings_are_made_leaves_no_erased_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fresh(dir.path(), "e.db", 10);
    let mut chain = Chain::new();
    write(&mut store, &mut chain, (0..25).map(spy).collect());
    let purge = Purge::older_than(Timestamp::from_nanos(T0 + 15 * MS)).tenant("spies");
    let erased = store.purge(&purge, &mut |_, _| {}).unwrap().erased;
    assert_eq!(erased, 15);
    assert_eq!((keyed(store.path(), 0), keyed(store.path(), 1)), (3, 3));
    // Whatever the thread made from the rows before the purge arrives meanwhile.
    for i in 25..60 {
        write(&mut store, &mut chain, vec![spy(i)]);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(store.check_indexes().unwrap(), []);
    for key in ["agent-3@spies.test", "agent-12", "dossier-14"] {
        assert!(!holds(store.path(), key), "{key} is left in the store");
    }
    assert_eq!(collect(&mut store, &Query::all().actor("agent-12")), []);
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.erased == 15, "{v:?}");
}
