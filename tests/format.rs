//! The formats of `docs/FORMAT.md`, pinned: known-answer vectors for the record JSON,
//! its hash and the store's links (`tests/fixtures/kat.json`), a store and a spool
//! segment written by an earlier version that this one must still read and verify
//! (`tests/fixtures/store-v2.db`, `tests/fixtures/spool-v2.seg`), and the
//! independent verifier `docs/verify_store.py` run on good and tampered stores.
//!
//! The fixtures are written once (`UPDATE_EXPECT=1 cargo test --test format` writes
//! the missing ones) and checked forever: never regenerate one that exists.

mod store_suite;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use audit::integrity::Chain;
use audit::spool::{Spool, SpoolEntry};
use audit::store::{ChainKey, Link, Purge, Query, Sqlite, Store};
use audit::{Auditor, Record, Timestamp, audited};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn writing_fixtures() -> bool {
    std::env::var_os("UPDATE_EXPECT").is_some()
}

/// Records exercising every rule of the format: escapes, non-ASCII, nested JSON,
/// a time before 1970, non-finite floats as text, absent optional keys, a bulk
/// operation and a revert pointer.
fn kat_records() -> Vec<Record> {
    let site = json!({"module": "shop::orders", "file": "src/orders.rs", "line": 42, "function": "refund"});
    let base = |id: &str, time: &str, metadata: Value| {
        json!({
            "id": id, "time": time, "event": "order_refund", "code": 17, "category": "order",
            "level": "warn", "outcome": "success", "error": null, "duration_ns": 1250,
            "description": "Order 7 refunded", "actor": {"id": "u-1", "email": "ann@example.com", "kind": "user"},
            "impersonator": null, "tenant": "acme", "environment": null, "source": "api",
            "request": {"id": "req-9", "ip": "192.0.2.4"}, "entity": {"type": "order", "type_code": 3, "id": 7},
            "changes": null, "metadata": metadata, "site": site, "prev_hash": null, "hash": null
        })
    };
    let mut second = base(
        "01936f2c-0000-7000-8000-000000000002",
        "1969-07-20T20:17:40.000000000Z",
        json!({"amount": -0.1, "note": "quote \" backslash \\ tab \t nul \u{0} unit \u{1f} é 🦀 /", "risk": "NaN"}),
    );
    second["outcome"] = json!("failure");
    second["error"] = json!("panicked: boom");
    second["changes"] = json!({
        "previous": {"state": "paid", "lines": [1, 2]},
        "current": {"state": "refunded", "lines": [1, 2]},
        "difference": {"state": ["paid", "refunded"]}
    });
    let third = base(
        "01936f2c-0000-7000-8000-000000000003",
        "2262-04-11T23:47:16.854775807Z",
        json!({"amount": 1e300, "note": "", "risk": "-Infinity"}),
    );
    // One record of a bulk call that also reverts an earlier record.
    let mut fourth = base(
        "01936f2c-0000-7000-8000-000000000004",
        "2026-11-30T12:00:00.000000001Z",
        json!({"amount": 3, "note": "bulk", "risk": 0.5}),
    );
    fourth["operation"] = json!({"id": "01936f2c-0000-7000-8000-0000000000ff", "index": 1});
    fourth["reverts"] = json!("01936f2c-0000-7000-8000-000000000001");
    [
        base(
            "01936f2c-0000-7000-8000-000000000001",
            "2026-11-23T09:30:00.123456789Z",
            json!({"amount": 12, "note": "full refund", "risk": 0.25}),
        ),
        second,
        third,
        fourth,
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).unwrap())
    .collect()
}

/// The JSON lines, hashes and links of the known-answer records.
fn kat_now() -> Value {
    let mut chain = Chain::new();
    let (plain, keyed) = (ChainKey::none(), ChainKey::hmac(b"kat-key"));
    let (mut link, mut hlink) = (Link::GENESIS, Link::GENESIS);
    let mut out = Vec::new();
    for mut r in kat_records() {
        let json = chain.link(&mut r);
        let hash = r.hash.unwrap();
        link = plain.link(&link, &hash);
        hlink = keyed.link(&hlink, &hash);
        out.push(json!({
            "json": json, "hash": hash.as_str(),
            "link_sha256": link.to_string(), "link_hmac_sha256_kat_key": hlink.to_string(),
        }));
    }
    json!({"records": out, "hmac_key_check_kat_key": keyed.fingerprint()})
}

