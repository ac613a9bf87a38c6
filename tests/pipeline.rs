//! The delivery pipeline against real files and threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use audit::dispatch::with_dispatch;
use audit::pipeline::{AuditorBuilder, Overflow, Retry};
use audit::sinks::{Batch, JsonLines, Sink, SinkError, SinkOptions};
use audit::{Auditor, DeliveryError, Record, audited};

#[audited(event = "widget_create", meta(name = name))]
fn add_widget(name: &str) {}

#[audited(event = "app_launch", meta(id = id, uid = "cld-1", name = "CRM", app_nid = nid))]
fn launch(id: i64, nid: &str) {}

#[derive(Debug)]
struct AppError(String);

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<DeliveryError> for AppError {
    fn from(e: DeliveryError) -> Self {
        AppError(format!("audit: {e}"))
    }
}

#[audited(event = "dashboard_delete", meta(name = name), durability = "sync")]
fn delete_dashboard(name: &str) -> Result<(), AppError> {
    Ok(())
}

/// Collects what a sink received: (published name, record).
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<(String, Record)>>>);

impl Collected {
    fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, r)| r.metadata["name"].as_str().unwrap().to_owned())
            .collect()
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// A sink that fails its first `fail` writes, is down while `down` is set, and takes
/// `delay` per batch.
struct TestSink {
    name: &'static str,
    fail: usize,
    down: Arc<AtomicBool>,
    delay: Duration,
    permanent: bool,
    out: Collected,
}

impl TestSink {
    fn new(name: &'static str, out: &Collected) -> Self {
        TestSink {
            name,
            fail: 0,
            down: Arc::default(),
            delay: Duration::ZERO,
            permanent: false,
            out: out.clone(),
        }
    }
}

impl Sink for TestSink {
    fn name(&self) -> &str {
        self.name
    }
    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        if self.permanent {
            return Err(SinkError::permanent("payload rejected"));
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(SinkError::retryable("connection refused"));
        }
        if self.fail > 0 {
            self.fail -= 1;
            return Err(SinkError::retryable("timeout"));
        }
        std::thread::sleep(self.delay);
        let mut out = self.out.0.lock().unwrap();
        out.extend(
            batch
                .iter()
                .map(|i| (i.name().to_string(), i.record().clone())),
        );
        Ok(())
    }
    fn health(&mut self) -> Result<(), SinkError> {
        if self.down.load(Ordering::SeqCst) {
            Err(SinkError::retryable("down"))
        } else {
            Ok(())
        }
    }
}

fn fast_retry() -> Retry {
    Retry {
        attempts: 2,
        initial: Duration::from_millis(1),
        max: Duration::from_millis(2),
        multiplier: 2.0,
        jitter: true,
    }
}

fn builder(spool: &std::path::Path) -> AuditorBuilder {
    Auditor::builder()
        .spool_dir(spool)
        .retry(fast_retry())
        .max_wait(Duration::from_millis(5))
        .batch_size(50)
}

/// The files of the JSON Lines trail at `path`, oldest first (the rotated ones,
/// then `path`): each one's bytes and its text, decompressed when it is zstd.
fn trail(path: &std::path::Path) -> Vec<(Vec<u8>, String)> {
    let mut files = JsonLines::open(path).unwrap().rotated_files().unwrap();
    files.push(path.to_owned());
    files
        .iter()
        .map(|file| {
            let bytes = std::fs::read(file).unwrap();
            let text = match bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                true => zstd::stream::decode_all(&bytes[..]).unwrap(),
                false => bytes.clone(),
            };
            (bytes, String::from_utf8(text).unwrap())
        })
        .collect()
}

fn emit_from_threads(auditor: &Auditor, threads: usize, per_thread: usize) {
    std::thread::scope(|s| {
        for t in 0..threads {
            let a: Arc<dyn audit::dispatch::Dispatch> = Arc::new(auditor.clone());
            s.spawn(move || {
                with_dispatch(a, || {
                    (0..per_thread).for_each(|i| add_widget(&format!("{t}:{i}")))
                })
            });
        }
    });
}

/// Every (producer, sequence) exactly once, and in order per producer.
fn assert_exactly_once_in_order(names: &[String], threads: usize, per_thread: usize) {
    assert_eq!(names.len(), threads * per_thread);
    let mut next: HashMap<usize, usize> = HashMap::new();
    for n in names {
        let (t, i) = n.split_once(':').unwrap();
        let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
        let expected = next.entry(t).or_default();
        assert_eq!(i, *expected, "producer {t} out of order or duplicated");
        *expected += 1;
    }
}

