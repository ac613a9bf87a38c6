//! The conformance suite every store passes: query semantics, pagination, tenant
//! isolation, injection, tampering, purge. Each store's test file supplies a
//! [`Harness`] (how to open a fresh store and run plain SQL against it).

#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::Arc;

use audit::integrity::Chain;
use audit::sinks::{Item, Sink};
use audit::store::{Break, Cursor, Follower, Order, Purge, Query, Store};
use audit::{Level, OutcomeKind, Record, Timestamp};
use serde_json::json;

/// A store under test: a [`Store`] that is also a [`Sink`].
pub trait TestStore: Store + Sink {}
impl<T: Store + Sink> TestStore for T {}

/// How a store's test file plugs into the suite.
pub trait Harness {
    type S: TestStore;
    /// A fresh, empty store (unkeyed).
    fn fresh(&self) -> Self::S;
    /// A fresh, empty store whose chain is keyed.
    fn fresh_keyed(&self, key: &[u8]) -> Self::S;
    /// Another handle on the same store (for concurrent readers and writers).
    fn reopen(&self, store: &Self::S) -> Self::S;
    /// Runs plain SQL against the store's database, bypassing the store (the
    /// append-only triggers stay unless the SQL drops them).
    fn sql(&self, store: &Self::S, sql: &str) -> Result<(), String>;
    /// SQL that removes the append-only triggers (what an attacker with database
    /// access does first).
    fn drop_triggers(&self) -> &'static str;
    /// A string literal given the column type `ty` (`uuid`, `json`) where the
    /// database needs it said.
    fn typed(&self, literal: &str, _ty: &str) -> String {
        literal.to_string()
    }
    /// Whether `needle` can still be found in the store: SQLite searches the
    /// database file and its write-ahead log byte by byte; PostgreSQL every column of
    /// every row (old row versions wait for VACUUM, as SECURITY.md says).
    fn holds_text(&self, store: &Self::S, needle: &str) -> bool;
    /// SQL for the stored record with `from` replaced by `to`.
    fn record_replace(&self, from: &str, to: &str) -> String {
        format!("replace(record, '{from}', '{to}')")
    }
}

pub const TENANTS: [Option<&str>; 3] = [Some("acme"), Some("globex"), None];
pub const ACTORS: [(&str, &str); 4] = [
    ("u-1", "jane@acme.test"),
    ("u-2", "joe@acme.test"),
    ("u-3", "kim@globex.test"),
    ("u-4", "lee@globex.test"),
];
pub const EVENTS: [(&str, u32, &str); 4] = [
    ("app_add", 1, "app"),
    ("app_destroy", 2, "app"),
    ("user_login", 10, "user"),
    ("dashboard_update", 20, "dashboard"),
];

/// A fresh UUIDv7 for `time`.
pub fn id_at(time: Timestamp) -> uuid::Uuid {
    let ns = time.as_nanos();
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        (ns / 1_000_000_000) as u64,
        (ns % 1_000_000_000) as u32,
    );
    uuid::Uuid::new_v7(ts)
}

/// A deterministic record number `i` at `time`.
pub fn record(i: usize, time: Timestamp) -> Record {
    let (event, code, category) = EVENTS[i % EVENTS.len()];
    let (actor_id, email) = ACTORS[i % ACTORS.len()];
    let tenant = TENANTS[i % TENANTS.len()];
    let failed = i.is_multiple_of(5);
    let level = ["info", "warn", "error"][i % 3];
    let entity = if i.is_multiple_of(2) {
        json!({"type": "app", "type_code": 1, "id": format!("app-{}", i % 6)})
    } else if i.is_multiple_of(3) {
        json!({"type": "user", "type_code": 2, "id": i % 4})
    } else {
        json!(null)
    };
    serde_json::from_value(json!({
        "id": id_at(time),
        "time": time, "event": event, "code": code, "category": category,
        "level": level, "outcome": if failed { "failure" } else { "success" },
        "error": if failed { json!("boom") } else { json!(null) },
        "duration_ns": 1000 + i,
        "description": format!("{actor_id} did {event} #{i} on 100%_sure"),
        "actor": {"id": actor_id, "email": email, "name": null, "kind": "user"},
        "impersonator": null, "tenant": tenant, "environment": "test", "source": null,
        "request": null, "entity": entity, "changes": null,
        "metadata": {"n": i, "secret": "[REDACTED]"},
        "site": {"module": "suite", "file": "suite.rs", "line": 1, "function": "f"},
        "prev_hash": null, "hash": null
    }))
    .expect("a valid record")
}

/// Writes records through the store's sink side, chained as one producer.
pub fn write(store: &mut impl TestStore, chain: &mut Chain, records: Vec<Record>) {
    let items: Vec<Item> = records
        .into_iter()
        .map(|mut r| {
            let json = chain.link(&mut r);
            let name = r.event.to_string();
            Item::with_json(r, json, Arc::from(name))
        })
        .collect();
    for batch in items.chunks(64) {
        store.write(batch).expect("write");
    }
}

/// `n` records, one per millisecond from `start`.
pub fn populate(store: &mut impl TestStore, n: usize, start: i64) -> Vec<Record> {
    let records: Vec<Record> = (0..n)
        .map(|i| record(i, Timestamp::from_nanos(start + i as i64 * 1_000_000)))
        .collect();
    write(store, &mut Chain::new(), records.clone());
    records
}

/// Every record of a query, page after page (asserting there is no repeat).
pub fn collect(store: &mut impl TestStore, query: &Query) -> Vec<Record> {
    let mut out = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let q = match cursor {
            Some(c) => query.clone().after(c),
            None => query.clone(),
        };
        let page = store.query(&q).expect("query");
        out.extend(page.records);
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let ids: HashSet<_> = out.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), out.len(), "a record came back twice");
    out
}

fn ids(records: &[Record]) -> Vec<uuid::Uuid> {
    records.iter().map(|r| r.id).collect()
}

const T0: i64 = 1_780_000_000_000_000_000;