#[test]
fn known_answer_vectors() {
    let path = fixture("kat.json");
    let now = kat_now();
    if !path.exists() {
        assert!(
            writing_fixtures(),
            "{} is missing: it is written once, with UPDATE_EXPECT=1",
            path.display()
        );
        std::fs::write(&path, serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
    }
    let pinned: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        now, pinned,
        "the record JSON, hash or link rules changed: stores written earlier would no longer verify"
    );
    // And the rules of FORMAT.md reproduce them by hand.
    for r in pinned["records"].as_array().unwrap() {
        let json = r["json"].as_str().unwrap();
        let hash = r["hash"].as_str().unwrap();
        let canonical = json.replace(&format!("\"hash\":\"{hash}\"}}"), "\"hash\":null}");
        assert_eq!(
            audit::integrity::hash_of_json(json).unwrap().1.as_str(),
            hash
        );
        let again: Record = serde_json::from_str(json).unwrap();
        assert_eq!(again.to_json(), json);
        assert!(canonical.ends_with("\"hash\":null}"));
    }
    // The same vectors recomputed from FORMAT.md's rules by other code (Python).
    let check = r#"
import hashlib, hmac, json, sys
k = json.load(open(sys.argv[1]))
prev, keyed = bytes(32), bytes(32)
for r in k["records"]:
    j, h = r["json"], r["hash"]
    canonical = j[: -len('"hash":"%s"}' % h)] + '"hash":null}'
    assert hashlib.sha256(canonical.encode()).hexdigest() == h
    prev = hashlib.sha256(prev + h.encode()).digest()
    assert prev.hex() == r["link_sha256"]
    keyed = hmac.new(b"kat-key", keyed + h.encode(), hashlib.sha256).digest()
    assert keyed.hex() == r["link_hmac_sha256_kat_key"]
check = hmac.new(b"kat-key", bytes(32) + b"audit chain key check", hashlib.sha256)
assert check.hexdigest() == k["hmac_key_check_kat_key"]
"#;
    let out = Command::new("python3")
        .args(["-c", check])
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[audited(event = "widget_create", meta(name = name))]
fn add_widget(name: &str) {}

/// Writes the store fixture: 30 records in two producer chains, the first 10 purged.
fn write_store_fixture(path: &Path) {
    let dir = tempfile::tempdir().unwrap();
    for run in 0..2 {
        let auditor = Auditor::builder()
            .sink(Sqlite::open(path).unwrap())
            .spool_dir(dir.path().join("spool"))
            .max_wait(Duration::from_millis(5))
            .build()
            .unwrap();
        audit::dispatch::with_dispatch(Arc::new(auditor.clone()), || {
            for i in 0..15 {
                add_widget(&format!("run {run} widget {i} \"quoted\" é"));
            }
        });
        assert!(auditor.shutdown().is_clean());
    }
    let mut store = Sqlite::open(path).unwrap();
    let tenth = store
        .query(
            &Query::all()
                .order(audit::store::Order::OldestFirst)
                .limit(10),
        )
        .unwrap();
    let cut = Timestamp::from_nanos(tenth.records.last().unwrap().time.as_nanos() + 1);
    let report = store
        .purge(&Purge::older_than(cut), &mut |_, _| {})
        .unwrap();
    assert_eq!(report.removed, 10);
}

/// A copy of the store fixture in a temporary directory (opening writes to it).
fn store_copy(dir: &Path) -> PathBuf {
    let path = fixture("store-v2.db");
    if !path.exists() {
        assert!(writing_fixtures(), "{} is missing", path.display());
        write_store_fixture(&path);
    }
    let copy = dir.join("store.db");
    std::fs::copy(&path, &copy).unwrap();
    copy
}

fn python_verify(db: &Path) -> (bool, String) {
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/verify_store.py"))
        .arg(db)
        .output()
        .expect("python3 runs (the verifier of docs/FORMAT.md)");
    // Shown with a failing test's output: why the verifier stopped.
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_store_written_by_an_earlier_version_still_reads_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_copy(dir.path());
    let mut store = Sqlite::open(&db).unwrap();
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!((v.rows, v.anchor.as_ref().unwrap().purged), (20, 10));
    assert_eq!((v.producers, v.continued), (1, 1), "{v:?}");
    let page = store
        .query(
            &Query::all()
                .order(audit::store::Order::OldestFirst)
                .limit(100),
        )
        .unwrap();
    assert_eq!(page.records.len(), 20);
    assert_eq!(
        page.records[0].metadata["name"],
        "run 0 widget 10 \"quoted\" é"
    );
    // It takes new records and still verifies.
    drop(store);
    let spool = tempfile::tempdir().unwrap();
    let auditor = Auditor::builder()
        .sink(Sqlite::open(&db).unwrap())
        .spool_dir(spool.path())
        .build()
        .unwrap();
    audit::dispatch::with_dispatch(Arc::new(auditor.clone()), || add_widget("new"));
    assert!(auditor.shutdown().is_clean());
    let v = Sqlite::open(&db).unwrap().verify().unwrap();
    assert!(v.is_intact() && v.rows == 21, "{v:?}");
}

#[test]
fn the_documented_verifier_agrees_with_verify() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_copy(dir.path());
    let (ok, out) = python_verify(&db);
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        "intact: 20 rows, 1 producers, 1 continued, 0 erased"
    );

    // One changed description, written past the triggers as an attacker would.
    assert_both_verifiers_stop_at(
        &db,
        "DROP TRIGGER audit_records_no_update;
         UPDATE audit_records SET record = replace(record, 'widget 12', 'widget 99') WHERE seq = 13;",
        13,
        "row 13: the record was changed (its hash does not match)",
    );
}

