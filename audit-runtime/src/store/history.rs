//! An entity's history: every record of one entity in order, its state rebuilt at
//! any time, and the inverse of a change (what a revert applies).

use serde_json::Value as Json;
use uuid::Uuid;

use super::{Cursor, Order, Query, Store, StoreError};
use crate::record::{OutcomeKind, REDACTED, Record};
use crate::time::Timestamp;

/// The records of one entity (`type:id`), oldest first.
///
/// ```
/// # fn main() -> Result<(), audit_runtime::store::StoreError> {
/// # #[cfg(feature = "sqlite")] {
/// use audit_runtime::store::{History, Query, Sqlite, State};
/// let dir = tempfile::tempdir().unwrap();
/// let mut store = Sqlite::open(dir.path().join("audit.db"))?;
/// let history = History::read(&mut store, Query::for_tenant("acme"), "user", "42")?;
/// assert!(history.records().is_empty());
/// assert_eq!(history.as_of(audit_runtime::Timestamp::now()), State::Unknown);
/// # }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    records: Vec<Record>,
}

/// What an entity looked like at a time ([`History::as_of`]).
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// No successful record of a change at or before that time: the trail does not
    /// say (the entity may predate the trail, or its changes were not audited).
    Unknown,
    /// The entity as the last change before that time left it.
    Existing {
        /// Its fields, as the record's `current` snapshot holds them. Fields the
        /// entity skips (`#[audit(skip)]`) were never recorded and are absent.
        fields: Json,
        /// Fields whose value was redacted: the state is partial for them.
        redacted: Vec<String>,
        /// The record of that change, and its time.
        record: Uuid,
        /// When that change was made.
        at: Timestamp,
    },
    /// Deleted by that change.
    Deleted {
        /// The record of the deletion.
        record: Uuid,
        /// When.
        at: Timestamp,
    },
}

impl History {
    /// Every record of entity `kind:id` that `scope` lets through (its tenant and any
    /// filters it has: `Query::for_tenant` for a tenant's view), oldest first, read
    /// page by page.
    pub fn read(
        store: &mut dyn Store,
        scope: Query,
        kind: &str,
        id: &str,
    ) -> Result<History, StoreError> {
        let query = scope
            .entity(kind, Some(id))
            .order(Order::OldestFirst)
            .limit(1000);
        let mut records = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let q = match after {
                Some(c) => query.clone().after(c),
                None => query.clone(),
            };
            let page = store.query(&q)?;
            records.extend(page.records);
            match page.next {
                Some(c) => after = Some(c),
                None => return Ok(History { records }),
            }
        }
    }

    /// The records, oldest first.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The entity's state at `time`: the `current` snapshot of the last successful
    /// change at or before it (a failed attempt changed nothing).
    pub fn as_of(&self, time: Timestamp) -> State {
        let last = self
            .records
            .iter()
            .filter(|r| r.time <= time && r.outcome == OutcomeKind::Success)
            .filter_map(|r| r.changes.as_ref().map(|c| (r, c)))
            .next_back();
        match last {
            None => State::Unknown,
            Some((r, c)) if c.current.is_null() => State::Deleted {
                record: r.id,
                at: r.time,
            },
            Some((r, c)) => {
                let mut redacted = Vec::new();
                redacted_paths(&c.current, "", &mut redacted);
                State::Existing {
                    fields: c.current.clone(),
                    redacted,
                    record: r.id,
                    at: r.time,
                }
            }
        }
    }
}

/// The paths of `v` whose value is the redaction marker.
fn redacted_paths(v: &Json, prefix: &str, out: &mut Vec<String>) {
    match v {
        Json::String(s) if s == REDACTED => out.push(prefix.to_owned()),
        Json::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                redacted_paths(v, &path, out);
            }
        }
        _ => {}
    }
}
