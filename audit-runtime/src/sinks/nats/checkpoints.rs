//! Signed checkpoints kept in a JetStream key-value bucket: a witness outside the
//! database, replicated by NATS, with a history per store.

use async_nats::jetstream::{self, kv};

use futures_util::StreamExt;

use crate::sinks::SinkError;
use crate::store::Checkpoint;

/// A JetStream key-value bucket holding each store's signed checkpoints under the
/// key `checkpoint.<store id>`, the last `history` of them kept (at most 64, NATS's
/// limit). Give [`CheckpointBucket::publish`] to a
/// [`checkpoint::Publisher`](crate::store::checkpoint::Publisher).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # #[cfg(feature = "postgres")] {
/// use std::time::Duration;
/// use audit_runtime::sinks::CheckpointBucket;
/// use audit_runtime::store::{checkpoint::Publisher, CheckpointKey, Postgres};
/// let bucket = CheckpointBucket::connect("nats://127.0.0.1:4222", "AUDIT_CHECKPOINTS", 64)?;
/// let publisher = Publisher::spawn(
///     || Postgres::connect("postgres://audit_reader@127.0.0.1/test"),
///     CheckpointKey::read("/run/secrets/audit-checkpoint.key".as_ref())?,
///     Duration::from_secs(3600),
///     bucket.publish(),
/// );
/// # publisher.stop(); }
/// # Ok(()) }
/// ```
pub struct CheckpointBucket {
    rt: std::sync::Arc<tokio::runtime::Runtime>,
    kv: kv::Store,
}

impl std::fmt::Debug for CheckpointBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointBucket").finish_non_exhaustive()
    }
}

impl CheckpointBucket {
    /// Connects, creating the bucket if it is missing.
    pub fn connect(url: &str, bucket: &str, history: i64) -> Result<Self, SinkError> {
        Self::connect_with(&super::NatsConnection::default(), url, bucket, history)
    }

    /// [`CheckpointBucket::connect`] with TLS and credentials.
    pub fn connect_with(
        connection: &super::NatsConnection,
        url: &str,
        bucket: &str,
        history: i64,
    ) -> Result<Self, SinkError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| SinkError::permanent(format!("nats: no runtime: {e}")))?;
        let kv = rt.block_on(async {
            let client = connection.connect(url).await?;
            let js = jetstream::new(client);
            // The bucket's stream, made by hand with the key-value conventions
            // (`KV_<bucket>`, subjects `$KV.<bucket>.>`, one subject per key keeping
            // `history` messages): the client's own `create_key_value` sends fields
            // that servers before 2.10 refuse.
            js.get_or_create_stream(jetstream::stream::Config {
                name: format!("KV_{bucket}"),
                description: Some("signed checkpoints of audit stores".into()),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: history.clamp(1, 64),
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: jetstream::stream::DiscardPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                SinkError::permanent(format!("nats: cannot create bucket {bucket}: {e}"))
            })?;
            js.get_key_value(bucket).await.map_err(|e| {
                SinkError::permanent(format!("nats: cannot open bucket {bucket}: {e}"))
            })
        })?;
        Ok(CheckpointBucket {
            rt: std::sync::Arc::new(rt),
            kv,
        })
    }

    /// The key of a store's checkpoints.
    pub fn key(store: &str) -> String {
        format!("checkpoint.{store}")
    }

    /// Puts one signed checkpoint; its revision in the bucket.
    pub fn put(&self, checkpoint: &Checkpoint, text: &str) -> Result<u64, SinkError> {
        let key = Self::key(&checkpoint.store);
        self.rt.block_on(async {
            self.kv
                .put(&key, text.to_string().into())
                .await
                .map_err(|e| SinkError::retryable(format!("nats: checkpoint not stored: {e}")))
        })
    }

    /// A `publish` for [`checkpoint::Publisher`](crate::store::checkpoint::Publisher).
    pub fn publish(self) -> impl FnMut(&Checkpoint, &str) -> Result<(), String> + Send + 'static {
        move |cp, text| self.put(cp, text).map(drop).map_err(|e| e.to_string())
    }

    /// The signed checkpoints the bucket keeps for `store`, oldest first.
    pub fn history(&self, store: &str) -> Result<Vec<String>, SinkError> {
        let key = Self::key(store);
        self.rt.block_on(async {
            let fail = |e: String| SinkError::retryable(format!("nats: checkpoint history: {e}"));
            let mut entries = self
                .kv
                .history(&key)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let mut out = Vec::new();
            while let Some(entry) = entries.next().await {
                let entry = entry.map_err(|e| fail(e.to_string()))?;
                out.push(String::from_utf8_lossy(&entry.value).into_owned());
            }
            Ok(out)
        })
    }
}
