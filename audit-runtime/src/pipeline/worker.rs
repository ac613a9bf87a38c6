//! The worker, in two stages on two threads: the builder batches queued events and
//! turns them into records (description, redaction, metadata); the chainer links
//! them into the hash chain (serializing each once), hands each batch to every sink
//! thread and answers `sync` emitters. Batches, flushes and shutdown pass from one
//! stage to the other in queue order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use super::sink_thread::{SinkHandle, SinkMsg};
use super::{Config, Msg, Shared};
use crate::EventSpec;
use crate::dispatch::DeliveryError;
use crate::integrity::{Chain, Prepared};
use crate::record::Record;
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
}

impl Worker {
    pub(crate) fn new(
        rx: Receiver<Msg>,
        sinks: Vec<SinkHandle>,
        config: Arc<Config>,
        shared: Arc<Shared>,
        specs: HashMap<&'static str, &'static EventSpec>,
    ) -> Self {
        Worker {
            rx,
            chainer: Some(Chainer {
                sinks,
                config: Arc::clone(&config),
                specs,
                chain: Chain::default(),
                names: HashMap::new(),
            }),
            config,
            shared,
            next: None,
            last_len: 1024,
        }
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
        self.build();
        let _ = chainer.join();
    }

    fn send(&self, stage: Stage) {
        if let Some(next) = &self.next {
            let _ = next.send(stage);
        }
    }

    /// Builds the record of `record` and prepares its link (JSON head and hash).
    fn built(
        &mut self,
        record: Record,
        ack: Option<Ack>,
        spec: Option<&'static EventSpec>,
    ) -> Built {
        let prepared = Prepared::new(&record, self.last_len + 192);
        self.last_len = prepared.len();
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
                        let built = self.built(Record::from_event_owned(e), ack, Some(spec));
                        batch.push(built);
                    }
                    Msg::Flush(ack) => flushes.push(ack),
                    Msg::Shutdown => shutdown = true,
                }
                if batch.len() >= self.config.batch_size {
                    self.deliver(&mut batch);
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

    /// Takes the records callers spilled while the queue was full.
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
            match Spool::read_segment(&seg) {
                Ok((entries, corrupt)) => {
                    if let Some(c) = corrupt {
                        eprintln!("audit: {c}");
                    }
                    let mut batch: Vec<Built> = Vec::new();
                    for e in entries {
                        let built = self.built(e.record, None, None);
                        batch.push(built);
                        if batch.len() >= self.config.batch_size {
                            self.deliver(&mut batch);
                        }
                    }
                    self.deliver(&mut batch);
                    let _ = std::fs::remove_file(&seg);
                }
                Err(e) => eprintln!("audit: cannot read overflow spool {}: {e}", seg.display()),
            }
        }
    }
}

impl Chainer {
    fn run(mut self, rx: Receiver<Stage>) {
        // A disconnected builder (it panicked) ends the chainer like a shutdown.
        while let Ok(stage) = rx.recv() {
            match stage {
                Stage::Batch(batch) => self.deliver(batch),
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

    /// Chains, fans out and (for `sync` events) waits for the primary sinks.
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
            let wants_reply = !acks.is_empty() && sink.primary;
            let reply = wants_reply.then(|| bounded(1));
            let ids: Vec<uuid::Uuid> = if wants_reply {
                items.iter().map(|i| i.record().id).collect()
            } else {
                Vec::new()
            };
            if sink
                .tx
                .send(SinkMsg::Batch(items, reply.as_ref().map(|r| r.0.clone())))
                .is_err()
            {
                continue;
            }
            if let Some((_, rx)) = reply {
                replies.push((sink.name.clone(), ids, rx));
            }
        }
        if acks.is_empty() {
            return;
        }
        let deadline = Instant::now() + self.config.sync_timeout;
        let outcomes: Vec<(String, Vec<uuid::Uuid>, Result<(), String>)> = replies
            .into_iter()
            .map(|(name, ids, rx)| {
                let r = rx
                    .recv_deadline(deadline)
                    .unwrap_or_else(|_| Err("no answer within the sync timeout".into()));
                (name, ids, r)
            })
            .collect();
        for (id, ack) in acks {
            let failure = outcomes
                .iter()
                .filter(|(_, ids, _)| ids.contains(&id))
                .find_map(|(name, _, r)| r.as_ref().err().map(|e| format!("sink `{name}`: {e}")));
            let _ = ack.send(match failure {
                None => Ok(()),
                Some(why) => Err(DeliveryError::NotCommitted(why)),
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

    fn flush_sinks(&self) {
        let waits: Vec<_> = self
            .sinks
            .iter()
            .filter_map(|s| {
                let (tx, rx) = bounded(1);
                s.tx.send(SinkMsg::Flush(tx)).ok().map(|_| rx)
            })
            .collect();
        for w in waits {
            let _ = w.recv();
        }
    }
}
