//! One mechanism for per-thread values that follow a scope or a future: the ambient
//! [`Context`](crate::Context) and the local dispatcher both use it.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::thread::LocalKey;

/// A thread-local slot holding a shared value.
pub(crate) type Slot<T> = LocalKey<RefCell<Option<Arc<T>>>>;

/// Sets a slot until dropped, then restores what it held (also when unwinding).
pub(crate) struct Entered<T: ?Sized + 'static> {
    slot: &'static Slot<T>,
    previous: Option<Arc<T>>,
}

impl<T: ?Sized + 'static> Entered<T> {
    pub(crate) fn enter(slot: &'static Slot<T>, value: Option<Arc<T>>) -> Self {
        Entered {
            slot,
            previous: slot.with(|s| s.replace(value)),
        }
    }
}

impl<T: ?Sized + 'static> Drop for Entered<T> {
    fn drop(&mut self) {
        let previous = self.previous.take();
        self.slot.with(|s| *s.borrow_mut() = previous);
    }
}

/// The value a slot holds on this thread.
pub(crate) fn get<T: ?Sized + 'static>(slot: &'static Slot<T>) -> Option<Arc<T>> {
    slot.with(|s| s.borrow().clone())
}

/// A future that sets a slot on every poll and restores it after, whichever thread
/// polls it (as `tracing`'s `Instrument` does for spans).
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Scoped<F, T: ?Sized + 'static> {
    inner: F,
    slot: &'static Slot<T>,
    value: Option<Arc<T>>,
}

impl<F, T: ?Sized + 'static> Scoped<F, T> {
    pub(crate) fn new(inner: F, slot: &'static Slot<T>, value: Option<Arc<T>>) -> Self {
        Scoped { inner, slot, value }
    }
}

impl<F: Future, T: ?Sized + 'static> Future for Scoped<F, T> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned: it is never moved out of `self`, and
        // `Scoped` implements neither `Drop` nor `Unpin` by hand.
        let this = unsafe { self.get_unchecked_mut() };
        let _entered = Entered::enter(this.slot, this.value.clone());
        unsafe { Pin::new_unchecked(&mut this.inner) }.poll(cx)
    }
}
