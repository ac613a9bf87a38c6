//! The delivery pipeline: events leave the caller's thread through a bounded queue;
//! one worker batches them, builds records (description, redaction, hash chain) and
//! hands each batch to one thread per sink, which filters, names, writes with
//! retries, and spools what it cannot write until the sink is healthy again.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use audit_runtime::{Auditor, sinks::{JsonLines, SinkOptions}};
//! let auditor = Auditor::builder()
//!     .sink(JsonLines::open(dir.path().join("audit.jsonl")).unwrap())
//!     .spool_dir(dir.path().join("spool"))
//!     .build()
//!     .unwrap();
//! // `.install()` instead makes it the process-wide logger and returns a guard that
//! // flushes on drop; `audit_runtime::dispatch::with_dispatch` scopes it to a thread.
//! assert!(auditor.flush());
//! auditor.shutdown();
//! ```

mod backpressure;
mod builder;
mod chainer;
mod held;
mod metrics;
mod sink_thread;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError, bounded};

use crate::dispatch::{DeliveryError, Dispatch};
use crate::event::Event;
use crate::record::Record;
use crate::sinks::{Sink, SinkOptions};
use crate::spool::{Spool, SpoolEntry};
use crate::{Durability, EventSpec};

pub use metrics::{Metrics, SinkMetrics};

/// What the caller does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Wait for room (the default): nothing is lost, the caller slows down.
    #[default]
    Block,
    /// Drop the new event, count it, and warn at most once per 10 seconds.
    DropNewest,
    /// Write the event to the overflow spool (on the caller's thread), from which the
    /// worker takes it when it has room.
    Spill,
}

/// Retries of a failing sink before its batches go to the spool.
///
/// ```
/// use std::time::Duration;
/// let r = audit_runtime::Retry { attempts: 5, initial: Duration::from_millis(20), ..Default::default() };
/// # let _ = r;
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    /// Tries per batch, the first included.
    pub attempts: u32,
    /// Wait after the first failure.
    pub initial: Duration,
    /// Longest wait.
    pub max: Duration,
    /// Growth of the wait per failure.
    pub multiplier: f64,
    /// Randomize each wait between half and all of it.
    pub jitter: bool,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 4,
            initial: Duration::from_millis(50),
            max: Duration::from_secs(5),
            multiplier: 2.0,
            jitter: true,
        }
    }
}

/// Why a pipeline could not be built or installed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// A spool directory could not be opened (or is in use by another process).
    Spool(std::io::Error),
    /// Two sinks have the same name (names key metrics and spool directories).
    DuplicateSink(String),
    /// A process-wide logger is already installed.
    AlreadyInstalled,
    /// A worker thread could not be started.
    Thread(std::io::Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Spool(e) => write!(f, "cannot open the audit spool: {e}"),
            BuildError::DuplicateSink(n) => write!(
                f,
                "two audit sinks are named `{n}`: give one another name with SinkOptions::name"
            ),
            BuildError::AlreadyInstalled => {
                f.write_str("an audit logger is already installed in this process")
            }
            BuildError::Thread(e) => write!(f, "cannot start an audit thread: {e}"),
        }
    }
}

impl std::error::Error for BuildError {}

// Events are the traffic: boxing them would cost the allocation per event that their
// inline fields avoid.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Msg {
    Event(Event, Option<Sender<Result<(), DeliveryError>>>),
    Flush(Sender<()>),
    Shutdown,
}

/// Written batches waiting to be freed on the worker. A record's entry and JSON are
/// allocated on the worker thread; freed on a sink thread, they go back to the
/// worker's malloc arena under its lock, which the worker needs for the next record
/// (with glibc, a futex wake for nearly every event: 0.64x `tracing` end to end,
/// BENCHMARKS.md). A sink thread keeps its own handle on each item until after its
/// write, then sends the batch to the worker, whose drop is the last: the memory is
/// freed where it was allocated (0.85–0.87x). The queue only holds what was in
/// flight; when it is full, or the worker gone, a sink frees its batch itself.
const WRITTEN_QUEUE: usize = 4096;

