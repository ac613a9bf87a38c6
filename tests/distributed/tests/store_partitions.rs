//! The PostgreSQL store's partitions (schema 6) against the real server: purges
//! that drop whole partitions, replays skipped across partitions, a schema-5 store
//! migrated in place, a reader that does not hold up a new partition, and schema
//! 7's actor, email and entity indexes built per partition at seal. The
//! conformance suite itself also runs on 7-row partitions (`store_postgres.rs`).

#[path = "../../store_suite/mod.rs"]
mod store_suite;

use std::time::Duration;

use audit::Timestamp;
use audit::store::{Postgres, PostgresOptions, Purge, Query, Store};
use audit_distributed_tests::{pg_admin, pg_url};

const T: i64 = 1_780_000_000_000_000_000;

/// A schema of its own, dropped at the end.
struct Schema(String);

impl Schema {
    fn new() -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Schema(format!("audit_parts_{}_{n}", std::process::id()))
    }

    fn options(&self) -> PostgresOptions {
        Postgres::options().schema(&self.0)
    }

    /// The partitions `audit_partitions` lists, oldest first.
    fn partitions(&self) -> Vec<String> {
        pg_admin()
            .query(
                &format!("SELECT name FROM {}.audit_partitions ORDER BY n", self.0),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// The rows `tx` sees (taking and holding the table's read lock).
    fn rows_seen(&self, tx: &mut postgres::Transaction<'_>) -> i64 {
        tx.query_one(
            &format!("SELECT count(*) FROM {}.audit_records", self.0),
            &[],
        )
        .unwrap()
        .get(0)
    }

    /// Which of the partitions' own indexes (`audit_partition_indexes`) `part` has.
    fn own_indexes(&self, part: &str) -> Vec<String> {
        pg_admin()
            .query(
                &format!(
                    "SELECT i.name FROM {0}.audit_partition_indexes i
                      WHERE to_regclass(format('%I.%I', $1::text, $2 || '_' || i.name)) IS NOT NULL
                      ORDER BY i.name",
                    self.0
                ),
                &[&self.0, &part],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// Takes, in `tx`, the lock a writer's copy holds on partition `part`.
    fn hold_as_a_writer(&self, tx: &mut postgres::Transaction<'_>, part: &str) {
        tx.batch_execute(&format!(
            "LOCK TABLE {}.{part} IN ROW EXCLUSIVE MODE",
            self.0
        ))
        .unwrap();
    }

    fn exists(&self, table: &str) -> bool {
        pg_admin()
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("{}.{table}", self.0)],
            )
            .unwrap()
            .get(0)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = pg_admin().batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
    }
}

/// A REPEATABLE READ transaction: a long reader (a verification, an export).
fn snapshot(client: &mut postgres::Client) -> postgres::Transaction<'_> {
    client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()
        .unwrap()
}

fn ids(records: &[audit::Record]) -> Vec<uuid::Uuid> {
    records.iter().map(|r| r.id).collect()
}

/// Oldest first.
fn stored_ids(store: &mut Postgres) -> Vec<uuid::Uuid> {
    let mut all = store_suite::collect(store, &Query::all());
    all.reverse();
    ids(&all)
}

#[test]
fn a_purge_drops_whole_partitions_and_deletes_only_the_rest() {
    let s = Schema::new();
    let mut store = s.options().partition_rows(10).connect(&pg_url()).unwrap();
    let written = store_suite::populate(&mut store, 100, T);
    // The empty partition of schema 5's table, then ten of 10 positions.
    assert_eq!(s.partitions().len(), 11, "{:?}", s.partitions());

    let mut progress = Vec::new();
    let report = store
        .purge(
            &Purge::older_than(Timestamp::from_nanos(T + 35 * 1_000_000)),
            &mut |done, total| progress.push((done, total)),
        )
        .unwrap();
    assert_eq!(report.removed, 35);
    assert_eq!(report.last_seq, Some(35));
    // Positions 1-30 went with their partitions (one step each), 31-35 row by row.
    assert_eq!(
        progress,
        [(0, 35), (10, 35), (20, 35), (30, 35), (35, 35)],
        "{progress:?}"
    );
    let left = s.partitions();
    assert_eq!(
        left.first().map(String::as_str),
        Some("audit_records_p4"),
        "{left:?}"
    );
    for gone in ["audit_records_p0", "audit_records_p1", "audit_records_p3"] {
        assert!(!s.exists(gone), "{gone} is still there");
    }
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    let anchor = v.anchor.unwrap();
    assert_eq!((anchor.seq, anchor.purged), (35, 35));
    assert_eq!(stored_ids(&mut store), ids(&written[35..]));

    // Writing goes on after the anchor's position, and a purge of everything
    // leaves the chain to continue from its last row.
    store_suite::populate(&mut store, 20, T + 200 * 1_000_000);
    assert_eq!(store.last_seq().unwrap(), 120);
    let report = store.purge(&Purge::everything(), &mut |_, _| {}).unwrap();
    assert_eq!(report.removed, 85);
    assert_eq!(store.count().unwrap(), 0);
    store_suite::populate(&mut store, 3, T + 300 * 1_000_000);
    assert_eq!(store.last_seq().unwrap(), 123);
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.anchor.map(|a| a.purged), Some(120));
}

