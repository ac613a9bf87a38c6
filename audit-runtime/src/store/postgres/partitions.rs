//! The partitions of `audit_records` (schema 6): ranges of positions listed in
//! `audit_partitions`, each with its own small query indexes and its own
//! `UNIQUE (id)`. This module holds the writer's side (where a batch goes, which of
//! its ids are stored already, when the next partition is made) and the purge's
//! (which rows come before the cut-off, partition by partition).
//!
//! Partitions are made by `audit_extend` (a function run as the schema's owner: the
//! writer may not create tables) and dropped by `audit_purge_through`.

use std::collections::HashSet;

use postgres::{GenericClient, Transaction};
use uuid::Uuid;

/// Rows per partition unless [`super::PostgresOptions::partition_rows`] says
/// otherwise: 1 M rows make twenty partitions. The open partition's pages on an
/// actor or entity walk its tail index, so the size bounds that walk (~3 ms for
/// 50 000 rows); docs/STORAGE.md weighs it against the write rate.
pub const DEFAULT_PARTITION_ROWS: u64 = 50_000;

/// A partition as `audit_partitions` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Partition {
    /// Its first position.
    pub first_seq: i64,
    /// The position after its last.
    pub end_seq: i64,
    /// Whether its rows have contiguous positions (every partition but the table of
    /// schema 5, whose identity column may have skipped values): its row count is
    /// then `max(seq) - min(seq) + 1`, two index probes instead of a count.
    pub dense: bool,
}

impl Partition {
    /// The SQL condition of its positions, with the bounds written out: a statement
    /// with it is planned for this partition only.
    pub(super) fn positions(&self) -> String {
        if self.first_seq == i64::MIN {
            format!("seq < {}", self.end_seq)
        } else {
            format!("seq >= {} AND seq < {}", self.first_seq, self.end_seq)
        }
    }
}

/// The partitions, oldest first.
pub(super) fn list(client: &mut impl GenericClient) -> Result<Vec<Partition>, postgres::Error> {
    Ok(client
        .query(
            "SELECT first_seq, end_seq, dense FROM audit_partitions ORDER BY first_seq",
            &[],
        )?
        .iter()
        .map(|r| Partition {
            first_seq: r.get(0),
            end_seq: r.get(1),
            dense: r.get(2),
        })
        .collect())
}

/// What a writer keeps between batches to check its ids against few partitions.
#[derive(Debug, Clone)]
pub(super) struct Placement {
    /// Rows per partition this writer makes.
    rows: i64,
    /// The first position of the partition rows last went to, and the largest id
    /// stored before it. Rows before that position never change but by being
    /// purged, so the bound stays true (a purge only lowers the real one).
    sealed: Option<(i64, Option<Uuid>)>,
    /// Whether a partition was made since [`Placement::take_made`] last said.
    made: bool,
}

impl Placement {
    pub(super) fn new(rows: u64) -> Self {
        Placement {
            rows: rows.clamp(1, i64::MAX as u64) as i64,
            sealed: None,
            made: false,
        }
    }

    /// Of `ids`, those already stored, for a batch whose first row would take
    /// position `next`. UUIDv7 ids grow with time, so a new record's id is larger
    /// than every id of the partitions before the open one, and usually than every
    /// id of the open one too: such an id needs no lookup at all; one not larger
    /// than the open partition's is looked up there (one index probe), one not
    /// larger than the older partitions' (a replay of an old record, an id made
    /// elsewhere) in every partition.
    pub(super) fn stored_ids(
        &mut self,
        tx: &mut Transaction<'_>,
        next: i64,
        ids: &[Uuid],
    ) -> Result<HashSet<Uuid>, postgres::Error> {
        let open: i64 = tx
            .query_one(
                "SELECT coalesce(
                     (SELECT first_seq FROM audit_partitions WHERE first_seq <= $1 AND end_seq > $1),
                     (SELECT max(end_seq) FROM audit_partitions), $1)",
                &[&next],
            )?
            .get(0);
        let max_id = match self.sealed {
            Some((first, max_id)) if first == open => max_id,
            _ => {
                let max_id = largest_id(tx, &format!("seq < {open}"))?;
                self.sealed = Some((open, max_id));
                max_id
            }
        };
        // The position is in the SQL (it picks the partitions to plan); the ids are
        // a parameter, planned without its values (see `Postgres::client`): with
        // them, the planner saw the whole open partition matching `seq >= open` and
        // read it by position (36 ms for 50 000 rows), where one index probe per id
        // takes 10 ms for 10 000 ids.
        let (old, new): (Vec<Uuid>, Vec<Uuid>) =
            ids.iter().partition(|id| max_id.is_some_and(|m| **id <= m));
        // Of the rest, only ids up to the largest of the open partitions can be
        // stored (one index probe): a writer's new ids are usually all larger.
        let open_max = if new.is_empty() {
            None
        } else {
            largest_id(tx, &format!("seq >= {open}"))?
        };
        let new: Vec<Uuid> = new
            .into_iter()
            .filter(|id| open_max.is_some_and(|m| *id <= m))
            .collect();
        let mut stored = HashSet::new();
        if !new.is_empty() {
            for r in tx.query(
                &format!("SELECT id FROM audit_records WHERE seq >= {open} AND id = ANY($1)"),
                &[&new],
            )? {
                stored.insert(r.get(0));
            }
        }
        if !old.is_empty() {
            for r in tx.query("SELECT id FROM audit_records WHERE id = ANY($1)", &[&old])? {
                stored.insert(r.get(0));
            }
        }
        Ok(stored)
    }

    /// Makes sure partitions hold every position up to `last`: when the newest ends
    /// at or before it, the next ones are made (as the owner, by `audit_extend`).
    pub(super) fn extend(
        &mut self,
        tx: &mut Transaction<'_>,
        last: i64,
    ) -> Result<(), postgres::Error> {
        let end: Option<i64> = tx
            .query_one("SELECT max(end_seq) FROM audit_partitions", &[])?
            .get(0);
        if end.is_none_or(|end| end <= last) {
            tx.query_one("SELECT audit_extend($1, $2)", &[&last, &self.rows])?;
            self.made = true;
        }
        Ok(())
    }

    /// Whether a partition was made since the last call.
    pub(super) fn take_made(&mut self) -> bool {
        std::mem::take(&mut self.made)
    }
}

