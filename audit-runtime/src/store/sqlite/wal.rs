//! Checkpoints on a thread of their own, so that the writer does not copy the
//! write-ahead log into the database file itself.
//!
//! SQLite's automatic checkpoint runs in the committing thread, right after the
//! commit that takes the log past its limit: the writer reads the log's pages back,
//! writes them into the database file and syncs both before it takes its next
//! batch. On a 2-core machine that was ~40 % of the indexed write's wall time
//! (300 000 rows: 62 k rows/s with checkpoints, 105 k with none). Here the store's WAL
//! hook takes SQLite's place (a connection has one hook: installing it turns the
//! automatic checkpoint off) and hands the copy to a helper thread with its own
//! connection. SQLite lets a checkpoint run beside a writer: it copies the frames
//! committed when it starts, and the writer appends after them meanwhile.
//!
//! The log starts again from its beginning only when a write transaction begins on
//! a log whose every frame is in the file, which never happens while the helper
//! chases a busy writer. So once a helper's round leaves only a few frames behind
//! (those committed while it ran, at most 1/[`WRITER_SHARE`] of the limit), the
//! writer copies those itself, and its next transaction starts the log over.
//!
//! That is a race with a second writer on the same file (another process, or
//! another handle): its transaction may begin between the copy and ours, and on a
//! loaded machine it did, again and again (a log of 1 MiB reached 7.5). So once the
//! log reaches [`HARD_LIMITS`] times the limit, the writer waits while its helper
//! runs a restart round: SQLite's `RESTART` checkpoint, which takes the writers'
//! lock, copies every frame, waits until no reader is on the log, and leaves it to
//! be started over by the next transaction, whoever's it is. The log file (which
//! SQLite reuses, not shrinks) stays within that and a commit of each writer.
//!
//! A restart round waits for writers and readers at most [`RESTART_WAIT`]. A reader
//! holding old frames longer (a long export, a verify) keeps them in the log, as it
//! does with SQLite's own checkpoint: the writer then goes on, and asks for the next
//! restart round only when the log has grown by another hard limit, so that a long
//! reader costs it one wait per hard limit of writes, not one per commit.
//!
//! A checkpoint that fails (a full disk, a busy lock held by another process's
//! checkpoint) loses nothing: the frames stay in the log and the next round copies
//! them, as with SQLite's own automatic checkpoint, which ignores such errors too.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};

/// Times the limit the log may reach before the writer waits for a restart round.
pub(super) const HARD_LIMITS: i64 = 4;

/// How long a restart round waits for other writers' transactions and for readers
/// to leave the log, before it gives up and the log goes on growing.
pub(super) const RESTART_WAIT: Duration = Duration::from_secs(1);

/// The writer copies the frames a helper's round left behind itself when they are
/// at most the limit over this (1 MiB of the default 32: about one batch of 1 000
/// records), and asks for another round when they are more.
const WRITER_SHARE: i64 = 32;