/// Every filter, alone and combined, against an oracle over the written records.
pub fn filters<H: Harness>(h: &H) {
    let mut store = h.fresh();
    let all = populate(&mut store, 240, T0);
    let newest_first = |pred: &dyn Fn(&Record) -> bool| -> Vec<uuid::Uuid> {
        all.iter().rev().filter(|r| pred(r)).map(|r| r.id).collect()
    };
    let check = |store: &mut H::S, q: Query, pred: &dyn Fn(&Record) -> bool| {
        let got = ids(&collect(store, &q.clone().limit(7)));
        let want = newest_first(pred);
        assert!(
            !want.is_empty() || q == Query::all().text("nothing"),
            "{q:?} selects nothing"
        );
        assert_eq!(got, want, "{q:?}");
    };
    let t = |ms: i64| Timestamp::from_nanos(T0 + ms * 1_000_000);
    check(&mut store, Query::all(), &|_| true);
    check(&mut store, Query::all().since(t(100)), &|r| {
        r.time >= t(100)
    });
    check(&mut store, Query::all().until(t(100)), &|r| r.time < t(100));
    check(&mut store, Query::all().since(t(50)).until(t(60)), &|r| {
        r.time >= t(50) && r.time < t(60)
    });
    check(
        &mut store,
        Query::all().events(["app_destroy", "user_login"]),
        &|r| r.event == "app_destroy" || r.event == "user_login",
    );
    check(&mut store, Query::all().categories(["app"]), &|r| {
        r.category == "app"
    });
    check(&mut store, Query::all().codes([20]), &|r| r.code == 20);
    check(&mut store, Query::all().actor("u-2"), &|r| {
        actor_id(r) == "u-2"
    });
    check(&mut store, Query::all().actor("kim@globex.test"), &|r| {
        actor_id(r) == "u-3"
    });
    check(&mut store, Query::for_tenant("globex"), &|r| {
        r.context.tenant.as_deref() == Some("globex")
    });
    check(
        &mut store,
        Query::all().entity("app", None::<String>),
        &|r| r.entity.as_ref().is_some_and(|e| e.kind == "app"),
    );
    check(
        &mut store,
        Query::all().entity("app", Some("app-4")),
        &|r| {
            r.entity
                .as_ref()
                .is_some_and(|e| e.id == Some(json!("app-4")))
        },
    );
    check(&mut store, Query::all().entity("user", Some("3")), &|r| {
        r.entity.as_ref().is_some_and(|e| e.id == Some(json!(3)))
    });
    check(
        &mut store,
        Query::all().outcome(OutcomeKind::Failure),
        &|r| r.outcome == OutcomeKind::Failure,
    );
    check(
        &mut store,
        Query::all().levels([Level::Warn, Level::Error]),
        &|r| r.level != Level::Info,
    );
    check(&mut store, Query::all().text("#17 "), &|r| {
        r.description.contains("#17 ")
    });
    check(&mut store, Query::all().text("DID APP_ADD"), &|r| {
        r.event == "app_add"
    });
    // `%` and `_` are plain characters, not wildcards.
    check(&mut store, Query::all().text("100%_sure"), &|_| true);
    assert!(
        store
            .query(&Query::all().text("100%%"))
            .unwrap()
            .records
            .is_empty()
    );
    assert!(
        store
            .query(&Query::all().text("1_0"))
            .unwrap()
            .records
            .is_empty()
    );
    check(
        &mut store,
        Query::for_tenant("acme")
            .actor("u-1")
            .categories(["app"])
            .since(t(10))
            .outcome(OutcomeKind::Success),
        &|r| {
            r.context.tenant.as_deref() == Some("acme")
                && actor_id(r) == "u-1"
                && r.category == "app"
                && r.time >= t(10)
                && r.outcome == OutcomeKind::Success
        },
    );
    // Oldest first is the exact reverse.
    let oldest = ids(&collect(
        &mut store,
        &Query::all().order(Order::OldestFirst).limit(13),
    ));
    assert_eq!(oldest, ids(&all));
    // Records come back whole.
    let page = store.query(&Query::all().limit(1)).unwrap();
    let mut last = all.last().unwrap().clone();
    last.hash = page.records[0].hash;
    last.prev_hash = page.records[0].prev_hash;
    assert_eq!(page.records[0], last);
    assert_eq!(store.get(last.id).unwrap(), Some(last));
    assert_eq!(store.get(uuid::Uuid::nil()).unwrap(), None);
}

fn actor_id(r: &Record) -> &str {
    r.context.actor.as_ref().map_or("", |a| a.id.as_str())
}

/// Records with equal times still page without gaps (the cursor carries position).
pub fn equal_times<H: Harness>(h: &H) {
    let mut store = h.fresh();
    let records: Vec<Record> = (0..50)
        .map(|i| record(i, Timestamp::from_nanos(T0)))
        .collect();
    write(&mut store, &mut Chain::new(), records.clone());
    for order in [Order::NewestFirst, Order::OldestFirst] {
        let got = collect(&mut store, &Query::all().order(order).limit(3));
        assert_eq!(got.len(), 50);
    }
}

/// Rows the writer of [`pagination_under_concurrent_inserts`] writes at most.
const CONCURRENT_ROWS: usize = 2_000;

