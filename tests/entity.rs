//! `#[derive(AuditEntity)]` and `#[audited(entity = ...)]`: previous, current and the
//! difference of only what changed.

use audit::testing::capture;
use audit::{AuditDiff, AuditEntity, audited};
use serde::Serialize;
use serde_json::json;

#[derive(Clone, PartialEq, Serialize, AuditEntity)]
struct Address {
    city: String,
    zip: String,
}

#[derive(Clone, PartialEq, Serialize, AuditEntity)]
struct Score(u32, f64);

#[derive(Clone, AuditEntity)]
#[audit(entity = "user")]
struct User {
    #[audit(id)]
    id: i64,
    email: String,
    #[audit(redact)]
    ssn: String,
    #[audit(skip)]
    #[allow(dead_code)]
    cache: Vec<u8>,
    #[audit(rename = "owner")]
    owner_id: Option<i64>,
    address: Address,
    tags: Vec<String>,
    score: Score,
}

fn ann() -> User {
    User {
        id: 7,
        email: "ann@example.com".into(),
        ssn: "123-45-6789".into(),
        cache: vec![1, 2, 3],
        owner_id: None,
        address: Address {
            city: "Lyon".into(),
            zip: "69001".into(),
        },
        tags: vec!["a".into()],
        score: Score(1, 0.5),
    }
}

#[test]
fn snapshot_and_diff_follow_the_attributes() {
    let before = ann();
    let mut after = ann();
    after.ssn = "987-65-4321".into();
    after.owner_id = Some(3);
    after.address.city = "Paris".into();
    after.tags.push("b".into());
    after.score.1 = 0.75;
    after.cache.clear(); // skipped: never compared
    let c = after.audit_changes_from(&before);
    assert_eq!(
        serde_json::Value::Object(c.difference),
        json!({
            "ssn": ["[REDACTED]", "[REDACTED]"],
            "owner": [null, 3],
            "address.city": ["Lyon", "Paris"],
            "tags": [["a"], ["a", "b"]],
            "score.1": [0.5, 0.75],
        })
    );
    assert_eq!(
        c.current,
        json!({
            "id": 7, "email": "ann@example.com", "ssn": "[REDACTED]", "owner": 3,
            "address": {"city": "Paris", "zip": "69001"}, "tags": ["a", "b"], "score": {"0": 1, "1": 0.75},
        })
    );
    assert_eq!(c.previous["address"]["city"], "Lyon");
    assert_eq!((User::ENTITY, User::TYPE_CODE), ("user", 4));
    assert_eq!(after.audit_id(), json!(7));
    assert!(ann().audit_changes_from(&ann()).difference.is_empty());
    assert_eq!(
        Address {
            city: "x".into(),
            zip: "y".into()
        }
        .audit_snapshot(),
        json!({"city": "x", "zip": "y"})
    );
}

#[derive(Debug)]
struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[audited(event = "user_update", entity = user, meta(user_email = &user.email))]
fn move_user(user: &mut User, city: &str) -> Result<(), Error> {
    if city.is_empty() {
        return Err(Error("city required".into()));
    }
    user.address.city = city.into();
    Ok(())
}

#[audited(event = "user_update", entity = user, meta(user_email = &user.email), emit_unchanged = false)]
fn touch(user: &mut User, city: &str) {
    user.address.city = city.into();
}

#[audited(event = "user_update", entity = ret, meta(user_email = &ret.email))]
fn create_user(email: &str) -> Result<User, Error> {
    Ok(User {
        email: email.into(),
        ..ann()
    })
}

#[audited(event = "user_update", entity = user, op = "delete", meta(user_email = &user.email))]
fn delete_user(user: User) -> Vec<String> {
    user.tags
}

impl User {
    #[audited(event = "user_update", entity = self, meta(user_email = &self.email))]
    fn retag(&mut self, tag: &str) {
        self.tags = vec![tag.into()];
    }
}

