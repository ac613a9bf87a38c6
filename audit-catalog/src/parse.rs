//! From TOML text to a [`Catalog`]: walks the spanned TOML tree, checks every key and
//! value, and collects every error instead of stopping at the first.

use std::ops::Range;
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, ErrorKind};
use crate::field_type::FieldType;
use crate::model::FAILURE_ERROR;
use crate::model::{Alias, Catalog, Defaults, Durability, Entity, Event, Field, Level};
use crate::source::Source;
use crate::suggest::did_you_mean;
use crate::template::{Syntax, Template};

pub(crate) const TOP_KEYS: &[&str] = &["catalog", "entities", "defaults", "events"];
pub(crate) const CATALOG_KEYS: &[&str] = &["name", "description"];
pub(crate) const DEFAULTS_KEYS: &[&str] = &["redact", "level", "durability"];
pub(crate) const EVENT_KEYS: &[&str] = &[
    "code",
    "title",
    "category",
    "level",
    "entity",
    "description",
    "failure",
    "fields",
    "aliases",
    "changes",
    "durability",
    "redact",
    "retired",
    "reverts",
    "summary",
];
pub(crate) const FIELD_KEYS: &[&str] = &["type", "doc", "example", "indexed"];

/// Largest code accepted: codes are stored in 32-bit signed integer columns.
pub(crate) const MAX_CODE: i64 = i32::MAX as i64;

type Value<'i> = Spanned<DeValue<'i>>;

/// Collects diagnostics against one source.
pub(crate) struct Reporter {
    pub(crate) source: Arc<Source>,
    pub(crate) diags: Vec<Diagnostic>,
}

impl Reporter {
    pub(crate) fn new(source: Arc<Source>) -> Self {
        Reporter {
            source,
            diags: Vec::new(),
        }
    }