pub(crate) struct Config {
    pub batch_size: usize,
    pub max_wait: Duration,
    pub retry: Retry,
    pub sync_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub stall_timeout: Duration,
    /// Set once [`Auditor::shutdown`] has flushed what it could: from then on, records
    /// that neither a sink nor its spool takes (a full disk) are reported lost instead
    /// of waited for.
    pub closing: AtomicBool,
}

/// Configures and starts a pipeline: see [`Auditor::builder`].
pub struct AuditorBuilder {
    sinks: Vec<(Box<dyn Sink>, SinkOptions)>,
    capacity: usize,
    batch_size: usize,
    max_wait: Duration,
    overflow: Overflow,
    retry: Retry,
    spool_dir: Option<PathBuf>,
    shutdown_timeout: Duration,
    sync_timeout: Duration,
    block_timeout: Option<Duration>,
    stall_timeout: Duration,
}

impl AuditorBuilder {
    /// Adds a sink that takes every record under its event name.
    pub fn sink(self, sink: impl Sink) -> Self {
        self.sink_with(sink, SinkOptions::new())
    }

    /// Adds a sink with a filter, an alias set, a name or the primary mark.
    pub fn sink_with(mut self, sink: impl Sink, options: SinkOptions) -> Self {
        self.sinks.push((Box::new(sink), options));
        self
    }

