//! The distributed path: records published to a NATS JetStream stream, one per
//! message or several of a subject together (see [`NatsOptions::records_per_message`]),
//! with a `Nats-Msg-Id` that lets the stream drop the duplicates of a retried batch.

mod checkpoints;
mod connection;
pub mod ingest;
mod message;

pub use checkpoints::CheckpointBucket;
pub use connection::NatsConnection;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::{HeaderMap, header::NATS_MESSAGE_ID};

use super::{Batch, Sink, SinkError};
use crate::record::Record;

/// When a created stream lets go of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retention {
    /// Until a limit (age, size) is reached: the default, and what several
    /// independent consumers (ingest, analytics) need.
    #[default]
    Limits,
    /// Once every consumer acknowledged them.
    Interest,
    /// Once one consumer acknowledged them (the stream is the ingest's queue).
    WorkQueue,
}

/// Options of a [`Nats`] sink.
///
/// ```no_run
/// # fn main() -> Result<(), audit_runtime::sinks::SinkError> {
/// use std::time::Duration;
/// use audit_runtime::sinks::{Nats, Retention};
/// let sink = Nats::options()
///     .stream("AUDIT")
///     .subject_prefix("audit")        // audit.<tenant>.<category>.<event>
///     .retention(Retention::WorkQueue)
///     .replicas(3)
///     .max_age(Duration::from_secs(7 * 86_400))
///     .connect("nats://127.0.0.1:4222")?;
/// # let _ = sink; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct NatsOptions {
    stream: String,
    prefix: String,
    create: bool,
    retention: Retention,
    replicas: usize,
    max_age: Duration,
    duplicate_window: Duration,
    ack_timeout: Duration,
    per_message: usize,
    name: String,
    connection: NatsConnection,
}

impl Default for NatsOptions {
    fn default() -> Self {
        NatsOptions {
            stream: "AUDIT".into(),
            prefix: "audit".into(),
            create: true,
            retention: Retention::Limits,
            replicas: 1,
            max_age: Duration::ZERO,
            duplicate_window: Duration::from_secs(120),
            ack_timeout: Duration::from_secs(5),
            per_message: 1,
            name: "nats".into(),
            connection: NatsConnection::default(),
        }
    }
}

impl NatsOptions {
    /// The stream's name (default `AUDIT`).
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.stream = name.into();
        self
    }

    /// The first token of every subject (default `audit`): records go to
    /// `<prefix>.<tenant>.<category>.<event>` (tenant `_` when none).
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Whether to create the stream if it does not exist (default yes).
    pub fn create_stream(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Retention of a created stream (default [`Retention::Limits`]).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Replicas of a created stream (default 1).
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n.max(1);
        self
    }

    /// How long a created stream keeps records (default: until removed by limits).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// How long the stream remembers record ids to drop duplicates (default 2 min):
    /// longer than the pipeline's longest retry.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// How long to wait for the stream's acknowledgement of a batch (default 5 s).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// Up to `n` records of one subject in one message, one per line (default 1: a
    /// message is one record's JSON). Each message costs the stream a store, an
    /// acknowledgement to the sink and one to the ingest, so records sent together
    /// cost it a fraction of that: the distributed path's throughput depends on it
    /// (`BENCHMARKS.md`). A message stays under the server's `max_payload`.
    ///
    /// Upgrade every `audit ingest` reading the stream before a producer sends such
    /// messages: an ingest from before this option keeps them as dead letters. A
    /// subscriber of your own reads a message as JSON Lines.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), audit_runtime::sinks::SinkError> {
    /// let sink = audit_runtime::sinks::Nats::options()
    ///     .records_per_message(100)
    ///     .connect("nats://127.0.0.1:4222")?;
    /// # let _ = sink; Ok(()) }
    /// ```
    pub fn records_per_message(mut self, n: usize) -> Self {
        self.per_message = n.max(1);
        self
    }

    /// TLS and credentials (see [`NatsConnection`]).
    pub fn connection(mut self, connection: NatsConnection) -> Self {
        self.connection = connection;
        self
    }

    /// The sink's name in metrics and spool paths (default `nats`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Connects, and creates the stream if asked and missing.
    pub fn connect(self, url: &str) -> Result<Nats, SinkError> {
        // A worker thread keeps the connection serviced between batches.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| SinkError::permanent(format!("nats: no runtime: {e}")))?;
        let (js, max_payload) = rt.block_on(async {
            let client = self.connection.connect(url).await?;
            let max_payload = client.server_info().max_payload;
            let js = jetstream::new(client);
            if self.create {
                js.get_or_create_stream(stream::Config {
                    name: self.stream.clone(),
                    subjects: vec![format!("{}.>", self.prefix)],
                    num_replicas: self.replicas,
                    retention: match self.retention {
                        Retention::Limits => stream::RetentionPolicy::Limits,
                        Retention::Interest => stream::RetentionPolicy::Interest,
                        Retention::WorkQueue => stream::RetentionPolicy::WorkQueue,
                    },
                    max_age: self.max_age,
                    duplicate_window: self.duplicate_window,
                    ..Default::default()
                })
                .await
                .map_err(|e| {
                    SinkError::permanent(format!("nats: cannot create stream {}: {e}", self.stream))
                })?;
            }
            Ok::<_, SinkError>((js, max_payload))
        })?;
        Ok(Nats {
            rt,
            js,
            // Room for the headers: the limit is the whole message's.
            max_bytes: max_payload.saturating_sub(HEADER_ROOM).max(HEADER_ROOM),
            options: self,
        })
    }
}

