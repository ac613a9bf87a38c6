//! The transactional outbox on SQLite: records commit or roll back with the
//! business change; failed attempts survive the rollback; the relay delivers every
//! committed row exactly once, also when it dies after the target committed.

use std::path::Path;

use audit::outbox::{self, OutboxError, Relay, Scope, sqlite::SqliteOutbox};
use audit::sinks::{Batch, Sink, SinkError};
use audit::store::{Query, Sqlite, Store};
use audit::{DeliveryError, audited};
use rusqlite::Connection;

#[derive(Debug)]
struct AppError(String);

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<DeliveryError> for AppError {
    fn from(e: DeliveryError) -> Self {
        AppError(e.to_string())
    }
}

/// A business write and its audit event, in the caller's transaction.
#[audited(event = "widget_create", meta(name = name))]
fn add_widget(tx: &rusqlite::Transaction<'_>, name: &str) -> Result<(), AppError> {
    tx.execute("INSERT INTO widgets (name) VALUES (?1)", [name])
        .map_err(|e| AppError(e.to_string()))?;
    if name.starts_with("bad") {
        return Err(AppError(format!("{name} is not allowed")));
    }
    Ok(())
}

fn app_db(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE IF NOT EXISTS widgets (name text)")
        .unwrap();
    outbox::sqlite::install(&conn).unwrap();
    conn
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn records_commit_and_roll_back_with_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = app_db(&dir.path().join("app.db"));

    // Rolled back: neither the widget nor its record.
    let (_, failures) = audit::testing::capture_with(|| {
        let tx = conn.transaction().unwrap();
        let scope = Scope::new();
        scope.run(|| add_widget(&tx, "rolled-back")).unwrap();
        let mut tx = tx;
        assert_eq!(scope.write(&mut tx).unwrap(), 1);
        tx.rollback().unwrap();
    });
    assert!(failures.is_empty());
    assert_eq!(
        (count(&conn, "widgets"), count(&conn, "audit_outbox")),
        (0, 0)
    );

    // Committed: both, exactly once.
    let mut tx = conn.transaction().unwrap();
    let scope = Scope::new();
    scope.run(|| add_widget(&tx, "kept")).unwrap();
    scope.run(|| add_widget(&tx, "kept too")).unwrap();
    assert_eq!(scope.len(), 2);
    assert_eq!(scope.write(&mut tx).unwrap(), 2);
    assert!(scope.is_empty());
    tx.commit().unwrap();
    assert_eq!(
        (count(&conn, "widgets"), count(&conn, "audit_outbox")),
        (2, 2)
    );

    // A failed attempt changed nothing: its record goes to the pipeline at once and
    // survives the rollback; the outbox gets nothing.
    let (_, records) = audit::testing::capture_with(|| {
        let mut tx = conn.transaction().unwrap();
        let scope = Scope::new();
        assert!(scope.run(|| add_widget(&tx, "bad-1")).is_err());
        // A panic inside the scope: its failure record goes on too.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scope.run(|| {
                let _ = add_widget(&tx, "ok-then-panic");
                panic!("the handler's caller blew up");
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(scope.len(), 1, "the success before the panic is kept");
        assert_eq!(scope.write(&mut tx).unwrap(), 1);
        tx.rollback().unwrap();
    });
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0].error.as_deref(), Some("bad-1 is not allowed"));
    assert_eq!(count(&conn, "audit_outbox"), 2);

    // The relay moves the two committed rows into the store, once.
    let store_path = dir.path().join("audit.db");
    let mut relay = Relay::new(
        SqliteOutbox::open(dir.path().join("app.db")).unwrap(),
        Sqlite::open(&store_path).unwrap(),
    );
    assert_eq!(relay.drain().unwrap().delivered, 2);
    assert_eq!(relay.drain().unwrap().delivered, 0);
    assert_eq!(count(&conn, "audit_outbox"), 0);
    let mut store = Sqlite::open(&store_path).unwrap();
    let names: Vec<String> = store
        .query(&Query::all().order(audit::store::Order::OldestFirst))
        .unwrap()
        .records
        .iter()
        .map(|r| r.metadata["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["kept", "kept too"]);
    let v = store.verify().unwrap();
    assert!(
        v.is_intact() && v.producers == 1 && v.continued == 0,
        "{v:?}"
    );
}

#[test]
fn a_scope_dropped_unwritten_counts_its_records_as_undelivered() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = app_db(&dir.path().join("app.db"));
    let tx = conn.transaction().unwrap();
    let before = audit::dispatch::undelivered();
    {
        let scope = Scope::new();
        scope.run(|| add_widget(&tx, "forgotten")).unwrap();
    }
    assert_eq!(audit::dispatch::undelivered(), before + 1);
}