/// Paging while another handle keeps inserting: every record that existed when
/// paging began comes back exactly once.
///
/// The writer stops after [`CONCURRENT_ROWS`] rows at the latest: paging oldest
/// first ends only once it reaches the newest row, which a reader slower than a
/// writer that never stops never does. With 50-row segments, each seal makes
/// every other connection parse the schema again, a schema that grows with each
/// seal: past ~1 000 segments the reader spent its time parsing and the test ran
/// until killed.
pub fn pagination_under_concurrent_inserts<H: Harness + Sync>(h: &H)
where
    H::S: Send,
{
    let mut store = h.fresh();
    let before = populate(&mut store, 400, T0);
    let mut writer = h.reopen(&store);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut chain = Chain::new();
            let mut i = 10_000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 10_000 + CONCURRENT_ROWS {
                let batch: Vec<Record> = (i..i + 5).map(|j| record(j, Timestamp::now())).collect();
                write(&mut writer, &mut chain, batch);
                i += 5;
            }
        });
        for order in [Order::NewestFirst, Order::OldestFirst] {
            let got = collect(&mut store, &Query::all().order(order).limit(9));
            let got: HashSet<_> = got.iter().map(|r| r.id).collect();
            for r in &before {
                assert!(got.contains(&r.id), "{order:?}: a record was skipped");
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert!(store.verify().unwrap().is_intact());
}

/// A tenant-scoped query returns only that tenant's rows, whatever else it says.
pub fn tenant_isolation<H: Harness>(h: &H) {
    let mut store = h.fresh();
    populate(&mut store, 120, T0);
    let other_cursor = store
        .query(&Query::for_tenant("globex").limit(5))
        .unwrap()
        .next
        .unwrap();
    let queries = [
        Query::for_tenant("acme"),
        Query::for_tenant("acme").actor("u-3"),
        Query::for_tenant("acme").events(["app_add", "user_login"]),
        Query::for_tenant("acme").after(other_cursor),
        Query::for_tenant("acme").text("globex"),
        Query::for_tenant("acme").entity("app", Some("app-2")),
    ];
    for q in queries {
        for r in collect(&mut store, &q.clone().limit(4)) {
            assert_eq!(r.context.tenant.as_deref(), Some("acme"), "{q:?}");
        }
    }
    assert!(collect(&mut store, &Query::for_tenant("nobody")).is_empty());
    assert!(collect(&mut store, &Query::for_tenant("")).is_empty());
}

/// Every read of a tenant's view — query, get, follow — returns that tenant's
/// records only; `follow` goes on past other tenants' rows.
pub fn tenant_views<H: Harness>(h: &H) {
    let mut store = h.fresh();
    let written = populate(&mut store, 60, T0);
    let acme: Vec<&Record> = written
        .iter()
        .filter(|r| r.context.tenant.as_deref() == Some("acme"))
        .collect();
    let other = written
        .iter()
        .find(|r| r.context.tenant.as_deref() == Some("globex"))
        .unwrap();
    let untenanted = written.iter().find(|r| r.context.tenant.is_none()).unwrap();
    let mut view = store.tenant("acme");
    assert_eq!(
        view.get(acme[0].id).unwrap().map(|r| r.id),
        Some(acme[0].id)
    );
    assert_eq!(
        view.get(other.id).unwrap(),
        None,
        "another tenant's record by id"
    );
    assert_eq!(
        view.get(untenanted.id).unwrap(),
        None,
        "a record of no tenant"
    );
    // An unscoped query is narrowed; a query for another tenant finds nothing.
    let page = view.query(&Query::all().limit(100)).unwrap();
    assert_eq!(page.records.len(), acme.len());
    assert!(
        page.records
            .iter()
            .all(|r| r.context.tenant.as_deref() == Some("acme"))
    );
    assert!(
        view.query(&Query::for_tenant("globex"))
            .unwrap()
            .records
            .is_empty()
    );
    // Following in small steps sees exactly acme's rows, in order.
    let (mut after, mut seen) = (0, Vec::new());
    loop {
        let rows = view.follow(after, 3).unwrap();
        let Some(last) = rows.last() else { break };
        after = last.seq;
        seen.extend(rows.into_iter().map(|s| s.record.id));
    }
    assert_eq!(seen, acme.iter().map(|r| r.id).collect::<Vec<_>>());
    // Operators still read everything.
    assert_eq!(store.get(other.id).unwrap().map(|r| r.id), Some(other.id));
    assert_eq!(store.follow(0, 1000).unwrap().len(), 60);
}

/// Hostile strings in every string filter: no rows, no error, nothing changed.
pub fn injection<H: Harness>(h: &H) {
    let mut store = h.fresh();
    populate(&mut store, 40, T0);
    let hostile = [
        "' OR '1'='1",
        "\" OR \"\"=\"",
        "x'); DROP TABLE audit_records; --",
        "'; DELETE FROM audit_records; --",
        "%' OR 1=1 --",
        "\\",
        "acme' --",
        "?1",
        "$1",
    ];
    for s in hostile {
        let queries = [
            Query::for_tenant(s),
            Query::all().events([s]),
            Query::all().categories([s]),
            Query::all().actor(s),
            Query::all().entity(s, Some(s)),
            Query::all().entity("app", Some(s)),
            Query::all().text(s),
        ];
        for q in queries {
            let page = store.query(&q).unwrap_or_else(|e| panic!("{q:?}: {e}"));
            assert!(page.records.is_empty(), "{q:?} returned rows");
        }
    }
    assert_eq!(collect(&mut store, &Query::all()).len(), 40);
    assert!(store.verify().unwrap().is_intact());
}

/// The append-only triggers refuse plain UPDATE and DELETE.
pub fn append_only<H: Harness>(h: &H) {
    let mut store = h.fresh();
    populate(&mut store, 3, T0);
    let update = h.sql(&store, "UPDATE audit_records SET description = 'x'");
    assert!(update.unwrap_err().contains("append-only"));
    let delete = h.sql(&store, "DELETE FROM audit_records");
    assert!(delete.unwrap_err().contains("append-only"));
    assert_eq!(collect(&mut store, &Query::all()).len(), 3);
}

/// Values a database may refuse in a column: NUL bytes, ids far over a btree row,
/// a time before 1970. Each record is stored whole, found by its (long) actor and
/// entity ids, and the chain verifies.
pub fn odd_values<H: Harness>(h: &H) {
    let mut store = h.fresh();
    let long = "x".repeat(5_000);
    let mut records = Vec::new();
    for (i, (actor, entity)) in [
        ("nul\0actor", "nul\0entity"),
        (long.as_str(), long.as_str()),
        ("u-9", "e-9"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = record(i, Timestamp::from_nanos(-1_000_000_000 * (i as i64 + 1)));
        let context = Arc::make_mut(&mut r.context);
        context.actor = Some(audit::Actor::user(actor));
        context.tenant = Some(format!("tenant\0{i}"));
        r.entity = Some(audit::record::EntityRef {
            kind: "app".into(),
            type_code: 1,
            id: Some(json!(entity)),
        });
        r.description = format!("described\0{i}");
        records.push(r);
    }
    write(&mut store, &mut Chain::new(), records.clone());
    let all = collect(&mut store, &Query::all());
    assert_eq!(all.len(), 3);
    for r in &records {
        let actor = &r.context.actor.as_ref().unwrap().id;
        let found = collect(&mut store, &Query::all().actor(actor.clone()));
        assert_eq!(
            ids(&found),
            vec![r.id],
            "actor {}",
            &actor[..actor.len().min(20)]
        );
        let entity = r
            .entity
            .as_ref()
            .unwrap()
            .id
            .as_ref()
            .unwrap()
            .as_str()
            .unwrap();
        let found = collect(&mut store, &Query::all().entity("app", Some(entity)));
        assert_eq!(ids(&found), vec![r.id]);
        let mut stored = found[0].clone();
        (stored.prev_hash, stored.hash) = (None, None);
        assert_eq!(stored, *r, "the record is stored whole");
    }
    let tenant = collect(&mut store, &Query::for_tenant("tenant\u{0}1"));
    assert_eq!(ids(&tenant), vec![records[1].id]);
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
}

/// A replayed batch (same ids) is skipped, and the chain stays whole.
pub fn idempotent_writes<H: Harness>(h: &H) {
    let mut store = h.fresh();
    let mut chain = Chain::new();
    let records: Vec<Record> = (0..10)
        .map(|i| record(i, Timestamp::from_nanos(T0 + i as i64)))
        .collect();
    let items: Vec<Item> = records
        .into_iter()
        .map(|mut r| {
            let json = chain.link(&mut r);
            Item::with_json(r, json, Arc::from("x"))
        })
        .collect();
    store.write(&items[..6]).unwrap();
    store.write(&items[3..]).unwrap();
    store.write(&items).unwrap();
    assert_eq!(collect(&mut store, &Query::all()).len(), 10);
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!((v.rows, v.producers, v.continued), (10, 1, 0));
}

/// A store with `n` rows (seq 1..=n), its triggers dropped, ready to be tampered with.
fn tamper_target<H: Harness>(h: &H, n: usize) -> (H::S, Vec<Record>) {
    let mut store = h.fresh();
    let records = populate(&mut store, n, T0);
    assert!(store.verify().unwrap().is_intact());
    h.sql(&store, h.drop_triggers()).expect("drop triggers");
    (store, records)
}

fn first_break(store: &mut impl TestStore) -> Break {
    let v = store.verify().unwrap();
    match v.first_break {
        Some(b) => b,
        None => panic!("tampering not detected: {v:?}"),
    }
}

/// Each kind of tampering is detected and names the row.
pub fn tampering<H: Harness>(h: &H) {
    // A value changed inside the record.
    let (mut store, records) = tamper_target(h, 20);
    h.sql(
        &store,
        &format!(
            "UPDATE audit_records SET record = {} WHERE seq = 8",
            h.record_replace("\"n\":7,", "\"n\":8,")
        ),
    )
    .unwrap();
    let b = first_break(&mut store);
    assert!(matches!(b, Break::Changed { seq: 8, .. }), "{b}");
    assert_eq!(b.id(), records[7].id.to_string());

    // A filter column changed (the record left alone): queries would lie.
    let (mut store, _) = tamper_target(h, 20);
    h.sql(
        &store,
        "UPDATE audit_records SET actor_id = 'u-9' WHERE seq = 5",
    )
    .unwrap();
    let b = first_break(&mut store);
    assert!(matches!(b, Break::Changed { seq: 5, .. }), "{b}");
    assert!(b.to_string().contains("actor_id"), "{b}");

    // A row deleted.
    let (mut store, records) = tamper_target(h, 20);
    h.sql(&store, "DELETE FROM audit_records WHERE seq = 12")
        .unwrap();
    let b = first_break(&mut store);
    assert!(
        matches!(
            b,
            Break::Removed {
                seq: 13,
                after: Some(11),
                ..
            }
        ),
        "{b}"
    );
    assert_eq!(b.id(), records[12].id.to_string());

    // The first row deleted.
    let (mut store, _) = tamper_target(h, 5);
    h.sql(&store, "DELETE FROM audit_records WHERE seq = 1")
        .unwrap();
    let b = first_break(&mut store);
    assert!(
        matches!(
            b,
            Break::Removed {
                seq: 2,
                after: None,
                ..
            }
        ),
        "{b}"
    );

    // A row inserted at the end, copying a real row's link.
    let (mut store, _) = tamper_target(h, 20);
    let forged = record(99, Timestamp::from_nanos(T0 + 500_000_000));
    let mut chain = Chain::new();
    let mut forged_rec = forged.clone();
    let json = chain.link(&mut forged_rec);
    h.sql(
        &store,
        &format!(
            "INSERT INTO audit_records (seq, id, time_ns, event, code, category, level, outcome, actor_id, \
             actor_email, tenant, entity_type, entity_type_code, entity_id, description, hash, link, record) \
             SELECT 21, {}, {}, event, code, category, level, outcome, actor_id, actor_email, tenant, \
             entity_type, entity_type_code, entity_id, description, '{}', link, {} FROM audit_records WHERE seq = 20",
            h.typed(&format!("'{}'", forged.id), "uuid"),
            forged.time.as_nanos(),
            forged_rec.hash.as_deref().unwrap(),
            h.typed(&format!("'{}'", json.replace('\'', "''")), "json"),
        ),
    )
    .unwrap();
    let b = first_break(&mut store);
    // The copied columns disagree with the forged record, or the link does.
    assert_eq!(b.seq(), 21, "{b}");
    assert_eq!(b.id(), forged.id.to_string());

    // Two rows swapped (moved with their links).
    let (mut store, records) = tamper_target(h, 20);
    h.sql(&store, "UPDATE audit_records SET seq = -1 WHERE seq = 6")
        .unwrap();
    h.sql(&store, "UPDATE audit_records SET seq = 6 WHERE seq = 14")
        .unwrap();
    h.sql(&store, "UPDATE audit_records SET seq = 14 WHERE seq = -1")
        .unwrap();
    let b = first_break(&mut store);
    assert!(matches!(b, Break::Reordered { seq: 6, .. }), "{b}");
    assert_eq!(b.id(), records[13].id.to_string());

    // Two records swapped, their links left in place.
    let (mut store, records) = tamper_target(h, 20);
    h.sql(
        &store,
        "UPDATE audit_records SET link = (SELECT link FROM audit_records WHERE seq = 14) WHERE seq = 6",
    )
    .unwrap();
    let b = first_break(&mut store);
    assert_eq!(
        (b.seq(), b.id()),
        (6, records[5].id.to_string().as_str()),
        "{b}"
    );
}

/// Re-writes every row from `from` on as an attacker without the key would: record
/// hash and plain SHA-256 links recomputed.
fn forge_from<H: Harness>(h: &H, store: &mut H::S, records: &[Record], from: usize) {
    use audit::store::{ChainKey, Link};
    let mut chain = Chain::new();
    let mut prev = Link::GENESIS;
    for (i, r) in records.iter().enumerate() {
        let mut r = r.clone();
        if i == from {
            r.description = "nothing happened".into();
        }
        let json = chain.link(&mut r);
        let link = ChainKey::none().link(&prev, r.hash.as_deref().unwrap());
        prev = link;
        if i >= from {
            h.sql(
                store,
                &format!(
                    "UPDATE audit_records SET record = '{}', hash = '{}', link = '{}', description = '{}' WHERE seq = {}",
                    json.replace('\'', "''"),
                    r.hash.as_deref().unwrap(),
                    link,
                    r.description.replace('\'', "''"),
                    i + 1
                ),
            )
            .unwrap();
        }
    }
}

/// Without a key, an attacker who recomputes every hash and link goes unnoticed;
/// with a key, the forged links fail.
pub fn hmac_key<H: Harness>(h: &H) {
    let (mut plain, records) = tamper_target(h, 10);
    forge_from(h, &mut plain, &records, 4);
    assert!(
        plain.verify().unwrap().is_intact(),
        "the forgery is consistent"
    );

    let mut keyed = h.fresh_keyed(b"a chain key of thirty-two bytes+");
    let records = populate(&mut keyed, 10, T0);
    assert!(keyed.verify().unwrap().is_intact());
    assert_eq!(keyed.verify().unwrap().algorithm, "hmac-sha256");
    h.sql(&keyed, h.drop_triggers()).unwrap();
    forge_from(h, &mut keyed, &records, 4);
    let b = first_break(&mut keyed);
    assert_eq!(b.seq(), 5, "{b}");
}

/// Purge with export: removed rows are in the file (each still matching its hash),
/// the rest verifies from the anchor, and writing goes on.
pub fn purge_and_export<H: Harness>(h: &H, export: &std::path::Path) {
    let mut store = h.fresh();
    let mut chain = Chain::new();
    let records: Vec<Record> = (0..100)
        .map(|i| record(i, Timestamp::from_nanos(T0 + i as i64 * 1_000_000)))
        .collect();
    write(&mut store, &mut chain, records.clone());
    let cut = Timestamp::from_nanos(T0 + 60 * 1_000_000);
    let mut calls = Vec::new();
    let report = store
        .purge(
            &Purge::older_than(cut).export(export).chunk(25),
            &mut |done, total| calls.push((done, total)),
        )
        .unwrap();
    assert_eq!(
        (report.removed, report.exported, report.last_seq),
        (60, 60, Some(60))
    );
    // From none to all, never more than a chunk (25) at a time: a store removes
    // whole partitions (smaller here) or chunks of rows.
    assert_eq!(
        (calls.first(), calls.last()),
        (Some(&(0, 60)), Some(&(60, 60))),
        "{calls:?}"
    );
    assert!(
        calls
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[1].0 - w[0].0 <= 25),
        "{calls:?}"
    );
    let lines: Vec<String> = std::fs::read_to_string(export)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 60);
    for (line, original) in lines.iter().zip(&records) {
        let back: Record = serde_json::from_str(line).unwrap();
        assert_eq!(back.id, original.id);
        let (stored, computed) = audit::integrity::hash_of_json(line).unwrap();
        assert_eq!(stored, Some(computed.as_str()));
    }
    let left = collect(&mut store, &Query::all().order(Order::OldestFirst));
    assert_eq!(ids(&left), ids(&records[60..]));
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    let anchor = v.anchor.unwrap();
    assert_eq!((anchor.seq, anchor.purged), (60, 60));
    assert_eq!(
        v.continued, 1,
        "the producer chain continues from a purged record"
    );

    // Writing after a purge continues the chain.
    write(
        &mut store,
        &mut chain,
        (100..110)
            .map(|i| record(i, Timestamp::from_nanos(T0 + i as i64 * 1_000_000)))
            .collect(),
    );
    assert!(store.verify().unwrap().is_intact());
    // Purging everything, twice, then writing into the empty store.
    let all = store
        .purge(&Purge::older_than(Timestamp::now()), &mut |_, _| {})
        .unwrap();
    assert_eq!(all.removed, 50);
    let none = store
        .purge(&Purge::older_than(Timestamp::now()), &mut |_, _| {})
        .unwrap();
    assert_eq!(none.removed, 0);
    write(&mut store, &mut chain, vec![record(200, Timestamp::now())]);
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.anchor.unwrap().purged, 110);

    // Removing rows after a purge is still detected.
    h.sql(&store, h.drop_triggers()).unwrap();
    write(
        &mut store,
        &mut chain,
        vec![record(201, Timestamp::now()), record(202, Timestamp::now())],
    );
    h.sql(
        &store,
        "DELETE FROM audit_records WHERE seq = (SELECT min(seq) FROM audit_records)",
    )
    .unwrap();
    assert!(!store.verify().unwrap().is_intact());
}