/// Runs `sql` on the store's file past its API, as an attacker would; then the
/// documented verifier fails saying `says`, and `verify` breaks at row `seq` too.
fn assert_both_verifiers_stop_at(db: &Path, sql: &str, seq: i64, says: &str) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
    let (ok, out) = python_verify(db);
    assert!(!ok);
    assert_eq!(out.trim(), says);
    let v = Sqlite::open(db).unwrap().verify().unwrap();
    assert_eq!(v.first_break.unwrap().seq(), seq);
}

/// Rows erased by a tenant purge verify from their hash alone, in the documented
/// verifier too; a changed hash on an erased row breaks the chain there.
#[test]
fn the_documented_verifier_checks_erased_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("erased.db");
    let mut store = Sqlite::open(&db).unwrap();
    store_suite::populate(&mut store, 30, 1_780_000_000_000_000_000);
    let report = store
        .purge(&Purge::everything().tenant("acme"), &mut |_, _| {})
        .unwrap();
    assert_eq!(report.erased, 10);
    drop(store);
    let (ok, out) = python_verify(&db);
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        "intact: 30 rows, 0 producers, 0 continued, 10 erased"
    );
    let v = Sqlite::open(&db).unwrap().verify().unwrap();
    assert_eq!((v.rows, v.producers, v.continued, v.erased), (30, 0, 0, 10));

    // Row 4 (acme's second record) is erased; forge its hash (its first digit
    // changed, whatever it was: replacing it by `f` left a hash starting with `f`
    // as it was, 1 run in 16).
    assert_both_verifiers_stop_at(
        &db,
        "DROP TRIGGER audit_records_no_update;
         UPDATE audit_records
            SET hash = CASE substr(hash, 1, 1) WHEN 'f' THEN '0' ELSE 'f' END || substr(hash, 2)
          WHERE seq = 4;",
        4,
        "row 4: the link chain breaks here",
    );
}

