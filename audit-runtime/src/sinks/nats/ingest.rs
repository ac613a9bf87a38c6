//! `audit ingest`: moves records from a NATS JetStream stream into a store, exactly
//! once. A durable pull consumer hands out batches; a batch is acknowledged only after
//! the store committed it, so a killed ingest process loses nothing (its unacknowledged
//! messages are redelivered after the consumer's ack wait) and duplicates nothing (the
//! store skips a record id it already holds). Several ingest processes can share one
//! consumer.
//!
//! A message holds one record or several, one per line (see
//! [`NatsOptions::records_per_message`](super::NatsOptions::records_per_message)); a
//! message is acknowledged once each of its lines is stored or kept.
//!
//! A poison message never stops ingestion: a line that is not a record, or a record
//! the store refuses for good (found by halving the batch), is kept in the dead-letter
//! spool with the reason and counted; a message that stored nothing is terminated on
//! the stream so it is not redelivered; the rest of the batch is committed and
//! acknowledged.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures_util::StreamExt;

use crate::sinks::isolate::{Triage, write_isolating};
use crate::sinks::{Item, Sink, SinkError};
use crate::spool::{Spool, SpoolEntry};

/// What went wrong while ingesting.
#[derive(Debug)]
pub enum IngestError {
    /// The stream or its consumer could not be reached or created.
    Nats(String),
    /// The dead-letter spool could not be opened.
    DeadLetter(std::io::Error),
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestError::Nats(m) => write!(f, "nats: {m}"),
            IngestError::DeadLetter(e) => write!(f, "dead-letter spool: {e}"),
        }
    }
}

impl std::error::Error for IngestError {}

/// What an ingest run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Records handed to the store (a redelivered record the store already held is
    /// counted again; the store keeps one).
    pub written: u64,
    /// Batches committed.
    pub batches: u64,
    /// Lines of messages that are not records, a message of one line being the
    /// message (kept in the dead-letter spool; a message that held no record is
    /// terminated).
    pub rejected: u64,
    /// Records the store refused for good (kept in the dead-letter spool with the
    /// reason, terminated on the stream).
    pub dead_lettered: u64,
    /// Store writes retried.
    pub retries: u64,
}

/// Records per ingest batch unless [`Ingest::batch`] says otherwise: 5 000. A
/// batch is one store transaction, and a PostgreSQL store copies one of at least
/// 1 000 records over several connections; at 500 records a batch, two ingests
/// stored 8–30 % fewer events per second than at 5 000 (BENCHMARKS.md, issue 19).
/// Two batches are in memory at once (one written, the next fetched).
pub const DEFAULT_INGEST_BATCH: usize = 5_000;

/// How to ingest.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # #[cfg(feature = "postgres")] {
/// use std::sync::atomic::AtomicBool;
/// use audit_runtime::ingest::Ingest;
/// use audit_runtime::store::Postgres;
/// let mut store = Postgres::connect("postgres://postgres@127.0.0.1/test")?;
/// let report = Ingest::new("AUDIT")
///     .consumer("audit-ingest")
///     .batch(5_000)
///     .run("nats://127.0.0.1:4222", &mut store, &AtomicBool::new(false))?;
/// println!("{} records", report.written);
/// # }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Ingest {
    stream: String,
    consumer: String,
    batch: usize,
    ack_wait: Duration,
    fetch_wait: Duration,
    idle_exit: Option<Duration>,
    dead_letters: Option<PathBuf>,
    connection: super::NatsConnection,
}

impl Ingest {
    /// Ingest from `stream` with the durable consumer `audit-ingest`.
    pub fn new(stream: impl Into<String>) -> Self {
        Ingest {
            stream: stream.into(),
            consumer: "audit-ingest".into(),
            batch: DEFAULT_INGEST_BATCH,
            ack_wait: Duration::from_secs(30),
            fetch_wait: Duration::from_millis(500),
            idle_exit: None,
            dead_letters: None,
            connection: super::NatsConnection::default(),
        }
    }

    /// TLS and credentials of the NATS connection (see [`super::NatsConnection`]).
    pub fn connection(mut self, connection: super::NatsConnection) -> Self {
        self.connection = connection;
        self
    }