#[test]
fn a_sink_that_fails_then_recovers_gets_everything_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = Collected::default();
    let mut sink = TestSink::new("flaky", &out);
    sink.fail = 7; // with 2 tries per batch: several batches spooled, then replayed
    let auditor = builder(dir.path()).sink(sink).build().unwrap();
    emit_from_threads(&auditor, 2, 2_000);
    assert!(auditor.flush());
    let report = auditor.shutdown();
    assert!(report.is_clean(), "{report}");
    // A second shutdown (a guard dropped after an explicit one) reports the first.
    assert!(auditor.shutdown().is_clean());
    assert_exactly_once_in_order(&out.names(), 2, 2_000);
    let m = auditor.metrics().sinks[0].clone();
    assert_eq!(m.delivered, 4_000);
    assert!(m.spooled > 0 && m.replayed == m.spooled, "{m:?}");
    assert!(m.retried >= 3, "{m:?}");
}

#[test]
fn a_sink_down_for_the_whole_run_is_replayed_by_the_next_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let lost = Collected::default();
    let down = TestSink::new("store", &lost);
    down.down.store(true, Ordering::SeqCst);
    let first = builder(dir.path()).sink(down).build().unwrap();
    emit_from_threads(&first, 1, 500);
    let report = first.shutdown();
    assert_eq!(report.spooled(), ["store"]);
    assert_eq!(first.metrics().sinks[0].spooled, 500);
    assert_eq!(lost.len(), 0);

    // Cut the last segment in the middle of its last record, as a crash would.
    let seg_dir = dir.path().join("store");
    let mut segs: Vec<_> = std::fs::read_dir(&seg_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    let last = segs.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(len - 10)
        .unwrap();

    // The next run, with the sink healthy, replays every whole record before new ones.
    let out = Collected::default();
    let second = builder(dir.path())
        .sink(TestSink::new("store", &out))
        .build()
        .unwrap();
    with_dispatch(Arc::new(second.clone()), || add_widget("after"));
    second.shutdown();
    let names = out.names();
    assert_eq!(
        names.len(),
        500,
        "499 whole spooled records and the new one"
    );
    assert_exactly_once_in_order(&names[..499], 1, 499);
    assert_eq!(names[499], "after");
    let m = second.metrics().sinks[0].clone();
    assert_eq!((m.recovered, m.replayed, m.corrupt), (499, 0, 1));
    assert!(
        std::fs::read_dir(&seg_dir).unwrap().all(|e| e
            .unwrap()
            .path()
            .extension()
            .is_none_or(|e| e != "seg")),
        "replayed segments are removed"
    );
}

#[test]
fn permanent_failures_are_counted_and_kept_aside() {
    let dir = tempfile::tempdir().unwrap();
    let out = Collected::default();
    let mut bad = TestSink::new("rejects", &out);
    bad.permanent = true;
    let good = TestSink::new("good", &out);
    let auditor = builder(dir.path()).sink(bad).sink(good).build().unwrap();
    emit_from_threads(&auditor, 1, 120);
    auditor.shutdown();
    let m = auditor.metrics();
    assert_eq!(m.sink("rejects").unwrap().dead_lettered, 120);
    assert_eq!(
        m.sink("rejects").unwrap().retried,
        0,
        "a permanent error is not retried"
    );
    assert_eq!(
        m.sink("good").unwrap().delivered,
        120,
        "one sink's failure never blocks another"
    );
    assert!(
        dir.path().join("rejects/dead").read_dir().unwrap().count() > 1,
        "dead letters kept"
    );
}

#[test]
fn filters_and_aliases_per_sink() {
    let dir = tempfile::tempdir().unwrap();
    let (apps, warns, all) = (
        Collected::default(),
        Collected::default(),
        Collected::default(),
    );
    let auditor = builder(dir.path())
        .sink_with(
            TestSink::new("intercom", &apps),
            SinkOptions::new().categories(["app"]).alias("intercom"),
        )
        .sink_with(
            TestSink::new("warn", &warns),
            SinkOptions::new().min_level(audit::Level::Warn),
        )
        .sink_with(
            TestSink::new("widgets", &all),
            SinkOptions::new().events(["widget_create"]),
        )
        .build()
        .unwrap();
    with_dispatch(Arc::new(auditor.clone()), || {
        add_widget("w");
        launch(4, "inv-track");
    });
    auditor.shutdown();
    let apps = apps.0.lock().unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].0, "launched-app-inv-track");
    assert_eq!(warns.len(), 0, "neither event is warn or above");
    assert_eq!(all.names(), vec!["w"]);
}

