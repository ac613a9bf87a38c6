//! The SQLite store: the conformance suite, plus what is SQLite's own (migrations,
//! keys, the file on disk, the pipeline writing into it).

mod sqlite_plan;
mod store_suite;

use std::path::{Path, PathBuf};

use audit::store::{Purge, Query, Sqlite, Store, StoreError};
use store_suite::Harness;

struct SqliteHarness {
    dir: tempfile::TempDir,
    /// Rows per segment (`None`: the default, which these tests never fill).
    segment_rows: Option<usize>,
}

impl SqliteHarness {
    fn new() -> Self {
        SqliteHarness {
            dir: tempfile::tempdir().unwrap(),
            segment_rows: None,
        }
    }

    /// Stores of many small segments: every read, write and purge crosses them.
    fn segmented() -> Self {
        Self::with_segments(7)
    }

    fn with_segments(rows: usize) -> Self {
        SqliteHarness {
            segment_rows: Some(rows),
            ..SqliteHarness::new()
        }
    }

    fn options(&self) -> audit::store::SqliteOptions {
        let options = Sqlite::options();
        match self.segment_rows {
            Some(n) => options.segment_rows(n),
            None => options,
        }
    }

    fn fresh_path(&self) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dir.path().join(format!("audit-{n}.db"))
    }
}

impl Harness for SqliteHarness {
    type S = Sqlite;
    fn fresh(&self) -> Sqlite {
        self.options().open(self.fresh_path()).unwrap()
    }
    fn fresh_keyed(&self, key: &[u8]) -> Sqlite {
        self.options()
            .hmac_key(key)
            .open(self.fresh_path())
            .unwrap()
    }
    fn reopen(&self, store: &Sqlite) -> Sqlite {
        self.options().open(store.path()).unwrap()
    }
    fn sql(&self, store: &Sqlite, sql: &str) -> Result<(), String> {
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        conn.execute_batch(sql).map_err(|e| e.to_string())
    }
    fn drop_triggers(&self) -> &'static str {
        "DROP TRIGGER audit_records_no_update; DROP TRIGGER audit_records_no_delete;"
    }
    fn holds_text(&self, store: &Sqlite, needle: &str) -> bool {
        let mut wal = store.path().as_os_str().to_owned();
        wal.push("-wal");
        [store.path().to_path_buf(), PathBuf::from(wal)]
            .iter()
            .filter_map(|p| std::fs::read(p).ok())
            .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    }
}

/// The suite's tests that take only a harness, on a one-segment store and on a
/// store of many small segments. (Those that edit rows with plain SQL name
/// `audit_records`, the first segment: they run on the one-segment store, and
/// `tests/store_segments.rs` tampers with later segments.)
macro_rules! suite {
    ($($name:ident),* ; segmented: $($seg:ident),*) => {
        $(
            #[test]
            fn $name() {
                store_suite::$name(&SqliteHarness::new());
            }
        )*
        mod segmented {
            use super::*;
            $(
                #[test]
                fn $seg() {
                    store_suite::$seg(&SqliteHarness::segmented());
                }
            )*
        }
    };
}

suite!(
    filters, equal_times, pagination_under_concurrent_inserts, tenant_isolation, injection, append_only, tenant_views, odd_values, idempotent_writes, tampering, checkpoints, hmac_key, operations, field_filters, actor_by_id_or_email, following_and_events_seen;
    segmented: filters, equal_times, tenant_isolation, injection, tenant_views, odd_values, idempotent_writes, operations, field_filters, actor_by_id_or_email, following_and_events_seen
);

#[test]
fn tenant_purge() {
    let h = SqliteHarness::new();
    let export = h.dir.path().join("acme.jsonl");
    store_suite::tenant_purge(&h, &export);
}

/// A record large enough to spill onto overflow pages leaves no byte of itself in
/// the file once its tenant is erased.
#[test]
fn tenant_purge_leaves_no_overflow_page_behind() {
    let h = SqliteHarness::new();
    let mut store = h.fresh();
    let secret = format!("needle-{}", "x".repeat(20_000));
    let mut big = store_suite::record(0, audit::Timestamp::from_nanos(1_780_000_000_000_000_000));
    big.metadata
        .insert("blob", serde_json::Value::String(secret.clone()));
    let mut rest = vec![big];
    rest.extend((1..20).map(|i| {
        store_suite::record(
            i,
            audit::Timestamp::from_nanos(1_780_000_000_000_000_000 + i as i64),
        )
    }));
    store_suite::write(&mut store, &mut audit::integrity::Chain::new(), rest);
    // (Pages split the value: the search looks for its start.)
    assert!(h.holds_text(&store, &secret[..64]));
    let report = store
        .purge(&Purge::everything().tenant("acme"), &mut |_, _| {})
        .unwrap();
    assert_eq!(report.erased, 7);
    assert!(!h.holds_text(&store, &secret[..64]));
    assert!(store.verify().unwrap().is_intact());
}

#[test]
fn purge_and_export() {
    let h = SqliteHarness::new();
    let export = h.dir.path().join("archive.jsonl");
    store_suite::purge_and_export(&h, &export);
}

/// A writer that never pauses seals a segment every 50 rows while pages are read
/// (each seal changes the schema under the reader).
#[test]
fn segmented_pagination_under_concurrent_inserts() {
    store_suite::pagination_under_concurrent_inserts(&SqliteHarness::with_segments(50));
}

