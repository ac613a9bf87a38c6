//! The bulk operation a record belongs to: one call of a handler that acted on many
//! entities (`#[audited(each = ...)]`) writes one record per entity, all carrying
//! the same operation id.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `{"id", ["count"], ["index"]}` on every record of one bulk call.
///
/// - `id`: a UUIDv7 shared by every record of the call, stamped when the call ended
///   (so the records' times are within moments of the time it encodes);
/// - `index`: on an entity record, its place among the call's entity records
///   (from 0); absent on the summary record and on the failure record of a call
///   that panicked or was cancelled;
/// - `count`: on the summary record (written after the entity records), how many
///   entity records the call wrote; on the record of a call that never returned,
///   how many entities it was given (absent when unknown, as for `each = ret`);
///   absent on entity records, which are emitted as they are diffed.
///
/// ```
/// use audit_runtime::record::Operation;
/// let summary = Operation { id: uuid::Uuid::nil(), count: Some(2), index: None };
/// assert!(summary.is_summary());
/// assert_eq!(
///     serde_json::to_string(&summary).unwrap(),
///     r#"{"id":"00000000-0000-0000-0000-000000000000","count":2}"#
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Operation {
    /// Shared by every record of the call.
    pub id: Uuid,
    /// How many entity records the call wrote (or was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// This record's place among them; `None` on a summary or abandoned record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

impl Operation {
    /// Whether this is the summary record of its call (no entity of its own).
    pub fn is_summary(&self) -> bool {
        self.index.is_none()
    }

    /// The JSON, as `serde_json` writes it.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let mut id = Uuid::encode_buffer();
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(self.id.hyphenated().encode_lower(&mut id).as_bytes());
        out.push(b'"');
        if let Some(c) = self.count {
            out.extend_from_slice(b",\"count\":");
            crate::json::int(out, c);
        }
        if let Some(i) = self.index {
            out.extend_from_slice(b",\"index\":");
            crate::json::int(out, i);
        }
        out.push(b'}');
    }
}
