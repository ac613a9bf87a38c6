//! Large batches copied over several connections at once (issue 19), against the
//! real server: the chain stays whole when one connection's run fails before or at
//! its commit, a retry completes it, concurrent writers still take turns, and a lock
//! cycle through the store's own connections ends in a retry instead of a hang.

#[path = "../../store_suite/mod.rs"]
mod store_suite;

use audit::integrity::Chain;
use audit::sinks::{Item, Sink};
use audit::store::{PARALLEL_COPY_ROWS, Postgres, PostgresOptions, Query, Store};
use audit::{Record, Timestamp};

use audit_distributed_tests::{pg_admin, pg_url};

/// A schema of its own, dropped at the end.
struct Schema(String);

impl Schema {
    fn new(tag: &str) -> Self {
        Schema(format!("audit_copy_{tag}_{}", std::process::id()))
    }

    fn options(&self) -> PostgresOptions {
        // Several partitions per batch: a batch's runs cross partition bounds.
        Postgres::options()
            .schema(&self.0)
            .partition_rows(700)
            .copy_connections(3)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = pg_admin().batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
    }
}

/// `n` records from number `from` on, linked as the pipeline links them.
fn items(chain: &mut Chain, from: usize, n: usize) -> Vec<Item> {
    (from..from + n)
        .map(|i| {
            let mut r: Record = store_suite::record(
                i,
                Timestamp::from_nanos(1_780_000_000_000_000_000 + i as i64 * 1_000),
            );
            let json = chain.link(&mut r);
            let name = std::sync::Arc::from(&*r.event);
            Item::with_json(r, json, name)
        })
        .collect()
}

/// The store's sessions on the server, by the application name it gives them.
fn sessions(name: &str) -> i64 {
    pg_admin()
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("audit {name}")],
        )
        .unwrap()
        .get(0)
}

#[test]
fn a_large_batch_goes_over_several_connections_and_verifies() {
    let s = Schema::new("large");
    let name = format!("copy-large-{}", std::process::id());
    let mut store = s.options().name(&name).connect(&pg_url()).unwrap();
    let mut chain = Chain::new();
    let n = PARALLEL_COPY_ROWS * 5 / 2;
    let first = items(&mut chain, 0, n);
    store.write(&first).unwrap();
    store.wait_for_seals().unwrap();
    assert_eq!(
        sessions(&name),
        4,
        "the store, its two copy connections, its sealer"
    );
    store.write(&items(&mut chain, n, 10)).unwrap();
    // A replayed batch is skipped, whole.
    store.write(&first).unwrap();
    assert_eq!(store.count().unwrap(), n as u64 + 10);
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
    let stored: std::collections::HashSet<_> = store_suite::collect(&mut store, &Query::all())
        .iter()
        .map(|r| r.id)
        .collect();
    let missing = first.iter().filter(|i| !stored.contains(&i.record().id));
    assert_eq!(
        missing.count(),
        0,
        "every record of the large batch is stored"
    );
}

/// A trap that fails the transaction holding row `seq` when it commits (a deferred
/// constraint trigger): the runs before it are committed, the rest not.
fn trap_commit_of(schema: &str, seq: i64) {
    pg_admin()
        .batch_execute(&format!(
            "CREATE FUNCTION {schema}.trap() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.seq = {seq} THEN RAISE EXCEPTION 'trapped at commit'; END IF;
                 RETURN NULL;
             END $$;
             CREATE CONSTRAINT TRIGGER trap AFTER INSERT ON {schema}.audit_records
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {schema}.trap();"
        ))
        .unwrap();
}

fn untrap(schema: &str) {
    pg_admin()
        .batch_execute(&format!(
            "DROP TRIGGER trap ON {schema}.audit_records; DROP FUNCTION {schema}.trap()"
        ))
        .unwrap();
}

#[test]
fn a_commit_failing_after_the_first_run_leaves_a_prefix_the_retry_completes() {
    let s = Schema::new("commit");
    let mut store = s.options().connect(&pg_url()).unwrap();
    let mut chain = Chain::new();
    store.write(&items(&mut chain, 0, 5)).unwrap();
    let n = 3 * PARALLEL_COPY_ROWS;
    let batch = items(&mut chain, 5, n);
    // Runs of 1 000: positions 6-1005, 1006-2005, 2006-3005; the second run's
    // commit fails, so the third is rolled back.
    // The trigger's making and removal lock every partition: after the seals.
    store.wait_for_seals().unwrap();
    trap_commit_of(&s.0, 5 + PARALLEL_COPY_ROWS as i64 + 10);
    let err = store.write(&batch).unwrap_err();
    assert!(err.to_string().contains("trapped at commit"), "{err}");
    assert_eq!(store.count().unwrap(), 5 + PARALLEL_COPY_ROWS as u64);
    assert!(store.verify().unwrap().is_intact(), "the prefix verifies");
    store.wait_for_seals().unwrap();
    untrap(&s.0);
    store.write(&batch).unwrap();
    assert_eq!(store.count().unwrap(), 5 + n as u64);
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
}