#[test]
fn replays_are_skipped_across_partitions() {
    let s = Schema::new();
    let mut store = s.options().partition_rows(10).connect(&pg_url()).unwrap();
    let first = store_suite::populate(&mut store, 50, T);
    // The same 50 again (their ids are in five older partitions) with 5 new ones.
    let mut again = first.clone();
    again.extend(
        (50..55).map(|i| store_suite::record(i, Timestamp::from_nanos(T + i as i64 * 1_000_000))),
    );
    store_suite::write(
        &mut store,
        &mut audit::integrity::Chain::new(),
        again.clone(),
    );
    assert_eq!(store.count().unwrap(), 55);
    assert_eq!(store.last_seq().unwrap(), 55);
    assert_eq!(stored_ids(&mut store), ids(&again));

    // Ids that do not grow with time (made elsewhere): every replay is still found.
    let random: Vec<audit::Record> = (0..30)
        .map(|i| {
            let mut r =
                store_suite::record(i, Timestamp::from_nanos(T + (100 + i as i64) * 1_000_000));
            r.id = uuid::Uuid::from_u128(fastrand::u128(..));
            r
        })
        .collect();
    store_suite::write(
        &mut store,
        &mut audit::integrity::Chain::new(),
        random.clone(),
    );
    store_suite::write(
        &mut store,
        &mut audit::integrity::Chain::new(),
        random.clone(),
    );
    let mut reversed = random.clone();
    reversed.reverse();
    store_suite::write(&mut store, &mut audit::integrity::Chain::new(), reversed);
    assert_eq!(store.count().unwrap(), 85);
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
}

