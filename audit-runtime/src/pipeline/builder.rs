//! The worker's first stage, on the `audit-worker` thread: batches queued events
//! and turns them into records (description, redaction, metadata, size limits),
//! writes each record's JSON up to its chain fields (the chainer hashes it) and hands
//! batches to the chainer ([`super::chainer`]), which it starts. It also takes what callers
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

    /// The record of an event, on the heap where the sinks will share it. Building
    /// runs our code only, but a panic there (a bug) must not stop delivery: the
    /// event then gets a failure record naming it.
    ///
    /// A record is ~1.1 KB inline (its metadata's first four values, the site, the
    /// chain hashes); it is moved to the heap inside the guard, once, rather than
    /// returned through each step by value.
    fn entry_of(&self, event: Event) -> Arc<Entry> {
        let (site, id, time) = (event.site(), event.id(), event.time());
        crate::panic::catch(|| {
            #[cfg(test)]
            tests::panic_if_asked(&event);
            Entry::unlinked(Record::from_event_owned(event))
        })
        .unwrap_or_else(|panic| {
            self.shared.unbuilt.fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "audit: a record of `{}` could not be built: {panic}",
                site.spec.name
            );
            Entry::unlinked(Record::unbuilt(site, id, time, &panic))
        })
    }

    /// Prepares the link of `entry`'s record (its JSON head), shrinking it
    /// first if its JSON would exceed [`limits::MAX_RECORD_BYTES`].
    fn built(
        &mut self,
        mut entry: Arc<Entry>,
        ack: Option<Ack>,
        spec: Option<&'static EventSpec>,
    ) -> Built {
        let mut prepared = Prepared::new(&entry.record, self.last_len + 192);
        if prepared.len() + CHAIN_TAIL > limits::MAX_RECORD_BYTES {
            let record = &mut Arc::get_mut(&mut entry)
                .expect("an entry is shared only once linked")
                .record;
            limits::shrink(record, prepared.len() + CHAIN_TAIL);
            prepared = Prepared::new(record, 4096);
        }
        self.last_len = prepared.len().min(64 << 10);
        Built {
            entry,
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
                        let entry = self.entry_of(e);
                        let built = self.built(entry, ack, Some(spec));
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
                let built = self.built(Entry::unlinked(record), None, None);
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

#[cfg(test)]
mod tests {
    use audit_catalog::{Durability, Level};

    use crate::dispatch::Dispatch;
    use crate::event::{Event, Outcome};
    use crate::spec::{CatalogRef, EventSpec, FieldSpec, Site, SpecCache};
    use crate::value::Value;
    use crate::{Auditor, Record, integrity, sinks::JsonLines};

    /// Building a record of this event panics (a bug in the builder, injected).
    const PANICS: &str = "panics_when_built";

    pub(super) fn panic_if_asked(event: &Event) {
        if event.spec().name == PANICS {
            panic!("injected: building failed");
        }
    }

    static CATALOG: CatalogRef = CatalogRef {
        name: "builder-tests",
        path: "builder-tests.toml",
    };
    static FIELDS: [FieldSpec; 1] = [FieldSpec {
        name: "name",
        ty: "string",
        redact: false,
        indexed: false,
    }];

    const fn spec(name: &'static str) -> EventSpec {
        EventSpec {
            name,
            code: 1,
            category: "test",
            level: Level::Info,
            entity: None,
            description: Some("made %{name}"),
            failure: "could not make %{name}: %{error}",
            fields: &FIELDS,
            aliases: &[],
            redact: &[],
            changes: false,
            durability: Durability::Async,
            catalog: &CATALOG,
            __template: SpecCache::new(),
        }
    }

    static BUILDS: EventSpec = spec("builds");
    static PANICKING: EventSpec = spec(PANICS);
    static BUILDS_SITE: Site = Site {
        spec: &BUILDS,
        module: "builder::tests",
        file: file!(),
        line: 1,
        function: "builds",
    };
    static PANICKING_SITE: Site = Site {
        spec: &PANICKING,
        module: "builder::tests",
        file: file!(),
        line: 2,
        function: "panics",
    };

    fn event(site: &'static Site, name: &str) -> Event {
        Event::new(
            site,
            Outcome::Success,
            0,
            smallvec::smallvec![Value::Str(name.to_owned().into())],
            None,
        )
    }

    /// A panic while building one record costs that record's metadata, never the
    /// record, the others or the chain: it is delivered as a failure naming the
    /// panic, in its place, and counted.
    #[test]
    fn a_record_whose_building_panics_is_delivered_as_a_failure_in_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let auditor = Auditor::builder()
            .sink(JsonLines::open(&path).unwrap())
            .spool_dir(dir.path().join("spool"))
            .build()
            .unwrap();
        for (site, name) in [
            (&BUILDS_SITE, "a"),
            (&PANICKING_SITE, "secret-b"),
            (&BUILDS_SITE, "c"),
        ] {
            auditor.dispatch(event(site, name)).unwrap();
        }
        let report = auditor.shutdown();
        assert_eq!(report.unbuilt, 1, "{report}");
        let lines = std::fs::read_to_string(&path).unwrap();
        let records: Vec<Record> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let events: Vec<&str> = records.iter().map(|r| &*r.event).collect();
        assert_eq!(events, ["builds", PANICS, "builds"]);
        let failed = &records[1];
        let error = failed.error.as_deref().unwrap();
        assert!(error.contains("injected: building failed"), "{error}");
        assert_eq!(failed.meta("name"), Some(&serde_json::Value::Null));
        assert!(!lines.contains("secret-b"), "the lost value is not written");
        assert_eq!(records[2].description, "made c");
        // The chain runs through the failure record.
        for (line, record) in lines.lines().zip(&records) {
            let (stored, computed) = integrity::hash_of_json(line).unwrap();
            assert_eq!(stored, Some(computed.as_str()));
            assert_eq!(record.hash.as_deref(), Some(computed.as_str()));
        }
        assert_eq!(records[1].prev_hash, records[0].hash);
        assert_eq!(records[2].prev_hash, records[1].hash);
    }
}