/// A target that writes into the real store, then dies (a panic standing for the
/// relay process killed) before the outbox learns it committed — `times` times.
struct DiesAfterCommit {
    store: Sqlite,
    times: usize,
}

impl Sink for DiesAfterCommit {
    fn name(&self) -> &str {
        "dies"
    }
    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        self.store.write(batch)?;
        if self.times > 0 {
            self.times -= 1;
            panic!("killed after the target committed");
        }
        Ok(())
    }
}

/// A target that refuses everything.
struct Down;

impl Sink for Down {
    fn name(&self) -> &str {
        "down"
    }
    fn write(&mut self, _: &Batch) -> Result<(), SinkError> {
        Err(SinkError::retryable("the store is down"))
    }
}

#[test]
fn the_relay_delivers_exactly_once_through_crashes_and_outages() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.db");
    let mut conn = app_db(&app);
    for batch in 0..10 {
        let mut tx = conn.transaction().unwrap();
        let scope = Scope::new();
        for i in 0..10 {
            scope
                .run(|| add_widget(&tx, &format!("w{}", batch * 10 + i)))
                .unwrap();
        }
        scope.write(&mut tx).unwrap();
        tx.commit().unwrap();
    }
    let store_path = dir.path().join("audit.db");

    // The target is down: an error naming it, nothing lost.
    let mut down = Relay::new(SqliteOutbox::open(&app).unwrap(), Down).batch(7);
    assert!(matches!(down.run_once(), Err(OutboxError::Target(m)) if m.contains("down")));
    assert_eq!(count(&conn, "audit_outbox"), 100);

    // Killed three times right after the target committed a batch (a panic of the
    // target there: the outbox transaction rolls back as a crash would).
    for _ in 0..3 {
        let target = DiesAfterCommit {
            store: Sqlite::open(&store_path).unwrap(),
            times: 1,
        };
        let mut relay = Relay::new(SqliteOutbox::open(&app).unwrap(), target)
            .name("r1")
            .batch(7);
        // The panic is the relay's error, not its thread's end.
        match relay.drain() {
            Err(OutboxError::Target(m)) => {
                assert!(m.contains("`dies` panicked: killed after"), "{m}")
            }
            other => panic!("expected the target's panic as an error, got {other:?}"),
        }
    }
    assert_eq!(count(&conn, "audit_outbox"), 100, "no row was acknowledged");
    // Restarted: every row once, in write order, one unbroken chain.
    let mut relay = Relay::new(
        SqliteOutbox::open(&app).unwrap(),
        Sqlite::open(&store_path).unwrap(),
    )
    .name("r1")
    .batch(7);
    assert_eq!(relay.drain().unwrap().delivered, 100);
    assert_eq!(count(&conn, "audit_outbox"), 0);
    let mut store = Sqlite::open(&store_path).unwrap();
    let all = store
        .query(
            &Query::all()
                .order(audit::store::Order::OldestFirst)
                .limit(1000),
        )
        .unwrap()
        .records;
    let names: Vec<String> = all
        .iter()
        .map(|r| r.metadata["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, (0..100).map(|i| format!("w{i}")).collect::<Vec<_>>());
    let v = store.verify().unwrap();
    assert!(
        v.is_intact() && v.rows == 100 && v.producers == 1 && v.continued == 0,
        "{v:?}"
    );
}
