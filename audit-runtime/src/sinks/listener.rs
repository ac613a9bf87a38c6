//! Your own code as a sink (the "DIY listeners" of the MnoEnterprise event logger).

use super::{Batch, Sink, SinkError};
use crate::record::Record;

/// Code that reacts to each record. Closures `FnMut(&Record, &str)` (record and its
/// published name) implement it.
pub trait Listen: Send + 'static {
    /// Called once per record, in order. A retryable error retries the batch (records
    /// already seen are offered again: use `record.id` to skip them).
    fn on_record(&mut self, record: &Record, name: &str) -> Result<(), SinkError>;
}

impl<F> Listen for F
where
    F: FnMut(&Record, &str) + Send + 'static,
{
    fn on_record(&mut self, record: &Record, name: &str) -> Result<(), SinkError> {
        self(record, name);
        Ok(())
    }
}

/// A sink that calls a [`Listen`] implementation (or a closure) for each record.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// let listener = audit_runtime::sinks::Listener::new("intercom", move |_r: &audit_runtime::Record, name: &str| {
///     s.lock().unwrap().push(name.to_owned());
/// });
/// # let _ = listener;
/// ```
pub struct Listener<L> {
    name: String,
    listen: L,
}

impl<L: Listen> Listener<L> {
    /// A listener called `name` (its metrics and spool name).
    pub fn new(name: impl Into<String>, listen: L) -> Self {
        Listener {
            name: name.into(),
            listen,
        }
    }
}

impl<L: Listen> Sink for Listener<L> {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        for item in batch {
            self.listen.on_record(item.record(), item.name())?;
        }
        Ok(())
    }
}
