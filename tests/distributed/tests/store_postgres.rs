//! The PostgreSQL store against the real server (`AUDIT_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`): the conformance suite, plus what is
//! PostgreSQL's own. Each store lives in its own schema, dropped afterwards. An
//! unreachable server fails these tests; it never skips them.

#[path = "../../store_suite/mod.rs"]
mod store_suite;

use std::sync::Mutex;

use audit::store::{Postgres, Query, Store, StoreError};
use store_suite::Harness;

use audit_distributed_tests::pg_url as url;

fn admin() -> postgres::Client {
    postgres::Client::connect(&url(), postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {} is unreachable ({e}); start it (see .ci/run)",
            url()
        )
    })
}

/// Hands out fresh schemas and drops them at the end.
struct PgHarness {
    schemas: Mutex<Vec<String>>,
}

impl PgHarness {
    fn new() -> Self {
        PgHarness {
            schemas: Mutex::new(Vec::new()),
        }
    }

    fn fresh_schema(&self) -> String {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("audit_test_{}_{n}", std::process::id());
        self.schemas.lock().unwrap().push(name.clone());
        name
    }
}

impl Drop for PgHarness {
    fn drop(&mut self) {
        let mut client = admin();
        for s in self.schemas.lock().unwrap().iter() {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"));
        }
    }
}

impl Harness for PgHarness {
    type S = Postgres;
    fn fresh(&self) -> Postgres {
        Postgres::options()
            .schema(self.fresh_schema())
            .connect(&url())
            .unwrap()
    }
    fn fresh_keyed(&self, key: &[u8]) -> Postgres {
        Postgres::options()
            .schema(self.fresh_schema())
            .hmac_key(key)
            .connect(&url())
            .unwrap()
    }
    fn reopen(&self, store: &Postgres) -> Postgres {
        Postgres::options()
            .schema(store.schema().unwrap())
            .connect(&url())
            .unwrap()
    }
    fn sql(&self, store: &Postgres, sql: &str) -> Result<(), String> {
        let mut client = admin();
        client
            .batch_execute(&format!("SET search_path TO {}", store.schema().unwrap()))
            .unwrap();
        client
            .batch_execute(sql)
            .map_err(|e| match e.as_db_error() {
                Some(db) => db.message().to_string(),
                None => e.to_string(),
            })
    }
    fn drop_triggers(&self) -> &'static str {
        "DROP TRIGGER audit_records_append_only ON audit_records;"
    }
    fn typed(&self, literal: &str, ty: &str) -> String {
        format!("{literal}::{ty}")
    }
    fn record_replace(&self, from: &str, to: &str) -> String {
        format!("replace(record::text, '{from}', '{to}')::json")
    }
}

#[test]
fn filters() {
    store_suite::filters(&PgHarness::new());
}

#[test]
fn equal_times() {
    store_suite::equal_times(&PgHarness::new());
}

#[test]
fn pagination_under_concurrent_inserts() {
    store_suite::pagination_under_concurrent_inserts(&PgHarness::new());
}

#[test]
fn tenant_isolation() {
    store_suite::tenant_isolation(&PgHarness::new());
}

#[test]
fn injection() {
    store_suite::injection(&PgHarness::new());
}

#[test]
fn append_only() {
    store_suite::append_only(&PgHarness::new());
}

#[test]
fn tenant_views() {
    store_suite::tenant_views(&PgHarness::new());
}

#[test]
fn odd_values() {
    store_suite::odd_values(&PgHarness::new());
}

#[test]
fn idempotent_writes() {
    store_suite::idempotent_writes(&PgHarness::new());
}

#[test]
fn tampering() {
    store_suite::tampering(&PgHarness::new());
}

#[test]
fn hmac_key() {
    store_suite::hmac_key(&PgHarness::new());
}

#[test]
fn purge_and_export() {
    let h = PgHarness::new();
    let dir = tempfile::tempdir().unwrap();
    store_suite::purge_and_export(&h, &dir.path().join("archive.jsonl"));
}

#[test]
fn truncate_is_refused() {
    let h = PgHarness::new();
    let mut store = h.fresh();
    store_suite::populate(&mut store, 3, 1_780_000_000_000_000_000);
    let err = h.sql(&store, "TRUNCATE audit_records").unwrap_err();
    assert!(err.contains("append-only"), "{err}");
    assert_eq!(store.count().unwrap(), 3);
}

