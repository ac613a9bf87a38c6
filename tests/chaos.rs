//! The ledger chaos test: a seeded, reproducible schedule of faults over several runs
//! of a child process — sinks failing transiently and for good, panicking, hanging
//! and slow; the process SIGKILLed at random points and restarted; the spool on a
//! real full filesystem (a small tmpfs); spool bytes corrupted between runs — with
//! three producer threads (a hang outlasts the stall timeout, so the hung sink's
//! batches are spooled around it and replayed). Afterwards every event the ledger says was emitted is
//! accounted for, per sink: delivered, in the spool, dead-lettered with a reason,
//! reported lost (a dead letter the full disk refused; undelivered records are held
//! in memory until the disk or the sink takes them) or destroyed by the corruption
//! the test made.
//!
//! CI runs three seeds. The soak: `AUDIT_CHAOS_SEEDS=1-200 cargo test --release
//! --test chaos -- --nocapture` (result in BENCHMARKS.md). Needs root for the tmpfs
//! of the full-disk seeds (CI runs as root).

mod tmpfs;
use tmpfs::Tmpfs;

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audit::pipeline::Retry;
use audit::sinks::{Batch, JsonLines, Sink, SinkError, SinkOptions};
use audit::spool::Spool;
use audit::store::Sqlite;
use audit::store::Store;
use audit::{Auditor, DeliveryError, audited};

