//! A record's JSON, written field by field: the bytes `serde_json::to_vec(&record)`
//! gives (the hash chain covers them), several times faster. The tests below hold the
//! two equal on randomized records; a field added to [`Record`] must be added here.

use crate::context::{Actor, ActorKind, Context, Request};
use crate::json;

use super::{Changes, EntityRef, OutcomeKind, Record};

/// The JSON keys after `prev_hash`: only `hash`, the last one.
pub(crate) const HASH_KEY: &[u8] = b",\"hash\":";

impl Record {
    /// The record as one line of JSON: the same text as `serde_json::to_string`.
    ///
    /// ```
    /// # let r: audit_runtime::Record =
    /// #     serde_json::from_str(include_str!("example.json")).unwrap();
    /// assert_eq!(r.to_json(), serde_json::to_string(&r).unwrap());
    /// ```
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(1024);
        self.write_head(&mut out);
        json::opt_string(&mut out, self.prev_hash.as_deref());
        out.extend_from_slice(HASH_KEY);
        json::opt_string(&mut out, self.hash.as_deref());
        out.push(b'}');
        // SAFETY: every string was copied whole from a `str`, the rest is ASCII.
        unsafe { String::from_utf8_unchecked(out) }
    }

    /// Writes the JSON of every key up to and including `"prev_hash":`: the part of
    /// the record that does not depend on its place in the chain.
    pub(crate) fn write_head(&self, out: &mut Vec<u8>) {
        let mut id = uuid::Uuid::encode_buffer();
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(self.id.hyphenated().encode_lower(&mut id).as_bytes());
        out.extend_from_slice(b"\",\"time\":");
        json::timestamp(out, self.time);
        out.extend_from_slice(b",\"event\":");
        json::string(out, &self.event);
        out.extend_from_slice(b",\"code\":");
        json::int(out, self.code);
        out.extend_from_slice(b",\"category\":");
        json::string(out, &self.category);
        out.extend_from_slice(b",\"level\":\"");
        out.extend_from_slice(self.level.as_str().as_bytes());
        out.extend_from_slice(match self.outcome {
            OutcomeKind::Success => b"\",\"outcome\":\"success\",\"error\":",
            OutcomeKind::Failure => b"\",\"outcome\":\"failure\",\"error\":",
        });
        json::opt_string(out, self.error.as_deref());
        out.extend_from_slice(b",\"duration_ns\":");
        json::int(out, self.duration_ns);
        out.extend_from_slice(b",\"description\":");
        json::string(out, &self.description);
        write_context(out, &self.context);
        out.extend_from_slice(b",\"entity\":");
        match &self.entity {
            Some(e) => write_entity(out, e),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"changes\":");
        match &self.changes {
            Some(c) => write_changes(out, c),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"metadata\":");
        json::object(out, self.metadata.iter());
        out.extend_from_slice(b",\"site\":{\"module\":");
        json::string(out, &self.site.module);
        out.extend_from_slice(b",\"file\":");
        json::string(out, &self.site.file);
        out.extend_from_slice(b",\"line\":");
        json::int(out, self.site.line);
        out.extend_from_slice(b",\"function\":");
        json::string(out, &self.site.function);
        out.push(b'}');
        if let Some(t) = &self.trace {
            out.extend_from_slice(b",\"trace\":{\"trace_id\":\"");
            out.extend_from_slice(t.trace_hex().as_bytes());
            out.extend_from_slice(b"\",\"span_id\":\"");
            out.extend_from_slice(t.span_hex().as_bytes());
            out.extend_from_slice(b"\"}");
        }
        if let Some(op) = &self.operation {
            out.extend_from_slice(b",\"operation\":");
            op.write(out);
        }
        if let Some(r) = &self.reverts {
            let mut id = uuid::Uuid::encode_buffer();
            out.extend_from_slice(b",\"reverts\":\"");
            out.extend_from_slice(r.hyphenated().encode_lower(&mut id).as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b",\"prev_hash\":");
    }
}

