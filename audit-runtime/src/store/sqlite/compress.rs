//! Compact rows (schema 5): a row written once the store has a dictionary holds its
//! `record` as a zstd frame made with that dictionary, trained on the store's own
//! records, and its `hash` and `link` as 32 bytes each; rows written before hold
//! the JSON text and 64 hex digits.
//!
//! The hash still covers the exact JSON text: decompressing gives it back byte for
//! byte. A frame names its dictionary by the zstd dictionary id in its header; the
//! dictionaries live in `audit_dictionaries`, append-only (a few KiB each, one per
//! [`DEFAULT_RETRAIN_ROWS`] rows by default), removed only by a purge once no row
//! written with them is left.
//!
//! Every read goes through the SQL functions `audit_record(record)` ([`RECORD`])
//! and `audit_hex(hash)` ([`AS_TEXT`]), registered on each connection: the JSON
//! text and hex digits of a row, whichever way it is stored. Field filters and their indexes use it too, so that they read the same
//! text. A frame that cannot be decoded (a changed blob, a missing dictionary) reads
//! as the empty text, which matches no hash: the verification names the row.
//!
//! Dictionaries are trained on records cut down to what several tenants share
//! (`samples.rs`): a word stays only if records of three tenants hold it at the same
//! place. A dictionary never holds a tenant's own data (an actor's email, a name),
//! so a tenant purge that erases rows leaves no copy of them behind; a purge that
//! removes every row written with a dictionary removes the dictionary too.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::num::NonZeroU32;
use std::sync::Mutex;

use rusqlite::functions::FunctionFlags;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, params};
use zstd::zstd_safe::{self, CCtx, CDict, CParameter, DCtx, DDict};

use super::segments::Segment;
use crate::store::core::AsText;
use crate::time::Timestamp;

/// The SQL expression of a row's record as JSON text.
pub(crate) const RECORD: &str = "audit_record(record)";

/// A row's hash, link and record as text (`audit_hex`, `audit_record`).
pub(crate) const AS_TEXT: AsText = AsText {
    hash: "audit_hex(hash)",
    link: "audit_hex(link)",
    record: RECORD,
};

/// The largest record a frame may claim to hold (records are at most 1 MiB,
/// `docs/FORMAT.md`; this leaves room for what the size rules add).
const MAX_RECORD: u64 = 4 << 20;

/// The size a trained dictionary aims at.
const DICTIONARY_BYTES: usize = 16 * 1024;

/// How many of the newest records a dictionary is trained on.
const SAMPLE_ROWS: usize = 500;

/// The default of [`SqliteOptions::retrain_rows`](super::SqliteOptions::retrain_rows).
pub const DEFAULT_RETRAIN_ROWS: usize = 200_000;

/// zstd's level: on the bench's records, 1 measured 209 bytes per record at ~3 µs,
/// 3 gave 204 at ~3.7 µs, -1 282 at ~3.2 µs.
const LEVEL: i32 = 1;

/// What [`register`]ed functions are: the same result for the same argument, and
/// harmless in a schema (index expressions use them).
const PURE: FunctionFlags = FunctionFlags::SQLITE_UTF8
    .union(FunctionFlags::SQLITE_DETERMINISTIC)
    .union(FunctionFlags::SQLITE_INNOCUOUS);

/// Registers `audit_record(record)` and `audit_hex(hash or link)` on a connection.
pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    // Compact rows hold hashes and links as 32 bytes; others as 64 hex digits.
    conn.create_scalar_function("audit_hex", 1, PURE, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Blob(bytes) => Value::Text(crate::json::hex(bytes)),
            ValueRef::Text(text) => Value::Text(String::from_utf8_lossy(text).into_owned()),
            _ => Value::Null,
        })
    })?;
    let decoder = Mutex::new(Decoder::default());
    conn.create_scalar_function("audit_record", 1, PURE, move |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Blob(frame) => {
                let mut decoder = decoder.lock().unwrap_or_else(|p| p.into_inner());
                // Safety: the reference is used on this thread, inside this call.
                let conn = unsafe { ctx.get_connection()? };
                Value::Text(decoder.decode(&conn, frame).unwrap_or_default())
            }
            ValueRef::Text(text) => Value::Text(String::from_utf8_lossy(text).into_owned()),
            _ => Value::Null,
        })
    })
}

