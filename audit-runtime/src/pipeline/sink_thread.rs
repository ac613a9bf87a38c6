//! One thread per sink: filter and names come from the worker; here each batch is
//! written with retries, or spooled while the sink is down, and the spool is replayed
//! in order once the sink is healthy again.
//!
//! A sink is code the pipeline does not own: a panic in `write`, `flush` or `health`
//! is caught here, counted, and treated like a permanent error, so the sink keeps
//! serving later batches and no other sink notices. A permanent error (or a panic) on
//! a batch of several records is narrowed down by halving the batch, so that only the
//! records that cause it are dead-lettered, each with its reason.
//!
//! A spool that cannot be written (a full disk) loses nothing: the thread holds the
//! records in memory, in order ([`Held`]): those the sink did not take until the
//! sink or the spool takes them, those it refused until the dead-letter spool does.
//! It holds at most [`HOLD_LIMIT`] records and then stops taking batches, so the
//! wait reaches the chainer and, through the queues, the callers. Only a shutdown
//! gives held records up, each counted `lost` and reported.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use uuid::Uuid;

use super::Config;
use super::held::{Held, RETRY_AFTER, Tried};
use super::metrics::{Counters, add};
use crate::sinks::isolate::{self, Triage};
use crate::sinks::{Item, Sink, SinkError, SinkOptions};
use crate::spool::{Spool, SpoolEntry};

/// How often a degraded sink's health is checked while no batch arrives.
const HEALTH_INTERVAL: Duration = Duration::from_millis(250);
/// Batches queued to one sink thread before the worker waits.
pub(crate) const SINK_QUEUE: usize = 16;
/// Records a sink thread holds in memory (its spool could not be written while the
/// sink was down) before it stops taking batches.
pub(crate) const HOLD_LIMIT: usize = 10_000;

/// The records of a batch that were not delivered, and why (empty: all delivered).
pub(crate) type Undelivered = Arc<Vec<(Uuid, String)>>;

pub(crate) enum SinkMsg {
    Batch(Vec<Item>, Option<Sender<Undelivered>>),
    Flush(Sender<()>),
    Shutdown,
}

/// The worker's side of a sink thread.
pub(crate) struct SinkHandle {
    pub name: String,
    pub options: SinkOptions,
    pub primary: bool,
    pub tx: Sender<SinkMsg>,
    pub counters: Arc<Counters>,
    /// Where the chainer puts this sink's batches while the sink is stalled.
    pub stalled: Arc<Mutex<Diversion>>,
}

/// A sink's second spool (`<spool>/<sink>/stalled`), shared by its thread and the
/// chainer. When the sink's queue stays full (a hung peer) the chainer sets
/// `diverted` and appends the sink's new batches here instead of waiting, so the
/// other sinks go on. Everything here is newer than anything queued or in the main
/// spool: the sink thread replays the main spool, then this one, and clears the flag
/// under this lock once it is empty; new batches then take the queue again.
pub(crate) struct Diversion {
    pub spool: Spool,
    pub diverted: bool,
}

/// Locks a diversion (a panic elsewhere never makes the spool unusable).
pub(crate) fn lock(d: &Mutex<Diversion>) -> MutexGuard<'_, Diversion> {
    d.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) struct SinkRunner {
    name: String,
    sink: Box<dyn Sink>,
    options: SinkOptions,
    spool: Spool,
    stalled: Arc<Mutex<Diversion>>,
    dead: Option<Spool>,
    config: Arc<Config>,
    counters: Arc<Counters>,
    /// Records wait in the spool: new batches must queue behind them.
    degraded: bool,
    /// Records neither the sink nor the spool took (a full disk): newer than the
    /// spool's, older than the stalled spool's.
    held: Held<Item>,
    /// Records the sink refused for good that the dead-letter spool did not take,
    /// with their reasons.
    dead_held: Held<(Item, String)>,
    /// Where written batches go to be freed (see `WRITTEN_QUEUE` in the module
    /// above).
    written: Option<Sender<Vec<Item>>>,
}