/// A signed checkpoint, taken then checked later: it holds while the store only
/// grows or is purged; removal of the newest rows, a consistently rewritten history
/// (which `verify` alone cannot see on a plain chain) and another store are each
/// detected and named.
pub fn checkpoints<H: Harness>(h: &H) {
    use audit::store::{Checkpoint, CheckpointKey, Finding};
    let key = CheckpointKey::generate().unwrap();
    let public = key.public();
    let take = |store: &mut H::S| {
        let (cp, v) = store.checkpoint().unwrap();
        assert!(v.is_intact());
        // Through its signed text, as the CLI and a publisher keep it.
        Checkpoint::open(&cp.sign(&key), &public).unwrap()
    };

    let mut empty = h.fresh();
    let at_empty = take(&mut empty);
    assert_eq!((at_empty.seq, at_empty.rows), (0, 0));

    let mut store = h.fresh();
    let records = populate(&mut store, 10, T0);
    let at_10 = take(&mut store);
    assert_eq!((at_10.seq, at_10.rows, at_10.purged), (10, 10, 0));
    let more: Vec<Record> = (10..15)
        .map(|i| record(i, Timestamp::from_nanos(T0 + i as i64 * 1_000_000)))
        .collect();
    write(&mut store, &mut Chain::new(), more);
    let at_15 = take(&mut store);
    let (v, findings) = store
        .check_checkpoints(&[at_10.clone(), at_15.clone()])
        .unwrap();
    assert!(v.is_intact());
    assert_eq!(findings, [Finding::Holds, Finding::Holds]);

    // The empty store's checkpoint names another store.
    let (_, f) = store.check_checkpoints(&[at_empty]).unwrap();
    assert!(matches!(&f[0], Finding::OtherStore { .. }), "{}", f[0]);

    // A purge keeps every checkpoint holding: it is a recorded removal.
    store
        .purge(
            &Purge::older_than(Timestamp::from_nanos(T0 + 5 * 1_000_000)),
            &mut |_, _| {},
        )
        .unwrap();
    let (v, f) = store
        .check_checkpoints(&[at_10.clone(), at_15.clone()])
        .unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert!(f.iter().all(Finding::holds), "{f:?}");

    // The newest rows removed by someone with the database: the chain that is left
    // is intact, so only the checkpoint sees it.
    h.sql(&store, h.drop_triggers()).unwrap();
    h.sql(&store, "DELETE FROM audit_records WHERE seq > 12")
        .unwrap();
    let (v, f) = store.check_checkpoints(&[at_10.clone(), at_15]).unwrap();
    assert!(v.is_intact(), "verify alone does not see it: {v:?}");
    assert_eq!(f[0], Finding::Holds);
    assert_eq!(
        f[1],
        Finding::Truncated {
            checkpoint_seq: 15,
            last_seq: 12
        },
        "{}",
        f[1]
    );

    // A history rewritten consistently (every hash and link recomputed): `verify`
    // passes on a plain chain, the checkpoint does not.
    let (mut forged, records_2) = tamper_target(h, 10);
    // Taken before the forgery (the triggers are gone, nothing changed yet).
    let at_forged = take(&mut forged);
    forge_from(h, &mut forged, &records_2, 4);
    let (v, f) = forged.check_checkpoints(&[at_forged]).unwrap();
    assert!(v.is_intact(), "the forgery is consistent: {v:?}");
    assert!(
        matches!(f[0], Finding::Rewritten { seq: 10, .. }),
        "{}",
        f[0]
    );
    assert!(f[0].to_string().contains("rewritten at row 10"), "{}", f[0]);

    // The same records in another store: named as another store.
    let mut twin = h.fresh();
    write(&mut twin, &mut Chain::new(), records.clone());
    let (_, f) = twin.check_checkpoints(&[at_10]).unwrap();
    assert!(matches!(f[0], Finding::OtherStore { .. }), "{}", f[0]);
}