#[derive(Debug)]
struct Failed(String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<DeliveryError> for Failed {
    fn from(e: DeliveryError) -> Self {
        Failed(e.to_string())
    }
}

#[audited(event = "widget_create", meta(name = name))]
fn add_widget(name: &str) {}

#[audited(event = "dashboard_delete", meta(name = name), durability = "sync")]
fn delete_dashboard(name: &str) -> Result<(), Failed> {
    Ok(())
}

const CHILD: &str = "AUDIT_CHAOS_DIR";
const SEED: &str = "AUDIT_CHAOS_SEED";
const RUN: &str = "AUDIT_CHAOS_RUN";
const CLEAN_EVENTS: &str = "AUDIT_CHAOS_EVENTS";
const PRODUCERS: usize = 3;
const SINKS: [&str; 2] = ["store", "file"];

/// A sink with faults drawn from the seed: retryable down windows, slowness, one
/// hang; on the `file` sink, a panic on `poisonP` records and a permanent refusal of
/// `poisonR` ones. What the inner sink took is appended to `seen-<sink>.txt`.
struct Faulty {
    inner: Box<dyn Sink>,
    name: &'static str,
    rng: fastrand::Rng,
    poisons: bool,
    down_until: Option<Instant>,
    /// No new faults after this (the clean run's second half).
    calm_after: Option<Instant>,
    hung: bool,
    run: u64,
    seen: File,
}

impl Faulty {
    fn faulting(&mut self) -> bool {
        self.calm_after.is_none_or(|t| Instant::now() < t)
    }
    fn is_down(&mut self) -> bool {
        if self.down_until.is_some_and(|t| Instant::now() < t) {
            return true;
        }
        self.down_until = None;
        false
    }
}

impl Sink for Faulty {
    fn name(&self) -> &str {
        self.name
    }

    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        let names: Vec<String> = batch
            .iter()
            .map(|i| i.record().metadata["name"].as_str().unwrap().to_owned())
            .collect();
        if self.poisons {
            if names.iter().any(|n| n.contains("poisonP")) {
                panic!("chaos: the {} sink cannot take a poisonP record", self.name);
            }
            if names.iter().any(|n| n.contains("poisonR")) {
                return Err(SinkError::permanent("chaos: poisonR refused"));
            }
        }
        if self.is_down() {
            return Err(SinkError::retryable("chaos: down"));
        }
        if self.faulting() {
            match self.rng.u32(0..100) {
                0..=2 => {
                    let ms = self.rng.u64(20..200);
                    self.down_until = Some(Instant::now() + Duration::from_millis(ms));
                    return Err(SinkError::retryable("chaos: went down"));
                }
                3..=9 => std::thread::sleep(Duration::from_millis(self.rng.u64(1..8))),
                10 if !self.hung => {
                    self.hung = true;
                    std::thread::sleep(Duration::from_millis(700));
                }
                _ => {}
            }
        }
        self.inner.write(batch)?;
        let mut lines = String::new();
        for n in &names {
            lines.push_str(&format!("{} {n}\n", self.run));
        }
        self.seen.write_all(lines.as_bytes()).unwrap();
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.flush()
    }

    fn health(&mut self) -> Result<(), SinkError> {
        if self.is_down() {
            return Err(SinkError::retryable("chaos: down"));
        }
        self.inner.health()
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

/// The child: one run of the application.
#[test]
fn chaos_child() {
    let Some(dir) = std::env::var_os(CHILD).map(PathBuf::from) else {
        return;
    };
    let (seed, run) = (env_u64(SEED).unwrap(), env_u64(RUN).unwrap());
    // The poisonP panics are expected and counted by the pipeline; the default hook's
    // multi-write backtraces would interleave with the pipeline's one-line reports,
    // which the parent reads.
    std::panic::set_hook(Box::new(|_| {}));
    let clean = env_u64(CLEAN_EVENTS);
    let calm_after = clean.map(|_| Instant::now() + Duration::from_millis(600));
    let faulty = |name: &'static str, inner: Box<dyn Sink>, salt: u64| Faulty {
        inner,
        name,
        rng: fastrand::Rng::with_seed(seed * 7919 + run * 31 + salt),
        poisons: name == "file",
        down_until: None,
        calm_after,
        hung: false,
        run,
        seen: OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("seen-{name}.txt")))
            .unwrap(),
    };
    let auditor = Auditor::builder()
        .sink_with(
            faulty(
                "store",
                Box::new(Sqlite::open(dir.join("store.db")).unwrap()),
                1,
            ),
            SinkOptions::new().primary(),
        )
        .sink(faulty(
            "file",
            Box::new(JsonLines::open(dir.join("file.jsonl")).unwrap()),
            2,
        ))
        .spool_dir(dir.join("spool"))
        .queue_capacity(500)
        .batch_size(50)
        .max_wait(Duration::from_millis(2))
        .sync_timeout(Duration::from_secs(10))
        // Shorter than the 700 ms hang: a hung sink is spooled around.
        .stall_timeout(Duration::from_millis(300))
        .shutdown_timeout(Duration::from_secs(60))
        .retry(Retry {
            attempts: 2,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
            multiplier: 2.0,
            jitter: true,
        })
        .build()
        .unwrap();
    let ledger = Arc::new(Mutex::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("ledger-{run}.txt")))
            .unwrap(),
    ));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|t| {
            let (auditor, ledger) = (auditor.clone(), ledger.clone());
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(seed * 104_729 + run * 1_000 + t as u64);
                audit::dispatch::with_dispatch(Arc::new(auditor), || {
                    for i in 0..clean.unwrap_or(u64::MAX) {
                        let poison = match rng.u32(0..150) {
                            0 => "-poisonP",
                            1 => "-poisonR",
                            _ => "",
                        };
                        let name = format!("s{seed}-r{run}-t{t}-{i}{poison}");
                        let sync = i.is_multiple_of(9);
                        let line = |what: &str| {
                            let mut l = ledger.lock().unwrap();
                            writeln!(l, "{what} {} {name}", if sync { "sync" } else { "async" })
                                .unwrap();
                        };
                        line("try");
                        let result = if sync {
                            delete_dashboard(&name).map_err(|e| e.0)
                        } else {
                            add_widget(&name);
                            Ok(())
                        };
                        match result {
                            Ok(()) => line("ok"),
                            Err(e) => line(&format!("err[{}]", e.replace(' ', "_"))),
                        }
                    }
                })
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    if let Some(calm) = calm_after {
        // A clean run ends with healthy sinks: past the last fault (a down window
        // lasts at most 200 ms), so that shutdown replays what the spools hold.
        std::thread::sleep(
            calm.saturating_duration_since(Instant::now()) + Duration::from_millis(250),
        );
    }
    let report = auditor.shutdown();
    let sinks: Vec<_> = report
        .sinks
        .iter()
        .map(|s| {
            serde_json::json!({"name": s.name, "delivered": s.delivered, "recovered": s.recovered,
                "dead_lettered": s.dead_lettered, "lost": s.lost, "undelivered": s.undelivered(),
                "panicked": s.panicked, "corrupt": s.corrupt})
        })
        .collect();
    std::fs::write(
        dir.join(format!("report-{run}.json")),
        serde_json::json!({"flushed": report.flushed, "accepted": report.accepted, "sinks": sinks})
            .to_string(),
    )
    .unwrap();
}

