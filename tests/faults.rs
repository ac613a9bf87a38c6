//! Nothing lost, nothing silent: the pipeline under the faults people forget — a
//! panicking sink, listener or handler, a cancelled future, odd values, a shutdown
//! racing with callers, an earlier run's leftovers.

use std::collections::HashSet;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::{Duration, SystemTime};

use audit::dispatch::with_dispatch;
use audit::pipeline::{AuditorBuilder, Retry};
use audit::sinks::{Batch, JsonLines, Listener, Sink, SinkError, SinkOptions};
use audit::spool::Spool;
use audit::{Auditor, DeliveryError, OutcomeKind, Record, audited};

#[audited(event = "widget_create", meta(name = name))]
fn add_widget(name: &str) {}

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

#[audited(event = "dashboard_delete", meta(name = name), durability = "sync")]
fn delete_dashboard(name: &str) -> Result<(), AppError> {
    Ok(())
}

#[audited(event = "widget_create", meta(name = name))]
fn explode(name: &str) -> Result<(), AppError> {
    panic!("boom in {name}")
}

#[audited(event = "widget_create", meta(name = name))]
async fn wait_forever(name: &str) -> Result<(), AppError> {
    std::future::pending::<()>().await;
    Ok(())
}

#[audited(event = "widget_create", meta(name = name))]
async fn explode_later(name: &str) {
    tokio::task::yield_now().await;
    panic!("late boom in {name}");
}

fn builder(dir: &Path) -> AuditorBuilder {
    Auditor::builder()
        .spool_dir(dir.join("spool"))
        .max_wait(Duration::from_millis(5))
        .batch_size(64)
        .retry(Retry {
            attempts: 2,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(2),
            multiplier: 2.0,
            jitter: false,
        })
}

/// The `name` metadata of every record a listener saw.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn names(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn listener(
        &self,
        name: &str,
        poison: Option<&'static str>,
    ) -> Listener<impl audit::sinks::Listen> {
        let seen = self.clone();
        Listener::new(name, move |r: &Record, _: &str| {
            let n = r.metadata["name"].as_str().unwrap_or_default().to_owned();
            if Some(n.as_str()) == poison {
                panic!("listener cannot take {n}");
            }
            seen.0.lock().unwrap().push(n);
        })
    }
}

fn dead_letters(dir: &Path) -> Vec<audit::spool::SpoolEntry> {
    let Ok(spool) = Spool::open(dir) else {
        return Vec::new();
    };
    spool
        .segments()
        .unwrap()
        .iter()
        .flat_map(|s| Spool::read_segment(s).unwrap().entries)
        .collect()
}

#[test]
fn a_panicking_listener_dead_letters_only_its_poison_record_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (good, flaky) = (Seen::default(), Seen::default());
    let auditor = builder(dir.path())
        .sink(good.listener("good", None))
        .sink(flaky.listener("flaky", Some("w-137")))
        .build()
        .unwrap();
    with_dispatch(Arc::new(auditor.clone()), || {
        for i in 0..300 {
            add_widget(&format!("w-{i}"));
        }
    });
    assert!(auditor.flush());
    // The sink thread survived: later batches still arrive.
    with_dispatch(Arc::new(auditor.clone()), || add_widget("after"));
    let report = auditor.shutdown();

    assert_eq!(good.names().len(), 301, "the other sink never noticed");
    let flaky_names: HashSet<String> = flaky.names().into_iter().collect();
    assert_eq!(flaky_names.len(), 300, "everything but the poison record");
    assert!(!flaky_names.contains("w-137") && flaky_names.contains("after"));

    let m = report.sinks.iter().find(|s| s.name == "flaky").unwrap();
    assert!(m.panicked >= 1, "{m:?}");
    assert_eq!(
        (m.dead_lettered, m.lost, m.undelivered()),
        (1, 0, 0),
        "{m:?}"
    );
    assert!(!report.is_clean());
    assert!(report.to_string().contains("1 dead-lettered"), "{report}");

    let dead = dead_letters(&dir.path().join("spool/flaky/dead"));
    assert_eq!(dead.len(), 1);
    let reason = dead[0].reason.as_deref().unwrap();
    assert!(
        reason.contains("panicked: listener cannot take w-137"),
        "{reason}"
    );
    assert_eq!(dead[0].record().unwrap().metadata["name"], "w-137");
}

