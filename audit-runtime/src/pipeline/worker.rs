//! The worker, in two stages on two threads: the builder batches queued events and
//! turns them into records (description, redaction, metadata, size limits); the
//! chainer links them into the hash chain (serializing each once) and hands each
//! batch to every sink thread. `sync` emitters are answered by a third thread, the
//! acker, so that waiting for a primary sink never holds up delivery to the others.
//! Batches, flushes and shutdown pass from one stage to the other in queue order.
//!
//! Nothing a record holds can stop the worker: building and linking run under a
//! panic guard (a record whose building panics is delivered as a failure record that
//! names the panic), and oversized or over-deep records are cut by the rules of
//! [`crate::limits`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use uuid::Uuid;

use super::sink_thread::{SinkHandle, SinkMsg, Undelivered};
use super::{Config, Msg, Shared};
use crate::EventSpec;
use crate::dispatch::DeliveryError;
use crate::event::Event;
use crate::integrity::{Chain, Prepared};
use crate::record::{Record, limits};
use crate::sinks::{Entry, Item};
use crate::spool::Spool;

type Ack = Sender<Result<(), DeliveryError>>;

/// A record on its way to the chainer: its JSON and hash prepared up to the chain
/// fields, its emitter's ack (`sync`) and its event's spec when the builder knows it.
struct Built {
    /// The record, on the heap where the sinks will share it (its JSON comes when
    /// it is linked).
    entry: Arc<Entry>,
    prepared: Prepared,
    ack: Option<Ack>,
    spec: Option<&'static EventSpec>,
}

/// What the builder hands the chainer.
enum Stage {
    Batch(Vec<Built>),
    Flush(Vec<Sender<()>>),
    Shutdown,
}

/// Batches handed from the builder to the chainer before the builder waits.
const STAGE_QUEUE: usize = 4;

/// The bytes the chain adds after the prepared head: `prev_hash`, `hash`, the end.
const CHAIN_TAIL: usize = 2 * 66 + 10;

pub(crate) struct Worker {
    rx: Receiver<Msg>,
    config: Arc<Config>,
    shared: Arc<Shared>,
    chainer: Option<Chainer>,
    next: Option<Sender<Stage>>,
    /// Length of the last record's JSON: the next buffer starts that large.
    last_len: usize,
}

/// The second stage.
struct Chainer {
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

impl Worker {
    pub(crate) fn new(
        rx: Receiver<Msg>,
        sinks: Vec<SinkHandle>,
        config: Arc<Config>,
        shared: Arc<Shared>,
        specs: HashMap<&'static str, &'static EventSpec>,
    ) -> std::io::Result<Self> {
        let (acker, jobs) = unbounded();
        std::thread::Builder::new()
            .name("audit-acker".into())
            .spawn(move || run_acker(jobs))?;
        Ok(Worker {
            rx,
            chainer: Some(Chainer {
                sinks,
                config: Arc::clone(&config),
                specs,
                chain: Chain::default(),
                names: HashMap::new(),
                acker,
            }),
            config,
            shared,
            next: None,
            last_len: 1024,
        })
    }

    /// Runs the builder here and the chainer on a thread of its own, until shutdown.
    pub(crate) fn run(mut self) {
        let (tx, rx) = bounded(STAGE_QUEUE);
        let chainer = self.chainer.take().expect("run once");
        let chainer = std::thread::Builder::new()
            .name("audit-chainer".into())
            .spawn(move || chainer.run(rx))
            .expect("the chainer thread starts");
        self.next = Some(tx);
        // What an earlier run spilled goes first.
        self.drain_spill();
        self.build();
        let _ = chainer.join();
    }

    fn send(&self, stage: Stage) {
        if let Some(next) = &self.next {
            let _ = next.send(stage);
        }
    }

    /// The record of an event. Building runs our code only, but a panic there (a
    /// bug) must not stop delivery: the event then gets a failure record naming it.
    fn record_of(&self, event: Event) -> Record {
        let (site, id, time) = (event.site(), event.id(), event.time());
        crate::panic::catch(|| Record::from_event_owned(event)).unwrap_or_else(|panic| {
            self.shared.unbuilt.fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "audit: a record of `{}` could not be built: {panic}",
                site.spec.name
            );
            Record::unbuilt(site, id, time, &panic)
        })
    }