/// A store written by schema 5 (one table with an identity column) becomes the
/// first partition: nothing is copied, every row still verifies, its field index
/// serves the new table, writes go on into new partitions, and a purge counts the
/// old table's rows (its positions may have gaps) before dropping it.
#[test]
fn migrates_a_schema_5_store_in_place() {
    let (source, old) = (Schema::new(), Schema::new());
    let mut written = source.options().connect(&pg_url()).unwrap();
    let records = store_suite::populate(&mut written, 30, T);
    written
        .purge(
            &Purge::older_than(Timestamp::from_nanos(T + 10 * 1_000_000)),
            &mut |_, _| {},
        )
        .unwrap();
    drop(
        old.options()
            .schema_version(5)
            .index_field("n")
            .connect(&pg_url())
            .unwrap(),
    );
    // The rows, anchor and chain settings as schema 5 held them.
    let (from, to) = (&source.0, &old.0);
    pg_admin()
        .batch_execute(&format!(
            "INSERT INTO {to}.audit_records SELECT * FROM {from}.audit_records;
             INSERT INTO {to}.audit_anchor (seq, link, purged, before_ns, at_ns)
                 SELECT seq, link, purged, before_ns, at_ns FROM {from}.audit_anchor;
             INSERT INTO {to}.audit_meta SELECT * FROM {from}.audit_meta ON CONFLICT DO NOTHING;"
        ))
        .unwrap();
    let version = |s: &Schema| -> i32 {
        pg_admin()
            .query_one(
                &format!("SELECT max(version) FROM {}.audit_migrations", s.0),
                &[],
            )
            .unwrap()
            .get(0)
    };
    assert_eq!(version(&old), 5);

    let mut store = old
        .options()
        .partition_rows(10)
        .index_field("n")
        .connect(&pg_url())
        .unwrap();
    assert_eq!(version(&old), 9);
    assert_eq!(old.partitions(), ["audit_records_p0"]);
    assert_eq!(old.own_indexes("audit_records_p0"), ["tail"]);
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.rows, 20);
    assert_eq!(stored_ids(&mut store), ids(&records[10..]));
    // The old table's field index is the new table's (attached, not rebuilt).
    let attached: i64 = pg_admin()
        .query_one(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass($1)",
            &[&format!("{to}.audit_field_n")],
        )
        .unwrap()
        .get(0);
    assert_eq!(attached, 1);
    assert_eq!(
        store
            .query(&Query::all().field("n", 12))
            .unwrap()
            .records
            .len(),
        1
    );

    let more = store_suite::populate(&mut store, 25, T + 100 * 1_000_000);
    assert_eq!(store.last_seq().unwrap(), 55);
    assert_eq!(old.partitions().len(), 4, "{:?}", old.partitions());
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.rows == 45, "{v:?}");
    // A gap in the old table's positions (an identity value a failed insert took),
    // made by hand once the store's seals are done (the trigger's removal locks
    // every partition).
    store.wait_for_seals().unwrap();
    pg_admin()
        .batch_execute(&format!(
            "SET search_path TO {to}; DROP TRIGGER audit_records_append_only ON audit_records;
             DELETE FROM audit_records WHERE seq = 15;"
        ))
        .unwrap();
    let report = store
        .purge(
            &Purge::older_than(Timestamp::from_nanos(T + 110 * 1_000_000)),
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(report.removed, 19 + 10);
    assert_eq!(stored_ids(&mut store), ids(&more[10..]));
    assert!(!old.exists("audit_records_p0"));
}

/// Schema 7: actor, email and entity are indexed per partition, built when the
/// partition is sealed (the next one made); the open partition has the tail
/// instead, and pages over both find the same rows as a scan would.
#[test]
fn random_key_indexes_are_built_at_seal_and_the_open_partition_has_the_tail() {
    let s = Schema::new();
    let mut store = s.options().partition_rows(10).connect(&pg_url()).unwrap();
    let written = store_suite::populate(&mut store, 25, T);
    store.wait_for_seals().unwrap();
    let sealed = ["actor", "email", "entity"];
    for part in ["audit_records_p0", "audit_records_p1", "audit_records_p2"] {
        assert_eq!(s.own_indexes(part), sealed, "{part}");
    }
    assert_eq!(s.own_indexes("audit_records_p3"), ["tail"]);
    // Each filter the tail serves, over sealed and open partitions alike.
    let newest_first = |keep: &dyn Fn(&audit::Record) -> bool| -> Vec<uuid::Uuid> {
        written
            .iter()
            .rev()
            .filter(|r| keep(r))
            .map(|r| r.id)
            .collect()
    };
    let last = written.last().unwrap();
    let actor = last.context.actor.as_ref().unwrap();
    let entity = last.entity.as_ref().unwrap();
    let tenant = last.context.tenant.clone().unwrap();
    for (query, expected) in [
        (Query::all(), newest_first(&|_| true)),
        (
            Query::for_tenant(tenant.clone()),
            newest_first(&|r| r.context.tenant.as_ref() == Some(&tenant)),
        ),
        (
            Query::all()
                .since(Timestamp::from_nanos(T + 5 * 1_000_000))
                .until(Timestamp::from_nanos(T + 23 * 1_000_000)),
            newest_first(&|r| (T + 5 * 1_000_000..T + 23 * 1_000_000).contains(&r.time.as_nanos())),
        ),
        (
            Query::all().actor(actor.id.clone()),
            newest_first(&|r| r.context.actor.as_ref().map(|a| &a.id) == Some(&actor.id)),
        ),
        (
            Query::all().entity(
                entity.kind.clone(),
                entity.id.as_ref().and_then(|v| v.as_str()),
            ),
            newest_first(&|r| r.entity.as_ref() == Some(entity)),
        ),
    ] {
        assert!(
            expected.len() > 1,
            "{query:?} matches rows in more than one partition"
        );
        assert_eq!(
            ids(&store_suite::collect(&mut store, &query)),
            expected,
            "{query:?}"
        );
    }

    // A reader holding the partition being sealed keeps its tail (dropping waits for
    // readers): the writer goes on, and a later seal drops it.
    let mut reader = pg_admin();
    let mut tx = snapshot(&mut reader);
    assert_eq!(s.rows_seen(&mut tx), 25);
    store_suite::populate(&mut store, 10, T + 100 * 1_000_000);
    store.wait_for_seals().unwrap();
    assert_eq!(
        s.own_indexes("audit_records_p3"),
        ["actor", "email", "entity", "tail"]
    );
    tx.commit().unwrap();
    store_suite::populate(&mut store, 10, T + 200 * 1_000_000);
    store.wait_for_seals().unwrap();
    assert_eq!(s.own_indexes("audit_records_p3"), sealed);
    assert_eq!(s.own_indexes("audit_records_p4"), sealed);
    assert_eq!(s.own_indexes("audit_records_p5"), ["tail"]);
    assert!(store.verify().unwrap().is_intact());
}

