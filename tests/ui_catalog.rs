//! Compile errors when the catalog itself is missing, invalid or not found. Each case
//! needs its own `AUDIT_CATALOG`, so they run one after the other in this single test.

#[test]
fn catalog_missing_invalid_or_not_found() {
    let root = env!("CARGO_MANIFEST_DIR");
    let cases = [
        (
            "missing",
            format!("audit-tests={root}/tests/ui-catalog/no-such-catalog.toml"),
        ),
        (
            "invalid",
            format!("audit-tests={root}/audit-catalog/tests/fixtures/five_mistakes.toml"),
        ),
        // An override for another package only: `audit-tests` falls back to the search
        // and reports every path it tried.
        ("not_found", "some-other-crate=/nowhere.toml".to_owned()),
    ];
    for (case, env) in cases {
        // SAFETY: the only test in this binary; no other thread reads the environment.
        unsafe { std::env::set_var("AUDIT_CATALOG", env) };
        let t = trybuild::TestCases::new();
        t.compile_fail(format!("tests/ui-catalog/{case}.rs"));
        drop(t); // runs the case now, with this environment
    }
}
