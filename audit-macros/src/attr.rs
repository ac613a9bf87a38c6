//! Parsing `#[audited(...)]` arguments. Syntax errors carry the span of the bad token;
//! repeated keys are reported (all of them, not only the first).

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Path, Token};

mod kw {
    syn::custom_keyword!(event);
    syn::custom_keyword!(meta);
    syn::custom_keyword!(on);
    syn::custom_keyword!(actor);
    syn::custom_keyword!(tenant);
    syn::custom_keyword!(entity);
    syn::custom_keyword!(durability);
    syn::custom_keyword!(op);
    syn::custom_keyword!(emit_unchanged);
}

/// What happens to the entity (`op = "..."`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Update,
    Create,
    Delete,
}

/// One `name = expr` inside `meta(...)`.
pub struct MetaField {
    pub name: Ident,
    pub expr: Expr,
}

impl MetaField {
    /// Whether the expression names the return value.
    pub fn uses_ret(&self) -> bool {
        fn walk(ts: TokenStream) -> bool {
            ts.into_iter().any(|t| match t {
                TokenTree::Ident(i) => i == "ret",
                TokenTree::Group(g) => walk(g.stream()),
                _ => false,
            })
        }
        walk(quote::ToTokens::to_token_stream(&self.expr))
    }
}

impl Parse for MetaField {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        // `type`, `match`... are valid catalog field names: accept any identifier.
        let name = Ident::parse_any(input)?;
        input.parse::<Token![=]>()?;
        let expr = input.parse()?;
        Ok(MetaField { name, expr })
    }
}

/// When a call emits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum On {
    Always,
    Success,
    Failure,
}

/// The parsed arguments.
pub struct Args {
    pub event: Option<LitStr>,
    pub meta: Option<(Span, Vec<MetaField>)>,
    pub on: On,
    pub actor: Option<Expr>,
    pub tenant: Option<Expr>,
    pub entity: Option<(Span, Expr)>,
    pub krate: Option<Path>,
    /// `durability = "sync" | "async"`: overrides the catalog for this site.
    pub durability: Option<audit_catalog::Durability>,
    /// `op = "update" | "create" | "delete"`; `entity = ret` implies create.
    pub op: Option<(Span, Op)>,
    /// `emit_unchanged = false`: an update that changed nothing emits nothing.
    pub emit_unchanged: bool,
    /// Errors found while parsing that do not stop parsing (repeated keys).
    pub errors: Vec<syn::Error>,
}

const KEYS: &[&str] = &[
    "event",
    "meta",
    "on",
    "actor",
    "tenant",
    "entity",
    "durability",
    "op",
    "emit_unchanged",
    "crate",
];

