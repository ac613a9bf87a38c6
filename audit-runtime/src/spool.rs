//! The durable local spool: what a sink could not take waits here, in order, until
//! the sink is healthy again (or the next start). Records a sink refused for good wait
//! in its `dead` spool, each with the reason.
//!
//! # Format (version 2)
//!
//! A spool is a directory (mode 0700; files 0600; symbolic links are refused) of
//! segment files named `<number>.seg`. Numbers only grow, across restarts too: a new
//! segment takes the larger of the last number plus one and the current time in
//! microseconds. A segment starts with a 16-byte header, the magic `AUDSPL2\n` and a
//! random 64-bit segment id (little endian), followed by frames:
//!
//! ```text
//! [magic 0xA5D17F02: u32 LE][payload length: u32 LE][CRC-32 of payload: u32 LE][payload]
//! payload = [name length: u16 LE][name][reason length: u32 LE][reason][record JSON]
//! ```
//!
//! The record JSON is the exact text whose SHA-256 is the record's hash (never
//! re-serialized). Segments are only appended to, and removed whole once replayed.
//! Replay progress lives in `<number>.done`, which names the segment id it belongs to,
//! so a progress file can never be applied to another segment. A damaged frame is
//! skipped: the reader looks for the next frame magic whose length and checksum hold,
//! and reports what it skipped. Version 1 segments (no header, JSON entries) are still
//! read.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::record::Record;

/// One spooled record: the name its sink publishes it under, its JSON exactly as
/// hashed, and why it is here when a sink refused it for good.
///
/// ```
/// use audit_runtime::spool::SpoolEntry;
/// let e = SpoolEntry::new("app_launch", r#"{"id":"x"}"#);
/// assert_eq!(e.name, "app_launch");
/// assert_eq!(e.reason, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolEntry {
    /// Published name.
    pub name: String,
    /// The record's JSON, byte for byte as its hash covers it.
    pub json: String,
    /// Why a sink refused the record (dead letters only).
    pub reason: Option<String>,
}

impl SpoolEntry {
    /// An entry for `json` published as `name`.
    pub fn new(name: impl Into<String>, json: impl Into<String>) -> Self {
        SpoolEntry {
            name: name.into(),
            json: json.into(),
            reason: None,
        }
    }

    /// The record, read from its JSON.
    pub fn record(&self) -> Result<Record, serde_json::Error> {
        serde_json::from_str(&self.json)
    }

    fn encode(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let reason = self.reason.as_deref().unwrap_or("");
        let too_long = |what: &str| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a spool frame's {what} is too long"),
            )
        };
        let name_len = u16::try_from(self.name.len()).map_err(|_| too_long("name"))?;
        let reason_len = u32::try_from(reason.len()).map_err(|_| too_long("reason"))?;
        let payload_len = 2 + self.name.len() + 4 + reason.len() + self.json.len();
        if payload_len > MAX_FRAME as usize {
            return Err(too_long("record"));
        }
        let start = out.len();
        out.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
        out.extend_from_slice(&(payload_len as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        let payload = out.len();
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&reason_len.to_le_bytes());
        out.extend_from_slice(reason.as_bytes());
        out.extend_from_slice(self.json.as_bytes());
        let crc = crc32fast::hash(&out[payload..]);
        out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
        Ok(())
    }

    fn decode(payload: &[u8]) -> Option<SpoolEntry> {
        let name_len = u16::from_le_bytes(payload.get(..2)?.try_into().ok()?) as usize;
        let name = std::str::from_utf8(payload.get(2..2 + name_len)?).ok()?;
        let at = 2 + name_len;
        let reason_len = u32::from_le_bytes(payload.get(at..at + 4)?.try_into().ok()?) as usize;
        let reason = std::str::from_utf8(payload.get(at + 4..at + 4 + reason_len)?).ok()?;
        let json = std::str::from_utf8(payload.get(at + 4 + reason_len..)?).ok()?;
        Some(SpoolEntry {
            name: name.to_owned(),
            json: json.to_owned(),
            reason: (!reason.is_empty()).then(|| reason.to_owned()),
        })
    }
}

