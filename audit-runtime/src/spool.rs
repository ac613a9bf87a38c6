//! The durable local spool: what a sink could not take waits here, in order, until
//! the sink is healthy again (or the next start).
//!
//! A spool is a directory of segment files named `<sequence>.seg`, each a run of
//! frames `[payload length: u32 LE][CRC-32 of payload: u32 LE][payload]`, the payload
//! being one JSON [`SpoolEntry`]. A new segment is started by every process and every
//! rotation; segments are only appended to, and removed whole once replayed. A frame
//! whose length or checksum is wrong ends the segment's replay: the frames before it
//! are replayed, the rest is reported as corrupt.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::record::Record;

/// One spooled record and the name its sink publishes it under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpoolEntry {
    /// Published name.
    pub name: String,
    /// The record.
    pub record: Record,
}

/// A segment's unreadable tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// The segment.
    pub segment: PathBuf,
    /// Byte offset of the first bad frame.
    pub offset: u64,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "spool segment {} is corrupt from byte {}: {}",
            self.segment.display(),
            self.offset,
            self.reason
        )
    }
}

const MAX_FRAME: u32 = 64 << 20;
const SEGMENT_BYTES: u64 = 64 << 20;

/// A spool directory.
pub struct Spool {
    dir: PathBuf,
    current: Option<(PathBuf, BufWriter<File>, u64)>,
    _lock: File,
}

impl Spool {
    /// Opens (creating) the spool in `dir`, locked for this process: two processes
    /// never share a spool.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Spool> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))?;
        lock.try_lock().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!("spool {} is in use by another process", dir.display()),
            )
        })?;
        Ok(Spool {
            dir,
            current: None,
            _lock: lock,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Segment files, oldest first.
    pub fn segments(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut segs: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        segs.sort();
        Ok(segs)
    }

    /// Whether anything waits in the spool.
    pub fn is_empty(&self) -> bool {
        self.segments().map(|s| s.is_empty()).unwrap_or(true)
    }

    fn next_segment(&self) -> std::io::Result<PathBuf> {
        let last = self
            .segments()?
            .last()
            .and_then(|p| p.file_stem()?.to_str()?.parse::<u64>().ok())
            .unwrap_or(0);
        Ok(self.dir.join(format!("{:020}.seg", last + 1)))
    }

    /// Appends entries and makes them durable (`fsync`) before returning.
    pub fn append(&mut self, entries: &[SpoolEntry]) -> std::io::Result<()> {
        if self
            .current
            .as_ref()
            .is_none_or(|(_, _, size)| *size >= SEGMENT_BYTES)
        {
            let path = self.next_segment()?;
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)?;
            self.current = Some((path, BufWriter::new(file), 0));
        }
        let (_, out, size) = self.current.as_mut().expect("segment open");
        for e in entries {
            let payload = serde_json::to_vec(e).map_err(std::io::Error::other)?;
            out.write_all(&(payload.len() as u32).to_le_bytes())?;
            out.write_all(&crc32fast::hash(&payload).to_le_bytes())?;
            out.write_all(&payload)?;
            *size += 8 + payload.len() as u64;
        }
        out.flush()?;
        out.get_ref().sync_data()?;
        Ok(())
    }

    /// Closes the segment being appended to, so that it can be replayed and removed.
    pub fn seal(&mut self) {
        self.current = None;
    }

    /// Reads every whole frame of a segment, and the corruption that ended it, if any.
    pub fn read_segment(path: &Path) -> std::io::Result<(Vec<SpoolEntry>, Option<Corruption>)> {
        let mut bytes = Vec::new();
        File::open(path)?.read_to_end(&mut bytes)?;
        let mut entries = Vec::new();
        let mut at = 0usize;
        let corrupt = |offset: usize, reason: &str| Corruption {
            segment: path.to_owned(),
            offset: offset as u64,
            reason: reason.to_owned(),
        };
        while at < bytes.len() {
            let Some(header) = bytes.get(at..at + 8) else {
                return Ok((entries, Some(corrupt(at, "truncated frame header"))));
            };
            let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
            let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
            if len > MAX_FRAME {
                return Ok((entries, Some(corrupt(at, "impossible frame length"))));
            }
            let Some(payload) = bytes.get(at + 8..at + 8 + len as usize) else {
                return Ok((entries, Some(corrupt(at, "truncated frame"))));
            };
            if crc32fast::hash(payload) != crc {
                return Ok((entries, Some(corrupt(at, "checksum mismatch"))));
            }
            match serde_json::from_slice(payload) {
                Ok(e) => entries.push(e),
                Err(e) => {
                    return Ok((
                        entries,
                        Some(corrupt(at, &format!("unreadable record: {e}"))),
                    ));
                }
            }
            at += 8 + len as usize;
        }
        Ok((entries, None))
    }
}