impl SinkRunner {
    pub(crate) fn new(
        name: String,
        sink: Box<dyn Sink>,
        options: SinkOptions,
        spool: Spool,
        stalled: Spool,
        config: Arc<Config>,
    ) -> Self {
        // What an earlier run left in either spool is replayed before anything new.
        let diverted = !stalled.is_empty();
        let degraded = !spool.is_empty() || diverted;
        SinkRunner {
            name,
            sink,
            options,
            spool,
            stalled: Arc::new(Mutex::new(Diversion {
                spool: stalled,
                diverted,
            })),
            dead: None,
            config,
            counters: Arc::default(),
            degraded,
            held: Held::new(),
            dead_held: Held::new(),
            written: None,
        }
    }

    /// Hands written batches to `to` (the worker) instead of freeing them here.
    pub(crate) fn returning(mut self, to: Sender<Vec<Item>>) -> Self {
        self.written = Some(to);
        self
    }

    pub(crate) fn spawn(self) -> std::io::Result<(SinkHandle, JoinHandle<()>)> {
        let (tx, rx) = bounded(SINK_QUEUE);
        let handle = SinkHandle {
            name: self.name.clone(),
            primary: self.options.primary,
            options: self.options.clone(),
            tx,
            counters: Arc::clone(&self.counters),
            stalled: Arc::clone(&self.stalled),
        };
        let thread = std::thread::Builder::new()
            .name(format!("audit-sink-{}", self.name))
            .spawn(move || self.run(rx))?;
        Ok((handle, thread))
    }