/// A connection's decompression state: the dictionaries it has met, prepared.
#[derive(Default)]
struct Decoder {
    ctx: Option<DCtx<'static>>,
    dictionaries: HashMap<NonZeroU32, DDict<'static>>,
}

impl Decoder {
    /// The JSON text of a frame; `None` if it cannot be decoded.
    fn decode(&mut self, conn: &Connection, frame: &[u8]) -> Option<String> {
        let id = zstd_safe::get_dict_id_from_frame(frame)?;
        let dictionary = match self.dictionaries.entry(id) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => {
                let bytes = conn
                    .query_row(
                        "SELECT dictionary FROM audit_dictionaries WHERE zstd_id = ?1",
                        [id.get()],
                        dictionary_bytes,
                    )
                    .optional()
                    .ok()???;
                new.insert(DDict::try_create(&bytes)?)
            }
        };
        let size = zstd_safe::get_frame_content_size(frame).ok()??;
        if size > MAX_RECORD {
            return None;
        }
        let mut out = Vec::with_capacity(size as usize);
        let ctx = self.ctx.get_or_insert_with(DCtx::create);
        ctx.decompress_using_ddict(&mut out, frame, dictionary)
            .ok()?;
        String::from_utf8(out).ok()
    }
}

/// The writer's compression state: the store's newest dictionary, prepared.
pub(super) struct Encoder {
    /// `audit_dictionaries.n` and `zstd_id` of the dictionary: both must match
    /// the newest row for the encoder to be kept (a row of a rolled-back
    /// transaction may be followed by another of the same `n`).
    key: (i64, u32),
    /// The first position written with it.
    first_seq: i64,
    /// Set to compress with `dictionary`, each frame with a checksum of its
    /// content (so that a frame read with a changed dictionary fails instead of
    /// giving other text). Declared first: dropped before the dictionary.
    ctx: CCtx<'static>,
    /// Owned here for `ctx`, which refers to it.
    _dictionary: CDict<'static>,
    /// Where a frame is made, sized for zstd's bound, before it is copied out at
    /// its own size.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("key", &self.key)
            .field("first_seq", &self.first_seq)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// The store's newest dictionary, if it has one (`known`: the encoder held so
    /// far, kept when it is still the newest). A dictionary zstd cannot load, or
    /// whose content does not carry its `zstd_id` (changed past the triggers),
    /// gives none: rows are then written as text, which needs no dictionary.
    pub(super) fn newest(
        conn: &Connection,
        known: Option<Encoder>,
    ) -> rusqlite::Result<Option<Encoder>> {
        let newest: Option<(i64, u32, i64)> = conn
            .query_row(
                "SELECT n, zstd_id, first_seq FROM audit_dictionaries ORDER BY n DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((n, zstd_id, first_seq)) = newest else {
            return Ok(None);
        };
        if let Some(known) = known.filter(|k| k.key == (n, zstd_id)) {
            return Ok(Some(known));
        }
        let bytes = conn.query_row(
            "SELECT dictionary FROM audit_dictionaries WHERE n = ?1",
            [n],
            dictionary_bytes,
        )?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        if zstd_safe::get_dict_id_from_dict(&bytes).map(NonZeroU32::get) != Some(zstd_id) {
            return Ok(None);
        }
        let Some(dictionary) = CDict::try_create(&bytes, LEVEL) else {
            return Ok(None);
        };
        let mut ctx = CCtx::create();
        let set = ctx
            .set_parameter(CParameter::ChecksumFlag(true))
            .and_then(|_| ctx.ref_cdict(&dictionary));
        Ok(set.ok().map(|_| Encoder {
            key: (n, zstd_id),
            first_seq,
            ctx,
            _dictionary: dictionary,
            scratch: Vec::new(),
        }))
    }

