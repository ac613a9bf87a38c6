//! The columns a store keeps beside each record's JSON: what queries filter on.
//!
//! A column holds a value as [`column_text`] gives it, never the raw value: NUL
//! (which PostgreSQL text cannot hold) becomes U+FFFD, and the indexed columns keep
//! at most [`MAX_INDEXED_BYTES`] (a PostgreSQL btree row holds about 2.7 kB). The
//! record's JSON keeps every value whole, and queries pass their values through the
//! same rule, so a long id still finds its rows.

use std::borrow::Cow;

use serde_json::Value as Json;

use super::query::outcome_str;
use crate::record::Record;

/// The filter columns of one row, derived from its record (writing) or read back
/// from the database (verifying: they must equal those derived from the JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Columns<'a> {
    pub id: Cow<'a, str>,
    pub time_ns: i64,
    pub event: Cow<'a, str>,
    pub code: i64,
    pub category: Cow<'a, str>,
    pub level: Cow<'a, str>,
    pub outcome: Cow<'a, str>,
    pub actor_id: Option<Cow<'a, str>>,
    pub actor_email: Option<Cow<'a, str>>,
    pub tenant: Option<Cow<'a, str>>,
    pub entity_type: Option<Cow<'a, str>>,
    pub entity_type_code: Option<i64>,
    pub entity_id: Option<Cow<'a, str>>,
    pub description: Cow<'a, str>,
}

/// Longest value an indexed text column keeps, in bytes.
pub(crate) const MAX_INDEXED_BYTES: usize = 512;

/// A value as a column holds it: NUL as U+FFFD; for an indexed column, at most
/// [`MAX_INDEXED_BYTES`] (cut on a character boundary). Borrowed when unchanged.
pub(crate) fn column_text(s: &str, indexed: bool) -> Cow<'_, str> {
    let mut end = s.len();
    if indexed && end > MAX_INDEXED_BYTES {
        end = MAX_INDEXED_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
    }
    let kept = &s[..end];
    if kept.contains('\0') {
        Cow::Owned(kept.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(kept)
    }
}

fn indexed<'a>(s: impl Into<Cow<'a, str>>) -> Cow<'a, str> {
    match s.into() {
        Cow::Borrowed(b) => column_text(b, true),
        Cow::Owned(o) => Cow::Owned(column_text(&o, true).into_owned()),
    }
}

impl<'a> Columns<'a> {
    /// The columns of `record`.
    pub fn of(record: &'a Record) -> Columns<'a> {
        let actor = record.context.actor.as_ref();
        let entity = record.entity.as_ref();
        Columns {
            id: Cow::Owned(record.id.hyphenated().to_string()),
            time_ns: record.time.as_nanos(),
            event: indexed(&*record.event),
            code: i64::from(record.code),
            category: indexed(&*record.category),
            level: Cow::Borrowed(record.level.as_str()),
            outcome: Cow::Borrowed(outcome_str(record.outcome)),
            actor_id: actor.map(|a| indexed(a.id.as_str())),
            actor_email: actor.and_then(|a| a.email.as_deref()).map(indexed),
            tenant: record.context.tenant.as_deref().map(indexed),
            entity_type: entity.map(|e| indexed(&*e.kind)),
            entity_type_code: entity.map(|e| i64::from(e.type_code)),
            entity_id: entity
                .and_then(|e| e.id.as_ref())
                .map(|id| indexed(entity_id_text(id))),
            description: column_text(&record.description, false),
        }
    }
}

/// An entity id as the `entity_id` column holds it: strings as they are, other
/// values (numbers) as their JSON text.
pub(crate) fn entity_id_text(id: &Json) -> Cow<'_, str> {
    match id {
        Json::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_text_replaces_nul_and_cuts_indexed_values_on_a_char_boundary() {
        assert!(matches!(column_text("plain", true), Cow::Borrowed("plain")));
        assert_eq!(column_text("a\0b", false), "a\u{fffd}b");
        let long = "é".repeat(MAX_INDEXED_BYTES);
        let cut = column_text(&long, true);
        assert_eq!(cut.len(), MAX_INDEXED_BYTES);
        assert_eq!(column_text(&long, false).len(), long.len());
    }
}