/// A damaged stretch of a segment, skipped on reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// The segment.
    pub segment: PathBuf,
    /// Byte offset where the damage starts.
    pub offset: u64,
    /// Bytes skipped (up to the next whole frame, or the end).
    pub skipped: u64,
    /// What is wrong there.
    pub reason: String,
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "spool segment {} is damaged at byte {} ({}); {} bytes skipped",
            self.segment.display(),
            self.offset,
            self.reason,
            self.skipped
        )
    }
}

/// What a segment holds: its id, its whole frames and the damage skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The id in its header (0 for a version 1 segment).
    pub id: u64,
    /// Every whole frame, in order.
    pub entries: Vec<SpoolEntry>,
    /// Damaged stretches, in order.
    pub corrupt: Vec<Corruption>,
}

/// Largest frame payload.
pub const MAX_FRAME: u32 = 64 << 20;
const SEGMENT_BYTES: u64 = 64 << 20;
const HEADER_MAGIC: &[u8; 8] = b"AUDSPL2\n";
const HEADER_LEN: usize = 16;
const FRAME_MAGIC: u32 = 0xA5D1_7F02;
const FRAME_HEAD: usize = 12;

/// The segment being appended to.
struct Current {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
}

/// A spool directory.
pub struct Spool {
    dir: PathBuf,
    current: Option<Current>,
    /// Segments at or below this number were there when the spool was opened.
    earlier: u64,
    last: u64,
    _lock: File,
}

/// The default spool directory: `$XDG_STATE_HOME/audit/spool/<program>`, else
/// `$HOME/.local/state/audit/spool/<program>`; never the shared temp directory (its
/// files would be readable, or replaceable, by other users). Fails when neither
/// variable is set: give [`crate::AuditorBuilder::spool_dir`] then.
///
/// ```
/// let dir = audit_runtime::spool::default_dir().unwrap();
/// assert!(dir.ends_with(std::path::Path::new("audit/spool").join(dir.file_name().unwrap())));
/// ```
pub fn default_dir() -> std::io::Result<PathBuf> {
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "audit".into());
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| std::path::Path::new(d).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no private state directory (neither XDG_STATE_HOME nor HOME is set): set AuditorBuilder::spool_dir",
            )
        })?;
    Ok(state.join("audit").join("spool").join(program))
}

/// Creates `dir` (and its parents) private to this user, refusing a symbolic link.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let meta = fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(std::io::Error::other(format!(
            "spool {} is not a directory (a symbolic link is refused)",
            dir.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// Options for the spool's own files: owner-only, never through a symbolic link.
fn private_file() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    o
}

fn number_of(path: &Path) -> Option<u64> {
    path.file_stem()?.to_str()?.parse().ok()
}

impl Spool {
    /// Opens (creating) the spool in `dir`, locked for this process: two processes
    /// never share a spool.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use audit_runtime::spool::{Spool, SpoolEntry};
    /// let mut spool = Spool::open(dir.path().join("store")).unwrap();
    /// spool.append(&[SpoolEntry::new("a", "{}")]).unwrap();
    /// assert!(Spool::open(dir.path().join("store")).is_err(), "locked");
    /// spool.seal();
    /// let seg = Spool::read_segment(&spool.segments().unwrap()[0]).unwrap();
    /// assert_eq!(seg.entries, [SpoolEntry::new("a", "{}")]);
    /// ```
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Spool> {
        let dir = dir.into();
        private_dir(&dir)?;
        let lock = private_file()
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
        let mut spool = Spool {
            dir,
            current: None,
            earlier: 0,
            last: 0,
            _lock: lock,
        };
        spool.last = spool
            .segments()?
            .last()
            .and_then(|p| number_of(p))
            .unwrap_or(0);
        spool.earlier = spool.last;
        spool.remove_orphans();
        Ok(spool)
    }

