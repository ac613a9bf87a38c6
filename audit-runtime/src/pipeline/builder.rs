//! The worker's first stage, on the `audit-worker` thread: batches queued events
//! and turns them into records (description, redaction, metadata, size limits),
//! prepares each record's link (its JSON head and SHA-256 state) and hands batches to
//! the chainer ([`super::chainer`]), which it starts. It also takes what callers
//! spilled to the overflow spool.
//!
//! Nothing a record holds can stop it: building runs under a panic guard (a record
//! whose building panics is delivered as a failure record that names the panic), and
//! oversized or over-deep records are cut by the rules of [`crate::limits`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use super::chainer::{Ack, Built, Chainer, STAGE_QUEUE, Stage};
use super::sink_thread::SinkHandle;
use super::{Config, Msg, Shared};
use crate::EventSpec;
use crate::event::Event;
use crate::integrity::Prepared;
use crate::record::{Record, limits};
use crate::sinks::Entry;
use crate::spool::Spool;

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
    /// Batches the sinks wrote, freed here (see `WRITTEN_QUEUE` in the module above).
    written: Receiver<Vec<crate::sinks::Item>>,
}

impl Worker {
    pub(crate) fn new(
        rx: Receiver<Msg>,
        sinks: Vec<SinkHandle>,
        config: Arc<Config>,
        shared: Arc<Shared>,
        specs: HashMap<&'static str, &'static EventSpec>,
        written: Receiver<Vec<crate::sinks::Item>>,
    ) -> std::io::Result<Self> {
        Ok(Worker {
            rx,
            chainer: Some(Chainer::new(sinks, Arc::clone(&config), specs)?),
            config,
            shared,
            next: None,
            last_len: 1024,
            written,
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

    /// Frees the records the sinks are done with, on this thread, which made them
    /// (see `WRITTEN_QUEUE`): checked at every event, so that a sink's frees never
    /// wait on this thread's allocations.
    fn free_written(&self) {
        for written in self.written.try_iter() {
            drop(written);
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
                    self.free_written();
                    self.drain_spill();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => Msg::Shutdown,
            };
            let mut flushes = Vec::new();
            let mut shutdown = false;
            // A sync event's caller waits for its commit: its batch goes at once with
            // what is already queued, not at the batch timer.
            let mut waited_for = false;
            let mut next = Some(first);
            let deadline = Instant::now() + self.config.max_wait;
            while let Some(msg) = next.take() {
                self.free_written();
                self.shared.backpressure.taken(&self.rx);
                match msg {
                    Msg::Event(e, ack) => {
                        waited_for |= ack.is_some();
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
                if flushes.is_empty() && !shutdown && !waited_for {
                    next = self.rx.recv_deadline(deadline).ok();
                } else {
                    // Flush, shutdown and sync events take everything already queued.
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
