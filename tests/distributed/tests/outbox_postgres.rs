//! The transactional outbox on the real PostgreSQL: records written in the
//! application's `postgres::Transaction` commit or roll back with it, and several
//! relays running side by side while producers commit deliver every row exactly
//! once, each producer's rows in the order they were committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use audit::outbox::{Relay, Scope, postgres::PostgresOutbox};
use audit::store::{Postgres, Store};
use audit::{DeliveryError, audited};
use audit_distributed_tests::pg_url;

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

/// A client this crate does not wrap (sqlx's way: one statement per row with bound
/// values): the scope hands out its rows, the application inserts them with
/// `INSERT_ROW_POSTGRES`; a failed insert gives them back; rollback and commit as
/// with `write`; the relay delivers them.
#[test]
fn rows_taken_for_another_client_commit_and_roll_back() {
    let app = AppSchema::new("rows");
    let mut client = app.client();
    audit::outbox::postgres::install(&mut client).unwrap();
    let insert = |tx: &mut postgres::Transaction<'_>, rows: &[audit::outbox::NewRow]| {
        for r in rows {
            tx.execute(
                audit::outbox::INSERT_ROW_POSTGRES,
                &[&r.id, &r.producer, &r.json, &r.created_ns],
            )?;
        }
        Ok::<_, postgres::Error>(())
    };
    for commit in [false, true] {
        let mut tx = client.transaction().unwrap();
        let scope = Scope::new();
        scope.run(|| add_widget(&mut tx, "via rows")).unwrap();
        let rows = scope.take_rows();
        assert_eq!((rows.len(), scope.len()), (1, 0));
        insert(&mut tx, &rows).unwrap();
        if commit {
            tx.commit().unwrap();
        } else {
            tx.rollback().unwrap();
        }
    }
    assert_eq!((app.count("widgets"), app.count("audit_outbox")), (1, 1));
    // An insert that fails (a duplicate id): the rows go back to the scope.
    let scope = Scope::new();
    let mut tx = client.transaction().unwrap();
    scope.run(|| add_widget(&mut tx, "twice")).unwrap();
    let rows = scope.take_rows();
    insert(&mut tx, &rows).unwrap();
    assert!(insert(&mut tx, &rows).is_err());
    drop(tx);
    scope.restore_rows(rows);
    let mut tx = client.transaction().unwrap();
    assert_eq!(scope.write(&mut tx).unwrap(), 1);
    tx.commit().unwrap();
    // The relay delivers both, linked, to a store.
    let schema = format!("outbox_rows_store_{}", std::process::id());
    let open_store = || {
        Postgres::options()
            .schema(&schema)
            .connect(&pg_url())
            .unwrap()
    };
    let source = PostgresOutbox::from_client(app.client()).unwrap();
    let report = Relay::new(source, open_store()).drain().unwrap();
    assert_eq!(report.delivered, 2);
    let mut store = open_store();
    let names: Vec<String> = store
        .follow(0, 10)
        .unwrap()
        .into_iter()
        .map(|s| s.record.metadata["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["via rows", "twice"]);
    assert!(store.verify().unwrap().is_intact());
}

#[audited(event = "widget_create", meta(name = name))]
fn add_widget(tx: &mut postgres::Transaction<'_>, name: &str) -> Result<(), AppError> {
    tx.execute("INSERT INTO widgets (name) VALUES ($1)", &[&name])
        .map_err(|e| AppError(e.to_string()))?;
    Ok(())
}

/// A schema of its own for the application's tables and outbox, dropped at the end.
struct AppSchema(String);

impl AppSchema {
    fn new(tag: &str) -> Self {
        let name = format!("outbox_{tag}_{}", std::process::id());
        let mut c = Self::admin();
        c.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name};
             CREATE TABLE {name}.widgets (name text)"
        ))
        .unwrap();
        AppSchema(name)
    }

    fn admin() -> postgres::Client {
        postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is unreachable ({e}); start it (see .ci/run)",
                pg_url()
            )
        })
    }

    /// A connection whose search path is the schema.
    fn client(&self) -> postgres::Client {
        let mut c = Self::admin();
        c.batch_execute(&format!("SET search_path TO {}", self.0))
            .unwrap();
        c
    }

    fn count(&self, table: &str) -> i64 {
        Self::admin()
            .query_one(&format!("SELECT count(*) FROM {}.{table}", self.0), &[])
            .unwrap()
            .get(0)
    }
}

impl Drop for AppSchema {
    fn drop(&mut self) {
        let _ = Self::admin().batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
    }
}

