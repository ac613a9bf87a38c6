//! The validated catalog: entities, defaults and events.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use crate::field_type::FieldType;
use crate::source::{Position, Source};
use crate::template::Template;

/// How serious an event is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Normal activity (the default).
    #[default]
    Info,
    /// Something an operator may want to look at.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    /// The catalog spelling: `info`, `warn`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// Parses the catalog spelling.
    ///
    /// ```
    /// assert_eq!(audit_catalog::Level::parse("warn"), Some(audit_catalog::Level::Warn));
    /// ```
    pub fn parse(s: &str) -> Option<Level> {
        [Level::Info, Level::Warn, Level::Error]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

/// When an emission returns, relative to its storage.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Queue and return (the default).
    #[default]
    Async,
    /// Return only after the primary store committed the event.
    Sync,
}

impl Durability {
    /// The catalog spelling: `async` or `sync`.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Async => "async",
            Durability::Sync => "sync",
        }
    }

    /// Parses the catalog spelling.
    ///
    /// ```
    /// assert_eq!(audit_catalog::Durability::parse("sync"), Some(audit_catalog::Durability::Sync));
    /// ```
    pub fn parse(s: &str) -> Option<Durability> {
        [Durability::Async, Durability::Sync]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// An entity type with its stable code (`[entities] app = 1`).
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// The entity's name.
    pub name: String,
    /// Its stable integer code.
    pub code: u32,
    /// Where the entry is in the catalog.
    pub span: Range<usize>,
}

/// Catalog-wide defaults (`[defaults]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Defaults {
    /// Metadata keys whose values are muted in every event.
    pub redact: Vec<String>,
    /// Level of events that do not set one.
    pub level: Level,
    /// Durability of events that do not set one.
    pub durability: Durability,
}

/// A metadata field of an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The field's name (a `snake_case` identifier).
    pub name: String,
    /// Its declared type.
    pub ty: FieldType,
    /// What it holds, for generated docs.
    pub doc: Option<String>,
    /// An example value, for generated docs.
    pub example: Option<serde_json::Value>,
    /// Whether its value is muted (by `redact`, per event or in `[defaults]`).
    pub redact: bool,
    /// `indexed = true`: stores index its value, and `Query::field` filters on it.
    pub indexed: bool,
    /// Where the field's key is in the catalog.
    pub span: Range<usize>,
}

/// A per-sink rename (`aliases = { intercom = "added-app-{app_nid}" }`).
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    /// The alias set a sink is created with (`intercom`).
    pub sink: String,
    /// The name to publish, with `{field}` placeholders.
    pub template: Template,
}

/// One declared event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event's name (`app_add`).
    pub name: String,
    /// Its stable integer code.
    pub code: u32,
    /// A human title (`"App Created"`), if given.
    pub title: Option<String>,
    /// Its category (`category`, else its entity, else the name up to the first `_`).
    pub category: String,
    /// Its level.
    pub level: Level,
    /// The entity type it concerns, if any.
    pub entity: Option<String>,
    /// The description template (`%{field}` placeholders).
    pub description: Option<Template>,
    /// The failure text template (`failure = "..."`): `%{field}` placeholders and
    /// `%{error}`, the failure's error text. See [`Event::failure_text`].
    pub failure: Option<Template>,
    /// Its metadata fields, in catalog order.
    pub fields: Vec<Field>,
    /// Per-sink renames.
    pub aliases: Vec<Alias>,
    /// Whether it carries previous / current / difference of its entity.
    pub changes: bool,
    /// Its durability.
    pub durability: Durability,
    /// Keys muted wherever they appear in this event's metadata, nested JSON included
    /// (`[defaults] redact` plus the event's own `redact`).
    pub redact: Vec<String>,
    /// Whether it is retired: its code stays reserved, no code may emit it.
    pub retired: bool,
    /// `reverts = true`: it records the revert of an earlier change; every site
    /// names the reverted record (`#[audited(reverts = ...)]`) and its records
    /// carry that record's id.
    pub reverts: bool,
    /// `summary = true`: a bulk call (`#[audited(each = ...)]`) also writes one
    /// summary record, with the call's entity count and no entity of its own.
    pub summary: bool,
    /// Where `[events.<name>]` is in the catalog.
    pub span: Range<usize>,
    /// Where its `code` value is.
    pub code_span: Range<usize>,
}

/// The placeholder of a failure text that stands for the failure's error text.
pub const FAILURE_ERROR: &str = "error";

impl Event {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The template of the description a failed attempt gets: the catalog's
    /// `failure`, else "`<event name> failed: %{error}`" — never the success sentence
    /// (titles are often written as successes: "Dashboard created").
    ///
    /// ```
    /// use audit_catalog::Catalog;
    /// let cat = Catalog::parse("audit.toml", r#"
    /// [catalog]
    /// name = "projects"
    /// [events.project_create]
    /// code = 1
    /// description = "Project '%{name}' created"
    /// failure = "Could not create project '%{name}': %{error}"
    /// fields = { name = "string" }
    /// [events.project_delete]
    /// code = 2
    /// title = "Project deleted"
    /// fields = { name = "string" }
    /// "#).unwrap();
    /// assert_eq!(
    ///     cat.event("project_create").unwrap().failure_text(),
    ///     "Could not create project '%{name}': %{error}"
    /// );
    /// assert_eq!(
    ///     cat.event("project_delete").unwrap().failure_text(),
    ///     "project_delete failed: %{error}"
    /// );
    /// ```
    pub fn failure_text(&self) -> String {
        match &self.failure {
            Some(t) => t.as_str().to_owned(),
            None => format!("{} failed: %{{{FAILURE_ERROR}}}", self.name),
        }
    }
}

/// A parsed and validated `audit.toml`.
///
/// ```
/// use audit_catalog::Catalog;
/// let cat = Catalog::parse("audit.toml", r#"
/// [catalog]
/// name = "shop"
/// [entities]
/// order = 1
/// [events.order_place]
/// code = 1
/// entity = "order"
/// description = "order %{number} placed"
/// fields = { number = "string", total = "float?" }
/// "#).unwrap();
/// let e = cat.event("order_place").unwrap();
/// assert_eq!((e.code, e.category.as_str()), (1, "order"));
/// assert!(!e.field("total").unwrap().ty.is_required());
/// ```
#[derive(Debug, Clone)]
pub struct Catalog {
    /// `[catalog] name`.
    pub name: String,
    /// `[catalog] description`.
    pub description: Option<String>,
    /// Entity types, in catalog order.
    pub entities: Vec<Entity>,
    /// `[defaults]`.
    pub defaults: Defaults,
    /// Events, in catalog order (retired ones included).
    pub events: Vec<Event>,
    pub(crate) source: Arc<Source>,
}

impl Catalog {
    /// The event called `name` (retired or not).
    pub fn event(&self, name: &str) -> Option<&Event> {
        self.events.iter().find(|e| e.name == name)
    }

    /// The entity called `name`.
    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.name == name)
    }

    /// Events that code may still emit (not retired).
    pub fn live_events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| !e.retired)
    }

    /// The file the catalog was read from.
    pub fn path(&self) -> &Path {
        self.source.path()
    }

    /// The catalog's text and path.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Line and column of a byte offset in the catalog (for spans held by the model).
    pub fn position(&self, offset: usize) -> Position {
        self.source.position(offset)
    }
}