    /// Where poison messages are kept (default: `ingest-<consumer>-dead-<pid>` in
    /// [`crate::spool::default_dir`]; a spool is locked by one process). The
    /// directory is created when the first poison message arrives.
    pub fn dead_letters(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dead_letters = Some(dir.into());
        self
    }

    /// The durable consumer's name (shared by every ingest process of one store).
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = name.into();
        self
    }

    /// Records per batch (one store transaction each; default
    /// [`DEFAULT_INGEST_BATCH`]). A fetch asks for as many messages as held that
    /// many records in the fetch before it (the first asks for `n`), so a batch of
    /// messages of several records is about `n` records.
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// How long a delivered, unacknowledged batch waits before the stream redelivers
    /// it (to another process: default 30 s). Set when the consumer is created.
    pub fn ack_wait(mut self, d: Duration) -> Self {
        self.ack_wait = d;
        self
    }

    /// Stop once no record arrived for this long (default: run until stopped).
    pub fn exit_when_idle(mut self, d: Duration) -> Self {
        self.idle_exit = Some(d);
        self
    }

    /// Runs until `stop` is set (or the stream is idle, if asked).
    pub fn run<S: Sink + ?Sized>(
        &self,
        url: &str,
        store: &mut S,
        stop: &AtomicBool,
    ) -> Result<IngestReport, IngestError> {
        let nats = |e: &dyn std::fmt::Display| IngestError::Nats(e.to_string());
        // Resolved when the first poison message arrives (the default needs a home
        // directory; a run without poison must not).
        let dead_dir = match &self.dead_letters {
            Some(dir) => Ok(dir.clone()),
            None => crate::spool::default_dir().map(|d| {
                d.join(format!(
                    "ingest-{}-dead-{}",
                    self.consumer,
                    std::process::id()
                ))
            }),
        };
        let mut dead: Option<Spool> = None;
        // A worker thread keeps the connection serviced while the store writes.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| nats(&e))?;
        let (client, consumer) = rt.block_on(async {
            let client = self
                .connection
                .connect(url)
                .await
                .map_err(|e| IngestError::Nats(e.to_string()))?;
            let js = jetstream::new(client.clone());
            let stream = js.get_stream(&self.stream).await.map_err(|e| nats(&e))?;
            let consumer: jetstream::consumer::PullConsumer = stream
                .get_or_create_consumer(
                    &self.consumer,
                    pull::Config {
                        durable_name: Some(self.consumer.clone()),
                        ack_policy: jetstream::consumer::AckPolicy::Explicit,
                        ack_wait: self.ack_wait,
                        max_ack_pending: (self.batch * 16) as i64,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| nats(&e))?;
            Ok::<_, IngestError>((client, consumer))
        })?;
        let mut report = IngestReport::default();
        let mut last_record = Instant::now();
        // The next batch is fetched and parsed on the runtime's thread while this
        // one is written: a fetched batch is only delivered, not acknowledged, so
        // one that is never written (a stop, a crash) is delivered again. A fetch
        // asks for as many messages as the last one needed for a batch of records.
        let wait = self.fetch_wait;
        let fetch = |size| rt.spawn(fetch_batch(consumer.clone(), size, wait));
        let mut next = Prefetch(Some(fetch(self.batch)));
        while !stop.load(Ordering::Relaxed) {
            let fetched = next.0.take().expect("a fetch is always under way");
            let Fetched {
                messages,
                items,
                of,
                rejected,
                rejected_of,
            } = rt.block_on(fetched).map_err(|e| nats(&e))??;
            let lines = items.len() + rejected.len();
            next.0 = Some(fetch(messages_for(self.batch, messages.len(), lines)));
            // A message is acknowledged once each of its lines is stored or kept as
            // a dead letter; one with a line neither stored nor kept is left to be
            // delivered again; one that stored nothing is terminated.
            let mut open = vec![false; messages.len()];
            let mut stored = vec![false; messages.len()];
            if !rejected.is_empty() {
                if keep(&mut dead, &rejected, &dead_dir) {
                    report.rejected += rejected.len() as u64;
                } else {
                    rejected_of.iter().for_each(|&at| open[at] = true);
                }
            }
            // Messages without a record are settled now, before the store is
            // waited for.
            let mut holds = vec![false; messages.len()];
            of.iter().for_each(|&at| holds[at] = true);
            rt.block_on(async {
                for (at, m) in messages.iter().enumerate() {
                    if !holds[at] && !open[at] {
                        let _ = m.ack_with(AckKind::Term).await;
                    }
                }
            });
            if items.is_empty() {
                if self.idle_exit.is_some_and(|d| last_record.elapsed() >= d) {
                    break;
                }
                continue;
            }
            last_record = Instant::now();
            let ids: Vec<uuid::Uuid> = items.iter().map(|i| i.record().id).collect();
            let mut delay = Duration::from_millis(50);
            let mut pending = items;
            let mut refused = Vec::new();
            let mut written = 0;
            loop {
                let mut t = Triage::default();
                // A store is code this loop does not own: its panic refuses the
                // records it was given (narrowed down like any permanent error).
                let mut write = |b: &[Item]| {
                    crate::panic::catch(|| store.write(b)).unwrap_or_else(|panic| {
                        Err(SinkError::permanent(format!("the store panicked: {panic}")))
                    })
                };
                write_isolating(&mut write, pending, &mut t);
                written += t.delivered;
                refused.append(&mut t.refused);
                let Some((rest, _)) = t.down else { break };
                if stop.load(Ordering::Relaxed) {
                    // Unacknowledged: redelivered to the next run.
                    next.give_back(&rt, &client);
                    return Ok(report);
                }
                report.retries += 1;
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
                pending = rest;
            }
            // Refused records are kept; if they cannot be, their messages stay
            // unacknowledged (delivered again after the ack wait).
            let mut refused_ids: HashSet<uuid::Uuid> = HashSet::new();
            if !refused.is_empty() {
                let entries: Vec<SpoolEntry> = refused
                    .iter()
                    .map(|(item, why)| SpoolEntry {
                        name: item.name().to_owned(),
                        json: item.json().to_owned(),
                        reason: Some(why.clone()),
                    })
                    .collect();
                let kept = keep(&mut dead, &entries, &dead_dir);
                if kept {
                    report.dead_lettered += refused.len() as u64;
                }
                refused_ids.extend(refused.iter().map(|(item, _)| item.record().id));
                for (id, &at) in ids.iter().zip(&of) {
                    if refused_ids.contains(id) && !kept {
                        open[at] = true;
                    }
                }
            }
            for (id, &at) in ids.iter().zip(&of) {
                if !refused_ids.contains(id) {
                    stored[at] = true;
                }
            }
            // Committed: acknowledge. A lost ack means a redelivery the store skips.
            rt.block_on(async {
                for (at, m) in messages.iter().enumerate() {
                    if !holds[at] || open[at] {
                        continue;
                    }
                    if stored[at] {
                        m.ack().await.map_err(|e| nats(&e))?;
                    } else {
                        let _ = m.ack_with(AckKind::Term).await;
                    }
                }
                client.flush().await.map_err(|e| nats(&e))
            })?;
            report.written += written as u64;
            report.batches += 1;
        }
        next.give_back(&rt, &client);
        Ok(report)
    }
}

