//! The distributed path with the real servers: two producer processes publish through
//! `audit::sinks::Nats` into a JetStream stream (one a record per message, the other
//! 40 records per message), two ingest processes move it into PostgreSQL, one ingest
//! process is killed with SIGKILL mid-run and restarted. The
//! table must end with exactly the emitted records, and every producer's chain must
//! verify. NATS: `AUDIT_TEST_NATS` (default `nats://127.0.0.1:4222`); PostgreSQL:
//! `AUDIT_TEST_POSTGRES`. Unreachable servers fail the test; it never skips.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use audit::ingest::Ingest;
use audit::sinks::{Nats, SinkOptions};
use audit::store::{Postgres, Query, Store};
use audit::{Auditor, audited};

use audit_distributed_tests::{delete_stream, nats_url, pg_url, stream_messages};

const ROLE: &str = "AUDIT_NATS_TEST_ROLE";
const NAMES: &str = "AUDIT_NATS_TEST_NAMES";
const PER_PRODUCER: usize = 3000;

/// Stream, subject prefix and PostgreSQL schema of one run.
struct Names {
    stream: String,
    prefix: String,
    schema: String,
}

impl Names {
    fn new(tag: u32) -> Names {
        Names {
            stream: format!("AUDIT_T{tag}"),
            prefix: format!("audit_t{tag}"),
            schema: format!("audit_nats_{tag}"),
        }
    }

    fn from_env() -> Names {
        Names::new(std::env::var(NAMES).unwrap().parse().unwrap())
    }

    /// A sink sending up to `per_message` records in a message.
    fn sink(&self, name: &str, per_message: usize) -> Nats {
        Nats::options()
            .stream(&self.stream)
            .subject_prefix(&self.prefix)
            .records_per_message(per_message)
            .name(name)
            .connect(&nats_url())
            .unwrap_or_else(|e| panic!("NATS at {} is unreachable: {e}", nats_url()))
    }

    /// Drops the run's schema and stream.
    fn clean_up(&self) {
        let mut admin = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .unwrap();
        delete_stream(&self.stream);
    }

    fn store(&self) -> Postgres {
        Postgres::options()
            .schema(&self.schema)
            .connect(&pg_url())
            .unwrap_or_else(|e| panic!("PostgreSQL at {} is unreachable: {e}", pg_url()))
    }
}

#[audited(event = "widget_create", meta(name = name))]
fn create_widget(name: &str) {}

/// A child process: a producer or an ingest process, by `ROLE`.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let names = Names::from_env();
    if let Some(producer) = role.strip_prefix("producer-") {
        let spool = tempfile::tempdir().unwrap();
        let per_message = if producer == "b" { 40 } else { 1 };
        let guard = Auditor::builder()
            .sink_with(
                names.sink("nats", per_message),
                SinkOptions::new().primary(),
            )
            .batch_size(200)
            .spool_dir(spool.path())
            .install()
            .unwrap();
        for i in 0..PER_PRODUCER {
            create_widget(&format!("{producer}-{i}"));
        }
        let report = guard.auditor().shutdown();
        assert!(report.is_clean(), "{report}");
    } else {
        let mut store = names.store();
        let report = Ingest::new(&names.stream)
            .consumer("ingest")
            .batch(250)
            .ack_wait(Duration::from_secs(2))
            .exit_when_idle(Duration::from_secs(6))
            .run(&nats_url(), &mut store, &AtomicBool::new(false))
            .unwrap();
        println!("{report:?}");
    }
}