/// A sink whose `write` panics while `broken` is set.
struct Panicky(Arc<AtomicBool>);

impl Sink for Panicky {
    fn name(&self) -> &str {
        "panicky"
    }
    fn write(&mut self, _: &Batch) -> Result<(), SinkError> {
        if self.0.load(Ordering::SeqCst) {
            panic!("driver bug");
        }
        Ok(())
    }
}

#[test]
fn a_sync_event_whose_primary_sink_panics_fails_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let broken = Arc::new(AtomicBool::new(true));
    let seen = Seen::default();
    let auditor = builder(dir.path())
        .sink_with(Panicky(broken.clone()), SinkOptions::new().primary())
        .sink(seen.listener("other", None))
        .build()
        .unwrap();
    let result = with_dispatch(Arc::new(auditor.clone()), || delete_dashboard("d"));
    let err = result.unwrap_err().0;
    assert!(err.contains("the sink panicked: driver bug"), "{err}");
    broken.store(false, Ordering::SeqCst);
    let ok = with_dispatch(Arc::new(auditor.clone()), || delete_dashboard("e"));
    assert!(ok.is_ok(), "the sink serves again: {ok:?}");
    let report = auditor.shutdown();
    assert_eq!(seen.names(), ["d", "e"]);
    assert_eq!(report.sinks[0].panicked, 1);
}

#[test]
fn a_panicking_handler_is_recorded_as_a_failure_then_the_panic_resumes() {
    let records = audit::testing::capture(|| {
        let r = catch_unwind(|| explode("w1"));
        let payload = r.unwrap_err();
        assert_eq!(payload.downcast_ref::<String>().unwrap(), "boom in w1");
    });
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, OutcomeKind::Failure);
    assert_eq!(records[0].error.as_deref(), Some("panicked: boom in w1"));
    assert_eq!(records[0].metadata["name"], "w1");
}

#[test]
fn a_future_dropped_before_it_completes_is_recorded_as_cancelled() {
    let records = audit::testing::capture(|| {
        let mut fut = Box::pin(wait_forever("w2"));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        drop(fut);
    });
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, OutcomeKind::Failure);
    let error = records[0].error.as_deref().unwrap();
    assert!(error.starts_with("cancelled"), "{error}");

    // The same through a timeout, the usual way a future is dropped.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let records = audit::testing::capture(|| {
        let r = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(5), wait_forever("w3")).await
        });
        assert!(r.is_err());
    });
    assert_eq!(records.len(), 1);
    assert!(
        records[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("cancelled")
    );

    // A future never polled did not start: nothing to record.
    let records = audit::testing::capture(|| drop(wait_forever("w4")));
    assert!(records.is_empty());
}

#[test]
fn a_panic_in_an_async_handler_is_recorded() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let records = audit::testing::capture(|| {
        let r = catch_unwind(AssertUnwindSafe(|| rt.block_on(explode_later("w5"))));
        assert!(r.is_err());
    });
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].error.as_deref(),
        Some("panicked: late boom in w5")
    );
}

/// Every line of a JSON Lines file, read back as a record whose hash still holds.
fn read_back(path: &Path) -> Vec<Record> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let (stored, computed) = audit::integrity::hash_of_json(line).unwrap();
            assert_eq!(stored, Some(computed.as_str()));
            serde_json::from_str(line).unwrap()
        })
        .collect()
}