/// How many messages to fetch for a batch of `batch` records, after a fetch whose
/// `messages` held `lines` lines: never more than `batch`.
fn messages_for(batch: usize, messages: usize, lines: usize) -> usize {
    if messages == 0 || lines <= messages {
        return batch;
    }
    (batch * messages).div_ceil(lines).clamp(1, batch)
}

/// A batch as fetched: its messages, the records they hold and the lines that are
/// not records, each with the index of its message.
struct Fetched {
    messages: Vec<jetstream::Message>,
    items: Vec<Item>,
    of: Vec<usize>,
    rejected: Vec<SpoolEntry>,
    rejected_of: Vec<usize>,
}

/// Fetches up to `size` messages (waiting up to `wait` for them) and parses them.
async fn fetch_batch(
    consumer: jetstream::consumer::PullConsumer,
    size: usize,
    wait: Duration,
) -> Result<Fetched, IngestError> {
    let nats = |e: &dyn std::fmt::Display| IngestError::Nats(e.to_string());
    let mut batch = consumer
        .fetch()
        .max_messages(size)
        .expires(wait)
        .messages()
        .await
        .map_err(|e| nats(&e))?;
    let mut f = Fetched {
        messages: Vec::new(),
        items: Vec::new(),
        of: Vec::new(),
        rejected: Vec::new(),
        rejected_of: Vec::new(),
    };
    while let Some(m) = batch.next().await {
        let m = m.map_err(|e| nats(&e))?;
        let at = f.messages.len();
        let lines = f.items.len() + f.rejected.len();
        for line in super::message::records(&m.payload) {
            match line {
                Ok(item) => {
                    f.items.push(item);
                    f.of.push(at);
                }
                Err(line) => {
                    f.rejected.push(not_a_record(&m, line));
                    f.rejected_of.push(at);
                }
            }
        }
        if f.items.len() + f.rejected.len() == lines {
            // Not a line in it.
            f.rejected.push(not_a_record(&m, &m.payload));
            f.rejected_of.push(at);
        }
        f.messages.push(m);
    }
    Ok(f)
}

