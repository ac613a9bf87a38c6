//! Records stored compressed (schema 5): each row's `record` is a zstd frame made
//! with a dictionary the store trained on its own records, or — in rows written
//! before the store had one — the JSON text itself.
//!
//! The hash still covers the exact JSON text: decompressing gives it back byte for
//! byte. A frame names its dictionary by the zstd dictionary id in its header; the
//! dictionaries live in `audit_dictionaries`, append-only, and are never removed (a
//! few KiB each, one per [`DEFAULT_RETRAIN_ROWS`] rows by default).
//!
//! Every read goes through the SQL function `audit_record(record)` ([`RECORD`]),
//! registered on each connection: the JSON text of a row, whichever way it is
//! stored. Field filters and their indexes use it too, so that they read the same
//! text. A frame that cannot be decoded (a changed blob, a missing dictionary) reads
//! as the empty text, which matches no hash: the verification names the row.
//!
//! Dictionaries are trained on records cut down to what several tenants share
//! ([`samples`]): a word stays only if records of three tenants hold it at the same
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
use serde_json::Value as Json;
use zstd::zstd_safe::{self, CCtx, CDict, DCtx, DDict};

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
pub(super) const SAMPLE_ROWS: usize = 500;

/// The default of [`SqliteOptions::retrain_rows`](super::SqliteOptions::retrain_rows).
pub const DEFAULT_RETRAIN_ROWS: usize = 200_000;

/// zstd's level: 1 measured 168 bytes per record at 3 µs, 3 gave 160 at 4 µs.
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
            ValueRef::Blob(bytes) => Value::Text(hex(bytes)),
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

/// Lowercase hex digits of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
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
    dictionary: CDict<'static>,
    ctx: CCtx<'static>,
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
        Ok(CDict::try_create(&bytes, LEVEL).map(|dictionary| Encoder {
            key: (n, zstd_id),
            first_seq,
            dictionary,
            ctx: CCtx::create(),
        }))
    }

    /// The frame of a record's JSON text.
    pub(super) fn encode(&mut self, json: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(zstd_safe::compress_bound(json.len()));
        self.ctx
            .compress_using_cdict(&mut out, json.as_bytes(), &self.dictionary)
            .expect("the buffer holds zstd's bound");
        out
    }

    /// Whether a store writing position `seq` with this encoder (or none) should
    /// train a new dictionary, one every `rows` rows.
    pub(super) fn due(encoder: Option<&Encoder>, seq: i64, rows: usize) -> bool {
        encoder.is_none_or(|e| seq - e.first_seq >= rows as i64)
    }
}

