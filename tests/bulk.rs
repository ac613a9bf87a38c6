//! Bulk calls (`#[audited(each = ...)]`): one record per entity, each with its own
//! difference, all sharing an operation id, after a summary record when the catalog
//! asks for one; every way the call can end; revert records pointing to the record
//! they revert; and both read back from a real store by operation.

use std::sync::Arc;

use audit::integrity::Chain;
use audit::sinks::{Item, Sink};
use audit::store::{Query, Sqlite, Store};
use audit::{AuditEntity, Record, audited};
use serde_json::json;

#[derive(Debug)]
struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, AuditEntity)]
#[audit(entity = "user")]
struct User {
    #[audit(id)]
    id: i64,
    email: String,
    active: bool,
    #[audit(redact)]
    password_hash: String,
}

fn user(id: i64, active: bool) -> User {
    User {
        id,
        email: format!("u{id}@acme.example"),
        active,
        password_hash: format!("h{id}"),
    }
}

#[audited(event = "users_deactivate", each = users, meta(reason = reason))]
fn deactivate(users: &mut [User], reason: &str) {
    for u in users.iter_mut() {
        u.active = false;
    }
}

#[audited(event = "users_deactivate", each = users, emit_unchanged = false, meta(reason = reason))]
fn deactivate_changed_only(users: &mut [User], reason: &str) {
    for u in users.iter_mut() {
        u.active = false;
    }
}

/// Reorders, drops one user and adds another: paired by id, not by position.
#[audited(event = "users_deactivate", each = users, meta(reason = "reshuffle"))]
fn reshuffle(users: &mut Vec<User>) {
    users.reverse();
    users.retain(|u| u.id != 2);
    users.push(user(9, true));
    users[0].email = "moved@acme.example".into();
}

#[audited(event = "users_deactivate", each = users, meta(reason = reason))]
fn deactivate_or_fail(users: &mut [User], reason: &str) -> Result<(), Error> {
    users[0].active = false;
    Err(Error(format!("directory refused {reason}")))
}

#[audited(event = "users_deactivate", each = users, meta(reason = "boom"))]
fn deactivate_and_panic(users: &mut [User]) {
    users[0].active = false;
    panic!("directory crashed");
}

#[audited(event = "users_deactivate", each = users, meta(reason = "slow"))]
async fn deactivate_slowly(users: &mut Vec<User>) {
    std::future::pending::<()>().await;
    users.clear();
}

#[audited(event = "users_deactivate", each = ret, meta(reason = "import"))]
fn import(n: i64) -> Result<Vec<User>, Error> {
    Ok((1..=n).map(|i| user(100 + i, true)).collect())
}

#[audited(event = "users_deactivate", each = users, op = "delete", meta(reason = "purge"))]
fn purge(users: Vec<User>) {
    drop(users);
}

#[audited(event = "user_revert", entity = user, reverts = reverted, meta(user_email = &user.email))]
fn revert(user: &mut User, reverted: &Record) -> Result<(), Error> {
    let inverse = reverted
        .changes
        .as_ref()
        .ok_or_else(|| Error("no change to revert".into()))?
        .inverse()
        .map_err(|e| Error(e.to_string()))?;
    if let Some(pair) = inverse.get("active") {
        user.active = pair[1].as_bool().unwrap_or(user.active);
    }
    Ok(())
}

#[audited(event = "user_revert", entity = user, reverts = id, meta(user_email = &user.email))]
fn revert_by_id(user: &mut User, id: audit::Uuid) {
    user.active = true;
}

/// The operation of each record: (index, count), all with one id.
fn operation(records: &[Record]) -> Vec<(Option<u32>, Option<u32>)> {
    let id = records[0].operation.expect("an operation").id;
    records
        .iter()
        .map(|r| {
            let op = r.operation.expect("an operation");
            assert_eq!(op.id, id, "one operation id for the whole call");
            (op.index, op.count)
        })
        .collect()
}

