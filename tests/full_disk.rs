//! A full disk loses nothing: when a sink is down (or hung) and its spool cannot be
//! written, the pipeline holds the records in memory and waits, and the wait reaches
//! the callers through the queue, instead of dropping what it accepted. Only a
//! shutdown gives held records up, each counted lost.
//!
//! The spool is a real full filesystem (a small tmpfs, filled up); the sink is a real
//! JSON Lines file behind a switch that takes it down or hangs it. Mounting needs root
//! (CI runs as root).

mod tmpfs;
use tmpfs::Tmpfs;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audit::dispatch::with_dispatch;
use audit::pipeline::{AuditorBuilder, Retry, SinkMetrics};
use audit::sinks::{Batch, JsonLines, Listener, Sink, SinkError};
use audit::{Auditor, Record, audited};

#[audited(event = "widget_create", meta(name = name))]
fn add_widget(name: &str) {}

/// A JSON Lines file that can be taken down (every call fails, retryably) or hung
/// (a write waits until the hang ends), and that refuses `poison-` records for good.
struct Switched {
    inner: JsonLines,
    down: Arc<AtomicBool>,
    hung: Arc<AtomicBool>,
}

/// The test's hands on a [`Switched`] sink.
#[derive(Clone)]
struct Switch {
    down: Arc<AtomicBool>,
    hung: Arc<AtomicBool>,
    path: PathBuf,
}

impl Switch {
    fn sink(dir: &Path) -> (Switched, Switch) {
        let path = dir.join("audit.jsonl");
        let switch = Switch {
            down: Arc::default(),
            hung: Arc::default(),
            path: path.clone(),
        };
        let sink = Switched {
            inner: JsonLines::open(&path).unwrap(),
            down: Arc::clone(&switch.down),
            hung: Arc::clone(&switch.hung),
        };
        (sink, switch)
    }

    /// The `name` metadata of the file's records, in file order.
    fn names(&self) -> Vec<String> {
        names_in(&self.path)
    }
}

impl Sink for Switched {
    fn name(&self) -> &str {
        "file"
    }
    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        while self.hung.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(SinkError::retryable("switched off"));
        }
        if batch.iter().any(|i| {
            i.record().metadata["name"]
                .as_str()
                .unwrap()
                .starts_with("poison-")
        }) {
            return Err(SinkError::permanent("poison refused"));
        }
        self.inner.write(batch)
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.flush()
    }
    fn health(&mut self) -> Result<(), SinkError> {
        match self.down.load(Ordering::SeqCst) {
            true => Err(SinkError::retryable("switched off")),
            false => self.inner.health(),
        }
    }
}

fn names_in(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let r: Record = serde_json::from_str(l).unwrap();
            r.metadata["name"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("w-{i}")).collect()
}

fn builder(spool: &Path) -> AuditorBuilder {
    Auditor::builder()
        .spool_dir(spool)
        .max_wait(Duration::from_millis(2))
        .batch_size(50)
        .retry(Retry {
            attempts: 2,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(2),
            multiplier: 2.0,
            jitter: false,
        })
}

/// A spool directory on a small filesystem, and a file that fills it up.
struct FullDisk {
    dir: PathBuf,
    _tmpfs: Tmpfs,
}

impl FullDisk {
    fn mount(at: &Path) -> FullDisk {
        FullDisk {
            dir: at.to_owned(),
            _tmpfs: Tmpfs::mount(at, "256k"),
        }
    }

    /// Writes a filler file until the filesystem refuses a byte more.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.dir.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&[0]).is_ok() {}
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.dir.join("filler")).unwrap();
    }
}

fn emit(auditor: &Auditor, names: &[String]) {
    with_dispatch(Arc::new(auditor.clone()), || {
        for n in names {
            add_widget(n);
        }
    });
}

fn sink_metrics(auditor: &Auditor) -> SinkMetrics {
    auditor.metrics().sinks[0].clone()
}

