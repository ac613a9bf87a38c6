//! Where emitted events go: the thread's local dispatcher (a test capture, or a
//! pipeline set with [`with_dispatch`]), else the process-wide one, else nowhere
//! (counted and warned about once: never a panic, never a block).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::scoped;

// What a dispatcher receives, and what it is made of: for those who write one.
pub use crate::entity::EntityPart;
pub use crate::event::{Event, Outcome};
pub use crate::spec::{EventSpec, FieldSpec, Site};
pub use crate::value::Value;

/// Why an event could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryError {
    /// No dispatcher is installed.
    NoDispatcher,
    /// The pipeline has shut down.
    Closed,
    /// The queue was full and the overflow policy dropped the event.
    Dropped,
    /// A `sync` event was not committed by every primary sink; says which and why.
    NotCommitted(String),
    /// A `sync` event was not committed within the wait limit.
    Timeout,
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryError::NoDispatcher => f.write_str("no audit logger is installed"),
            DeliveryError::Closed => f.write_str("the audit pipeline has shut down"),
            DeliveryError::Dropped => {
                f.write_str("the audit queue was full and the event was dropped")
            }
            DeliveryError::NotCommitted(why) => {
                write!(f, "the audit event was not committed: {why}")
            }
            DeliveryError::Timeout => f.write_str("the audit event was not committed in time"),
        }
    }
}

impl std::error::Error for DeliveryError {}

/// Receives every emitted event. The delivery pipeline implements it; so does the
/// test capture; so can a user who routes events themselves.
///
/// ```
/// use audit_runtime::{Dispatch, Event, dispatch::DeliveryError};
/// struct Discard;
/// impl Dispatch for Discard {
///     fn dispatch(&self, _event: Event) -> Result<(), DeliveryError> {
///         Ok(())
///     }
/// }
/// ```
pub trait Dispatch: Send + Sync + 'static {
    /// Takes one event. Called on the emitting thread: no I/O, nothing but a bounded
    /// hand-off, except for `sync` events, which return once committed (or not).
    fn dispatch(&self, event: Event) -> Result<(), DeliveryError>;

    /// Delivers everything taken so far; `false` if that did not finish in time.
    fn flush(&self) -> bool {
        true
    }

    /// Takes one event of several whose commits the caller waits for together (the
    /// records of a bulk call): a `sync` event is queued and its commit waited for
    /// by [`Deferred::wait`], so that the records share commits instead of each
    /// waiting for its own. By default, [`Dispatch::dispatch`] at once.
    fn dispatch_deferred(&self, event: Event) -> Deferred {
        Deferred::done(self.dispatch(event))
    }
}

/// The delivery of an event taken by [`Dispatch::dispatch_deferred`], to wait for.
///
/// ```
/// use audit_runtime::dispatch::Deferred;
/// assert!(Deferred::done(Ok(())).wait().is_ok());
/// ```
#[must_use = "wait for it to know whether the event was committed"]
pub struct Deferred(DeferredState);

enum DeferredState {
    Done(Result<(), DeliveryError>),
    Waiting {
        done: crossbeam_channel::Receiver<Result<(), DeliveryError>>,
        limit: std::time::Instant,
    },
}

impl Deferred {
    /// A delivery already decided.
    pub fn done(result: Result<(), DeliveryError>) -> Deferred {
        Deferred(DeferredState::Done(result))
    }

    /// A delivery answered on `done`, given up at `limit`.
    pub(crate) fn waiting(
        done: crossbeam_channel::Receiver<Result<(), DeliveryError>>,
        limit: std::time::Instant,
    ) -> Deferred {
        Deferred(DeferredState::Waiting { done, limit })
    }

    /// Waits for the delivery (at most until its limit).
    pub fn wait(self) -> Result<(), DeliveryError> {
        match self.0 {
            DeferredState::Done(result) => result,
            DeferredState::Waiting { done, limit } => done
                .recv_deadline(limit)
                .unwrap_or(Err(DeliveryError::Timeout)),
        }
    }
}

static GLOBAL: OnceLock<Arc<dyn Dispatch>> = OnceLock::new();
static UNDELIVERED: AtomicU64 = AtomicU64::new(0);
static WARNED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static LOCAL: RefCell<Option<Arc<dyn Dispatch>>> = const { RefCell::new(None) };
}

/// The dispatcher was already set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlreadySet;

impl fmt::Display for AlreadySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an audit dispatcher is already installed in this process")
    }
}

impl std::error::Error for AlreadySet {}

