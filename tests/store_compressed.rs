//! The SQLite store's compressed records (schema 5): rows after the first seal are
//! zstd frames made with a dictionary the store trained on its own records; they
//! read back as written, the dictionaries learn no tenant's own words, purges
//! remove the dictionaries no row needs, a changed or missing dictionary is named
//! by the verification, and field indexes of older stores are made again.

mod sqlite_plan;
mod store_suite;

use std::path::Path;

use audit::integrity::Chain;
use audit::store::{Break, FieldValue, Purge, Query, Sqlite, Store};
use audit::{Record, Timestamp};
use store_suite::{collect, populate, record, write};

const T0: i64 = 1_780_000_000_000_000_000;
const MS: i64 = 1_000_000;

fn sql(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

/// `(text rows, compressed rows, average stored bytes of each)` over every segment.
fn stored_kinds(path: &Path) -> (i64, i64, f64, f64) {
    let conn = sql(path);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM audit_segments ORDER BY n")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let (mut text, mut blob, mut text_bytes, mut blob_bytes) = (0, 0, 0, 0);
    for t in tables {
        let (tn, tb, bn, bb): (i64, i64, i64, i64) = conn
            .query_row(
                &format!(
                    "SELECT count(*) FILTER (WHERE typeof(record) = 'text'), \
                            coalesce(sum(length(record)) FILTER (WHERE typeof(record) = 'text'), 0), \
                            count(*) FILTER (WHERE typeof(record) = 'blob'), \
                            coalesce(sum(length(record)) FILTER (WHERE typeof(record) = 'blob'), 0) \
                     FROM {t}"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        text += tn;
        text_bytes += tb;
        blob += bn;
        blob_bytes += bb;
    }
    let avg = |bytes: i64, n: i64| bytes as f64 / n.max(1) as f64;
    (text, blob, avg(text_bytes, text), avg(blob_bytes, blob))
}

fn dictionaries(path: &Path) -> Vec<(i64, Vec<u8>)> {
    sql(path)
        .prepare("SELECT first_seq, dictionary FROM audit_dictionaries ORDER BY n")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `r` changed through its JSON.
fn edited(r: Record, edit: impl FnOnce(&mut serde_json::Value)) -> Record {
    let mut json = serde_json::to_value(&r).unwrap();
    edit(&mut json);
    serde_json::from_value(json).unwrap()
}

/// Asserts two sets of records hold the same JSON (hashes aside), showing the
/// first difference only.
fn assert_same(got: Vec<Record>, want: Vec<Record>) {
    let (got, want) = (by_id(got), by_id(want));
    assert_eq!(got.len(), want.len());
    if let Some((g, w)) = got.iter().zip(&want).find(|(g, w)| g != w) {
        panic!("read back:\n{g}\nwritten:\n{w}");
    }
}

fn by_id(mut records: Vec<Record>) -> Vec<String> {
    records.sort_by_key(|r| r.id);
    records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.hash = None;
            r.prev_hash = None;
            serde_json::to_string(&r).unwrap()
        })
        .collect()
}

#[test]
fn records_after_the_first_seal_are_stored_compressed_and_read_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let mut store = Sqlite::options().segment_rows(100).open(&path).unwrap();
    let written = populate(&mut store, 450, T0);

    let (text, blob, text_avg, blob_avg) = stored_kinds(&path);
    assert_eq!(
        (text, blob),
        (100, 350),
        "the first segment is written before any dictionary"
    );
    assert!(
        blob_avg < text_avg * 0.5,
        "compressed {blob_avg:.0} bytes vs {text_avg:.0} as text"
    );
    assert_eq!(dictionaries(&path).len(), 1);
    assert_eq!(dictionaries(&path)[0].0, 101);
    // Compact rows hold the hash and link as 32 bytes each; older rows as hex.
    let shape = |table: &str| -> (String, i64, String, i64) {
        sql(&path)
            .query_row(
                &format!(
                    "SELECT typeof(hash), length(hash), typeof(link), length(link) \
                     FROM {table} ORDER BY seq LIMIT 1"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap()
    };
    assert_eq!(
        shape("audit_records"),
        ("text".into(), 64, "text".into(), 64)
    );
    assert_eq!(
        shape("audit_segment_3"),
        ("blob".into(), 32, "blob".into(), 32)
    );

    // Every read sees the JSON text: pages, get, filters, search, follow.
    let all = collect(&mut store, &Query::all());
    assert_same(all, written.clone());
    for r in written.iter().step_by(37) {
        let got = store.get(r.id).unwrap().expect("stored");
        assert_eq!(got.description, r.description);
    }
    let n = store.query(&Query::all().field("n", 333)).unwrap();
    assert_eq!(n.records.len(), 1);
    assert_eq!(n.records[0].metadata["n"], 333);
    let search = collect(&mut store, &Query::all().text("#40"));
    assert_eq!(search.len(), 11, "#40 and #400-#409");
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.rows == 450, "{v:?}");
    // A link of 32 bytes changed past the triggers breaks the chain there.
    sql(&path)
        .execute_batch(
            "DROP TRIGGER audit_segment_3_no_update;
             UPDATE audit_segment_3 SET link = zeroblob(32) WHERE seq = 333;",
        )
        .unwrap();
    match store.verify().unwrap().first_break {
        Some(Break::Inserted { seq: 333, .. }) => {}
        other => panic!("{other:?}"),
    }

    // Off: text only, the same reads.
    let plain_path = dir.path().join("plain.db");
    let mut plain = Sqlite::options()
        .segment_rows(100)
        .compress(false)
        .open(&plain_path)
        .unwrap();
    write(&mut plain, &mut Chain::new(), written.clone());
    assert_eq!(stored_kinds(&plain_path).1, 0);
    assert!(dictionaries(&plain_path).is_empty());
    assert_same(collect(&mut plain, &Query::all()), written);
}

/// A record near the size limit and odd text go through a frame unchanged.
#[test]
fn large_and_odd_records_survive_compression() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.db");
    let mut store = Sqlite::options().segment_rows(20).open(&path).unwrap();
    let mut chain = Chain::new();
    write(
        &mut store,
        &mut chain,
        (0..40)
            .map(|i| record(i, Timestamp::from_nanos(T0 + i as i64 * MS)))
            .collect(),
    );
    let odd = edited(record(40, Timestamp::from_nanos(T0 + 40 * MS)), |r| {
        r["description"] = format!("nul \u{0} é 山田 {}", "x".repeat(900_000)).into();
        r["metadata"]["deep"] = serde_json::json!([[[[[[["down"]]]]]]]);
    });
    write(&mut store, &mut chain, vec![odd.clone()]);
    assert_eq!(stored_kinds(&path).1, 21, "rows 21-41 compressed");
    let got = store.get(odd.id).unwrap().unwrap();
    assert_eq!(got.description, odd.description);
    assert_eq!(got.metadata["deep"], odd.metadata["deep"]);
    assert!(store.verify().unwrap().is_intact());
}

/// Each tenant's own words (here in emails and descriptions, in every record of
/// the tenant) never reach a dictionary; words three tenants share do.
#[test]
fn dictionaries_learn_only_what_tenants_share() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut store = Sqlite::options().segment_rows(300).open(&path).unwrap();
    let records: Vec<Record> = (0..400)
        .map(|i| {
            let t = i % 5;
            edited(record(i, Timestamp::from_nanos(T0 + i as i64 * MS)), |r| {
                r["tenant"] = format!("tenant{t}").into();
                r["actor"]["email"] = format!("owner@private{t}domain.test").into();
                r["description"] =
                    format!("Sharedphrase handled by privatename{t} in room {i}").into();
            })
        })
        .collect();
    write(&mut store, &mut Chain::new(), records);
    let dicts = dictionaries(&path);
    assert_eq!(dicts.len(), 1);
    let dict = String::from_utf8_lossy(&dicts[0].1);
    for t in 0..5 {
        assert!(
            !dict.contains(&format!("private{t}")),
            "tenant {t} in {dict:?}"
        );
    }
    assert!(dict.contains("Sharedphrase"), "{dict:?}");

    // A tenant purge erases the tenant's rows; nothing of them is in a dictionary.
    let report = store
        .purge(&Purge::everything().tenant("tenant3"), &mut |_, _| {})
        .unwrap();
    assert_eq!(report.erased, 80);
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.erased == 80, "{v:?}");
    assert!(
        store
            .query(&Query::for_tenant("tenant3"))
            .unwrap()
            .records
            .is_empty()
    );
}