/// A tenant purge erases that tenant's records wherever they sit in the chain: no
/// read returns them and their text is gone from the store; every other record,
/// the chain and an earlier checkpoint still verify; the export holds them whole; a
/// later time purge goes through erased rows. The erased shape is the only update
/// the store takes, and only inside a purge.
pub fn tenant_purge<H: Harness>(h: &H, export: &std::path::Path) {
    use audit::store::{CheckpointKey, Finding};
    let mut store = h.fresh();
    let written = populate(&mut store, 60, T0);
    let (before, _) = store.checkpoint().unwrap();
    let key = CheckpointKey::generate().unwrap();
    let before = audit::store::Checkpoint::open(&before.sign(&key), &key.public()).unwrap();
    let acme = |r: &&Record| r.context.tenant.as_deref() == Some("acme");
    let cut = Timestamp::from_nanos(T0 + 30 * 1_000_000);
    let (old_acme, new_acme): (Vec<&Record>, Vec<&Record>) =
        written.iter().filter(acme).partition(|r| r.time < cut);
    assert_eq!((old_acme.len(), new_acme.len()), (10, 10));
    let text_of = |r: &Record| r.description.clone();
    for r in &written {
        assert!(h.holds_text(&store, &text_of(r)), "the search finds text");
    }

    let mut calls = Vec::new();
    let report = store
        .purge(
            &Purge::older_than(cut)
                .tenant("acme")
                .export(export)
                .chunk(4),
            &mut |done, total| calls.push((done, total)),
        )
        .unwrap();
    assert_eq!(
        (report.erased, report.removed, report.exported),
        (10, 0, 10)
    );
    assert_eq!(calls, [(0, 10), (4, 10), (8, 10), (10, 10)]);
    let exported: Vec<String> = std::fs::read_to_string(export)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(exported.len(), 10);
    for (line, original) in exported.iter().zip(&old_acme) {
        let back: Record = serde_json::from_str(line).unwrap();
        assert_eq!(back.id, original.id);
        let (stored, computed) = audit::integrity::hash_of_json(line).unwrap();
        assert_eq!(stored, Some(computed.as_str()), "exported whole");
    }

    // No read returns an erased record; everything else is untouched.
    for r in &old_acme {
        assert_eq!(store.get(r.id).unwrap(), None);
        assert_eq!(store.tenant("acme").get(r.id).unwrap(), None);
        assert!(
            !h.holds_text(&store, &text_of(r)),
            "erased text left behind"
        );
    }
    let kept: Vec<uuid::Uuid> = written
        .iter()
        .filter(|r| !old_acme.iter().any(|o| o.id == r.id))
        .map(|r| r.id)
        .collect();
    let all = collect(&mut store, &Query::all().order(Order::OldestFirst));
    assert_eq!(ids(&all), kept);
    let every_event = Query::all().events(EVENTS.map(|e| e.0));
    assert_eq!(collect(&mut store, &every_event).len(), 50);
    assert_eq!(
        ids(&collect(
            &mut store,
            &Query::for_tenant("acme").order(Order::OldestFirst)
        )),
        ids(&new_acme.iter().map(|r| (*r).clone()).collect::<Vec<_>>())
    );
    let followed: Vec<uuid::Uuid> = store
        .follow(0, 1000)
        .unwrap()
        .into_iter()
        .map(|s| s.record.id)
        .collect();
    assert_eq!(followed, kept);
    for r in written.iter().filter(|r| !acme(r) || r.time >= cut) {
        assert!(h.holds_text(&store, &text_of(r)));
    }

    // The chain and the checkpoint taken before still hold.
    let (v, f) = store
        .check_checkpoints(std::slice::from_ref(&before))
        .unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!((v.rows, v.erased), (60, 10));
    assert_eq!(f, [Finding::Holds]);

    // Only a purge erases, only once, only into the erased shape.
    let forged_erasure = format!(
        "UPDATE audit_records SET {}, erased_ns = 1 WHERE seq = 2",
        "record = 'null', actor_id = NULL, actor_email = NULL, tenant = NULL, \
         entity_type = NULL, entity_type_code = NULL, entity_id = NULL, description = ''"
    );
    let refused = h.sql(&store, &forged_erasure).unwrap_err();
    assert!(refused.contains("append-only"), "{refused}");
    let rewrite_erased = "UPDATE audit_records SET erased_ns = 2 WHERE erased_ns IS NOT NULL";
    assert!(
        h.sql(&store, rewrite_erased)
            .unwrap_err()
            .contains("append-only")
    );

    // Again: nothing left to erase; then the rest of acme's records.
    let again = store
        .purge(&Purge::older_than(cut).tenant("acme"), &mut |_, _| {})
        .unwrap();
    assert_eq!(again.erased, 0);
    let rest = store
        .purge(&Purge::everything().tenant("acme"), &mut |_, _| {})
        .unwrap();
    assert_eq!(rest.erased, 10);
    assert!(collect(&mut store, &Query::for_tenant("acme")).is_empty());
    assert_eq!(collect(&mut store, &Query::for_tenant("globex")).len(), 20);

    // A time purge goes through erased rows; the export has nothing of them.
    let archive = export.with_extension("old.jsonl");
    let cut_40 = Timestamp::from_nanos(T0 + 40 * 1_000_000);
    let report = store
        .purge(&Purge::older_than(cut_40).export(&archive), &mut |_, _| {})
        .unwrap();
    assert_eq!((report.removed, report.exported), (40, 40 - 14));
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!((v.rows, v.erased), (20, 6));
    let (_, f) = store.check_checkpoints(&[before]).unwrap();
    assert!(f[0].holds(), "{}", f[0]);
    write(
        &mut store,
        &mut Chain::new(),
        vec![record(99, Timestamp::now())],
    );
    assert!(store.verify().unwrap().is_intact());
}

