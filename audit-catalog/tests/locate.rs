//! The search order: AUDIT_CATALOG, [package.metadata.audit] catalog, audit.toml upward.

use std::fs;
use std::path::Path;

use audit_catalog::locate;

fn write(p: &Path, text: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn workspace() -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    write(
        &ws.path().join("Cargo.toml"),
        "[workspace]\nmembers = ['app']\n",
    );
    write(
        &ws.path().join("app/Cargo.toml"),
        "[package]\nname = 'app'\n",
    );
    ws
}

#[test]
fn crate_directory_then_upward_to_the_workspace_root() {
    let ws = workspace();
    let app = ws.path().join("app");
    write(&ws.path().join("audit.toml"), "");
    assert_eq!(locate(&app, None).unwrap(), ws.path().join("audit.toml"));
    write(&app.join("audit.toml"), "");
    assert_eq!(locate(&app, None).unwrap(), app.join("audit.toml"));
}

#[test]
fn search_stops_at_the_workspace_root_and_lists_what_it_tried() {
    let outer = tempfile::tempdir().unwrap();
    write(&outer.path().join("audit.toml"), "");
    let ws = outer.path().join("ws");
    write(&ws.join("Cargo.toml"), "[workspace]\n");
    write(&ws.join("app/Cargo.toml"), "[package]\nname = 'app'\n");
    let err = locate(&ws.join("app"), None).unwrap_err();
    assert_eq!(
        err.tried,
        vec![ws.join("app/audit.toml"), ws.join("audit.toml")]
    );
    // Shown from the package directory, so the message does not depend on where
    // the package lives.
    let text = err.to_string();
    assert!(
        text.starts_with("no audit catalog found; tried, from the package directory:\n  audit.toml\n  ../audit.toml\n"),
        "{text}"
    );
}

#[test]
fn package_metadata_beats_the_search() {
    let ws = workspace();
    let app = ws.path().join("app");
    write(&app.join("audit.toml"), "");
    write(
        &app.join("Cargo.toml"),
        "[package]\nname = 'app'\n[package.metadata.audit]\ncatalog = 'events/catalog.toml'\n",
    );
    write(&app.join("events/catalog.toml"), "");
    assert_eq!(locate(&app, None).unwrap(), app.join("events/catalog.toml"));
    fs::remove_file(app.join("events/catalog.toml")).unwrap();
    let err = locate(&app, None).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn environment_beats_everything_and_is_relative_to_the_crate() {
    let ws = workspace();
    let app = ws.path().join("app");
    write(&app.join("audit.toml"), "");
    write(
        &app.join("Cargo.toml"),
        "[package]\nname = 'app'\n[package.metadata.audit]\ncatalog = 'audit.toml'\n",
    );
    write(&ws.path().join("other.toml"), "");
    assert_eq!(
        locate(&app, Some("../other.toml".as_ref())).unwrap(),
        app.join("../other.toml")
    );
    let abs = ws.path().join("other.toml");
    assert_eq!(locate(&app, Some(abs.as_os_str())).unwrap(), abs);
    let err = locate(&app, Some("missing.toml".as_ref())).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("AUDIT_CATALOG is set to `missing.toml`"),
        "{err}"
    );
}

#[test]
fn malformed_manifest_is_reported() {
    let ws = workspace();
    write(&ws.path().join("app/Cargo.toml"), "[package\n");
    let err = locate(&ws.path().join("app"), None).unwrap_err();
    assert!(err.to_string().starts_with("cannot read"), "{err}");
}