/// WalCheckpoints of one writing connection; dropping it stops the helper.
#[derive(Debug)]
pub(super) struct WalCheckpoints {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// The helper thread, once the log first reached the limit.
    helper: Option<JoinHandle<()>>,
    /// The helper could not start or open its connection, stopped, or panicked:
    /// the writer checkpoints after its commits, as SQLite's automatic checkpoint
    /// does.
    helper_gone: bool,
    /// A round is asked for or running.
    busy: bool,
    /// The round asked for is a restart round.
    restart: bool,
    /// The frames in the log when the last restart round gave up (a reader kept
    /// its frames), while the log has not started over since: the next is asked
    /// for a hard limit later.
    restart_failed_at: Option<i64>,
    stop: bool,
    /// The frames of the log in the file when the helper's last round ended,
    /// while the log has not started over since.
    copied: Option<i64>,
    /// Frames in the log after the previous commit (fewer now: it started over).
    frames: i64,
    /// Rounds the helper ran (restart rounds among them) and checkpoints the
    /// writer ran itself.
    rounds: u64,
    restart_rounds: u64,
    writer_rounds: u64,
    /// Times the log started over.
    started_over: u64,
    /// Tests: the helper panics at its next round, or at its next restart round.
    #[cfg(test)]
    panic_next_round: bool,
    #[cfg(test)]
    panic_next_restart: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic: every field is set whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl WalCheckpoints {
    /// Installs the WAL hook on `conn` (the store's writing connection, in WAL
    /// mode): from now on the log is copied into the file once it holds
    /// `limit_frames` frames (pages), by a helper thread started then. `None` for
    /// a connection to no file.
    pub(super) fn install(
        conn: &mut Connection,
        limit_frames: i64,
    ) -> rusqlite::Result<Option<WalCheckpoints>> {
        // The file as SQLite resolved it (absolute): the helper opens it later,
        // when a relative path may name another file.
        let Some(path) = conn.path().filter(|p| !p.is_empty()).map(PathBuf::from) else {
            return Ok(None);
        };
        Self::install_at(conn, path, limit_frames, RESTART_WAIT).map(Some)
    }

    /// [`install`](Self::install) with the helper opening `path` and its restart
    /// rounds waiting at most `restart_wait`.
    fn install_at(
        conn: &mut Connection,
        path: PathBuf,
        limit_frames: i64,
        restart_wait: Duration,
    ) -> rusqlite::Result<WalCheckpoints> {
        let shared = Arc::new(Shared::default());
        let hook = Hook {
            shared: shared.clone(),
            path,
            limit: limit_frames.max(1),
            restart_wait,
        };
        conn.wal_hook(Some(move |wal: &mut Wal, frames| {
            hook.after_commit(wal, i64::from(frames));
            Ok(())
        }))?;
        Ok(WalCheckpoints { shared })
    }

    /// Rounds run so far by the helper and by the writer itself, and the frames
    /// in the log after the last commit.
    #[cfg(test)]
    fn counts(&self) -> (u64, u64, i64) {
        let state = self.shared.lock();
        (state.rounds, state.writer_rounds, state.frames)
    }

    /// Restart rounds run so far, whether the last one gave up, and the times
    /// the log started over.
    #[cfg(test)]
    fn restarts(&self) -> (u64, bool, u64) {
        let state = self.shared.lock();
        (
            state.restart_rounds,
            state.restart_failed_at.is_some(),
            state.started_over,
        )
    }
}

impl Drop for WalCheckpoints {
    fn drop(&mut self) {
        let helper = {
            let mut state = self.shared.lock();
            state.stop = true;
            state.helper.take()
        };
        self.shared.changed.notify_all();
        if let Some(helper) = helper {
            // A panic on the helper (none is expected: it only calls SQLite) has
            // nothing to hand on: the frames are still in the log.
            let _ = helper.join();
        }
    }
}

/// What runs after each commit of the writing connection.
struct Hook {
    shared: Arc<Shared>,
    path: PathBuf,
    limit: i64,
    restart_wait: Duration,
}

impl Hook {
    fn after_commit(&self, wal: &mut Wal, frames: i64) {
        let mut state = self.shared.lock();
        if frames < state.frames {
            // The log started over: the last rounds' counts are of the old one.
            state.copied = None;
            state.restart_failed_at = None;
            state.started_over += 1;
        }
        state.frames = frames;
        if frames < self.limit || state.stop {
            return;
        }
        if state.helper.is_none() && !state.helper_gone {
            match self.spawn() {
                Ok(helper) => state.helper = Some(helper),
                Err(_) => state.helper_gone = true,
            }
        }
        let hard = state.restart_failed_at.unwrap_or(0) + self.limit * HARD_LIMITS;
        if frames >= hard && !state.helper_gone {
            // The round under way first, then a restart round; the writer waits
            // for both (at most the copy and `restart_wait`).
            state = self.until_idle(state);
            if !state.helper_gone {
                state.busy = true;
                state.restart = true;
                self.shared.changed.notify_all();
                state = self.until_idle(state);
            }
            if !state.helper_gone {
                return;
            }
        }
        if state.busy {
            return;
        }
        let behind = frames - state.copied.unwrap_or(0);
        if behind <= self.limit / WRITER_SHARE || state.helper_gone {
            // The few frames committed during the helper's round (or the whole
            // log, without a helper): copied here, the next transaction starts
            // the log over.
            state.writer_rounds += 1;
            state.copied = None;
            drop(state);
            let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
        } else {
            state.busy = true;
            drop(state);
            self.shared.changed.notify_all();
        }
    }

