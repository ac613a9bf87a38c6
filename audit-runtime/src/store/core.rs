//! What every store does the same way, written once over the small traits each
//! database implements: the verification walk over one read snapshot ([`Snapshot`],
//! [`verify`]), the purge loop ([`Purger`], [`purge`]), the anchor, the key check
//! ([`MetaTable`], [`check_key`]) and reading a row's filter columns
//! ([`ColumnSource`]). The SQL and the driver calls stay in `sqlite/` and `postgres/`.

use std::borrow::Cow;

use super::StoreError;
use super::checkpoint::Witness;
use super::columns::Columns;
use super::link::{ChainKey, KeyState, key_state};
use super::purge::{Export, Purge, PurgeReport};
use super::verify::{Anchor, Row, Walk};
use crate::time::Timestamp;

/// How a store's SQL reads a row's hash and link (64 hex digits) and record (JSON
/// text), whatever way they are stored.
pub(crate) struct AsText {
    pub hash: &'static str,
    pub link: &'static str,
    pub record: &'static str,
}

/// The columns a verification reads, in [`ColumnSource`]'s order (0-3: seq, hash,
/// link, record; then the filter columns; 18: whether the row is erased). `cast` is
/// appended to the record and id columns (PostgreSQL reads them as `::text`).
pub(crate) fn row_columns(text: &AsText, cast: &str) -> String {
    let AsText { hash, link, record } = text;
    format!(
        "seq, {hash}, {link}, {record}{cast}, id{cast}, time_ns, event, code, category, level, \
         outcome, actor_id, actor_email, tenant, entity_type, entity_type_code, entity_id, \
         description, erased_ns IS NOT NULL"
    )
}

/// The record of an erased row.
pub(crate) const ERASED_RECORD: &str = "null";

/// What a tenant purge sets in an erased row (`erased_columns!`): `seq`, `id`,
/// `time_ns`, `event`, `code`, `category`, `level`, `outcome`, `hash` and `link`
/// stay, so the chain still verifies.
#[cfg(feature = "sqlite")]
pub(crate) const ERASED_COLUMNS: &str = erased_columns!();

/// An anchor row as stored: `seq, link, purged, before_ns, at_ns`.
pub(crate) type AnchorRow = (i64, String, i64, i64, i64);

/// The anchor of a stored anchor row (its link checked).
pub(crate) fn anchor_of((seq, link, purged, before, at): AnchorRow) -> Result<Anchor, StoreError> {
    Ok(Anchor {
        seq,
        link: link.parse().map_err(|m| StoreError::Corrupt {
            seq,
            message: format!("anchor link: {m}"),
        })?,
        purged: purged as u64,
        before: Timestamp::from_nanos(before),
        at: Timestamp::from_nanos(at),
    })
}

