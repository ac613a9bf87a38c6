//! Which events a store holds records of: what a viewer's event picker offers and
//! what catalog coverage is checked against.

use audit_catalog::Level;

use super::StoreError;
use super::query::Placeholder;
use crate::time::Timestamp;

/// An event a store holds records of ([`super::Store::events_seen`]).
///
/// ```
/// use audit_runtime::store::SeenEvent;
/// use audit_runtime::{Level, Timestamp};
/// let e = SeenEvent {
///     event: "app_destroy".into(),
///     code: 1002,
///     category: "app".into(),
///     level: Level::Warn,
///     last: Timestamp::from_nanos(0),
/// };
/// assert_eq!(e.event, "app_destroy");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEvent {
    /// The event's name.
    pub event: String,
    /// Its code, as its newest record has it.
    pub code: u32,
    /// Its category, as its newest record has it.
    pub category: String,
    /// Its level, as its newest record has it.
    pub level: Level,
    /// The time of its newest record.
    pub last: Timestamp,
}

/// The distinct event names of `table`, one index probe each (a loose index scan
/// over the `(event, time_ns)` index, the same text in both dialects).
pub(crate) fn distinct_events(table: &str) -> String {
    format!(
        "WITH RECURSIVE seen(event) AS ( \
            SELECT min(event) FROM {table} \
            UNION ALL \
            SELECT (SELECT min(event) FROM {table} WHERE event > seen.event) \
            FROM seen WHERE seen.event IS NOT NULL \
        ) SELECT event FROM seen WHERE event IS NOT NULL"
    )
}

/// The newest readable row of `table` of one event (parameter 1), of one tenant
/// (parameter 2) when `tenant`: `code, category, level, time_ns`.
pub(crate) fn newest_of_event(style: Placeholder, table: &str, tenant: bool) -> String {
    let (event, t) = match style {
        Placeholder::Question => ("?1", "?2"),
        Placeholder::Dollar => ("$1", "$2"),
    };
    let scope = if tenant {
        format!(" AND tenant = {t}")
    } else {
        String::new()
    };
    format!(
        "SELECT code, category, level, time_ns FROM {table} \
         WHERE event = {event}{scope} AND erased_ns IS NULL ORDER BY time_ns DESC LIMIT 1"
    )
}

/// A [`SeenEvent`] of its row.
pub(crate) fn seen(
    event: String,
    code: i64,
    category: String,
    level: &str,
    time_ns: i64,
) -> Result<SeenEvent, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt { seq: 0, message };
    Ok(SeenEvent {
        code: u32::try_from(code)
            .map_err(|_| corrupt(format!("event `{event}` has code {code}")))?,
        level: Level::parse(level)
            .ok_or_else(|| corrupt(format!("event `{event}` has level `{level}`")))?,
        category,
        last: Timestamp::from_nanos(time_ns),
        event,
    })
}
