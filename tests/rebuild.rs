//! Editing `audit.toml` recompiles the crates that use it: `#[audited]` embeds the
//! catalog with `include_str!`, which cargo tracks like any source file.
//!
//! Builds a scratch crate against this workspace (offline, with this workspace's
//! Cargo.lock, in a target directory kept between runs), edits its catalog, rebuilds.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cargo(args: &[&str], dir: &Path, target: &Path) -> std::process::Output {
    Command::new(env!("CARGO"))
        .args(args)
        .arg("--offline")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("AUDIT_CATALOG")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs")
}

const CATALOG: &str = r#"[catalog]
name = "scratch"
[events.thing_make]
code = 1
description = "made %{name}"
fields = { name = "string" }
"#;

const MAIN: &str = r#"
#[audit::audited(event = "thing_make", meta(name = "gizmo"))]
fn make() {}

fn main() {
    let records = audit::testing::capture(make);
    println!("{}", records[0].description);
}
"#;

#[test]
fn editing_the_catalog_rebuilds_its_users() {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rebuild-check");
    let krate = root.join("scratch");
    let target = root.join("target");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    let workspace = env!("CARGO_MANIFEST_DIR");
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"scratch\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
             [dependencies]\naudit = {{ path = {workspace:?} }}\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::copy(
        Path::new(workspace).join("Cargo.lock"),
        krate.join("Cargo.lock"),
    )
    .unwrap();
    std::fs::write(krate.join("src/main.rs"), MAIN).unwrap();
    std::fs::write(krate.join("audit.toml"), CATALOG).unwrap();
    let _ = std::fs::remove_file(krate.join("audit.lock"));

    let run = || {
        let out = cargo(&["run", "-q"], &krate, &target);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(), "made gizmo\n");

    // Only the catalog changes: the binary must pick the new template up.
    std::fs::write(
        krate.join("audit.toml"),
        CATALOG.replace("made %{name}", "built %{name}"),
    )
    .unwrap();
    assert_eq!(run(), "built gizmo\n");

    // And a catalog edit that breaks the site fails the build at the attribute.
    std::fs::write(
        krate.join("audit.toml"),
        CATALOG.replace("{ name = \"string\" }", "{ name = \"int\" }"),
    )
    .unwrap();
    let out = cargo(&["build", "-q"], &krate, &target);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`&str` does not fit the catalog type `int`"),
        "{err}"
    );
}