#[test]
fn odd_values_encode_read_back_and_verify() {
    use audit_support_crate::{SignIn, sign_in_at};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let db = dir.path().join("audit.db");
    let auditor = builder(dir.path())
        .sink(JsonLines::open(&file).unwrap())
        .sink(audit::store::Sqlite::open(&db).unwrap())
        .build()
        .unwrap();
    let mut deep = serde_json::json!("bottom");
    for _ in 0..500 {
        deep = serde_json::json!({ "k": deep });
    }
    let year = Duration::from_secs(365 * 86_400);
    let cases: Vec<(f64, SystemTime, serde_json::Value, usize)> = vec![
        (
            f64::NAN,
            SystemTime::UNIX_EPOCH - year,
            serde_json::json!({}),
            0,
        ),
        (f64::INFINITY, SystemTime::UNIX_EPOCH - 70 * year, deep, 0),
        (
            f64::NEG_INFINITY,
            SystemTime::UNIX_EPOCH + 200 * year,
            serde_json::json!("x\0y"),
            0,
        ),
        (
            0.5,
            SystemTime::UNIX_EPOCH,
            serde_json::json!("z".repeat(3 << 20)),
            0,
        ),
        (1.0, SystemTime::UNIX_EPOCH, serde_json::json!(null), 50_000),
    ];
    with_dispatch(Arc::new(auditor.clone()), || {
        for (risk, at, extra, roles) in cases {
            let s = SignIn {
                login: "ann\u{0}\u{1f}".into(),
                ip: None,
                password: "pw".into(),
                extra,
            };
            sign_in_at(&s, risk, at, &vec!["r".repeat(64); roles]);
        }
    });
    let report = auditor.shutdown();
    assert!(report.is_clean(), "{report}");

    let records = read_back(&file);
    assert_eq!(records.len(), 5);
    let meta = |i: usize, k: &str| records[i].metadata[k].clone();
    assert_eq!(meta(0, "risk"), "NaN");
    assert_eq!(meta(0, "at"), "1969-01-01T00:00:00.000000000Z");
    assert_eq!(meta(1, "risk"), "Infinity");
    assert_eq!(meta(1, "at"), "1900-01-18T00:00:00.000000000Z");
    assert_eq!(meta(2, "risk"), "-Infinity");
    assert_eq!(meta(2, "extra"), "x\0y");
    // 500 levels: the first 64 kept, the rest as its JSON text.
    let mut v = &records[1].metadata["extra"];
    let mut depth = 0;
    while let Some(inner) = v.get("k") {
        v = inner;
        depth += 1;
    }
    assert_eq!(depth, audit::limits::MAX_DEPTH);
    assert!(v.as_str().unwrap().starts_with(r#"{"k":{"k":"#));
    // Over-size: the largest values became markers, the record fits.
    for i in [3, 4] {
        let field = if i == 3 { "extra" } else { "roles" };
        let marker = &records[i].metadata[field]["$truncated"];
        assert!(marker["bytes"].as_u64().unwrap() > 1 << 20, "{marker}");
        assert_eq!(marker["sha256"].as_str().unwrap().len(), 64);
    }
    for line in std::fs::read_to_string(&file).unwrap().lines() {
        assert!(line.len() <= audit::limits::MAX_RECORD_BYTES);
    }
    // The store took every one of them and its chain verifies.
    use audit::store::Store;
    let mut store = audit::store::Sqlite::open(&db).unwrap();
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.rows, 5);
}

#[test]
fn no_event_accepted_during_shutdown_is_lost() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let seen = Seen::default();
        let auditor = builder(dir.path())
            .sink(seen.listener("all", None))
            .build()
            .unwrap();
        let ok = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (auditor, ok) = (auditor.clone(), ok.clone());
                std::thread::spawn(move || {
                    with_dispatch(Arc::new(auditor), || {
                        for i in 0.. {
                            let name = format!("{t}-{i}");
                            // A plain call cannot see the result: emit through a
                            // sync event, whose Ok means committed.
                            match delete_dashboard(&name) {
                                Ok(()) => ok.lock().unwrap().push(name),
                                Err(e) if e.0.contains("shut down") => return,
                                Err(e) => panic!("{e}"),
                            }
                        }
                    })
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20 + 10 * round));
        let report = auditor.shutdown();
        for t in threads {
            t.join().unwrap();
        }
        let delivered: HashSet<String> = seen.names().into_iter().collect();
        let ok = ok.lock().unwrap();
        assert!(!ok.is_empty());
        for name in ok.iter() {
            assert!(delivered.contains(name), "{name} returned Ok but was lost");
        }
        assert!(report.is_clean(), "{report}");
    }
}