fn spawn(role: &str, tag: u32) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(NAMES, tag.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn jetstream_to_postgres_exactly_once_with_a_killed_ingest() {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    let tag = std::process::id();
    let names = Names::new(tag);
    let mut store = names.store();
    drop(names.sink("setup", 1)); // creates the stream

    let mut ingests = vec![spawn("ingest", tag), spawn("ingest", tag)];
    let mut producers = vec![spawn("producer-a", tag), spawn("producer-b", tag)];

    // Kill one ingest process once records are flowing, then start another.
    let start = Instant::now();
    while store.count().unwrap() < 1000 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    ingests[0].kill().unwrap(); // SIGKILL
    ingests[0].wait().unwrap();
    let killed_at = store.count().unwrap();
    ingests[0] = spawn("ingest", tag);

    for p in &mut producers {
        assert!(p.wait().unwrap().success(), "a producer failed");
    }
    for i in &mut ingests {
        assert!(i.wait().unwrap().success(), "an ingest process failed");
    }

    let total = 2 * PER_PRODUCER;
    let count = store.count().unwrap();
    let mut names_seen = HashSet::new();
    let mut query = Query::all().limit(10_000);
    loop {
        let page = store.query(&query).unwrap();
        for r in &page.records {
            names_seen.insert(r.metadata["name"].as_str().unwrap().to_owned());
        }
        match page.next {
            Some(c) => query = query.after(c),
            None => break,
        }
    }
    let v = store.verify().unwrap();

    names.clean_up();

    assert!(killed_at < total as u64, "the kill happened mid-run");
    assert_eq!(count, total as u64, "no record lost, none duplicated");
    for p in ["a", "b"] {
        for i in 0..PER_PRODUCER {
            assert!(names_seen.contains(&format!("{p}-{i}")), "missing {p}-{i}");
        }
    }
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(
        (v.producers, v.continued),
        (2, 0),
        "both producer chains whole"
    );
}

/// The store of the poison test: the real PostgreSQL store, refusing for good the
/// records named `poison-*` (as a store refuses a value it cannot hold).
struct Refusing(Postgres);

impl audit::sinks::Sink for Refusing {
    fn name(&self) -> &str {
        "refusing"
    }
    fn write(&mut self, batch: &audit::sinks::Batch) -> Result<(), audit::sinks::SinkError> {
        let poison = |i: &audit::sinks::Item| {
            i.record().metadata["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("poison"))
        };
        if batch.iter().any(poison) {
            return Err(audit::sinks::SinkError::permanent("value out of range"));
        }
        if batch.iter().any(|i| i.record().metadata["name"] == "w-99") {
            panic!("driver bug on w-99");
        }
        self.0.write(batch)
    }
}

#[test]
fn ingest_dead_letters_poison_messages_and_goes_on() {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    poison(1, std::process::id() + 1_000_000);
}

/// The same with 8 records in a message: a message holding a refused record
/// stores the others and is acknowledged, not delivered again.
#[test]
fn ingest_dead_letters_poison_records_of_a_message_of_several() {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    poison(8, std::process::id() + 3_000_000);
}

/// Publishes 300 records (two the store refuses, one it panics on) with up to
/// `per_message` records in a message, and a message that is not a record, then
/// ingests them twice.
fn poison(per_message: usize, tag: u32) {
    let names = Names::new(tag);
    let store = names.store();
    let spool = tempfile::tempdir().unwrap();
    let auditor = Auditor::builder()
        .sink_with(
            names.sink("nats", per_message),
            SinkOptions::new().primary(),
        )
        .spool_dir(spool.path().join("spool"))
        .build()
        .unwrap();
    audit::dispatch::with_dispatch(std::sync::Arc::new(auditor.clone()), || {
        for i in 0..300 {
            // w-99 makes the store panic: refused like a poison record.
            let name = match i {
                40 | 217 => format!("poison-{i}"),
                _ => format!("w-{i}"),
            };
            create_widget(&name);
        }
    });
    assert!(auditor.shutdown().is_clean());
    // A genuine record of another producer, from its JSON Lines file.
    let lone = spool.path().join("lone.jsonl");
    let other = Auditor::builder()
        .sink_with(
            audit::sinks::JsonLines::open(&lone).unwrap(),
            SinkOptions::new().primary(),
        )
        .spool_dir(spool.path().join("other"))
        .build()
        .unwrap();
    audit::dispatch::with_dispatch(std::sync::Arc::new(other.clone()), || create_widget("lone"));
    assert!(other.shutdown().is_clean());
    let lone = std::fs::read_to_string(lone).unwrap();
    // A message that is not a record at all, and one whose second line is not.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(nats_url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        for payload in [
            "not json".to_string(),
            format!("{}\n{{\"not\":\"a record\"}}\n", lone.trim_end()),
        ] {
            js.publish(format!("{}._.junk.junk", names.prefix), payload.into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });

    let dead = spool.path().join("dead");
    let ingest = Ingest::new(&names.stream)
        .consumer("poison")
        .batch(100)
        .dead_letters(&dead)
        .exit_when_idle(Duration::from_secs(2));
    let mut refusing = Refusing(store);
    let report = ingest
        .run(&nats_url(), &mut refusing, &AtomicBool::new(false))
        .expect("a poison message never stops ingestion");
    // Terminated messages are not redelivered: a second run finds nothing.
    let again = ingest
        .run(&nats_url(), &mut refusing, &AtomicBool::new(false))
        .unwrap();
    let mut store = refusing.0;
    let count = store.count().unwrap();
    let v = store.verify().unwrap();
    names.clean_up();

    assert_eq!(
        (report.written, report.dead_lettered, report.rejected),
        (298, 3, 2),
        "{report:?}"
    );
    assert_eq!(
        (again.written, again.dead_lettered, again.rejected),
        (0, 0, 0),
        "{again:?}"
    );
    assert_eq!(count, 298);
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.producers, 2, "the lone record's producer too");
    let kept: Vec<_> = audit::spool::Spool::open(&dead)
        .unwrap()
        .segments()
        .unwrap()
        .iter()
        .flat_map(|s| audit::spool::Spool::read_segment(s).unwrap().entries)
        .collect();
    let reasons: Vec<_> = kept.iter().map(|e| e.reason.clone().unwrap()).collect();
    assert_eq!(kept.len(), 5, "{reasons:?}");
    assert!(reasons.contains(&"the store panicked: driver bug on w-99".to_string()));
    let lines: Vec<_> = kept
        .iter()
        .filter(|e| e.reason.as_deref() == Some("not an audit record"))
        .map(|e| e.json.as_str())
        .collect();
    assert_eq!(lines, ["not json", r#"{"not":"a record"}"#]);
    assert_eq!(
        reasons
            .iter()
            .filter(|r| *r == "value out of range")
            .count(),
        2
    );
}

/// Writes to the store, then asks the ingest run to stop.
struct StopAfterOne(Postgres, std::sync::Arc<AtomicBool>);

impl audit::sinks::Sink for StopAfterOne {
    fn name(&self) -> &str {
        "stop-after-one"
    }
    fn write(&mut self, batch: &audit::sinks::Batch) -> Result<(), audit::sinks::SinkError> {
        let written = self.0.write(batch);
        self.1.store(true, std::sync::atomic::Ordering::Relaxed);
        written
    }
}

/// An ingest run fetches the next batch while it writes one. A run that stops
/// hands that batch back to the stream at once: the next run gets every record
/// without waiting for the consumer's ack wait (30 s) to pass.
#[test]
fn a_stopped_ingest_hands_back_the_batch_it_fetched_ahead() {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    let tag = std::process::id() + 2_000_000;
    let names = Names::new(tag);
    let spool = tempfile::tempdir().unwrap();
    let auditor = Auditor::builder()
        .sink_with(names.sink("nats", 1), SinkOptions::new().primary())
        .spool_dir(spool.path())
        .build()
        .unwrap();
    audit::dispatch::with_dispatch(std::sync::Arc::new(auditor.clone()), || {
        for i in 0..500 {
            create_widget(&format!("w-{i}"));
        }
    });
    assert!(auditor.shutdown().is_clean());
    let ingest = Ingest::new(&names.stream)
        .consumer("handback")
        .batch(100)
        .exit_when_idle(Duration::from_secs(3));
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let mut first = StopAfterOne(names.store(), stop.clone());
    let report = ingest.run(&nats_url(), &mut first, &stop).unwrap();
    assert_eq!(report.written, 100, "{report:?}");
    let mut store = names.store();
    let again = ingest
        .run(&nats_url(), &mut store, &AtomicBool::new(false))
        .unwrap();
    let count = store.count().unwrap();
    let v = store.verify().unwrap();
    names.clean_up();
    assert_eq!(again.written, 400, "{again:?}");
    assert_eq!(count, 500);
    assert!(v.is_intact(), "{v:?}");
}

/// A batch sent again (a retry after a lost acknowledgement) makes the same
/// messages of several records, which the stream drops as duplicates.
#[test]
fn a_retried_batch_of_messages_of_several_records_is_dropped_by_the_stream() {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    let names = Names::new(std::process::id() + 4_000_000);
    let records = audit::testing::capture(|| {
        for i in 0..25 {
            create_widget(&format!("w-{i}"));
        }
    });
    let batch: Vec<audit::sinks::Item> = records
        .into_iter()
        .map(|r| audit::sinks::Item::new(r, "widget_create"))
        .collect();
    let mut sink = names.sink("nats", 10);
    audit::sinks::Sink::write(&mut sink, &batch).unwrap();
    audit::sinks::Sink::write(&mut sink, &batch).unwrap();
    let messages = stream_messages(&names.stream);
    delete_stream(&names.stream);
    assert_eq!(messages, 3, "10 + 10 + 5 records, once");
}

/// A record larger than the server takes is refused for good before anything of
/// the batch is published: the pipeline then narrows the batch down to it and keeps
/// it as a dead letter, instead of retrying it forever.
#[test]
fn a_record_larger_than_the_servers_max_payload_is_refused_for_good() {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    let names = Names::new(std::process::id() + 5_000_000);
    let mut records = audit::testing::capture(|| {
        for i in 0..3 {
            create_widget(&format!("w-{i}"));
        }
    })
    .into_iter();
    let item = |r: audit::Record| audit::sinks::Item::new(r, "widget_create");
    let (first, large, last) = (
        records.next().unwrap(),
        records.next().unwrap(),
        records.next().unwrap(),
    );
    // Its JSON text as the sink would send it: 2 MB (the default max_payload is 1 MB).
    let json = format!("{}{}", large.to_json(), " ".repeat(2 << 20));
    let large = audit::sinks::Item::with_json(large, json, "widget_create".into());
    for per_message in [1, 10] {
        let mut sink = names.sink("nats", per_message);
        let e = audit::sinks::Sink::write(
            &mut sink,
            &[item(first.clone()), large.clone(), item(last.clone())],
        )
        .unwrap_err();
        assert!(!e.is_retryable(), "{e}");
        assert!(e.to_string().contains("max_payload"), "{e}");
    }
    let messages = stream_messages(&names.stream);
    delete_stream(&names.stream);
    assert_eq!(messages, 0, "nothing of the batch published");
}