#[test]
fn one_record_per_entity_then_a_summary() {
    let mut users = vec![user(1, true), user(2, false), user(3, true)];
    let records = audit::testing::capture(|| deactivate(&mut users, "offboarding"));
    assert_eq!(records.len(), 4, "{records:#?}");
    assert_eq!(
        operation(&records),
        [
            (Some(0), None),
            (Some(1), None),
            (Some(2), None),
            (None, Some(3))
        ]
    );
    let summary = &records[3];
    assert_eq!(
        summary.entity.as_ref().unwrap().id,
        None,
        "no entity of its own"
    );
    assert_eq!(summary.changes, None);
    assert_eq!(summary.description, "Users deactivated: offboarding");
    for (r, id) in records[..3].iter().zip([1, 2, 3]) {
        assert_eq!(r.event, "users_deactivate");
        assert_eq!(r.entity.as_ref().unwrap().id, Some(json!(id)));
        assert_eq!(r.meta("reason"), Some(&json!("offboarding")));
        let previous = &r.changes.as_ref().unwrap().previous;
        assert_eq!(previous["password_hash"], "[REDACTED]");
    }
    let diff = |i: usize| records[i].changes.as_ref().unwrap().difference.clone();
    assert_eq!(diff(0)["active"], json!([true, false]));
    assert!(diff(1).is_empty(), "user 2 was already inactive");
    assert_eq!(diff(2)["active"], json!([true, false]));
    // Each record is its own: distinct ids, all made after the operation id's time.
    let ids: std::collections::HashSet<_> = records.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 4);
    let (s, ns) = records[3]
        .operation
        .unwrap()
        .id
        .get_timestamp()
        .unwrap()
        .to_unix();
    let op_ms = s as i64 * 1000 + i64::from(ns / 1_000_000);
    assert!(
        records
            .iter()
            .all(|r| r.time.as_nanos() / 1_000_000 >= op_ms)
    );
}

#[test]
fn unchanged_entities_can_be_left_out() {
    let mut users = vec![user(1, true), user(2, false), user(3, true)];
    let records = audit::testing::capture(|| deactivate_changed_only(&mut users, "x"));
    assert_eq!(
        operation(&records),
        [(Some(0), None), (Some(1), None), (None, Some(2))]
    );
    let ids: Vec<_> = records[..2]
        .iter()
        .map(|r| r.entity.as_ref().unwrap().id.clone().unwrap())
        .collect();
    assert_eq!(ids, [json!(1), json!(3)]);
}

#[test]
fn entities_are_paired_by_id_not_position() {
    let mut users = vec![user(1, true), user(2, true), user(3, true)];
    let records = audit::testing::capture(|| reshuffle(&mut users));
    // After: 3 (email changed), 1 (unchanged), 9 (new); then 2, gone.
    let parts: Vec<_> = records[..4]
        .iter()
        .map(|r| {
            let c = r.changes.as_ref().unwrap();
            let id = r.entity.as_ref().unwrap().id.clone().unwrap();
            (id, c.previous.is_null(), c.current.is_null())
        })
        .collect();
    assert_eq!(
        parts,
        [
            (json!(3), false, false),
            (json!(1), false, false),
            (json!(9), true, false),
            (json!(2), false, true),
        ]
    );
    let email = &records[0].changes.as_ref().unwrap().difference["email"];
    assert_eq!(email, &json!(["u3@acme.example", "moved@acme.example"]));
    assert!(records[1].changes.as_ref().unwrap().difference.is_empty());
    assert_eq!(records[4].operation.unwrap().count, Some(4));
}

#[test]
fn a_failed_call_records_each_entity_as_a_failure() {
    let mut users = vec![user(1, true), user(2, true)];
    let records = audit::testing::capture(|| {
        let _ = deactivate_or_fail(&mut users, "hr");
    });
    assert_eq!(records.len(), 3);
    for r in &records {
        assert_eq!(r.outcome, audit::OutcomeKind::Failure);
        assert_eq!(r.error.as_deref(), Some("directory refused hr"));
    }
    // What the body did before failing is in the trail.
    let difference = &records[0].changes.as_ref().unwrap().difference;
    assert_eq!(difference["active"], json!([true, false]));
}

#[test]
fn a_panicking_call_records_one_failure_naming_its_operation() {
    let mut users = vec![user(1, true), user(2, true)];
    let records = audit::testing::capture(|| {
        let call = std::panic::AssertUnwindSafe(|| deactivate_and_panic(&mut users));
        assert!(std::panic::catch_unwind(call).is_err());
    });
    assert_eq!(records.len(), 1, "{records:#?}");
    let r = &records[0];
    assert_eq!(r.error.as_deref(), Some("panicked: directory crashed"));
    let op = r.operation.unwrap();
    assert_eq!(
        (op.index, op.count),
        (None, Some(2)),
        "the entities it was given"
    );
}

/// A field whose comparison panics when armed (a user's `PartialEq`).
#[derive(Debug, Clone, serde::Serialize)]
struct Bomb(bool);

impl PartialEq for Bomb {
    fn eq(&self, other: &Self) -> bool {
        assert!(!(self.0 || other.0), "comparison exploded");
        true
    }
}

#[derive(Clone, AuditEntity)]
#[audit(entity = "user")]
struct Fragile {
    #[audit(id)]
    id: i64,
    bomb: Bomb,
}

