//! Walking a store's chain: the report, and the walk itself (fed row by row by each
//! store, so that no store holds the whole table in memory).

use std::collections::HashSet;
use std::fmt;

use super::columns::Columns;
use super::link::{ChainKey, Link};
use crate::integrity::hash_of_json;
use crate::record::Record;
use crate::time::Timestamp;

/// What the last purge left behind: the link of the last removed row, from which the
/// remaining rows continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// Position of the last removed row.
    pub seq: i64,
    /// Its link.
    pub link: Link,
    /// Rows removed by all purges so far.
    pub purged: u64,
    /// The cut-off time of the last purge.
    pub before: Timestamp,
    /// When the last purge ran.
    pub at: Timestamp,
}

/// The first row at which a store's chain breaks, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Break {
    /// The row's record no longer matches its hash, or a filter column no longer
    /// matches the record.
    Changed {
        /// Position of the row.
        seq: i64,
        /// Its record id (as stored).
        id: String,
        /// What differs.
        detail: String,
    },
    /// Rows are missing before this one.
    Removed {
        /// Position of the row after the gap.
        seq: i64,
        /// Its record id.
        id: String,
        /// Position of the last row before the gap (none: the start of the store).
        after: Option<i64>,
    },
    /// The row is not part of the chain: added afterwards, or its link forged.
    Inserted {
        /// Position of the row.
        seq: i64,
        /// Its record id.
        id: String,
    },
    /// The row belongs elsewhere in the chain.
    Reordered {
        /// Position of the row.
        seq: i64,
        /// Its record id.
        id: String,
        /// Position the chain expects the record at, or the row it must follow.
        belongs_near: i64,
    },
}

impl Break {
    /// Position of the row the break is at.
    pub fn seq(&self) -> i64 {
        match self {
            Break::Changed { seq, .. }
            | Break::Removed { seq, .. }
            | Break::Inserted { seq, .. }
            | Break::Reordered { seq, .. } => *seq,
        }
    }

    /// Record id of the row the break is at.
    pub fn id(&self) -> &str {
        match self {
            Break::Changed { id, .. }
            | Break::Removed { id, .. }
            | Break::Inserted { id, .. }
            | Break::Reordered { id, .. } => id,
        }
    }
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Break::Changed { seq, id, detail } => {
                write!(f, "record {id} (row {seq}) was changed: {detail}")
            }
            Break::Removed { seq, id, after } => match after {
                Some(a) => write!(
                    f,
                    "records were removed between row {a} and record {id} (row {seq})"
                ),
                None => write!(f, "records were removed before record {id} (row {seq})"),
            },
            Break::Inserted { seq, id } => write!(
                f,
                "record {id} (row {seq}) was inserted: it is not part of the chain"
            ),
            Break::Reordered {
                seq,
                id,
                belongs_near,
            } => write!(
                f,
                "record {id} (row {seq}) was moved: the chain places it at row {belongs_near}"
            ),
        }
    }
}

/// A table a store derives from its rows to find them (the SQLite store's
/// postings) that no longer matches those rows: a page filtered on its keys may
/// miss rows or name others ([`super::Store::check_indexes`]). Found by making
/// it again from the rows, which the chain vouches for.
///
/// ```
/// use audit_runtime::store::IndexFinding;
/// let f = IndexFinding {
///     table: "audit_postings of audit_segment_3".into(),
///     detail: "the actor postings from `u-1` differ from the rows'".into(),
/// };
/// assert!(f.to_string().starts_with("audit_postings of audit_segment_3 does not match"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFinding {
    /// The table.
    pub table: String,
    /// What differs first.
    pub detail: String,
}

impl fmt::Display for IndexFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} does not match its segment's rows: {} (keyed pages may miss records)",
            self.table, self.detail
        )
    }
}

