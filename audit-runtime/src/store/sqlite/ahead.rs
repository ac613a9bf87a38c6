//! A row's stored form made before its position is known, and made ahead on a
//! helper thread while the writer inserts.
//!
//! Compressing a record (zstd with the store's dictionary, ~3 µs for the bench's
//! 944-byte records) is the largest part of a compact row's CPU on the writer's
//! side, and it needs nothing from the transaction: only the dictionary, which
//! stays the same until the open segment is sealed. So a batch's rows that will go
//! into the open segment, whatever else happens, are compressed by a helper
//! thread and handed over in order while the writer inserts; the rows after a seal
//! (a new dictionary may start there) are compressed by the writer itself. The
//! helper also takes the row's columns out of its record (~0.5 µs a row, ~6 % of
//! the writer's time before it moved here).
//!
//! The hand-over is unbounded: the helper, faster than the writer, runs ahead by
//! up to the whole batch (a compressed row is a few hundred bytes beside the
//! batch's records). A bounded one (64 rows until session 37) kept the helper
//! waiting on a full queue, and every row the writer took woke it again: a futex
//! call per row, ~5 % of the writer's time; unbounded, the 1 M-row indexed write
//! went from 89-94 k to 95-102 k rows/s.

use std::sync::mpsc::{Receiver, channel};
use std::thread::{Scope, ScopedJoinHandle};

use rusqlite::types::Value as SqlValue;

use super::compress::Encoder;
use crate::record::hash::ChainHash;
use crate::sinks::{Item, SinkError};
use crate::store::columns::Columns;
use crate::store::stored::hashed_json;

/// Fewer rows than this are compressed by the writer: a thread costs ~20-50 µs.
const MIN_AHEAD: usize = 32;

/// A row as stored but for its position and link: its columns, and its record and
/// hash as a zstd frame and 32 bytes when it is made with a dictionary (compact),
/// else the JSON text and 64 hex digits.
pub(super) struct Prepared<'a> {
    pub columns: Columns<'a>,
    pub hash: ChainHash,
    /// Compact: the hash's 32 bytes (the link is stored as 32 bytes too); `None`:
    /// both as hex text. Bound as borrowed bytes: no allocation per row.
    pub hash_bytes: Option<[u8; 32]>,
    pub record: SqlValue,
}

/// The stored form of `item`'s record, compressed with `encoder` if there is one.
pub(super) fn prepare<'a>(
    item: &'a Item,
    encoder: Option<&mut Encoder>,
) -> Result<Prepared<'a>, SinkError> {
    let (hash, json) = hashed_json(item.record(), item.json());
    let columns = Columns::of(item.record());
    Ok(match encoder {
        Some(encoder) => Prepared {
            columns,
            hash_bytes: Some(hash_bytes(&hash)?),
            record: SqlValue::Blob(encoder.encode(&json)),
            hash,
        },
        None => Prepared {
            columns,
            hash_bytes: None,
            record: SqlValue::Text(json.into_owned()),
            hash,
        },
    })
}

/// A record hash's 32 bytes.
fn hash_bytes(hash: &ChainHash) -> Result<[u8; 32], SinkError> {
    crate::json::unhex(hash.as_str())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| SinkError::permanent(format!("not a record hash: {}", hash.as_str())))
}

/// The first rows of a batch, being prepared on a helper thread that holds the
/// writer's encoder until [`Ahead::finish`] gives it back.
pub(super) struct Ahead<'scope, 'env> {
    helper: Option<Helper<'scope, 'env>>,
}

struct Helper<'scope, 'env> {
    rows: Receiver<Result<Prepared<'env>, SinkError>>,
    left: usize,
    thread: ScopedJoinHandle<'scope, Encoder>,
}

impl<'scope, 'env> Ahead<'scope, 'env> {
    /// Starts preparing `rows` (the first rows of a batch, all bound for the open
    /// segment) with the encoder in `slot`, which stays empty until
    /// [`finish`](Self::finish). Without an encoder, or for a few rows, nothing is
    /// started and the writer prepares every row.
    pub(super) fn start(
        scope: &'scope Scope<'scope, 'env>,
        rows: &'env [Item],
        slot: &mut Option<Encoder>,
    ) -> Self {
        if rows.len() < MIN_AHEAD {
            return Ahead { helper: None };
        }
        let Some(mut encoder) = slot.take() else {
            return Ahead { helper: None };
        };
        let (tx, rx) = channel();
        let thread = scope.spawn(move || {
            for item in rows {
                #[cfg(test)]
                tests::panic_if_asked(item);
                // The writer stopped taking rows (an error): stop too.
                if tx.send(prepare(item, Some(&mut encoder))).is_err() {
                    break;
                }
            }
            encoder
        });
        Ahead {
            helper: Some(Helper {
                rows: rx,
                left: rows.len(),
                thread,
            }),
        }
    }

