//! What makes every record this crate writes readable again: bounded nesting and a
//! bounded size, enforced when the record is built (on the pipeline's builder thread,
//! never on the caller's).
//!
//! - **Depth.** A JSON value (metadata, the entity's id, its before/after/difference)
//!   nested deeper than [`MAX_DEPTH`] arrays or objects keeps its first [`MAX_DEPTH`]
//!   levels; each container below them is replaced by a string holding its compact
//!   JSON text. The record as a whole then stays well under the 128 levels that
//!   `serde_json` (and with it `verify`, replay and `audit ingest`) reads.
//! - **Size.** A record whose JSON would exceed [`MAX_RECORD_BYTES`] is shrunk, in this
//!   order, until it fits: the largest metadata values, the entity id and the parts
//!   of `changes` (`previous`, `current`, `difference`) are replaced one by one,
//!   largest first, by a marker `{"$truncated": {"bytes": N, "sha256": "<hex>"}}`
//!   naming the length and the SHA-256 of the JSON text they had (so the original
//!   can still be matched); then every string outside metadata and changes
//!   (`error`, `description`, the context's strings, and the names: event,
//!   category, entity type, site) longer than [`MAX_STRING_BYTES`] keeps its first
//!   [`MAX_STRING_BYTES`] bytes (cut on a character boundary) followed by
//!   `…[truncated N bytes]`; if the record still does not fit, that limit is halved
//!   until it does.
//! - **Floats.** NaN and the infinities, which JSON cannot hold as numbers, are
//!   written as the strings `"NaN"`, `"Infinity"` and `"-Infinity"` (see
//!   [`crate::Value`]).
//!
//! ```
//! use audit_runtime::limits;
//! assert_eq!(limits::MAX_DEPTH, 64);
//! assert_eq!(limits::MAX_RECORD_BYTES, 1 << 20);
//! ```

use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};

use super::Record;

/// Deepest nesting of arrays and objects kept in a record's JSON values.
pub const MAX_DEPTH: usize = 64;

/// Largest record JSON the pipeline writes.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// Longest free-text string kept whole in a record that had to be shrunk.
pub const MAX_STRING_BYTES: usize = 64 << 10;

/// Applies this module's rules to a record built outside the pipeline (the pipeline
/// applies them itself when it builds a record): caps the nesting of its JSON values
/// and shrinks it if its JSON would exceed [`MAX_RECORD_BYTES`].
///
/// ```
/// # let mut r: audit_runtime::Record =
/// #     serde_json::from_str(include_str!("example.json")).unwrap();
/// use audit_runtime::limits;
/// r.metadata.insert("blob", "x".repeat(2 << 20).into());
/// limits::enforce(&mut r);
/// assert!(r.to_json().len() <= limits::MAX_RECORD_BYTES);
/// assert!(r.metadata["blob"]["$truncated"]["sha256"].is_string());
/// ```
pub fn enforce(record: &mut Record) {
    for i in 0..record.metadata.len() {
        cap_depth(record.metadata.value_at_mut(i));
    }
    cap_entity_depth(record);
    // Room for the chain fields the record gets when it is linked.
    let len = record.to_json().len() + 2 * 66;
    if len > MAX_RECORD_BYTES {
        shrink(record, len);
    }
}

/// Replaces the containers of `v` nested deeper than [`MAX_DEPTH`] by their JSON text.
pub(crate) fn cap_depth(v: &mut Json) {
    cap(v, 1);
}

fn cap(v: &mut Json, depth: usize) {
    match v {
        Json::Array(_) | Json::Object(_) if depth > MAX_DEPTH => {
            let text = serde_json::to_string(v).unwrap_or_default();
            *v = Json::String(text);
        }
        Json::Array(items) => items.iter_mut().for_each(|i| cap(i, depth + 1)),
        Json::Object(map) => map.values_mut().for_each(|i| cap(i, depth + 1)),
        _ => {}
    }
}

/// Caps the depth of every JSON value of a record's entity and changes.
pub(crate) fn cap_entity_depth(record: &mut Record) {
    if let Some(id) = record.entity.as_mut().and_then(|e| e.id.as_mut()) {
        cap_depth(id);
    }
    if let Some(c) = record.changes.as_mut() {
        cap_depth(&mut c.previous);
        cap_depth(&mut c.current);
        c.difference.values_mut().for_each(|v| cap(v, 2));
    }
}

/// The marker that stands for a value removed to make a record fit.
fn marker(text: &str) -> Map<String, Json> {
    let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
    let hex = crate::json::hex32(&digest);
    let mut inner = Map::new();
    inner.insert("bytes".into(), text.len().into());
    inner.insert(
        "sha256".into(),
        std::str::from_utf8(&hex).unwrap_or_default().into(),
    );
    let mut m = Map::new();
    m.insert("$truncated".into(), Json::Object(inner));
    m
}

/// Cuts `s` to `limit` bytes (on a character boundary) and says by how much.
fn cut(s: &mut String, limit: usize) {
    if s.len() <= limit {
        return;
    }
    let total = s.len();
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(&format!("…[truncated {total} bytes]"));
}

