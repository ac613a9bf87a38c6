//! The columns a store keeps beside each record's JSON: what queries filter on.

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

impl<'a> Columns<'a> {
    /// The columns of `record`.
    pub fn of(record: &'a Record) -> Columns<'a> {
        let actor = record.context.actor.as_ref();
        let entity = record.entity.as_ref();
        Columns {
            id: Cow::Owned(record.id.hyphenated().to_string()),
            time_ns: record.time.as_nanos(),
            event: Cow::Borrowed(&record.event),
            code: i64::from(record.code),
            category: Cow::Borrowed(&record.category),
            level: Cow::Borrowed(record.level.as_str()),
            outcome: Cow::Borrowed(outcome_str(record.outcome)),
            actor_id: actor.map(|a| Cow::Borrowed(a.id.as_str())),
            actor_email: actor.and_then(|a| a.email.as_deref()).map(Cow::Borrowed),
            tenant: record.context.tenant.as_deref().map(Cow::Borrowed),
            entity_type: entity.map(|e| Cow::Borrowed(&*e.kind)),
            entity_type_code: entity.map(|e| i64::from(e.type_code)),
            entity_id: entity.and_then(|e| e.id.as_ref()).map(entity_id_text),
            description: Cow::Borrowed(&record.description),
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