#[audited(event = "users_deactivate", each = users, meta(reason = "fragile"))]
fn touch(users: &mut [Fragile]) {}

#[test]
fn a_panic_while_diffing_the_entities_is_recorded_too() {
    let mut users = vec![
        Fragile {
            id: 1,
            bomb: Bomb(false),
        },
        Fragile {
            id: 2,
            bomb: Bomb(true),
        },
        Fragile {
            id: 3,
            bomb: Bomb(false),
        },
    ];
    let records = audit::testing::capture(|| {
        let call = std::panic::AssertUnwindSafe(|| touch(&mut users));
        assert!(std::panic::catch_unwind(call).is_err());
    });
    // The first entity's record, then the failure: one operation.
    assert_eq!(operation(&records), [(Some(0), None), (None, Some(1))]);
    assert_eq!(records[1].outcome, audit::OutcomeKind::Failure);
    assert!(
        records[1]
            .error
            .as_deref()
            .unwrap()
            .starts_with("panicked while")
    );
}

#[tokio::test]
async fn a_cancelled_call_records_one_failure_naming_its_operation() {
    let mut users = vec![user(1, true), user(2, true), user(3, true)];
    let (_, records) = audit::testing::capture_async(async {
        let slow = deactivate_slowly(&mut users);
        let r = tokio::time::timeout(std::time::Duration::from_millis(20), slow).await;
        assert!(r.is_err());
    })
    .await;
    assert_eq!(records.len(), 1);
    assert!(
        records[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("cancelled")
    );
    assert_eq!(records[0].operation.unwrap().count, Some(3));
}

#[test]
fn creations_from_the_return_value_and_deletions_at_entry() {
    let records = audit::testing::capture(|| {
        import(2).unwrap();
    });
    assert_eq!(
        operation(&records),
        [(Some(0), None), (Some(1), None), (None, Some(2))]
    );
    assert!(records[0].changes.as_ref().unwrap().previous.is_null());
    assert_eq!(records[1].changes.as_ref().unwrap().current["id"], 102);

    let records = audit::testing::capture(|| purge(vec![user(5, true), user(6, false)]));
    assert_eq!(records.len(), 3);
    assert!(records[0].changes.as_ref().unwrap().current.is_null());
    assert_eq!(records[1].changes.as_ref().unwrap().previous["id"], 6);

    // An empty call: the summary alone (the catalog asks for one).
    let records = audit::testing::capture(|| purge(Vec::new()));
    assert_eq!(operation(&records), [(None, Some(0))]);
}

#[test]
fn a_revert_points_to_the_record_it_reverts() {
    let mut users = vec![user(1, true)];
    let records = audit::testing::capture(|| deactivate(&mut users, "mistake"));
    let change = records[0].clone();
    let mut ann = users.remove(0);
    let reverted = audit::testing::capture(|| revert(&mut ann, &change).unwrap());
    assert!(ann.active);
    assert_eq!(reverted.len(), 1);
    let r = &reverted[0];
    assert_eq!(r.reverts, Some(change.id));
    assert_eq!(r.event, "user_revert");
    let difference = &r.changes.as_ref().unwrap().difference;
    assert_eq!(difference["active"], json!([false, true]));
    // The revert is a new record of its own, never an edit of the old one.
    assert_ne!(r.id, change.id);
    let by_id = audit::testing::capture(|| revert_by_id(&mut ann, change.id));
    assert_eq!(by_id[0].reverts, Some(change.id));
    // Its JSON carries the pointer; a record without one has no such key.
    let json = r.to_json();
    assert!(
        json.contains(&format!("\"reverts\":\"{}\"", change.id)),
        "{json}"
    );
    assert!(!change.to_json().contains("\"reverts\""));
    let back: Record = serde_json::from_str(&json).unwrap();
    assert_eq!(back.reverts, Some(change.id));
}

impl From<audit::DeliveryError> for Error {
    fn from(e: audit::DeliveryError) -> Self {
        Error(format!("audit: {e}"))
    }
}

#[audited(event = "users_deactivate", each = users, durability = "sync", meta(reason = "sync"))]
fn deactivate_committed(users: &mut [User]) -> Result<(), Error> {
    users.iter_mut().for_each(|u| u.active = false);
    Ok(())
}

#[audited(event = "user_update", entity = user, durability = "sync", meta(user_email = &user.email))]
fn deactivate_one_committed(user: &mut User) -> Result<(), Error> {
    user.active = false;
    Ok(())
}

/// A `sync` bulk call returns once every one of its records is committed in the
/// primary store — all queued first, so that they share commits — and fails when
/// they cannot be.
#[test]
fn a_sync_bulk_call_returns_once_its_records_are_committed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let auditor = audit::Auditor::builder()
        .spool_dir(dir.path().join("spool"))
        .max_wait(std::time::Duration::from_secs(3600))
        .sync_timeout(std::time::Duration::from_secs(30))
        .sink_with(
            Sqlite::open(&db).unwrap(),
            audit::sinks::SinkOptions::new().primary(),
        )
        .build()
        .unwrap();
    let mut users: Vec<User> = (0..300).map(|i| user(i, true)).collect();
    let mut singles: Vec<User> = (1000..1300).map(|i| user(i, true)).collect();
    let d: Arc<dyn audit::dispatch::Dispatch> = Arc::new(auditor.clone());
    let (bulk, one_by_one) = audit::dispatch::with_dispatch(d, || {
        let t = std::time::Instant::now();
        deactivate_committed(&mut users).unwrap();
        let bulk = t.elapsed();
        // Committed on return: another connection sees every record now.
        assert_eq!(Sqlite::open(&db).unwrap().count().unwrap(), 301);
        let t = std::time::Instant::now();
        for u in &mut singles {
            deactivate_one_committed(u).unwrap();
        }
        (bulk, t.elapsed())
    });
    // For the record (not asserted: timings are the benches' business).
    eprintln!("sync, 300 entities: one bulk call {bulk:?}, 300 single calls {one_by_one:?}");
    assert!(auditor.shutdown().is_clean());
    let mut store = Sqlite::open(&db).unwrap();
    assert_eq!(store.count().unwrap(), 601);
    assert!(store.verify().unwrap().is_intact());
}