/// `Query::field` filters on a metadata value: integers, text spelling an integer,
/// text; with a tenant scope and pagination; a hostile name matches nothing.
pub fn field_filters<H: Harness>(h: &H) {
    let mut store = h.fresh();
    let written = populate(&mut store, 40, T0);
    let mut by = |q: Query| ids(&collect(&mut store, &q));
    assert_eq!(by(Query::all().field("n", 7)), ids(&written[7..8]));
    assert_eq!(by(Query::all().field("n", "7")), ids(&written[7..8]));
    assert!(by(Query::all().field("n", 999)).is_empty());
    assert_eq!(
        by(Query::all().field("n", 3).field("n", 3)),
        ids(&written[3..4])
    );
    assert_eq!(
        by(Query::for_tenant("acme").field("n", 3)),
        ids(&written[3..4])
    );
    assert!(by(Query::for_tenant("globex").field("n", 3)).is_empty());
    let all = by(Query::all()
        .field("secret", "[REDACTED]")
        .order(Order::OldestFirst)
        .limit(7));
    assert_eq!(all, ids(&written));
    for hostile in ["n') OR 1=1 --", "N", "", "n.x", "$.metadata"] {
        assert!(by(Query::all().field(hostile, 7)).is_empty(), "{hostile}");
    }
    assert!(store.verify().unwrap().is_intact());
}

