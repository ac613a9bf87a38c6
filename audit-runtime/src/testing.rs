//! Assert on what a piece of code emitted, without installing a global logger.
//!
//! A capture is scoped to the current thread (and, for the async form, to the
//! future, whichever thread polls it), so parallel tests never see each other's
//! events. Events emitted on other threads or in spawned tasks are not captured.

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::event::Event;
use crate::record::Record;

type Sink = Arc<Mutex<Vec<Record>>>;

thread_local! {
    static ACTIVE: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

struct Active {
    previous: Option<Sink>,
}

impl Active {
    fn enter(sink: Sink) -> Self {
        Active {
            previous: ACTIVE.with(|a| a.replace(Some(sink))),
        }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        let previous = self.previous.take();
        ACTIVE.with(|a| *a.borrow_mut() = previous);
    }
}

/// Takes the event if a capture is active on this thread; gives it back otherwise.
pub(crate) fn offer(event: Event) -> Option<Event> {
    ACTIVE.with(|a| match &*a.borrow() {
        Some(sink) => {
            let record = Record::from_event(&event);
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(record);
            None
        }
        None => Some(event),
    })
}

fn take(sink: &Sink) -> Vec<Record> {
    std::mem::take(&mut *sink.lock().unwrap_or_else(|p| p.into_inner()))
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
    let sink: Sink = Arc::default();
    let value = {
        let _active = Active::enter(Arc::clone(&sink));
        f()
    };
    (value, take(&sink))
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
    let sink: Sink = Arc::default();
    let value = Capturing {
        inner: fut,
        sink: Arc::clone(&sink),
    }
    .await;
    (value, take(&sink))
}

struct Capturing<F> {
    inner: F,
    sink: Sink,
}

impl<F: Future> Future for Capturing<F> {
    type Output = F::Output;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned and never moved out.
        let this = unsafe { self.get_unchecked_mut() };
        let _active = Active::enter(Arc::clone(&this.sink));
        unsafe { std::pin::Pin::new_unchecked(&mut this.inner) }.poll(cx)
    }
}