/// The result of [`super::Store::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Rows walked.
    pub rows: u64,
    /// `sha256` or `hmac-sha256`.
    pub algorithm: &'static str,
    /// The last purge's anchor, if any purge ran.
    pub anchor: Option<Anchor>,
    /// Producer chains that start in this store (`prev_hash` null).
    pub producers: u64,
    /// Records whose producer's previous record is not in the store (removed by a
    /// purge, or sent only to other sinks by a filter). Not a break of the store's
    /// chain; a sign of loss upstream if neither applies. Producer chains are checked
    /// whatever the order their records were stored in.
    pub continued: u64,
    /// Rows erased by tenant purges: their links are checked, their content is gone.
    pub erased: u64,
    /// The first break, if the chain is broken.
    pub first_break: Option<Break>,
}

impl Verification {
    /// Whether the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// One stored row, as the walk needs it.
pub(crate) struct Row<'a> {
    pub seq: i64,
    pub hash: &'a str,
    pub link: &'a str,
    pub json: &'a str,
    pub columns: Columns<'a>,
    /// Erased by a tenant purge: only its hash and link are left to check.
    pub erased: bool,
}

/// The walk: rows in `seq` order go in one at a time; it stops at the first break.
pub(crate) struct Walk {
    key: ChainKey,
    prev: Link,
    prev_seq: Option<i64>,
    /// Every record hash seen, and every `prev_hash` referenced: producer chains are
    /// checked once all rows are in, so that records of several producers (or of one
    /// producer through several ingest processes) may interleave in any order.
    hashes: HashSet<[u8; 32]>,
    prevs: Vec<Option<[u8; 32]>>,
    report: Verification,
    /// The row at which the links disagree, awaiting classification.
    pending: Option<Pending>,
    /// Rows whose link (and count of rows up to them) a checkpoint asks for.
    witnesses: Vec<Witnessed>,
}

/// What the walk saw of one row a checkpoint names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Witnessed {
    /// The row's `seq`.
    pub seq: i64,
    /// Its link, if the walk met the row.
    pub link: Option<Link>,
    /// Rows walked with a `seq` at or before it.
    pub rows_upto: u64,
}

/// A link mismatch, classified by a second pass over the rows.
pub(crate) struct Pending {
    seq: i64,
    id: String,
    prev: Link,
    link: Link,
    hash: String,
    prev_seq: Option<i64>,
    found: Option<i64>,
}

impl Walk {
    pub fn new(key: ChainKey, anchor: Option<Anchor>) -> Walk {
        let (prev, prev_seq) = anchor
            .as_ref()
            .map_or((Link::GENESIS, None), |a| (a.link, Some(a.seq)));
        Walk {
            report: Verification {
                rows: 0,
                algorithm: key.algorithm(),
                anchor,
                producers: 0,
                continued: 0,
                erased: 0,
                first_break: None,
            },
            key,
            prev,
            prev_seq,
            hashes: HashSet::new(),
            prevs: Vec::new(),
            pending: None,
            witnesses: Vec::new(),
        }
    }

    /// Asks the walk to note the link of the row at each of `seqs`.
    pub fn witness(mut self, seqs: &[i64]) -> Walk {
        self.witnesses = seqs
            .iter()
            .map(|&seq| Witnessed {
                seq,
                link: None,
                rows_upto: 0,
            })
            .collect();
        self
    }

    /// The newest row walked intact (the anchor, or genesis, before any): the head a
    /// checkpoint records.
    pub fn head(&self) -> (i64, Link) {
        (self.prev_seq.unwrap_or(0), self.prev)
    }

    /// What the walk saw of the rows [`Walk::witness`] asked for.
    pub fn witnessed(&self) -> &[Witnessed] {
        &self.witnesses
    }

    /// Checks one row; `false` once the chain is broken (stop feeding).
    pub fn feed(&mut self, row: &Row<'_>) -> bool {
        self.report.rows += 1;
        let id = row.columns.id.to_string();
        if let Err(detail) = self.check_content(row) {
            self.report.first_break = Some(Break::Changed {
                seq: row.seq,
                id,
                detail,
            });
            return false;
        }
        let link = row.link.parse::<Link>().unwrap_or(Link::GENESIS);
        let expected = self.key.link(&self.prev, row.hash);
        if link != expected {
            let gap = self.prev_seq.map_or(row.seq > 1, |p| row.seq > p + 1);
            if gap {
                self.report.first_break = Some(Break::Removed {
                    seq: row.seq,
                    id,
                    after: self.prev_seq,
                });
                return false;
            }
            self.pending = Some(Pending {
                seq: row.seq,
                id,
                prev: self.prev,
                link,
                hash: row.hash.to_string(),
                prev_seq: self.prev_seq,
                found: None,
            });
            return false;
        }
        self.prev = link;
        self.prev_seq = Some(row.seq);
        for w in &mut self.witnesses {
            if row.seq <= w.seq {
                w.rows_upto += 1;
            }
            if row.seq == w.seq {
                w.link = Some(link);
            }
        }
        true
    }

