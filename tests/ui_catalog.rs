//! Compile errors when the catalog itself is missing or invalid. Each case needs its
//! own `AUDIT_CATALOG`, so they run one after the other in this single test.

#[test]
fn catalog_missing_or_invalid() {
    let root = env!("CARGO_MANIFEST_DIR");
    for (case, catalog) in [
        (
            "missing",
            format!("{root}/tests/ui-catalog/no-such-catalog.toml"),
        ),
        (
            "invalid",
            format!("{root}/audit-catalog/tests/fixtures/five_mistakes.toml"),
        ),
    ] {
        // SAFETY: the only test in this binary; no other thread reads the environment.
        unsafe { std::env::set_var("AUDIT_CATALOG", format!("audit-tests={catalog}")) };
        let t = trybuild::TestCases::new();
        t.compile_fail(format!("tests/ui-catalog/{case}.rs"));
        drop(t); // runs the case now, with this environment
    }
}
