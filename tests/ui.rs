//! Compile errors of `#[audited]`, pinned by their `.stderr` snapshots.
//! Refresh with `TRYBUILD=overwrite cargo test -p audit --test ui`.

#[test]
fn ui() {
    // trybuild compiles each case in a generated crate under target/tests/trybuild,
    // `audit-tests`, whose manifest directory is not this one: point that crate (and
    // only that crate) at the catalog.
    // SAFETY: the only test in this binary; no other thread reads the environment.
    unsafe {
        std::env::set_var(
            "AUDIT_CATALOG",
            concat!(
                "audit-tests=",
                env!("CARGO_MANIFEST_DIR"),
                "/examples/catalogs/mnoe.toml"
            ),
        );
    }
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui-pass/*.rs");
}
