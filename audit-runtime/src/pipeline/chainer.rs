//! The worker's second stage, on the `audit-chainer` thread: links each batch the
//! builder prepared into the hash chain (hashing the JSON the builder wrote up to the
//! chain fields, and finishing it: each record is serialized once), hands it to
//! every sink thread (filter and alias name per sink), and passes `sync` emitters to
//! the acker thread, which answers them once their primary sinks reported, so that
//! waiting for a primary sink never holds up delivery to the others. Batches,
//! flushes and shutdown arrive in queue order. Linking runs under a panic guard.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, bounded, unbounded};
use uuid::Uuid;

use super::Config;
use super::metrics::add;
use super::sink_thread::{SinkHandle, SinkMsg, Undelivered, divert, lock};
use crate::EventSpec;
use crate::dispatch::DeliveryError;
use crate::integrity::{Chain, Prepared};
use crate::sinks::{Entry, Item};

pub(super) type Ack = Sender<Result<(), DeliveryError>>;

/// A record on its way to the chainer: its JSON prepared up to the chain fields,
/// its emitter's ack (`sync`) and its event's spec when the builder knows it.
pub(super) struct Built {
    /// The record, on the heap where the sinks will share it (its JSON comes when
    /// it is linked).
    pub entry: Arc<Entry>,
    pub prepared: Prepared,
    pub ack: Option<Ack>,
    pub spec: Option<&'static EventSpec>,
}

/// What the builder hands the chainer.
pub(super) enum Stage {
    Batch(Vec<Built>),
    Flush(Vec<Sender<()>>),
    Shutdown,
}

/// Batches handed from the builder to the chainer before the builder waits.
pub(super) const STAGE_QUEUE: usize = 4;

/// How often the chainer tries again to spool a stalled sink's batch that a full
/// disk refused.
const STALLED_RETRY: Duration = Duration::from_millis(50);

/// The second stage.
pub(super) struct Chainer {
    sinks: Vec<SinkHandle>,
    config: Arc<Config>,
    specs: HashMap<&'static str, &'static EventSpec>,
    chain: Chain,
    names: HashMap<String, Arc<str>>,
    acker: Sender<AckJob>,
}

/// `sync` emitters of one batch, and the primary sinks' answers to wait for.
struct AckJob {
    acks: Vec<(Uuid, Ack)>,
    replies: Vec<(String, Receiver<Undelivered>)>,
    deadline: Instant,
}

impl Chainer {
    /// The chainer of `sinks`, with its acker thread started.
    pub(super) fn new(
        sinks: Vec<SinkHandle>,
        config: Arc<Config>,
        specs: HashMap<&'static str, &'static EventSpec>,
    ) -> std::io::Result<Chainer> {
        let (acker, jobs) = unbounded();
        std::thread::Builder::new()
            .name("audit-acker".into())
            .spawn(move || run_acker(jobs))?;
        Ok(Chainer {
            sinks,
            config,
            specs,
            chain: Chain::default(),
            names: HashMap::new(),
            acker,
        })
    }

    pub(super) fn run(mut self, rx: Receiver<Stage>) {
        // A disconnected builder (it panicked) ends the chainer like a shutdown.
        while let Ok(stage) = rx.recv() {
            match stage {
                Stage::Batch(batch) => {
                    let len = batch.len();
                    if let Err(panic) = crate::panic::catch(|| self.deliver(batch)) {
                        eprintln!("audit: a batch of {len} records could not be linked: {panic}");
                    }
                }
                Stage::Flush(acks) => {
                    self.flush_sinks();
                    for ack in acks {
                        let _ = ack.send(());
                    }
                }
                Stage::Shutdown => break,
            }
        }
        for s in &self.sinks {
            // A stalled sink may never take it; it is not waited for.
            let _ =
                s.tx.send_timeout(SinkMsg::Shutdown, self.config.stall_timeout);
        }
    }

    /// Chains, fans out, and hands the `sync` emitters to the acker.
    fn deliver(&mut self, batch: Vec<Built>) {
        let mut records = Vec::with_capacity(batch.len());
        let mut acks = Vec::new();
        for b in batch {
            let Built {
                mut entry,
                prepared,
                ack,
                spec,
            } = b;
            if let Some(spec) = spec {
                self.specs.entry(spec.name).or_insert(spec);
            }
            let unshared = Arc::get_mut(&mut entry).expect("an entry is shared only once linked");
            unshared.json = self.chain.link_prepared(&mut unshared.record, prepared);
            let name = self.event_name(&entry.record.event);
            if let Some(ack) = ack {
                acks.push((entry.record.id, ack));
            }
            records.push(Item::from_entry(entry, name));
        }
        let mut replies = Vec::new();
        for sink in &self.sinks {
            let items: Vec<Item> = records
                .iter()
                .filter(|item| sink.options.accepts(item.record()))
                .map(|item| self.published(sink, item))
                .collect();
            if items.is_empty() {
                continue;
            }
            let reply = (!acks.is_empty() && sink.primary).then(|| bounded(1));
            if !self.hand_over(sink, items, reply.as_ref().map(|r| r.0.clone())) {
                continue;
            }
            if let Some((_, rx)) = reply {
                replies.push((sink.name.clone(), rx));
            }
        }
        if !acks.is_empty() {
            let _ = self.acker.send(AckJob {
                acks,
                replies,
                deadline: Instant::now() + self.config.sync_timeout,
            });
        }
    }

