//! A sealed segment's postings, made off the writer's thread after its seal.
//!
//! A seal from schema 8 on only closes its segment: until its postings are
//! written, a sealed segment *waits* (`keyed = 0`, read through its tail index as
//! the open segment is). Making them (a walk of the tail index, a hash map per
//! key kind, the blocks: ~13 of a seal's ~19 ms for 20 000 rows) was the one
//! stretch of the write where only the writer worked; here a thread with its own
//! read-only connection makes them from the committed rows while the next
//! batches are written, and the writer writes the blocks (~200 rows) at the start
//! of a later transaction, if the segment still waits.
//!
//! Blocks made from rows that changed since are never written: only a purge
//! changes a sealed segment's rows, and a purge makes the postings of a waiting
//! segment it touches in its own transaction, so that segment no longer waits
//! when the older blocks arrive. A build that fails or panics leaves its segment
//! waiting; it is asked for again after the next seal, by the next handle that
//! writes, or made by [`Sqlite::settle`](super::Sqlite::settle).

use std::collections::HashSet;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

use super::postings::{self, Blocks};

/// Blocks made for a segment table, or nothing when the build failed.
type Made = (String, Option<Blocks>);

/// The thread that makes postings, and the segments asked for and not yet back.
#[derive(Debug)]
pub(super) struct Later {
    requests: Option<Sender<String>>,
    made: Receiver<Made>,
    asked: HashSet<String>,
    thread: Option<JoinHandle<()>>,
}

impl Later {
    /// Starts the thread, with its own read-only connection to the store at `path`.
    pub(super) fn start(path: &Path) -> rusqlite::Result<Later> {
        #[cfg(test)]
        tests::fail_if_asked(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let (ask, requests) = channel::<String>();
        let (done, made) = channel();
        let thread = std::thread::Builder::new()
            .name("audit-sqlite-postings".into())
            .spawn(move || {
                for t in requests {
                    // The connection only reads: a panic drops its statement,
                    // and the next build starts afresh.
                    let blocks = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        #[cfg(test)]
                        tests::panic_if_asked(&conn);
                        postings::made(&conn, &t)
                    }));
                    let blocks = match blocks {
                        Ok(Ok(blocks)) => Some(blocks),
                        Ok(Err(e)) => {
                            eprintln!("audit: the postings of {t} are made later: {e}");
                            None
                        }
                        Err(_) => {
                            eprintln!("audit: making the postings of {t} panicked; made later");
                            None
                        }
                    };
                    if done.send((t, blocks)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Later {
            requests: Some(ask),
            made,
            asked: HashSet::new(),
            thread: Some(thread),
        })
    }

    /// Asks for the postings of segment table `t`, unless they are on their way.
    pub(super) fn ask(&mut self, t: &str) {
        if self.asked.insert(t.to_owned())
            && let Some(requests) = &self.requests
        {
            // The thread only stops when this handle drops.
            let _ = requests.send(t.to_owned());
        }
    }

    /// The blocks made since the last call, by segment table.
    pub(super) fn take(&mut self) -> Vec<(String, Blocks)> {
        let mut out = Vec::new();
        for (t, blocks) in self.made.try_iter() {
            self.asked.remove(&t);
            out.extend(blocks.map(|b| (t, b)));
        }
        out
    }
}

impl Drop for Later {
    /// Waits for the build under way (the others are dropped: their segments
    /// still wait, for the next handle that writes).
    fn drop(&mut self) {
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::PathBuf;
    use std::sync::Mutex;

    /// Stores whose postings builds panic, in test builds.
    pub(in crate::store::sqlite) static PANICS_FOR: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    /// Stores whose postings thread fails to start, and how often it was tried.
    pub(in crate::store::sqlite) static FAILS_TO_START: Mutex<Vec<(PathBuf, usize)>> =
        Mutex::new(Vec::new());

    pub(super) fn fail_if_asked(path: &std::path::Path) -> rusqlite::Result<()> {
        let path = path.canonicalize().ok();
        let mut asked = FAILS_TO_START.lock().unwrap_or_else(|p| p.into_inner());
        match asked.iter_mut().find(|(p, _)| Some(p) == path.as_ref()) {
            Some((_, tried)) => {
                *tried += 1;
                Err(rusqlite::Error::InvalidPath(path.unwrap_or_default()))
            }
            None => Ok(()),
        }
    }

    pub(super) fn panic_if_asked(conn: &rusqlite::Connection) {
        let path = conn.path().map(PathBuf::from);
        let asked = PANICS_FOR.lock().unwrap_or_else(|p| p.into_inner());
        if path.is_some_and(|p| asked.contains(&p)) {
            panic!("a panic injected into the thread that makes postings");
        }
    }

    /// `audit_segments.keyed` of segment `n` of the store at `path`.
    fn keyed(path: &std::path::Path, n: i64) -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("SELECT keyed FROM audit_segments WHERE n = ?1", [n], |r| {
                r.get(0)
            })
            .unwrap()
    }

