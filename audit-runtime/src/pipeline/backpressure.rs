//! Back-pressure: callers wait for room in a full queue, with hysteresis.
//!
//! A blocking channel send wakes a waiting caller at every slot the worker frees: a
//! caller that outruns the pipeline then sleeps and wakes once per event (a system
//! call on each side), and spins and yields before each sleep, taking CPU the worker
//! needs. Here a caller that finds the queue full sleeps until the worker has
//! drained it to half, then refills it in a burst.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};

/// How long a waiting caller sleeps before looking again on its own (a safety net:
/// the worker's wake-up is what normally ends the wait).
const RECHECK: Duration = Duration::from_millis(50);

/// The callers waiting for room in one queue.
pub(crate) struct Backpressure {
    waiting: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
    /// Waiting callers are woken when the queue holds this many messages or fewer.
    low_water: usize,
}

impl Backpressure {
    /// For a queue of `capacity` messages.
    pub(crate) fn new(capacity: usize) -> Self {
        Backpressure {
            waiting: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
            low_water: capacity / 2,
        }
    }

    /// Sends `msg`, waiting while the queue is full (until `deadline`, if any);
    /// fails once the receiver is gone or the deadline passed.
    pub(crate) fn send<T>(
        &self,
        tx: &Sender<T>,
        msg: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        let mut msg = match tx.try_send(msg) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Disconnected(m)) => return Err(SendTimeoutError::Disconnected(m)),
            Err(TrySendError::Full(m)) => m,
        };
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        // Counted before the retry, under the lock: a worker that drains the queue
        // after this point sees the waiter, and its wake-up (which takes the lock)
        // cannot come between the retry and the wait.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let sent = loop {
            match tx.try_send(msg) {
                Ok(()) => break Ok(()),
                Err(TrySendError::Disconnected(m)) => break Err(SendTimeoutError::Disconnected(m)),
                Err(TrySendError::Full(m)) => {
                    let wait = match deadline {
                        None => RECHECK,
                        Some(d) => match d.checked_duration_since(Instant::now()) {
                            Some(left) if !left.is_zero() => left.min(RECHECK),
                            _ => break Err(SendTimeoutError::Timeout(m)),
                        },
                    };
                    msg = m;
                    guard = self
                        .freed
                        .wait_timeout(guard, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        sent
    }

    /// Called by the worker after it took a message: wakes the waiting callers once
    /// the queue is down to its low-water mark.
    #[inline]
    pub(crate) fn taken<T>(&self, rx: &Receiver<T>) {
        if self.waiting.load(Ordering::SeqCst) > 0 && rx.len() <= self.low_water {
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.freed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_full_queue_makes_senders_wait_and_loses_nothing() {
        let (tx, rx) = crossbeam_channel::bounded::<u32>(8);
        let room = Arc::new(Backpressure::new(8));
        let senders: Vec<_> = (0..4)
            .map(|t| {
                let (tx, room) = (tx.clone(), Arc::clone(&room));
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        room.send(&tx, t * 10_000 + i, None).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut got = Vec::new();
        while let Ok(v) = rx.recv() {
            got.push(v);
            room.taken(&rx);
        }
        for s in senders {
            s.join().unwrap();
        }
        assert_eq!(got.len(), 40_000);
        for t in 0..4 {
            let mine: Vec<u32> = got.iter().copied().filter(|v| v / 10_000 == t).collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "each sender's order kept"
            );
        }
    }

    #[test]
    fn a_gone_receiver_fails_the_waiting_sender() {
        let (tx, rx) = crossbeam_channel::bounded::<u32>(1);
        let room = Arc::new(Backpressure::new(1));
        room.send(&tx, 1, None).unwrap();
        let waiter = {
            let room = Arc::clone(&room);
            std::thread::spawn(move || room.send(&tx, 2, None))
        };
        std::thread::sleep(Duration::from_millis(20));
        drop(rx);
        assert_eq!(
            waiter.join().unwrap(),
            Err(SendTimeoutError::Disconnected(2))
        );
    }
}