    /// The next row made ahead; `None` once they are all taken (or none was made:
    /// the writer prepares the rest itself, after [`finish`](Self::finish)).
    pub(super) fn next(&mut self) -> Option<Result<Prepared<'env>, SinkError>> {
        let helper = self.helper.as_mut().filter(|h| h.left > 0)?;
        helper.left -= 1;
        Some(helper.rows.recv().unwrap_or_else(|_| {
            // The helper only hangs up early when it panicked: `finish` rethrows.
            Err(SinkError::permanent("the compressing thread stopped"))
        }))
    }

    /// Waits for the helper and puts its encoder back into `slot` (a panic of the
    /// helper's goes on in this thread).
    pub(super) fn finish(&mut self, slot: &mut Option<Encoder>) {
        if let Some(helper) = self.helper.take() {
            drop(helper.rows);
            match helper.thread.join() {
                Ok(encoder) => *slot = Some(encoder),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;

    use crate::integrity::Chain;
    use crate::record::Record;
    use crate::sinks::{Item, Sink};
    use crate::store::{Query, Sqlite, Store};

    /// A row of this event panics the helper, in test builds.
    const PANICS: &str = "panics_ahead";

    pub(super) fn panic_if_asked(item: &crate::sinks::Item) {
        if item.name() == PANICS {
            panic!("a panic injected into the helper that makes rows ahead");
        }
    }

    pub(in crate::store::sqlite) fn items(
        chain: &mut Chain,
        range: std::ops::Range<usize>,
        name: &str,
    ) -> Vec<Item> {
        range
            .map(|i| {
                let mut r: Record = serde_json::from_value(serde_json::json!({
                    "id": uuid::Uuid::now_v7(),
                    "time": crate::time::Timestamp::from_nanos(1_780_000_000_000_000_000 + i as i64),
                    "event": "app_add", "code": 1, "category": "app", "level": "info",
                    "outcome": "success", "error": null, "duration_ns": 1,
                    "description": format!("row {i}"),
                    "actor": {"id": format!("u-{}", i % 7), "email": null, "name": null, "kind": "user"},
                    "impersonator": null, "tenant": "acme", "environment": null, "source": null,
                    "request": null, "entity": {"type": "app", "type_code": 1, "id": format!("app-{i}")},
                    "changes": null, "metadata": {}, "prev_hash": null, "hash": null,
                    "site": {"module": "m", "file": "m.rs", "line": 1, "function": "f"}
                }))
                .unwrap();
                let json = chain.link(&mut r);
                Item::with_json(r, json, Arc::from(name))
            })
            .collect()
    }

    /// A panic on the helper thread goes on in the writer, which rolls its batch
    /// back (the encoder the helper held is made again); the store writes the
    /// same batch next, and its rows, links and postings are whole.
    #[test]
    fn a_panic_of_the_helper_loses_no_row_and_spoils_no_posting() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Sqlite::options()
            .segment_rows(100)
            .open(dir.path().join("p.db"))
            .unwrap();
        let mut chain = Chain::new();
        // Past the first seal: rows are compressed, so made ahead.
        for part in items(&mut chain, 0..150, "app_add").chunks(50) {
            store.write(part).unwrap();
        }
        let mut batch = items(&mut chain, 150..214, "app_add");
        let good = batch.clone();
        batch[40] = items(&mut Chain::new(), 0..1, PANICS).remove(0);
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.write(&batch)));
        assert!(panic.is_err(), "the injected panic reached the writer");
        assert_eq!(store.count().unwrap(), 150);
        store.write(&good).unwrap();
        for part in items(&mut chain, 214..260, "app_add").chunks(46) {
            store.write(part).unwrap();
        }
        assert_eq!(store.count().unwrap(), 260);
        assert_eq!(store.segments().unwrap().len(), 3);
        assert_eq!(store.check_indexes().unwrap(), []);
        let page = store.query(&Query::all().actor("u-3").limit(100)).unwrap();
        assert_eq!(page.records.len(), 37);
        let v = store.verify().unwrap();
        assert!(v.is_intact() && v.rows == 260, "{v:?}");
    }
}