/// Shrinks `record`, whose JSON is `len` bytes, by the rule of this module.
pub(crate) fn shrink(record: &mut Record, len: usize) {
    let mut excess = len.saturating_sub(MAX_RECORD_BYTES);
    // The replaceable parts, with the JSON text each has now.
    enum Part {
        Meta(usize),
        EntityId,
        Previous,
        Current,
        Difference,
    }
    let mut parts: Vec<(String, Part)> = record
        .metadata
        .iter()
        .enumerate()
        .map(|(i, (_, v))| (json_text(|out| crate::json::value(out, v)), Part::Meta(i)))
        .collect();
    if let Some(id) = record.entity.as_ref().and_then(|e| e.id.as_ref()) {
        parts.push((json_text(|out| crate::json::value(out, id)), Part::EntityId));
    }
    if let Some(c) = &record.changes {
        parts.push((
            json_text(|out| crate::json::value(out, &c.previous)),
            Part::Previous,
        ));
        parts.push((
            json_text(|out| crate::json::value(out, &c.current)),
            Part::Current,
        ));
        let difference = json_text(|out| {
            crate::json::object(out, c.difference.iter().map(|(k, v)| (k.as_str(), v)))
        });
        parts.push((difference, Part::Difference));
    }
    parts.sort_by_key(|(text, _)| std::cmp::Reverse(text.len()));
    for (text, part) in parts {
        if excess == 0 || text.len() < 128 {
            break;
        }
        let m = marker(&text);
        let saved = text.len().saturating_sub(
            json_text(|out| crate::json::object(out, m.iter().map(|(k, v)| (k.as_str(), v)))).len(),
        );
        match (part, record.changes.as_mut()) {
            (Part::Meta(i), _) => *record.metadata.value_at_mut(i) = Json::Object(m),
            (Part::EntityId, _) => {
                if let Some(e) = record.entity.as_mut() {
                    e.id = Some(Json::Object(m));
                }
            }
            (Part::Previous, Some(c)) => c.previous = Json::Object(m),
            (Part::Current, Some(c)) => c.current = Json::Object(m),
            (Part::Difference, Some(c)) => c.difference = m,
            _ => {}
        }
        excess = excess.saturating_sub(saved);
    }
    if excess == 0 {
        return;
    }
    // Then the strings, to 64 KiB each, halving the limit while it does not fit.
    let mut limit = MAX_STRING_BYTES;
    loop {
        cut_strings(record, limit);
        let len = record.to_json().len() + 2 * 66;
        if len <= MAX_RECORD_BYTES || limit <= 64 {
            return;
        }
        limit /= 2;
    }
}

/// Cuts every string outside metadata and changes to `limit` bytes.
fn cut_strings(record: &mut Record, limit: usize) {
    let cut = |s: &mut String| cut(s, limit);
    if let Some(e) = record.error.as_mut() {
        cut(e);
    }
    cut(&mut record.description);
    if let Some(Json::String(id)) = record.entity.as_mut().and_then(|e| e.id.as_mut()) {
        cut(id);
    }
    // Names come from the catalog and the source, so they are short in records the
    // pipeline builds; records built by hand are held to the same rule.
    let names = [
        &mut record.event,
        &mut record.category,
        &mut record.site.module,
        &mut record.site.file,
        &mut record.site.function,
    ];
    let kind = record.entity.as_mut().map(|e| &mut e.kind);
    for name in names.into_iter().chain(kind) {
        if name.len() > limit {
            cut(name.to_mut());
        }
    }
    let context = std::sync::Arc::make_mut(&mut record.context);
    for actor in [context.actor.as_mut(), context.impersonator.as_mut()]
        .into_iter()
        .flatten()
    {
        cut(&mut actor.id);
        actor.email.iter_mut().for_each(cut);
        actor.name.iter_mut().for_each(cut);
    }
    for s in [
        &mut context.tenant,
        &mut context.environment,
        &mut context.source,
    ] {
        s.iter_mut().for_each(cut);
    }
    if let Some(r) = context.request.as_mut() {
        for s in [
            &mut r.id,
            &mut r.ip,
            &mut r.user_agent,
            &mut r.method,
            &mut r.route,
        ] {
            s.iter_mut().for_each(cut);
        }
    }
}

/// The JSON text `write` produces (with the record's own writer).
fn json_text(write: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    write(&mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> Json {
        let mut v = Json::from(1);
        for _ in 0..depth {
            v = Json::Array(vec![v]);
        }
        v
    }

    fn depth_of(v: &Json) -> usize {
        match v {
            Json::Array(a) => 1 + a.iter().map(depth_of).max().unwrap_or(0),
            Json::Object(o) => 1 + o.values().map(depth_of).max().unwrap_or(0),
            _ => 0,
        }
    }

    #[test]
    fn depth_is_capped_and_the_rest_kept_as_text() {
        let mut shallow = nested(MAX_DEPTH);
        cap_depth(&mut shallow);
        assert_eq!(shallow, nested(MAX_DEPTH));
        let mut deep = nested(1000);
        cap_depth(&mut deep);
        assert_eq!(depth_of(&deep), MAX_DEPTH);
        let mut inner = &deep;
        while let Json::Array(a) = inner {
            inner = &a[0];
        }
        let text = inner.as_str().expect("the cut-off part is text");
        assert_eq!(
            text,
            serde_json::to_string(&nested(1000 - MAX_DEPTH)).unwrap()
        );
    }

    #[test]
    fn cut_keeps_a_char_boundary_and_says_how_much() {
        let mut s = "é".repeat(MAX_STRING_BYTES);
        cut(&mut s, MAX_STRING_BYTES);
        assert!(s.ends_with(&format!("…[truncated {} bytes]", 2 * MAX_STRING_BYTES)));
        assert!(s.len() < MAX_STRING_BYTES + 40);
        let mut short = "short".to_string();
        cut(&mut short, MAX_STRING_BYTES);
        assert_eq!(short, "short");
    }
}
