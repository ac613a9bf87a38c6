//! Parsing `#[audited(...)]` arguments. Syntax errors carry the span of the bad token;
//! repeated keys are reported (all of them, not only the first).

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Path, Token};

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
    /// `entity_id = expr`: the id of the event's catalog entity, without a snapshot.
    pub entity_id: Option<(Span, Expr)>,
    /// `each = expr`: the many entities of a bulk call (`.iter()` yields each).
    pub each: Option<(Span, Expr)>,
    /// `reverts = expr`: the record (or its id) whose change the call reverts.
    pub reverts: Option<(Span, Expr)>,
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
    "entity_id",
    "each",
    "reverts",
    "durability",
    "op",
    "emit_unchanged",
    "crate",
];

impl Parse for Args {
    /// `key = value, ...` (and `meta(...)`): each key is read, checked once against
    /// the keys already given, then its value is parsed by [`Args::value`].
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args {
            event: None,
            meta: None,
            on: On::Always,
            actor: None,
            tenant: None,
            entity: None,
            entity_id: None,
            each: None,
            reverts: None,
            krate: None,
            durability: None,
            op: None,
            emit_unchanged: true,
            errors: Vec::new(),
        };
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            if !input.peek(Ident::peek_any) {
                return Err(
                    input.error("expected an #[audited] argument, such as `event = \"...\"`")
                );
            }
            let key = Ident::parse_any(input)?;
            let name = key.to_string();
            if !KEYS.contains(&name.as_str()) {
                return Err(unknown_key(&key));
            }
            // A repeated key is reported, and the value parsed anyway (more errors
            // are found in one build).
            let repeated = seen.contains(&name);
            if repeated {
                args.errors.push(syn::Error::new(
                    key.span(),
                    format!("`{name}` is given twice"),
                ));
            }
            seen.push(name.clone());
            args.value(&name, key.span(), input, repeated)?;
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

/// `unknown #[audited] argument`, with the closest key.
fn unknown_key(key: &Ident) -> syn::Error {
    let name = key.to_string();
    let hint =
        audit_catalog::format_suggestions(&audit_catalog::suggest(&name, KEYS.iter().copied()))
            .unwrap_or_else(|| format!("the keys are: {}", KEYS.join(", ")));
    syn::Error::new(
        key.span(),
        format!("unknown #[audited] argument `{name}`; {hint}"),
    )
}

/// One of the string values a key takes, or an error listing them.
fn choice<T: Copy>(input: ParseStream, what: &str, options: &[(&str, T)]) -> syn::Result<T> {
    let lit: LitStr = input.parse()?;
    let value = lit.value();
    options
        .iter()
        .find(|(text, _)| *text == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<String> = options.iter().map(|(t, _)| format!("\"{t}\"")).collect();
            let listed = match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => names.concat(),
            };
            syn::Error::new(
                lit.span(),
                format!("unknown {what} `{value}`: use {listed}"),
            )
        })
}

impl Args {
    /// Parses the value of `key` (after its `=`, or its parenthesized list for
    /// `meta`) into its slot; a repeated key keeps its first value.
    fn value(
        &mut self,
        key: &str,
        span: Span,
        input: ParseStream,
        repeated: bool,
    ) -> syn::Result<()> {
        if key == "meta" {
            let content;
            syn::parenthesized!(content in input);
            let fields: Punctuated<MetaField, Token![,]> =
                content.parse_terminated(MetaField::parse, Token![,])?;
            if !repeated {
                self.meta = Some((span, fields.into_iter().collect()));
            }
            return Ok(());
        }
        input.parse::<Token![=]>()?;
        match key {
            "event" => {
                let lit: LitStr = input.parse()?;
                self.event.get_or_insert(lit);
            }
            "on" => {
                let on = choice(
                    input,
                    "`on` value",
                    &[
                        ("always", On::Always),
                        ("success", On::Success),
                        ("failure", On::Failure),
                    ],
                )?;
                if !repeated {
                    self.on = on;
                }
            }
            "actor" => {
                let e = input.parse()?;
                self.actor.get_or_insert(e);
            }
            "tenant" => {
                let e = input.parse()?;
                self.tenant.get_or_insert(e);
            }
            "entity" => {
                let e = input.parse()?;
                self.entity.get_or_insert((span, e));
            }
            "entity_id" => {
                let e = input.parse()?;
                self.entity_id.get_or_insert((span, e));
            }
            "each" => {
                let e = input.parse()?;
                self.each.get_or_insert((span, e));
            }
            "reverts" => {
                let e = input.parse()?;
                self.reverts.get_or_insert((span, e));
            }
            "durability" => {
                let d = choice(
                    input,
                    "durability",
                    &[
                        ("async", audit_catalog::Durability::Async),
                        ("sync", audit_catalog::Durability::Sync),
                    ],
                )?;
                self.durability.get_or_insert(d);
            }
            "op" => {
                let op = choice(
                    input,
                    "op",
                    &[
                        ("update", Op::Update),
                        ("create", Op::Create),
                        ("delete", Op::Delete),
                    ],
                )?;
                self.op.get_or_insert((span, op));
            }
            "emit_unchanged" => {
                let b: syn::LitBool = input.parse()?;
                if !repeated {
                    self.emit_unchanged = b.value;
                }
            }
            "crate" => {
                let p = Path::parse_mod_style(input)?;
                self.krate.get_or_insert(p);
            }
            _ => unreachable!("every key of KEYS has a parser"),
        }
        Ok(())
    }

    /// The entity operation: `op`, else create for `entity = ret` (or `each =
    /// ret`), else update.
    pub fn entity_op(&self) -> Op {
        if let Some((_, op)) = self.op {
            return op;
        }
        match self.entity.as_ref().or(self.each.as_ref()) {
            Some((_, syn::Expr::Path(p))) if p.path.is_ident("ret") => Op::Create,
            _ => Op::Update,
        }
    }
}