    /// Progress files whose segment is gone (a crash between the two removals).
    fn remove_orphans(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if p.extension().is_some_and(|e| e == "done") && !p.with_extension("seg").exists() {
                let _ = fs::remove_file(p);
            }
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Segment files, oldest first.
    pub fn segments(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut segs: Vec<(u64, PathBuf)> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .filter_map(|p| Some((number_of(&p)?, p)))
            .collect();
        segs.sort();
        Ok(segs.into_iter().map(|(_, p)| p).collect())
    }

    /// Whether `segment` was left by an earlier process (or an earlier pipeline).
    pub fn is_earlier(&self, segment: &Path) -> bool {
        number_of(segment).is_some_and(|n| n <= self.earlier)
    }

    /// Whether anything waits in the spool.
    pub fn is_empty(&self) -> bool {
        self.segments().map(|s| s.is_empty()).unwrap_or(true)
    }

    fn start_segment(&mut self) -> std::io::Result<&mut Current> {
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let number = (self.last + 1).max(now_us);
        let path = self.dir.join(format!("{number:020}.seg"));
        let file = private_file().create_new(true).append(true).open(&path)?;
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(HEADER_MAGIC);
        let id = fastrand::u64(1..);
        header[8..].copy_from_slice(&id.to_le_bytes());
        // The progress file is made now, at its full size, so that recording
        // progress later never needs free space.
        let progress = path.with_extension("done");
        let made = (&file).write_all(&header).and_then(|()| {
            private_file()
                .create_new(true)
                .write(true)
                .open(&progress)?
                .write_all(&progress_line(id, 0))
        });
        if let Err(e) = made {
            let _ = fs::remove_file(&path);
            let _ = fs::remove_file(&progress);
            return Err(e);
        }
        self.last = number;
        Ok(self.current.insert(Current {
            path,
            out: BufWriter::with_capacity(256 << 10, file),
            size: HEADER_LEN as u64,
        }))
    }

    /// Appends entries and makes them durable (`fsync`) before returning. On error
    /// (a full disk, an entry over [`MAX_FRAME`]) nothing of this call stays in the
    /// spool: the segment is cut back to where it was and sealed, and the error says
    /// how many entries were not written.
    pub fn append(&mut self, entries: &[SpoolEntry]) -> std::io::Result<()> {
        let not_written = |e: std::io::Error, dir: &Path| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "{} records not written to spool {}: {e}",
                    entries.len(),
                    dir.display()
                ),
            )
        };
        let mut frames = Vec::with_capacity(entries.iter().map(|e| e.json.len() + 64).sum());
        for e in entries {
            e.encode(&mut frames)
                .map_err(|e| not_written(e, &self.dir))?;
        }
        if self
            .current
            .as_ref()
            .is_none_or(|c| c.size >= SEGMENT_BYTES)
        {
            self.seal();
            if let Err(e) = self.start_segment() {
                return Err(not_written(e, &self.dir));
            }
        }
        let current = self.current.as_mut().expect("segment open");
        let before = current.size;
        let written = current
            .out
            .write_all(&frames)
            .and_then(|()| current.out.flush())
            .and_then(|()| current.out.get_ref().sync_data());
        match written {
            Ok(()) => {
                current.size += frames.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Drop what the buffer still holds, cut the file back, seal it.
                let Current { path, out, .. } = self.current.take().expect("segment open");
                let (file, _) = out.into_parts();
                let _ = file.set_len(before);
                let _ = file.sync_data();
                if before == HEADER_LEN as u64 {
                    let _ = fs::remove_file(&path);
                }
                Err(not_written(e, &self.dir))
            }
        }
    }

    /// Closes the segment being appended to, so that it can be replayed and removed.
    pub fn seal(&mut self) {
        self.current = None;
    }

    /// Reads every whole frame of a segment, skipping damaged stretches.
    pub fn read_segment(path: &Path) -> std::io::Result<Segment> {
        let mut bytes = Vec::new();
        File::open(path)?.read_to_end(&mut bytes)?;
        if !bytes.starts_with(HEADER_MAGIC) {
            return Ok(read_v1(path, &bytes));
        }
        let id = u64::from_le_bytes(
            bytes
                .get(8..HEADER_LEN)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 8]),
        );
        let mut segment = Segment {
            id,
            entries: Vec::new(),
            corrupt: Vec::new(),
        };
        let mut at = HEADER_LEN.min(bytes.len());
        while at < bytes.len() {
            match frame_at(&bytes, at) {
                Ok((entry, next)) => {
                    segment.entries.push(entry);
                    at = next;
                }
                Err(reason) => {
                    let resume = (at + 1..bytes.len())
                        .find(|&i| frame_at(&bytes, i).is_ok())
                        .unwrap_or(bytes.len());
                    segment.corrupt.push(Corruption {
                        segment: path.to_owned(),
                        offset: at as u64,
                        skipped: (resume - at) as u64,
                        reason: reason.to_owned(),
                    });
                    at = resume;
                }
            }
        }
        Ok(segment)
    }

    /// How many frames of `segment` an earlier replay delivered (0 when its progress
    /// file is missing, torn, or belongs to another segment: frames may then be
    /// offered again, never skipped).
    pub fn progress(segment: &Path, id: u64) -> usize {
        let text = fs::read_to_string(segment.with_extension("done")).unwrap_or_default();
        let line = text.lines().next().unwrap_or_default();
        let Some((body, crc)) = line.rsplit_once(' ') else {
            return 0;
        };
        if u32::from_str_radix(crc, 16).ok() != Some(crc32fast::hash(body.as_bytes())) {
            return 0;
        }
        match body.split_once(' ') {
            Some((owner, done)) if owner == format!("{id:016x}") => done.parse().unwrap_or(0),
            _ => 0,
        }
    }

    /// Records that the first `done` frames of `segment` were delivered. The progress
    /// file has a fixed size and is created with its segment, so this overwrites it in
    /// place and syncs it: it needs no free space (a full disk does not stop it), and a
    /// torn write fails its checksum (then replay starts over; it never skips).
    pub fn set_progress(segment: &Path, id: u64, done: usize) -> std::io::Result<()> {
        let mut f = private_file()
            .create(true)
            .truncate(false)
            .write(true)
            .open(segment.with_extension("done"))?;
        f.write_all(&progress_line(id, done))?;
        f.sync_data()
    }

    /// Removes a replayed segment, then its progress file.
    pub fn remove_segment(segment: &Path) -> std::io::Result<()> {
        fs::remove_file(segment)?;
        match fs::remove_file(segment.with_extension("done")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// A progress file's content: `<segment id> <frames done> <CRC-32 of the two>`,
/// always 47 bytes.
fn progress_line(id: u64, done: usize) -> Vec<u8> {
    let body = format!("{id:016x} {done:020}");
    format!("{body} {:08x}\n", crc32fast::hash(body.as_bytes())).into_bytes()
}

/// The version 2 frame at `at`, and where the next one starts.
fn frame_at(bytes: &[u8], at: usize) -> Result<(SpoolEntry, usize), &'static str> {
    let head = bytes
        .get(at..at + FRAME_HEAD)
        .ok_or("truncated frame header")?;
    let word = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().expect("4 bytes"));
    if word(0) != FRAME_MAGIC {
        return Err("no frame starts here");
    }
    let len = word(4);
    if len > MAX_FRAME {
        return Err("impossible frame length");
    }
    let payload = bytes
        .get(at + FRAME_HEAD..at + FRAME_HEAD + len as usize)
        .ok_or("truncated frame")?;
    if crc32fast::hash(payload) != word(8) {
        return Err("checksum mismatch");
    }
    let entry = SpoolEntry::decode(payload).ok_or("malformed frame payload")?;
    Ok((entry, at + FRAME_HEAD + len as usize))
}

