//! Counters of the pipeline and of each sink.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub spooled: AtomicU64,
    pub replayed: AtomicU64,
    pub failed: AtomicU64,
    pub corrupt: AtomicU64,
}

pub(crate) fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// One sink's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkMetrics {
    /// The sink's name.
    pub name: String,
    /// Records written (first try, retried or replayed).
    pub delivered: u64,
    /// Batch writes retried.
    pub retried: u64,
    /// Records written to the spool.
    pub spooled: u64,
    /// Records replayed from the spool.
    pub replayed: u64,
    /// Records the sink refused permanently (kept in the spool's `dead` directory).
    pub failed: u64,
    /// Corrupt spool tails met during replay.
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
            failed: get(&c.failed),
            corrupt: get(&c.corrupt),
        }
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
    /// Per sink.
    pub sinks: Vec<SinkMetrics>,
}

impl Metrics {
    /// The counters of the sink called `name`.
    pub fn sink(&self, name: &str) -> Option<&SinkMetrics> {
        self.sinks.iter().find(|s| s.name == name)
    }
}
