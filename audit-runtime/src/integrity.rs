//! The hash chain: each record's `hash` is SHA-256 over its canonical encoding, which
//! includes `prev_hash`, the hash of the record before it from the same producer (one
//! pipeline). Changing, removing, inserting or reordering records breaks the chain.

use sha2::{Digest, Sha256};

use crate::json;
use crate::record::{HASH_KEY, Record};

pub use crate::record::hash::{ChainHash, NotAHash};

/// The canonical encoding of a record: its JSON with `hash` null (`prev_hash` in).
/// Field order is the record's declaration order and metadata keeps catalog order,
/// so the encoding is the same wherever the record is re-read.
pub fn canonical_bytes(record: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    record.write_head(&mut out);
    json::opt_string(&mut out, record.prev_hash.as_deref());
    out.extend_from_slice(HASH_KEY);
    out.extend_from_slice(b"null}");
    out
}

/// The hash a record must carry, given its `prev_hash`.
///
/// ```
/// # let mut r: audit_runtime::Record =
/// #     serde_json::from_str(include_str!("record/example.json")).unwrap();
/// let h = audit_runtime::integrity::hash_of(&r);
/// assert_eq!(h.len(), 64);
/// r.description = "changed".into();
/// assert_ne!(audit_runtime::integrity::hash_of(&r), h);
/// ```
pub fn hash_of(record: &Record) -> ChainHash {
    ChainHash::from_digest(&Sha256::digest(canonical_bytes(record)).into())
}

/// The tail of a record's JSON before its hash is known.
const NULL_TAIL: &[u8] = b"\"hash\":null}";

/// Recomputes the hash of a record from its JSON as written by this crate (`hash` the
/// last key, hash filled in or null), without parsing it: the hash covers exactly
/// these bytes with `"hash":null}` at the end. Returns `(stored, computed)`, or `None`
/// if the text does not end like a record.
///
/// ```
/// # let mut r: audit_runtime::Record =
/// #     serde_json::from_str(include_str!("record/example.json")).unwrap();
/// r.hash = Some(audit_runtime::integrity::hash_of(&r));
/// let json = serde_json::to_string(&r).unwrap();
/// let (stored, computed) = audit_runtime::integrity::hash_of_json(&json).unwrap();
/// assert_eq!(stored, r.hash.as_deref());
/// assert_eq!(computed, stored.unwrap());
/// ```
pub fn hash_of_json(json: &str) -> Option<(Option<&str>, ChainHash)> {
    let bytes = json.as_bytes();
    if bytes.ends_with(NULL_TAIL) {
        return Some((None, ChainHash::from_digest(&Sha256::digest(bytes).into())));
    }
    // `"hash":"` + 64 hex digits + `"}`
    let tail_len = 8 + 64 + 2;
    let start = bytes.len().checked_sub(tail_len)?;
    let tail = &json[start..];
    if !tail.starts_with("\"hash\":\"") || !tail.ends_with("\"}") {
        return None;
    }
    let stored = &tail[8..8 + 64];
    let mut h = Sha256::new();
    h.update(&bytes[..start]);
    h.update(NULL_TAIL);
    Some((Some(stored), ChainHash::from_digest(&h.finalize().into())))
}

/// Links records into a producer chain as they are produced (the delivery pipeline
/// keeps one; use your own for records built elsewhere).
///
/// ```
/// # let r: audit_runtime::Record =
/// #     serde_json::from_str(include_str!("record/example.json")).unwrap();
/// use audit_runtime::integrity::{Chain, hash_of};
/// let mut chain = Chain::new();
/// let (mut a, mut b) = (r.clone(), r);
/// chain.link(&mut a);
/// chain.link(&mut b);
/// assert_eq!(b.prev_hash, a.hash);
/// assert_eq!(b.hash.as_deref(), Some(hash_of(&b).as_str()));
/// ```
#[derive(Debug, Default)]
pub struct Chain {
    prev: Option<ChainHash>,
}

/// The part of linking a record that does not depend on its place in the chain,
/// done ahead of it (the pipeline does this off its ordered stage): the record's JSON
/// up to `"prev_hash":`. Its SHA-256 is left to the linking, on the ordered stage:
/// the builder is the pipeline's busiest stage and the chainer had room (moving the
/// hash raised the pipeline's rate ~10 % where the builder was the bound;
/// BENCHMARKS.md, session 49).
pub(crate) struct Prepared {
    json: Vec<u8>,
}

impl Prepared {
    /// Serializes the head of `record` into a buffer of `capacity` bytes.
    pub(crate) fn new(record: &Record, capacity: usize) -> Prepared {
        let mut json = Vec::with_capacity(capacity);
        record.write_head(&mut json);
        Prepared { json }
    }