/// Schema 8: a seal runs on a connection of the store's own, beside the writes. A
/// seal held up (here by a lock on the partition it indexes) does not hold up the
/// writer; one that fails (its backend terminated) is reported by
/// `wait_for_seals` and leaves the partition readable through its tail; the next
/// seal completes it.
#[test]
fn a_seal_goes_on_beside_the_writes_and_a_failed_one_is_completed_by_the_next() {
    let s = Schema::new();
    let mut store = s.options().partition_rows(10).connect(&pg_url()).unwrap();
    let mut written = store_suite::populate(&mut store, 15, T);
    store.wait_for_seals().unwrap();
    // Positions 1–10 are p1's, 11–20 p2's: p2 is the open partition.
    assert_eq!(
        s.own_indexes("audit_records_p1"),
        ["actor", "email", "entity"]
    );
    assert_eq!(s.own_indexes("audit_records_p2"), ["tail"]);
    // Building an index waits for a writer's lock on the table.
    let mut admin = pg_admin();
    let mut lock = admin.transaction().unwrap();
    s.hold_as_a_writer(&mut lock, "audit_records_p2");
    let holder: i32 = lock
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let (done, wait) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        // p3 is made: p2's seal starts and waits for the lock; the writes go on.
        let mut more = store_suite::populate(&mut store, 10, T + 100 * 1_000_000);
        more.extend(store_suite::populate(&mut store, 4, T + 200 * 1_000_000));
        done.send(()).unwrap();
        (store, more)
    });
    wait.recv_timeout(Duration::from_secs(30))
        .expect("the writer waited for the seal");
    let (mut store, more) = writer.join().unwrap();
    written.extend(more);
    // The seal is still waiting: end it as a lost connection would.
    let mut watcher = pg_admin();
    let start = std::time::Instant::now();
    loop {
        let ended: i64 = watcher
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                  WHERE $1 = ANY (pg_blocking_pids(pid)) AND query = 'SELECT audit_seal()'",
                &[&holder],
            )
            .unwrap()
            .get(0);
        if ended > 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no seal was waiting"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The driver reports the server's notice or the closed connection.
    let e = store.wait_for_seals().unwrap_err().to_string();
    assert!(
        e.contains("terminat") || e.contains("connection closed"),
        "{e}"
    );
    lock.commit().unwrap();
    // Readable meanwhile, through the tail.
    assert_eq!(s.own_indexes("audit_records_p2"), ["tail"]);
    let actor = written[0].context.actor.as_ref().unwrap().id.clone();
    let by_actor = |written: &[audit::Record]| -> Vec<uuid::Uuid> {
        written
            .iter()
            .rev()
            .filter(|r| r.context.actor.as_ref().is_some_and(|a| a.id == actor))
            .map(|r| r.id)
            .collect()
    };
    let found = store_suite::collect(&mut store, &Query::all().actor(actor.clone()));
    assert_eq!(ids(&found), by_actor(&written));
    // The next partition's seal completes both.
    written.extend(store_suite::populate(&mut store, 10, T + 300 * 1_000_000));
    store.wait_for_seals().unwrap();
    for part in ["audit_records_p1", "audit_records_p2", "audit_records_p3"] {
        assert_eq!(s.own_indexes(part), ["actor", "email", "entity"], "{part}");
    }
    let found = store_suite::collect(&mut store, &Query::all().actor(actor.clone()));
    assert_eq!(ids(&found), by_actor(&written));
    assert_eq!(store.count().unwrap(), 39);
    assert!(store.verify().unwrap().is_intact());
}