fn schema_objects(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE name LIKE 'audit_records_%' ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn migrates_an_older_schema_keeping_its_rows() {
    let h = SqliteHarness::new();
    let path = h.fresh_path();
    let mut old = Sqlite::options().schema_version(1).open(&path).unwrap();
    assert_eq!(old.schema_version().unwrap(), 1);
    assert!(!schema_objects(&path).contains(&"audit_records_actor".to_string()));
    let written = store_suite::populate(&mut old, 30, 1_780_000_000_000_000_000);
    drop(old);

    let mut store = Sqlite::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 9);
    // Its first segment, still open, has the open layout (schema 7): one index
    // ordered by time that holds every filtered column; its seal builds the rest.
    let objects = schema_objects(&path);
    assert!(
        objects.contains(&"audit_records_tail".to_string()),
        "{objects:?}"
    );
    for index in [
        "audit_records_actor",
        "audit_records_tenant",
        "audit_records_time",
    ] {
        assert!(!objects.contains(&index.to_string()), "{objects:?}");
    }
    let got = store_suite::collect(&mut store, &Query::all().actor("u-2"));
    assert_eq!(
        got.len(),
        written
            .iter()
            .filter(|r| r.context.actor.as_ref().unwrap().id == "u-2")
            .count()
    );
    assert!(store.verify().unwrap().is_intact());
    // What the newest schema adds works on the migrated rows.
    let erased = store
        .purge(&Purge::everything().tenant("acme"), &mut |_, _| {})
        .unwrap();
    assert_eq!(erased.erased, 10);
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.erased == 10, "{v:?}");
}

#[test]
fn refuses_a_newer_schema() {
    let h = SqliteHarness::new();
    let path = h.fresh_path();
    drop(Sqlite::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 10).unwrap();
    drop(conn);
    match Sqlite::open(&path) {
        Err(StoreError::SchemaTooNew {
            found: 10,
            supported: 9,
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn keys_are_checked_on_open() {
    let h = SqliteHarness::new();
    let keyed = h.fresh_path();
    let mut store = Sqlite::options()
        .hmac_key("the right key, 32 bytes or longer")
        .open(&keyed)
        .unwrap();
    store_suite::populate(&mut store, 3, 1_780_000_000_000_000_000);
    drop(store);
    let err = Sqlite::options()
        .hmac_key("the wrong key, 32 bytes or longer")
        .open(&keyed)
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongKey(_)), "{err}");
    // Without the key: readable, not verifiable, not writable.
    let mut reader = Sqlite::open(&keyed).unwrap();
    assert_eq!(reader.query(&Query::all()).unwrap().records.len(), 3);
    assert!(matches!(reader.verify(), Err(StoreError::WrongKey(_))));
    let batch = [audit::sinks::Item::new(
        store_suite::record(1, audit::Timestamp::now()),
        "x",
    )];
    let err = audit::sinks::Sink::write(&mut reader, &batch).unwrap_err();
    assert!(!err.is_retryable(), "{err}");

    let plain = h.fresh_path();
    drop(Sqlite::open(&plain).unwrap());
    let err = Sqlite::options()
        .hmac_key("some key of 32 bytes or more ...")
        .open(&plain)
        .unwrap_err();
    assert!(err.to_string().contains("not keyed"), "{err}");
    // A short key is refused before the file is touched.
    let fresh = h.fresh_path();
    let err = Sqlite::options()
        .hmac_key("hunter2")
        .open(&fresh)
        .unwrap_err();
    assert!(matches!(err, StoreError::WeakKey { bytes: 7 }), "{err}");
    assert!(!fresh.exists());
}

#[test]
fn a_corrupt_row_is_a_typed_error() {
    let h = SqliteHarness::new();
    let mut store = h.fresh();
    store_suite::populate(&mut store, 3, 1_780_000_000_000_000_000);
    h.sql(&store, h.drop_triggers()).unwrap();
    h.sql(
        &store,
        "UPDATE audit_records SET record = '{not json' WHERE seq = 2",
    )
    .unwrap();
    match store.query(&Query::all()) {
        Err(StoreError::Corrupt { seq: 2, .. }) => {}
        other => panic!("{other:?}"),
    }
    let v = store.verify().unwrap();
    assert_eq!(v.first_break.unwrap().seq(), 2);
}

/// A field index is made on open and a field filter is served by it.
#[test]
fn field_filters_use_their_index() {
    let h = SqliteHarness::new();
    let path = h.fresh_path();
    let mut store = Sqlite::options().index_field("n").open(&path).unwrap();
    store_suite::populate(&mut store, 50, 1_780_000_000_000_000_000);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let made: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'audit_field_n'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(made, 1);
    let plan = sqlite_plan::plan(
        &path,
        "SELECT time_ns, seq, audit_record(record) FROM audit_records \
         WHERE json_extract(nullif(audit_record(record), ''), '$.metadata.n') = ?1 AND erased_ns IS NULL \
         ORDER BY time_ns DESC, seq DESC LIMIT 51",
        7,
    );
    assert!(plan.iter().any(|p| p.contains("audit_field_n")), "{plan:?}");
    let page = store.query(&Query::all().field("n", 7)).unwrap();
    assert_eq!(page.records.len(), 1);
}
