//! The rules a site must follow against its catalog. Every violation is collected,
//! then combined into one `syn::Error`.

use audit_catalog::{Catalog, Event};
use proc_macro2::Span;

use crate::attr::{Args, MetaField};
use crate::catalog::Loaded;

/// A site that passed every check: its event, and for each catalog field in order the
/// `meta(...)` entry that fills it (absent only for optional fields).
pub struct Checked<'a> {
    pub event: &'a Event,
    pub fields: Vec<(&'a audit_catalog::Field, Option<&'a MetaField>)>,
}

/// Accumulates errors, `serde_derive`'s `Ctxt`-style.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub fn error(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }

    pub fn into_result(self) -> Result<(), syn::Error> {
        self.0.map_or(Ok(()), Err)
    }
}

fn at(cat: &Catalog, loaded: &Loaded, offset: usize) -> String {
    format!("{}:{}", loaded.shown, cat.position(offset))
}

/// Checks a site against the catalog: the event exists and may be emitted here, the
/// entity options fit it, and `meta(...)` gives each required field once and nothing
/// else. Every error found is added to `errors`.
pub fn check<'a>(args: &'a Args, loaded: &'a Loaded, errors: &mut Errors) -> Option<Checked<'a>> {
    let Some(lit) = &args.event else {
        errors.error(
            Span::call_site(),
            "#[audited] needs the event it emits: #[audited(event = \"name\")]",
        );
        return None;
    };
    let event = find_event(lit, loaded, errors)?;
    check_entity(event, lit, args, loaded, errors);
    check_reverts(event, lit, args, loaded, errors);
    let given: &[MetaField] = args.meta.as_ref().map_or(&[], |(_, f)| f.as_slice());
    let named = check_fields(event, given, errors);
    check_required(event, &named, lit, args, loaded, errors);
    let fields = event
        .fields
        .iter()
        .map(|f| (f, given.iter().find(|m| field_key(m) == f.name)))
        .collect();
    Some(Checked { event, fields })
}

/// A `meta(...)` key as a field name (`r#type` names `type`).
fn field_key(m: &MetaField) -> String {
    let key = m.name.to_string();
    key.strip_prefix("r#").map(str::to_owned).unwrap_or(key)
}

/// The event the attribute names: known, and not retired.
fn find_event<'a>(lit: &syn::LitStr, loaded: &'a Loaded, errors: &mut Errors) -> Option<&'a Event> {
    let cat = &*loaded.catalog;
    let name = lit.value();
    let Some(event) = cat.event(&name) else {
        let names = cat.live_events().map(|e| e.name.as_str());
        errors.push(loaded.unknown(lit.span(), ("audit event", "event"), &name, "", names));
        return None;
    };
    if event.retired {
        errors.error(
            lit.span(),
            format!(
                "audit event `{name}` is retired ({}): its code stays reserved but nothing may emit it",
                at(cat, loaded, event.span.start)
            ),
        );
    }
    Some(event)
}

/// `entity = ...` where the event records changes (a diff) or names a catalog entity
/// (a reference: its id only); `entity_id = ...` for a reference by id; `op` only
/// with changes.
fn check_entity(
    event: &Event,
    lit: &syn::LitStr,
    args: &Args,
    loaded: &Loaded,
    errors: &mut Errors,
) {
    let (cat, name) = (&*loaded.catalog, &event.name);
    let declared = at(cat, loaded, event.span.start);
    if event.changes && args.entity.is_none() && args.each.is_none() {
        errors.error(
            args.entity_id.as_ref().map_or(lit.span(), |(s, _)| *s),
            format!(
                "audit event `{name}` records the changes of its `{}` entity (`changes = true` at \
                 {declared}): add `entity = <the entity>` (or `each = <the entities>`) to #[audited]",
                event.entity.as_deref().unwrap_or("?"),
            ),
        );
    }
    let reference = args
        .entity
        .as_ref()
        .or(args.entity_id.as_ref())
        .or(args.each.as_ref());
    if let Some((span, _)) = reference
        && event.entity.is_none()
    {
        errors.error(
            *span,
            format!(
                "audit event `{name}` names no entity: add `entity = \"<type>\"` to it in the \
                 catalog ({declared})"
            ),
        );
    }
    if let (Some(_), Some((span, _))) = (&args.entity, &args.entity_id) {
        errors.error(
            *span,
            "give `entity = <the entity>` or `entity_id = <its id>`, not both",
        );
    }
    if let Some((span, _)) = &args.each
        && (args.entity.is_some() || args.entity_id.is_some())
    {
        errors.error(
            *span,
            "`each = ...` names the entities of a bulk call: give it or `entity = ...` / \
             `entity_id = ...`, not both",
        );
    }
    if let Some((span, _)) = &args.op {
        if args.entity.is_none() && args.each.is_none() {
            errors.error(
                *span,
                "`op = ...` applies to an entity: add `entity = <the entity>`",
            );
        } else if !event.changes {
            errors.error(
                *span,
                format!(
                    "`op = ...` applies to events that record changes; `{name}` only names its \
                     entity (set `changes = true` on it in the catalog, {declared})"
                ),
            );
        }
    }
}