    /// Events the queue holds (default 10 000).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        self
    }

    /// Most records per batch (default 400).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Longest wait to fill a batch (default 200 ms).
    pub fn max_wait(mut self, d: Duration) -> Self {
        self.max_wait = d;
        self
    }

    /// What callers do when the queue is full (default [`Overflow::Block`]).
    pub fn overflow(mut self, o: Overflow) -> Self {
        self.overflow = o;
        self
    }

    /// Retries before spooling (default 4 tries, 50 ms doubling to 5 s, with jitter).
    pub fn retry(mut self, r: Retry) -> Self {
        self.retry = r;
        self
    }

    /// Where spools live: one directory per sink, and `_overflow` for
    /// [`Overflow::Spill`]. The default is private to the user:
    /// `$XDG_STATE_HOME/audit/spool/<program>`, else
    /// `~/.local/state/audit/spool/<program>` (created with mode 0700; see
    /// [`crate::spool::default_dir`]).
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// How long flushing on shutdown may take (default 10 s).
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }

    /// With [`Overflow::Block`], how long a caller waits for room in a full queue
    /// before its event is dropped (counted, warned, `Err(DeliveryError::Dropped)`):
    /// a bound on how long a hung sink can hold the application up. Default: no
    /// limit (nothing is dropped; callers wait).
    pub fn block_timeout(mut self, d: Duration) -> Self {
        self.block_timeout = Some(d);
        self
    }

    /// How long a sink may take no batch, its queue full, before the pipeline stops
    /// waiting for it: its records then go to its spool (`<sink>/stalled`) and are
    /// replayed, in order, once it catches up, while the other sinks go on
    /// (default 5 s). If that spool cannot be written (a full disk), the pipeline
    /// waits for the sink after all: nothing is lost, every sink and then the
    /// callers wait.
    pub fn stall_timeout(mut self, d: Duration) -> Self {
        self.stall_timeout = d;
        self
    }

    /// How long a `sync` emission waits for its commit (default 5 s).
    pub fn sync_timeout(mut self, d: Duration) -> Self {
        self.sync_timeout = d;
        self
    }

    /// Starts the worker and sink threads (replaying what earlier runs left in the
    /// spools) and returns the pipeline, not installed anywhere.
    pub fn build(self) -> Result<Auditor, BuildError> {
        let spool_dir = match self.spool_dir {
            Some(dir) => dir,
            None => crate::spool::default_dir().map_err(BuildError::Spool)?,
        };
        let config = Arc::new(Config {
            batch_size: self.batch_size,
            max_wait: self.max_wait,
            retry: self.retry,
            sync_timeout: self.sync_timeout,
            shutdown_timeout: self.shutdown_timeout,
            stall_timeout: self.stall_timeout,
            closing: AtomicBool::new(false),
        });

        let mut names = Vec::new();
        let mut runners = Vec::new();
        // `sync` events wait for the primary sinks, or for every sink if none is.
        let all_primary = !self.sinks.iter().any(|(_, o)| o.primary);
        for (sink, mut options) in self.sinks {
            options.primary |= all_primary;
            let name = options
                .name
                .clone()
                .unwrap_or_else(|| sink.name().to_owned());
            if names.contains(&name) {
                return Err(BuildError::DuplicateSink(name));
            }
            names.push(name.clone());
            let spool = Spool::open(spool_dir.join(&name)).map_err(BuildError::Spool)?;
            let stalled =
                Spool::open(spool_dir.join(&name).join("stalled")).map_err(BuildError::Spool)?;
            runners.push(sink_thread::SinkRunner::new(
                name,
                sink,
                options,
                spool,
                stalled,
                Arc::clone(&config),
            ));
        }
        let spill = match self.overflow {
            Overflow::Spill => {
                Some(Spool::open(spool_dir.join("_overflow")).map_err(BuildError::Spool)?)
            }
            _ => None,
        };

        let (tx, rx) = bounded(self.capacity);
        let mut threads = Vec::new();
        let mut handles = Vec::new();
        let mut sink_metrics = Vec::new();
        let (written_tx, written_rx) = bounded(WRITTEN_QUEUE);
        for runner in runners {
            let (handle, thread) = runner
                .returning(written_tx.clone())
                .spawn()
                .map_err(BuildError::Thread)?;
            sink_metrics.push((handle.name.clone(), Arc::clone(&handle.counters)));
            handles.push(handle);
            threads.push(thread);
        }
        let spill_left = spill.as_ref().is_some_and(|s| !s.is_empty());
        let shared = Arc::new(Shared {
            tx,
            backpressure: backpressure::Backpressure::new(self.capacity),
            overflow: self.overflow,
            spill: Mutex::new(spill),
            spill_pending: AtomicBool::new(spill_left),
            accepted: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            spilled: AtomicU64::new(0),
            spill_failed: AtomicU64::new(0),
            unbuilt: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            last_drop_warning: Mutex::new(None),
            closed: AtomicBool::new(false),
            drained: AtomicBool::new(false),
            sinks: sink_metrics,
            threads: Mutex::new(threads),
            shutdown_timeout: self.shutdown_timeout,
            sync_timeout: self.sync_timeout,
            block_timeout: self.block_timeout,
            config: Arc::clone(&config),
        });
        let worker = builder::Worker::new(
            rx,
            handles,
            config,
            Arc::clone(&shared),
            spec_index(),
            written_rx,
        )
        .map_err(BuildError::Thread)?;
        let thread = std::thread::Builder::new()
            .name("audit-worker".into())
            .spawn(move || worker.run())
            .map_err(BuildError::Thread)?;
        shared
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(thread);
        Ok(Auditor { shared })
    }

    /// Builds the pipeline and makes it the process-wide logger. Keep the guard
    /// alive: dropping it flushes everything (within the shutdown timeout) and
    /// reports what could not be delivered.
    pub fn install(self) -> Result<AuditorGuard, BuildError> {
        let auditor = self.build()?;
        crate::dispatch::set_global_arc(Arc::new(auditor.clone())).map_err(|_| {
            auditor.shutdown();
            BuildError::AlreadyInstalled
        })?;
        Ok(AuditorGuard { auditor })
    }
}

/// Every event spec linked into the binary, by event name (for sink aliases).
fn spec_index() -> HashMap<&'static str, &'static EventSpec> {
    crate::registry::sites()
        .into_iter()
        .map(|s| (s.spec.name, s.spec))
        .collect()
}

