//! The registry: every site of every linked crate, and the declared events no code emits.

// The support crate is referenced below; without a reference it would not be linked
// and its sites would be missing (inventory's caveat).
use audit_support_crate as _;

#[audit::audited(event = "user_invite", meta(user_email = email, account_name = "Acme"))]
fn invite(email: &str) {}

#[test]
fn sites_of_both_crates_are_registered() {
    invite("x@example.com");
    let sites = audit::registry::sites();
    let invite_site = sites
        .iter()
        .find(|s| s.function == "invite")
        .expect("this crate's site");
    assert_eq!(invite_site.spec.name, "user_invite");
    assert_eq!(invite_site.spec.code, 8);
    assert!(invite_site.file.ends_with("registry.rs"));
    assert_eq!(invite_site.line, 7);
    assert!(invite_site.module.ends_with("registry"));
    let support: Vec<_> = sites
        .iter()
        .filter(|s| s.spec.catalog.name == "support")
        .map(|s| s.function)
        .collect();
    assert_eq!(
        support,
        vec![
            "close",
            "sign_in",
            "sign_in_at",
            "sign_in_quoting",
            "sign_in_panicking",
            "update_account"
        ]
    );
}

#[test]
fn coverage_lists_the_events_not_currently_logged() {
    let coverage = audit::registry::coverage();
    let support = coverage
        .catalogs
        .iter()
        .find(|c| c.catalog == "support")
        .unwrap();
    assert_eq!(support.declared, 4);
    let missing: Vec<_> = support.missing.iter().map(|m| m.event.as_str()).collect();
    assert_eq!(missing, vec!["account_export"]);

    let mnoe = coverage
        .catalogs
        .iter()
        .find(|c| c.catalog == "mnoe")
        .unwrap();
    assert_eq!(mnoe.declared, 19);
    assert!(mnoe.emitted.contains_key("user_invite"));
    let missing: Vec<_> = mnoe.missing.iter().map(|m| m.event.as_str()).collect();
    assert!(missing.contains(&"register_developer"), "{missing:?}");
    assert!(!missing.contains(&"user_invite"));
    let report = coverage.to_string();
    assert!(
        report.contains("events not currently logged:\n"),
        "{report}"
    );
    assert!(
        report.contains("  account_export (code 3, category account)"),
        "{report}"
    );
}

#[test]
fn assert_complete_names_each_missing_event() {
    let err = std::panic::catch_unwind(audit::registry::assert_complete).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(
        msg.starts_with("some declared audit events are emitted nowhere:"),
        "{msg}"
    );
    assert!(msg.contains("account_export (code 3"), "{msg}");
    assert!(msg.contains("register_developer (code 15"), "{msg}");
}