/// A version 1 segment: `[len][crc][JSON {"name", "record"}]` frames, no header; read
/// up to its first damage.
fn read_v1(path: &Path, bytes: &[u8]) -> Segment {
    #[derive(serde::Deserialize)]
    struct V1 {
        name: String,
        record: Record,
    }
    let mut segment = Segment {
        id: 0,
        entries: Vec::new(),
        corrupt: Vec::new(),
    };
    let mut at = 0usize;
    while at < bytes.len() {
        let frame = bytes.get(at..at + 8).and_then(|h| {
            let len = u32::from_le_bytes(h[..4].try_into().ok()?) as usize;
            let crc = u32::from_le_bytes(h[4..].try_into().ok()?);
            let payload = bytes.get(at + 8..at + 8 + len)?;
            (crc32fast::hash(payload) == crc).then_some(())?;
            let v1: V1 = serde_json::from_slice(payload).ok()?;
            Some((v1, 8 + len))
        });
        let Some((v1, len)) = frame else {
            segment.corrupt.push(Corruption {
                segment: path.to_owned(),
                offset: at as u64,
                skipped: (bytes.len() - at) as u64,
                reason: "damaged version 1 frame".into(),
            });
            break;
        };
        segment.entries.push(SpoolEntry {
            name: v1.name,
            json: v1.record.to_json(),
            reason: None,
        });
        at += len;
    }
    segment
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> SpoolEntry {
        SpoolEntry::new(format!("e{i}"), format!(r#"{{"n":{i}}}"#))
    }

    #[test]
    fn damage_in_the_middle_skips_only_the_damaged_frame() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        spool
            .append(&(0..10).map(entry).collect::<Vec<_>>())
            .unwrap();
        spool.seal();
        let seg = spool.segments().unwrap().remove(0);
        let mut bytes = fs::read(&seg).unwrap();
        // Flip a byte inside the fourth frame's payload.
        let frame = FRAME_HEAD + 2 + 2 + 4 + 7;
        bytes[HEADER_LEN + 3 * frame + FRAME_HEAD + 5] ^= 0xff;
        fs::write(&seg, &bytes).unwrap();
        let read = Spool::read_segment(&seg).unwrap();
        let names: Vec<_> = read.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["e0", "e1", "e2", "e4", "e5", "e6", "e7", "e8", "e9"]
        );
        assert_eq!(read.corrupt.len(), 1);
        assert_eq!(read.corrupt[0].skipped, frame as u64);
    }

    #[test]
    fn numbers_grow_across_reopenings_and_progress_belongs_to_its_segment() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let mut spool = Spool::open(dir.path()).unwrap();
            spool.append(&[entry(0)]).unwrap();
            spool.seal();
            let seg = spool.segments().unwrap().remove(0);
            let id = Spool::read_segment(&seg).unwrap().id;
            Spool::set_progress(&seg, id, 1).unwrap();
            assert_eq!(Spool::progress(&seg, id), 1);
            Spool::remove_segment(&seg).unwrap();
            seg
        };
        let mut spool = Spool::open(dir.path()).unwrap();
        spool.append(&[entry(1)]).unwrap();
        spool.seal();
        let second = spool.segments().unwrap().remove(0);
        assert!(second > first, "{second:?} reuses {first:?}");
        // A stale progress file under the new segment's name is not applied to it.
        let id = Spool::read_segment(&second).unwrap().id;
        Spool::set_progress(&second, id ^ 1, 1).unwrap();
        assert_eq!(Spool::progress(&second, id), 0);
    }

    #[test]
    fn an_oversized_entry_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let big = SpoolEntry::new("big", "x".repeat(MAX_FRAME as usize));
        let err = spool.append(&[entry(0), big]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(spool.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn the_spool_is_private_and_refuses_symbolic_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path().join("s")).unwrap();
        spool.append(&[entry(0)]).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("s")), 0o700);
        assert_eq!(mode(&spool.segments().unwrap()[0]), 0o600);
        std::os::unix::fs::symlink(dir.path().join("s"), dir.path().join("link")).unwrap();
        drop(spool);
        assert!(Spool::open(dir.path().join("link")).is_err());
    }
}