/// Waits (at most 20 s) until the sink's counters satisfy `done`.
fn wait_for(auditor: &Auditor, what: &str, done: impl Fn(&SinkMetrics) -> bool) -> SinkMetrics {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = sink_metrics(auditor);
        if done(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "{what}: {m:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_full_disk_while_the_sink_is_down_holds_the_records_until_the_sink_returns() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FullDisk::mount(&dir.path().join("spool"));
    let (sink, switch) = Switch::sink(dir.path());
    let auditor = builder(&disk.dir).sink(sink).build().unwrap();
    disk.fill();
    switch.down.store(true, Ordering::SeqCst);
    emit(&auditor, &names(500));

    let m = wait_for(&auditor, "every record held", |m| m.held == 500);
    assert_eq!((m.spooled, m.lost, m.delivered), (0, 0, 0), "{m:?}");

    switch.down.store(false, Ordering::SeqCst);
    assert!(auditor.flush());
    let report = auditor.shutdown();
    assert!(report.is_clean(), "{report}");
    let m = &report.sinks[0];
    assert_eq!((m.delivered, m.held, m.lost), (500, 0, 0), "{m:?}");
    assert_eq!(switch.names(), names(500), "each record once, in order");
}

#[test]
fn held_records_are_spooled_once_the_disk_has_room_and_replayed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FullDisk::mount(&dir.path().join("spool"));
    let (sink, switch) = Switch::sink(dir.path());
    let auditor = builder(&disk.dir).sink(sink).build().unwrap();
    disk.fill();
    switch.down.store(true, Ordering::SeqCst);
    emit(&auditor, &names(300));
    wait_for(&auditor, "every record held", |m| m.held == 300);

    disk.free();
    let m = wait_for(&auditor, "the held records spooled", |m| m.held == 0);
    assert_eq!((m.spooled, m.lost), (300, 0), "{m:?}");
    // Newer records queue behind them in the spool.
    emit(&auditor, &["after".to_owned()]);
    let report = auditor.shutdown();
    let m = &report.sinks[0];
    assert_eq!((m.undelivered(), m.lost), (301, 0), "{m:?}");
    assert!(switch.names().is_empty());

    // The next run, with the sink up, replays them in order.
    switch.down.store(false, Ordering::SeqCst);
    let sink = Switched {
        inner: JsonLines::open(&switch.path).unwrap(),
        down: Arc::clone(&switch.down),
        hung: Arc::clone(&switch.hung),
    };
    let auditor = builder(&disk.dir).sink(sink).build().unwrap();
    assert!(auditor.flush());
    let report = auditor.shutdown();
    assert_eq!(report.sinks[0].recovered, 301, "{report}");
    let mut expected = names(300);
    expected.push("after".to_owned());
    assert_eq!(switch.names(), expected);
}

#[test]
fn holding_all_it_may_the_sink_pushes_back_on_callers_instead_of_losing_records() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FullDisk::mount(&dir.path().join("spool"));
    let (sink, switch) = Switch::sink(dir.path());
    let auditor = builder(&disk.dir)
        .sink(sink)
        .queue_capacity(100)
        .block_timeout(Duration::from_millis(100))
        // Longer than any pause of the sink thread's: the chainer never diverts
        // (and so never waits for the sink) before the thread holds its limit.
        .stall_timeout(Duration::from_secs(5))
        .shutdown_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    disk.fill();
    switch.down.store(true, Ordering::SeqCst);
    // Far more than the sink thread holds: once it holds its limit, the queues fill
    // and callers give up. (A caller may also give up earlier, while the thread is
    // busy trying the spool; each refused event is left out of `accepted`.)
    let dispatch = Arc::new(auditor.clone());
    let mut accepted = Vec::new();
    let mut dropped_at_limit = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..60_000 {
        if Instant::now() > deadline {
            break;
        }
        let name = format!("w-{i}");
        let before = auditor.metrics();
        with_dispatch(dispatch.clone(), || add_widget(&name));
        if auditor.metrics().dropped == before.dropped {
            accepted.push(name);
        } else if before.sinks[0].held >= 10_000 {
            dropped_at_limit = true;
            break;
        }
    }
    assert!(
        dropped_at_limit,
        "a caller was refused once the sink held its limit: {:?}",
        auditor.metrics()
    );
    let m = auditor.metrics();
    assert_eq!(m.accepted, accepted.len() as u64);
    let sink = &m.sinks[0];
    assert_eq!(sink.lost, 0, "{sink:?}");

    switch.down.store(false, Ordering::SeqCst);
    assert!(auditor.flush());
    let report = auditor.shutdown();
    let sink = &report.sinks[0];
    assert_eq!((sink.held, sink.lost), (0, 0), "{sink:?}");
    assert_eq!(
        switch.names(),
        accepted,
        "every accepted record once, in order"
    );
}

