//! The lock file keeps every code meaning the same thing forever.

use audit_catalog::{Catalog, ErrorKind, Lock, lock_path};

const BASE: &str = "[catalog]\nname = 't'\n[entities]\napp = 1\n[events.app_add]\ncode = 1\n[events.app_launch]\ncode = 2\n";

fn locked() -> Lock {
    Lock::default().updated(&Catalog::parse("audit.toml", BASE).unwrap())
}

fn kinds(lock: &Lock, text: &str) -> Vec<(ErrorKind, String)> {
    let cat = Catalog::parse("audit.toml", text).unwrap();
    lock.check(&cat)
        .iter()
        .map(|d| (d.kind(), d.to_string()))
        .collect()
}

#[test]
fn lock_file_round_trips() {
    let lock = locked();
    let text = lock.to_toml();
    assert!(
        text.contains("[events]\napp_add = 1\napp_launch = 2\n"),
        "{text}"
    );
    let back = Lock::parse("audit.lock", &text).unwrap();
    assert_eq!(back.events["app_launch"].code, 2);
    assert_eq!(back.entities["app"].code, 1);
    assert!(
        back.check(&Catalog::parse("audit.toml", BASE).unwrap())
            .is_empty()
    );
}

#[test]
fn changed_code_is_an_error() {
    let text = BASE.replace("code = 2", "code = 3");
    assert_eq!(
        kinds(&locked(), &text),
        vec![(
            ErrorKind::LockCodeChanged,
            "audit.toml:8:8: the code of event `app_launch` changed from 2 to 3".into()
        )]
    );
}

#[test]
fn reused_code_is_an_error() {
    let text = BASE.replace(
        "[events.app_launch]\ncode = 2\n",
        "[events.app_launch]\ncode = 2\nretired = true\n[events.app_open]\ncode = 3\n",
    );
    let lock = Lock::default().updated(&Catalog::parse("audit.toml", &text).unwrap());
    // `app_open` is deleted and its code given to a new event.
    let reuse = BASE.replace("[events.app_launch]\ncode = 2\n", "[events.app_launch]\ncode = 2\nretired = true\n[events.app_open]\ncode = 3\nretired = true\n[events.app_close]\ncode = 3\n");
    let cat = Catalog::parse("audit.toml", &reuse);
    // Duplicate codes inside one catalog are caught by the catalog itself...
    assert!(cat.is_err());
    // ...and a code freed by deleting its event is caught by the lock.
    let reuse = BASE.replace(
        "[events.app_launch]\ncode = 2\n",
        "[events.app_launch]\ncode = 2\nretired = true\n[events.app_close]\ncode = 3\n",
    );
    let errs = kinds(&lock, &reuse);
    assert_eq!(errs[0].0, ErrorKind::LockCodeReused);
    assert_eq!(
        errs[0].1,
        "audit.toml:11:8: event `app_close` reuses code 3, which the lock file gives to `app_open`"
    );
    assert_eq!(errs[1].0, ErrorKind::LockEventVanished);
}

#[test]
fn vanished_event_must_be_retired() {
    let lock = Lock::parse("audit.lock", &locked().to_toml()).unwrap();
    let gone = "[catalog]\nname = 't'\n[entities]\napp = 1\n[events.app_add]\ncode = 1\n";
    let errs = kinds(&lock, gone);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].0, ErrorKind::LockEventVanished);
    assert_eq!(
        errs[0].1,
        "audit.lock:8:1: event `app_launch` (code 2) is in the lock file but gone from the catalog"
    );
    let retired = format!("{gone}[events.app_launch]\ncode = 2\nretired = true\n");
    assert!(kinds(&lock, &retired).is_empty());
}

#[test]
fn vanished_or_renumbered_entity_is_an_error() {
    let lock = locked();
    let errs = kinds(&lock, &BASE.replace("app = 1", "app = 2"));
    assert_eq!(errs[0].0, ErrorKind::LockCodeChanged);
    let errs = kinds(&lock, &BASE.replace("app = 1", "application = 1"));
    assert_eq!(
        errs.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![ErrorKind::LockCodeReused, ErrorKind::LockEntityVanished]
    );
}

#[test]
fn updating_never_forgets() {
    let lock = locked();
    let more = format!("{BASE}[events.app_close]\ncode = 9\n");
    let next = lock.updated(&Catalog::parse("audit.toml", &more).unwrap());
    assert_eq!(next.events.len(), 3);
    let fewer = "[catalog]\nname = 't'\n[entities]\napp = 1\n[events.app_add]\ncode = 1\n";
    let after = next.updated(&Catalog::parse("audit.toml", fewer).unwrap());
    assert_eq!(after.events.len(), 3, "a lock never drops a code");
}

#[test]
fn load_checks_the_lock_next_to_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("audit.toml");
    std::fs::write(&cat, BASE).unwrap();
    std::fs::write(lock_path(&cat), locked().to_toml()).unwrap();
    Catalog::load(&cat).unwrap();
    std::fs::write(&cat, BASE.replace("code = 2", "code = 7")).unwrap();
    let err = Catalog::load(&cat).unwrap_err();
    assert_eq!(err.diagnostics()[0].kind(), ErrorKind::LockCodeChanged);
    std::fs::write(lock_path(&cat), "[events]\napp_add = 'one'\n").unwrap();
    let err = Catalog::load(&cat).unwrap_err();
    assert_eq!(err.diagnostics()[0].kind(), ErrorKind::LockMalformed);
}

#[test]
fn shipped_catalogs_match_their_locks() {
    for name in ["mnoe", "dronahq"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../examples/catalogs/{name}.toml"));
        assert!(lock_path(&path).exists(), "{name}.lock is committed");
        Catalog::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