/// Dictionaries are trained every `retrain_rows`; a purge removes those no row
/// left was written with, and what stays reads and verifies.
#[test]
fn purges_remove_the_dictionaries_no_row_needs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let mut store = Sqlite::options()
        .segment_rows(50)
        .retrain_rows(100)
        .open(&path)
        .unwrap();
    let written = populate(&mut store, 600, T0);
    let firsts: Vec<i64> = dictionaries(&path).iter().map(|d| d.0).collect();
    assert_eq!(firsts, [51, 151, 251, 351, 451, 551]);

    let report = store
        .purge(
            &Purge::older_than(Timestamp::from_nanos(T0 + 300 * MS)),
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(report.removed, 300);
    // Rows 301.. were written with the dictionaries from 251 on.
    let firsts: Vec<i64> = dictionaries(&path).iter().map(|d| d.0).collect();
    assert_eq!(firsts, [251, 351, 451, 551]);
    assert_same(collect(&mut store, &Query::all()), written[300..].to_vec());
    assert!(store.verify().unwrap().is_intact());

    // Writing goes on with the newest.
    write(
        &mut store,
        &mut Chain::new(),
        (600..650)
            .map(|i| record(i, Timestamp::from_nanos(T0 + i as i64 * MS)))
            .collect(),
    );
    assert_eq!(store.verify().unwrap().rows, 350);

    // Purging everything keeps the dictionary of the next rows.
    store.purge(&Purge::everything(), &mut |_, _| {}).unwrap();
    assert_eq!(dictionaries(&path).len(), 1);
    assert!(store.verify().unwrap().is_intact());
}

