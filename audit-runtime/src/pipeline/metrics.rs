//! Counters of the pipeline and of each sink. Every counter belongs to one pipeline
//! (one [`crate::Auditor`]): nothing carries over from an earlier run, and records
//! an earlier run left in a spool are counted apart (`recovered`).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub spooled: AtomicU64,
    pub replayed: AtomicU64,
    pub recovered: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub lost: AtomicU64,
    /// A gauge, not a count: records held in memory now.
    pub held: AtomicU64,
    pub panicked: AtomicU64,
    pub corrupt: AtomicU64,
}

pub(crate) fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// One sink's counters, for this pipeline's run.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use audit_runtime::{Auditor, sinks::JsonLines};
/// let auditor = Auditor::builder()
///     .sink(JsonLines::open(dir.path().join("audit.jsonl")).unwrap())
///     .spool_dir(dir.path().join("spool"))
///     .build()
///     .unwrap();
/// let m = auditor.metrics();
/// let sink = &m.sinks[0];
/// assert_eq!((sink.delivered, sink.undelivered(), sink.panicked), (0, 0, 0));
/// # auditor.shutdown();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkMetrics {
    /// The sink's name.
    pub name: String,
    /// Records of this run written (first try, retried or replayed from the spool).
    pub delivered: u64,
    /// Batch writes retried.
    pub retried: u64,
    /// Records of this run written to the spool.
    pub spooled: u64,
    /// Records of this run replayed from the spool (also counted in `delivered`).
    pub replayed: u64,
    /// Records an earlier run left in the spool, delivered by this one.
    pub recovered: u64,
    /// Records the sink refused for good, or that it panicked on: kept with the reason
    /// in the spool's `dead` directory.
    pub dead_lettered: u64,
    /// Records neither delivered nor kept, each loss also reported on standard error
    /// with its error: records still held in memory when the pipeline shut down (see
    /// `held`), or a damaged spooled record whose dead-letter write failed.
    pub lost: u64,
    /// Records held in memory now: the sink was down (or hung) and its spool could
    /// not be written (a full disk), or the sink refused them for good and the
    /// dead-letter spool could not be written. They are delivered, spooled or
    /// dead-lettered as soon as the sink or the disk takes them, in order;
    /// meanwhile the sink takes no more than a bounded number,
    /// so the wait reaches the callers through the queue instead of losing records.
    /// What is still held when [`Auditor::shutdown`](crate::Auditor::shutdown) gives
    /// up is counted in `lost`.
    pub held: u64,
    /// Panics of the sink caught by the pipeline (each one's batch is dead-lettered).
    pub panicked: u64,
    /// Damaged stretches of spool met during replay.
    pub corrupt: u64,
}

impl SinkMetrics {
    pub(crate) fn read(name: &str, c: &Counters) -> Self {
        SinkMetrics {
            name: name.to_owned(),
            delivered: get(&c.delivered),
            retried: get(&c.retried),
            spooled: get(&c.spooled),
            replayed: get(&c.replayed),
            recovered: get(&c.recovered),
            dead_lettered: get(&c.dead_lettered),
            lost: get(&c.lost),
            held: get(&c.held),
            panicked: get(&c.panicked),
            corrupt: get(&c.corrupt),
        }
    }

    /// Records of this run still waiting in the spool (replayed at the next start).
    pub fn undelivered(&self) -> u64 {
        self.spooled.saturating_sub(self.replayed)
    }

    /// Whether every record of this run that this sink took was delivered.
    pub fn is_clean(&self) -> bool {
        self.undelivered() == 0
            && self.dead_lettered == 0
            && self.lost == 0
            && self.held == 0
            && self.panicked == 0
    }
}

/// The pipeline's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    /// Events waiting in the queue now.
    pub queue_depth: usize,
    /// Events accepted into the queue.
    pub accepted: u64,
    /// Events dropped by `Overflow::DropNewest`.
    pub dropped: u64,
    /// Events written to the overflow spool by `Overflow::Spill`.
    pub spilled: u64,
    /// Events the spill could not keep (its spool write failed): refused to the caller
    /// with an error, never accepted.
    pub spill_failed: u64,
    /// Records whose building panicked (a bug): each was delivered as a failure record
    /// naming the panic, without its metadata.
    pub unbuilt: u64,
    /// Per sink.
    pub sinks: Vec<SinkMetrics>,
}

impl Metrics {
    /// The counters of the sink called `name`.
    pub fn sink(&self, name: &str) -> Option<&SinkMetrics> {
        self.sinks.iter().find(|s| s.name == name)
    }
}