    /// The length of the JSON so far.
    pub(crate) fn len(&self) -> usize {
        self.json.len()
    }
}

impl Chain {
    /// A new chain: its first record has no `prev_hash`.
    pub fn new() -> Self {
        Chain::default()
    }

    /// A chain that goes on after the record hashed `last` (`None`: a new chain):
    /// what a process resuming its chain after a restart uses.
    ///
    /// ```
    /// # let r: audit_runtime::Record = serde_json::from_str(include_str!("record/example.json")).unwrap();
    /// use audit_runtime::integrity::Chain;
    /// let mut first = Chain::new();
    /// let mut a = r.clone();
    /// first.link(&mut a);
    /// let mut resumed = Chain::resume(a.hash);
    /// let mut b = r;
    /// resumed.link(&mut b);
    /// assert_eq!(b.prev_hash, a.hash);
    /// ```
    pub fn resume(last: Option<ChainHash>) -> Self {
        Chain { prev: last }
    }

    /// The hash of the last record linked (where a resumed chain goes on).
    pub fn last(&self) -> Option<ChainHash> {
        self.prev
    }

    /// Sets `prev_hash` and `hash`, and returns the record's JSON (hash included),
    /// serialized once: `hash` is the record's last key, so the canonical encoding
    /// (`..."hash":null}`) becomes the final one by writing the hash in place of null.
    pub fn link(&mut self, record: &mut Record) -> String {
        let prepared = Prepared::new(record, 1024);
        self.link_prepared(record, prepared)
    }

    /// [`Chain::link`] for a record whose head was prepared ahead.
    pub(crate) fn link_prepared(&mut self, record: &mut Record, prepared: Prepared) -> String {
        let Prepared { mut json } = prepared;
        json.reserve(64 + 2 + HASH_KEY.len() + 64 + 4);
        json::opt_string(&mut json, self.prev.as_deref());
        json.extend_from_slice(HASH_KEY);
        let mut sha = Sha256::new_with_prefix(&json);
        sha.update(b"null}");
        let hash = ChainHash::from_digest(&sha.finalize().into());
        json.push(b'"');
        json.extend_from_slice(hash.as_bytes());
        json.extend_from_slice(b"\"}");
        record.prev_hash = self.prev.replace(hash);
        record.hash = Some(hash);
        // SAFETY: the head copies whole `str`s and ASCII, the tail is ASCII.
        unsafe { String::from_utf8_unchecked(json) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_hashes_are_64_lowercase_hex_digits() {
        let good = "0123456789abcdef".repeat(4);
        assert_eq!(good.parse::<ChainHash>().unwrap().as_str(), good);
        for bad in [
            good.to_uppercase(),
            good[1..].to_string(),
            format!("{good}0"),
            good.replace('a', "g"),
        ] {
            assert_eq!(bad.parse::<ChainHash>(), Err(NotAHash(bad.clone())));
        }
        // A record whose hash was tampered into something else no longer reads.
        let json = format!(
            r#"{{"id":"01900000-0000-7000-8000-000000000000","time":"2026-11-23T09:30:00Z","event":"a","code":1,"category":"a","level":"info","outcome":"success","error":null,"duration_ns":1,"description":"","actor":null,"impersonator":null,"tenant":null,"environment":null,"source":null,"request":null,"entity":null,"changes":null,"metadata":{{}},"site":{{"module":"m","file":"f","line":1,"function":"f"}},"prev_hash":null,"hash":"{}"}}"#,
            good.to_uppercase()
        );
        let err = serde_json::from_str::<Record>(&json).unwrap_err();
        assert!(err.to_string().contains("not a SHA-256"), "{err}");
    }

    #[test]
    fn the_spliced_json_is_the_record_json() {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "id": "01900000-0000-7000-8000-000000000000", "time": "2026-11-23T09:30:00Z", "event": "a",
            "code": 1, "category": "a", "level": "info", "outcome": "success", "error": null,
            "duration_ns": 1, "description": "x", "actor": null, "impersonator": null, "tenant": null,
            "environment": null, "source": null, "request": null, "entity": null, "changes": null,
            "metadata": {"k": [1, "two"]}, "site": {"module": "m", "file": "f", "line": 1, "function": "f"},
            "prev_hash": null, "hash": null}))
        .unwrap();
        let mut chain = Chain::default();
        let first = chain.link(&mut r);
        assert_eq!(first, serde_json::to_string(&r).unwrap());
        assert_eq!(r.hash.as_deref(), Some(hash_of(&r).as_str()));
        let second = chain.link(&mut r);
        assert_eq!(second, serde_json::to_string(&r).unwrap());
        assert_eq!(
            r.prev_hash.as_deref(),
            Some(&first[first.len() - 66..first.len() - 2])
        );
    }
}
