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

/// Locates and loads the catalog; errors are complete messages for `compile_error!`.
pub fn load() -> Result<Loaded, String> {
    let dir = manifest_dir()?;
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    let env = std::env::var(audit_catalog::CATALOG_ENV).ok();
    let env = env
        .as_deref()
        .and_then(|v| audit_catalog::env_override(v, &package));
    let path =
        audit_catalog::locate(&dir, env.map(std::ffi::OsStr::new)).map_err(|e| e.to_string())?;
    let path = path.canonicalize().unwrap_or(path);
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