/// A follower of a filtered query sees exactly the matching rows, in insertion
/// order, however small its batches; from now on, only what is written next. The
/// events a store holds are listed per tenant, with their newest record's time.
pub fn following_and_events_seen<H: Harness>(h: &H) {
    let mut store = h.fresh();
    assert!(store.events_seen(None).unwrap().is_empty());
    let written = populate(&mut store, 60, T0);
    let query = Query::for_tenant("acme")
        .events(["user_login", "app_add"])
        .levels([Level::Info, Level::Warn]);
    let matches = |r: &Record| {
        r.context.tenant.as_deref() == Some("acme")
            && ["user_login", "app_add"].contains(&&*r.event)
            && r.level != Level::Error
    };
    let expected: Vec<uuid::Uuid> = written
        .iter()
        .filter(|r| matches(r))
        .map(|r| r.id)
        .collect();
    assert!(expected.len() > 3, "the filter keeps a few rows");
    for batch in [1, 2, 1000] {
        let mut follower = Follower::new(query.clone().limit(batch), 0);
        let mut seen = Vec::new();
        loop {
            let rows = follower.next(&mut store).unwrap();
            if rows.is_empty() {
                break;
            }
            assert!(rows.len() <= batch);
            assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq));
            seen.extend(rows.into_iter().map(|s| s.record.id));
        }
        assert_eq!(seen, expected, "batches of {batch}");
        assert_eq!(follower.position(), store.last_seq().unwrap());
    }
    // From now on: rows that do not match are stepped over, new matches come once.
    let mut follower = Follower::from_now(&mut store, query.clone()).unwrap();
    assert!(follower.next(&mut store).unwrap().is_empty());
    let more: Vec<Record> = (60..120)
        .map(|i| record(i, Timestamp::from_nanos(T0 + i as i64 * 1_000_000)))
        .collect();
    write(&mut store, &mut Chain::new(), more.clone());
    let new: Vec<uuid::Uuid> = follower
        .next(&mut store)
        .unwrap()
        .into_iter()
        .map(|s| s.record.id)
        .collect();
    let expected: Vec<uuid::Uuid> = more.iter().filter(|r| matches(r)).map(|r| r.id).collect();
    assert_eq!(new, expected);
    assert!(follower.next(&mut store).unwrap().is_empty());

    // Events seen, overall and per tenant (nothing of another tenant's shows).
    let all: Vec<Record> = written.into_iter().chain(more).collect();
    for tenant in [None, Some("acme"), Some("globex"), Some("initech")] {
        let seen = store.events_seen(tenant).unwrap();
        let mut expected: Vec<(String, u32, String, Timestamp)> = EVENTS
            .iter()
            .filter_map(|(event, code, category)| {
                let last = all
                    .iter()
                    .filter(|r| r.event == *event)
                    .filter(|r| tenant.is_none() || r.context.tenant.as_deref() == tenant)
                    .map(|r| r.time)
                    .max()?;
                Some((event.to_string(), *code, category.to_string(), last))
            })
            .collect();
        expected.sort();
        let got: Vec<(String, u32, String, Timestamp)> = seen
            .iter()
            .map(|e| (e.event.clone(), e.code, e.category.clone(), e.last))
            .collect();
        assert_eq!(got, expected, "tenant {tenant:?}");
    }
    assert!(store.events_seen(Some("initech")).unwrap().is_empty());
}