    pub(crate) fn error(
        &mut self,
        kind: ErrorKind,
        span: Range<usize>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.diags
            .push(Diagnostic::new(kind, &self.source, span, message).help_opt(help));
    }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Whether `name` is a `snake_case` identifier: a lowercase ASCII letter, then
/// lowercase letters, digits and single underscores, not ending in `_`.
///
/// ```
/// assert!(audit_catalog::is_snake_case("app_nid2"));
/// assert!(!audit_catalog::is_snake_case("appNid"));
/// assert!(!audit_catalog::is_snake_case("resource-id"));
/// ```
pub fn is_snake_case(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name
            .chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && !name.ends_with('_')
        && !name.contains("__")
}

/// Names that cannot be used as Rust identifiers at all (not even raw), so cannot
/// be written in `meta(...)`.
const UNUSABLE: &[&str] = &["self", "super", "crate", "_"];

fn snake_suggestion(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

struct Walker<'r> {
    r: &'r mut Reporter,
}

impl Walker<'_> {
    fn unknown_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], context: &str) {
        for key in table.keys() {
            let k: &str = key.get_ref();
            if !allowed.contains(&k) {
                let help = did_you_mean(k, allowed.iter().copied())
                    .or_else(|| Some(format!("the keys of {context} are: {}", allowed.join(", "))));
                self.r.error(
                    ErrorKind::UnknownKey,
                    key.span(),
                    format!("unknown key `{k}` in {context}"),
                    help,
                );
            }
        }
    }

    fn wrong_type(&mut self, v: &Value<'_>, what: &str, expected: &str) {
        self.r.error(
            ErrorKind::WrongType,
            v.span(),
            format!(
                "{what} must be {expected}, found {}",
                type_name(v.get_ref())
            ),
            None,
        );
    }

    fn table<'t, 'i>(&mut self, v: &'t Value<'i>, what: &str) -> Option<&'t DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(v, what, "a table");
                None
            }
        }
    }

    fn string(&mut self, v: &Value<'_>, what: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.wrong_type(v, what, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, v: &Value<'_>, what: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(v, what, "`true` or `false`");
                None
            }
        }
    }

    fn strings(&mut self, v: &Value<'_>, what: &str) -> Vec<Spanned<String>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, what, "an array of strings");
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| {
                self.string(item, &format!("each entry of {what}"))
                    .map(|s| Spanned::new(item.span(), s))
            })
            .collect()
    }

    fn code(&mut self, v: &Value<'_>, what: &str) -> Option<u32> {
        let DeValue::Integer(i) = v.get_ref() else {
            self.wrong_type(v, what, "a positive integer");
            return None;
        };
        let digits = i.as_str().replace('_', "");
        let parsed = i64::from_str_radix(&digits, i.radix()).ok();
        match parsed {
            Some(n) if (1..=MAX_CODE).contains(&n) => Some(n as u32),
            _ => {
                self.r.error(
                    ErrorKind::NonPositiveCode,
                    v.span(),
                    format!(
                        "{what} must be a positive integer up to {MAX_CODE}, found {}",
                        i.as_str()
                    ),
                    Some("codes are stored forever: pick the next unused number".into()),
                );
                None
            }
        }
    }

    fn name(&mut self, key: &Spanned<toml::de::DeString<'_>>, what: &str) -> bool {
        let k: &str = key.get_ref();
        if !is_snake_case(k) {
            let fixed = snake_suggestion(k);
            let help = (!fixed.is_empty() && is_snake_case(&fixed))
                .then(|| format!("write it as `{fixed}`"));
            self.r.error(
                ErrorKind::InvalidName,
                key.span(),
                format!("{what} `{k}` is not a snake_case identifier"),
                help,
            );
            return false;
        }
        if UNUSABLE.contains(&k) {
            self.r.error(
                ErrorKind::InvalidName,
                key.span(),
                format!("{what} `{k}` is reserved by Rust and cannot be written in `meta(...)`"),
                Some("choose another name".into()),
            );
            return false;
        }
        true
    }

    fn catalog(&mut self, root: &Value<'_>) -> Option<Catalog> {
        let DeValue::Table(top) = root.get_ref() else {
            return None;
        };
        self.unknown_keys(top, TOP_KEYS, "the catalog file");

        let (name, description) = match top.get("catalog") {
            Some(v) => self.catalog_section(v),
            None => {
                self.r.error(
                    ErrorKind::MissingKey,
                    0..0,
                    "missing [catalog] section",
                    Some("add `[catalog]` with `name = \"...\"`".into()),
                );
                (None, None)
            }
        };
        let entities = top
            .get("entities")
            .map(|v| self.entities(v))
            .unwrap_or_default();
        let defaults = top
            .get("defaults")
            .map(|v| self.defaults(v))
            .unwrap_or_default();
        let events = top
            .get("events")
            .map(|v| self.events(v, &defaults, &entities))
            .unwrap_or_default();
        Some(Catalog {
            name: name.unwrap_or_default(),
            description,
            entities,
            defaults,
            events,
            source: Arc::clone(&self.r.source),
        })
    }

    fn catalog_section(&mut self, v: &Value<'_>) -> (Option<String>, Option<String>) {
        let Some(t) = self.table(v, "[catalog]") else {
            return (None, None);
        };
        self.unknown_keys(t, CATALOG_KEYS, "[catalog]");
        let name = match t.get("name") {
            Some(n) => self.string(n, "`name`"),
            None => {
                self.r.error(
                    ErrorKind::MissingKey,
                    v.span(),
                    "[catalog] has no `name`",
                    Some("add `name = \"...\"`".into()),
                );
                None
            }
        };
        let description = t
            .get("description")
            .and_then(|d| self.string(d, "`description`"));
        (name, description)
    }

    fn entities(&mut self, v: &Value<'_>) -> Vec<Entity> {
        let Some(t) = self.table(v, "[entities]") else {
            return Vec::new();
        };
        t.iter()
            .filter_map(|(k, v)| {
                let named = self.name(k, "entity name");
                let code = self.code(v, &format!("the code of entity `{}`", k.get_ref()))?;
                named.then(|| Entity {
                    name: k.get_ref().to_string(),
                    code,
                    span: k.span(),
                })
            })
            .collect()
    }

    fn level(&mut self, v: &Value<'_>) -> Option<Level> {
        let s = self.string(v, "`level`")?;
        let level = Level::parse(&s);
        if level.is_none() {
            self.r.error(
                ErrorKind::InvalidValue,
                v.span(),
                format!("unknown level `{s}`"),
                did_you_mean(&s, ["info", "warn", "error"])
                    .or_else(|| Some("use one of `info`, `warn`, `error`".into())),
            );
        }
        level
    }

    fn durability(&mut self, v: &Value<'_>) -> Option<Durability> {
        let s = self.string(v, "`durability`")?;
        let d = Durability::parse(&s);
        if d.is_none() {
            self.r.error(
                ErrorKind::InvalidValue,
                v.span(),
                format!("unknown durability `{s}`"),
                Some("use `async` (queue and return) or `sync` (return after commit)".into()),
            );
        }
        d
    }

    fn defaults(&mut self, v: &Value<'_>) -> Defaults {
        let Some(t) = self.table(v, "[defaults]") else {
            return Defaults::default();
        };
        self.unknown_keys(t, DEFAULTS_KEYS, "[defaults]");
        Defaults {
            redact: t
                .get("redact")
                .map(|r| self.strings(r, "`redact`"))
                .unwrap_or_default()
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            level: t
                .get("level")
                .and_then(|l| self.level(l))
                .unwrap_or_default(),
            durability: t
                .get("durability")
                .and_then(|d| self.durability(d))
                .unwrap_or_default(),
        }
    }

    fn events(&mut self, v: &Value<'_>, defaults: &Defaults, entities: &[Entity]) -> Vec<Event> {
        let Some(t) = self.table(v, "[events]") else {
            return Vec::new();
        };
        t.iter()
            .filter_map(|(k, v)| self.event(k, v, defaults, entities))
            .collect()
    }

    fn event(
        &mut self,
        key: &Spanned<toml::de::DeString<'_>>,
        v: &Value<'_>,
        defaults: &Defaults,
        entities: &[Entity],
    ) -> Option<Event> {
        let name: &str = key.get_ref();
        let named = self.name(key, "event name");
        let context = format!("[events.{name}]");
        let t = self.table(v, &context)?;
        self.unknown_keys(t, EVENT_KEYS, &context);

        let code_v = t.get("code");
        let code = match code_v {
            Some(c) => self.code(c, &format!("the code of event `{name}`")),
            None => {
                self.r.error(
                    ErrorKind::MissingKey,
                    key.span(),
                    format!("event `{name}` has no `code`"),
                    Some("add `code = N` with the next unused number".into()),
                );
                None
            }
        };
        let text = |w: &mut Self, k: &str| t.get(k).and_then(|x| w.string(x, &format!("`{k}`")));
        let title = text(self, "title");
        let entity = text(self, "entity");
        self.check_entity(t, name, entity.as_deref(), key.span(), entities);
        let category = match t.get("category") {
            Some(c) => {
                let s = self.string(c, "`category`");
                if let Some(s) = &s
                    && !is_snake_case(s)
                {
                    self.r.error(
                        ErrorKind::InvalidName,
                        c.span(),
                        format!("category `{s}` is not a snake_case identifier"),
                        None,
                    );
                }
                s
            }
            None => None,
        }
        .or_else(|| entity.clone())
        .unwrap_or_else(|| name.split('_').next().unwrap_or(name).to_owned());

        let own_redact: Vec<Spanned<String>> = t
            .get("redact")
            .map(|r| self.strings(r, "`redact`"))
            .unwrap_or_default();
        let mut redact: Vec<String> = defaults.redact.clone();
        redact.extend(own_redact.iter().map(|s| s.get_ref().clone()));
        redact.dedup();

        let fields = t
            .get("fields")
            .map(|f| self.fields(f, name, &redact))
            .unwrap_or_default();
        for r in &own_redact {
            // A pattern may match no field (it also applies to nested JSON keys and
            // entity changes); a plain name must be a field's.
            if !crate::redact::is_pattern(r.get_ref())
                && !fields.iter().any(|f| &f.name == r.get_ref())
            {
                let names = fields.iter().map(|f| f.name.as_str());
                self.r.error(
                    ErrorKind::UnknownRedactKey,
                    r.span(),
                    format!(
                        "`redact` names `{}`, which is no field of `{name}`",
                        r.get_ref()
                    ),
                    did_you_mean(r.get_ref(), names),
                );
            }
        }

        let description = t.get("description").and_then(|d| {
            self.template(
                d,
                Syntax::Percent,
                &fields,
                &[],
                &format!("the description of `{name}`"),
            )
        });
        // The failure sentence may also quote the failure's error text.
        let failure = t.get("failure").and_then(|d| {
            self.template(
                d,
                Syntax::Percent,
                &fields,
                &[FAILURE_ERROR],
                &format!("the failure text of `{name}`"),
            )
        });
        let aliases = t
            .get("aliases")
            .map(|a| self.aliases(a, name, &fields))
            .unwrap_or_default();
        let level = t
            .get("level")
            .and_then(|l| self.level(l))
            .unwrap_or(defaults.level);
        let durability = t
            .get("durability")
            .and_then(|d| self.durability(d))
            .unwrap_or(defaults.durability);
        let changes = t
            .get("changes")
            .and_then(|c| self.boolean(c, "`changes`"))
            .unwrap_or(false);
        let retired = t
            .get("retired")
            .and_then(|c| self.boolean(c, "`retired`"))
            .unwrap_or(false);
        let reverts = t
            .get("reverts")
            .and_then(|c| self.boolean(c, "`reverts`"))
            .unwrap_or(false);
        let summary = t
            .get("summary")
            .and_then(|c| self.boolean(c, "`summary`"))
            .unwrap_or(false);

        let code = code?;
        named.then(|| Event {
            name: name.to_owned(),
            code,
            title,
            category,
            level,
            entity,
            description,
            failure,
            fields,
            aliases,
            changes,
            durability,
            redact,
            retired,
            reverts,
            summary,
            span: key.span(),
            code_span: code_v.map(|c| c.span()).unwrap_or(key.span()),
        })
    }

    fn check_entity(
        &mut self,
        t: &DeTable<'_>,
        event: &str,
        entity: Option<&str>,
        event_span: Range<usize>,
        entities: &[Entity],
    ) {
        // Keys that describe an entity's records, with why they need one.
        const NEEDS_ENTITY: &[(&str, &str)] = &[
            (
                "changes",
                "previous / current / difference describe an entity",
            ),
            ("reverts", "a revert undoes a change of an entity"),
            ("summary", "a summary counts the entities of a bulk call"),
        ];
        match entity {
            Some(entity) if !entities.iter().any(|e| e.name == entity) => {
                let help = did_you_mean(entity, entities.iter().map(|e| e.name.as_str()))
                    .unwrap_or_else(|| format!("declare it in [entities]: `{entity} = N`"));
                self.r.error(
                    ErrorKind::UnknownEntity,
                    t.get("entity").map(|v| v.span()).unwrap_or(event_span),
                    format!("event `{event}` names entity `{entity}`, which is not in [entities]"),
                    Some(help),
                );
            }
            None => {
                for (key, why) in NEEDS_ENTITY {
                    if let Some(v) = t.get(*key)
                        && matches!(v.get_ref(), DeValue::Boolean(true))
                    {
                        self.r.error(
                            ErrorKind::ChangesWithoutEntity,
                            v.span(),
                            format!("event `{event}` has `{key} = true` but no `entity`"),
                            Some(format!("{why}: add `entity = \"...\"`")),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn fields(&mut self, v: &Value<'_>, event: &str, redact: &[String]) -> Vec<Field> {
        let Some(t) = self.table(v, &format!("the fields of `{event}`")) else {
            return Vec::new();
        };
        t.iter()
            .filter_map(|(k, v)| {
                let named = self.name(k, "field name");
                let (ty_v, doc, example, indexed) = match v.get_ref() {
                    DeValue::String(_) => (v, None, None, None),
                    DeValue::Table(ft) => {
                        let ctx = format!("field `{}` of `{event}`", k.get_ref());
                        self.unknown_keys(ft, FIELD_KEYS, &ctx);
                        let Some(ty) = ft.get("type") else {
                            self.r.error(
                                ErrorKind::MissingKey,
                                k.span(),
                                format!("{ctx} has no `type`"),
                                Some("add `type = \"string\"` (or another field type)".into()),
                            );
                            return None;
                        };
                        let doc = ft.get("doc").and_then(|d| self.string(d, "`doc`"));
                        let example = ft.get("example").map(|e| to_json(e.get_ref()));
                        let indexed = ft
                            .get("indexed")
                            .and_then(|i| self.boolean(i, "`indexed`").filter(|b| *b).map(|_| i));
                        (ty, doc, example, indexed)
                    }
                    _ => {
                        self.wrong_type(
                            v,
                            &format!("field `{}`", k.get_ref()),
                            "a type string such as \"string\", or a table with `type`",
                        );
                        return None;
                    }
                };
                // A field with a bad name or type is kept (the catalog is rejected
                // anyway) so that templates naming it do not report it as unknown.
                let _ = named;
                let ty = self
                    .field_type(ty_v)
                    .unwrap_or(FieldType::Scalar(crate::field_type::Scalar::Json));
                let name = k.get_ref().to_string();
                // A query filter compares one plain value.
                if let Some(i) = indexed
                    && !ty.is_indexable()
                {
                    self.r.error(
                        ErrorKind::InvalidValue,
                        i.span(),
                        format!(
                            "field `{name}` of `{event}` is `{ty}`: only string, int, uint and \
                             bool fields (or optional ones) can be `indexed`"
                        ),
                        None,
                    );
                }
                Some(Field {
                    redact: crate::redact::is_redacted(redact, &name),
                    indexed: indexed.is_some(),
                    name,
                    ty,
                    doc,
                    example,
                    span: k.span(),
                })
            })
            .collect()
    }

    fn field_type(&mut self, v: &Value<'_>) -> Option<FieldType> {
        let s = self.string(v, "a field type")?;
        match s.parse::<FieldType>() {
            Ok(t) => Some(t),
            Err(e) => {
                let base = e.unknown.trim_matches(['[', ']', '?', ' ']);
                let help = did_you_mean(
                    base,
                    crate::field_type::Scalar::ALL.iter().map(|t| t.name()),
                )
                .unwrap_or_else(|| {
                    "field types are string, int, uint, float, bool, timestamp, json; \
                     `T?` makes one optional and `[T]` a list"
                        .to_owned()
                });
                self.r.error(
                    ErrorKind::UnknownFieldType,
                    v.span(),
                    format!("unknown field type `{s}`"),
                    Some(help),
                );
                None
            }
        }
    }

    /// A template whose placeholders name `fields` (or one of `also`).
    fn template(
        &mut self,
        v: &Value<'_>,
        syntax: Syntax,
        fields: &[Field],
        also: &[&str],
        what: &str,
    ) -> Option<Template> {
        let text = self.string(v, what)?;
        // Offsets inside the template map to the file when the string is written
        // without escapes (the usual case); otherwise point at the whole string.
        let source = Arc::clone(&self.r.source);
        let raw = source.slice(v.span());
        let found = raw.find(text.as_str());
        let inner_start = v.span().start + found.unwrap_or(0);
        let locate = |at: Range<usize>| {
            if found.is_some() {
                inner_start + at.start..inner_start + at.end
            } else {
                v.span()
            }
        };
        let template = match Template::parse(&text, syntax) {
            Ok(t) => t,
            Err(e) => {
                self.r.error(
                    ErrorKind::InvalidValue,
                    locate(e.at),
                    format!("{what}: {}", e.message),
                    None,
                );
                return None;
            }
        };
        for piece in template.pieces() {
            if let crate::template::Piece::Field { name, at } = piece
                && !fields.iter().any(|f| &f.name == name)
                && !also.contains(&name.as_str())
            {
                let known = fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .chain(also.iter().copied());
                let help = did_you_mean(name, known).unwrap_or_else(|| {
                    if fields.is_empty() && also.is_empty() {
                        "the event declares no fields; add one to `fields`".to_owned()
                    } else {
                        format!(
                            "its fields are: {}",
                            fields
                                .iter()
                                .map(|f| f.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                });
                self.r.error(
                    ErrorKind::UnknownPlaceholder,
                    locate(at.clone()),
                    format!(
                        "{what} uses `{name}`, which is not a field of the event{}",
                        if also.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " (nor {})",
                                also.iter()
                                    .map(|a| format!("`{a}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    ),
                    Some(help),
                );
            }
        }
        Some(template)
    }

    fn aliases(&mut self, v: &Value<'_>, event: &str, fields: &[Field]) -> Vec<Alias> {
        let Some(t) = self.table(v, &format!("the aliases of `{event}`")) else {
            return Vec::new();
        };
        t.iter()
            .filter_map(|(k, v)| {
                let named = self.name(k, "alias set");
                let what = format!("alias `{}` of `{event}`", k.get_ref());
                let template = self.template(v, Syntax::Brace, fields, &[], &what)?;
                named.then(|| Alias {
                    sink: k.get_ref().to_string(),
                    template,
                })
            })
            .collect()
    }
}

fn to_json(v: &DeValue<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        DeValue::String(s) => J::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .map(J::from)
            .unwrap_or_else(|_| J::String(i.as_str().to_owned())),
        DeValue::Float(f) => f
            .as_str()
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(J::Number)
            .unwrap_or(J::Null),
        DeValue::Boolean(b) => J::Bool(*b),
        DeValue::Datetime(d) => J::String(d.to_string()),
        DeValue::Array(a) => J::Array(a.iter().map(|x| to_json(x.get_ref())).collect()),
        DeValue::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.get_ref().to_string(), to_json(v.get_ref())))
                .collect(),
        ),
    }
}

/// Parses the text of `source` into a catalog, reporting every syntax and schema
/// error into `r`. Cross-event rules are checked by `validate`.
pub(crate) fn parse(r: &mut Reporter) -> Option<Catalog> {
    let source = Arc::clone(&r.source);
    let (root, errors) = DeTable::parse_recoverable(source.text());
    for e in &errors {
        let span = e.span().unwrap_or(0..0);
        r.error(ErrorKind::Syntax, span, e.message().trim().to_owned(), None);
    }
    if !errors.is_empty() {
        // A tree recovered from broken TOML would only add confusing follow-up errors.
        return None;
    }
    let root = Spanned::new(root.span(), DeValue::Table(root.into_inner()));
    Walker { r }.catalog(&root)
}