    /// Writes `rows` one at a time, a few ms apart, until segments 0, 1 and 2 have
    /// their postings (in the one table); fails if `rows` run out first.
    fn write_until_keyed(store: &mut crate::store::Sqlite, rows: &[crate::sinks::Item]) {
        use crate::sinks::Sink;
        let path = store.path().to_path_buf();
        let mut rows = rows.chunks(1);
        while [0, 1, 2].iter().any(|n| keyed(&path, *n) != 3) {
            let row = rows.next().expect("the segments never got their postings");
            store.write(row).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// A panic while making a segment's postings leaves the segment waiting (read
    /// through its time index) and the writer writing; the segment is asked for
    /// again after the next seal, and gets them.
    #[test]
    fn a_panic_while_making_postings_leaves_the_segment_waiting() {
        use crate::integrity::Chain;
        use crate::sinks::Sink;
        use crate::store::sqlite::ahead::tests::items;
        use crate::store::{Query, Sqlite, Store};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let mut store = Sqlite::options().segment_rows(20).open(&path).unwrap();
        let mut chain = Chain::new();
        let canonical = store.path().canonicalize().unwrap();
        PANICS_FOR
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(canonical.clone());
        let rows = items(&mut chain, 0..200, "app_add");
        store.write(&rows[..25]).unwrap();
        // The build panics; batches go on.
        for i in 25..60 {
            store.write(&rows[i..i + 1]).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(keyed(&path, 0), 0, "the segment waits");
        let page = store.query(&Query::all().actor("u-3").limit(100)).unwrap();
        assert_eq!(page.records.len(), 9);
        PANICS_FOR
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p| *p != canonical);
        // After the next seals, every waiting segment is asked for again.
        write_until_keyed(&mut store, &rows[60..]);
        assert_eq!(store.check_indexes().unwrap(), []);
        assert!(store.verify().unwrap().is_intact());
    }

    /// A postings thread that fails to start is tried again at each seal, not at
    /// each batch; once it starts, every segment left waiting gets its postings.
    #[test]
    fn a_thread_that_fails_to_start_is_tried_again_at_the_next_seal_only() {
        use crate::integrity::Chain;
        use crate::sinks::Sink;
        use crate::store::sqlite::ahead::tests::items;
        use crate::store::{Query, Sqlite, Store};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut store = Sqlite::options().segment_rows(20).open(&path).unwrap();
        let canonical = store.path().canonicalize().unwrap();
        let tried = || {
            let asked = FAILS_TO_START.lock().unwrap_or_else(|p| p.into_inner());
            asked.iter().find(|(p, _)| *p == canonical).map(|(_, n)| *n)
        };
        FAILS_TO_START
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((canonical.clone(), 0));
        let mut chain = Chain::new();
        let rows = items(&mut chain, 0..100, "app_add");
        // The first seal (at row 20) tries to start the thread.
        store.write(&rows[..25]).unwrap();
        assert_eq!(tried(), Some(1));
        // Fifteen batches without a seal: no new try.
        for i in 25..40 {
            store.write(&rows[i..i + 1]).unwrap();
        }
        assert_eq!(tried(), Some(1), "tried at every batch");
        // The seal at row 40 tries again.
        store.write(&rows[40..41]).unwrap();
        assert_eq!(tried(), Some(2));
        // Meanwhile the waiting segments are read through their time index.
        let page = store.query(&Query::all().actor("u-3").limit(100)).unwrap();
        assert_eq!(page.records.len(), 6);
        FAILS_TO_START
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(p, _)| *p != canonical);
        // The next seal starts it, and both waiting segments get their postings.
        write_until_keyed(&mut store, &rows[41..]);
        assert_eq!(store.check_indexes().unwrap(), []);
        assert!(store.verify().unwrap().is_intact());
    }
}