#[test]
fn records_commit_and_roll_back_with_a_postgres_transaction() {
    let app = AppSchema::new("tx");
    let mut client = app.client();
    audit::outbox::postgres::install(&mut client).unwrap();
    {
        let mut tx = client.transaction().unwrap();
        let scope = Scope::new();
        scope.run(|| add_widget(&mut tx, "rolled back")).unwrap();
        assert_eq!(scope.write(&mut tx).unwrap(), 1);
        tx.rollback().unwrap();
    }
    assert_eq!((app.count("widgets"), app.count("audit_outbox")), (0, 0));
    let mut tx = client.transaction().unwrap();
    let scope = Scope::new();
    scope.run(|| add_widget(&mut tx, "kept")).unwrap();
    scope.write(&mut tx).unwrap();
    tx.commit().unwrap();
    assert_eq!((app.count("widgets"), app.count("audit_outbox")), (1, 1));
    // Without the tables: an error that says how to make them.
    let other = AppSchema::new("bare");
    let mut bare = other.client();
    let mut tx = bare.transaction().unwrap();
    let scope = Scope::new();
    scope.run(|| add_widget(&mut tx, "nowhere")).unwrap();
    let e = scope.write(&mut tx).unwrap_err().to_string();
    assert!(e.contains("audit::outbox::postgres::install"), "{e}");
    assert_eq!(scope.len(), 1, "kept for another transaction");
    drop(tx);
    let mut tx = client.transaction().unwrap();
    assert_eq!(scope.write(&mut tx).unwrap(), 1);
    tx.commit().unwrap();
    assert_eq!(app.count("audit_outbox"), 2);
}

#[audited(event = "widget_create", meta(name = name))]
async fn add_widget_async(
    tx: &tokio_postgres::Transaction<'_>,
    name: &str,
) -> Result<(), AppError> {
    tokio::task::yield_now().await; // across an await, maybe on another thread
    tx.execute("INSERT INTO widgets (name) VALUES ($1)", &[&name])
        .await
        .map_err(|e| AppError(e.to_string()))?;
    Ok(())
}

/// Async code with tokio-postgres: the future's events are kept whichever thread
/// polls it, and written with one await into the same transaction.
#[test]
fn an_async_handler_writes_its_records_in_a_tokio_postgres_transaction() {
    let app = AppSchema::new("async");
    audit::outbox::postgres::install(&mut app.client()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut client, connection) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&format!("SET search_path TO {}", app.0))
            .await
            .unwrap();
        for commit in [false, true] {
            let tx = client.transaction().await.unwrap();
            let scope = Scope::new();
            for i in 0..3 {
                scope
                    .run_async(add_widget_async(&tx, &format!("async {i}")))
                    .await
                    .unwrap();
            }
            assert_eq!(scope.write_async(&tx).await.unwrap(), 3);
            if commit {
                tx.commit().await.unwrap();
            } else {
                tx.rollback().await.unwrap();
            }
        }
    });
    assert_eq!((app.count("widgets"), app.count("audit_outbox")), (3, 3));
}

#[test]
fn parallel_relays_deliver_each_producer_in_commit_order_exactly_once() {
    const PRODUCERS: usize = 3;
    const TRANSACTIONS: usize = 40;
    const PER_TX: usize = 5;
    let app = AppSchema::new("par");
    audit::outbox::postgres::install(&mut app.client()).unwrap();
    let store_schema = format!("outbox_store_{}", std::process::id());
    let open_store = || {
        Postgres::options()
            .schema(&store_schema)
            .connect(&pg_url())
            .unwrap()
    };
    drop(open_store());
    let stop = Arc::new(AtomicBool::new(false));
    let relays: Vec<_> = (0..3)
        .map(|r| {
            let (stop, client, store) = (Arc::clone(&stop), app.client(), open_store());
            std::thread::spawn(move || {
                let mut relay = Relay::new(PostgresOutbox::from_client(client).unwrap(), store)
                    .name(format!("r{r}"))
                    .batch(7);
                relay.run(Duration::from_millis(5), &stop).unwrap()
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let mut client = app.client();
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(p as u64);
                for t in 0..TRANSACTIONS {
                    let mut tx = client.transaction().unwrap();
                    let scope = Scope::new().producer(format!("p{p}"));
                    for i in 0..PER_TX {
                        scope
                            .run(|| add_widget(&mut tx, &format!("p{p}-{:04}", t * PER_TX + i)))
                            .unwrap();
                    }
                    scope.write(&mut tx).unwrap();
                    tx.commit().unwrap();
                    std::thread::sleep(Duration::from_millis(rng.u64(0..4)));
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.count("audit_outbox") > 0 {
        assert!(
            Instant::now() < deadline,
            "the relays did not empty the outbox"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let delivered: u64 = relays
        .into_iter()
        .map(|r| r.join().unwrap().delivered)
        .sum();
    let total = PRODUCERS * TRANSACTIONS * PER_TX;
    assert_eq!(delivered, total as u64);

    let mut store = open_store();
    let mut names = Vec::new();
    let mut after = 0;
    loop {
        let rows = store.follow(after, 1000).unwrap();
        let Some(last) = rows.last() else { break };
        after = last.seq;
        names.extend(
            rows.into_iter()
                .map(|s| s.record.metadata["name"].as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(names.len(), total, "every row exactly once");
    for p in 0..PRODUCERS {
        let mine: Vec<&String> = names
            .iter()
            .filter(|n| n.starts_with(&format!("p{p}-")))
            .collect();
        let want: Vec<String> = (0..TRANSACTIONS * PER_TX)
            .map(|i| format!("p{p}-{i:04}"))
            .collect();
        assert_eq!(
            mine,
            want.iter().collect::<Vec<_>>(),
            "producer {p} in commit order"
        );
    }
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.continued == 0, "{v:?}");
    assert!(v.producers <= 3, "one chain per relay: {v:?}");
    let _ = AppSchema::admin().batch_execute(&format!("DROP SCHEMA {store_schema} CASCADE"));
}