/// Dictionaries are append-only; one changed or removed past the triggers breaks
/// the first row written with it.
#[test]
fn a_changed_or_missing_dictionary_is_named_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let mut store = Sqlite::options().segment_rows(40).open(&path).unwrap();
    populate(&mut store, 100, T0);
    assert!(store.verify().unwrap().is_intact());

    let conn = sql(&path);
    for refused in [
        "UPDATE audit_dictionaries SET made_ns = 0",
        "DELETE FROM audit_dictionaries",
    ] {
        let e = conn.execute_batch(refused).unwrap_err().to_string();
        assert!(e.contains("append-only"), "{e}");
    }
    // A changed byte deep in the dictionary: frames decode into other text, or not.
    conn.execute_batch(
        "DROP TRIGGER audit_dictionaries_no_update;
         UPDATE audit_dictionaries
            SET dictionary = substr(dictionary, 1, length(dictionary) - 100)
                             || zeroblob(100);",
    )
    .unwrap();
    drop(conn);
    let mut reader = Sqlite::open(&path).unwrap();
    match reader.verify().unwrap().first_break {
        Some(Break::Changed { seq: 41, .. }) => {}
        other => panic!("{other:?}"),
    }
    // A page holding such a row says which row it cannot read; a field filter
    // passes over it (rows 1-40 are text and still match).
    let e = reader.query(&Query::all().limit(100)).unwrap_err();
    assert!(e.to_string().contains("row"), "{e}");
    let n = reader.query(&Query::all().field("n", 7)).unwrap();
    assert_eq!(n.records.len(), 1);
    // Writing goes on, and what is written reads back.
    let more = populate(&mut Sqlite::open(&path).unwrap(), 5, T0 + 100 * MS);
    for r in &more {
        assert_eq!(
            reader.get(r.id).unwrap().unwrap().description,
            r.description
        );
    }

    sql(&path)
        .execute_batch("DROP TRIGGER audit_dictionaries_no_delete; DELETE FROM audit_dictionaries;")
        .unwrap();
    match Sqlite::open(&path).unwrap().verify().unwrap().first_break {
        Some(Break::Changed { seq: 41, .. }) => {}
        other => panic!("{other:?}"),
    }
}

