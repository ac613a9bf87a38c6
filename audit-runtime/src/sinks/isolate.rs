//! Narrowing a refused batch down to the records that cause it: a permanent error
//! (or a panic) on a batch of several records is met again by halving the batch, so
//! that only the poison records are refused. Shared by the pipeline's sink threads
//! and `audit ingest`.

use super::{Item, SinkError};

/// What became of the records of one delivery.
#[derive(Default)]
pub(crate) struct Triage {
    /// Records written.
    pub delivered: usize,
    /// Records refused for good, with the reason.
    pub refused: Vec<(Item, String)>,
    /// The records not tried because the sink went down (a retryable error), with
    /// the error. Records are handled in order, so what was delivered or refused is
    /// a prefix of the batch and these are the rest.
    pub down: Option<(Vec<Item>, String)>,
}

impl Triage {
    /// Records delivered or refused: the handled prefix of the batch.
    pub(crate) fn handled(&self) -> usize {
        self.delivered + self.refused.len()
    }
}

/// Writes `items` with `write`; on a permanent error, halves the batch until the
/// records that cause it stand alone (an error naming the refused records, like
/// [`SinkError::rejected`], settles its batch at once). Once `write` fails
/// retryably, the rest is set aside in `t.down`.
pub(crate) fn write_isolating(
    write: &mut dyn FnMut(&[Item]) -> Result<(), SinkError>,
    mut items: Vec<Item>,
    t: &mut Triage,
) {
    if let Some((rest, _)) = &mut t.down {
        rest.extend(items);
        return;
    }
    match write(&items) {
        Ok(()) => t.delivered += items.len(),
        Err(e) if e.is_retryable() => t.down = Some((items, e.to_string())),
        Err(e) if !e.rejected_ids().is_empty() => {
            for item in items {
                if e.rejected_ids().contains(&item.record().id) {
                    t.refused.push((item, e.to_string()));
                } else {
                    t.delivered += 1;
                }
            }
        }
        Err(e) if items.len() == 1 => t.refused.push((items.remove(0), e.to_string())),
        Err(_) => {
            let right = items.split_off(items.len() / 2);
            write_isolating(write, items, t);
            write_isolating(write, right, t);
        }
    }
}
