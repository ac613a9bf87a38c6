//! Early writeback of a file being appended to: each time enough new bytes were
//! written, the kernel is asked to start writing them to disk, without waiting
//! for it. The sync that follows (a flush, a rotation, the shutdown) then waits for
//! the last stretch only, and the disk works while the pipeline does. On the bench
//! machine of session 40 the final sync of a 147 MB file took 0.24-0.31 s after a
//! ~0.5 s run, and 0.15-0.19 s with writeback (`BENCHMARKS.md`).
//!
//! It is a hint: it neither promises the bytes are on disk nor reports the disk's
//! errors, which the next `sync_data` reports as it always would.

use std::fs::File;

/// Where a file's early writeback stands.
pub(super) struct Writeback {
    /// Start writing back once this many bytes are new; 0 never.
    pub(super) every: u64,
    /// The offset up to which writing back was started (or the file synced).
    started: u64,
}

impl Writeback {
    /// A file of `size` bytes, all of which count as written back.
    pub(super) fn new(every: u64, size: u64) -> Self {
        Writeback {
            every,
            started: size,
        }
    }

    /// The file now holds `size` bytes: starts writing back the new ones once
    /// there are `every` of them.
    pub(super) fn wrote(&mut self, file: &File, size: u64) {
        if self.every == 0 || size < self.started.saturating_add(self.every) {
            return;
        }
        start(file, self.started, size - self.started);
        self.started = size;
    }

    /// The file was synced (or replaced by a new one) at `size` bytes.
    pub(super) fn synced(&mut self, size: u64) {
        self.started = size;
    }
}

/// Asks the kernel to start writing `len` bytes from `offset` (Linux).
#[cfg(target_os = "linux")]
fn start(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    #[cfg(test)]
    tests::STARTED.with(|s| s.borrow_mut().push((offset, len)));
    // SAFETY: the descriptor is open for the borrow of `file`; the call reads no
    // memory of ours. Its result is a hint's: see the module doc.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start(_: &File, _: u64, _: u64) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::cell::RefCell;
    use std::io::Write;

    use super::Writeback;

    thread_local! {
        /// The ranges this thread asked to write back, in order.
        pub(super) static STARTED: RefCell<Vec<(i64, i64)>> = const { RefCell::new(Vec::new()) };
    }

    #[test]
    fn new_bytes_are_written_back_in_stretches_that_tile_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = std::fs::File::create(dir.path().join("f")).unwrap();
        file.write_all(&[b'x'; 100]).unwrap();
        let mut wb = Writeback::new(1000, 100);
        let mut size = 100;
        for _ in 0..25 {
            file.write_all(&[b'y'; 170]).unwrap();
            size += 170;
            wb.wrote(&file, size);
        }
        // 170 * 6 = 1020 >= 1000: a start every sixth write, from the open size on.
        let started = STARTED.with(|s| s.take());
        assert_eq!(
            started,
            [(100, 1020), (1120, 1020), (2140, 1020), (3160, 1020)]
        );
        // A sync counts everything as written back; the next start begins there.
        wb.synced(size);
        file.write_all(&[b'z'; 1000]).unwrap();
        wb.wrote(&file, size + 1000);
        assert_eq!(STARTED.with(|s| s.take()), [(size as i64, 1000)]);
    }

    #[test]
    fn zero_turns_writeback_off() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("f")).unwrap();
        let mut wb = Writeback::new(0, 0);
        wb.wrote(&file, u64::MAX);
        assert!(STARTED.with(|s| s.take()).is_empty());
    }
}
