//! Finding and loading the crate's catalog, once per compiler process.
//!
//! Cached by path and re-read when the catalog's or the lock file's modification time
//! changes, so a long-lived macro server (rust-analyzer) sees edits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use audit_catalog::{Catalog, lock_path};

/// A loaded catalog and where it came from.
pub struct Loaded {
    pub catalog: Arc<Catalog>,
    pub path: PathBuf,
    /// The path shown in messages: relative to the crate when inside it.
    pub shown: String,
    pub lock: Option<PathBuf>,
}

type Cache = HashMap<
    PathBuf,
    (
        Option<SystemTime>,
        Option<SystemTime>,
        Result<Arc<Catalog>, String>,
    ),
>;

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

/// Catalogs already embedded by an earlier site of the crate being compiled. A
/// proc-macro library is loaded once per rustc process, that is once per crate, so
/// the first site of a crate embeds the catalog (and makes cargo track it) and the
/// others refer to it by path.
static EMBEDDED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Whether this is the first site of the current compilation that uses `path`.
pub fn first_use(path: &Path) -> bool {
    let mut done = EMBEDDED.lock().unwrap_or_else(|p| p.into_inner());
    if done.iter().any(|p| p == path) {
        false
    } else {
        done.push(path.to_owned());
        true
    }
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The manifest directory of the crate being compiled. `CARGO_MANIFEST_DIR_OVERRIDE`
/// takes precedence (trybuild compiles UI tests in a generated crate).
fn manifest_dir() -> Result<PathBuf, String> {
    std::env::var_os("CARGO_MANIFEST_DIR_OVERRIDE")
        .or_else(|| std::env::var_os("CARGO_MANIFEST_DIR"))
        .map(PathBuf::from)
        .ok_or_else(|| "CARGO_MANIFEST_DIR is not set: #[audited] must be compiled by cargo".into())
}

type LocateKey = (PathBuf, String, Option<String>);

/// Where the catalog of (manifest dir, package, `AUDIT_CATALOG`) is; looked up once
/// per key, since every site of a crate asks the same question.
fn locate_cached(dir: &Path, package: &str, env: Option<String>) -> Result<PathBuf, String> {
    static LOCATED: Mutex<Vec<(LocateKey, PathBuf)>> = Mutex::new(Vec::new());
    let key = (dir.to_owned(), package.to_owned(), env);
    let mut located = LOCATED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, p)) = located.iter().find(|(k, _)| *k == key)
        && p.is_file()
    {
        return Ok(p.clone());
    }
    let env = key
        .2
        .as_deref()
        .and_then(|v| audit_catalog::env_override(v, package));
    let path =
        audit_catalog::locate(dir, env.map(std::ffi::OsStr::new)).map_err(|e| e.to_string())?;
    let path = path.canonicalize().unwrap_or(path);
    located.retain(|(k, _)| *k != key);
    located.push((key, path.clone()));
    Ok(path)
}

/// Why no catalog is loaded.
pub enum LoadError {
    /// A complete message for `compile_error!`, at the first site that meets it.
    Report(String),
    /// The same message was reported at an earlier site of this crate: the site
    /// stays silent (and untouched), so a bad catalog is one error, not one per site.
    Reported,
}

/// Messages of catalog errors already reported in this compilation (one rustc
/// process per crate, as for [`first_use`]).
static REPORTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Locates and loads the catalog; a failure is reported at the first site only.
pub fn load() -> Result<Loaded, LoadError> {
    load_once().map_err(|msg| {
        let mut reported = REPORTED.lock().unwrap_or_else(|p| p.into_inner());
        if reported.contains(&msg) {
            LoadError::Reported
        } else {
            reported.push(msg.clone());
            LoadError::Report(msg)
        }
    })
}

fn load_once() -> Result<Loaded, String> {
    let dir = manifest_dir()?;
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    let env = std::env::var(audit_catalog::CATALOG_ENV).ok();
    let path = locate_cached(&dir, &package, env)?;
    let lock = lock_path(&path);
    let stamp = (mtime(&path), mtime(&lock));

    let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let cache = guard.get_or_insert_with(HashMap::new);
    let result = match cache.get(&path) {
        Some((m, l, r)) if (*m, *l) == stamp => r.clone(),
        _ => {
            let r = Catalog::load(&path)
                .map(Arc::new)
                .map_err(|e| format!("the audit catalog {} is invalid:\n{e}", path.display()));
            cache.insert(path.clone(), (stamp.0, stamp.1, r.clone()));
            r
        }
    };
    let catalog = result?;
    let shown = path
        .strip_prefix(dir.canonicalize().unwrap_or(dir))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string());
    Ok(Loaded {
        catalog,
        shown,
        lock: stamp.1.map(|_| lock),
        path,
    })
}

impl Loaded {
    /// The error for a name the catalog does not declare, with "did you mean".
    /// `what` reads like "audit event" or "entity", `noun` like "event" or "entity",
    /// `section` like "" or " in [entities]".
    pub fn unknown<'a>(
        &self,
        span: proc_macro2::Span,
        (what, noun): (&str, &str),
        name: &str,
        section: &str,
        known: impl Iterator<Item = &'a str>,
    ) -> syn::Error {
        let hint = audit_catalog::format_suggestions(&audit_catalog::suggest(name, known))
            .map(|h| format!("\n\n= help: {h}"))
            .unwrap_or_default();
        syn::Error::new(
            span,
            format!(
                "unknown {what} `{name}`: catalog `{}` ({}) declares no such {noun}{section}{hint}",
                self.catalog.name, self.shown
            ),
        )
    }
}