/// The largest id of the rows at the positions `positions` (an SQL condition with
/// the bounds written out). `max` has no `uuid` version before PostgreSQL 16.
fn largest_id(tx: &mut Transaction<'_>, positions: &str) -> Result<Option<Uuid>, postgres::Error> {
    Ok(tx
        .query_opt(
            &format!("SELECT id FROM audit_records WHERE {positions} ORDER BY id DESC LIMIT 1"),
            &[],
        )?
        .map(|r| r.get(0)))
}

/// The first row a purge of rows older than `before_ns` keeps (rows go as a prefix
/// of the chain) and how many rows come before it. Partitions are walked oldest
/// first: one wholly older than the cut-off costs a few index probes (its newest
/// time, first and last position), and only the partition holding the first row
/// to keep is searched row by row.
pub(super) fn prefix(
    client: &mut impl GenericClient,
    before_ns: i64,
) -> Result<(i64, u64), postgres::Error> {
    let mut total = 0_i64;
    for p in list(client)? {
        let row = client.query_one(
            &format!(
                "SELECT max(time_ns), min(seq), max(seq) FROM audit_records WHERE {}",
                p.positions()
            ),
            &[],
        )?;
        let (newest, first, last): (Option<i64>, Option<i64>, Option<i64>) =
            (row.get(0), row.get(1), row.get(2));
        let (Some(newest), Some(first), Some(last)) = (newest, first, last) else {
            continue;
        };
        if newest < before_ns {
            total += if p.dense {
                last - first + 1
            } else {
                count(client, &p, i64::MAX)?
            };
            continue;
        }
        let keep_from: i64 = client
            .query_one(
                &format!(
                    "SELECT min(seq) FROM audit_records WHERE {} AND time_ns >= $1",
                    p.positions()
                ),
                &[&before_ns],
            )?
            .get(0);
        total += count(client, &p, keep_from)?;
        return Ok((keep_from, total as u64));
    }
    let parts = list(client)?;
    let last = edge(client, parts.iter().rev(), "max")?;
    Ok((last.map_or(0, |l| l + 1), total as u64))
}

/// The rows of partition `p` before position `to`.
fn count(client: &mut impl GenericClient, p: &Partition, to: i64) -> Result<i64, postgres::Error> {
    Ok(client
        .query_one(
            &format!(
                "SELECT count(*) FROM audit_records WHERE {} AND seq < {to}",
                p.positions()
            ),
            &[],
        )?
        .get(0))
}

/// The `min` or `max` position of the first partition of `parts` that has rows.
/// Each statement names one partition's positions, so it is planned for that one
/// only (a statement over every partition costs ~0.15 ms per partition to plan).
fn edge<'a>(
    client: &mut impl GenericClient,
    parts: impl Iterator<Item = &'a Partition>,
    which: &str,
) -> Result<Option<i64>, postgres::Error> {
    for p in parts {
        let found: Option<i64> = client
            .query_one(
                &format!(
                    "SELECT {which}(seq) FROM audit_records WHERE {}",
                    p.positions()
                ),
                &[],
            )?
            .get(0);
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// The oldest partition holding rows.
pub(super) fn oldest(
    client: &mut impl GenericClient,
) -> Result<Option<Partition>, postgres::Error> {
    for p in list(client)? {
        if edge(client, std::iter::once(&p), "min")?.is_some() {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// The last row of a purge step that removes no more than one partition's rows
/// before `keep_from` at once (a whole partition is dropped, not deleted row by
/// row): the last position before `keep_from` in the oldest partition holding rows.
pub(super) fn whole_step(
    tx: &mut Transaction<'_>,
    keep_from: i64,
) -> Result<Option<i64>, postgres::Error> {
    let Some(p) = oldest(tx)? else {
        return Ok(None);
    };
    let end = p.end_seq.min(keep_from);
    tx.query_one(
        &format!(
            "SELECT max(seq) FROM audit_records WHERE {} AND seq < {end}",
            p.positions()
        ),
        &[],
    )
    .map(|r| r.get(0))
}