/// A store of several segments, its oldest dropped by a purge, verifies in the
/// documented verifier too, which walks the segments in `audit_segments` order.
#[test]
fn the_documented_verifier_walks_segments() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("segments.db");
    let mut store = Sqlite::options().segment_rows(10).open(&db).unwrap();
    let t0 = 1_780_000_000_000_000_000;
    store_suite::populate(&mut store, 45, t0);
    let report = store
        .purge(
            &Purge::older_than(audit::Timestamp::from_nanos(t0 + 12_000_000)),
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(report.removed, 12);
    assert_eq!(store.segments().unwrap().len(), 4);
    drop(store);
    let (ok, out) = python_verify(&db);
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        "intact: 33 rows, 0 producers, 1 continued, 0 erased"
    );

    // Rows after the first seal are compressed: one is forged the way an attacker
    // who knows the format would, decompressed, changed and compressed again with
    // the store's own dictionary.
    let forged = recompressed(&db, "audit_segment_3", 34, |json| {
        json.replace("#33 ", "#34 ")
    });
    let set_record = |seq: i64, record: &[u8]| {
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute(
                "UPDATE audit_segment_3 SET record = ?1 WHERE seq = ?2",
                rusqlite::params![record, seq],
            )
            .unwrap();
    };
    let original: Vec<u8> = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT record FROM audit_segment_3 WHERE seq = 34",
            [],
            |r| r.get(0),
        )
        .unwrap();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TRIGGER audit_segment_3_no_update")
        .unwrap();
    set_record(34, &forged);
    let (ok, out) = python_verify(&db);
    assert!(!ok);
    assert_eq!(
        out.trim(),
        "row 34: the record was changed (its hash does not match)"
    );
    let v = Sqlite::open(&db).unwrap().verify().unwrap();
    assert_eq!(v.first_break.unwrap().seq(), 34);
    set_record(34, &original);

    // A frame cut short cannot be decompressed: both verifiers stop there.
    assert_both_verifiers_stop_at(
        &db,
        "UPDATE audit_segment_3 SET record = substr(record, 1, length(record) - 4) WHERE seq = 35;",
        35,
        "row 35: the record cannot be decompressed",
    );
}

/// The compressed record of row `seq` in `table`, decompressed with the store's
/// dictionary (named by the frame), changed by `edit` and compressed again.
fn recompressed(db: &Path, table: &str, seq: i64, edit: impl Fn(&str) -> String) -> Vec<u8> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let frame: Vec<u8> = conn
        .query_row(
            &format!("SELECT record FROM {table} WHERE seq = ?1"),
            [seq],
            |r| r.get(0),
        )
        .expect("a compressed record");
    let id = zstd::zstd_safe::get_dict_id_from_frame(&frame).expect("a dictionary id");
    let dictionary: Vec<u8> = conn
        .query_row(
            "SELECT dictionary FROM audit_dictionaries WHERE zstd_id = ?1",
            [id.get()],
            |r| r.get(0),
        )
        .unwrap();
    let json = zstd::bulk::Decompressor::with_dictionary(&dictionary)
        .unwrap()
        .decompress(&frame, 1 << 20)
        .unwrap();
    let changed = edit(std::str::from_utf8(&json).unwrap());
    assert_ne!(changed.as_bytes(), &json[..], "the edit changes the record");
    zstd::bulk::Compressor::with_dictionary(1, &dictionary)
        .unwrap()
        .compress(changed.as_bytes())
        .unwrap()
}

#[test]
fn a_spool_segment_written_by_an_earlier_version_still_reads() {
    let path = fixture("spool-v2.seg");
    // The segment was written with the first three records (before the fourth).
    let records = kat_records();
    let entries: Vec<SpoolEntry> = records[..3]
        .iter()
        .map(|r| SpoolEntry::new("order_refund", r.to_json()))
        .collect();
    if !path.exists() {
        assert!(writing_fixtures(), "{} is missing", path.display());
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        spool.append(&entries).unwrap();
        spool.seal();
        std::fs::copy(&spool.segments().unwrap()[0], &path).unwrap();
    }
    let segment = Spool::read_segment(&path).unwrap();
    assert!(segment.corrupt.is_empty());
    assert_ne!(segment.id, 0);
    assert_eq!(segment.entries, entries);
}