/// `reverts = ...` exactly on the sites of events the catalog marks `reverts = true`.
fn check_reverts(
    event: &Event,
    lit: &syn::LitStr,
    args: &Args,
    loaded: &Loaded,
    errors: &mut Errors,
) {
    let (name, declared) = (&event.name, at(&loaded.catalog, loaded, event.span.start));
    match (&args.reverts, event.reverts) {
        (Some((span, _)), false) => errors.error(
            *span,
            format!(
                "audit event `{name}` does not revert records: mark it `reverts = true` in the \
                 catalog ({declared}), or emit the revert event instead"
            ),
        ),
        (None, true) => errors.error(
            lit.span(),
            format!(
                "audit event `{name}` reverts an earlier record (`reverts = true` at {declared}): \
                 add `reverts = <the record, or its id>` to #[audited]"
            ),
        ),
        _ => {}
    }
}

/// Each `meta(...)` key names a field of the event, once. Returns the keys given.
fn check_fields(event: &Event, given: &[MetaField], errors: &mut Errors) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for m in given {
        let key = field_key(m);
        if seen.contains(&key) {
            errors.error(
                m.name.span(),
                format!("field `{key}` is given twice in `meta(...)`"),
            );
            continue;
        }
        if event.field(&key).is_none() {
            let names = event.fields.iter().map(|f| f.name.as_str());
            let hint = audit_catalog::format_suggestions(&audit_catalog::suggest(&key, names))
                .or_else(|| {
                    let all: Vec<&str> = event.fields.iter().map(|f| f.name.as_str()).collect();
                    (!all.is_empty()).then(|| format!("its fields are: {}", all.join(", ")))
                })
                .unwrap_or_else(|| "it declares no fields".into());
            errors.error(
                m.name.span(),
                format!("audit event `{}` has no field `{key}`; {hint}", event.name),
            );
        }
        seen.push(key);
    }
    seen
}

/// Every required field is given, else one error listing the missing ones.
fn check_required(
    event: &Event,
    named: &[String],
    lit: &syn::LitStr,
    args: &Args,
    loaded: &Loaded,
    errors: &mut Errors,
) {
    let missing: Vec<_> = event
        .fields
        .iter()
        .filter(|f| f.ty.is_required() && !named.contains(&f.name))
        .collect();
    if missing.is_empty() {
        return;
    }
    let span = args.meta.as_ref().map_or(lit.span(), |(s, _)| *s);
    let list = missing
        .iter()
        .map(|f| {
            format!(
                "`{}` ({}, declared at {})",
                f.name,
                f.ty,
                at(&loaded.catalog, loaded, f.span.start)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let example = missing
        .iter()
        .map(|f| format!("{} = ...", f.name))
        .collect::<Vec<_>>()
        .join(", ");
    errors.error(
        span,
        format!(
            "audit event `{}` requires {} {list}\n\n= help: add `meta({example})`",
            event.name,
            if missing.len() == 1 {
                "field"
            } else {
                "fields"
            }
        ),
    );
}
