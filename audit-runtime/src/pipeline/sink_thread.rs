//! One thread per sink: filter and names come from the worker; here each batch is
//! written with retries, or spooled while the sink is down, and the spool is replayed
//! in order once the sink is healthy again.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use super::Config;
use super::metrics::{Counters, add};
use crate::sinks::{Item, Sink, SinkError, SinkOptions};
use crate::spool::{Spool, SpoolEntry};

/// How often a degraded sink's health is checked while no batch arrives.
const HEALTH_INTERVAL: Duration = Duration::from_millis(250);
/// Batches queued to one sink thread before the worker waits.
const SINK_QUEUE: usize = 16;

pub(crate) enum SinkMsg {
    Batch(Vec<Item>, Option<Sender<Result<(), String>>>),
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
}

pub(crate) struct SinkRunner {
    name: String,
    sink: Box<dyn Sink>,
    options: SinkOptions,
    spool: Spool,
    dead: Option<Spool>,
    config: Arc<Config>,
    counters: Arc<Counters>,
    /// Records wait in the spool: new batches must queue behind them.
    degraded: bool,
}

impl SinkRunner {
    pub(crate) fn new(
        name: String,
        sink: Box<dyn Sink>,
        options: SinkOptions,
        spool: Spool,
        config: Arc<Config>,
    ) -> Self {
        let degraded = !spool.is_empty();
        SinkRunner {
            name,
            sink,
            options,
            spool,
            dead: None,
            config,
            counters: Arc::default(),
            degraded,
        }
    }

    pub(crate) fn spawn(self) -> std::io::Result<(SinkHandle, JoinHandle<()>)> {
        let (tx, rx) = bounded(SINK_QUEUE);
        let handle = SinkHandle {
            name: self.name.clone(),
            primary: self.options.primary,
            options: self.options.clone(),
            tx,
            counters: Arc::clone(&self.counters),
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
                    let result = self.deliver(items);
                    for reply in replies.into_iter().flatten() {
                        let _ = reply.send(result.clone());
                    }
                }
                Ok(SinkMsg::Flush(ack)) => {
                    if self.degraded {
                        self.recover();
                    }
                    if let Err(e) = self.sink.flush() {
                        eprintln!("audit: sink `{}` failed to flush: {e}", self.name);
                    }
                    let _ = ack.send(());
                }
                Ok(SinkMsg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    if self.degraded {
                        self.recover();
                    }
                    let _ = self.sink.flush();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.degraded {
                        self.recover();
                    }
                }
            }
        }
    }

    fn deliver(&mut self, items: Vec<Item>) -> Result<(), String> {
        if self.degraded {
            self.recover();
        }
        if self.degraded {
            return self.spool_items(&items, "the sink is down");
        }
        match self.write_with_retry(&items) {
            Ok(()) => {
                add(&self.counters.delivered, items.len());
                Ok(())
            }
            Err(e) if e.is_retryable() => {
                eprintln!(
                    "audit: sink `{}` failed after {} tries ({e}); spooling until it recovers",
                    self.name, self.config.retry.attempts
                );
                self.degraded = true;
                self.spool_items(&items, &e.to_string())
            }
            Err(e) => {
                // Either some records were refused (the rest delivered), or all were.
                let (refused, delivered): (Vec<Item>, Vec<Item>) = if e.rejected_ids().is_empty() {
                    (items, Vec::new())
                } else {
                    items
                        .into_iter()
                        .partition(|i| e.rejected_ids().contains(&i.record().id))
                };
                add(&self.counters.delivered, delivered.len());
                add(&self.counters.failed, refused.len());
                eprintln!(
                    "audit: sink `{}` refused {} records for good: {e}; kept in {}",
                    self.name,
                    refused.len(),
                    self.spool.dir().join("dead").display()
                );
                let entries = to_entries(&refused);
                let dead = self.dead.get_or_insert_with(|| {
                    Spool::open(self.spool.dir().join("dead")).expect("dead-letter spool opens")
                });
                let _ = dead.append(&entries);
                Err(e.to_string())
            }
        }
    }

    fn spool_items(&mut self, items: &[Item], why: &str) -> Result<(), String> {
        match self.spool.append(&to_entries(items)) {
            Ok(()) => {
                add(&self.counters.spooled, items.len());
                Err(format!("{why}; spooled for replay"))
            }
            Err(e) => {
                add(&self.counters.failed, items.len());
                eprintln!(
                    "audit: sink `{}`: cannot write its spool {}: {e}; {} records lost",
                    self.name,
                    self.spool.dir().display(),
                    items.len()
                );
                Err(format!("{why}; and the spool failed: {e}"))
            }
        }
    }

    fn write_with_retry(&mut self, items: &[Item]) -> Result<(), SinkError> {
        let retry = self.config.retry;
        let mut delay = retry.initial;
        let mut attempt = 1;
        loop {
            match self.sink.write(items) {
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

    /// Replays the spool in order if the sink is healthy; stays degraded otherwise.
    fn recover(&mut self) {
        if self.sink.health().is_err() {
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
            if !self.replay_segment(&seg) {
                return;
            }
        }
        self.degraded = false;
    }

    /// Replays one segment, resuming after the frames a previous attempt delivered
    /// (recorded in `<segment>.done`), so a replay never writes a record twice.
    fn replay_segment(&mut self, seg: &Path) -> bool {
        let progress = seg.with_extension("done");
        let mut done: usize = std::fs::read_to_string(&progress)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let (entries, corrupt) = match Spool::read_segment(seg) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("audit: cannot read spool segment {}: {e}", seg.display());
                return false;
            }
        };
        if let Some(c) = corrupt {
            add(&self.counters.corrupt, 1);
            eprintln!(
                "audit: {c}; the {} whole records before it are replayed",
                entries.len()
            );
        }
        while done < entries.len() {
            let end = (done + self.config.batch_size).min(entries.len());
            let items: Vec<Item> = entries[done..end]
                .iter()
                .map(|e| Item::new(e.record.clone(), &e.name))
                .collect();
            match self.write_with_retry(&items) {
                Ok(()) => {
                    add(&self.counters.replayed, items.len());
                    add(&self.counters.delivered, items.len());
                    done = end;
                    if let Err(e) = write_progress(&progress, done) {
                        eprintln!(
                            "audit: cannot record spool progress {}: {e}",
                            progress.display()
                        );
                    }
                }
                Err(e) => {
                    eprintln!(
                        "audit: sink `{}` failed while replaying its spool: {e}",
                        self.name
                    );
                    return false;
                }
            }
        }
        let _ = std::fs::remove_file(seg);
        let _ = std::fs::remove_file(&progress);
        true
    }
}

fn write_progress(path: &Path, done: usize) -> std::io::Result<()> {
    let tmp = path.with_extension("done.tmp");
    std::fs::write(&tmp, done.to_string())?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(tmp, path)
}

fn to_entries(items: &[Item]) -> Vec<SpoolEntry> {
    items
        .iter()
        .map(|i| SpoolEntry {
            name: i.name().to_string(),
            record: i.record().clone(),
        })
        .collect()
}
