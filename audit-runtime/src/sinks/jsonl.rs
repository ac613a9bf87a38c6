//! A JSON Lines file, plain or zstd-compressed, with rotation by size and by time,
//! and a retention count.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::writeback::Writeback;
use super::{Batch, Item, Sink, SinkError};

/// Appends one JSON record per line to a file.
///
/// When the file reaches `rotate_bytes`, or is older than `rotate_every`, it is renamed
/// to `<name>.<nanoseconds since epoch>` (names sort by age) and a new file is started;
/// only the newest `keep` rotated files are kept. A sink with an alias set writes the
/// published name as a `"name"` key before the record's keys.
///
/// Each batch is written into the file (the operating system's cache) before the
/// sink reports it delivered; the file is synced to disk when the pipeline flushes
/// the sink (at shutdown and on [`Auditor::flush`](crate::Auditor::flush)) and at
/// rotation. In between, on Linux, every [`write_back_every`](Self::write_back_every)
/// bytes the sink asks the kernel to start writing what it holds, so the next sync
/// waits for the last few megabytes instead of the whole file.
///
/// When a batch's write fails part way (a full disk), the sink cuts the file back
/// to where the batch began before it reports the error, so the pipeline's retry
/// writes the batch once, whole. (Lines that a rotation during the batch left in
/// the previous file are written again.)
/// [`zstd`](Self::zstd) keeps the file compressed.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use std::time::Duration;
/// let sink = audit_runtime::sinks::JsonLines::open(dir.path().join("audit.jsonl"))
///     .unwrap()
///     .rotate_bytes(64 << 20)
///     .rotate_every(Duration::from_secs(24 * 3600))
///     .keep(14);
/// # let _ = sink;
/// ```
pub struct JsonLines {
    path: PathBuf,
    name: String,
    out: BufWriter<File>,
    size: u64,
    opened: Instant,
    max_bytes: Option<u64>,
    max_age: Option<Duration>,
    keep: usize,
    line: Vec<u8>,
    /// The file's size when the batch being written began (or the new file's).
    batch_start: u64,
    writeback: Writeback,
    /// Set by [`JsonLines::zstd`]: each batch's lines are one zstd frame.
    #[cfg(feature = "zstd")]
    zstd: Option<Zstd>,
}

/// A compressed file's encoder and the batch's lines before they are compressed.
#[cfg(feature = "zstd")]
struct Zstd {
    encoder: zstd::bulk::Compressor<'static>,
    frame: Vec<u8>,
}

/// The file's write buffer.
const BUFFER: usize = 256 << 10;

fn open_append(path: &Path) -> std::io::Result<(BufWriter<File>, u64)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((BufWriter::with_capacity(BUFFER, file), size))
}

impl JsonLines {
    /// The default of [`write_back_every`](Self::write_back_every): 8 MiB.
    ///
    /// ```
    /// assert_eq!(audit_runtime::sinks::JsonLines::WRITE_BACK_EVERY, 8 << 20);
    /// ```
    pub const WRITE_BACK_EVERY: u64 = 8 << 20;

    /// Opens (or creates) `path` for appending. No rotation until configured;
    /// `keep` defaults to 10.
    pub fn open(path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        let (out, size) = open_append(&path)?;
        let name = format!(
            "jsonl-{}",
            path.file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default()
        );
        Ok(JsonLines {
            path,
            name,
            out,
            size,
            opened: Instant::now(),
            max_bytes: None,
            max_age: None,
            keep: 10,
            line: Vec::with_capacity(1024),
            batch_start: size,
            writeback: Writeback::new(Self::WRITE_BACK_EVERY, size),
            #[cfg(feature = "zstd")]
            zstd: None,
        })
    }

