//! Heap allocations per event through the delivery pipeline (issue 6): the pipeline's
//! cost on this machine class is dominated by the allocator (allocations on one
//! thread, frees on another), so the count is tracked beside the timings.
//!
//! ```sh
//! cargo bench --bench allocations
//! ```
//!
//! The same 4-field event as `benches/pipeline.rs`, `#[audited]` into an `Auditor`
//! with one `JsonLines` sink; every allocation of every thread of the process is
//! counted over 100 000 events, after 1 000 to warm up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use audit::Auditor;
use audit::sinks::JsonLines;

/// The system allocator, counting.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(size as u64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[path = "support/app.rs"]
mod app;
use app::{App, launch};

fn counted(n: u64, f: impl FnOnce()) -> (f64, f64) {
    let (a, b) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    f();
    (
        (ALLOCATIONS.load(Ordering::Relaxed) - a) as f64 / n as f64,
        (BYTES.load(Ordering::Relaxed) - b) as f64 / n as f64,
    )
}

fn main() {
    // `cargo test --benches` passes other flags than `--bench`.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let auditor = Auditor::builder()
        .sink(JsonLines::open(dir.path().join("audit.jsonl")).unwrap())
        .spool_dir(dir.path().join("spool"))
        .build()
        .unwrap();
    let app = App::sample();
    let n = 100_000;
    let d: Arc<dyn audit::dispatch::Dispatch> = Arc::new(auditor.clone());
    let (allocations, bytes) = audit::dispatch::with_dispatch(d, || {
        for _ in 0..1_000 {
            launch(&app);
        }
        assert!(audit::flush());
        counted(n, || {
            for _ in 0..n {
                launch(&app);
            }
            assert!(audit::flush());
        })
    });
    assert!(auditor.shutdown().is_clean());
    println!("#[audited] -> Auditor -> JsonLines, {n} events");
    println!("allocations per event: {allocations:.2}");
    println!("bytes allocated per event: {bytes:.0}");
}
