//! Following a store as it grows: the new records that match a query, batch by batch.

use super::{Query, Store, StoreError, Stored};

/// Where a follower of one query is: each [`Follower::next`] returns the records
/// written since the last call that match the query (its tenant included), in
/// insertion order. Rows that do not match are stepped over without being read
/// again, and an idle store costs one look at its newest position.
///
/// ```
/// # fn main() -> Result<(), audit_runtime::store::StoreError> {
/// # #[cfg(feature = "sqlite")] {
/// use audit_runtime::store::{Follower, Query, Sqlite};
/// let dir = tempfile::tempdir().unwrap();
/// let mut store = Sqlite::open(dir.path().join("audit.db"))?;
/// let mut follower = Follower::from_now(&mut store, Query::for_tenant("acme").events(["user_login"]))?;
/// assert!(follower.next(&mut store)?.is_empty());
/// # }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Follower {
    query: Query,
    after: i64,
}

impl Follower {
    /// Follows `query` from position `after` (0: from the first record). Each
    /// batch holds `query`'s limit of records at most.
    pub fn new(query: Query, after: i64) -> Self {
        let limit = query.limit.max(1);
        Follower {
            query: query.limit(limit),
            after,
        }
    }

    /// Follows `query` from the store's newest record on: only what is written next.
    pub fn from_now(store: &mut dyn Store, query: Query) -> Result<Self, StoreError> {
        Ok(Self::new(query, store.last_seq()?))
    }

    /// The position read up to: a later [`Follower::new`] with it goes on from here.
    pub fn position(&self) -> i64 {
        self.after
    }

    /// The matching records written since the last call (none when there are none
    /// yet: the caller waits and calls again).
    pub fn next(&mut self, store: &mut dyn Store) -> Result<Vec<Stored>, StoreError> {
        let head = store.last_seq()?;
        if head <= self.after {
            return Ok(Vec::new());
        }
        let rows = store.follow_matching(self.after, &self.query)?;
        let last = rows.last().map_or(self.after, |s| s.seq);
        // A full batch may have more behind it; a short one held every match up to
        // at least `head` (writers commit in position order), so the rows up to
        // `head` that did not match are never read again.
        self.after = if rows.len() >= self.query.limit {
            last
        } else {
            last.max(head)
        };
        Ok(rows)
    }
}