#[test]
fn json_lines_rotate_by_size_and_keep_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = JsonLines::open(&path).unwrap().rotate_bytes(4_000).keep(3);
    let auditor = builder(&dir.path().join("spool"))
        .sink(sink)
        .build()
        .unwrap();
    emit_from_threads(&auditor, 1, 200);
    auditor.shutdown();
    let rotated: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("audit.jsonl."))
        .collect();
    assert_eq!(rotated.len(), 3, "{rotated:?}");
    let current = std::fs::read_to_string(&path).unwrap();
    assert!(current.len() <= 4_000);
    let last: Record = serde_json::from_str(current.lines().last().unwrap()).unwrap();
    assert_eq!(last.metadata["name"], "0:199");
    assert_eq!(last.hash.as_ref().unwrap().len(), 64);
}

#[test]
fn json_lines_written_back_early_keep_every_line_in_chain_order() {
    // A start of writeback after every batch, across rotations: the hint must not
    // change a byte of what the files hold.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wb.jsonl");
    let sink = JsonLines::open(&path)
        .unwrap()
        .write_back_every(1)
        .rotate_bytes(64_000)
        .keep(1_000);
    let auditor = builder(&dir.path().join("spool"))
        .sink(sink)
        .build()
        .unwrap();
    emit_from_threads(&auditor, 1, 1_000);
    assert!(auditor.shutdown().is_clean());
    let files = trail(&path);
    let rotated = files.len() - 1;
    assert!(rotated >= 5, "{rotated} rotated files");
    let mut prev: Option<String> = None;
    let mut n = 0;
    for (_, text) in &files {
        for line in text.lines() {
            let record: Record = serde_json::from_str(line).unwrap();
            assert_eq!(record.prev_hash.map(|h| h.to_string()), prev, "line {n}");
            prev = record.hash.map(|h| h.to_string());
            n += 1;
        }
    }
    assert_eq!(n, 1_000);
}

#[test]
fn json_lines_compressed_with_zstd_hold_every_line_in_frames_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("z.jsonl.zst");
    let open = || {
        JsonLines::open(&path)
            .unwrap()
            .zstd(1)
            .unwrap()
            .rotate_bytes(4_000)
            .keep(1_000)
    };
    let auditor = builder(&dir.path().join("spool"))
        .sink(open())
        .build()
        .unwrap();
    emit_from_threads(&auditor, 1, 600);
    assert!(auditor.shutdown().is_clean());
    // Opened again, the file gets new frames after its old ones.
    let auditor = builder(&dir.path().join("spool"))
        .sink(open())
        .build()
        .unwrap();
    emit_from_threads(&auditor, 1, 5);
    assert!(auditor.shutdown().is_clean());

    let files = trail(&path);
    // How many frames the 600 records make depends on how the pipeline batched
    // them (queued batches are delivered together); any frame after the first
    // ~4 000 bytes starts a new file, so the second run's frame did at least.
    let rotated = files.len() - 1;
    assert!(rotated >= 1, "{rotated} rotated files");
    let mut records = Vec::new();
    for (file, text) in &files {
        assert_eq!(file[..4], [0x28, 0xb5, 0x2f, 0xfd], "every file is zstd");
        for line in text.lines() {
            let (stored, computed) = audit::integrity::hash_of_json(line).unwrap();
            assert_eq!(stored, Some(computed.as_str()), "{line}");
            records.push(serde_json::from_str::<Record>(line).unwrap());
        }
    }
    assert_eq!(records.len(), 605);
    // One chain per auditor, in order through the rotated files.
    for (i, pair) in records.windows(2).enumerate() {
        let expected = if i + 1 == 600 { None } else { pair[0].hash };
        assert_eq!(pair[1].prev_hash, expected, "record {}", i + 1);
    }
    assert_eq!(records[599].metadata["name"], "0:599");
}

#[test]
fn json_lines_rotate_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let sink = JsonLines::open(&path)
        .unwrap()
        .rotate_every(Duration::from_millis(30));
    let auditor = builder(&dir.path().join("spool"))
        .sink(sink)
        .build()
        .unwrap();
    let d: Arc<dyn audit::dispatch::Dispatch> = Arc::new(auditor.clone());
    with_dispatch(d, || {
        add_widget("a");
        audit::flush();
        std::thread::sleep(Duration::from_millis(50));
        add_widget("b");
        audit::flush();
    });
    auditor.shutdown();
    assert!(std::fs::read_to_string(&path).unwrap().contains("\"b\""));
    let rotated: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("t.jsonl."))
        .collect();
    assert_eq!(rotated.len(), 1);
}