/// A seal leaves alone a partition that is no longer the newest but still has
/// positions to be written (a batch that made the next partition is copying into
/// both): building its indexes would wait for that copy, and a copy of the same
/// batch on another connection could wait for the seal, a cycle the server cannot
/// see when the store waits for its copies on the client side (schema 9).
#[test]
fn a_seal_leaves_a_partition_still_being_written_to_a_later_seal() {
    let s = Schema::new();
    let mut store = s.options().partition_rows(10).connect(&pg_url()).unwrap();
    let mut written = store_suite::populate(&mut store, 15, T);
    store.wait_for_seals().unwrap();
    // Positions 11–20 are p2's, 11–15 written. A writer links a batch up to 25: it
    // makes p3 (committed first, as the parallel copy does) and copies into p2.
    let mut admin = pg_admin();
    admin
        .query_one(&format!("SELECT {}.audit_extend(25, 10)", s.0), &[])
        .unwrap();
    assert_eq!(s.partitions().last().unwrap(), "audit_records_p3");
    let mut copier = pg_admin();
    let mut copy = copier.transaction().unwrap();
    s.hold_as_a_writer(&mut copy, "audit_records_p2");
    let mut sealer = pg_admin();
    sealer
        .batch_execute(&format!(
            "SET search_path TO {}; SET statement_timeout = '10s'",
            s.0
        ))
        .unwrap();
    sealer
        .batch_execute("SELECT audit_seal()")
        .expect("the seal did not wait for the partition being written");
    assert_eq!(s.own_indexes("audit_records_p2"), ["tail"]);
    copy.commit().unwrap();
    // The store fills p2 and writes into p3; the seal after the next partition is
    // made seals both.
    written.extend(store_suite::populate(&mut store, 10, T + 100 * 1_000_000));
    written.extend(store_suite::populate(&mut store, 10, T + 200 * 1_000_000));
    store.wait_for_seals().unwrap();
    for part in ["audit_records_p1", "audit_records_p2", "audit_records_p3"] {
        assert_eq!(s.own_indexes(part), ["actor", "email", "entity"], "{part}");
    }
    assert_eq!(s.own_indexes("audit_records_p4"), ["tail"]);
    assert_eq!(store.count().unwrap(), written.len() as u64);
    assert!(store.verify().unwrap().is_intact());
}

/// A schema-6 store with several partitions migrates to schema 7 in place: the
/// partitioned table's actor, email and entity indexes become each sealed
/// partition's own, the newest gets its tail, and writing goes on from there.
#[test]
fn migrates_a_schema_6_store_to_indexes_built_at_seal() {
    let s = Schema::new();
    let mut old = s
        .options()
        .schema_version(6)
        .partition_rows(10)
        .connect(&pg_url())
        .unwrap();
    let mut written = store_suite::populate(&mut old, 25, T);
    drop(old);
    assert!(s.exists("audit_records_actor"));
    let mut store = s.options().partition_rows(10).connect(&pg_url()).unwrap();
    assert!(!s.exists("audit_records_actor"));
    for part in ["audit_records_p0", "audit_records_p1", "audit_records_p2"] {
        assert_eq!(s.own_indexes(part), ["actor", "email", "entity"], "{part}");
    }
    assert_eq!(s.own_indexes("audit_records_p3"), ["tail"]);
    written.extend(store_suite::populate(&mut store, 10, T + 100 * 1_000_000));
    store.wait_for_seals().unwrap();
    assert_eq!(
        s.own_indexes("audit_records_p3"),
        ["actor", "email", "entity"]
    );
    assert_eq!(s.own_indexes("audit_records_p4"), ["tail"]);
    let actor = written[0].context.actor.as_ref().unwrap().id.clone();
    let expected: Vec<uuid::Uuid> = written
        .iter()
        .rev()
        .filter(|r| r.context.actor.as_ref().is_some_and(|a| a.id == actor))
        .map(|r| r.id)
        .collect();
    let found = store_suite::collect(&mut store, &Query::all().actor(actor.clone()));
    assert_eq!(ids(&found), expected);
    assert!(store.verify().unwrap().is_intact());
}