/// A store of schema 4 with a field index migrates: the index is made again over
/// the expression queries now use, and the planner picks it.
#[test]
fn field_indexes_of_an_older_store_are_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let mut old = Sqlite::options()
        .schema_version(4)
        .segment_rows(30)
        .open(&path)
        .unwrap();
    populate(&mut old, 70, T0);
    drop(old);
    // The field indexes as schema 4 made them, over `json_extract(record, …)`.
    for t in ["audit_records", "audit_segment_1", "audit_segment_2"] {
        let index = if t == "audit_records" {
            "audit_field_n".to_string()
        } else {
            format!("{t}_field_n")
        };
        sql(&path)
            .execute_batch(&format!(
                "CREATE INDEX {index} ON {t} (json_extract(record, '$.metadata.n'), time_ns) \
                 WHERE json_extract(record, '$.metadata.n') IS NOT NULL"
            ))
            .unwrap();
    }
    let index_sql = |path: &Path| -> Vec<String> {
        sql(path)
            .prepare("SELECT sql FROM sqlite_master WHERE name LIKE '%_field_n' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let old_sql = index_sql(&path);
    assert!(
        old_sql.iter().all(|s| !s.contains("audit_record(")),
        "{old_sql:?}"
    );

    let mut store = Sqlite::options()
        .segment_rows(30)
        .index_field("n")
        .open(&path)
        .unwrap();
    assert_eq!(store.schema_version().unwrap(), 9);
    let made = index_sql(&path);
    assert_eq!(made.len(), 3, "{made:?}");
    assert!(
        made.iter().all(|s| s.contains("audit_record(record)")),
        "{made:?}"
    );
    // New rows go to a compressed segment once the open one seals.
    populate(&mut store, 60, T0 + 70 * MS);
    assert!(stored_kinds(&path).1 > 0);
    // `n` runs 0-69 in the first rows, 0-59 in the new ones.
    for (n, found) in [(5, 2), (45, 2), (65, 1)] {
        let page = store
            .query(&Query::all().field("n", FieldValue::Int(n)))
            .unwrap();
        assert_eq!(page.records.len(), found, "n = {n}");
    }
    let plan = sqlite_plan::plan(
        &path,
        "SELECT seq FROM audit_segment_3 \
         WHERE json_extract(nullif(audit_record(record), ''), '$.metadata.n') = ?1",
        5,
    );
    assert!(
        plan.iter().any(|p| p.contains("audit_segment_3_field_n")),
        "{plan:?}"
    );
    assert!(store.verify().unwrap().is_intact());
}

/// The writer compresses a batch's rows bound for the open segment on a helper
/// thread: batches that cross seals (and dictionaries) mid-way, replayed batches,
/// and a purge at a dictionary's boundary still give rows that read back as
/// written and verify, each made with the dictionary of its position.
#[test]
fn batches_compressed_ahead_use_the_dictionary_of_each_row() {
    use audit::sinks::{Item, Sink};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ahead.db");
    let mut store = Sqlite::options()
        .segment_rows(100)
        .retrain_rows(100)
        .open(&path)
        .unwrap();
    let mut chain = Chain::new();
    let written: Vec<Record> = (0..900)
        .map(|i| record(i, Timestamp::from_nanos(T0 + i as i64 * MS)))
        .collect();
    let items: Vec<Item> = written
        .iter()
        .cloned()
        .map(|mut r| {
            let json = chain.link(&mut r);
            let name = Arc::from(&*r.event);
            Item::with_json(r, json, name)
        })
        .collect();
    // Batches of 150 (segments of 100): each starts with 50 rows compressed ahead
    // or none, then seals and goes on with the next dictionary.
    for (n, batch) in items.chunks(150).enumerate() {
        store.write(batch).unwrap();
        if n % 2 == 1 {
            // Replayed (a retried delivery): every row skipped, nothing moves.
            store.write(batch).unwrap();
        }
    }
    let (text, blob, _, _) = stored_kinds(&path);
    assert_eq!((text, blob), (100, 800));
    let firsts: Vec<i64> = dictionaries(&path).iter().map(|d| d.0).collect();
    // The last replay found its segment full and sealed it (as the next write
    // would have): the next rows' dictionary is made already.
    assert_eq!(firsts, [101, 201, 301, 401, 501, 601, 701, 801, 901]);
    assert_same(collect(&mut store, &Query::all()), written.clone());
    let report = store.verify().unwrap();
    assert!(report.is_intact());
    assert_eq!(report.rows, 900);

    // A purge through row 450 removes the dictionaries before 401's: a row past
    // 401 compressed with an older one would no longer read or verify.
    let report = store
        .purge(
            &Purge::older_than(Timestamp::from_nanos(T0 + 450 * MS)),
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(report.removed, 450);
    let firsts: Vec<i64> = dictionaries(&path).iter().map(|d| d.0).collect();
    assert_eq!(firsts, [401, 501, 601, 701, 801, 901]);
    assert_same(collect(&mut store, &Query::all()), written[450..].to_vec());
    assert!(store.verify().unwrap().is_intact());
}
