//! What a sink thread keeps in memory because a spool refused it (a full disk):
//! records the sink did not take (to be delivered or spooled) and records it refused
//! for good (to be dead-lettered), each list in order. Nothing leaves a list but by
//! being written somewhere, or given up at shutdown (counted lost).

use std::time::{Duration, Instant};

/// How long after a refused write the next one is tried: each try encodes
/// everything held.
pub(crate) const RETRY_AFTER: Duration = Duration::from_millis(250);

/// Records held in memory, oldest first.
pub(crate) struct Held<T> {
    items: Vec<T>,
    /// When the last write was refused, and why.
    refused: Option<(Instant, String)>,
}

/// One try at writing what is held.
pub(crate) enum Tried {
    /// Nothing was held.
    Empty,
    /// All of it was written; `after_refusal`: an earlier try had been refused.
    Written { count: usize, after_refusal: bool },
    /// Still held; `first`: the first refusal since the list was last written.
    Refused { error: String, first: bool },
}

impl<T> Held<T> {
    pub fn new() -> Self {
        Held {
            items: Vec::new(),
            refused: None,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Holds `more` behind what is held.
    pub fn push(&mut self, more: impl IntoIterator<Item = T>) {
        self.items.extend(more);
    }

    /// Everything held, to be written elsewhere (what is not is put back with
    /// [`Held::put_back`]).
    pub fn take(&mut self) -> Vec<T> {
        std::mem::take(&mut self.items)
    }

    /// Holds again what [`Held::take`] gave and could not be written, ahead of
    /// anything held since.
    pub fn put_back(&mut self, mut rest: Vec<T>) {
        rest.append(&mut self.items);
        self.items = rest;
    }

    /// Writes everything held with `write` (all or none), unless the last try was
    /// refused less than [`RETRY_AFTER`] ago and `now` is false.
    pub fn write(&mut self, now: bool, write: impl FnOnce(&[T]) -> std::io::Result<()>) -> Tried {
        if self.items.is_empty() {
            return Tried::Empty;
        }
        if let Some((at, error)) = &self.refused
            && !now
            && at.elapsed() < RETRY_AFTER
        {
            return Tried::Refused {
                error: error.clone(),
                first: false,
            };
        }
        match write(&self.items) {
            Ok(()) => {
                let count = self.items.len();
                self.items.clear();
                Tried::Written {
                    count,
                    after_refusal: self.refused.take().is_some(),
                }
            }
            Err(e) => {
                let first = self.refused.is_none();
                self.refused = Some((Instant::now(), e.to_string()));
                Tried::Refused {
                    error: e.to_string(),
                    first,
                }
            }
        }
    }

    /// Gives up everything held (a shutdown); returns how many.
    pub fn give_up(&mut self) -> usize {
        let n = self.items.len();
        self.items.clear();
        self.refused = None;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> std::io::Result<()> {
        Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "no space",
        ))
    }

    #[test]
    fn a_refused_write_is_tried_again_only_after_the_pause_unless_now() {
        let mut held = Held::new();
        held.push([1, 2]);
        assert!(matches!(
            held.write(false, |_| full()),
            Tried::Refused { first: true, .. }
        ));
        let mut called = false;
        let tried = held.write(false, |_| {
            called = true;
            Ok(())
        });
        assert!(!called && matches!(tried, Tried::Refused { first: false, .. }));
        held.push([3]);
        let mut seen = Vec::new();
        let tried = held.write(true, |items| {
            seen.extend_from_slice(items);
            Ok(())
        });
        assert!(matches!(
            tried,
            Tried::Written {
                count: 3,
                after_refusal: true
            }
        ));
        assert_eq!(seen, [1, 2, 3]);
        assert!(held.is_empty() && matches!(held.write(false, |_| full()), Tried::Empty));
    }

    #[test]
    fn what_is_put_back_stays_ahead_of_what_came_since() {
        let mut held = Held::new();
        held.push([1, 2, 3]);
        let taken = held.take();
        held.push([4]);
        held.put_back(taken[1..].to_vec());
        assert_eq!(held.take(), [2, 3, 4]);
        held.push([5]);
        assert_eq!(held.give_up(), 1);
        assert!(held.is_empty());
    }
}