    /// Queues a batch for a sink thread; if its queue stays full for the stall
    /// timeout (the sink hangs), spools this and the sink's next batches to its
    /// stalled spool instead, so that the other sinks go on. If that spool cannot be
    /// written either (a full disk), waits until the spool or the sink takes the
    /// batch: every sink then waits, and through the queue the callers, instead of
    /// records being lost; only a shutdown gives the batch up (counted `lost`).
    /// Returns whether the batch was queued or spooled (not: the sink thread is gone).
    fn hand_over(
        &self,
        sink: &SinkHandle,
        mut items: Vec<Item>,
        mut reply: Option<Sender<Undelivered>>,
    ) -> bool {
        let answer = |reply: Option<Sender<Undelivered>>, items: &[Item], why: String| {
            if let Some(reply) = reply {
                let _ = reply.send(Arc::new(
                    items.iter().map(|i| (i.record().id, why.clone())).collect(),
                ));
            }
        };
        let mut waiting = false;
        loop {
            {
                let mut d = lock(&sink.stalled);
                if d.diverted {
                    let why = match divert(sink, &mut d, &items) {
                        Ok(()) => {
                            if waiting {
                                eprintln!("audit: sink `{}`: spooled after waiting", sink.name);
                            }
                            "the sink is stalled; spooled for replay".to_owned()
                        }
                        Err(e) if self.config.closing.load(Ordering::SeqCst) => {
                            add(&sink.counters.lost, items.len());
                            eprintln!(
                                "audit: sink `{}`: {e}, the sink stalled and the pipeline shutting down; these records are lost",
                                sink.name
                            );
                            format!("the sink is stalled, and the spool failed: {e}")
                        }
                        Err(e) => {
                            if !waiting {
                                waiting = true;
                                eprintln!(
                                    "audit: sink `{}`: {e}; waiting until the sink or its spool takes them",
                                    sink.name
                                );
                            }
                            drop(d);
                            // Until the disk has room, or the sink caught up and
                            // replayed the stalled spool (the queue is open again).
                            std::thread::sleep(STALLED_RETRY);
                            continue;
                        }
                    };
                    answer(reply, &items, why);
                    return true;
                }
            }
            match sink
                .tx
                .send_timeout(SinkMsg::Batch(items, reply), self.config.stall_timeout)
            {
                Ok(()) => return true,
                Err(SendTimeoutError::Timeout(SinkMsg::Batch(i, r))) => {
                    (items, reply) = (i, r);
                    let mut d = lock(&sink.stalled);
                    if !d.diverted {
                        d.diverted = true;
                        eprintln!(
                            "audit: sink `{}` took no batch for {:?}; spooling its records until it catches up",
                            sink.name, self.config.stall_timeout
                        );
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// The item `sink` gets: under its alias, else under the event name.
    fn published(&self, sink: &SinkHandle, item: &Item) -> Item {
        if !sink.options.has_aliases() {
            return item.clone();
        }
        let record = item.record();
        let spec = self.specs.get(&*record.event).copied();
        let name = sink.options.alias_name(spec, record);
        item.renamed(name.unwrap_or_else(|| Arc::clone(item.shared_name())))
    }

    /// The shared name of an event (one allocation per event name, not per record).
    fn event_name(&mut self, event: &str) -> Arc<str> {
        if let Some(n) = self.names.get(event) {
            return Arc::clone(n);
        }
        let n: Arc<str> = Arc::from(event);
        self.names.insert(event.to_owned(), Arc::clone(&n));
        n
    }

    /// Asks every sink thread to flush, and waits for each at most the shutdown
    /// timeout: a hung sink delays the others once, not forever.
    fn flush_sinks(&self) {
        let deadline = Instant::now() + self.config.shutdown_timeout;
        let waits: Vec<_> = self
            .sinks
            .iter()
            .filter_map(|s| {
                let (tx, rx) = bounded(1);
                s.tx.send_deadline(SinkMsg::Flush(tx), deadline)
                    .ok()
                    .map(|_| (s, rx))
            })
            .collect();
        for (sink, w) in waits {
            if w.recv_deadline(deadline).is_err() {
                eprintln!(
                    "audit: sink `{}` did not finish flushing within the shutdown timeout",
                    sink.name
                );
            }
        }
    }
}

/// Answers `sync` emitters: each gets `Ok` once every primary sink that took its
/// record reported it delivered, else the first reason it was not.
fn run_acker(jobs: Receiver<AckJob>) {
    for job in jobs {
        let answers: Vec<(String, Result<Undelivered, ()>)> = job
            .replies
            .into_iter()
            .map(|(name, rx)| (name, rx.recv_deadline(job.deadline).map_err(|_| ())))
            .collect();
        for (id, ack) in job.acks {
            let failure = answers.iter().find_map(|(name, answer)| match answer {
                Err(()) => Some(format!("sink `{name}`: no answer within the sync timeout")),
                Ok(undelivered) => undelivered
                    .iter()
                    .find(|(u, _)| *u == id)
                    .map(|(_, why)| format!("sink `{name}`: {why}")),
            });
            let _ = ack.send(match failure {
                None => Ok(()),
                Some(why) => Err(DeliveryError::NotCommitted(why)),
            });
        }
    }
}