pub(crate) struct Shared {
    pub tx: Sender<Msg>,
    /// Where callers wait while the queue is full.
    pub backpressure: backpressure::Backpressure,
    overflow: Overflow,
    pub spill: Mutex<Option<Spool>>,
    pub spill_pending: AtomicBool,
    accepted: AtomicU64,
    dropped: AtomicU64,
    spilled: AtomicU64,
    spill_failed: AtomicU64,
    pub unbuilt: AtomicU64,
    /// Callers between their `closed` check and the end of their send: shutdown
    /// waits for them, so every accepted event is queued before the shutdown.
    in_flight: AtomicU64,
    last_drop_warning: Mutex<Option<Instant>>,
    closed: AtomicBool,
    /// Whether the first shutdown delivered everything (what later calls report).
    drained: AtomicBool,
    sinks: Vec<(String, Arc<metrics::Counters>)>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    shutdown_timeout: Duration,
    sync_timeout: Duration,
    block_timeout: Option<Duration>,
    /// The threads' settings; `closing` is set from here.
    config: Arc<Config>,
}

/// A running pipeline. Cheap to clone; implements [`Dispatch`].
#[derive(Clone)]
pub struct Auditor {
    shared: Arc<Shared>,
}

/// What one run of a pipeline delivered, per sink: [`Auditor::shutdown`]'s answer.
/// Every count is of this run (this `Auditor`); records an earlier run left in a
/// spool are counted apart, as `recovered`.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use audit_runtime::{Auditor, sinks::JsonLines};
/// let auditor = Auditor::builder()
///     .sink(JsonLines::open(dir.path().join("audit.jsonl")).unwrap())
///     .spool_dir(dir.path().join("spool"))
///     .build()
///     .unwrap();
/// let report = auditor.shutdown();
/// assert!(report.is_clean(), "{report}");
/// assert_eq!(report.sinks[0].name, "jsonl-audit.jsonl");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Whether everything queued was handed to the sinks in time.
    pub flushed: bool,
    /// Events accepted.
    pub accepted: u64,
    /// Events dropped by [`Overflow::DropNewest`].
    pub dropped: u64,
    /// Events the overflow spool could not keep (refused to their callers).
    pub spill_failed: u64,
    /// Records delivered as failure records because building them panicked.
    pub unbuilt: u64,
    /// Per sink.
    pub sinks: Vec<SinkMetrics>,
}

impl ShutdownReport {
    /// Whether every event of the run reached every sink that takes it: drained in
    /// time, none dropped, none still in a spool, none dead-lettered, lost or
    /// panicked on.
    pub fn is_clean(&self) -> bool {
        self.flushed
            && self.dropped == 0
            && self.spill_failed == 0
            && self.unbuilt == 0
            && self.sinks.iter().all(SinkMetrics::is_clean)
    }

    /// The names of the sinks whose spool still holds records of this run.
    pub fn spooled(&self) -> Vec<&str> {
        self.sinks
            .iter()
            .filter(|s| s.undelivered() > 0)
            .map(|s| s.name.as_str())
            .collect()
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return write!(
                f,
                "audit: every event was delivered ({} accepted)",
                self.accepted
            );
        }
        write!(
            f,
            "audit: shutdown incomplete ({} accepted):",
            self.accepted
        )?;
        if !self.flushed {
            f.write_str(" the queue was not drained within the shutdown timeout;")?;
        }
        for (n, what) in [
            (self.dropped, "dropped when the queue was full"),
            (self.spill_failed, "refused when the overflow spool failed"),
            (
                self.unbuilt,
                "delivered without metadata (building them panicked)",
            ),
        ] {
            if n > 0 {
                write!(f, " {n} events {what};")?;
            }
        }
        for s in self.sinks.iter().filter(|s| !s.is_clean()) {
            write!(
                f,
                " sink `{}`: {} delivered, {} still in its spool (replayed at the next start), {} held in memory, {} dead-lettered, {} lost, {} panics;",
                s.name,
                s.delivered,
                s.undelivered(),
                s.held,
                s.dead_lettered,
                s.lost,
                s.panicked
            )?;
        }
        Ok(())
    }
}

impl Auditor {
    /// Starts configuring a pipeline.
    pub fn builder() -> AuditorBuilder {
        AuditorBuilder {
            sinks: Vec::new(),
            capacity: 10_000,
            batch_size: 400,
            max_wait: Duration::from_millis(200),
            overflow: Overflow::Block,
            retry: Retry::default(),
            spool_dir: None,
            shutdown_timeout: Duration::from_secs(10),
            sync_timeout: Duration::from_secs(5),
            block_timeout: None,
            stall_timeout: Duration::from_secs(5),
        }
    }

