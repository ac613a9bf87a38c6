//! `audit catalog docs` output for the MnoEnterprise catalog, against a checked-in file.
//! Regenerate with `UPDATE_EXPECT=1 cargo test -p audit-catalog --test docs`.

use std::path::Path;

#[test]
fn mnoe_docs_match_the_expected_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cat = audit_catalog::Catalog::load(&root.join("../examples/catalogs/mnoe.toml")).unwrap();
    let md = audit_catalog::render_markdown(&cat);
    let expected_path = root.join("tests/expected/mnoe.md");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&expected_path, &md).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap();
    assert_eq!(
        md, expected,
        "docs changed; rerun with UPDATE_EXPECT=1 if intended"
    );
    assert!(md.contains("## Names sent to `intercom`"));
    assert!(md.contains("| `app_launch` | `launched-app-{app_nid}` |"));
}