    /// Waits until no round is asked for or running (or the helper is gone).
    fn until_idle<'a>(&self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        while state.busy && !state.helper_gone {
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state
    }

    fn spawn(&self) -> std::io::Result<JoinHandle<()>> {
        let shared = self.shared.clone();
        let path = self.path.clone();
        let restart_wait = self.restart_wait;
        std::thread::Builder::new()
            .name("audit-sqlite-checkpoint".into())
            .spawn(move || {
                let _gone = Gone(&shared);
                helper(&shared, &path, restart_wait);
            })
    }
}

/// Set when the helper returns or unwinds: from then on the writer checkpoints
/// itself (and never waits for a round that will not end).
struct Gone<'a>(&'a Shared);

impl Drop for Gone<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.helper_gone = true;
        state.busy = false;
        drop(state);
        self.0.changed.notify_all();
    }
}

/// The helper: one checkpoint per round asked for, until stopped.
fn helper(shared: &Shared, path: &Path, restart_wait: Duration) {
    // A connection sees the log only once it has read the file (until then a
    // checkpoint finds no log to copy).
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|conn| {
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        match mode.eq_ignore_ascii_case("wal") {
            true => Ok(conn),
            false => Err(rusqlite::Error::InvalidQuery),
        }
    });
    // SQLite's busy handler is what a restart round waits with (a passive one
    // never waits).
    let Ok(conn) = conn.and_then(|conn| conn.busy_timeout(restart_wait).map(|()| conn)) else {
        return;
    };
    loop {
        let mut state = shared.lock();
        while !state.busy && !state.stop {
            state = shared
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.stop {
            return;
        }
        #[cfg(test)]
        if state.panic_next_round || (state.restart && state.panic_next_restart) {
            drop(state);
            panic!("a panic injected into the checkpoint helper");
        }
        let restart = std::mem::take(&mut state.restart);
        drop(state);
        let done = match restart {
            true => restart_round(&conn, restart_wait),
            false => conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE),
        };
        let mut state = shared.lock();
        state.busy = false;
        state.rounds += 1;
        if restart {
            state.restart_rounds += 1;
            state.restart_failed_at = done.is_err().then_some(state.frames);
        }
        // Counts of a log that started over meanwhile are not kept (a smaller log
        // than the round saw).
        state.copied = match done {
            Ok((log, copied)) if log >= 0 && copied >= 0 && i64::from(log) <= state.frames => {
                Some(i64::from(copied))
            }
            _ => None,
        };
        drop(state);
        shared.changed.notify_all();
    }
}

