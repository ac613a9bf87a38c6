//! How the benches measure (shared by the pipeline and store benches and the
//! distributed one): memory warmed before the first measurement, medians of rounds.
//!
//! On a virtual machine the host backs a guest page with memory the first time the
//! guest touches it: here that cost ~2.7 ms per MiB (6 GiB in 16.5 s), paid by
//! whichever variant first needs that much memory for its records or for the page
//! cache of its files. A fresh machine's first round then ran the index-free SQLite
//! write at 105 k rows/s and its third at 203 k (system time 9.3 → 3.3 µs per row);
//! after 6 GiB had been touched once, the three rounds gave 198, 192 and 203 k. So
//! each bench touches `WARM_MIB` (default: its own estimate of what the run uses)
//! once, before the first measurement, and frees it: the kernel hands the same,
//! now backed, pages out again.

#![allow(dead_code)] // each bench uses part of it

use std::time::Instant;

/// The median of `values` (the mean of the middle two for an even count: with two
/// rounds, not the better one). NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Touches `default_mib` MiB (or `WARM_MIB` from the environment; 0 skips) one byte
/// per page, frees it, and says on stderr how long that took.
pub fn warm_memory(default_mib: usize) {
    let mib = std::env::var("WARM_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_mib);
    if mib == 0 {
        return;
    }
    let start = Instant::now();
    let mut block = Vec::<u8>::with_capacity(mib << 20);
    // SAFETY: the capacity is `mib << 20` bytes; each write is inside it, and the
    // bytes are never read as initialized values (the Vec's length stays 0).
    unsafe {
        let base = block.as_mut_ptr();
        for page in (0..mib << 20).step_by(4096) {
            base.add(page).write_volatile(1);
        }
    }
    drop(block);
    eprintln!(
        "memory warm-up: {mib} MiB touched in {:.1} s (WARM_MIB=0 skips it)",
        start.elapsed().as_secs_f64()
    );
}
