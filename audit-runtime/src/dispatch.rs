//! Where emitted events go: an active test capture, else the installed dispatcher,
//! else nowhere (counted and warned about once, never a panic or a block).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::event::Event;

/// Receives every emitted event. The delivery pipeline implements it; so can a user
/// who wants to route events themselves.
///
/// ```
/// use audit_runtime::{Dispatch, Event};
/// struct Discard;
/// impl Dispatch for Discard {
///     fn dispatch(&self, _event: Event) {}
/// }
/// ```
pub trait Dispatch: Send + Sync + 'static {
    /// Takes one event. Called on the emitting thread: must not do I/O or block
    /// longer than a bounded hand-off.
    fn dispatch(&self, event: Event);

    /// Delivers everything taken so far.
    fn flush(&self) {}
}

static GLOBAL: OnceLock<Box<dyn Dispatch>> = OnceLock::new();
static UNDELIVERED: AtomicU64 = AtomicU64::new(0);
static WARNED: AtomicBool = AtomicBool::new(false);

/// The dispatcher was already set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlreadySet;

impl std::fmt::Display for AlreadySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an audit dispatcher is already installed in this process")
    }
}

impl std::error::Error for AlreadySet {}

/// Installs the process-wide dispatcher. Like `tracing`'s global default, it can be
/// set once per process.
pub fn set_global(dispatch: impl Dispatch) -> Result<(), AlreadySet> {
    GLOBAL.set(Box::new(dispatch)).map_err(|_| AlreadySet)
}

/// The process-wide dispatcher, if one is installed.
pub fn global() -> Option<&'static dyn Dispatch> {
    GLOBAL.get().map(|b| &**b)
}

/// How many events were emitted with no dispatcher installed and no capture active.
pub fn undelivered() -> u64 {
    UNDELIVERED.load(Ordering::Relaxed)
}

/// Hands an event to the active capture, else the dispatcher.
pub fn emit(event: Event) {
    let Some(event) = crate::testing::offer(event) else {
        return;
    };
    match GLOBAL.get() {
        Some(d) => d.dispatch(event),
        None => lost(&event),
    }
}

#[cold]
fn lost(event: &Event) {
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
}
