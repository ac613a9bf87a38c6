//! The relay: committed outbox rows into a store or sink, exactly once, chained as
//! they are delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::OutboxError;
use crate::integrity::{Chain, ChainHash};
use crate::record::Record;
use crate::sinks::{Item, Sink};

/// One committed row of the outbox.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Its position in the outbox (write order).
    pub seq: i64,
    /// The process (or scope) that wrote it.
    pub producer: String,
    /// The record's JSON, unchained.
    pub json: String,
}

/// What a relay does with one batch: link the rows after the chain head and write
/// them to the target; the new head once the target committed them.
pub type Deliver<'a> =
    dyn FnMut(Option<ChainHash>, &[OutboxRow]) -> Result<Option<ChainHash>, OutboxError> + 'a;

/// An outbox a relay reads: a database holding `audit_outbox` (`PostgresOutbox`
/// with the `postgres` feature, `SqliteOutbox` with `sqlite`).
pub trait OutboxSource: Send {
    /// In one transaction of the outbox's database: takes the next rows to deliver
    /// (at most `n`, of one producer, in write order, held so that no other relay
    /// takes them) and the chain head of relay `relay`; hands both to `deliver`,
    /// which returns the new head once the target committed the rows; then deletes
    /// the rows and stores the head, committing both. If `deliver` fails, nothing
    /// changes. Returns how many rows were delivered (0: none waiting).
    fn relay_batch(
        &mut self,
        relay: &str,
        n: usize,
        deliver: &mut Deliver<'_>,
    ) -> Result<usize, OutboxError>;
}

/// What a relay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Rows delivered and removed from the outbox.
    pub delivered: u64,
    /// Batches committed.
    pub batches: u64,
}

/// Moves committed outbox rows into a target sink (a store), exactly once.
///
/// Each batch: the rows are read and held in the outbox's database, linked into
/// this relay's chain (its head is kept in `audit_outbox_relay`, so a restarted
/// relay goes on where it stopped), written to the target, and only after the
/// target committed them deleted from the outbox with the new head. A crash
/// between the two leaves the rows in the outbox; the next run links them again
/// from the same head, into the same hashes, and the target skips the ids it
/// already holds. Several relays may run at once: each takes the rows of a
/// producer no other relay holds, so every producer's rows arrive in write order.
/// Give each relay its own [`Relay::name`] (its own chain) to let them work in
/// parallel.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// # let dir = tempfile::tempdir().unwrap();
/// use audit_runtime::outbox::{Relay, sqlite::SqliteOutbox};
/// use audit_runtime::store::Sqlite;
/// let outbox = SqliteOutbox::open(dir.path().join("app.db")).unwrap();
/// let store = Sqlite::open(dir.path().join("audit.db")).unwrap();
/// let mut relay = Relay::new(outbox, store).name("relay-1");
/// assert_eq!(relay.drain().unwrap().delivered, 0);
/// # }
/// ```
pub struct Relay<S: OutboxSource> {
    source: S,
    target: Box<dyn Sink>,
    name: String,
    batch: usize,
}

impl<S: OutboxSource> Relay<S> {
    /// A relay from `source` into `target`, named `relay`, 500 rows a batch.
    pub fn new(source: S, target: impl Sink) -> Self {
        Self::with_target(source, Box::new(target))
    }

    /// [`Relay::new`] with a target chosen at run time.
    pub fn with_target(source: S, target: Box<dyn Sink>) -> Self {
        Relay {
            source,
            target,
            name: "relay".into(),
            batch: 500,
        }
    }

    /// Names the relay: its chain and its count in `audit_outbox_relay`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Rows per batch (at least 1).
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// Delivers one batch; how many rows (0: the outbox is empty).
    pub fn run_once(&mut self) -> Result<usize, OutboxError> {
        let target = &mut self.target;
        self.source
            .relay_batch(&self.name, self.batch, &mut |head, rows| {
                deliver(&mut **target, head, rows)
            })
    }

    /// Delivers until the outbox is empty.
    pub fn drain(&mut self) -> Result<RelayReport, OutboxError> {
        let mut report = RelayReport::default();
        loop {
            match self.run_once()? {
                0 => return Ok(report),
                n => {
                    report.delivered += n as u64;
                    report.batches += 1;
                }
            }
        }
    }

    /// Delivers as rows commit, looking every `interval` when the outbox is empty,
    /// until `stop` is set. A batch the target refused (or panicked on) is retried
    /// after `interval` (the rows stay in the outbox); other errors end the run.
    pub fn run(
        &mut self,
        interval: Duration,
        stop: &AtomicBool,
    ) -> Result<RelayReport, OutboxError> {
        let mut report = RelayReport::default();
        while !stop.load(Ordering::Relaxed) {
            match self.run_once() {
                Ok(0) => std::thread::sleep(interval),
                Ok(n) => {
                    report.delivered += n as u64;
                    report.batches += 1;
                }
                Err(OutboxError::Target(why)) => {
                    eprintln!("audit relay: {why}; retrying in {interval:?}");
                    std::thread::sleep(interval);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }
}

/// Links `rows` after `head` and writes them to `target`; the new head.
fn deliver(
    target: &mut dyn Sink,
    head: Option<ChainHash>,
    rows: &[OutboxRow],
) -> Result<Option<ChainHash>, OutboxError> {
    let mut chain = Chain::resume(head);
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let mut record: Record =
            serde_json::from_str(&row.json).map_err(|e| OutboxError::Corrupt {
                seq: row.seq,
                message: e.to_string(),
            })?;
        let json = chain.link(&mut record);
        let name: Arc<str> = Arc::from(&*record.event);
        items.push(Item::with_json(record, json, name));
    }
    // A target that panics is a refused batch, as in the pipeline: the outbox
    // transaction rolls back, the rows stay for the next run.
    let written = crate::panic::catch(|| target.write(&items).and_then(|()| target.flush()));
    match written {
        Ok(Ok(())) => Ok(chain.last()),
        Ok(Err(e)) => Err(OutboxError::Target(e.to_string())),
        Err(panic) => Err(OutboxError::Target(format!(
            "the target `{}` panicked: {panic}",
            target.name()
        ))),
    }
}