#[test]
fn block_loses_nothing_with_8_threads_and_a_slow_sink() {
    let dir = tempfile::tempdir().unwrap();
    let out = Collected::default();
    let mut slow = TestSink::new("slow", &out);
    slow.delay = Duration::from_micros(200);
    let auditor = builder(dir.path())
        .queue_capacity(1_000)
        .batch_size(400)
        .sink(slow)
        .build()
        .unwrap();
    emit_from_threads(&auditor, 8, 100_000);
    auditor.shutdown();
    assert_exactly_once_in_order(&out.names(), 8, 100_000);
    assert_eq!(auditor.metrics().dropped, 0);
}

#[test]
fn drop_newest_accounts_for_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let out = Collected::default();
    let mut slow = TestSink::new("slow", &out);
    slow.delay = Duration::from_millis(2);
    let auditor = builder(dir.path())
        .queue_capacity(100)
        .overflow(Overflow::DropNewest)
        .sink(slow)
        .build()
        .unwrap();
    emit_from_threads(&auditor, 8, 100_000);
    auditor.shutdown();
    let m = auditor.metrics();
    assert!(m.dropped > 0, "the queue overflowed");
    assert_eq!(
        out.len() as u64 + m.dropped,
        800_000,
        "delivered + dropped = emitted"
    );
    assert_eq!(m.accepted, out.len() as u64);
}

#[test]
fn spill_keeps_overflow_on_disk_and_delivers_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Collected::default();
    let mut slow = TestSink::new("slow", &out);
    slow.delay = Duration::from_millis(1);
    let auditor = builder(dir.path())
        .queue_capacity(10)
        .overflow(Overflow::Spill)
        .sink(slow)
        .build()
        .unwrap();
    emit_from_threads(&auditor, 4, 2_000);
    auditor.shutdown();
    let m = auditor.metrics();
    assert!(m.spilled > 0);
    assert_eq!(out.len(), 8_000, "queued and spilled events all arrive");
    let mut names = out.names();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 8_000, "no duplicates");
}

#[test]
fn a_sync_event_fails_the_call_when_its_primary_sink_cannot_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stored) = (Collected::default(), Collected::default());
    let down = TestSink::new("primary", &stored);
    let down_flag = down.down.clone();
    let auditor = builder(dir.path())
        .sink_with(down, SinkOptions::new().primary())
        .sink(TestSink::new("secondary", &ok))
        .build()
        .unwrap();
    with_dispatch(Arc::new(auditor.clone()), || {
        assert!(delete_dashboard("committed").is_ok());
        down_flag.store(true, Ordering::SeqCst);
        let err = delete_dashboard("not committed").unwrap_err();
        assert!(
            err.0
                .starts_with("audit: the audit event was not committed: sink `primary`"),
            "{}",
            err.0
        );
        // Async events are not held up by it.
        add_widget("async");
    });
    down_flag.store(false, Ordering::SeqCst);
    auditor.shutdown();
    assert_eq!(
        stored.names(),
        vec!["committed", "not committed", "async"],
        "spooled, then replayed"
    );
}

/// A sync event does not wait for the batch timer: with a timer of an hour and a
/// wait limit of 30 s, each call commits (it would time out if it waited).
#[test]
fn a_sync_event_is_sent_at_once_not_at_the_batch_timer() {
    let dir = tempfile::tempdir().unwrap();
    let stored = Collected::default();
    let auditor = builder(dir.path())
        .max_wait(Duration::from_secs(3600))
        .sync_timeout(Duration::from_secs(30))
        .sink_with(
            TestSink::new("primary", &stored),
            SinkOptions::new().primary(),
        )
        .build()
        .unwrap();
    with_dispatch(Arc::new(auditor.clone()), || {
        for i in 0..3 {
            delete_dashboard(&format!("sync {i}")).expect("committed without the timer");
        }
    });
    assert_eq!(stored.names(), ["sync 0", "sync 1", "sync 2"]);
    assert!(auditor.shutdown().is_clean());
}

#[test]
fn records_are_chained() {
    let dir = tempfile::tempdir().unwrap();
    let out = Collected::default();
    let auditor = builder(dir.path())
        .sink(TestSink::new("s", &out))
        .build()
        .unwrap();
    emit_from_threads(&auditor, 1, 300);
    auditor.shutdown();
    let records: Vec<Record> = out
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(_, r)| r.clone())
        .collect();
    assert_eq!(records[0].prev_hash, None);
    for w in records.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
    }
    for r in &records {
        assert_eq!(
            r.hash.as_deref(),
            Some(audit::integrity::hash_of(r).as_str())
        );
    }
}

#[test]
fn emitting_after_shutdown_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let auditor = builder(dir.path()).build().unwrap();
    auditor.shutdown();
    let seen = Arc::new(AtomicUsize::new(0));
    with_dispatch(Arc::new(auditor.clone()), || {
        add_widget("late");
        seen.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert!(!auditor.flush());
}
