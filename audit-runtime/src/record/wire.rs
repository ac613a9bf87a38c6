//! How a record's JSON is read back: every key in one flat struct, the context's
//! six among them, then made into a [`Record`].
//!
//! `Record` keeps its context in one shared part, which its JSON spreads over six
//! top-level keys. Serde's `flatten` would read those into a buffer of untyped
//! values and then again into the context: 33.7 k instructions per record of the
//! benches' realistic shape against 26.1 k read this way (callgrind, 20 000
//! parses). Stores parse every row they return, and the NATS ingest every message.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;
use uuid::Uuid;

use super::{
    ChainHash, Changes, EntityRef, Level, Metadata, Operation, OutcomeKind, Record, SiteInfo,
    Trace, empty_context,
};
use crate::context::{Actor, Context, Request};
use crate::time::Timestamp;

/// A record's JSON keys, as [`Record`]'s own `Serialize` writes them.
#[derive(Deserialize)]
pub(super) struct Wire {
    id: Uuid,
    time: Timestamp,
    event: Cow<'static, str>,
    code: u32,
    category: Cow<'static, str>,
    level: Level,
    outcome: OutcomeKind,
    error: Option<String>,
    duration_ns: u64,
    description: String,
    actor: Option<Actor>,
    impersonator: Option<Actor>,
    tenant: Option<String>,
    environment: Option<String>,
    source: Option<String>,
    request: Option<Request>,
    entity: Option<EntityRef>,
    changes: Option<Changes>,
    metadata: Metadata,
    site: SiteInfo,
    #[serde(default)]
    trace: Option<Trace>,
    #[serde(default)]
    operation: Option<Operation>,
    #[serde(default)]
    reverts: Option<Uuid>,
    prev_hash: Option<ChainHash>,
    hash: Option<ChainHash>,
}

impl From<Wire> for Record {
    fn from(w: Wire) -> Record {
        let context = Context {
            actor: w.actor,
            impersonator: w.impersonator,
            tenant: w.tenant,
            environment: w.environment,
            source: w.source,
            request: w.request,
        };
        Record {
            id: w.id,
            time: w.time,
            event: w.event,
            code: w.code,
            category: w.category,
            level: w.level,
            outcome: w.outcome,
            error: w.error,
            duration_ns: w.duration_ns,
            description: w.description,
            // Records read without a context share one, as built ones do.
            context: match context == Context::default() {
                true => empty_context(),
                false => Arc::new(context),
            },
            entity: w.entity,
            changes: w.changes,
            metadata: w.metadata,
            site: w.site,
            trace: w.trace,
            operation: w.operation,
            reverts: w.reverts,
            prev_hash: w.prev_hash,
            hash: w.hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::ActorKind;

    fn example() -> serde_json::Value {
        serde_json::from_str(include_str!("example.json")).unwrap()
    }

    /// The six context keys come back as the record's context; a record with none
    /// shares the empty one; keys missing or unknown read as before.
    #[test]
    fn the_context_keys_are_read_into_the_context() {
        let mut json = example();
        json["actor"] = serde_json::json!({"id": "u-1", "email": "jane@acme.test",
            "name": "Jane", "kind": "user"});
        json["tenant"] = "acme".into();
        json["request"] =
            serde_json::json!({"id": "req-1", "ip": "10.0.0.1", "user_agent": "curl"});
        json["an_unknown_key"] = serde_json::json!({"ignored": [1, 2]});
        let r: Record = serde_json::from_value(json).unwrap();
        let actor = r.context.actor.as_ref().unwrap();
        assert_eq!((actor.id.as_str(), actor.kind), ("u-1", ActorKind::User));
        assert_eq!(r.context.tenant.as_deref(), Some("acme"));
        assert_eq!(
            r.context.request.as_ref().unwrap().id.as_deref(),
            Some("req-1")
        );
        assert_eq!(r.context.impersonator, None);
        // What is written reads back the same.
        let again: Record = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(again, r);

        let mut bare = example();
        for key in [
            "actor",
            "impersonator",
            "tenant",
            "environment",
            "source",
            "request",
        ] {
            bare.as_object_mut().unwrap().remove(key);
        }
        let a: Record = serde_json::from_value(bare).unwrap();
        let b: Record = serde_json::from_value(example()).unwrap();
        assert_eq!(a, b);
        assert!(Arc::ptr_eq(&a.context, &empty_context()));
    }
}