/// A primary store that is down.
struct Down;

impl audit::sinks::Sink for Down {
    fn name(&self) -> &str {
        "down"
    }
    fn write(&mut self, _: &audit::sinks::Batch) -> Result<(), audit::sinks::SinkError> {
        Err(audit::sinks::SinkError::retryable("the store is down"))
    }
}

/// A `sync` bulk call whose records cannot be committed fails: the error names the
/// sink, and the records are kept (spooled) rather than lost.
#[test]
fn a_sync_bulk_call_fails_when_its_records_cannot_be_committed() {
    let dir = tempfile::tempdir().unwrap();
    let auditor = audit::Auditor::builder()
        .spool_dir(dir.path().join("spool"))
        .sync_timeout(std::time::Duration::from_millis(500))
        .sink_with(Down, audit::sinks::SinkOptions::new().primary())
        .build()
        .unwrap();
    let mut users: Vec<User> = (0..5).map(|i| user(i, true)).collect();
    let d: Arc<dyn audit::dispatch::Dispatch> = Arc::new(auditor.clone());
    let err = audit::dispatch::with_dispatch(d, || deactivate_committed(&mut users)).unwrap_err();
    assert!(err.0.contains("`down`"), "{}", err.0);
    let report = auditor.shutdown();
    assert!(
        !report.is_clean(),
        "the records wait in the spool: {report}"
    );
}

/// Links `records` into a fresh chain and writes them to `store`.
fn write(store: &mut Sqlite, records: &[Record]) {
    let mut chain = Chain::new();
    let items: Vec<Item> = records
        .iter()
        .cloned()
        .map(|mut r| {
            let json = chain.link(&mut r);
            Item::with_json(r, json, Arc::from("x"))
        })
        .collect();
    store.write(&items).unwrap();
}

#[test]
fn a_store_returns_the_records_of_one_operation() {
    let mut a = vec![user(1, true), user(2, true)];
    let mut b = vec![user(3, true)];
    let mut records = audit::testing::capture(|| deactivate(&mut a, "a"));
    records.extend(audit::testing::capture(|| deactivate(&mut b, "b")));
    let reverted = records[0].clone();
    records.extend(audit::testing::capture(|| {
        revert_by_id(&mut a[0], reverted.id)
    }));
    let dir = tempfile::tempdir().unwrap();
    let mut store = Sqlite::open(dir.path().join("audit.db")).unwrap();
    write(&mut store, &records);
    let op = records[0].operation.unwrap().id;
    let page = store
        .query(
            &Query::all()
                .operation(op)
                .order(audit::store::Order::OldestFirst),
        )
        .unwrap();
    let got: Vec<_> = page.records.iter().map(|r| r.id).collect();
    assert_eq!(got, records[..3].iter().map(|r| r.id).collect::<Vec<_>>());
    // Read back whole: the operation and the revert pointer survive the store.
    assert_eq!(page.records[1].operation, records[1].operation);
    let all = store.query(&Query::all().events(["user_revert"])).unwrap();
    assert_eq!(all.records[0].reverts, Some(reverted.id));
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
}