/// A dictionary as stored: bytes, whatever type an edit past the triggers gave
/// the column (`None` for a value that holds none).
fn dictionary_bytes(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Vec<u8>>> {
    Ok(row.get_ref(0)?.as_bytes().ok().map(<[u8]>::to_vec))
}

/// Trains a dictionary on the [`samples`] of `records` (JSON texts) and stores it
/// for the rows from position `first_seq` on. `false` when there is too little to
/// train on (zstd refuses), or when the dictionary's id is taken already (an id is
/// a hash of the content: the store keeps the one it has).
pub(super) fn train(
    conn: &Connection,
    records: &[String],
    first_seq: i64,
) -> rusqlite::Result<bool> {
    let Ok(dictionary) = zstd::dict::from_samples(&samples(records), DICTIONARY_BYTES) else {
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
    conn.execute_batch("INSERT INTO audit_purging VALUES (1)")?;
    let removed = conn.execute(
        "DELETE FROM audit_dictionaries WHERE n < \
         (SELECT max(n) FROM audit_dictionaries WHERE first_seq <= ?1)",
        [first_kept],
    )?;
    conn.execute_batch("DELETE FROM audit_purging")?;
    Ok(removed)
}

/// How many tenants must hold a word at the same place for it to be learnt.
const SHARED_BY: usize = 3;

/// What a dictionary may learn from `records`: each record with only the words
/// that records of at least [`SHARED_BY`] tenants hold at the same place (a record
/// without a tenant counts as a tenant of its own). A word is a run of letters or a
/// run of digits; punctuation, keys, `null`s and `bool`s stay; numbers are words.
/// So no dictionary holds a tenant's own data, and erasing a tenant leaves nothing
/// of it behind. Texts that are not JSON objects (erased rows) are left out.
pub(super) fn samples(records: &[String]) -> Vec<String> {
    let (mut parsed, tenants): (Vec<Json>, Vec<String>) = records
        .iter()
        .enumerate()
        .filter_map(|(i, text)| {
            let record: Json = serde_json::from_str(text).ok()?;
            let tenant = match record.get("tenant") {
                Some(Json::String(t)) => format!("t:{t}"),
                _ => format!("#{i}"),
            };
            record.is_object().then_some((record, tenant))
        })
        .unzip();
    let mut holders: HashMap<(String, String), Vec<&str>> = HashMap::new();
    for (record, tenant) in parsed.iter().zip(&tenants) {
        visit(record, &mut String::new(), &mut |path, word| {
            let seen = holders
                .entry((path.to_owned(), word.to_owned()))
                .or_default();
            if seen.len() < SHARED_BY && !seen.contains(&tenant.as_str()) {
                seen.push(tenant);
            }
        });
    }
    let shared = |path: &str, word: &str| {
        holders
            .get(&(path.to_owned(), word.to_owned()))
            .is_some_and(|t| t.len() >= SHARED_BY)
    };
    parsed
        .iter_mut()
        .filter_map(|record| {
            keep_shared(record, &mut String::new(), &shared);
            serde_json::to_string(record).ok()
        })
        .collect()
}

/// Calls `each(path, word)` for every word of every value under `value`.
fn visit(value: &Json, path: &mut String, each: &mut dyn FnMut(&str, &str)) {
    match value {
        Json::String(s) => words(s).filter(|w| is_word(w)).for_each(|w| each(path, w)),
        Json::Number(n) => each(path, &n.to_string()),
        Json::Array(items) => under(path, "[]", |p| items.iter().for_each(|v| visit(v, p, each))),
        Json::Object(fields) => fields
            .iter()
            .for_each(|(k, v)| under(path, k, |p| visit(v, p, each))),
        Json::Bool(_) | Json::Null => {}
    }
}

/// Drops from every value under `value` the words `shared` does not keep (numbers
/// not kept become 0).
fn keep_shared(value: &mut Json, path: &mut String, shared: &dyn Fn(&str, &str) -> bool) {
    match value {
        Json::String(s) => {
            *s = words(s)
                .filter(|w| !is_word(w) || shared(path, w))
                .collect();
        }
        Json::Number(n) => {
            if !shared(path, &n.to_string()) {
                *n = 0.into();
            }
        }
        Json::Array(items) => under(path, "[]", |p| {
            items.iter_mut().for_each(|v| keep_shared(v, p, shared))
        }),
        Json::Object(fields) => fields
            .iter_mut()
            .for_each(|(k, v)| under(path, k, |p| keep_shared(v, p, shared))),
        Json::Bool(_) | Json::Null => {}
    }
}

/// Runs `f` with `key` appended to `path`.
fn under(path: &mut String, key: &str, f: impl FnOnce(&mut String)) {
    let len = path.len();
    path.push('/');
    path.push_str(key);
    f(path);
    path.truncate(len);
}

/// A text cut into runs of letters, runs of digits and single other characters.
fn words(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let class = |c: char| (c.is_alphabetic(), c.is_numeric());
        let len = if is_word_char(first) {
            rest.find(|c: char| class(c) != class(first))
                .unwrap_or(rest.len())
        } else {
            first.len_utf8()
        };
        let (word, tail) = rest.split_at(len);
        rest = tail;
        Some(word)
    })
}

fn is_word_char(c: char) -> bool {
    c.is_alphabetic() || c.is_numeric()
}

/// Whether a piece of [`words`] is a word (not a single other character).
fn is_word(piece: &str) -> bool {
    piece.chars().next().is_some_and(is_word_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tenant: &str, actor: &str) -> String {
        format!(
            r#"{{"event":"app_add","tenant":"{tenant}","actor":{{"email":"{actor}@example.com","n":7}},"ids":[12]}}"#
        )
    }

    #[test]
    fn samples_keep_only_the_words_three_tenants_hold_at_the_same_place() {
        let records = vec![
            record("t-1", "anna"),
            record("t-2", "bert"),
            record("t-3", "carl"),
            record("t-3", "carl"),
            "null".to_string(),
        ];
        let cut = samples(&records);
        assert_eq!(cut.len(), 4);
        assert_eq!(
            cut[0],
            r#"{"event":"app_add","tenant":"t-","actor":{"email":"@example.com","n":7},"ids":[12]}"#,
            "`add` is held by three tenants but `anna`, `1` by one"
        );
        // Without tenants every record counts as its own.
        let alone: Vec<String> = ["x", "x", "x", "y"]
            .iter()
            .map(|a| format!(r#"{{"actor":"{a}-9"}}"#))
            .collect();
        let alone = samples(&alone);
        assert_eq!(alone[0], r#"{"actor":"x-9"}"#);
        assert_eq!(alone[3], r#"{"actor":"-9"}"#);
    }

    #[test]
    fn words_are_runs_of_letters_or_digits() {
        let w: Vec<&str> = words("user42@exämple.com 山田太郎").collect();
        assert_eq!(
            w,
            ["user", "42", "@", "exämple", ".", "com", " ", "山田太郎"]
        );
    }
}
