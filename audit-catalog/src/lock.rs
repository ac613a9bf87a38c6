//! `audit.lock`: every event and entity code ever assigned, so that a stored integer
//! code means the same thing forever.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, ErrorKind};
use crate::model::Catalog;
use crate::parse::Reporter;
use crate::source::Source;

/// The lock file's name next to the default catalog `audit.toml`.
pub const LOCK_FILE_NAME: &str = "audit.lock";

/// One locked name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockEntry {
    /// The code it was given.
    pub code: u32,
    /// Where it is in the lock file (empty for entries not read from a file).
    pub span: Range<usize>,
}

/// The contents of `audit.lock`.
///
/// ```
/// use audit_catalog::{Catalog, Lock};
/// let cat = Catalog::parse("audit.toml", "[catalog]\nname='x'\n[events.a_b]\ncode = 1\n").unwrap();
/// let lock = Lock::default().updated(&cat);
/// assert_eq!(lock.events["a_b"].code, 1);
/// assert!(lock.check(&cat).is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Lock {
    /// Event name → code, for every event ever locked.
    pub events: BTreeMap<String, LockEntry>,
    /// Entity name → code, for every entity ever locked.
    pub entities: BTreeMap<String, LockEntry>,
    source: Option<Arc<Source>>,
}

/// The lock file that belongs to a catalog file: the same name with the extension
/// `.lock`, so that several catalogs can share a directory.
///
/// ```
/// use std::path::Path;
/// assert_eq!(audit_catalog::lock_path(Path::new("/app/audit.toml")), Path::new("/app/audit.lock"));
/// assert_eq!(audit_catalog::lock_path(Path::new("cat/mnoe.toml")), Path::new("cat/mnoe.lock"));
/// ```
pub fn lock_path(catalog: &Path) -> PathBuf {
    catalog.with_extension("lock")
}

impl Lock {
    /// Parses lock-file text.
    pub fn parse(path: impl Into<PathBuf>, text: &str) -> Result<Lock, Vec<Diagnostic>> {
        let source = Arc::new(Source::new(path, text));
        let mut r = Reporter::new(Arc::clone(&source));
        let mut lock = Lock {
            source: Some(Arc::clone(&source)),
            ..Lock::default()
        };
        let (root, errors) = DeTable::parse_recoverable(source.text());
        for e in &errors {
            r.error(
                ErrorKind::Syntax,
                e.span().unwrap_or(0..0),
                e.message().trim(),
                None,
            );
        }
        if errors.is_empty() {
            for (key, value) in root.get_ref().iter() {
                let section: &str = key.get_ref();
                let target = match section {
                    "events" => &mut lock.events,
                    "entities" => &mut lock.entities,
                    "version" => continue,
                    other => {
                        r.error(
                            ErrorKind::LockMalformed,
                            key.span(),
                            format!("unknown section `{other}` in the lock file"),
                            Some("regenerate it with `audit catalog lock`".into()),
                        );
                        continue;
                    }
                };
                let DeValue::Table(t) = value.get_ref() else {
                    r.error(
                        ErrorKind::LockMalformed,
                        value.span(),
                        "expected a table",
                        None,
                    );
                    continue;
                };
                for (name, code) in t.iter() {
                    let parsed = match code.get_ref() {
                        DeValue::Integer(i) => i.as_str().parse::<u32>().ok(),
                        _ => None,
                    };
                    match parsed {
                        Some(c) => {
                            target.insert(
                                name.get_ref().to_string(),
                                LockEntry {
                                    code: c,
                                    span: name.span(),
                                },
                            );
                        }
                        None => r.error(
                            ErrorKind::LockMalformed,
                            code.span(),
                            "a locked code must be a positive integer",
                            None,
                        ),
                    }
                }
            }
        }
        if r.diags.is_empty() {
            Ok(lock)
        } else {
            Err(r.diags)
        }
    }

