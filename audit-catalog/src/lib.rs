//! The audit event catalog: the `audit.toml` format, parsed with the line and column
//! of every key, validated with every error reported at once, checked against its
//! lock file, located the way the macros need it, and rendered as Markdown docs.
//!
//! This crate has no proc-macro or runtime dependency: `audit-macros`, `audit-runtime`
//! and the `audit` CLI all read catalogs through it.
//!
//! ```
//! use audit_catalog::{Catalog, ErrorKind};
//!
//! let text = r#"
//! [catalog]
//! name = "mnoe"
//!
//! [events.dashboard_create]
//! code = 4
//! description = "Dashboard '%{dashboard_name}' created"
//! fields = { name = "string" }
//! "#;
//! let err = Catalog::parse("audit.toml", text).unwrap_err();
//! let d = &err.diagnostics()[0];
//! assert_eq!(d.kind(), ErrorKind::UnknownPlaceholder);
//! assert_eq!(d.position().to_string(), "7:27");
//! assert_eq!(d.hint(), Some("its fields are: name"));
//! ```
//!
//! # Names
//!
//! Event, field, entity, category and alias-set names are `snake_case` identifiers.
//! Metadata is always namespaced: it is stored under the record's `metadata` key, so
//! a field may be called `id`, `time` or `actor` without clashing with the record's
//! own keys (the MnoEnterprise events carry an `id` field). `self`, `super` and
//! `crate` are refused because no Rust code can name them in `meta(...)`.
//!
//! # Defaults
//!
//! An event's `category` defaults to its `entity`, else to its name up to the first
//! `_`; its `level` and `durability` default to `[defaults]`, else `info` and `async`.

mod diagnostic;
mod docs;
mod field_type;
mod locate;
mod lock;
mod model;
mod parse;
pub mod redact;
mod source;
mod suggest;
mod template;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use diagnostic::{Diagnostic, ErrorKind};
pub use docs::render_markdown;
pub use field_type::{FieldType, FieldTypeError, Scalar};
pub use locate::{CATALOG_ENV, CATALOG_FILE_NAME, LocateError, env_override, locate};
pub use lock::{LOCK_FILE_NAME, Lock, LockEntry, lock_path};
pub use model::{Alias, Catalog, Defaults, Durability, Entity, Event, FAILURE_ERROR, Field, Level};
pub use parse::is_snake_case;
pub use source::{Position, Source};
pub use suggest::{format_suggestions, suggest};
pub use template::{Piece, Syntax, Template, TemplateError};

/// The marker that replaces a redacted value everywhere it would appear.
pub const REDACTED: &str = "[REDACTED]";

/// Why a catalog could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum CatalogError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The file was read but has mistakes; every one of them is listed.
    Invalid(Vec<Diagnostic>),
}

impl CatalogError {
    /// The mistakes, for [`CatalogError::Invalid`] (empty for I/O errors).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            CatalogError::Invalid(d) => d,
            CatalogError::Io { .. } => &[],
        }
    }
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogError::Io { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            CatalogError::Invalid(diags) => {
                for (i, d) in diags.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{d}")?;
                    if let Some(h) = d.hint() {
                        write!(f, "\n  help: {h}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CatalogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CatalogError::Io { error, .. } => Some(error),
            CatalogError::Invalid(_) => None,
        }
    }
}

impl Catalog {
    /// Parses and validates catalog text; `path` is used in error messages only.
    /// The lock file is not consulted (see [`Catalog::load`]).
    pub fn parse(path: impl Into<PathBuf>, text: &str) -> Result<Catalog, CatalogError> {
        let source = Arc::new(Source::new(path, text));
        let mut r = parse::Reporter::new(source);
        let catalog = parse::parse(&mut r);
        if let Some(c) = &catalog {
            validate::validate(c, &mut r);
        }
        let mut diags = r.diags;
        diags.sort_by_key(|d| d.span().start);
        match catalog {
            Some(c) if diags.is_empty() => Ok(c),
            _ => Err(CatalogError::Invalid(diags)),
        }
    }

    /// Reads, parses and validates the catalog at `path`, and checks it against the
    /// `audit.lock` next to it when there is one.
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|error| CatalogError::Io {
            path: path.to_owned(),
            error,
        })?;
        let catalog = Catalog::parse(path, &text)?;
        if let Some(lock) = Lock::read(&lock_path(path))? {
            let diags = lock.check(&catalog);
            if !diags.is_empty() {
                return Err(CatalogError::Invalid(diags));
            }
        }
        Ok(catalog)
    }
}
