//! Where a crate's catalog is: `AUDIT_CATALOG`, else `[package.metadata.audit] catalog`,
//! else `audit.toml` in the crate's directory and upward to the workspace root.
//! Everything is relative to the crate's manifest directory, never the current directory.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable that overrides every other way of finding the catalog.
pub const CATALOG_ENV: &str = "AUDIT_CATALOG";
/// The catalog's default file name.
pub const CATALOG_FILE_NAME: &str = "audit.toml";

/// The part of an `AUDIT_CATALOG` value that applies to package `package`.
///
/// The value is either a path, which applies to every crate of the build, or
/// comma-separated `package=path` pairs, each applying to one package only (the way
/// `RUST_LOG` takes `target=level`). A test harness that compiles its own crate, such
/// as trybuild's `<name>-tests`, can so be pointed at a catalog without redirecting the
/// other crates of the build.
///
/// ```
/// use audit_catalog::env_override;
/// assert_eq!(env_override("cat.toml", "app"), Some("cat.toml"));
/// assert_eq!(env_override("app=a.toml,audit-tests=/x/b.toml", "audit-tests"), Some("/x/b.toml"));
/// assert_eq!(env_override("audit-tests=/x/b.toml", "app"), None);
/// ```
pub fn env_override<'a>(value: &'a str, package: &str) -> Option<&'a str> {
    if !value.contains('=') {
        return Some(value);
    }
    value.split(',').find_map(|pair| {
        let (pkg, path) = pair.split_once('=')?;
        (pkg.trim() == package).then(|| path.trim())
    })
}

/// No catalog was found; says every place that was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocateError {
    /// The package directory the search started from.
    pub from: PathBuf,
    /// Each path that was tried, in order.
    pub tried: Vec<PathBuf>,
    /// A problem other than "not there" (an unreadable or malformed `Cargo.toml`).
    pub problem: Option<String>,
}

impl fmt::Display for LocateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.problem {
            return f.write_str(p);
        }
        // Relative to the package directory: `../audit.toml` says where to put it.
        f.write_str("no audit catalog found; tried, from the package directory:")?;
        for t in &self.tried {
            write!(f, "\n  {}", relative(&self.from, t).display())?;
        }
        write!(
            f,
            "\ncreate `{CATALOG_FILE_NAME}` next to Cargo.toml, set `[package.metadata.audit] catalog = \"path\"`, \
             or set {CATALOG_ENV}"
        )
    }
}

impl std::error::Error for LocateError {}

/// `path` as seen from `base` (`audit.toml`, `../audit.toml`), when it is `base` or
/// one of its ancestors' children; else as it is.
fn relative(base: &Path, path: &Path) -> PathBuf {
    for (up, dir) in base.ancestors().enumerate() {
        if let Ok(rest) = path.strip_prefix(dir) {
            let mut out: PathBuf = std::iter::repeat_n("..", up).collect();
            out.push(rest);
            return out;
        }
    }
    path.to_owned()
}

/// Finds the catalog of the crate whose manifest directory is `manifest_dir`;
/// `env` is the value of [`CATALOG_ENV`], if set.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"x\"\n[package.metadata.audit]\ncatalog = \"cat/events.toml\"\n").unwrap();
/// std::fs::create_dir(dir.path().join("cat")).unwrap();
/// std::fs::write(dir.path().join("cat/events.toml"), "").unwrap();
/// let found = audit_catalog::locate(dir.path(), None).unwrap();
/// assert_eq!(found, dir.path().join("cat/events.toml"));
/// ```
///
/// The metadata path and the environment path must exist; a missing one is an error
/// rather than a silent fall-through to another catalog.
pub fn locate(manifest_dir: &Path, env: Option<&OsStr>) -> Result<PathBuf, LocateError> {
    let mut tried = Vec::new();
    let exists = |p: &Path, tried: &mut Vec<PathBuf>| {
        tried.push(p.to_owned());
        p.is_file()
    };
    if let Some(v) = env.filter(|v| !v.is_empty()) {
        let p = manifest_dir.join(v);
        return if exists(&p, &mut tried) {
            Ok(p)
        } else {
            Err(LocateError {
                from: manifest_dir.to_owned(),
                problem: Some(format!(
                    "{CATALOG_ENV} is set to `{}`, but {} does not exist",
                    v.to_string_lossy(),
                    p.display()
                )),
                tried,
            })
        };
    }

    let manifest = manifest_dir.join("Cargo.toml");
    if let Some(rel) = metadata_catalog(&manifest).map_err(|problem| LocateError {
        from: manifest_dir.to_owned(),
        tried: vec![manifest.clone()],
        problem: Some(problem),
    })? {
        let p = manifest_dir.join(&rel);
        return if exists(&p, &mut tried) {
            Ok(p)
        } else {
            Err(LocateError {
                from: manifest_dir.to_owned(),
                problem: Some(format!(
                    "{} sets [package.metadata.audit] catalog = \"{rel}\", but {} does not exist",
                    manifest.display(),
                    p.display()
                )),
                tried,
            })
        };
    }

    for dir in manifest_dir.ancestors() {
        let p = dir.join(CATALOG_FILE_NAME);
        if exists(&p, &mut tried) {
            return Ok(p);
        }
        if is_workspace_root(dir) {
            break;
        }
    }
    Err(LocateError {
        from: manifest_dir.to_owned(),
        tried,
        problem: None,
    })
}

/// Reads `[package.metadata.audit] catalog` from a manifest, if it has one.
fn metadata_catalog(manifest: &Path) -> Result<Option<String>, String> {
    let Ok(text) = std::fs::read_to_string(manifest) else {
        return Ok(None);
    };
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| format!("cannot read {}: {}", manifest.display(), e.message()))?;
    let value = table
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("audit"))
        .and_then(|a| a.get("catalog"));
    match value {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!(
            "{}: [package.metadata.audit] catalog must be a string path",
            manifest.display()
        )),
    }
}

/// A directory whose `Cargo.toml` declares `[workspace]`, or the top of a git checkout.
fn is_workspace_root(dir: &Path) -> bool {
    dir.join(".git").exists()
        || std::fs::read_to_string(dir.join("Cargo.toml"))
            .ok()
            .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
            .is_some_and(|t| t.contains_key("workspace"))
}
