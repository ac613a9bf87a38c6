//! Assert on what a piece of code emitted, without installing a global logger.
//!
//! A capture is a local dispatcher (see [`crate::dispatch::with_dispatch`]) scoped to
//! the current thread, and for the async form to the future whichever thread polls
//! it, so parallel tests never see each other's events. Events emitted on other
//! threads or in spawned tasks are not captured.

use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::dispatch::{DeliveryError, Dispatch, WithDispatchExt, with_dispatch};
use crate::event::Event;
use crate::record::Record;

#[derive(Default)]
struct Capture(Mutex<Vec<Record>>);

impl Dispatch for Capture {
    fn dispatch(&self, event: Event) -> Result<(), DeliveryError> {
        let record = Record::from_event(&event);
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record);
        Ok(())
    }
}

impl Capture {
    fn take(&self) -> Vec<Record> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Runs `f` and returns the records it emitted, in order.
///
/// ```
/// let records = audit_runtime::testing::capture(|| {});
/// assert!(records.is_empty());
/// ```
pub fn capture(f: impl FnOnce()) -> Vec<Record> {
    capture_with(f).1
}

/// Runs `f` and returns its value and the records it emitted, in order.
pub fn capture_with<R>(f: impl FnOnce() -> R) -> (R, Vec<Record>) {
    let sink = Arc::new(Capture::default());
    let value = with_dispatch(sink.clone(), f);
    (value, sink.take())
}

/// Runs a future to completion on the caller's executor and returns its output and
/// the records it emitted, in order, across `.await`s and thread hops.
///
/// ```
/// # async fn demo() {
/// let (value, records) = audit_runtime::testing::capture_async(async { 7 }).await;
/// assert_eq!((value, records.len()), (7, 0));
/// # }
/// ```
pub async fn capture_async<F: Future>(fut: F) -> (F::Output, Vec<Record>) {
    let sink = Arc::new(Capture::default());
    let value = fut.with_dispatch(sink.clone()).await;
    (value, sink.take())
}
