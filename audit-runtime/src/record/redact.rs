//! Redaction while a record is built: the metadata fields the catalog mutes, every key
//! under a redacted name or pattern at any depth (metadata JSON, the entity's previous,
//! current and difference), then the text of each muted value wherever else it would
//! appear (the error, the description). Keys match the catalog's `redact` entries and
//! [`audit_catalog::redact::BUILTIN`], ignoring case.

use serde_json::Value as Json;

use super::REDACTED;
use crate::entity::Changes;
use crate::value::Value;

/// Values shorter than this are not searched for in free text (the error, the
/// description): too many innocent words would go with them.
pub(crate) const MIN_SCRUBBED: usize = 4;

/// The muted values of one record, to scrub from its free text.
#[derive(Default)]
pub(crate) struct Secrets(Vec<String>);

impl Secrets {
    /// Notes a muted field's value.
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Str(s) => self.text(s),
            Value::Json(j) => self.json(j),
            Value::Null => {}
            other => self.json(&other.clone().into_json()),
        }
    }

    /// Notes every string and number leaf of a muted JSON value.
    pub fn json(&mut self, v: &Json) {
        match v {
            Json::String(s) => self.text(s),
            Json::Number(n) => self.text(&n.to_string()),
            Json::Array(items) => items.iter().for_each(|i| self.json(i)),
            Json::Object(map) => map.values().for_each(|i| self.json(i)),
            Json::Null | Json::Bool(_) => {}
        }
    }

    fn text(&mut self, s: &str) {
        if s.chars().count() >= MIN_SCRUBBED && s != REDACTED {
            self.0.push(s.to_owned());
        }
    }

    /// Whether any value was muted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every muted value replaced by the marker (longest first, so that
    /// a value containing another goes whole).
    pub fn scrub(&mut self, text: &mut String) {
        if self.0.is_empty() {
            return;
        }
        self.0.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for secret in &self.0 {
            if text.contains(secret.as_str()) {
                *text = text.replace(secret.as_str(), REDACTED);
            }
        }
    }
}

/// Replaces the value of every redacted key at any depth, noting what it removes.
pub(crate) fn json(v: &mut Json, patterns: &[&str], secrets: &mut Secrets) {
    match v {
        Json::Object(map) => {
            for (k, val) in map.iter_mut() {
                if audit_catalog::redact::is_redacted(patterns, k) {
                    if val.as_str() != Some(REDACTED) {
                        secrets.json(val);
                        *val = Json::String(REDACTED.into());
                    }
                } else {
                    json(val, patterns, secrets);
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|i| json(i, patterns, secrets)),
        _ => {}
    }
}

/// Redacts an entity's changes: the snapshots like any JSON, and each difference
/// whose path (`a.b.2`) passes through a redacted key.
pub(crate) fn changes(c: &mut Changes, patterns: &[&str], secrets: &mut Secrets) {
    json(&mut c.previous, patterns, secrets);
    json(&mut c.current, patterns, secrets);
    for (path, pair) in c.difference.iter_mut() {
        if path
            .split('.')
            .any(|segment| audit_catalog::redact::is_redacted(patterns, segment))
        {
            if pair != &redacted_pair() {
                secrets.json(pair);
                *pair = redacted_pair();
            }
        } else {
            json(pair, patterns, secrets);
        }
    }
}

fn redacted_pair() -> Json {
    Json::Array(vec![REDACTED.into(), REDACTED.into()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_at_any_depth_and_in_differences() {
        let mut secrets = Secrets::default();
        let mut v =
            json!({"user": {"Password": "hunter2-x", "name": "n"}, "list": [{"apiKey": 12345}]});
        json(&mut v, &[], &mut secrets);
        assert_eq!(
            v,
            json!({"user": {"Password": REDACTED, "name": "n"}, "list": [{"apiKey": REDACTED}]})
        );
        let mut c = Changes {
            previous: json!({"card_number": "4111111111111111", "plan": "free"}),
            current: json!({"card_number": "4242424242424242", "plan": "pro"}),
            difference: serde_json::from_value(json!({
                "card_number": ["4111111111111111", "4242424242424242"],
                "plan": ["free", "pro"]
            }))
            .unwrap(),
        };
        changes(&mut c, &["card_*"], &mut secrets);
        assert_eq!(c.difference["card_number"], redacted_pair());
        assert_eq!(c.difference["plan"], json!(["free", "pro"]));
        assert_eq!(c.current["card_number"], json!(REDACTED));
        let mut text = "charge of 4242424242424242 failed for hunter2-x (12345)".to_string();
        secrets.scrub(&mut text);
        assert_eq!(
            text,
            "charge of [REDACTED] failed for [REDACTED] ([REDACTED])"
        );
    }
}