/// `actor(v)` matches the actor's id or its email, each row once, in order and
/// page after page — also when one actor's id is another's email.
pub fn actor_by_id_or_email<H: Harness>(h: &H) {
    let mut store = h.fresh();
    let actors: [(&str, Option<&str>); 5] = [
        ("x@y.test", None),               // the id matches
        ("u-9", Some("x@y.test")),        // the email matches
        ("x@y.test", Some("x@y.test")),   // both match: once
        ("u-8", Some("other@y.test")),    // neither
        ("X@Y.TEST", Some("u-7@y.test")), // another case: not the same actor
    ];
    let records: Vec<Record> = (0..40)
        .map(|i| {
            let mut r = record(i, Timestamp::from_nanos(T0 + (i as i64 / 2) * 1_000_000));
            let (id, email) = actors[i % actors.len()];
            let context = std::sync::Arc::make_mut(&mut r.context);
            let actor = context.actor.as_mut().unwrap();
            actor.id = id.into();
            actor.email = email.map(Into::into);
            r
        })
        .collect();
    write(&mut store, &mut Chain::new(), records.clone());
    for order in [Order::NewestFirst, Order::OldestFirst] {
        for limit in [1, 3, 100] {
            let got = collect(
                &mut store,
                &Query::all().actor("x@y.test").order(order).limit(limit),
            );
            let mut want: Vec<&Record> = records
                .iter()
                .filter(|r| {
                    let a = r.context.actor.as_ref().unwrap();
                    a.id == "x@y.test" || a.email.as_deref() == Some("x@y.test")
                })
                .collect();
            if order == Order::NewestFirst {
                want.reverse();
            }
            assert_eq!(
                ids(&got),
                want.iter().map(|r| r.id).collect::<Vec<_>>(),
                "{order:?}, pages of {limit}"
            );
        }
    }
}

/// The records of one bulk operation are found by its id, and only they: not
/// another operation's, not a record outside the id's time window that names it.
pub fn operations<H: Harness>(h: &H) {
    let mut store = h.fresh();
    let at = |ms: i64| Timestamp::from_nanos(T0 + ms * 1_000_000);
    let op = id_at(at(10));
    let other = id_at(at(10));
    let mut records: Vec<Record> = (0..12).map(|i| record(i, at(i as i64 * 2))).collect();
    for (i, r) in records.iter_mut().enumerate() {
        let id = match i {
            5..=7 => op,
            8 => other,
            _ => continue,
        };
        r.operation = Some(audit::record::Operation {
            id,
            count: Some(3),
            index: (i != 8).then_some(i as u32 - 5),
        });
    }
    // A forged record naming the operation a day before its id's time.
    let mut early = record(12, Timestamp::from_nanos(T0 - 86_400_000_000_000));
    early.operation = records[5].operation;
    records.push(early);
    write(&mut store, &mut Chain::new(), records.clone());
    let found = collect(
        &mut store,
        &Query::all()
            .operation(op)
            .order(Order::OldestFirst)
            .limit(2),
    );
    assert_eq!(ids(&found), ids(&records[5..8]));
    assert_eq!(found[2].operation.unwrap().index, Some(2));
    assert_eq!(
        ids(&collect(&mut store, &Query::all().operation(other))),
        ids(&records[8..9])
    );
    let tenant = records[6].context.tenant.clone().unwrap();
    let scoped = collect(&mut store, &Query::for_tenant(&tenant).operation(op));
    assert!(
        scoped
            .iter()
            .all(|r| r.context.tenant.as_deref() == Some(&tenant))
    );
    assert!(!scoped.is_empty() && scoped.len() < 3);
    assert!(store.verify().unwrap().is_intact());
}