/// SQLite's `RESTART` checkpoint, tried again while another connection holds the
/// checkpoint lock (its helper's passive round: SQLite does not wait for that
/// lock), until `wait` has passed.
fn restart_round(conn: &Connection, wait: Duration) -> rusqlite::Result<(i32, i32)> {
    let deadline = Instant::now() + wait;
    loop {
        match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::RESTART) {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Transaction, TransactionBehavior};

    /// Frames of the test's limit: 64 pages of 4 KiB.
    const LIMIT: i64 = 64;

    /// A WAL-mode database at `path` whose writing connection has the helper.
    fn writer(path: &Path) -> (Connection, WalCheckpoints) {
        writer_with(path, path, RESTART_WAIT)
    }

    /// [`writer`] with a helper that opens `helper_path` and whose restart rounds
    /// wait at most `restart_wait`.
    fn writer_with(
        path: &Path,
        helper_path: &Path,
        restart_wait: Duration,
    ) -> (Connection, WalCheckpoints) {
        let mut conn = Connection::open(path).unwrap();
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        // Two writers on one file wait for each other's transactions.
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY, blob BLOB NOT NULL)",
        )
        .unwrap();
        let checkpoints =
            WalCheckpoints::install_at(&mut conn, helper_path.to_path_buf(), LIMIT, restart_wait);
        (conn, checkpoints.unwrap())
    }

    /// One transaction of `rows` rows of 4 KiB (about as many pages).
    fn write(conn: &Connection, rows: usize) {
        // Immediate: two writers' deferred transactions would fail each other.
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).unwrap();
        for _ in 0..rows {
            tx.execute("INSERT INTO t (blob) VALUES (zeroblob(4000))", [])
                .unwrap();
        }
        tx.commit().unwrap();
    }

    /// Writes 40 times the limit, 10 pages per commit, checking after each commit
    /// that the log's file stays within the hard limit, the commit that crossed it
    /// and the log's header.
    fn write_forty_limits(conn: &Connection, path: &Path) {
        let bound = ((LIMIT * HARD_LIMITS + 12 + 8) * (4096 + 24)) as u64;
        for _ in 0..256 {
            write(conn, 10);
            assert!(wal_bytes(path) <= bound, "{}", wal_bytes(path));
        }
    }

    fn wal_bytes(path: &Path) -> u64 {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
    }

    fn count(path: &Path) -> i64 {
        let reader = Connection::open(path).unwrap();
        reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn the_helper_copies_the_log_and_the_log_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let (conn, checkpoints) = writer(&path);
        write_forty_limits(&conn, &path);
        let (rounds, _, frames) = checkpoints.counts();
        assert!(rounds > 0, "the helper ran no round");
        assert!(checkpoints.restarts().2 > 0, "the log never started over");
        assert!(frames < LIMIT * HARD_LIMITS + 12, "{frames} frames");
        assert_eq!(count(&path), 2560);
        drop(checkpoints);
        drop(conn);
        // The last connection closed copied the rest and removed the log.
        assert_eq!(wal_bytes(&path), 0);
        assert_eq!(count(&path), 2560);
    }

    /// A reader's snapshot keeps its frames in the log: the restart rounds give up
    /// after their wait, one per hard limit of growth (not one per commit). Once
    /// it is gone, the next restart round starts the log over.
    #[test]
    fn a_reader_holds_its_frames_and_then_lets_them_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let (conn, checkpoints) = writer_with(&path, &path, Duration::from_millis(50));
        write(&conn, 10);
        let reader = Connection::open(&path).unwrap();
        let snapshot = reader.unchecked_transaction().unwrap();
        let seen: i64 = snapshot
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seen, 10);
        for _ in 0..60 {
            write(&conn, 10);
        }
        // Its snapshot holds: the log could not start over under it.
        let (_, _, frames) = checkpoints.counts();
        assert!(frames > 2 * LIMIT * HARD_LIMITS, "{frames} frames");
        let (restarts, gave_up, _) = checkpoints.restarts();
        assert!(gave_up);
        assert!(
            (1..=frames / (LIMIT * HARD_LIMITS)).contains(&(restarts as i64)),
            "{restarts} restart rounds over {frames} frames"
        );
        let still: i64 = snapshot
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(still, 10);
        drop(snapshot);
        for _ in 0..60 {
            write(&conn, 10);
        }
        let (_, _, frames) = checkpoints.counts();
        assert!(frames < LIMIT * HARD_LIMITS + 12, "{frames} frames");
        assert!(!checkpoints.restarts().1, "the last restart round gave up");
        assert_eq!(count(&path), 1210);
    }

    /// Two writing connections on one file (as two processes), each with its own
    /// helper, write back to back while a third connection reads: whenever one
    /// copies the log, the other has a transaction to begin. At four times the
    /// limit the log is copied whole and started over under the writers' lock, so
    /// its file stays within that and a commit of each writer.
    #[test]
    fn two_writers_start_the_log_over_at_the_hard_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let bound = ((LIMIT * HARD_LIMITS + 2 * 12 + 8) * (4096 + 24)) as u64;
        let done = std::sync::atomic::AtomicUsize::new(0);
        let mut largest = 0;
        // The file and its table, before two connections race to make them.
        drop(writer(&path));
        std::thread::scope(|s| {
            for _ in 0..2 {
                let (path, done) = (&path, &done);
                s.spawn(move || {
                    // Counted on the way out, a panic included: the reader stops.
                    let _done = Done(done);
                    let (conn, _checkpoints) = writer(path);
                    for _ in 0..512 {
                        write(&conn, 10);
                    }
                });
            }
            let reader = Connection::open(&path).unwrap();
            reader.busy_timeout(Duration::from_secs(10)).unwrap();
            while done.load(std::sync::atomic::Ordering::SeqCst) < 2 {
                let _: Option<i64> = reader
                    .query_row("SELECT max(n) FROM t", [], |r| r.get(0))
                    .ok();
                largest = largest.max(wal_bytes(&path));
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        assert!(
            largest <= bound,
            "the log grew to {largest} bytes (bound {bound})"
        );
        assert_eq!(count(&path), 10240);
    }

    struct Done<'a>(&'a std::sync::atomic::AtomicUsize);

    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// A helper that panics (injected at its first round) leaves the checkpoints to
    /// the writer, which never waits for the round that will not end: the writes go
    /// on, the log stays bounded, every row is there.
    #[test]
    fn a_panicking_helper_leaves_the_checkpoints_to_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let (conn, checkpoints) = writer(&path);
        checkpoints.shared.lock().panic_next_round = true;
        write_forty_limits(&conn, &path);
        let (rounds, writer_rounds, _) = checkpoints.counts();
        assert_eq!(rounds, 0, "the helper panicked before its first round");
        the_writer_took_over(writer_rounds, conn, checkpoints, &path);
    }

    /// The end of a panicked helper's test: the writer checkpointed, the helper is
    /// gone, every row is there, and dropping joins the panicked thread without
    /// passing its panic on.
    fn the_writer_took_over(
        writer_rounds: u64,
        conn: Connection,
        checkpoints: WalCheckpoints,
        path: &Path,
    ) {
        assert!(writer_rounds > 0);
        assert!(checkpoints.shared.lock().helper_gone);
        assert_eq!(count(path), 2560);
        drop(checkpoints);
        drop(conn);
        assert_eq!(count(path), 2560);
    }

    /// A helper that panics in a restart round, while the writer waits for it,
    /// wakes the writer as it goes: the writer checkpoints itself from then on, the
    /// log stays bounded, every row is there. (The writes run on a thread of their
    /// own so that a writer left waiting fails the test instead of hanging it.)
    #[test]
    fn a_helper_panicking_in_a_restart_round_wakes_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let (conn, checkpoints) = writer(&path);
        checkpoints.shared.lock().panic_next_restart = true;
        let (done, finished) = std::sync::mpsc::channel();
        let writes = {
            let path = path.clone();
            std::thread::spawn(move || {
                write_forty_limits(&conn, &path);
                done.send(()).unwrap();
                conn
            })
        };
        finished
            .recv_timeout(Duration::from_secs(120))
            .expect("the writer was left waiting for the panicked round");
        let conn = writes.join().unwrap();
        let (rounds, writer_rounds, _) = checkpoints.counts();
        assert!(rounds > 0, "passive rounds ran before the restart round");
        assert_eq!(checkpoints.restarts().0, 0, "the restart round never ended");
        the_writer_took_over(writer_rounds, conn, checkpoints, &path);
    }

    /// A helper that cannot open the file (here: a path with no database) leaves
    /// the checkpoints to the writer, as SQLite's own: the log stays bounded.
    #[test]
    fn without_its_helper_the_writer_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let (conn, checkpoints) = writer_with(&path, &dir.path().join("missing.db"), RESTART_WAIT);
        write_forty_limits(&conn, &path);
        let (rounds, writer_rounds, _) = checkpoints.counts();
        assert_eq!(rounds, 0);
        assert!(writer_rounds > 0);
        assert!(checkpoints.shared.lock().helper_gone);
        assert_eq!(count(&path), 2560);
    }
}
