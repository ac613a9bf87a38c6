//! Every `#[audited]` site linked into the binary, and the declared events no code emits.
//!
//! Sites register through `inventory`, which runs a constructor per site before
//! `main`. Caveat: a crate that is a dependency but that no code references is not
//! linked, and its sites are then missing. Reference it (`use that_crate as _;`) in the
//! binary or test that checks coverage.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use audit_catalog::Catalog;

use crate::spec::{EmbeddedCatalog, Site, SiteRef};

/// Every site, sorted by event, then file and line.
///
/// ```
/// for site in audit_runtime::registry::sites() {
///     println!("{} emitted by {} at {}:{}", site.spec.name, site.function, site.file, site.line);
/// }
/// ```
pub fn sites() -> Vec<&'static Site> {
    let mut all: Vec<&'static Site> = inventory::iter::<SiteRef>().map(|s| s.0).collect();
    all.sort_by_key(|s| (s.spec.name, s.file, s.line));
    all
}

/// An event declared in a catalog that no linked code emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// Event name.
    pub event: String,
    /// Its code.
    pub code: u32,
    /// Its category.
    pub category: String,
}

/// Coverage of one embedded catalog.
#[derive(Debug, Clone)]
pub struct CatalogCoverage {
    /// `[catalog] name`.
    pub catalog: String,
    /// Path of the catalog at build time.
    pub path: String,
    /// Live (not retired) events declared.
    pub declared: usize,
    /// Event → number of sites emitting it.
    pub emitted: BTreeMap<String, usize>,
    /// Declared events with no site: the "events not currently logged".
    pub missing: Vec<Missing>,
}

/// Coverage of every catalog embedded in the binary.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// One entry per catalog, by path.
    pub catalogs: Vec<CatalogCoverage>,
}

impl Coverage {
    /// Whether every declared event has at least one site.
    pub fn is_complete(&self) -> bool {
        self.catalogs.iter().all(|c| c.missing.is_empty())
    }

    /// Every missing event, across catalogs.
    pub fn missing(&self) -> impl Iterator<Item = &Missing> {
        self.catalogs.iter().flat_map(|c| c.missing.iter())
    }
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.catalogs.is_empty() {
            return f.write_str("no #[audited] sites are linked into this binary\n");
        }
        for c in &self.catalogs {
            writeln!(
                f,
                "catalog `{}`: {} of {} events emitted by {} sites",
                c.catalog,
                c.declared - c.missing.len(),
                c.declared,
                c.emitted.values().sum::<usize>()
            )?;
            if !c.missing.is_empty() {
                writeln!(f, "events not currently logged:")?;
                for m in &c.missing {
                    writeln!(
                        f,
                        "  {} (code {}, category {})",
                        m.event, m.code, m.category
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// The metadata fields marked `indexed = true` in the catalogs of the events this
/// binary emits: the SQLite store indexes them when it opens (see `Query::field`).
///
/// ```
/// // A binary without `#[audited]` sites has none.
/// assert!(audit_runtime::registry::indexed_fields().is_empty());
/// ```
pub fn indexed_fields() -> BTreeSet<&'static str> {
    sites()
        .iter()
        .flat_map(|s| s.spec.fields.iter())
        .filter(|f| f.indexed && !f.redact)
        .map(|f| f.name)
        .collect()
}

/// The catalogs this binary's `#[audited]` sites were checked against, parsed from
/// their embedded text (one per catalog file, whatever the number of crates using it).
///
/// ```
/// // A binary without `#[audited]` sites embeds none.
/// assert!(audit_runtime::registry::catalogs().is_empty());
/// ```
pub fn catalogs() -> Vec<Catalog> {
    let texts: BTreeMap<&'static str, &'static str> = inventory::iter::<EmbeddedCatalog>()
        .map(|c| (c.path, c.text))
        .collect();
    texts
        .into_iter()
        .filter_map(|(path, text)| Catalog::parse(path, text).ok())
        .collect()
}

/// Which declared events have sites and which have none, per embedded catalog.
pub fn coverage() -> Coverage {
    let all = sites();
    let mut by_catalog: BTreeMap<&'static str, Vec<&'static Site>> = BTreeMap::new();
    for s in &all {
        by_catalog.entry(s.spec.catalog.path).or_default().push(s);
    }
    let texts: BTreeMap<&'static str, &'static str> = inventory::iter::<EmbeddedCatalog>()
        .map(|c| (c.path, c.text))
        .collect();
    let catalogs = by_catalog
        .into_iter()
        .filter_map(|(path, sites)| {
            let cat = Catalog::parse(path, texts.get(path)?).ok()?;
            let mut emitted: BTreeMap<String, usize> = BTreeMap::new();
            for s in &sites {
                *emitted.entry(s.spec.name.to_owned()).or_default() += 1;
            }
            let names: BTreeSet<&str> = sites.iter().map(|s| s.spec.name).collect();
            let missing = cat
                .live_events()
                .filter(|e| !names.contains(e.name.as_str()))
                .map(|e| Missing {
                    event: e.name.clone(),
                    code: e.code,
                    category: e.category.clone(),
                })
                .collect::<Vec<_>>();
            Some(CatalogCoverage {
                catalog: cat.name.clone(),
                path: path.to_owned(),
                declared: cat.live_events().count(),
                emitted,
                missing,
            })
        })
        .collect();
    Coverage { catalogs }
}

/// Panics, listing each missing event, unless every declared event of every
/// embedded catalog is emitted somewhere. Call it from a test.
///
/// ```no_run
/// #[test]
/// fn every_audit_event_is_emitted() {
///     audit_runtime::registry::assert_complete();
/// }
/// ```
#[track_caller]
pub fn assert_complete() {
    let c = coverage();
    if !c.is_complete() {
        panic!("some declared audit events are emitted nowhere:\n{c}");
    }
}