#[test]
fn audited_update_records_entity_and_changes() {
    let mut u = ann();
    let rs = capture(|| {
        move_user(&mut u, "Paris").unwrap();
        assert!(move_user(&mut u, "").is_err());
        u.retag("vip");
    });
    assert_eq!(rs.len(), 3);
    let r = &rs[0];
    let e = r.entity.as_ref().unwrap();
    assert_eq!(
        (&*e.kind, e.type_code, e.id.clone()),
        ("user", 4, Some(json!(7)))
    );
    let c = r.changes.as_ref().unwrap();
    assert_eq!(
        serde_json::Value::Object(c.difference.clone()),
        json!({"address.city": ["Lyon", "Paris"]})
    );
    assert_eq!(c.previous["address"]["city"], "Lyon");
    assert_eq!(c.current["address"]["city"], "Paris");
    assert_eq!(r.description, "ann@example.com updated");
    // A failed update that changed nothing records an empty difference.
    assert!(rs[1].changes.as_ref().unwrap().difference.is_empty());
    assert_eq!(rs[1].error.as_deref(), Some("city required"));
    assert_eq!(
        rs[2].changes.as_ref().unwrap().difference["tags"],
        json!([["a"], ["vip"]])
    );
    let text = serde_json::to_string(&rs).unwrap();
    assert!(
        !text.contains("123-45-6789"),
        "redacted values never leave the process"
    );
}

#[test]
fn unchanged_updates_can_be_silent() {
    let mut u = ann();
    let rs = capture(|| {
        touch(&mut u, "Lyon"); // no change: not emitted
        touch(&mut u, "Nice");
    });
    assert_eq!(rs.len(), 1);
    assert_eq!(
        rs[0].changes.as_ref().unwrap().difference["address.city"],
        json!(["Lyon", "Nice"])
    );
}

#[test]
fn create_and_delete() {
    let rs = capture(|| {
        let u = create_user("bob@example.com").unwrap();
        assert_eq!(delete_user(u), vec!["a".to_string()]);
    });
    let created = rs[0].changes.as_ref().unwrap();
    assert_eq!(created.previous, serde_json::Value::Null);
    assert_eq!(created.current["email"], "bob@example.com");
    assert_eq!(
        created.difference["email"],
        json!([null, "bob@example.com"])
    );
    let deleted = rs[1].changes.as_ref().unwrap();
    assert_eq!(deleted.current, serde_json::Value::Null);
    assert_eq!(deleted.previous["email"], "bob@example.com");
    assert_eq!(rs[1].entity.as_ref().unwrap().id, Some(json!(7)));
}

#[derive(Clone, AuditEntity)]
struct Pair<T> {
    left: T,
    right: T,
}

#[test]
fn generics() {
    let a = Pair {
        left: 1u8,
        right: 2u8,
    };
    let b = Pair {
        left: 1u8,
        right: 5u8,
    };
    let mut d = serde_json::Map::new();
    a.audit_diff(&b, "", &mut d);
    assert_eq!(serde_json::Value::Object(d), json!({"right": [2, 5]}));
}

mod case_insensitive {
    //! A user's own comparison and serialization for one field (`with = path`).
    pub fn audit_eq(a: &str, b: &str) -> bool {
        a.eq_ignore_ascii_case(b)
    }
    pub fn audit_json(v: &str) -> serde_json::Value {
        v.to_lowercase().into()
    }
}

#[derive(Clone, AuditEntity)]
struct Account {
    #[audit(diff = "elements")]
    tags: Vec<String>,
    #[audit(diff = "elements")]
    limits: std::collections::BTreeMap<String, u32>,
    #[audit(diff = "elements", redact)]
    keys: std::collections::HashMap<String, String>,
    #[audit(with = case_insensitive)]
    handle: String,
}

#[test]
fn elements_and_custom_comparison() {
    let before = Account {
        tags: vec!["a".into(), "b".into(), "c".into()],
        limits: [("daily".to_string(), 10), ("monthly".to_string(), 100)].into(),
        keys: [("primary".to_string(), "s3cr3t".to_string())].into(),
        handle: "Ann".into(),
    };
    let mut after = before.clone();
    after.tags = vec!["a".into(), "x".into()];
    after.limits.insert("daily".into(), 20);
    after.limits.remove("monthly");
    after.keys.insert("backup".into(), "t0p".into());
    after.handle = "ANN".into(); // equal for this field's own comparison
    let mut d = serde_json::Map::new();
    before.audit_diff(&after, "", &mut d);
    assert_eq!(
        serde_json::Value::Object(d),
        json!({
            "tags.1": ["b", "x"],
            "tags.2": ["c", null],
            "limits.daily": [10, 20],
            "limits.monthly": [100, null],
            "keys.backup": ["[REDACTED]", "[REDACTED]"],
        })
    );
    assert_eq!(after.audit_snapshot()["handle"], "ann");
    assert_eq!(after.audit_snapshot()["keys"], "[REDACTED]");
    let mut d = serde_json::Map::new();
    after.handle = "Bob".into();
    before.audit_diff(&after, "", &mut d);
    assert_eq!(d["handle"], json!(["ann", "bob"]));
}