#[test]
fn refuses_a_newer_schema() {
    let h = PgHarness::new();
    let store = h.fresh();
    h.sql(&store, "INSERT INTO audit_migrations (version) VALUES (9)")
        .unwrap();
    let schema = store.schema().unwrap().to_string();
    match Postgres::options().schema(schema).connect(&url()) {
        Err(StoreError::SchemaTooNew {
            found: 9,
            supported: 2,
        }) => {}
        other => panic!("{other:?}"),
    }
}

/// The server drops the store's connection between batches: the next write
/// reconnects, and nothing is lost or written twice.
#[test]
fn reconnects_after_the_backend_is_terminated() {
    let h = PgHarness::new();
    let name = format!("reconnect-{}", std::process::id());
    let mut store = Postgres::options()
        .schema(h.fresh_schema())
        .name(&name)
        .connect(&url())
        .unwrap();
    let written = store_suite::populate(&mut store, 10, 1_780_000_000_000_000_000);
    let schema = store.schema().unwrap().to_string();
    let mut admin = admin();
    let killed = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("audit {name}")],
        )
        .unwrap();
    assert!(killed >= 1, "the store's backend was found and terminated");
    let mut chain = audit::integrity::Chain::new();
    let more: Vec<audit::Record> = (10..20)
        .map(|i| {
            store_suite::record(
                i,
                audit::Timestamp::from_nanos(1_780_000_001_000_000_000 + i as i64),
            )
        })
        .collect();
    // The first write after the kill may fail (retryable) and is retried as the
    // pipeline would; the replayed records are not duplicated.
    let items: Vec<audit::sinks::Item> = more
        .into_iter()
        .map(|mut r| {
            let json = chain.link(&mut r);
            let name = std::sync::Arc::from(&*r.event);
            audit::sinks::Item::with_json(r, json, name)
        })
        .collect();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match audit::sinks::Sink::write(&mut store, &items) {
            Ok(()) => break,
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                assert!(attempts < 3, "{e}");
            }
        }
    }
    audit::sinks::Sink::write(&mut store, &items).unwrap();
    let mut reader = Postgres::options().schema(schema).connect(&url()).unwrap();
    assert_eq!(reader.count().unwrap(), 20);
    assert_eq!(
        store_suite::collect(&mut reader, &Query::all()).len(),
        written.len() + 10
    );
    assert!(reader.verify().unwrap().is_intact());
}

#[audit::audited(event = "widget_create", meta(name = name))]
fn create_widget(name: &str) {}

/// The pipeline writing into PostgreSQL while the server keeps dropping the store's
/// connection: batches are retried, spooled and replayed; every event lands once.
#[test]
fn the_pipeline_survives_terminated_backends() {
    let h = PgHarness::new();
    let schema = h.fresh_schema();
    let name = format!("pipeline-{}", std::process::id());
    let sink = Postgres::options()
        .schema(&schema)
        .name(&name)
        .connect(&url())
        .unwrap();
    let spool = tempfile::tempdir().unwrap();
    let auditor = audit::Auditor::builder()
        .sink(sink)
        .spool_dir(spool.path())
        .batch_size(50)
        .max_wait(std::time::Duration::from_millis(2))
        .retry(audit::pipeline::Retry {
            attempts: 2,
            initial: std::time::Duration::from_millis(5),
            max: std::time::Duration::from_millis(20),
            multiplier: 2.0,
            jitter: true,
        })
        .build()
        .unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut kills = 0;
    std::thread::scope(|s| {
        s.spawn(|| {
            let d: std::sync::Arc<dyn audit::dispatch::Dispatch> =
                std::sync::Arc::new(auditor.clone());
            audit::dispatch::with_dispatch(d, || {
                for i in 0..4000 {
                    create_widget(&format!("w{i}"));
                    if i % 500 == 0 {
                        std::thread::sleep(std::time::Duration::from_millis(30));
                    }
                }
            });
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let mut admin = admin();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(40));
            kills += admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                    &[&format!("audit {name}")],
                )
                .unwrap();
        }
    });
    assert!(auditor.flush());
    let report = auditor.shutdown();
    assert!(report.is_clean(), "{report}");
    let mut reader = Postgres::options().schema(&schema).connect(&url()).unwrap();
    let names: std::collections::HashSet<String> =
        store_suite::collect(&mut reader, &Query::all().limit(5000))
            .iter()
            .map(|r| r.metadata["name"].as_str().unwrap().to_owned())
            .collect();
    assert!(kills >= 1, "the backend was terminated {kills} times");
    assert_eq!(reader.count().unwrap(), 4000, "none lost, none twice");
    assert_eq!(names.len(), 4000);
    let v = reader.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!((v.producers, v.continued), (1, 0));
}