    /// Delivers everything queued so far to every sink and flushes them; `false` if
    /// that did not finish within the shutdown timeout.
    pub fn flush(&self) -> bool {
        Dispatch::flush(self)
    }

    /// The counters now.
    pub fn metrics(&self) -> Metrics {
        let s = &self.shared;
        Metrics {
            queue_depth: s.tx.len(),
            accepted: s.accepted.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            spilled: s.spilled.load(Ordering::Relaxed),
            spill_failed: s.spill_failed.load(Ordering::Relaxed),
            unbuilt: s.unbuilt.load(Ordering::Relaxed),
            sinks: s
                .sinks
                .iter()
                .map(|(n, c)| SinkMetrics::read(n, c))
                .collect(),
        }
    }

    /// Delivers everything queued, flushes every sink and stops the threads (waiting
    /// at most the shutdown timeout). Later emissions fail with `Closed`.
    pub fn shutdown(&self) -> ShutdownReport {
        if !self.shared.closed.load(Ordering::SeqCst) {
            self.shared.drained.store(self.flush(), Ordering::SeqCst);
        }
        if !self.shared.closed.swap(true, Ordering::SeqCst) {
            // Records held for want of disk are given up from here, so that the
            // threads can stop (each loss is counted and reported).
            self.shared.config.closing.store(true, Ordering::SeqCst);
            // Callers that saw the pipeline open finish their send first, so the
            // shutdown message is behind every accepted event.
            let deadline = Instant::now() + self.shared.shutdown_timeout;
            while self.shared.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = self
                .shared
                .backpressure
                .send(&self.shared.tx, Msg::Shutdown, Some(deadline));
            let threads = std::mem::take(
                &mut *self
                    .shared
                    .threads
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
            );
            let deadline = Instant::now() + self.shared.shutdown_timeout;
            for t in threads {
                while !t.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(2));
                }
                if t.is_finished() {
                    let _ = t.join();
                }
            }
        }
        let m = self.metrics();
        ShutdownReport {
            flushed: self.shared.drained.load(Ordering::SeqCst),
            accepted: m.accepted,
            dropped: m.dropped,
            spill_failed: m.spill_failed,
            unbuilt: m.unbuilt,
            sinks: m.sinks,
        }
    }

    /// The error of a send that did not get into the queue.
    fn refused<T>(&self, e: crossbeam_channel::SendTimeoutError<T>) -> DeliveryError {
        match e {
            crossbeam_channel::SendTimeoutError::Disconnected(_) => DeliveryError::Closed,
            crossbeam_channel::SendTimeoutError::Timeout(_) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                self.warn_dropped();
                DeliveryError::Dropped
            }
        }
    }

    fn warn_dropped(&self) {
        let mut last = self
            .shared
            .last_drop_warning
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Instant::now());
            eprintln!(
                "audit: queue full, events are being dropped ({} so far); raise queue_capacity or use Overflow::Block",
                self.shared.dropped.load(Ordering::Relaxed)
            );
        }
    }

    fn spill(&self, event: Event) -> Result<(), DeliveryError> {
        let name = event.spec().name;
        let entry = SpoolEntry::new(name, Record::from_event_owned(event).to_json());
        let mut spill = self.shared.spill.lock().unwrap_or_else(|p| p.into_inner());
        let spool = spill.as_mut().expect("Spill has an overflow spool");
        spool.append(std::slice::from_ref(&entry)).map_err(|e| {
            self.shared.spill_failed.fetch_add(1, Ordering::Relaxed);
            DeliveryError::NotCommitted(format!("the overflow spool failed: {e}"))
        })?;
        self.shared.spilled.fetch_add(1, Ordering::Relaxed);
        self.shared.spill_pending.store(true, Ordering::Release);
        Ok(())
    }
}