    /// The record matches its hash, the columns match the record, and the producer
    /// chain is followed. An erased row has no content left: its hash stands for it
    /// (the link still proves the hash is the one first written).
    fn check_content(&mut self, row: &Row<'_>) -> Result<(), String> {
        if row.erased {
            self.report.erased += 1;
            if let Some(h) = digest(row.hash) {
                self.hashes.insert(h);
            }
            return Ok(());
        }
        let (stored, computed) =
            hash_of_json(row.json).ok_or("the record's JSON does not end with its hash")?;
        if stored != Some(row.hash) || computed != row.hash {
            return Err("its content no longer matches its hash".into());
        }
        let record: Record =
            serde_json::from_str(row.json).map_err(|e| format!("unreadable record: {e}"))?;
        let derived = Columns::of(&record);
        if derived != row.columns {
            return Err(column_difference(&derived, &row.columns));
        }
        match &record.prev_hash {
            None => self.report.producers += 1,
            Some(p) => self.prevs.push(digest(p)),
        }
        if let Some(h) = digest(row.hash) {
            self.hashes.insert(h);
        }
        Ok(())
    }

    /// Whether a second pass over the rows is needed to classify a link mismatch.
    pub fn needs_classification(&self) -> bool {
        self.pending.is_some()
    }

    /// Second pass: each row's `seq`, `hash` and `link`.
    pub fn classify(&mut self, seq: i64, hash: &str, link: &str) {
        let Some(p) = &mut self.pending else { return };
        if p.found.is_some() || seq == p.seq {
            return;
        }
        // The record that belongs at the broken row is this one…
        if self.key.link(&p.prev, hash) == p.link {
            p.found = Some(seq);
            return;
        }
        // …or the broken row's record belongs after this one.
        if let Ok(l) = link.parse::<Link>()
            && self.key.link(&l, &p.hash) == p.link
        {
            p.found = Some(seq + 1);
        }
    }

    pub fn finish(mut self) -> Verification {
        self.report.continued = self
            .prevs
            .iter()
            .filter(|p| p.is_none_or(|p| !self.hashes.contains(&p)))
            .count() as u64;
        if let Some(p) = self.pending.take() {
            self.report.first_break = Some(match p.found {
                Some(near) => Break::Reordered {
                    seq: p.seq,
                    id: p.id,
                    belongs_near: near,
                },
                None if p.prev_seq.is_some_and(|s| s + 1 < p.seq) => Break::Removed {
                    seq: p.seq,
                    id: p.id,
                    after: p.prev_seq,
                },
                None => Break::Inserted {
                    seq: p.seq,
                    id: p.id,
                },
            });
        }
        self.report
    }
}

/// A hash's 32 bytes (`None` if it is not 64 hex digits).
fn digest(hex: &str) -> Option<[u8; 32]> {
    hex.parse::<Link>().ok().map(|l| l.0)
}

/// Names the first column that differs from the record.
fn column_difference(derived: &Columns<'_>, stored: &Columns<'_>) -> String {
    macro_rules! compare {
        ($($field:ident),*) => {
            $(if derived.$field != stored.$field {
                return format!(
                    "column `{}` is {:?} but the record says {:?}",
                    stringify!($field), stored.$field, derived.$field
                );
            })*
        };
    }
    compare!(
        id,
        time_ns,
        event,
        code,
        category,
        level,
        outcome,
        actor_id,
        actor_email,
        tenant,
        entity_type,
        entity_type_code,
        entity_id,
        description
    );
    "columns differ".into()
}
