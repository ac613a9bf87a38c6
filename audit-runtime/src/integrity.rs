//! The hash chain: each record's `hash` is SHA-256 over its canonical encoding, which
//! includes `prev_hash`, the hash of the record before it from the same producer (one
//! pipeline). Changing, removing, inserting or reordering records breaks the chain.

use sha2::{Digest, Sha256};

use crate::record::Record;

/// The canonical encoding of a record: its JSON with `hash` left out (`prev_hash` in).
/// Field order is the record's declaration order and metadata keeps catalog order,
/// so the encoding is the same wherever the record is re-read.
pub fn canonical_bytes(record: &Record) -> Vec<u8> {
    let mut r = record.clone();
    r.hash = None;
    serde_json::to_vec(&r).expect("records serialize")
}

/// The hash a record must carry, given its `prev_hash`.
///
/// ```
/// # let mut r: audit_runtime::Record = serde_json::from_value(serde_json::json!({
/// #   "id": "01900000-0000-7000-8000-000000000000", "time": "2026-11-23T09:30:00Z", "event": "a", "code": 1,
/// #   "category": "a", "level": "info", "outcome": "success", "error": null, "duration_ns": 1,
/// #   "description": "", "actor": null, "impersonator": null, "tenant": null, "environment": null,
/// #   "source": null, "request": null, "entity": null, "changes": null, "metadata": {},
/// #   "site": {"module": "m", "file": "f", "line": 1, "function": "f"}, "prev_hash": null, "hash": null})).unwrap();
/// let h = audit_runtime::integrity::hash_of(&r);
/// assert_eq!(h.len(), 64);
/// r.description = "changed".into();
/// assert_ne!(audit_runtime::integrity::hash_of(&r), h);
/// ```
pub fn hash_of(record: &Record) -> String {
    hex::encode(Sha256::digest(canonical_bytes(record)))
}

/// Links records into a chain as they are produced.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    prev: Option<String>,
}

impl Chain {
    pub(crate) fn link(&mut self, record: &mut Record) {
        record.prev_hash = self.prev.take();
        let h = hash_of(record);
        record.hash = Some(h.clone());
        self.prev = Some(h);
    }
}