#[test]
fn a_hung_sink_on_a_full_disk_makes_every_sink_wait_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FullDisk::mount(&dir.path().join("spool"));
    let (sink, switch) = Switch::sink(dir.path());
    let other = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&other);
    let auditor = builder(&disk.dir)
        .sink(sink)
        .sink(Listener::new("other", move |r: &Record, _: &str| {
            seen.lock()
                .unwrap()
                .push(r.metadata["name"].as_str().unwrap().to_owned());
        }))
        .batch_size(10)
        .stall_timeout(Duration::from_millis(100))
        .shutdown_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    disk.fill();
    switch.hung.store(true, Ordering::SeqCst);
    // More batches than the hung sink's queue holds: the chainer cannot divert them
    // to the full disk, so it waits.
    emit(&auditor, &names(400));
    std::thread::sleep(Duration::from_millis(600));
    let m = auditor.metrics();
    assert!(m.sinks.iter().all(|s| s.lost == 0), "{m:?}");
    assert!(
        other.lock().unwrap().len() < 400,
        "the other sink waits too (a full disk leaves no way around the hung one)"
    );

    switch.hung.store(false, Ordering::SeqCst);
    assert!(auditor.flush());
    let report = auditor.shutdown();
    assert!(report.is_clean(), "{report}");
    assert_eq!(switch.names(), names(400));
    assert_eq!(*other.lock().unwrap(), names(400));
}

#[test]
fn a_shutdown_gives_up_held_records_and_counts_each_as_lost() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FullDisk::mount(&dir.path().join("spool"));
    let (sink, switch) = Switch::sink(dir.path());
    let auditor = builder(&disk.dir)
        .sink(sink)
        .shutdown_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    disk.fill();
    switch.down.store(true, Ordering::SeqCst);
    emit(&auditor, &names(200));
    wait_for(&auditor, "every record held", |m| m.held == 200);

    let started = Instant::now();
    let report = auditor.shutdown();
    assert!(started.elapsed() < Duration::from_secs(10));
    let m = &report.sinks[0];
    assert_eq!((m.held, m.lost, m.delivered), (0, 200, 0), "{m:?}");
    assert!(!report.is_clean(), "{report}");
}

#[test]
fn a_shutdown_gives_up_a_hung_sinks_batch_the_full_disk_refused() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FullDisk::mount(&dir.path().join("spool"));
    let (sink, switch) = Switch::sink(dir.path());
    let auditor = builder(&disk.dir)
        .sink(sink)
        .batch_size(10)
        .stall_timeout(Duration::from_millis(100))
        .shutdown_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    disk.fill();
    switch.hung.store(true, Ordering::SeqCst);
    emit(&auditor, &names(400));
    std::thread::sleep(Duration::from_millis(400));

    let started = Instant::now();
    let report = auditor.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let m = &report.sinks[0];
    assert!(m.lost >= 1, "the chainer's waiting batch is counted: {m:?}");
    assert!(!report.flushed && !report.is_clean(), "{report}");
    // The sink thread ends once its write returns; then the disk can be unmounted.
    switch.hung.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(500));
}

#[test]
fn refused_records_are_held_until_the_dead_letter_spool_has_room() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FullDisk::mount(&dir.path().join("spool"));
    let (sink, switch) = Switch::sink(dir.path());
    let auditor = builder(&disk.dir).sink(sink).build().unwrap();
    disk.fill();
    let mut all = names(100);
    for i in [10, 50, 90] {
        all[i] = format!("poison-{i}");
    }
    emit(&auditor, &all);
    let m = wait_for(&auditor, "the refused records held", |m| m.held == 3);
    assert_eq!((m.delivered, m.dead_lettered, m.lost), (97, 0, 0), "{m:?}");

    disk.free();
    let m = wait_for(&auditor, "the refused records dead-lettered", |m| {
        m.held == 0
    });
    assert_eq!((m.dead_lettered, m.lost), (3, 0), "{m:?}");
    auditor.shutdown();
    let dead = audit::spool::Spool::open(disk.dir.join("file").join("dead")).unwrap();
    let kept: Vec<(String, Option<String>)> = dead
        .segments()
        .unwrap()
        .iter()
        .flat_map(|s| audit::spool::Spool::read_segment(s).unwrap().entries)
        .map(|e| {
            let r = e.record().unwrap();
            (r.metadata["name"].as_str().unwrap().to_owned(), e.reason)
        })
        .collect();
    let refused = |n: &str| (n.to_owned(), Some("poison refused".to_owned()));
    assert_eq!(
        kept,
        [
            refused("poison-10"),
            refused("poison-50"),
            refused("poison-90")
        ]
    );
    let delivered: Vec<String> = all
        .into_iter()
        .filter(|n| !n.starts_with("poison"))
        .collect();
    assert_eq!(switch.names(), delivered);
}