#[test]
fn the_report_counts_this_run_and_an_earlier_runs_records_apart() {
    let dir = tempfile::tempdir().unwrap();
    let down = Arc::new(AtomicBool::new(true));
    struct Down(Arc<AtomicBool>, Seen);
    impl Sink for Down {
        fn name(&self) -> &str {
            "store"
        }
        fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
            if self.0.load(Ordering::SeqCst) {
                return Err(SinkError::retryable("down"));
            }
            let names = batch
                .iter()
                .map(|i| i.record().metadata["name"].to_string());
            self.1.0.lock().unwrap().extend(names);
            Ok(())
        }
        fn health(&mut self) -> Result<(), SinkError> {
            if self.0.load(Ordering::SeqCst) {
                return Err(SinkError::retryable("down"));
            }
            Ok(())
        }
    }
    let seen = Seen::default();
    let first = builder(dir.path())
        .sink(Down(down.clone(), seen.clone()))
        .build()
        .unwrap();
    with_dispatch(Arc::new(first.clone()), || {
        (0..100).for_each(|i| add_widget(&i.to_string()))
    });
    let report = first.shutdown();
    assert!(!report.is_clean());
    assert_eq!(report.sinks[0].undelivered(), 100, "{report}");
    assert!(
        report.to_string().contains("100 still in its spool"),
        "{report}"
    );

    down.store(false, Ordering::SeqCst);
    let second = builder(dir.path())
        .sink(Down(down, seen.clone()))
        .build()
        .unwrap();
    with_dispatch(Arc::new(second.clone()), || add_widget("new"));
    let report = second.shutdown();
    assert!(report.is_clean(), "{report}");
    let s = &report.sinks[0];
    assert_eq!(
        (s.recovered, s.delivered, s.spooled, s.replayed),
        (100, 1, 0, 0)
    );
    assert_eq!(seen.names().len(), 101);
}

#[test]
fn an_earlier_runs_overflow_spool_is_drained_at_start() {
    let dir = tempfile::tempdir().unwrap();
    // What a killed process left in its overflow spool: unlinked records.
    let records = audit::testing::capture(|| (0..10).for_each(|i| add_widget(&format!("s{i}"))));
    {
        let mut spill = Spool::open(dir.path().join("spool/_overflow")).unwrap();
        let entries: Vec<_> = records
            .iter()
            .map(|r| audit::spool::SpoolEntry::new("widget_create", r.to_json()))
            .collect();
        spill.append(&entries).unwrap();
    }
    let seen = Seen::default();
    let auditor = builder(dir.path())
        .overflow(audit::pipeline::Overflow::Spill)
        .sink(seen.listener("all", None))
        .build()
        .unwrap();
    assert!(auditor.flush());
    let report = auditor.shutdown();
    assert_eq!(
        seen.names(),
        (0..10).map(|i| format!("s{i}")).collect::<Vec<_>>()
    );
    assert!(report.is_clean(), "{report}");
    let left = std::fs::read_dir(dir.path().join("spool/_overflow"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "seg")
        })
        .count();
    assert_eq!(left, 0, "the drained segment is removed");
}

/// A sink whose `write` blocks until released (a peer that never answers).
struct Hung(Arc<(Mutex<bool>, std::sync::Condvar)>);

impl Hung {
    fn new() -> (Hung, impl FnOnce()) {
        let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let release = {
            let gate = gate.clone();
            move || {
                *gate.0.lock().unwrap() = true;
                gate.1.notify_all();
            }
        };
        (Hung(gate), release)
    }
}