/// Installs the process-wide dispatcher. Like `tracing`'s global default, it can be
/// set once per process.
pub fn set_global(dispatch: impl Dispatch) -> Result<(), AlreadySet> {
    set_global_arc(Arc::new(dispatch))
}

pub(crate) fn set_global_arc(dispatch: Arc<dyn Dispatch>) -> Result<(), AlreadySet> {
    GLOBAL.set(dispatch).map_err(|_| AlreadySet)
}

/// The process-wide dispatcher, if one is installed.
pub fn global() -> Option<&'static dyn Dispatch> {
    GLOBAL.get().map(|b| &**b)
}

/// Counts events that reached no sink (an outbox scope's unwritten records).
pub(crate) fn count_undelivered(n: u64) {
    UNDELIVERED.fetch_add(n, Ordering::Relaxed);
}

/// How many events were emitted with no dispatcher to take them.
pub fn undelivered() -> u64 {
    UNDELIVERED.load(Ordering::Relaxed)
}

/// Runs `f` with `dispatch` taking this thread's events instead of the global one.
///
/// ```
/// use std::sync::Arc;
/// use audit_runtime::{Dispatch, Event, dispatch::DeliveryError};
/// struct Discard;
/// impl Dispatch for Discard {
///     fn dispatch(&self, _: Event) -> Result<(), DeliveryError> { Ok(()) }
/// }
/// audit_runtime::dispatch::with_dispatch(Arc::new(Discard), || { /* emit here */ });
/// ```
pub fn with_dispatch<R>(dispatch: Arc<dyn Dispatch>, f: impl FnOnce() -> R) -> R {
    let _local = scoped::Entered::enter(&LOCAL, Some(dispatch));
    f()
}

/// A future whose events go to a given dispatcher: see [`WithDispatchExt`].
pub type WithDispatch<F> = scoped::Scoped<F, dyn Dispatch>;

/// Routes a future's events to a dispatcher on every poll, whichever thread polls.
pub trait WithDispatchExt: Future + Sized {
    /// This future, with its events going to `dispatch`.
    fn with_dispatch(self, dispatch: Arc<dyn Dispatch>) -> WithDispatch<Self> {
        scoped::Scoped::new(self, &LOCAL, Some(dispatch))
    }
}

impl<F: Future> WithDispatchExt for F {}

/// This thread's local dispatcher, if one is set (what an outbox scope hands its
/// failures back to).
pub(crate) fn local() -> Option<Arc<dyn Dispatch>> {
    scoped::get(&LOCAL)
}

/// Hands an event to `local` if given, else the global dispatcher.
pub(crate) fn emit_to(
    local: Option<&Arc<dyn Dispatch>>,
    event: Event,
) -> Result<(), DeliveryError> {
    match (local, GLOBAL.get()) {
        (Some(l), _) => l.dispatch(event),
        (None, Some(g)) => g.dispatch(event),
        (None, None) => Err(lost(&event)),
    }
}

/// Hands an event to the local dispatcher, else the global one.
pub fn emit(event: Event) -> Result<(), DeliveryError> {
    let event = match scoped::get(&LOCAL) {
        Some(local) => return local.dispatch(event),
        None => event,
    };
    match GLOBAL.get() {
        Some(d) => d.dispatch(event),
        None => Err(lost(&event)),
    }
}

/// Hands an event to the local dispatcher, else the global one, through
/// [`Dispatch::dispatch_deferred`].
pub(crate) fn emit_deferred(event: Event) -> Deferred {
    let event = match scoped::get(&LOCAL) {
        Some(local) => return local.dispatch_deferred(event),
        None => event,
    };
    match GLOBAL.get() {
        Some(d) => d.dispatch_deferred(event),
        None => Deferred::done(Err(lost(&event))),
    }
}

/// Flushes the dispatcher this thread emits to; `false` if it did not finish in time.
pub fn flush() -> bool {
    match scoped::get(&LOCAL) {
        Some(local) => local.flush(),
        None => GLOBAL.get().is_none_or(|d| d.flush()),
    }
}

#[cold]
fn lost(event: &Event) -> DeliveryError {
    UNDELIVERED.fetch_add(1, Ordering::Relaxed);
    if !WARNED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "audit: event `{}` emitted at {}:{} but no audit logger is installed; \
             it is counted as undelivered (install one with audit::Auditor::builder()...install())",
            event.spec().name,
            event.site().file,
            event.site().line
        );
    }
    DeliveryError::NoDispatcher
}