fn set<T>(slot: &mut Option<T>, value: T, span: Span, key: &str, errors: &mut Vec<syn::Error>) {
    if slot.is_some() {
        errors.push(syn::Error::new(span, format!("`{key}` is given twice")));
    } else {
        *slot = Some(value);
    }
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args {
            event: None,
            meta: None,
            on: On::Always,
            actor: None,
            tenant: None,
            entity: None,
            krate: None,
            durability: None,
            op: None,
            emit_unchanged: true,
            errors: Vec::new(),
        };
        let mut on: Option<On> = None;
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::event) {
                let k = input.parse::<kw::event>()?;
                input.parse::<Token![=]>()?;
                let lit: LitStr = input.parse()?;
                set(&mut args.event, lit, k.span, "event", &mut args.errors);
            } else if lookahead.peek(kw::meta) {
                let k = input.parse::<kw::meta>()?;
                let content;
                syn::parenthesized!(content in input);
                let fields: Punctuated<MetaField, Token![,]> =
                    content.parse_terminated(MetaField::parse, Token![,])?;
                set(
                    &mut args.meta,
                    (k.span, fields.into_iter().collect()),
                    k.span,
                    "meta",
                    &mut args.errors,
                );
            } else if lookahead.peek(kw::on) {
                let k = input.parse::<kw::on>()?;
                input.parse::<Token![=]>()?;
                let lit: LitStr = input.parse()?;
                let value = match lit.value().as_str() {
                    "always" => On::Always,
                    "success" => On::Success,
                    "failure" => On::Failure,
                    other => {
                        return Err(syn::Error::new(
                            lit.span(),
                            format!(
                                "unknown `on` value `{other}`: use \"always\", \"success\" or \"failure\""
                            ),
                        ));
                    }
                };
                set(&mut on, value, k.span, "on", &mut args.errors);
            } else if lookahead.peek(kw::actor) {
                let k = input.parse::<kw::actor>()?;
                input.parse::<Token![=]>()?;
                let e = input.parse()?;
                set(&mut args.actor, e, k.span, "actor", &mut args.errors);
            } else if lookahead.peek(kw::tenant) {
                let k = input.parse::<kw::tenant>()?;
                input.parse::<Token![=]>()?;
                let e = input.parse()?;
                set(&mut args.tenant, e, k.span, "tenant", &mut args.errors);
            } else if lookahead.peek(kw::entity) {
                let k = input.parse::<kw::entity>()?;
                input.parse::<Token![=]>()?;
                let e = input.parse()?;
                set(
                    &mut args.entity,
                    (k.span, e),
                    k.span,
                    "entity",
                    &mut args.errors,
                );
            } else if lookahead.peek(kw::durability) {
                let k = input.parse::<kw::durability>()?;
                input.parse::<Token![=]>()?;
                let lit: LitStr = input.parse()?;
                let Some(d) = audit_catalog::Durability::parse(&lit.value()) else {
                    return Err(syn::Error::new(
                        lit.span(),
                        format!(
                            "unknown durability `{}`: use \"async\" or \"sync\"",
                            lit.value()
                        ),
                    ));
                };
                set(
                    &mut args.durability,
                    d,
                    k.span,
                    "durability",
                    &mut args.errors,
                );
            } else if lookahead.peek(kw::op) {
                let k = input.parse::<kw::op>()?;
                input.parse::<Token![=]>()?;
                let lit: LitStr = input.parse()?;
                let op = match lit.value().as_str() {
                    "update" => Op::Update,
                    "create" => Op::Create,
                    "delete" => Op::Delete,
                    other => {
                        return Err(syn::Error::new(
                            lit.span(),
                            format!(
                                "unknown op `{other}`: use \"update\", \"create\" or \"delete\""
                            ),
                        ));
                    }
                };
                set(&mut args.op, (k.span, op), k.span, "op", &mut args.errors);
            } else if lookahead.peek(kw::emit_unchanged) {
                input.parse::<kw::emit_unchanged>()?;
                input.parse::<Token![=]>()?;
                let b: syn::LitBool = input.parse()?;
                args.emit_unchanged = b.value;
            } else if lookahead.peek(Token![crate]) {
                let k = input.parse::<Token![crate]>()?;
                input.parse::<Token![=]>()?;
                let p = Path::parse_mod_style(input)?;
                set(&mut args.krate, p, k.span, "crate", &mut args.errors);
            } else if input.peek(Ident::peek_any) {
                let unknown = Ident::parse_any(input)?;
                let name = unknown.to_string();
                let hint = audit_catalog::format_suggestions(&audit_catalog::suggest(
                    &name,
                    KEYS.iter().copied(),
                ))
                .unwrap_or_else(|| format!("the keys are: {}", KEYS.join(", ")));
                return Err(syn::Error::new(
                    unknown.span(),
                    format!("unknown #[audited] argument `{name}`; {hint}"),
                ));
            } else {
                return Err(lookahead.error());
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        args.on = on.unwrap_or(On::Always);
        Ok(args)
    }
}

impl Args {
    /// The entity operation: `op`, else create for `entity = ret`, else update.
    pub fn entity_op(&self) -> Op {
        if let Some((_, op)) = self.op {
            return op;
        }
        match &self.entity {
            Some((_, syn::Expr::Path(p))) if p.path.is_ident("ret") => Op::Create,
            _ => Op::Update,
        }
    }
}
