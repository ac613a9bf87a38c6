//! An entity's history from a real store: its records in order, its state rebuilt
//! at any time (partial where fields were redacted, unknown before its first
//! change, deleted after its deletion), the inverse of a change, and tenant scope.

use std::sync::Arc;

use audit::integrity::Chain;
use audit::sinks::{Item, Sink};
use audit::store::{History, Query, Sqlite, State};
use audit::{AuditEntity, Context, DeliveryError, Record, Timestamp, audited};
use serde_json::json;

#[derive(Debug)]
struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<DeliveryError> for Error {
    fn from(e: DeliveryError) -> Self {
        Error(e.to_string())
    }
}

#[derive(Clone, AuditEntity)]
#[audit(entity = "user")]
struct User {
    #[audit(id)]
    id: i64,
    name: String,
    email: String,
    #[audit(redact)]
    password_hash: String,
}

#[audited(event = "user_update", entity = ret, meta(user_email = &ret.email))]
fn create_user(id: i64, name: &str) -> Result<User, Error> {
    Ok(User {
        id,
        name: name.into(),
        email: format!("{name}@acme.example"),
        password_hash: "h0".into(),
    })
}

#[audited(event = "user_update", entity = user, meta(user_email = &user.email))]
fn rename(user: &mut User, name: &str) -> Result<(), Error> {
    if name.is_empty() {
        user.name = "half-done".into();
        return Err(Error("a name is required".into()));
    }
    user.name = name.into();
    Ok(())
}

#[audited(event = "user_update", entity = user, meta(user_email = &user.email))]
fn set_password(user: &mut User, hash: &str) {
    user.password_hash = hash.into();
}

#[audited(event = "user_update", entity = user, op = "delete", meta(user_email = &user.email))]
fn delete_user(user: User) {
    let _ = user;
}

/// Runs `f` as tenant `tenant`, a millisecond apart from what came before; its records.
fn as_tenant(tenant: &str, f: impl FnOnce()) -> Vec<Record> {
    std::thread::sleep(std::time::Duration::from_millis(2));
    audit::testing::capture(|| audit::scope(Context::new().tenant(tenant), f))
}

#[test]
fn an_entitys_history_state_as_of_and_inverse() {
    let mut records = Vec::new();
    let mut ann = None;
    records.extend(as_tenant("acme", || {
        ann = Some(create_user(42, "ann").unwrap())
    }));
    let mut ann = ann.unwrap();
    records.extend(as_tenant("acme", || rename(&mut ann, "Ann").unwrap()));
    records.extend(as_tenant("acme", || {
        let mut copy = ann.clone();
        assert!(rename(&mut copy, "").is_err()); // a failed attempt changes nothing
    }));
    records.extend(as_tenant("acme", || set_password(&mut ann, "h1")));
    records.extend(as_tenant("acme", || delete_user(ann.clone())));
    // Another tenant's user 42.
    records.extend(as_tenant("globex", || {
        create_user(42, "gus").unwrap();
    }));
    assert_eq!(records.len(), 6);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Sqlite::open(dir.path().join("audit.db")).unwrap();
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

    let history = History::read(&mut store, Query::for_tenant("acme"), "user", "42").unwrap();
    let ids: Vec<_> = history.records().iter().map(|r| r.id).collect();
    assert_eq!(ids, records[..5].iter().map(|r| r.id).collect::<Vec<_>>());
    let t = |i: usize| records[i].time;

    assert_eq!(
        history.as_of(Timestamp::from_nanos(t(0).as_nanos() - 1)),
        State::Unknown
    );
    let State::Existing {
        fields,
        redacted,
        record,
        ..
    } = history.as_of(t(0))
    else {
        panic!("created at t0")
    };
    assert_eq!(fields["name"], "ann");
    assert_eq!(
        redacted,
        ["password_hash"],
        "partial: the hash is not in the trail"
    );
    assert_eq!(record, records[0].id);
    // After the failed rename, the state is still the successful one before it.
    let State::Existing { fields, record, .. } = history.as_of(t(2)) else {
        panic!("renamed")
    };
    assert_eq!(
        (fields["name"].clone(), record),
        (json!("Ann"), records[1].id)
    );
    assert_eq!(
        history.as_of(Timestamp::now()),
        State::Deleted {
            record: records[4].id,
            at: t(4)
        }
    );

    // Reverting the rename: its inverse; a redacted change cannot be inverted.
    let rename = records[1].changes.as_ref().unwrap();
    assert_eq!(rename.inverse().unwrap()["name"], json!(["Ann", "ann"]));
    let password = records[3].changes.as_ref().unwrap();
    assert_eq!(password.inverse().unwrap_err().fields, ["password_hash"]);

    // globex's user 42 is another entity for globex, and no one's for acme.
    let theirs = History::read(&mut store, Query::for_tenant("globex"), "user", "42").unwrap();
    assert_eq!(theirs.records().len(), 1);
    assert_eq!(theirs.records()[0].id, records[5].id);
}
