//! The `audit catalog` commands, run as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn audit(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_audit"))
        .args(args)
        .current_dir(cwd)
        .env_remove("AUDIT_CATALOG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn check_prints_every_mistake_with_its_position_and_exits_1() {
    let fixture = repo().join("audit-catalog/tests/fixtures/five_mistakes.toml");
    let out = audit(&["catalog", "check", fixture.to_str().unwrap()], &repo());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let first_lines: Vec<&str> = err.lines().take(5).collect();
    let f = fixture.display();
    assert_eq!(
        first_lines,
        vec![
            format!("{f}:10:10: event `app_add` names entity `ap`, which is not in [entities]"),
            format!("{f}:11:31: unknown field type `strng`"),
            format!("{f}:15:8: event `app_destroy` reuses code 1 of event `app_add`"),
            format!(
                "{f}:22:27: the description of `dashboard_create` uses `dashboard_name`, which is not a field of the event"
            ),
            format!("{f}:24:1: unknown key `levl` in [events.dashboard_create]"),
        ]
    );
    assert!(
        err.contains("24 | levl = \"info\"\n   | ^^^^\n   = help: did you mean `level`?"),
        "{err}"
    );
    assert!(err.ends_with(&format!("5 errors in {f}\n")), "{err}");
}

#[test]
fn check_succeeds_with_a_summary() {
    let out = audit(
        &["catalog", "check", "examples/catalogs/mnoe.toml"],
        &repo(),
    );
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "examples/catalogs/mnoe.toml: catalog `mnoe` is valid: 19 events (0 retired), 5 entities, 39 fields; checked against its lock file\n"
    );
}

#[test]
fn lock_then_check_catches_a_renumbered_event() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("audit.toml");
    std::fs::write(
        &cat,
        "[catalog]\nname = 'x'\n[events.a_b]\ncode = 1\n[events.c_d]\ncode = 2\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = 'x'\n").unwrap();
    let out = audit(&["catalog", "lock"], dir.path());
    assert!(out.status.success(), "{out:?}");
    assert!(dir.path().join("audit.lock").exists());
    std::fs::write(
        &cat,
        "[catalog]\nname = 'x'\n[events.a_b]\ncode = 1\n[events.c_d]\ncode = 3\n",
    )
    .unwrap();
    let out = audit(&["catalog", "check"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("audit.toml:6:8: the code of event `c_d` changed from 2 to 3"),
        "{err}"
    );
    // `lock` refuses to overwrite history.
    let out = audit(&["catalog", "lock"], dir.path());
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn docs_writes_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("events.md");
    let out = audit(
        &[
            "catalog",
            "docs",
            "examples/catalogs/mnoe.toml",
            "-o",
            out_file.to_str().unwrap(),
        ],
        &repo(),
    );
    assert!(out.status.success(), "{out:?}");
    let expected =
        std::fs::read_to_string(repo().join("audit-catalog/tests/expected/mnoe.md")).unwrap();
    assert_eq!(std::fs::read_to_string(out_file).unwrap(), expected);
}

#[test]
fn missing_catalog_lists_the_paths_tried() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\n").unwrap();
    let out = audit(&["catalog", "check"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with(
            "error: no audit catalog found; tried, from the package directory:\n  audit.toml"
        ),
        "{err}"
    );
}
