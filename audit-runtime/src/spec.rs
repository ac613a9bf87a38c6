//! What `#[audited]` embeds in the binary: each event's catalog entry, each emission
//! site, and the catalog text itself.

use std::sync::OnceLock;

use audit_catalog::{Durability, Level, Syntax, Template};

/// The catalog an event comes from: its name and the path it was read from at build
/// time. Its text is embedded once per crate (see [`EmbeddedCatalog`]).
#[derive(Debug)]
pub struct CatalogRef {
    /// `[catalog] name`.
    pub name: &'static str,
    /// Absolute path of the file at build time.
    pub path: &'static str,
}

/// A catalog's text, embedded in the binary by the first `#[audited]` site of each
/// crate (`include_str!` of the same file the compiler checked against).
#[derive(Debug)]
pub struct EmbeddedCatalog {
    /// Absolute path of the file at build time.
    pub path: &'static str,
    /// The file's text.
    pub text: &'static str,
}

inventory::collect!(EmbeddedCatalog);

/// An entity type with its stable code.
#[derive(Debug, Clone, Copy)]
pub struct EntitySpec {
    /// The entity's name.
    pub name: &'static str,
    /// Its code.
    pub code: u32,
}

/// A metadata field as the catalog declares it.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// Field name.
    pub name: &'static str,
    /// Declared type, as written in the catalog (`"int"`, `"[string]?"`).
    pub ty: &'static str,
    /// Whether its value is replaced by the redaction marker.
    pub redact: bool,
    /// Whether stores index it (`indexed = true`): see `Query::field`.
    pub indexed: bool,
}

/// One catalog event, as compiled into the binary by `#[audited]`.
#[derive(Debug)]
pub struct EventSpec {
    /// Event name.
    pub name: &'static str,
    /// Stable code.
    pub code: u32,
    /// Category.
    pub category: &'static str,
    /// Level.
    pub level: Level,
    /// The entity type it concerns.
    pub entity: Option<EntitySpec>,
    /// Description template (`%{field}`).
    pub description: Option<&'static str>,
    /// The description template of a failed attempt (`%{field}`, and `%{error}`
    /// for the error text): the catalog's `failure`, or its default.
    pub failure: &'static str,
    /// Metadata fields, in catalog order; an event's values come in this order.
    pub fields: &'static [FieldSpec],
    /// Per-sink renames: (alias set, `{field}` template).
    pub aliases: &'static [(&'static str, &'static str)],
    /// Keys muted anywhere in the metadata, nested JSON included.
    pub redact: &'static [&'static str],
    /// Whether it carries previous / current / difference.
    pub changes: bool,
    /// Durability.
    pub durability: Durability,
    /// The catalog it is declared in.
    pub catalog: &'static CatalogRef,
    #[doc(hidden)]
    pub __template: SpecCache,
}

/// Lazily parsed templates of an [`EventSpec`]; built by the worker, never the caller.
#[doc(hidden)]
#[derive(Debug)]
pub struct SpecCache {
    description: OnceLock<Option<Template>>,
    failure: OnceLock<Option<Template>>,
    aliases: OnceLock<Vec<Option<Template>>>,
}

impl SpecCache {
    #[doc(hidden)]
    pub const fn new() -> Self {
        SpecCache {
            description: OnceLock::new(),
            failure: OnceLock::new(),
            aliases: OnceLock::new(),
        }
    }
}

impl Default for SpecCache {
    fn default() -> Self {
        Self::new()
    }
}

impl EventSpec {
    /// The parsed description template.
    pub fn description_template(&self) -> Option<&Template> {
        self.__template
            .description
            .get_or_init(|| {
                self.description
                    .and_then(|d| Template::parse(d, Syntax::Percent).ok())
            })
            .as_ref()
    }

    /// The parsed failure template.
    pub fn failure_template(&self) -> Option<&Template> {
        self.__template
            .failure
            .get_or_init(|| Template::parse(self.failure, Syntax::Percent).ok())
            .as_ref()
    }

    /// The alias template for alias set `sink`, if the event has one.
    pub fn alias(&self, sink: &str) -> Option<&'static str> {
        self.aliases
            .iter()
            .find(|(s, _)| *s == sink)
            .map(|(_, t)| *t)
    }

    /// The parsed alias template for alias set `sink` (parsed once per event).
    pub fn alias_template(&self, sink: &str) -> Option<&Template> {
        let parsed = self.__template.aliases.get_or_init(|| {
            self.aliases
                .iter()
                .map(|(_, t)| Template::parse(t, Syntax::Brace).ok())
                .collect()
        });
        let i = self.aliases.iter().position(|(s, _)| *s == sink)?;
        parsed[i].as_ref()
    }
}

/// One `#[audited]` function: where it is and which event it emits.
#[derive(Debug)]
pub struct Site {
    /// The event it emits.
    pub spec: &'static EventSpec,
    /// `module_path!()` of the function.
    pub module: &'static str,
    /// `file!()`.
    pub file: &'static str,
    /// `line!()` of the attribute.
    pub line: u32,
    /// The function's name.
    pub function: &'static str,
}

/// The entry `#[audited]` submits to the `inventory` registry.
#[doc(hidden)]
pub struct SiteRef(pub &'static Site);

inventory::collect!(SiteRef);