    fn run(mut self, rx: Receiver<SinkMsg>) {
        if self.degraded {
            self.recover();
        }
        let mut next: Option<SinkMsg> = None;
        loop {
            // Holding all it may: no batch is taken until the sink or the disk takes
            // what is held, so the chainer and the callers wait instead.
            while self.held.len() + self.dead_held.len() >= HOLD_LIMIT && !self.closing() {
                std::thread::sleep(RETRY_AFTER);
                self.retry();
            }
            let msg = match next.take() {
                Some(m) => Ok(m),
                None => rx.recv_timeout(HEALTH_INTERVAL),
            };
            match msg {
                Ok(SinkMsg::Batch(mut items, reply)) => {
                    // Group commit: batches that queued up while the sink was busy go
                    // out in one write (one transaction for a store).
                    let mut replies = vec![reply];
                    while replies.len() < SINK_QUEUE {
                        match rx.try_recv() {
                            Ok(SinkMsg::Batch(more, reply)) => {
                                items.extend(more);
                                replies.push(reply);
                            }
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    // This thread's handles go first (in `deliver`), the worker's
                    // last (see `WRITTEN_QUEUE`); a full or closed queue frees here.
                    let kept = self.written.as_ref().map(|_| items.clone());
                    let undelivered = Arc::new(self.deliver(items));
                    if let (Some(to), Some(kept)) = (&self.written, kept) {
                        let _ = to.try_send(kept);
                    }
                    for reply in replies.into_iter().flatten() {
                        let _ = reply.send(Arc::clone(&undelivered));
                    }
                }
                Ok(SinkMsg::Flush(ack)) => {
                    self.retry();
                    self.flush_sink();
                    let _ = ack.send(());
                }
                Ok(SinkMsg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    self.retry();
                    self.flush_sink();
                    // One last try at each spool, however recent the last refusal;
                    // what they still refuse is given up.
                    let spooled = self.spool_held(true);
                    let dead_lettered = self.keep_dead_held(true);
                    if let Some(e) = spooled.err().or(dead_lettered.err()) {
                        self.lose_held(&e);
                    }
                    return;
                }
                Err(RecvTimeoutError::Timeout) => self.retry(),
            }
            // Diverted batches are newer than everything queued before them: they are
            // replayed once the queue is empty.
            if next.is_none() && rx.is_empty() && lock(&self.stalled).diverted {
                self.degraded = true;
                self.recover();
            }
        }
    }

    /// Whether the pipeline is shutting down (held records are then given up).
    fn closing(&self) -> bool {
        self.config.closing.load(Ordering::SeqCst)
    }

    /// Tries again to deliver what waits (the spool, held records, the stalled
    /// spool), and to spool what is held if the sink is still down.
    fn retry(&mut self) {
        if self.degraded {
            self.recover();
        }
        let _ = self.spool_held(false);
        let _ = self.keep_dead_held(false);
    }

    fn flush_sink(&mut self) {
        let sink = &mut self.sink;
        match crate::panic::catch(|| sink.flush()) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("audit: sink `{}` failed to flush: {e}", self.name),
            Err(panic) => {
                add(&self.counters.panicked, 1);
                eprintln!(
                    "audit: sink `{}` panicked while flushing: {panic}",
                    self.name
                );
            }
        }
    }

    /// Delivers a batch of this run; returns the records that were not delivered.
    fn deliver(&mut self, items: Vec<Item>) -> Vec<(Uuid, String)> {
        if self.degraded {
            self.recover();
        }
        if self.degraded {
            return self.spool_items(items, "the sink is down");
        }
        let mut triage = Triage::default();
        self.write_isolating(items, &mut triage);
        add(&self.counters.delivered, triage.delivered);
        let mut undelivered = self.dead_letter(triage.refused);
        if let Some((items, why)) = triage.down {
            eprintln!(
                "audit: sink `{}` failed after {} tries ({why}); spooling until it recovers",
                self.name, self.config.retry.attempts
            );
            self.degraded = true;
            undelivered.extend(self.spool_items(items, &why));
        }
        undelivered
    }

    /// Writes `items` with retries, narrowing a permanent error or a panic down to
    /// the records that cause it.
    fn write_isolating(&mut self, items: Vec<Item>, t: &mut Triage) {
        isolate::write_isolating(&mut |batch| self.write_with_retry(batch), items, t);
    }

    /// Keeps refused records in the dead-letter spool, with their reasons (held
    /// while it cannot be written). Returns the records' reasons.
    fn dead_letter(&mut self, refused: Vec<(Item, String)>) -> Vec<(Uuid, String)> {
        if refused.is_empty() {
            return Vec::new();
        }
        eprintln!(
            "audit: sink `{}` refused {} records for good (first: {}); dead-lettered in {}",
            self.name,
            refused.len(),
            refused[0].1,
            self.spool.dir().join("dead").display()
        );
        let answer = refused
            .iter()
            .map(|(item, why)| (item.record().id, why.clone()))
            .collect();
        self.dead_held.push(refused);
        let _ = self.keep_dead_held(false);
        answer
    }

    /// Spools `items` behind what is held; what the spool does not take is held
    /// (until the shutdown's last try). Returns the records' reasons.
    fn spool_items(&mut self, items: Vec<Item>, why: &str) -> Vec<(Uuid, String)> {
        let ids: Vec<Uuid> = items.iter().map(|i| i.record().id).collect();
        self.held.push(items);
        let reason = match self.spool_held(false) {
            Ok(()) => format!("{why}; spooled for replay"),
            Err(e) => format!(
                "{why}; and the spool failed ({e}): held in memory until the sink or the spool takes it"
            ),
        };
        ids.into_iter().map(|id| (id, reason.clone())).collect()
    }

    /// Appends the held records to the spool, in order, all or none (`now`: even if
    /// the last try was refused a moment ago). Returns the spool's error.
    fn spool_held(&mut self, now: bool) -> Result<(), String> {
        let spool = &mut self.spool;
        let tried = self.held.write(now, |items| {
            spool.append(&items.iter().map(entry_of).collect::<Vec<_>>())
        });
        self.settle(tried, "spooled", &self.counters.spooled)
    }

    /// Appends the held refused records to the dead-letter spool, with their
    /// reasons, in order, all or none. Returns the spool's error.
    fn keep_dead_held(&mut self, now: bool) -> Result<(), String> {
        let (dead, dir) = (&mut self.dead, self.spool.dir().join("dead"));
        let tried = self.dead_held.write(now, |refused| {
            let entries: Vec<SpoolEntry> = refused
                .iter()
                .map(|(item, why)| SpoolEntry {
                    reason: Some(why.clone()),
                    ..entry_of(item)
                })
                .collect();
            open_dead(dead, dir)?.append(&entries)
        });
        self.settle(tried, "dead-lettered", &self.counters.dead_lettered)
    }

    /// Counts and reports one try at writing held records (`done`: what they are
    /// once written).
    fn settle(&self, tried: Tried, done: &str, counter: &AtomicU64) -> Result<(), String> {
        self.count_held();
        match tried {
            Tried::Empty => Ok(()),
            Tried::Written {
                count,
                after_refusal,
            } => {
                add(counter, count);
                if after_refusal {
                    eprintln!(
                        "audit: sink `{}`: {count} records held in memory are {done} now",
                        self.name
                    );
                }
                Ok(())
            }
            Tried::Refused { error, first } => {
                if first {
                    eprintln!(
                        "audit: sink `{}`: {error}; holding them in memory until they can be {done}",
                        self.name
                    );
                }
                Err(error)
            }
        }
    }

    /// Gives up every record still held (the shutdown's last try failed with `e`):
    /// counted and reported lost.
    fn lose_held(&mut self, e: &str) {
        let n = self.held.give_up() + self.dead_held.give_up();
        self.count_held();
        if n == 0 {
            return;
        }
        add(&self.counters.lost, n);
        eprintln!(
            "audit: sink `{}`: {n} records held in memory at shutdown, their spool failing ({e}); these records are lost",
            self.name
        );
    }

    fn count_held(&self) {
        let n = self.held.len() + self.dead_held.len();
        self.counters.held.store(n as u64, Ordering::Relaxed);
    }

    /// Writes the held records (the spool before them is replayed). Returns whether
    /// none is left.
    fn deliver_held(&mut self) -> bool {
        if self.held.is_empty() {
            return true;
        }
        let items = self.held.take();
        let n = items.len();
        let mut t = Triage::default();
        self.write_isolating(items, &mut t);
        add(&self.counters.delivered, t.delivered);
        self.dead_letter(t.refused);
        if let Some((rest, why)) = t.down {
            eprintln!(
                "audit: sink `{}` failed while writing its held records: {why}",
                self.name
            );
            self.held.put_back(rest);
        } else {
            eprintln!(
                "audit: sink `{}`: {n} records held in memory are delivered",
                self.name
            );
        }
        self.count_held();
        self.held.is_empty()
    }

    /// One call of the sink's `write`, a panic turned into a permanent error.
    fn write_once(&mut self, items: &[Item]) -> Result<(), SinkError> {
        let sink = &mut self.sink;
        crate::panic::catch(|| sink.write(items)).unwrap_or_else(|panic| {
            add(&self.counters.panicked, 1);
            Err(SinkError::permanent(format!("the sink panicked: {panic}")))
        })
    }

    fn write_with_retry(&mut self, items: &[Item]) -> Result<(), SinkError> {
        let retry = self.config.retry;
        let mut delay = retry.initial;
        let mut attempt = 1;
        loop {
            match self.write_once(items) {
                Ok(()) => return Ok(()),
                Err(e) if !e.is_retryable() || attempt >= retry.attempts.max(1) => return Err(e),
                Err(_) => {
                    add(&self.counters.retried, 1);
                    let wait = if retry.jitter {
                        delay.mul_f64(0.5 + fastrand::f64() * 0.5)
                    } else {
                        delay
                    };
                    std::thread::sleep(wait);
                    delay = delay.mul_f64(retry.multiplier).min(retry.max);
                    attempt += 1;
                }
            }
        }
    }

    /// Replays the spool in order if the sink is healthy, then what the chainer
    /// diverted while the sink was stalled; stays degraded otherwise.
    fn recover(&mut self) {
        let sink = &mut self.sink;
        if !matches!(crate::panic::catch(|| sink.health()), Ok(Ok(()))) {
            return;
        }
        self.spool.seal();
        let segments = match self.spool.segments() {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "audit: cannot list spool {}: {e}",
                    self.spool.dir().display()
                );
                return;
            }
        };
        for seg in segments {
            if !self.replay_segment(&seg, false) {
                return;
            }
        }
        if !self.deliver_held() {
            return;
        }
        // The diverted batches, until none is left; the chainer may add more while
        // they replay, so the last check and the switch back happen under its lock.
        loop {
            let listed = {
                let mut d = lock(&self.stalled);
                d.spool.seal();
                match d.spool.segments() {
                    Ok(s) if s.is_empty() => {
                        d.diverted = false;
                        self.degraded = false;
                        return;
                    }
                    other => other,
                }
            };
            let segments = match listed {
                Ok(s) => s,
                Err(e) => {
                    eprintln!(
                        "audit: cannot list the stalled spool of `{}`: {e}",
                        self.name
                    );
                    return;
                }
            };
            for seg in segments {
                if !self.replay_segment(&seg, true) {
                    return;
                }
            }
        }
    }

    /// Replays one segment, resuming after the frames a previous attempt delivered
    /// (its progress file names the segment's id, so it cannot be applied to another
    /// segment). Returns whether the segment was wholly replayed and removed.
    fn replay_segment(&mut self, seg: &Path, stalled: bool) -> bool {
        let segment = match Spool::read_segment(seg) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("audit: cannot read spool segment {}: {e}", seg.display());
                return false;
            }
        };
        let earlier = if stalled {
            lock(&self.stalled).spool.is_earlier(seg)
        } else {
            self.spool.is_earlier(seg)
        };
        let mut done = Spool::progress(seg, segment.id);
        if done == 0 {
            for c in &segment.corrupt {
                add(&self.counters.corrupt, 1);
                eprintln!("audit: {c}; the whole frames around it are replayed");
            }
        }
        while done < segment.entries.len() {
            let end = (done + self.config.batch_size).min(segment.entries.len());
            let mut items = Vec::with_capacity(end - done);
            // The segment position of each item, to resume after what was handled.
            let mut positions = Vec::with_capacity(end - done);
            for (at, e) in segment.entries.iter().enumerate().take(end).skip(done) {
                match e.record() {
                    Ok(record) => {
                        items.push(Item::with_json(
                            record,
                            e.json.clone(),
                            Arc::from(e.name.as_str()),
                        ));
                        positions.push(at);
                    }
                    Err(why) => {
                        add(&self.counters.corrupt, 1);
                        self.keep_unreadable(e, &why.to_string());
                    }
                }
            }
            let mut t = Triage::default();
            self.write_isolating(items, &mut t);
            // What was delivered or refused is a prefix of the batch.
            let taken = t.handled();
            if earlier {
                add(&self.counters.recovered, t.delivered);
            } else {
                add(&self.counters.delivered, t.delivered);
                add(&self.counters.replayed, taken);
            }
            self.dead_letter(t.refused);
            done = positions.get(taken).copied().unwrap_or(end);
            if let Err(e) = Spool::set_progress(seg, segment.id, done) {
                eprintln!(
                    "audit: cannot record spool progress of {}: {e}",
                    seg.display()
                );
            }
            if let Some((_, why)) = &t.down {
                eprintln!(
                    "audit: sink `{}` failed while replaying its spool: {why}",
                    self.name
                );
                return false;
            }
        }
        if let Err(e) = Spool::remove_segment(seg) {
            eprintln!(
                "audit: cannot remove replayed segment {}: {e}",
                seg.display()
            );
            return false;
        }
        true
    }

    /// Appends to the dead-letter spool.
    fn keep_dead(&mut self, entries: &[SpoolEntry]) -> std::io::Result<()> {
        open_dead(&mut self.dead, self.spool.dir().join("dead"))?.append(entries)
    }

    /// A spooled frame whose record no longer reads (a bug or a foreign file): kept
    /// in the dead-letter spool with the reason, never silently dropped.
    fn keep_unreadable(&mut self, entry: &SpoolEntry, why: &str) {
        let kept = SpoolEntry {
            reason: Some(format!("unreadable spooled record: {why}")),
            ..entry.clone()
        };
        if let Err(e) = self.keep_dead(std::slice::from_ref(&kept)) {
            add(&self.counters.lost, 1);
            eprintln!("audit: an unreadable spooled record could not be kept: {e}");
        }
    }
}

/// Spools a batch the sink could not be given (its queue stayed full): what the
/// chainer does while the sink is stalled. All or none of `items` is spooled.
pub(crate) fn divert(
    handle: &SinkHandle,
    d: &mut Diversion,
    items: &[Item],
) -> std::io::Result<()> {
    let entries: Vec<SpoolEntry> = items.iter().map(entry_of).collect();
    d.spool.append(&entries)?;
    add(&handle.counters.spooled, items.len());
    Ok(())
}

/// The dead-letter spool, opened on first use.
fn open_dead(dead: &mut Option<Spool>, dir: PathBuf) -> std::io::Result<&mut Spool> {
    match dead {
        Some(dead) => Ok(dead),
        None => Ok(dead.insert(Spool::open(dir)?)),
    }
}

fn entry_of(item: &Item) -> SpoolEntry {
    SpoolEntry::new(item.name(), item.json())
}