fn run_child(
    dir: &Path,
    seed: u64,
    run: u64,
    clean_events: Option<u64>,
    kill_after: Option<Duration>,
) {
    let stderr = File::create(dir.join(format!("stderr-{run}.log"))).unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["chaos_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, dir)
        .env(SEED, seed.to_string())
        .env(RUN, run.to_string())
        .stdout(Stdio::null())
        .stderr(stderr);
    if let Some(n) = clean_events {
        cmd.env(CLEAN_EVENTS, n.to_string());
    }
    let mut child = cmd.spawn().unwrap();
    match kill_after {
        Some(after) => {
            // The clock starts once the child has committed something.
            let start = Instant::now();
            while !dir.join("seen-store.txt").exists() && start.elapsed() < Duration::from_secs(30)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(after);
            child.kill().unwrap();
            child.wait().unwrap();
        }
        None => {
            let status = child.wait().unwrap();
            let log = std::fs::read_to_string(dir.join(format!("stderr-{run}.log"))).unwrap();
            assert!(status.success(), "clean run failed: {log}");
        }
    }
}

/// Flips a byte inside one spooled record of `sink`; returns the record's name.
fn corrupt_one_spooled_record(dir: &Path, sink: &str, rng: &mut fastrand::Rng) -> Option<String> {
    let spool = dir.join("spool").join(sink);
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&spool)
        .ok()?
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    let seg = segs.get(rng.usize(..segs.len().max(1)))?.clone();
    let entries = Spool::read_segment(&seg).ok()?.entries;
    let victim = entries.get(rng.usize(..entries.len().max(1)))?;
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes
        .windows(victim.json.len())
        .position(|w| w == victim.json.as_bytes())?;
    bytes[at + victim.json.len() / 2] ^= 0x55;
    std::fs::write(&seg, bytes).unwrap();
    Some(
        victim.record().unwrap().metadata["name"]
            .as_str()?
            .to_owned(),
    )
}