/// A dead letter for a line of `m` that is not a record.
fn not_a_record(m: &jetstream::Message, line: &[u8]) -> SpoolEntry {
    SpoolEntry {
        name: m.subject.to_string(),
        json: String::from_utf8_lossy(line).into_owned(),
        reason: Some("not an audit record".into()),
    }
}

/// The fetch under way, stopped when the run ends (its messages, delivered but not
/// acknowledged, are delivered again after the consumer's ack wait).
struct Prefetch(Option<tokio::task::JoinHandle<Result<Fetched, IngestError>>>);

impl Prefetch {
    /// Waits for the fetch under way (at most the fetch wait) and hands its
    /// messages back to the stream for immediate redelivery, so that a run that
    /// stops does not hold them until the ack wait passes.
    fn give_back(&mut self, rt: &tokio::runtime::Runtime, client: &async_nats::Client) {
        let Some(fetch) = self.0.take() else { return };
        if let Ok(Ok(fetched)) = rt.block_on(fetch) {
            rt.block_on(async {
                for m in &fetched.messages {
                    let _ = m.ack_with(AckKind::Nak(None)).await;
                }
                let _ = client.flush().await;
            });
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        if let Some(fetch) = self.0.take() {
            fetch.abort();
        }
    }
}

/// Appends dead letters (opening the spool on first use); says so on standard
/// error either way.
fn keep(
    dead: &mut Option<Spool>,
    entries: &[SpoolEntry],
    dir: &Result<std::path::PathBuf, std::io::Error>,
) -> bool {
    let dir = match dir {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!(
                "audit ingest: no dead-letter directory ({e}; set Ingest::dead_letters); poison messages left for redelivery"
            );
            return false;
        }
    };
    let kept = match dead {
        Some(spool) => spool.append(entries),
        None => Spool::open(dir).and_then(|spool| dead.insert(spool).append(entries)),
    };
    match kept {
        Ok(()) => {
            eprintln!(
                "audit ingest: {} poison messages kept in {} (first: {})",
                entries.len(),
                dir.display(),
                entries[0].reason.as_deref().unwrap_or_default()
            );
            true
        }
        Err(e) => {
            eprintln!("audit ingest: poison messages could not be kept ({e}); left for redelivery");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::messages_for;

    #[test]
    fn a_fetch_asks_for_the_messages_of_a_batch_of_records() {
        assert_eq!(
            messages_for(500, 0, 0),
            500,
            "nothing known: one per record"
        );
        assert_eq!(messages_for(500, 500, 500), 500);
        assert_eq!(messages_for(2000, 20, 2000), 20, "100 records a message");
        assert_eq!(messages_for(500, 3, 1000), 2, "rounded up");
        assert_eq!(messages_for(10, 1, 1000), 1, "at least one");
        assert_eq!(messages_for(500, 10, 5), 500, "never above the batch");
    }
}