    /// The frame of a record's JSON text.
    pub(super) fn encode(&mut self, json: &str) -> Vec<u8> {
        self.scratch.clear();
        self.scratch.reserve(zstd_safe::compress_bound(json.len()));
        self.ctx
            .compress2(&mut self.scratch, json.as_bytes())
            .expect("the buffer holds zstd's bound");
        self.scratch.as_slice().to_vec()
    }

    /// The encoder to go on with after a seal, before position `next`: `held`,
    /// unless there is none or it has served `rows` rows; then a dictionary is
    /// trained on the newest records of the sealed segments and used from `next` on
    /// (`held` stays when there is too little to train on).
    pub(super) fn at_seal(
        conn: &Connection,
        segments: &[Segment],
        next: i64,
        held: Option<Encoder>,
        rows: usize,
    ) -> rusqlite::Result<Option<Encoder>> {
        if held
            .as_ref()
            .is_some_and(|e| next - e.first_seq < rows as i64)
        {
            return Ok(held);
        }
        let records = newest_records(conn, segments, SAMPLE_ROWS)?;
        if train(conn, &records, next)? {
            Encoder::newest(conn, held)
        } else {
            Ok(held)
        }
    }
}

/// The JSON of the newest `n` readable records of the sealed segments, newest
/// first.
fn newest_records(
    conn: &Connection,
    segments: &[Segment],
    n: usize,
) -> rusqlite::Result<Vec<String>> {
    let mut out = Vec::with_capacity(n);
    for s in segments.iter().rev().filter(|s| s.sealed.is_some()) {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {RECORD} FROM {} WHERE erased_ns IS NULL ORDER BY seq DESC LIMIT ?1",
            s.table
        ))?;
        let rows = stmt.query_map([(n - out.len()) as i64], |r| r.get::<_, String>(0))?;
        for row in rows {
            out.push(row?);
        }
        if out.len() >= n {
            break;
        }
    }
    Ok(out)
}

/// A dictionary as stored: bytes, whatever type an edit past the triggers gave
/// the column (`None` for a value that holds none).
fn dictionary_bytes(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Vec<u8>>> {
    Ok(row.get_ref(0)?.as_bytes().ok().map(<[u8]>::to_vec))
}

/// Trains a dictionary on what [`shared_words`](super::samples::shared_words) keeps
/// of `records` (JSON texts) and stores it for the rows from position `first_seq` on. `false` when there is too little to
/// train on (zstd refuses), or when the dictionary's id is taken already (an id is
/// a hash of the content: the store keeps the one it has).
fn train(conn: &Connection, records: &[String], first_seq: i64) -> rusqlite::Result<bool> {
    let samples = super::samples::shared_words(records);
    let Ok(dictionary) = zstd::dict::from_samples(&samples, DICTIONARY_BYTES) else {
        return Ok(false);
    };
    let Some(id) = zstd_safe::get_dict_id_from_dict(&dictionary) else {
        return Ok(false);
    };
    let added = conn.execute(
        "INSERT INTO audit_dictionaries (zstd_id, dictionary, first_seq, made_ns) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (zstd_id) DO NOTHING",
        params![id.get(), dictionary, first_seq, Timestamp::now().as_nanos()],
    )?;
    Ok(added == 1)
}

/// Removes the dictionaries no row from position `first_kept` on was written with
/// (inside a purge's transaction, once the rows before it are gone).
pub(super) fn forget_before(conn: &Connection, first_kept: i64) -> rusqlite::Result<usize> {
    super::purging(
        conn,
        "DELETE FROM audit_dictionaries WHERE n < \
         (SELECT max(n) FROM audit_dictionaries WHERE first_seq <= ?1)",
        [first_kept],
    )
}