/// What a message's headers may take of the server's `max_payload`.
const HEADER_ROOM: usize = 1024;

/// Publishes records to a JetStream stream and counts a batch delivered only when
/// the stream acknowledged every message of it. Retried batches are de-duplicated by
/// the stream (`Nats-Msg-Id` = record id, or first id and count, within the duplicate
/// window). `audit ingest` moves the stream into a store.
pub struct Nats {
    rt: tokio::runtime::Runtime,
    js: jetstream::Context,
    /// The largest payload of a message of several records.
    max_bytes: usize,
    options: NatsOptions,
}

impl std::fmt::Debug for Nats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nats")
            .field("options", &self.options)
            .finish()
    }
}

/// A subject token: NATS separators and wildcards become `_`.
fn token(s: &str) -> String {
    if s.is_empty() {
        return "_".into();
    }
    s.chars()
        .map(|c| match c {
            '.' | '*' | '>' | ' ' | '\t' | '\r' | '\n' => '_',
            c => c,
        })
        .collect()
}

impl Nats {
    /// Connects with default options (stream `AUDIT`, subjects `audit.>`).
    pub fn connect(url: &str) -> Result<Nats, SinkError> {
        NatsOptions::default().connect(url)
    }

    /// Options for connecting.
    pub fn options() -> NatsOptions {
        NatsOptions::default()
    }

    /// The subject a record is published on.
    pub fn subject(&self, record: &Record) -> String {
        format!(
            "{}.{}.{}.{}",
            self.options.prefix,
            token(record.context.tenant.as_deref().unwrap_or("_")),
            token(&record.category),
            token(&record.event)
        )
    }
}

impl Sink for Nats {
    fn name(&self) -> &str {
        &self.options.name
    }

    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        let timeout = self.options.ack_timeout;
        let messages = message::messages(
            batch,
            |record| self.subject(record),
            self.options.per_message,
            self.max_bytes,
        );
        // A record the server cannot take is refused before anything is published:
        // the pipeline narrows the batch down to it and keeps it as a dead letter.
        if let Some(large) = messages.iter().find(|m| m.payload.len() > self.max_bytes) {
            return Err(SinkError::permanent(format!(
                "nats: record {} takes {} bytes, more than the server's max_payload less {HEADER_ROOM} for headers ({})",
                large.id,
                large.payload.len(),
                self.max_bytes
            )));
        }
        let mut pending = Vec::with_capacity(messages.len());
        self.rt.block_on(async {
            for message in messages {
                let mut headers = HeaderMap::new();
                headers.insert(NATS_MESSAGE_ID, message.id);
                let ack = self
                    .js
                    .publish_with_headers(message.subject, headers, message.payload)
                    .await
                    .map_err(|e| SinkError::retryable(format!("nats: publish: {e}")))?;
                pending.push(ack);
            }
            for ack in pending {
                match tokio::time::timeout(timeout, ack.into_future()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(SinkError::retryable(format!("nats: no ack: {e}"))),
                    Err(_) => {
                        return Err(SinkError::retryable(format!(
                            "nats: no ack within {timeout:?}"
                        )));
                    }
                }
            }
            Ok(())
        })
    }

    fn health(&mut self) -> Result<(), SinkError> {
        let stream = self.options.stream.clone();
        self.rt.block_on(async {
            self.js
                .get_stream(&stream)
                .await
                .map(drop)
                .map_err(|e| SinkError::retryable(format!("nats: stream {stream}: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::token;

    #[test]
    fn subject_tokens_never_split_or_match() {
        assert_eq!(token("acme.eu"), "acme_eu");
        assert_eq!(token("a*b>c d"), "a_b_c_d");
        assert_eq!(token(""), "_");
    }
}
