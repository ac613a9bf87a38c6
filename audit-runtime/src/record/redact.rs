//! Redaction while a record is built: the metadata fields the catalog mutes, every key
//! under a redacted name or pattern at any depth (metadata JSON, the entity's previous,
//! current and difference), then the text of each muted value wherever else it would
//! appear (the error, the description). Keys match the catalog's `redact` entries and
//! [`audit_catalog::redact::BUILTIN`], ignoring case.

use std::cell::RefCell;
use std::collections::HashMap;

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

/// Which keys are redacted under an event's `patterns` (and the built-in list). The
/// glob runs once per distinct key and pattern set on a thread and the answer is
/// remembered: entity snapshots and JSON values repeat the same keys record after
/// record (matching costs ~300 ns a key, a lookup a tenth of that).
struct Matcher<'m> {
    patterns: &'static [&'static str],
    known: &'m mut HashMap<Box<str>, bool>,
}

/// Distinct keys remembered per pattern set before the memory starts over (bounds it
/// when keys are data, such as ids).
const MAX_KEYS: usize = 4096;

type Memo = HashMap<(usize, usize), HashMap<Box<str>, bool>>;

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(HashMap::new());
}

impl Matcher<'_> {
    /// Runs `f` with the matcher of `patterns` on this thread.
    fn with<R>(patterns: &'static [&'static str], f: impl FnOnce(&mut Matcher<'_>) -> R) -> R {
        MEMO.with(|memo| {
            let mut memo = memo.borrow_mut();
            let known = memo
                .entry((patterns.as_ptr() as usize, patterns.len()))
                .or_default();
            f(&mut Matcher { patterns, known })
        })
    }

    fn is_redacted(&mut self, key: &str) -> bool {
        if let Some(&answer) = self.known.get(key) {
            return answer;
        }
        let answer = audit_catalog::redact::is_redacted(self.patterns, key);
        if self.known.len() >= MAX_KEYS {
            self.known.clear();
        }
        self.known.insert(key.into(), answer);
        answer
    }

    /// Replaces the value of every redacted key at any depth, noting what it removes.
    fn json(&mut self, v: &mut Json, secrets: &mut Secrets) {
        match v {
            Json::Object(map) => {
                for (k, val) in map.iter_mut() {
                    if self.is_redacted(k) {
                        if val.as_str() != Some(REDACTED) {
                            secrets.json(val);
                            *val = Json::String(REDACTED.into());
                        }
                    } else {
                        self.json(val, secrets);
                    }
                }
            }
            Json::Array(items) => items.iter_mut().for_each(|i| self.json(i, secrets)),
            _ => {}
        }
    }
}

/// Replaces the value of every redacted key at any depth, noting what it removes.
pub(crate) fn json(v: &mut Json, patterns: &'static [&'static str], secrets: &mut Secrets) {
    Matcher::with(patterns, |m| m.json(v, secrets));
}

/// Redacts an entity's changes: the snapshots like any JSON, and each difference
/// whose path (`a.b.2`) passes through a redacted key.
pub(crate) fn changes(c: &mut Changes, patterns: &'static [&'static str], secrets: &mut Secrets) {
    Matcher::with(patterns, |m| {
        m.json(&mut c.previous, secrets);
        m.json(&mut c.current, secrets);
        for (path, pair) in c.difference.iter_mut() {
            if path.split('.').any(|segment| m.is_redacted(segment)) {
                if pair != &redacted_pair() {
                    secrets.json(pair);
                    *pair = redacted_pair();
                }
            } else {
                m.json(pair, secrets);
            }
        }
    })
}

fn redacted_pair() -> Json {
    Json::Array(vec![REDACTED.into(), REDACTED.into()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entity_debug_mutes_the_built_in_keys() {
        let part = crate::entity::EntityPart {
            id: json!(1),
            changes: Changes {
                previous: json!({"api_token": "tok-123456", "plan": "free"}),
                current: json!({"api_token": "tok-654321", "plan": "pro"}),
                difference: serde_json::from_value(json!({
                    "api_token": ["tok-123456", "tok-654321"], "plan": ["free", "pro"]
                }))
                .unwrap(),
            },
        };
        let shown = format!("{part:?}");
        assert!(!shown.contains("tok-"), "{shown}");
        assert!(shown.contains("pro"), "{shown}");
    }

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