impl Sink for Hung {
    fn name(&self) -> &str {
        "hung"
    }
    fn write(&mut self, _: &Batch) -> Result<(), SinkError> {
        let mut open = self.0.0.lock().unwrap();
        while !*open {
            open = self.0.1.wait(open).unwrap();
        }
        Ok(())
    }
}

#[test]
fn a_hung_sink_never_holds_up_flush_shutdown_or_a_blocked_caller() {
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let (hung, release) = Hung::new();
    let auditor = builder(dir.path())
        .sink(hung)
        .queue_capacity(10)
        .batch_size(5)
        .block_timeout(Duration::from_millis(200))
        .shutdown_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let dispatch = Arc::new(auditor.clone());
    // The queues fill up; then each call waits at most the block timeout.
    let mut slowest = Duration::ZERO;
    for i in 0..500 {
        let started = Instant::now();
        with_dispatch(dispatch.clone(), || add_widget(&i.to_string()));
        slowest = slowest.max(started.elapsed());
        if auditor.metrics().dropped > 0 {
            break;
        }
    }
    assert_eq!(
        auditor.metrics().dropped,
        1,
        "a caller gave up once the queue stayed full"
    );
    assert!(slowest >= Duration::from_millis(200), "{slowest:?}");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");

    let started = Instant::now();
    assert!(
        !auditor.flush(),
        "nothing can be flushed through a hung sink"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let report = auditor.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(!report.flushed && !report.is_clean(), "{report}");
    release();
}

#[test]
fn a_sync_event_waiting_for_a_hung_primary_does_not_hold_up_other_sinks() {
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let (hung, release) = Hung::new();
    let seen = Seen::default();
    let auditor = builder(dir.path())
        .sink_with(hung, SinkOptions::new().primary())
        .sink(seen.listener("listener", None))
        .sync_timeout(Duration::from_millis(1500))
        .shutdown_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let sync_call = {
        let auditor = auditor.clone();
        std::thread::spawn(move || with_dispatch(Arc::new(auditor), || delete_dashboard("waits")))
    };
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    with_dispatch(Arc::new(auditor.clone()), || add_widget("meanwhile"));
    while !seen.names().contains(&"meanwhile".to_string()) {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the listener waited for the sync event's primary sink"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!sync_call.is_finished(), "the sync call is still waiting");
    let err = sync_call.join().unwrap().unwrap_err();
    assert!(
        err.0.contains("no answer within the sync timeout"),
        "{}",
        err.0
    );
    release();
    auditor.shutdown();
}

/// A sink that blocks in `write` until released, then records what it got.
struct HungThenFine(Arc<(Mutex<bool>, std::sync::Condvar)>, Seen);

impl Sink for HungThenFine {
    fn name(&self) -> &str {
        "hung"
    }
    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        let mut open = self.0.0.lock().unwrap();
        while !*open {
            open = self.0.1.wait(open).unwrap();
        }
        drop(open);
        let names = batch
            .iter()
            .map(|i| i.record().metadata["name"].as_str().unwrap().to_owned());
        self.1.0.lock().unwrap().extend(names);
        Ok(())
    }
}

#[test]
fn a_hung_sink_is_spooled_around_and_catches_up_in_order() {
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let (late, other) = (Seen::default(), Seen::default());
    let auditor = builder(dir.path())
        .sink(HungThenFine(gate.clone(), late.clone()))
        .sink(other.listener("other", None))
        .batch_size(10)
        .queue_capacity(20)
        .stall_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = Instant::now();
    with_dispatch(Arc::new(auditor.clone()), || {
        for i in 0..3000 {
            add_widget(&format!("w-{i}"));
        }
    });
    // The other sink gets everything while the first one still hangs.
    while other.names().len() < 3000 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the other sink waited for the hung one ({} delivered)",
            other.names().len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(late.names().is_empty());
    let m = auditor.metrics();
    assert!(m.sink("hung").unwrap().spooled > 0, "{m:?}");
    // Released, it catches up: every record once, in order.
    {
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    }
    let report = auditor.shutdown();
    let expected: Vec<String> = (0..3000).map(|i| format!("w-{i}")).collect();
    assert_eq!(late.names(), expected);
    assert_eq!(other.names(), expected);
    assert!(report.is_clean(), "{report}");
}

/// A record of the JSON Lines fault test, `i` of its chain.
fn chained_item(chain: &mut audit::integrity::Chain, i: usize) -> audit::sinks::Item {
    let mut record: Record = serde_json::from_value(serde_json::json!({
        "id": audit::Uuid::now_v7(), "time": "2026-12-03T10:00:00Z", "event": "widget_create",
        "code": 1, "category": "widget", "level": "info", "outcome": "success", "error": null,
        "duration_ns": 10, "description": format!("widget {i}"), "actor": null,
        "impersonator": null, "tenant": null, "environment": null, "source": null,
        "request": null, "entity": null, "changes": null, "metadata": {"name": format!("w{i}")},
        "site": {"module": "faults", "file": "tests/faults.rs", "line": 1, "function": "f"},
        "prev_hash": null, "hash": null
    }))
    .unwrap();
    let json = chain.link(&mut record);
    audit::sinks::Item::with_json(record, json, Arc::from("widget_create"))
}

/// Sets this process's file size limit (`RLIMIT_FSIZE`): a write past it fails with
/// `EFBIG`, as a full disk fails one with `ENOSPC`, after writing what fits.
#[cfg(target_os = "linux")]
fn limit_file_size(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain system calls on values of ours.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

/// The child of the test below: the limit is the process's, so it runs alone.
#[cfg(target_os = "linux")]
fn json_lines_full_mid_batch_child() {
    for zstd in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut sink = JsonLines::open(&path).unwrap();
        if zstd {
            sink = sink.zstd(1).unwrap();
        }
        let mut chain = audit::integrity::Chain::new();
        let first: Vec<_> = (0..50).map(|i| chained_item(&mut chain, i)).collect();
        let second: Vec<_> = (50..100).map(|i| chained_item(&mut chain, i)).collect();
        sink.write(&first).unwrap();
        let written = std::fs::metadata(&path).unwrap().len();
        // Room for a piece of the second batch, not all of it.
        limit_file_size(written + 100);
        let failed = sink.write(&second).unwrap_err();
        assert!(failed.is_retryable(), "{failed}");
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            written,
            "zstd {zstd}: the failed batch's bytes are taken back"
        );
        limit_file_size(libc::RLIM_INFINITY);
        sink.write(&second).unwrap();
        sink.flush().unwrap();
        drop(sink);
        let bytes = std::fs::read(&path).unwrap();
        let text = match zstd {
            true => zstd::stream::decode_all(&bytes[..]).unwrap(),
            false => bytes,
        };
        let records: Vec<Record> = String::from_utf8(text)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), 100, "zstd {zstd}: every record once");
        for (i, pair) in records.windows(2).enumerate() {
            assert_eq!(
                pair[1].prev_hash,
                pair[0].hash,
                "zstd {zstd}: record {}",
                i + 1
            );
        }
    }
    println!("the child wrote both files");
}

/// A full disk in the middle of a batch (here the file size limit): the JSON Lines
/// sink takes the batch's bytes back, so the retry writes the batch once and whole,
/// and a compressed file has no torn frame in its middle.
#[cfg(target_os = "linux")]
#[test]
fn a_json_lines_file_full_mid_batch_takes_the_batch_back_for_its_retry() {
    const NAME: &str = "a_json_lines_file_full_mid_batch_takes_the_batch_back_for_its_retry";
    if std::env::var_os("AUDIT_FULL_FILE_CHILD").is_some() {
        return json_lines_full_mid_batch_child();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env("AUDIT_FULL_FILE_CHILD", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("the child wrote both files"), "{text}");
}