/// The six context keys, flattened into the record (each with its leading comma).
fn write_context(out: &mut Vec<u8>, c: &Context) {
    out.extend_from_slice(b",\"actor\":");
    write_actor(out, c.actor.as_ref());
    out.extend_from_slice(b",\"impersonator\":");
    write_actor(out, c.impersonator.as_ref());
    out.extend_from_slice(b",\"tenant\":");
    json::opt_string(out, c.tenant.as_deref());
    out.extend_from_slice(b",\"environment\":");
    json::opt_string(out, c.environment.as_deref());
    out.extend_from_slice(b",\"source\":");
    json::opt_string(out, c.source.as_deref());
    out.extend_from_slice(b",\"request\":");
    match &c.request {
        Some(r) => write_request(out, r),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_actor(out: &mut Vec<u8>, actor: Option<&Actor>) {
    let Some(a) = actor else {
        out.extend_from_slice(b"null");
        return;
    };
    out.extend_from_slice(b"{\"id\":");
    json::string(out, &a.id);
    if let Some(email) = &a.email {
        out.extend_from_slice(b",\"email\":");
        json::string(out, email);
    }
    if let Some(name) = &a.name {
        out.extend_from_slice(b",\"name\":");
        json::string(out, name);
    }
    out.extend_from_slice(match a.kind {
        ActorKind::User => b",\"kind\":\"user\"}",
        ActorKind::Service => b",\"kind\":\"service\"}",
        ActorKind::System => b",\"kind\":\"system\"}",
    });
}

fn write_request(out: &mut Vec<u8>, r: &Request) {
    out.push(b'{');
    let mut first = true;
    for (key, value) in [
        (&b"\"id\":"[..], &r.id),
        (&b"\"ip\":"[..], &r.ip),
        (&b"\"user_agent\":"[..], &r.user_agent),
        (&b"\"method\":"[..], &r.method),
        (&b"\"route\":"[..], &r.route),
    ] {
        if let Some(v) = value {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(key);
            json::string(out, v);
        }
    }
    if let Some(status) = r.status {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b"\"status\":");
        json::int(out, status);
    }
    out.push(b'}');
}

fn write_entity(out: &mut Vec<u8>, e: &EntityRef) {
    out.extend_from_slice(b"{\"type\":");
    json::string(out, &e.kind);
    out.extend_from_slice(b",\"type_code\":");
    json::int(out, e.type_code);
    out.extend_from_slice(b",\"id\":");
    match &e.id {
        Some(id) => json::value(out, id),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

fn write_changes(out: &mut Vec<u8>, c: &Changes) {
    out.extend_from_slice(b"{\"previous\":");
    json::value(out, &c.previous);
    out.extend_from_slice(b",\"current\":");
    json::value(out, &c.current);
    out.extend_from_slice(b",\"difference\":");
    json::object(out, c.difference.iter().map(|(k, v)| (k.as_str(), v)));
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use serde_json::{Map, Value as Json, json};

    use super::*;
    use crate::integrity::ChainHash;
    use crate::record::{Operation, SiteInfo, Trace};
    use crate::time::Timestamp;

    /// Strings that exercise every escape and multi-byte UTF-8.
    fn text(rng: &mut fastrand::Rng) -> String {
        const PIECES: &[&str] = &[
            "a",
            "Inventory Tracker",
            " ",
            "\"",
            "\\",
            "\n",
            "\t",
            "\u{0}",
            "\u{1f}",
            "\u{7f}",
            "é",
            "🦀",
            "/",
            "%{x}",
            "0123456789",
        ];
        (0..rng.usize(0..12))
            .map(|_| PIECES[rng.usize(..PIECES.len())])
            .collect()
    }

    fn hash(rng: &mut fastrand::Rng) -> ChainHash {
        let digest: [u8; 32] = std::array::from_fn(|_| rng.u8(..));
        ChainHash::from_digest(&digest)
    }

    fn opt<T>(rng: &mut fastrand::Rng, f: impl FnOnce(&mut fastrand::Rng) -> T) -> Option<T> {
        rng.bool().then(|| f(rng))
    }

    fn leaf(rng: &mut fastrand::Rng, depth: u32) -> Json {
        match rng.u8(0..9) {
            0 => Json::Null,
            1 => Json::Bool(rng.bool()),
            2 => json!(rng.i64(..)),
            3 => json!(rng.u64(..)),
            4 => json!(rng.f64() * 10f64.powi(rng.i32(-30..30))),
            5 if depth < 3 => {
                Json::Array((0..rng.usize(0..4)).map(|_| leaf(rng, depth + 1)).collect())
            }
            6 if depth < 3 => Json::Object(map(rng, depth + 1)),
            _ => Json::String(text(rng)),
        }
    }

    fn map(rng: &mut fastrand::Rng, depth: u32) -> Map<String, Json> {
        (0..rng.usize(0..5))
            .map(|_| (text(rng), leaf(rng, depth)))
            .collect()
    }

    fn actor(rng: &mut fastrand::Rng) -> Actor {
        let mut a = match rng.u8(0..3) {
            0 => Actor::user(text(rng)),
            1 => Actor::service(text(rng)),
            _ => Actor::system(text(rng)),
        };
        a.email = opt(rng, text);
        a.name = opt(rng, text);
        a
    }

    fn record(rng: &mut fastrand::Rng) -> Record {
        let context = Context {
            actor: opt(rng, actor),
            impersonator: opt(rng, actor),
            tenant: opt(rng, text),
            environment: opt(rng, text),
            source: opt(rng, text),
            request: opt(rng, |rng| Request {
                id: opt(rng, text),
                ip: opt(rng, text),
                user_agent: opt(rng, text),
                method: opt(rng, text),
                route: opt(rng, text),
                status: opt(rng, |rng| rng.u16(..)),
            }),
        };
        Record {
            id: uuid::Uuid::from_u128(rng.u128(..)),
            time: Timestamp::from_nanos(rng.i64(0..i64::MAX)),
            event: Cow::Owned(text(rng)),
            code: rng.u32(..),
            category: Cow::Owned(text(rng)),
            level: [
                audit_catalog::Level::Info,
                audit_catalog::Level::Warn,
                audit_catalog::Level::Error,
            ][rng.usize(..3)],
            outcome: if rng.bool() {
                OutcomeKind::Success
            } else {
                OutcomeKind::Failure
            },
            error: opt(rng, text),
            duration_ns: rng.u64(..),
            description: text(rng),
            context: Arc::new(context),
            entity: opt(rng, |rng| EntityRef {
                kind: Cow::Owned(text(rng)),
                type_code: rng.u32(..),
                id: opt(rng, |rng| leaf(rng, 2)),
            }),
            changes: opt(rng, |rng| Changes {
                previous: leaf(rng, 1),
                current: leaf(rng, 1),
                difference: map(rng, 1),
            }),
            metadata: map(rng, 0).into_iter().collect(),
            site: SiteInfo {
                module: Cow::Owned(text(rng)),
                file: Cow::Owned(text(rng)),
                line: rng.u32(..),
                function: Cow::Owned(text(rng)),
            },
            trace: opt(rng, |rng| Trace {
                trace_id: rng.u128(..).to_be_bytes(),
                span_id: rng.u64(..).to_be_bytes(),
            }),
            operation: opt(rng, |rng| Operation {
                id: uuid::Uuid::from_u128(rng.u128(..)),
                count: opt(rng, |rng| rng.u32(..)),
                index: opt(rng, |rng| rng.u32(..)),
            }),
            reverts: opt(rng, |rng| uuid::Uuid::from_u128(rng.u128(..))),
            prev_hash: opt(rng, hash),
            hash: opt(rng, hash),
        }
    }

    #[test]
    fn the_json_is_serde_jsons() {
        let mut rng = fastrand::Rng::with_seed(2026);
        for _ in 0..5000 {
            let r = record(&mut rng);
            assert_eq!(r.to_json(), serde_json::to_string(&r).unwrap(), "{r:#?}");
        }
    }
}
