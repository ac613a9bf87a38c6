//! How a record is kept by every store: its JSON exactly as written (its hash covers
//! those bytes), the query model's indexes, and reading a row back.

use std::borrow::Cow;

use super::StoreError;
use crate::integrity::{ChainHash, hash_of_json};
use crate::record::Record;

/// The indexes of the query model, the same SQL for SQLite and PostgreSQL: every query
/// orders by (time_ns, seq), and each filter column leads an index that ends in
/// time_ns, so a filtered page is an index range scan in order.
pub(crate) const QUERY_INDEXES: &str = r#"
    CREATE INDEX audit_records_time   ON audit_records (time_ns);
    CREATE INDEX audit_records_actor  ON audit_records (actor_id, time_ns) WHERE actor_id IS NOT NULL;
    CREATE INDEX audit_records_email  ON audit_records (actor_email, time_ns) WHERE actor_email IS NOT NULL;
    CREATE INDEX audit_records_tenant ON audit_records (tenant, time_ns) WHERE tenant IS NOT NULL;
    CREATE INDEX audit_records_entity ON audit_records (entity_type, entity_id, time_ns) WHERE entity_type IS NOT NULL;
    CREATE INDEX audit_records_event  ON audit_records (event, time_ns);
"#;

/// The record's hash and the JSON to store. Records built by the pipeline carry
/// both; a record without a hash gets one here (the JSON then ends with it).
pub(crate) fn hashed_json<'a>(record: &'a Record, json: &'a str) -> (ChainHash, Cow<'a, str>) {
    if let Some(h) = record.hash {
        return (h, Cow::Borrowed(json));
    }
    let (_, hash) = hash_of_json(json).expect("a record's JSON ends with its hash");
    let mut spliced = json[..json.len() - "null}".len()].to_string();
    spliced.push('"');
    spliced.push_str(&hash);
    spliced.push_str("\"}");
    (hash, Cow::Owned(spliced))
}

/// Parses a stored record (row `seq`). An empty text is what SQLite's
/// `audit_record` gives for a compressed record it cannot decode.
pub(crate) fn parse_record(seq: i64, json: &str) -> Result<Record, StoreError> {
    if json.is_empty() {
        return Err(StoreError::Corrupt {
            seq,
            message: "the stored record is empty or cannot be decompressed".into(),
        });
    }
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        seq,
        message: e.to_string(),
    })
}