#[derive(Clone, PartialEq, Serialize, AuditEntity)]
enum Status {
    Draft,
    Active {
        since: u32,
        #[audit(redact)]
        approver: String,
    },
    Closed(String),
}

#[derive(Clone, AuditEntity)]
#[audit(entity = "app")]
struct Deal {
    #[audit(id)]
    id: u32,
    status: Status,
}

#[test]
fn enums_diff_fields_within_a_variant_and_whole_across_variants() {
    let d = |status| Deal { id: 1, status };
    let active = |since, approver: &str| Status::Active {
        since,
        approver: approver.into(),
    };
    let changes = d(active(2, "bob")).audit_changes_from(&d(active(1, "ann")));
    assert_eq!(
        serde_json::Value::Object(changes.difference),
        json!({"status.since": [1, 2], "status.approver": ["[REDACTED]", "[REDACTED]"]})
    );
    assert_eq!(
        changes.current["status"],
        json!({"Active": {"since": 2, "approver": "[REDACTED]"}})
    );
    let changes = d(Status::Closed("won".into())).audit_changes_from(&d(Status::Draft));
    assert_eq!(
        serde_json::Value::Object(changes.difference),
        json!({"status": ["Draft", {"Closed": {"0": "won"}}]})
    );
    let mut top = serde_json::Map::new();
    Status::Draft.audit_diff(&Status::Closed("lost".into()), "", &mut top);
    assert_eq!(top["$"], json!(["Draft", {"Closed": {"0": "lost"}}]));
}

#[audited(event = "user_update", entity = user, meta(user_email = &user.email))]
fn update_then_panic(user: &mut User) {
    user.address.city = "Paris".into();
    panic!("disk on fire");
}

/// A panicking update still names the entity it was about (the id is taken at
/// entry); no half-made changes are recorded.
#[test]
fn a_panicking_update_still_names_its_entity() {
    let records = capture(|| {
        let mut user = ann();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            update_then_panic(&mut user)
        }));
        assert!(caught.is_err());
    });
    let r = &records[0];
    assert_eq!(r.outcome, audit::OutcomeKind::Failure);
    assert_eq!(r.entity.as_ref().unwrap().id, Some(serde_json::json!(7)));
    assert!(r.changes.is_none(), "{:?}", r.changes);
}

/// A JSON column is diffed by JSON path: a `serde_json::Value` field on its own, any
/// other `Serialize` field with `diff = "json"`; a muted key inside stays muted.
#[test]
fn json_columns_are_diffed_by_path() {
    #[derive(Clone, PartialEq, Serialize)]
    struct Limits {
        seats: u32,
        regions: Vec<String>,
    }
    #[derive(Clone, AuditEntity)]
    #[audit(entity = "user")]
    struct Account {
        #[audit(id)]
        id: i64,
        settings: serde_json::Value,
        #[audit(diff = "json")]
        limits: Limits,
    }
    #[audited(event = "user_update", entity = account, meta(user_email = "a@x.test"))]
    fn update(account: &mut Account) {
        account.settings["theme"] = json!("light");
        account.settings["password"] = json!("hunter2-new");
        account.limits.regions[1] = "us".into();
    }
    let mut account = Account {
        id: 1,
        settings: json!({"theme": "dark", "password": "hunter2", "beta": {"on": false}}),
        limits: Limits {
            seats: 5,
            regions: vec!["eu".into(), "ap".into()],
        },
    };
    let records = audit::testing::capture(|| update(&mut account));
    let diff = &records[0].changes.as_ref().unwrap().difference;
    let mut keys: Vec<&str> = diff.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["limits.regions.1", "settings.password", "settings.theme"]
    );
    assert_eq!(diff["settings.theme"], json!(["dark", "light"]));
    assert_eq!(diff["limits.regions.1"], json!(["ap", "us"]));
    assert_eq!(
        diff["settings.password"],
        json!(["[REDACTED]", "[REDACTED]"])
    );
    assert!(
        !serde_json::to_string(&records[0])
            .unwrap()
            .contains("hunter2")
    );
}
