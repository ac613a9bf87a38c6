//! Realistic records for the store benchmarks (shared by `benches/store.rs` and
//! `tests/distributed/benches/distributed.rs`): ~950 bytes of JSON, 1 000 actors,
//! 10 tenants, 100 000 entity ids, 6 events, one producer chain.

use std::sync::Arc;

use audit::integrity::Chain;
use audit::sinks::Item;
use audit::{Record, Timestamp};
use serde_json::json;

/// The first record's time.
pub const T0: i64 = 1_780_000_000_000_000_000;
/// The events the records are spread over, evenly at random.
pub const EVENTS: [&str; 6] = [
    "app_add",
    "app_destroy",
    "app_launch",
    "user_update",
    "dashboard_create",
    "widget_update",
];

/// A number from the environment, or `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Record `i` (time `T0 + i` ms).
pub fn record(i: usize, rng: &mut fastrand::Rng) -> Record {
    let time = T0 + i as i64 * 1_000_000;
    let actor = rng.usize(..1000);
    let event = EVENTS[rng.usize(..EVENTS.len())];
    let app = rng.usize(..100_000);
    serde_json::from_value(json!({
        "id": uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext, (time / 1_000_000_000) as u64, (time % 1_000_000_000) as u32)),
        "time": Timestamp::from_nanos(time), "event": event, "code": 3, "category": "app",
        "level": "info", "outcome": "success", "error": null, "duration_ns": 48_213,
        "description": format!("User {actor} ran {event} on app {app} (Sales dashboard, Europe region)"),
        "actor": {"id": format!("user-{actor}"), "email": format!("user{actor}@example.com"),
                  "name": format!("User Number {actor}"), "kind": "user"},
        "impersonator": null, "tenant": format!("tenant-{}", actor % 10),
        "environment": "production", "source": "api",
        "request": {"id": format!("req-{i:012}"), "ip": "10.1.2.3", "user_agent": "curl/8.5"},
        "entity": {"type": "app", "type_code": 1, "id": format!("app-{app}")},
        "changes": null,
        "metadata": {"id": app, "uid": format!("uid-{app}"), "name": "Sales dashboard",
                     "app_nid": format!("nid-{app}")},
        "site": {"module": "bench::handlers", "file": "src/handlers.rs", "line": 120,
                 "function": "launch"},
        "prev_hash": null, "hash": null
    }))
    .expect("a valid record")
}

/// Records 0, 1, 2…, chained and serialized as the pipeline hands them to sinks,
/// made as they are taken (a big store is written without holding every record).
pub struct Items {
    rng: fastrand::Rng,
    chain: Chain,
    next: usize,
}

impl Items {
    pub fn new() -> Self {
        Items {
            rng: fastrand::Rng::with_seed(7),
            chain: Chain::new(),
            next: 0,
        }
    }
}

impl Iterator for Items {
    type Item = Item;
    fn next(&mut self) -> Option<Item> {
        let mut r = record(self.next, &mut self.rng);
        self.next += 1;
        let json = self.chain.link(&mut r);
        let name = Arc::from(&*r.event);
        Some(Item::with_json(r, json, name))
    }
}

/// `n` records of [`Items`].
#[allow(dead_code)]
pub fn items(n: usize) -> Vec<Item> {
    Items::new().take(n).collect()
}