    /// Reads the lock file at `path`; `Ok(None)` when there is none.
    pub fn read(path: &Path) -> Result<Option<Lock>, crate::CatalogError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Lock::parse(path, &text)
                .map(Some)
                .map_err(crate::CatalogError::Invalid),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(crate::CatalogError::Io {
                path: path.to_owned(),
                error: e,
            }),
        }
    }

    /// This lock plus every event and entity of `catalog` (nothing is ever removed).
    /// Call [`Lock::check`] first: a conflicting catalog would overwrite history.
    pub fn updated(&self, catalog: &Catalog) -> Lock {
        let mut next = self.clone();
        for e in &catalog.events {
            next.events.entry(e.name.clone()).or_insert(LockEntry {
                code: e.code,
                span: 0..0,
            });
        }
        for e in &catalog.entities {
            next.entities.entry(e.name.clone()).or_insert(LockEntry {
                code: e.code,
                span: 0..0,
            });
        }
        next
    }

    /// The lock file's text.
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# audit.lock: every event and entity code ever assigned.\n\
             # Written by `audit catalog lock`. Commit it; never edit or delete entries:\n\
             # a stored code must mean the same thing forever.\n\
             version = 1\n",
        );
        for (title, map) in [("events", &self.events), ("entities", &self.entities)] {
            let mut sorted: Vec<_> = map.iter().collect();
            sorted.sort_by_key(|(name, e)| (e.code, name.as_str()));
            let _ = writeln!(out, "\n[{title}]");
            for (name, e) in sorted {
                let _ = writeln!(out, "{name} = {}", e.code);
            }
        }
        out
    }

    /// Checks `catalog` against the lock: no locked code changed, no code reused by
    /// another name, no locked event gone without `retired = true`, no locked entity gone.
    pub fn check(&self, catalog: &Catalog) -> Vec<Diagnostic> {
        let mut r = Reporter::new(Arc::clone(&catalog.source));
        let mut lock_r = self.source.as_ref().map(|s| Reporter::new(Arc::clone(s)));
        let next_event = self
            .events
            .values()
            .map(|e| e.code)
            .chain(catalog.events.iter().map(|e| e.code))
            .max()
            .unwrap_or(0)
            + 1;
        let next_entity = self
            .entities
            .values()
            .map(|e| e.code)
            .chain(catalog.entities.iter().map(|e| e.code))
            .max()
            .unwrap_or(0)
            + 1;

        let events = catalog
            .events
            .iter()
            .map(|e| (e.name.as_str(), e.code, e.code_span.clone()));
        check_names(&mut r, "event", events, &self.events, next_event);
        let entities = catalog
            .entities
            .iter()
            .map(|e| (e.name.as_str(), e.code, e.span.clone()));
        check_names(&mut r, "entity", entities, &self.entities, next_entity);

        let mut vanished = |kind, what: &str, name: &str, entry: &LockEntry, help: String| {
            let msg = format!(
                "{what} `{name}` (code {}) is in the lock file but gone from the catalog",
                entry.code
            );
            match lock_r.as_mut() {
                Some(lr) => lr.error(kind, entry.span.clone(), msg, Some(help)),
                None => r.error(kind, 0..0, msg, Some(help)),
            }
        };
        for (name, entry) in &self.events {
            if catalog.event(name).is_none() {
                vanished(
                    ErrorKind::LockEventVanished,
                    "event",
                    name,
                    entry,
                    format!(
                        "keep it as `[events.{name}]` with `code = {}` and `retired = true`",
                        entry.code
                    ),
                );
            }
        }
        for (name, entry) in &self.entities {
            if catalog.entity(name).is_none() {
                vanished(
                    ErrorKind::LockEntityVanished,
                    "entity",
                    name,
                    entry,
                    format!(
                        "stored records use its code: keep `{name} = {}` in [entities]",
                        entry.code
                    ),
                );
            }
        }
        let mut diags = r.diags;
        diags.extend(lock_r.into_iter().flat_map(|lr| lr.diags));
        diags
    }
}

fn check_names<'a>(
    r: &mut Reporter,
    what: &str,
    current: impl Iterator<Item = (&'a str, u32, Range<usize>)>,
    locked: &BTreeMap<String, LockEntry>,
    next: u32,
) {
    for (name, code, span) in current {
        match locked.get(name) {
            Some(entry) if entry.code != code => r.error(
                ErrorKind::LockCodeChanged,
                span,
                format!(
                    "the code of {what} `{name}` changed from {} to {code}",
                    entry.code
                ),
                Some(format!(
                    "stored records use {}: restore `code = {}`; a new meaning needs a new name",
                    entry.code, entry.code
                )),
            ),
            Some(_) => {}
            None => {
                if let Some((owner, _)) = locked.iter().find(|(_, e)| e.code == code) {
                    r.error(
                        ErrorKind::LockCodeReused,
                        span,
                        format!("{what} `{name}` reuses code {code}, which the lock file gives to `{owner}`"),
                        Some(format!("codes are never reused: the next unused code is {next}")),
                    );
                }
            }
        }
    }
}
