//! Retention: what to purge, and the report of a purge.

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
}

impl Purge {
    /// Records with a time before `before`.
    pub fn older_than(before: Timestamp) -> Self {
        Purge {
            before,
            export: None,
            chunk: 10_000,
        }
    }

    /// Appends the purged records to this JSON Lines file (one record per line,
    /// exactly as stored, so each still verifies against its hash) before removing
    /// them. The file is appended to and synced before each removal commits.
    pub fn export(mut self, path: impl Into<PathBuf>) -> Self {
        self.export = Some(path.into());
        self
    }

    /// Rows removed per transaction (default 10 000).
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
    /// Rows removed.
    pub removed: u64,
    /// Rows written to the export file.
    pub exported: u64,
    /// Position of the last removed row (the new anchor), if any was removed.
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