/// A writer that needs a new partition while a long read (a verification, an
/// export) holds its snapshot is not held up by it: partitions are attached, which
/// does not wait for readers.
#[test]
fn a_reader_does_not_hold_up_a_new_partition() {
    let s = Schema::new();
    let mut store = s.options().partition_rows(10).connect(&pg_url()).unwrap();
    store_suite::populate(&mut store, 5, T);
    let mut reader = pg_admin();
    let mut tx = snapshot(&mut reader);
    assert_eq!(s.rows_seen(&mut tx), 5);
    let (done, wait) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        store_suite::populate(&mut store, 40, T + 100 * 1_000_000);
        done.send(()).unwrap();
        store
    });
    wait.recv_timeout(Duration::from_secs(30))
        .expect("the writer waited for the reader to finish");
    assert_eq!(s.rows_seen(&mut tx), 5);
    tx.commit().unwrap();
    let mut store = writer.join().unwrap();
    assert_eq!(store.count().unwrap(), 45);
    assert!(s.partitions().len() >= 5);
    assert!(store.verify().unwrap().is_intact());
}

/// A purge that must drop a partition while a reader holds the table open gives
/// way to writers rather than holding them up behind the reader (dropping waits for
/// readers, and writers queue behind it), and finishes once the reader is done.
#[test]
fn a_purge_waiting_for_a_reader_does_not_hold_up_writers() {
    let s = Schema::new();
    let mut store = s.options().partition_rows(10).connect(&pg_url()).unwrap();
    store_suite::populate(&mut store, 30, T);
    let mut reader = pg_admin();
    let mut tx = snapshot(&mut reader);
    assert_eq!(s.rows_seen(&mut tx), 30);
    let mut purger = s.options().connect(&pg_url()).unwrap();
    let purge = std::thread::spawn(move || {
        purger.purge(
            &Purge::older_than(Timestamp::from_nanos(T + 25 * 1_000_000)),
            &mut |_, _| {},
        )
    });
    // Let the purge reach its first partition, then write.
    std::thread::sleep(Duration::from_millis(300));
    let (done, wait) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        store_suite::populate(&mut store, 5, T + 100 * 1_000_000);
        done.send(()).unwrap();
        store
    });
    wait.recv_timeout(Duration::from_secs(20))
        .expect("the writer waited behind the purge, which waited for the reader");
    tx.commit().unwrap();
    let report = purge.join().unwrap().unwrap();
    assert_eq!(report.removed, 25);
    let mut store = writer.join().unwrap();
    assert_eq!(store.count().unwrap(), 10);
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
}

/// Someone with the owner's or a superuser's powers removes a whole partition
/// (dropped, or detached to hide it): `verify` names the gap, as for rows deleted
/// one by one, and a row changed inside a partition is named too.
#[test]
fn a_partition_removed_or_changed_behind_the_store_is_found() {
    let s = Schema::new();
    let mut store = s.options().partition_rows(10).connect(&pg_url()).unwrap();
    store_suite::populate(&mut store, 50, T);
    assert!(store.verify().unwrap().is_intact());
    // The hand-made changes below lock partitions: after the store's seals.
    store.wait_for_seals().unwrap();
    let sql = |q: &str| {
        pg_admin()
            .batch_execute(&format!("SET search_path TO {}; {q}", s.0))
            .unwrap()
    };
    sql("ALTER TABLE audit_records DETACH PARTITION audit_records_p2");
    match store.verify().unwrap().first_break {
        Some(audit::store::Break::Removed {
            seq: 21,
            after: Some(10),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    sql("ALTER TABLE audit_records ATTACH PARTITION audit_records_p2 FOR VALUES FROM (11) TO (21)");
    assert!(store.verify().unwrap().is_intact());
    sql("DROP TRIGGER audit_records_append_only ON audit_records;
         UPDATE audit_records_p4 SET description = 'nothing happened' WHERE seq = 35");
    match store.verify().unwrap().first_break {
        Some(audit::store::Break::Changed { seq: 35, .. }) => {}
        other => panic!("{other:?}"),
    }
    sql("DROP TABLE audit_records_p3");
    match store.verify().unwrap().first_break {
        Some(audit::store::Break::Removed {
            seq: 31,
            after: Some(20),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}