impl Dispatch for Auditor {
    fn dispatch(&self, event: Event) -> Result<(), DeliveryError> {
        let s = &self.shared;
        s.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = self.send(event);
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// A `sync` event is queued with its ack; the wait is the caller's, later.
    fn dispatch_deferred(&self, event: Event) -> crate::dispatch::Deferred {
        use crate::dispatch::Deferred;
        if event.spec().durability != Durability::Sync {
            return Deferred::done(self.dispatch(event));
        }
        let s = &self.shared;
        s.in_flight.fetch_add(1, Ordering::SeqCst);
        let queued = self.queue_sync(event);
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
        match queued {
            Ok(done) => Deferred::waiting(done, Instant::now() + self.sync_wait()),
            Err(e) => Deferred::done(Err(e)),
        }
    }

    /// Waits at most the shutdown timeout, in all: a hung sink makes it `false`, not
    /// a hang.
    fn flush(&self) -> bool {
        let (ack, done) = bounded(1);
        let deadline = Instant::now() + self.shared.shutdown_timeout;
        if self.shared.closed.load(Ordering::Relaxed)
            || self
                .shared
                .backpressure
                .send(&self.shared.tx, Msg::Flush(ack), Some(deadline))
                .is_err()
        {
            return false;
        }
        done.recv_deadline(deadline).is_ok()
    }
}

impl Auditor {
    /// Queues a `sync` event with its ack: the receiver its commit is answered on.
    fn queue_sync(
        &self,
        event: Event,
    ) -> Result<crossbeam_channel::Receiver<Result<(), DeliveryError>>, DeliveryError> {
        let s = &self.shared;
        if s.closed.load(Ordering::SeqCst) {
            return Err(DeliveryError::Closed);
        }
        let deadline = s.block_timeout.map(|d| Instant::now() + d);
        let (ack, done) = bounded(1);
        s.backpressure
            .send(&s.tx, Msg::Event(event, Some(ack)), deadline)
            .map_err(|e| self.refused(e))?;
        s.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(done)
    }

    /// How long a sync caller waits for its answer: the acker answers at the sync
    /// timeout, naming the sink that did not commit; this limit is only a safety
    /// net behind it.
    fn sync_wait(&self) -> Duration {
        self.shared.sync_timeout + Duration::from_millis(250)
    }

    /// Queues `event` (or spills, drops or waits, by the overflow policy); for a
    /// `sync` event, waits for its commit.
    fn send(&self, event: Event) -> Result<(), DeliveryError> {
        let s = &self.shared;
        if s.closed.load(Ordering::SeqCst) {
            return Err(DeliveryError::Closed);
        }
        let deadline = s.block_timeout.map(|d| Instant::now() + d);
        if event.spec().durability == Durability::Sync {
            return self
                .queue_sync(event)?
                .recv_timeout(self.sync_wait())
                .unwrap_or(Err(DeliveryError::Timeout));
        }
        let sent = match s.overflow {
            Overflow::Block => s
                .backpressure
                .send(&s.tx, Msg::Event(event, None), deadline)
                .map_err(|e| self.refused(e)),
            Overflow::DropNewest | Overflow::Spill => {
                match s.tx.try_send(Msg::Event(event, None)) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Disconnected(_)) => Err(DeliveryError::Closed),
                    Err(TrySendError::Full(Msg::Event(event, _)))
                        if s.overflow == Overflow::Spill =>
                    {
                        return self.spill(event);
                    }
                    Err(TrySendError::Full(_)) => {
                        s.dropped.fetch_add(1, Ordering::Relaxed);
                        self.warn_dropped();
                        return Err(DeliveryError::Dropped);
                    }
                }
            }
        };
        if sent.is_ok() {
            s.accepted.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }
}

/// Keeps the installed pipeline running; dropping it flushes everything and prints
/// what could not be delivered.
#[must_use = "dropping the guard shuts the audit pipeline down"]
pub struct AuditorGuard {
    auditor: Auditor,
}

impl AuditorGuard {
    /// The installed pipeline.
    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }
}

impl Drop for AuditorGuard {
    fn drop(&mut self) {
        let report = self.auditor.shutdown();
        if !report.is_clean() {
            eprintln!("{report}");
        }
    }
}