    /// Prepares the link of `record` (JSON head and hash), shrinking it first if its
    /// JSON would exceed [`limits::MAX_RECORD_BYTES`].
    fn built(
        &mut self,
        mut record: Record,
        ack: Option<Ack>,
        spec: Option<&'static EventSpec>,
    ) -> Built {
        let mut prepared = Prepared::new(&record, self.last_len + 192);
        if prepared.len() + CHAIN_TAIL > limits::MAX_RECORD_BYTES {
            limits::shrink(&mut record, prepared.len() + CHAIN_TAIL);
            prepared = Prepared::new(&record, 4096);
        }
        self.last_len = prepared.len().min(64 << 10);
        Built {
            entry: Arc::new(Entry {
                record,
                json: String::new(),
            }),
            prepared,
            ack,
            spec,
        }
    }

    fn deliver(&self, batch: &mut Vec<Built>) {
        if !batch.is_empty() {
            let full = std::mem::replace(batch, Vec::with_capacity(self.config.batch_size));
            self.send(Stage::Batch(full));
        }
    }

    fn build(&mut self) {
        let mut batch: Vec<Built> = Vec::with_capacity(self.config.batch_size);
        loop {
            let first = match self.rx.recv_timeout(self.config.max_wait) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    self.drain_spill();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => Msg::Shutdown,
            };
            let mut flushes = Vec::new();
            let mut shutdown = false;
            let mut next = Some(first);
            let deadline = Instant::now() + self.config.max_wait;
            while let Some(msg) = next.take() {
                self.shared.room.taken(&self.rx);
                match msg {
                    Msg::Event(e, ack) => {
                        let spec = e.spec();
                        let record = self.record_of(e);
                        let built = self.built(record, ack, Some(spec));
                        batch.push(built);
                    }
                    Msg::Flush(ack) => flushes.push(ack),
                    Msg::Shutdown => shutdown = true,
                }
                if batch.len() >= self.config.batch_size {
                    self.deliver(&mut batch);
                    // Under load the queue never idles: spilled events are taken
                    // between batches too.
                    self.drain_spill();
                }
                if flushes.is_empty() && !shutdown {
                    next = self.rx.recv_deadline(deadline).ok();
                } else {
                    // Flush and shutdown take everything already queued.
                    next = self.rx.try_recv().ok();
                }
            }
            self.deliver(&mut batch);
            if !flushes.is_empty() || shutdown {
                self.drain_spill();
                self.send(Stage::Flush(flushes));
            }
            if shutdown {
                self.send(Stage::Shutdown);
                return;
            }
        }
    }

    /// Takes the records callers spilled while the queue was full (and what an
    /// earlier run left in the overflow spool). A segment is removed only once every
    /// sink thread has delivered or spooled its records.
    fn drain_spill(&mut self) {
        if !self.shared.spill_pending.swap(false, Ordering::AcqRel) {
            return;
        }
        let segments = {
            let mut guard = self.shared.spill.lock().unwrap_or_else(|p| p.into_inner());
            let Some(spool) = guard.as_mut() else { return };
            spool.seal();
            spool.segments().unwrap_or_default()
        };
        for seg in segments {
            let segment = match Spool::read_segment(&seg) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("audit: cannot read overflow spool {}: {e}", seg.display());
                    self.shared.spill_pending.store(true, Ordering::Release);
                    continue;
                }
            };
            for c in &segment.corrupt {
                eprintln!("audit: {c}");
            }
            let mut batch: Vec<Built> = Vec::new();
            for e in &segment.entries {
                let record = match e.record() {
                    Ok(r) => r,
                    Err(why) => {
                        eprintln!("audit: an overflow-spooled record does not read: {why}");
                        continue;
                    }
                };
                let built = self.built(record, None, None);
                batch.push(built);
                if batch.len() >= self.config.batch_size {
                    self.deliver(&mut batch);
                }
            }
            self.deliver(&mut batch);
            // The chainer answers a flush once every sink thread has handled every
            // batch before it: delivered, spooled or dead-lettered.
            let (ack, handled) = bounded(1);
            self.send(Stage::Flush(vec![ack]));
            if handled
                .recv_timeout(self.config.sync_timeout.max(self.shared.shutdown_timeout))
                .is_ok()
            {
                if let Err(e) = Spool::remove_segment(&seg) {
                    eprintln!(
                        "audit: cannot remove overflow segment {}: {e}",
                        seg.display()
                    );
                }
            } else {
                // Kept: at worst its records are delivered again after a restart.
                eprintln!(
                    "audit: the sinks did not confirm the overflow segment {} in time; it is kept",
                    seg.display()
                );
                return;
            }
        }
    }
}

impl Chainer {
    fn run(mut self, rx: Receiver<Stage>) {
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
            let _ = s.tx.send(SinkMsg::Shutdown);
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
            if sink
                .tx
                .send(SinkMsg::Batch(items, reply.as_ref().map(|r| r.0.clone())))
                .is_err()
            {
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