/// Names in every segment of a spool directory.
fn spooled_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut segs: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs.iter()
        .flat_map(|s| Spool::read_segment(s).unwrap().entries)
        .map(|e| {
            e.record().unwrap().metadata["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Records each child reported lost on standard error: records given up at shutdown
/// while held ("sink `x`: N records ...; these records are lost") and dead letters
/// that could not be kept ("sink `x` refused N records ..., and they could not be
/// kept").
fn reported_lost(dir: &Path, sink: &str, runs: u64) -> u64 {
    let number_after = |line: &str, marker: &str| -> Option<u64> {
        line.split(marker).nth(1)?.split(' ').next()?.parse().ok()
    };
    let mut lost = 0;
    for run in 0..runs {
        let log =
            std::fs::read_to_string(dir.join(format!("stderr-{run}.log"))).unwrap_or_default();
        for line in log.lines() {
            if line.contains("these records are lost") {
                lost += number_after(line, &format!("sink `{sink}`: ")).unwrap_or(0);
            } else if line.contains("could not be kept") {
                lost += number_after(line, &format!("sink `{sink}` refused ")).unwrap_or(0);
            }
        }
    }
    lost
}

struct Ledger {
    tried: HashSet<String>,
    /// Name → (run, sync) of every emission that returned Ok.
    ok: HashMap<String, (u64, bool)>,
}

fn read_ledger(dir: &Path, runs: u64) -> Ledger {
    let mut l = Ledger {
        tried: HashSet::new(),
        ok: HashMap::new(),
    };
    for run in 0..runs {
        let text =
            std::fs::read_to_string(dir.join(format!("ledger-{run}.txt"))).unwrap_or_default();
        for line in text.lines() {
            let mut parts = line.split(' ');
            let (Some(what), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next())
            else {
                continue; // the last line of a killed run may be cut
            };
            match what {
                "try" => {
                    l.tried.insert(name.to_owned());
                }
                "ok" => {
                    l.ok.insert(name.to_owned(), (run, kind == "sync"));
                }
                _ => {}
            }
        }
    }
    l
}

fn chaos_seed(seed: u64) -> String {
    let mut tmp = tempfile::tempdir().unwrap();
    if std::env::var_os("AUDIT_CHAOS_KEEP").is_some() {
        tmp.disable_cleanup(true);
        eprintln!("seed {seed}: {}", tmp.path().display());
    }
    let dir = tmp.path();
    let mut rng = fastrand::Rng::with_seed(seed);
    let full_disk = seed.is_multiple_of(3);
    let _tmpfs = full_disk.then(|| Tmpfs::mount(&dir.join("spool"), "64k"));
    let killed_runs = 2;
    let mut destroyed: HashSet<String> = HashSet::new();
    for run in 0..killed_runs {
        run_child(
            dir,
            seed,
            run,
            None,
            Some(Duration::from_millis(rng.u64(150..700))),
        );
        if !seed.is_multiple_of(2)
            && let Some(name) = corrupt_one_spooled_record(dir, "file", &mut rng)
        {
            destroyed.insert(name);
        }
    }
    let clean = killed_runs;
    run_child(dir, seed, clean, Some(300), None);
    let runs = clean + 1;

    let ledger = read_ledger(dir, runs);
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("report-{clean}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(report["flushed"], true, "{report}");
    let mut summary = format!("seed {seed}: {} emitted", ledger.ok.len());
    for (k, sink) in SINKS.iter().enumerate() {
        let seen_text =
            std::fs::read_to_string(dir.join(format!("seen-{sink}.txt"))).unwrap_or_default();
        let mut delivered: HashMap<&str, u32> = HashMap::new();
        let mut delivered_in_clean_run = 0u64;
        for line in seen_text.lines() {
            let (run, name) = line.split_once(' ').unwrap();
            *delivered.entry(name).or_default() += 1;
            delivered_in_clean_run += u64::from(run == clean.to_string());
        }
        let spooled = spooled_names(&dir.join("spool").join(sink));
        let dead = spooled_names(&dir.join("spool").join(sink).join("dead"));
        let lost = reported_lost(dir, sink, runs);
        let r = &report["sinks"][k];
        assert_eq!(r["name"], *sink);

        // Nothing forged: whatever a sink holds was emitted.
        for name in delivered
            .keys()
            .copied()
            .chain(spooled.iter().map(String::as_str))
            .chain(dead.iter().map(String::as_str))
        {
            assert!(
                ledger.tried.contains(name),
                "seed {seed}: `{name}` in {sink} was never emitted"
            );
        }
        // Poison records never reach the file sink; they are dead-lettered.
        if *sink == "file" {
            for name in delivered.keys() {
                assert!(
                    !name.contains("poison"),
                    "seed {seed}: {name} delivered to {sink}"
                );
            }
        }
        // After the clean run the sinks are healthy: their spools are empty.
        assert!(
            spooled.is_empty() || lost > 0,
            "seed {seed}: {sink} spool still holds {}",
            spooled.len()
        );
        // Every event that must have survived is accounted for exactly once, or
        // reported lost, or was destroyed by the test's corruption.
        let mut missing = Vec::new();
        let mut duplicated = 0u64;
        for (name, (run, sync)) in &ledger.ok {
            let must = *run == clean || (*sync && *sink == "store");
            let count = delivered.get(name.as_str()).copied().unwrap_or(0)
                + u32::from(spooled.contains(name))
                + u32::from(dead.contains(name));
            duplicated += u64::from(count.saturating_sub(1));
            if must && count == 0 && !destroyed.contains(name) {
                missing.push(name.clone());
            }
        }
        assert!(
            missing.len() as u64 <= lost,
            "seed {seed}: {} events missing from {sink} ({} reported lost): {:?}",
            missing.len(),
            lost,
            &missing[..missing.len().min(5)]
        );
        // A kill between a replayed batch's write and its progress record may offer
        // that batch again once: at most one batch (50) per killed run, and none in
        // a store (de-duplicated by id).
        assert!(
            duplicated <= 50 * killed_runs,
            "seed {seed}: {duplicated} duplicates in {sink}"
        );
        // The clean run's report equals what the sink saw in that run.
        let reported = r["delivered"].as_u64().unwrap() + r["recovered"].as_u64().unwrap();
        assert_eq!(
            reported, delivered_in_clean_run,
            "seed {seed}: {sink} report {r} vs ledger"
        );
        if *sink == "file" {
            let dead_clean = r["dead_lettered"].as_u64().unwrap();
            assert!(dead.len() as u64 >= dead_clean, "seed {seed}: {r}");
        }
        summary += &format!(
            "; {sink}: {} delivered, {} dead, {} lost, {} destroyed, {duplicated} dup",
            delivered.len(),
            dead.len(),
            lost,
            destroyed.len()
        );
    }
    // The store's chain survived every kill.
    let v = Sqlite::open(dir.join("store.db"))
        .unwrap()
        .verify()
        .unwrap();
    assert!(v.is_intact(), "seed {seed}: {v:?}");
    summary
}

fn seeds() -> Vec<u64> {
    let spec = std::env::var("AUDIT_CHAOS_SEEDS").unwrap_or_else(|_| "1-3".into());
    spec.split(',')
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => {
                (a.trim().parse().unwrap()..=b.trim().parse().unwrap()).collect::<Vec<u64>>()
            }
            None => vec![part.trim().parse().unwrap()],
        })
        .collect()
}

#[test]
fn ledger_chaos() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    for seed in seeds() {
        let started = Instant::now();
        let summary = chaos_seed(seed);
        eprintln!("{summary} ({:.1} s)", started.elapsed().as_secs_f64());
    }
}