    /// Rotates when the file would grow past `bytes`.
    pub fn rotate_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes.max(1));
        self
    }

    /// Rotates when the file has been written for `every`.
    pub fn rotate_every(mut self, every: Duration) -> Self {
        self.max_age = Some(every);
        self
    }

    /// Keeps the newest `n` rotated files.
    pub fn keep(mut self, n: usize) -> Self {
        self.keep = n;
        self
    }

    /// Starts the disk writing the file's new pages each time `bytes` were written
    /// since the last start (Linux `sync_file_range`, without waiting for it; other
    /// systems ignore it). The default is [`JsonLines::WRITE_BACK_EVERY`]; 0
    /// turns it off, leaving every page to the next sync.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let sink = audit_runtime::sinks::JsonLines::open(dir.path().join("audit.jsonl"))
    ///     .unwrap()
    ///     .write_back_every(32 << 20);
    /// # let _ = sink;
    /// ```
    pub fn write_back_every(mut self, bytes: u64) -> Self {
        self.writeback.every = bytes;
        self
    }

    /// Compresses the file with [zstd](https://datatracker.ietf.org/doc/html/rfc8878)
    /// at `level` (1 is fast, ~12x smaller for typical records; negative levels
    /// faster still, 19 smallest): each batch's lines become one frame, with a
    /// content checksum, appended to the file. The file is then a zstd stream of
    /// frames, readable with `zstdcat FILE | jq` and checked by `audit verify --db
    /// FILE`; a write cut short leaves every frame before it readable. Sizes for
    /// [`rotate_bytes`](Self::rotate_bytes) count the compressed bytes. Feature
    /// `zstd` (on with the default `sqlite`).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let sink = audit_runtime::sinks::JsonLines::open(dir.path().join("audit.jsonl.zst"))?
    ///     .zstd(1)?
    ///     .rotate_bytes(64 << 20);
    /// # let _ = sink;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "zstd")]
    pub fn zstd(mut self, level: i32) -> std::io::Result<Self> {
        let mut encoder = zstd::bulk::Compressor::new(level)?;
        encoder.include_checksum(true)?;
        self.zstd = Some(Zstd {
            encoder,
            frame: Vec::new(),
        });
        Ok(self)
    }

    /// The rotated files, oldest first.
    pub fn rotated_files(&self) -> std::io::Result<Vec<PathBuf>> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let prefix = format!(
            "{}.",
            self.path
                .file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default()
        );
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.strip_prefix(&prefix)
                    .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|e| e.path())
            .collect();
        files.sort();
        Ok(files)
    }

    /// Appends the batch's lines, or with [`zstd`](Self::zstd) one frame of them.
    fn write_lines(&mut self, batch: &Batch, named: &mut Vec<u8>) -> Result<(), SinkError> {
        #[cfg(feature = "zstd")]
        if let Some(zstd) = self.zstd.as_mut() {
            zstd.frame.clear();
            for item in batch {
                zstd.frame.extend_from_slice(line_of(item, named)?);
                zstd.frame.push(b'\n');
            }
            let frame = zstd.encoder.compress(&zstd.frame)?;
            return Ok(self.append(&[&frame])?);
        }
        for item in batch {
            self.append(&[line_of(item, named)?, b"\n"])?;
        }
        Ok(())
    }

    /// Writes `parts` as one piece, into a new file first when they would take
    /// this one past `rotate_bytes`.
    fn append(&mut self, parts: &[&[u8]]) -> std::io::Result<()> {
        let len = parts.iter().map(|p| p.len() as u64).sum::<u64>();
        if self
            .max_bytes
            .is_some_and(|max| self.size > 0 && self.size + len > max)
        {
            self.rotate()?;
        }
        for part in parts {
            self.out.write_all(part)?;
        }
        self.size += len;
        Ok(())
    }

    /// After a failed batch (a full disk, a record that would not serialize): cuts
    /// the file back to where the batch began and drops what is still buffered, so
    /// that the retry writes the batch once and whole (a compressed file would not
    /// read past a torn frame). Lines a rotation during the batch put in the
    /// previous file stay there, and are written again with the retry.
    fn take_back(&mut self) {
        let cut = self.out.get_ref().try_clone().and_then(|file| {
            // Not flushed: what the batch left in the buffer is dropped.
            let buffered = std::mem::replace(&mut self.out, BufWriter::with_capacity(BUFFER, file));
            let _ = buffered.into_parts();
            self.out.get_ref().set_len(self.batch_start)
        });
        match cut {
            Ok(()) => {
                self.size = self.batch_start;
                self.writeback.synced(self.size);
            }
            Err(e) => eprintln!(
                "audit: `{}`: a failed batch could not be taken back from the file: {e}",
                self.path.display()
            ),
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let mut rotated = self.path.clone().into_os_string();
        rotated.push(format!(".{nanos:020}"));
        fs::rename(&self.path, &rotated)?;
        let (out, size) = open_append(&self.path)?;
        self.out = out;
        self.size = size;
        self.batch_start = size;
        self.writeback.synced(size);
        self.opened = Instant::now();
        let files = self.rotated_files()?;
        for old in files.iter().take(files.len().saturating_sub(self.keep)) {
            fs::remove_file(old)?;
        }
        Ok(())
    }
}

impl Sink for JsonLines {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        if self.max_age.is_some_and(|age| self.opened.elapsed() >= age) && self.size > 0 {
            self.rotate()?;
        }
        // Taken out for the batch, so that a line borrowed from it can be written
        // by `&mut self`.
        let mut named = std::mem::take(&mut self.line);
        self.batch_start = self.size;
        let written = self
            .write_lines(batch, &mut named)
            .and_then(|()| Ok(self.out.flush()?));
        self.line = named;
        if written.is_err() {
            self.take_back();
        }
        written?;
        self.writeback.wrote(self.out.get_ref(), self.size);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        self.writeback.synced(self.size);
        Ok(())
    }
}

/// The line of `item`: its record's JSON, or with an alias set the record with the
/// published name as a `"name"` key first (made in `named`).
fn line_of<'a>(item: &'a Item, named: &'a mut Vec<u8>) -> Result<&'a [u8], SinkError> {
    if *item.name() == *item.record().event {
        return Ok(item.json().as_bytes());
    }
    named.clear();
    let mut v =
        serde_json::to_value(item.record()).map_err(|e| SinkError::permanent(e.to_string()))?;
    if let serde_json::Value::Object(m) = &mut v {
        m.shift_insert(
            0,
            "name".into(),
            serde_json::Value::String(item.name().to_string()),
        );
    }
    serde_json::to_writer(&mut *named, &v).map_err(|e| SinkError::permanent(e.to_string()))?;
    Ok(named)
}