#[test]
fn a_run_failing_before_any_commit_stores_nothing_of_the_batch() {
    let s = Schema::new("copyfail");
    let name = format!("copy-fail-{}", std::process::id());
    let mut store = s.options().name(&name).connect(&pg_url()).unwrap();
    let mut chain = Chain::new();
    store
        .write(&items(&mut chain, 0, PARALLEL_COPY_ROWS))
        .unwrap();
    // Every session of the store (the main one, the copy helper, the sealer's) is
    // dropped by the server between batches: the copy connections find out only
    // when they are used.
    store.wait_for_seals().unwrap();
    let killed = pg_admin()
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("audit {name}")],
        )
        .unwrap();
    assert_eq!(killed, 4, "the store, its two copy connections, its sealer");
    let batch = items(&mut chain, PARALLEL_COPY_ROWS, 2 * PARALLEL_COPY_ROWS);
    let mut failures = 0;
    while let Err(e) = store.write(&batch) {
        assert!(e.is_retryable(), "{e}");
        let stored = store.count().unwrap();
        assert_eq!(
            stored, PARALLEL_COPY_ROWS as u64,
            "nothing of a failed batch"
        );
        failures += 1;
        assert!(failures < 4, "{e}");
    }
    assert_eq!(store.count().unwrap(), 3 * PARALLEL_COPY_ROWS as u64);
    assert!(store.verify().unwrap().is_intact());
    store.wait_for_seals().unwrap();
    assert_eq!(sessions(&name), 4, "the lost connections were replaced");
}

#[test]
fn writers_copying_at_once_take_turns_on_one_chain() {
    let s = Schema::new("turns");
    // Made first, so that the writers below only connect.
    drop(s.options().connect(&pg_url()).unwrap());
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let options = s.options();
            std::thread::spawn(move || {
                let mut store = options.connect(&pg_url()).unwrap();
                let mut chain = Chain::new();
                for b in 0..3 {
                    let from = (w * 3 + b) * 1_500;
                    store.write(&items(&mut chain, from, 1_500)).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let mut store = s.options().connect(&pg_url()).unwrap();
    assert_eq!(store.count().unwrap(), 9 * 1_500);
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
}

/// The partition of `schema` holding position `seq`.
fn partition_of(schema: &str, seq: i64) -> String {
    pg_admin()
        .query_one(
            &format!(
                "SELECT name FROM {schema}.audit_partitions WHERE first_seq <= $1 AND $1 < end_seq"
            ),
            &[&seq],
        )
        .unwrap()
        .get(0)
}

/// A session that holds a lock one copy of a batch waits for, then waits for a lock
/// another copy of the same batch holds (its transaction open until every copy is
/// done): the server sees no cycle, since the store waits for its copies on the
/// client side. The copy gives up after its lock timeout, the batch fails for a
/// retry with nothing of it stored, and the retry stores it.
#[test]
fn a_lock_cycle_through_the_stores_own_connections_fails_the_batch_for_a_retry() {
    let s = Schema::new("cycle");
    let mut store = s.options().connect(&pg_url()).unwrap();
    let mut chain = Chain::new();
    store.write(&items(&mut chain, 0, 5)).unwrap();
    store.wait_for_seals().unwrap();
    let n = 3 * PARALLEL_COPY_ROWS;
    let batch = items(&mut chain, 5, n);
    // Runs 6–1005 on the store's connection, 1006–2005 and 2006–3005 on its two
    // helpers; the partitions made ahead, as the batch would make them.
    let last_seq = 5 + n as i64;
    pg_admin()
        .query_one(
            &format!("SELECT {}.audit_extend({last_seq}, 700)", s.0),
            &[],
        )
        .unwrap();
    let (first, last) = (partition_of(&s.0, 6), partition_of(&s.0, last_seq));
    let mut other = pg_admin();
    let mut tx = other.transaction().unwrap();
    tx.batch_execute(&format!("LOCK TABLE {}.{last} IN SHARE MODE", s.0))
        .unwrap();
    let me: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let writer = std::thread::spawn(move || {
        let result = store.write(&batch);
        (store, batch, result)
    });
    // Once the first run is copied (its partition held by the store's transaction)
    // and the last run waits for this session …
    let mut watcher = pg_admin();
    let start = std::time::Instant::now();
    loop {
        let row = watcher
            .query_one(
                "SELECT coalesce(bool_or(l.granted AND c.relname = $2 AND l.pid <> $4), false),
                        coalesce(bool_or(NOT l.granted AND c.relname = $3), false)
                   FROM pg_locks l
                   JOIN pg_class c ON c.oid = l.relation
                   JOIN pg_namespace ns ON ns.oid = c.relnamespace
                  WHERE ns.nspname = $1 AND l.mode = 'RowExclusiveLock'",
                &[&s.0, &first, &last, &me],
            )
            .unwrap();
        if row.get::<_, bool>(0) && row.get::<_, bool>(1) {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the copies never reached the locks"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // … this session asks for the first run's partition: a cycle through the
    // store's client. It is granted once the store gives the batch up.
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '60s'; LOCK TABLE {}.{first} IN SHARE MODE",
        s.0
    ))
    .expect("the store's copies gave up their locks");
    let (mut store, batch, result) = writer.join().unwrap();
    let e = result.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("lock timeout"), "{e}");
    tx.commit().unwrap();
    assert_eq!(store.count().unwrap(), 5, "nothing of the failed batch");
    store.write(&batch).unwrap();
    assert_eq!(store.count().unwrap(), 5 + n as u64);
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
}