/// One consistent read of a store, for [`witness`].
pub(crate) trait Snapshot {
    /// The store's identity (`audit_meta.store_id`), if it has one.
    fn store_id(&mut self) -> Result<Option<String>, StoreError>;
    /// The newest anchor row, if a purge ran.
    fn anchor(&mut self) -> Result<Option<AnchorRow>, StoreError>;
    /// Every row (selected with [`row_columns`]) in `seq` order, until `each` says stop.
    fn rows(&mut self, each: &mut dyn FnMut(&Row<'_>) -> bool) -> Result<(), StoreError>;
    /// Every row's `seq`, `hash` and `link`, in `seq` order.
    fn links(&mut self, each: &mut dyn FnMut(i64, &str, &str)) -> Result<(), StoreError>;
}

/// Walks a snapshot: every row against its hash, its columns and the link chain
/// from the anchor; a second pass classifies a broken link. Notes the head and the
/// rows at `seqs` for checkpoints.
pub(crate) fn witness(
    snapshot: &mut dyn Snapshot,
    key: ChainKey,
    seqs: &[i64],
) -> Result<Witness, StoreError> {
    let store = snapshot.store_id()?;
    let anchor = snapshot.anchor()?.map(anchor_of).transpose()?;
    let mut walk = Walk::new(key, anchor).witness(seqs);
    snapshot.rows(&mut |row| walk.feed(row))?;
    if walk.needs_classification() {
        snapshot.links(&mut |seq, hash, link| walk.classify(seq, hash, link))?;
    }
    let head = walk.head();
    let at = walk.witnessed().to_vec();
    Ok(Witness {
        store,
        head,
        at,
        verification: walk.finish(),
    })
}

/// Where a purge's rows go before they are removed (the export).
pub(crate) type Keep<'a> = dyn FnMut(&[&str]) -> Result<(), StoreError> + 'a;

/// Hands records read one by one to a [`Keep`], `chunk` at a time (each hand-over
/// is one synced write of the export).
pub(crate) struct Chunks<'k, 'a> {
    keep: &'k mut Keep<'a>,
    chunk: usize,
    records: Vec<String>,
}

impl<'k, 'a> Chunks<'k, 'a> {
    pub(crate) fn new(keep: &'k mut Keep<'a>, chunk: usize) -> Self {
        Chunks {
            keep,
            chunk: chunk.max(1),
            records: Vec::new(),
        }
    }

    /// Adds a record, handing the chunk over once it is full.
    pub(crate) fn push(&mut self, record: String) -> Result<(), StoreError> {
        self.records.push(record);
        if self.records.len() >= self.chunk {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands over what is left.
    pub(crate) fn flush(&mut self) -> Result<(), StoreError> {
        if !self.records.is_empty() {
            (self.keep)(&self.records.iter().map(String::as_str).collect::<Vec<_>>())?;
            self.records.clear();
        }
        Ok(())
    }
}

/// The database side of a purge.
pub(crate) trait Purger {
    /// The first row to keep (the first at or after `before_ns`; rows are removed as a
    /// prefix of the chain) and how many rows lie before it.
    fn prefix(&mut self, before_ns: i64) -> Result<(i64, u64), StoreError>;
    /// In one transaction: the first `chunk` rows before `keep_from`, whose JSON goes
    /// to `keep` (when the purge exports) before anything is removed; then their
    /// removal and a new anchor (the last removed row's `seq` and `link`, the total
    /// purged, `before_ns` and now). Without `keep`, a store may remove more than
    /// `chunk` rows at once when they make up a whole partition. Returns how many
    /// rows were removed and the last one's `seq`, or `None` when none is left.
    fn remove_chunk(
        &mut self,
        keep_from: i64,
        chunk: usize,
        before_ns: i64,
        keep: Option<&mut Keep<'_>>,
    ) -> Result<Option<(u64, i64)>, StoreError>;

    /// How many rows of `tenant` (as stored in the column) older than `before_ns`
    /// are not erased yet.
    fn erasable(&mut self, tenant: &str, before_ns: i64) -> Result<u64, StoreError>;

    /// In one transaction: the first `chunk` such rows, whose JSON goes to `keep`
    /// first; then their erasure ([`ERASED_COLUMNS`], `erased_ns` set). Returns how
    /// many rows were erased and the last one's `seq`, or `None` when none is left.
    fn erase_chunk(
        &mut self,
        tenant: &str,
        before_ns: i64,
        chunk: usize,
        keep: &mut dyn FnMut(&[&str]) -> Result<(), StoreError>,
    ) -> Result<Option<(u64, i64)>, StoreError>;
}

/// Removes old records (or erases a tenant's) chunk by chunk, each chunk's export
/// synced before its removal commits (a crash in between repeats export lines,
/// never loses rows).
pub(crate) fn purge(
    purger: &mut dyn Purger,
    purge: &Purge,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<PurgeReport, StoreError> {
    let before = purge.before.as_nanos();
    // The tenant as the column holds it (long names are truncated the same way).
    let tenant = purge
        .tenant
        .as_deref()
        .map(|t| super::columns::column_text(t, true).into_owned());
    let (keep_from, total) = match &tenant {
        Some(t) => (0, purger.erasable(t, before)?),
        None => purger.prefix(before)?,
    };
    let mut export = purge.export.as_deref().map(Export::open).transpose()?;
    let mut report = PurgeReport {
        removed: 0,
        erased: 0,
        exported: 0,
        last_seq: None,
    };
    progress(0, total);
    let exporting = export.is_some();
    loop {
        let mut exported = 0;
        let mut keep = |records: &[&str]| {
            if let Some(export) = &mut export {
                // Rows erased earlier have nothing left to export.
                for json in records.iter().filter(|j| **j != ERASED_RECORD) {
                    export.write(json)?;
                    exported += 1;
                }
                export.sync()?;
            }
            Ok(())
        };
        let done = match &tenant {
            Some(t) => purger.erase_chunk(t, before, purge.chunk, &mut keep)?,
            None => purger.remove_chunk(
                keep_from,
                purge.chunk,
                before,
                exporting.then_some(&mut keep as &mut Keep<'_>),
            )?,
        };
        let Some((n, last_seq)) = done else { break };
        report.exported += exported;
        match tenant {
            Some(_) => report.erased += n,
            None => report.removed += n,
        }
        report.last_seq = Some(last_seq);
        progress(report.removed + report.erased, total);
    }
    Ok(report)
}

/// The `audit_meta` table: what a store records about its chain.
pub(crate) trait MetaTable {
    /// Sets the chain's algorithm and key fingerprint unless they are set, in one
    /// statement (the first opener wins a race, with both values).
    fn init(&mut self, chain: &str, key_check: &str) -> Result<(), StoreError>;
    /// Sets `key` to `value` unless it is set.
    fn put(&mut self, key: &str, value: &str) -> Result<(), StoreError>;
    /// The value of `key`.
    fn get(&mut self, key: &str) -> Result<Option<String>, StoreError>;
}

/// Records the chain's algorithm and key fingerprint on first open; afterwards,
/// whether `key` may write and verify the chain (another key is refused).
pub(crate) fn check_key(meta: &mut dyn MetaTable, key: &ChainKey) -> Result<KeyState, StoreError> {
    // Read first: a read-only role opens a store whose chain is already recorded.
    if meta.get("chain")?.is_none() {
        meta.init(key.algorithm(), &key.fingerprint())?;
    }
    if meta.get("store_id")?.is_none() {
        // A store made before checkpoints gets its identity from the first opener
        // that may write; a read-only role leaves it to the next writer.
        let _ = meta.put("store_id", &uuid::Uuid::now_v7().to_string());
    }
    let algorithm = meta.get("chain")?.unwrap_or_default();
    key_state(&algorithm, meta.get("key_check")?.as_deref(), key)
}

/// A database row selected with [`row_columns`], read by column index.
pub(crate) trait ColumnSource {
    /// A text column.
    fn text(&self, i: usize) -> Result<String, StoreError>;
    /// A nullable text column.
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    /// An integer column.
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    /// A nullable integer column.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    /// A boolean column (SQLite: an integer).
    fn flag(&self, i: usize) -> Result<bool, StoreError>;

    /// The filter columns (4-17).
    fn filter_columns(&self) -> Result<Columns<'static>, StoreError> {
        let text = |i| self.text(i).map(Cow::Owned);
        let opt = |i| self.opt_text(i).map(|v| v.map(Cow::Owned));
        Ok(Columns {
            id: text(4)?,
            time_ns: self.int(5)?,
            event: text(6)?,
            code: self.int(7)?,
            category: text(8)?,
            level: text(9)?,
            outcome: text(10)?,
            actor_id: opt(11)?,
            actor_email: opt(12)?,
            tenant: opt(13)?,
            entity_type: opt(14)?,
            entity_type_code: self.opt_int(15)?,
            entity_id: opt(16)?,
            description: text(17)?,
        })
    }
}
