//! Retention: what to purge, and the report of a purge.
//!
//! Two kinds: a time purge removes the oldest rows (a prefix of the chain, recorded
//! by the anchor); a tenant purge ([`Purge::tenant`]) *erases* one tenant's rows
//! wherever they sit in the chain: each keeps its position, hash and link (so the
//! chain and every checkpoint still verify) and loses its record and every column
//! that could name a person or the tenant.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::StoreError;
use crate::time::Timestamp;

/// A purge request: records older than a cut-off, optionally exported first.
///
/// Rows are removed from the start of the store up to the first row at or after the
/// cut-off, so the remaining rows stay one unbroken chain (a late row older than the
/// cut-off that follows a newer one waits for the next purge).
///
/// With [`Purge::tenant`], every record of that tenant older than the cut-off is
/// erased instead, wherever it is (see the module documentation).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use audit_runtime::{Timestamp, store::Purge};
/// let ninety_days_ago = Timestamp::from(SystemTime::now() - Duration::from_secs(90 * 86_400));
/// let p = Purge::older_than(ninety_days_ago).export("audit-archive.jsonl");
/// assert_eq!(p.export_path().unwrap().to_str(), Some("audit-archive.jsonl"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purge {
    pub(crate) before: Timestamp,
    pub(crate) export: Option<PathBuf>,
    pub(crate) chunk: usize,
    pub(crate) tenant: Option<String>,
}

impl Purge {
    /// Records with a time before `before`.
    pub fn older_than(before: Timestamp) -> Self {
        Purge {
            before,
            export: None,
            chunk: 10_000,
            tenant: None,
        }
    }

    /// Every record, whatever its age: with [`Purge::tenant`], all of a tenant's.
    pub fn everything() -> Self {
        Purge::older_than(Timestamp::from_nanos(i64::MAX))
    }

    /// Erases only `tenant`'s records (older than the cut-off) instead of removing
    /// the oldest rows: each erased row keeps its `seq`, time, event name, code,
    /// level, outcome, hash and link, and loses its record, actor, tenant, entity and
    /// description. The chain still verifies (`Verification::erased` counts such
    /// rows) and reads no longer return them. Export first to keep a copy elsewhere.
    ///
    /// ```
    /// use audit_runtime::store::Purge;
    /// let leaving = Purge::everything().tenant("acme").export("acme-archive.jsonl");
    /// assert_eq!(leaving.tenant_name(), Some("acme"));
    /// ```
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// The tenant whose records are erased, if this is a tenant purge.
    pub fn tenant_name(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// Appends the purged records to this JSON Lines file (one record per line,
    /// exactly as stored, so each still verifies against its hash) before removing
    /// them. The file is appended to and synced before each removal commits.
    pub fn export(mut self, path: impl Into<PathBuf>) -> Self {
        self.export = Some(path.into());
        self
    }

    /// Rows exported per synced write, and removed per transaction where rows are
    /// deleted one by one (default 10 000). A whole partition (PostgreSQL) or
    /// segment (SQLite) before the cut-off is dropped in one transaction instead,
    /// after its rows, when exporting, were written `rows` at a time.
    pub fn chunk(mut self, rows: usize) -> Self {
        self.chunk = rows.max(1);
        self
    }

    /// The export file, if any.
    pub fn export_path(&self) -> Option<&Path> {
        self.export.as_deref()
    }
}

/// What a purge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    /// Rows removed (a time purge).
    pub removed: u64,
    /// Rows erased (a tenant purge).
    pub erased: u64,
    /// Rows written to the export file.
    pub exported: u64,
    /// Position of the last removed row (the new anchor) or, for a tenant purge, of
    /// the last erased row, if any.
    pub last_seq: Option<i64>,
}

/// The export file of a purge: appended, synced before rows are removed.
pub(crate) struct Export {
    file: BufWriter<File>,
}

impl Export {
    pub fn open(path: &Path) -> Result<Export, StoreError> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Export {
            file: BufWriter::new(file),
        })
    }

    pub fn write(&mut self, json: &str) -> Result<(), StoreError> {
        self.file.write_all(json.as_bytes())?;
        self.file.write_all(b"\n")?;
        Ok(())
    }

    /// Makes everything written so far durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.file.flush()?;
        self.file.get_ref().sync_data()?;
        Ok(())
    }
}
