//! Code generation for a checked `#[audited]` site.
//!
//! The generated function takes the clock and the context at entry, evaluates each
//! `meta(...)` expression that does not name `ret` (so it sees the arguments as they
//! were at entry) into a `Pending` guard (the runtime's `__private` module), runs the original body as a
//! closure or `async` block under a panic guard (so `return` and `?` end the body, not
//! the emission, and a panic or a dropped future still emits), then converts
//! `ret`-based fields, builds the event and hands it off.
//!
//! One step per function of `Gen`: the statics (`registry`, `spec`, `embed`), the
//! metadata (`metadata`, `convert`), the entity (`entity`), the body (`run`) and the
//! assembly (`body`, `finish`).

use audit_catalog::{FieldType, Level, Scalar};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType, Type};

use crate::attr::{Args, On, Op};
use crate::catalog::Loaded;
use crate::check::Checked;

/// How many metadata values an event holds inline: the size of the buffer of
/// `__private::fields_inline` (a mismatch does not compile).
const FIELDS_INLINE: usize = 4;

fn kind_tokens(k: &TokenStream, ty: &FieldType) -> TokenStream {
    match ty {
        FieldType::Scalar(s) => {
            let name = match s {
                Scalar::String => "Str",
                Scalar::Int => "Int",
                Scalar::Uint => "Uint",
                Scalar::Float => "Float",
                Scalar::Bool => "Bool",
                Scalar::Timestamp => "Timestamp",
                Scalar::Json => "Json",
            };
            let ident = format_ident!("{}", name);
            quote!(#k::__private::kind::#ident)
        }
        FieldType::Optional(t) => {
            let inner = kind_tokens(k, t);
            quote!(#k::__private::kind::Opt<#inner>)
        }
        FieldType::List(t) => {
            let inner = kind_tokens(k, t);
            quote!(#k::__private::kind::List<#inner>)
        }
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    fn walk(ts: TokenStream) -> bool {
        ts.into_iter().any(|t| match t {
            proc_macro2::TokenTree::Ident(i) => i == "impl",
            proc_macro2::TokenTree::Group(g) => walk(g.stream()),
            _ => false,
        })
    }
    walk(quote!(#ty))
}

/// `#[async_trait]` (which runs before `#[audited]` when placed on the impl) turns
/// `async fn f(..) -> R { body }` into `fn f(..) -> Pin<Box<dyn Future<Output = R> + ..>>
/// { Box::pin(async move { body' }) }`. Returns the async block, so the event is
/// emitted when that future completes rather than when it is created.
fn async_trait_body(item: &mut ItemFn) -> Option<&mut syn::ExprAsync> {
    if item.sig.asyncness.is_some() {
        return None;
    }
    let [syn::Stmt::Expr(syn::Expr::Call(call), None)] = item.block.stmts.as_mut_slice() else {
        return None;
    };
    let syn::Expr::Path(func) = &*call.func else {
        return None;
    };
    let segments: Vec<String> = func
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    if !segments.ends_with(&["Box".to_owned(), "pin".to_owned()]) || call.args.len() != 1 {
        return None;
    }
    match call.args.first_mut() {
        Some(syn::Expr::Async(block)) if block.capture.is_some() => Some(block),
        _ => None,
    }
}

/// The `Output = R` of a `Pin<Box<dyn Future<Output = R>>>` return type.
fn future_output(output: &ReturnType) -> Option<Type> {
    struct Find(Option<Type>);
    impl<'ast> syn::visit::Visit<'ast> for Find {
        fn visit_assoc_type(&mut self, a: &'ast syn::AssocType) {
            if a.ident == "Output" && self.0.is_none() {
                self.0 = Some(a.ty.clone());
            }
            syn::visit::visit_assoc_type(self, a);
        }
    }
    let mut f = Find(None);
    if let ReturnType::Type(_, ty) = output {
        syn::visit::Visit::visit_type(&mut f, ty);
    }
    f.0
}

/// The catalog type as an identifier part: `int`, `optional_string`, `list_of_int`.
fn type_word(ty: &FieldType) -> String {
    match ty {
        FieldType::Scalar(s) => s.name().to_owned(),
        FieldType::Optional(t) => format!("optional_{}", type_word(t)),
        FieldType::List(t) => format!("list_of_{}", type_word(t)),
    }
}

/// Whether the return type is `impl IntoResponse` (any path ending so).
fn returns_into_response(output: &ReturnType) -> bool {
    let ReturnType::Type(_, ty) = output else {
        return false;
    };
    let Type::ImplTrait(t) = &**ty else {
        return false;
    };
    t.bounds.iter().any(|b| match b {
        syn::TypeParamBound::Trait(t) => t
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "IntoResponse"),
        _ => false,
    })
}

fn escape_braces(s: &str) -> String {
    s.replace('{', "{{").replace('}', "}}")
}

/// Generates a checked site: the function with its body wrapped so that the event is
/// emitted whichever way the call ends.
pub fn expand(mut item: ItemFn, args: &Args, checked: &Checked, loaded: &Loaded) -> TokenStream {
    let mut g = Gen::new(args, checked, loaded);
    g.returns_into_response = returns_into_response(&item.sig.output);
    let function = item.sig.ident.to_string();
    let registry = g.registry(&function);
    let meta = g.metadata();
    let entity = g.entity();
    let run = g.run(&mut item, &entity.capture);
    let body = g.body(registry, meta, entity, run);
    // Emitted as tokens around the untouched signature: no re-parse of the output.
    match async_trait_body(&mut item) {
        Some(inner) => {
            let attrs = &inner.attrs;
            let fut = quote!(#(#attrs)* async move #body);
            item.block.stmts = vec![syn::Stmt::Expr(
                syn::Expr::Verbatim(quote!(::std::boxed::Box::pin(#fut))),
                None,
            )];
            quote!(#item)
        }
        None => {
            let ItemFn {
                attrs, vis, sig, ..
            } = &item;
            quote!(#(#attrs)* #vis #sig #body)
        }
    }
}

/// What the generated code of one site is made from.
struct Gen<'a> {
    /// The path of the facade crate (`::audit`, or `crate = ...`).
    k: TokenStream,
    /// The function is declared `-> impl IntoResponse` (axum).
    returns_into_response: bool,
    args: &'a Args,
    checked: &'a Checked<'a>,
    loaded: &'a Loaded,
}

/// The metadata values: statements at entry, fills from `ret` at exit, and the
/// expression of the whole set of values as taken at entry.
struct Metadata {
    at_entry: Vec<TokenStream>,
    at_exit: Vec<TokenStream>,
    fields: TokenStream,
}

/// The `#[derive(AuditEntity)]` part of a site (`entity = ...`).
struct Entity {
    /// Taken at entry (the clone before an update, the snapshot before a delete).
    entry: TokenStream,
    /// Binds `__audit_entity` at exit.
    exit: TokenStream,
    /// Turns an unchanged update into `On::Never` (`emit_unchanged = false`).
    unchanged_skip: Option<TokenStream>,
    /// `move` for the body, unless it must only borrow the entity it updates.
    capture: TokenStream,
    /// Hands the entity's id to the guard at entry, so that a panic or a
    /// cancellation still names the entity.
    refer: TokenStream,
    /// Hands the event to the guard: `finish` with `__audit_entity`, or
    /// `finish_each` with the parts of a bulk call's entities (`__audit_each`).
    finish: TokenStream,
}

impl<'a> Gen<'a> {
    fn new(args: &'a Args, checked: &'a Checked<'a>, loaded: &'a Loaded) -> Self {
        let k = args
            .krate
            .as_ref()
            .map(|p| quote!(#p))
            .unwrap_or_else(|| quote!(::audit));
        Gen {
            k,
            returns_into_response: false,
            args,
            checked,
            loaded,
        }
    }

    fn durability(&self) -> audit_catalog::Durability {
        self.args
            .durability
            .unwrap_or(self.checked.event.durability)
    }

    /// The statics of the site (its event's catalog entry, the site) and their
    /// registration, with the embedded catalog at the crate's first site.
    fn registry(&self, function: &str) -> TokenStream {
        let k = &self.k;
        let spec = self.spec();
        let embed = self.embed();
        quote! {
            #embed
            static __AUDIT_SPEC: #k::__private::EventSpec = #spec;
            static __AUDIT_SITE: #k::__private::Site = #k::__private::Site {
                spec: &__AUDIT_SPEC,
                module: ::core::module_path!(),
                file: ::core::file!(),
                line: ::core::line!(),
                function: #function,
            };
            #k::__private::inventory::submit! { #k::__private::SiteRef(&__AUDIT_SITE) }
        }
    }

    /// The event's catalog entry, as an `EventSpec` literal.
    fn spec(&self) -> TokenStream {
        let (k, cat, event) = (&self.k, &*self.loaded.catalog, self.checked.event);
        let some_or_none = |t: Option<TokenStream>| match t {
            Some(t) => quote!(::core::option::Option::Some(#t)),
            None => quote!(::core::option::Option::None),
        };
        let (name, code, category) = (&event.name, event.code, &event.category);
        let level = format_ident!(
            "{}",
            match event.level {
                Level::Info => "Info",
                Level::Warn => "Warn",
                Level::Error => "Error",
            }
        );
        let durability = format_ident!(
            "{}",
            match self.durability() {
                audit_catalog::Durability::Async => "Async",
                audit_catalog::Durability::Sync => "Sync",
            }
        );
        let entity = some_or_none(event.entity.as_ref().and_then(|e| cat.entity(e)).map(|e| {
            let (n, c) = (&e.name, e.code);
            quote!(#k::__private::EntitySpec { name: #n, code: #c })
        }));
        let description = some_or_none(event.description.as_ref().map(|d| {
            let d = d.as_str();
            quote!(#d)
        }));
        let failure = event.failure_text();
        let field_specs = event.fields.iter().map(|f| {
            let (n, t, r, i) = (&f.name, f.ty.to_string(), f.redact, f.indexed);
            quote!(#k::__private::FieldSpec { name: #n, ty: #t, redact: #r, indexed: #i })
        });
        let aliases = event.aliases.iter().map(|a| {
            let (s, t) = (&a.sink, a.template.as_str());
            quote!((#s, #t))
        });
        let (redact, changes) = (&event.redact, event.changes);
        let cat_name = &cat.name;
        let cat_path = self.loaded.path.to_string_lossy().into_owned();
        quote! {
            #k::__private::EventSpec {
                name: #name,
                code: #code,
                category: #category,
                level: #k::__private::Level::#level,
                entity: #entity,
                description: #description,
                failure: #failure,
                fields: &[#(#field_specs),*],
                aliases: &[#(#aliases),*],
                redact: &[#(#redact),*],
                changes: #changes,
                durability: #k::__private::Durability::#durability,
                catalog: &#k::__private::CatalogRef { name: #cat_name, path: #cat_path },
                __template: #k::__private::SpecCache::new(),
            }
        }
    }

    /// At the crate's first site: the catalog for the registry. Its `include_str!`
    /// (and the lock file's `include_bytes!`) make cargo rebuild the crate when
    /// either file changes.
    fn embed(&self) -> Option<TokenStream> {
        let (k, loaded) = (&self.k, self.loaded);
        if !crate::catalog::first_use(&loaded.path) {
            return None;
        }
        let cat_path = loaded.path.to_string_lossy().into_owned();
        let lock = loaded.lock.as_ref().map(|l| {
            let l = l.to_string_lossy().into_owned();
            quote!(
                const _: &[u8] = ::core::include_bytes!(#l);
            )
        });
        Some(quote! {
            #lock
            #k::__private::inventory::submit! {
                #k::__private::EmbeddedCatalog {
                    path: #cat_path,
                    text: ::core::include_str!(#cat_path),
                }
            }
        })
    }

    /// The metadata: each `meta(...)` expression converted to its catalog type,
    /// at entry, or at exit for those that name `ret`.
    fn metadata(&self) -> Metadata {
        let k = &self.k;
        let null = quote!(#k::__private::Value::Null);
        let mut m = Metadata {
            at_entry: Vec::new(),
            at_exit: Vec::new(),
            fields: TokenStream::new(),
        };
        let mut values = Vec::new();
        for (i, (field, given)) in self.checked.fields.iter().enumerate() {
            let Some(given) = given else {
                values.push(null.clone());
                continue;
            };
            let convert = self.convert(field, &given.expr);
            if given.uses_ret() {
                // Null until the body returns (and if it never does).
                values.push(null.clone());
                m.at_exit.push(quote! {
                    #[allow(unused_variables)]
                    if let ::core::option::Option::Some(ret) = __audit_ok {
                        __audit_pending.fields()[#i] = #convert;
                    }
                });
            } else {
                let var = format_ident!("__audit_m{}", i);
                values.push(quote!(#var));
                m.at_entry.push(quote!(let #var = #convert;));
            }
        }
        // Up to `FIELDS_INLINE` values travel inline in the event (padded with nulls,
        // which own nothing); more go to the heap.
        m.fields = if values.len() <= FIELDS_INLINE {
            let len = values.len();
            let pad = (len..FIELDS_INLINE).map(|_| null.clone());
            quote!(#k::__private::fields_inline([#(#values,)* #(#pad),*], #len))
        } else {
            quote!(#k::__private::fields_heap(::std::vec![#(#values),*]))
        };
        m
    }

    /// `expr` converted to the catalog type of `field`. A mismatch is an error on
    /// `expr` naming the event, the field and the catalog position: one local trait
    /// per field, named after it, so that rustc's notes name the right one.
    fn convert(&self, field: &audit_catalog::Field, expr: &syn::Expr) -> TokenStream {
        let (k, event) = (&self.k, self.checked.event);
        let kind = kind_tokens(k, &field.ty);
        let message = format!(
            "{}{{Self}}{}",
            escape_braces(&format!(
                "`meta({} = ...)` of audit event `{}`: `",
                field.name, event.name
            )),
            escape_braces(&format!("` does not fit the catalog type `{}`", field.ty)),
        );
        let label = escape_braces(&format!("expected a value of catalog type `{}`", field.ty));
        let note = escape_braces(&format!(
            "field `{}` is declared `{}` at {}:{}",
            field.name,
            field.ty,
            self.loaded.shown,
            self.loaded.catalog.position(field.span.start)
        ));
        let fits = escape_braces(&crate::fits::note(&field.ty));
        // rustc names the trait in a `help:` line: it reads as what is missing.
        let fit = format_ident!("audit_field_{}_takes_{}", field.name, type_word(&field.ty));
        quote_spanned! {expr.span()=>
            {
                #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note, note = #fits)]
                #[allow(non_camel_case_types)]
                trait #fit {
                    fn __audit_encode(self) -> #k::__private::Value;
                }
                #[diagnostic::do_not_recommend]
                impl<V: #k::__private::Encode<#kind>> #fit for V {
                    #[inline]
                    fn __audit_encode(self) -> #k::__private::Value {
                        #k::__private::Encode::<#kind>::encode(self)
                    }
                }
                #fit::__audit_encode(#expr)
            }
        }
    }

    /// `actor = ...` and `tenant = ...`, as `Option`s.
    fn actor_and_tenant(&self) -> (TokenStream, TokenStream) {
        let k = &self.k;
        let none = quote!(::core::option::Option::None);
        let actor = self.args.actor.as_ref().map_or(
            none.clone(),
            |e| quote!(::core::option::Option::Some(::core::convert::Into::<#k::Actor>::into(#e))),
        );
        let tenant = self.args.tenant.as_ref().map_or(none, |e| {
            quote!(::core::option::Option::Some(::core::convert::Into::<::std::string::String>::into(#e)))
        });
        (actor, tenant)
    }

    /// The entity's before / after, by operation.
    fn entity(&self) -> Entity {
        let k = &self.k;
        let op = self.args.entity_op();
        let mut e = Entity {
            entry: quote!(),
            exit: quote!(let __audit_entity = ::core::option::Option::None;),
            unchanged_skip: None,
            capture: quote!(move),
            refer: quote!(),
            finish: quote!(__audit_pending.finish(__audit_on, __audit_outcome, __audit_entity)),
        };
        if let Some((_, each)) = &self.args.each {
            return self.each(each, op, e);
        }
        if let Some((_, id)) = &self.args.entity_id {
            e.refer = quote! {
                __audit_pending.refer(#k::__private::entity::to_json(&(#id)));
            };
            return e;
        }
        let Some((_, expr)) = &self.args.entity else {
            return e;
        };
        let refer_entity = quote! {
            __audit_pending.refer({
                #[allow(unused_imports)]
                use #k::AuditEntity as _;
                (#expr).audit_id()
            });
        };
        if !self.checked.event.changes {
            // A reference: the entity's type and id, no snapshot.
            e.refer = refer_entity;
            return e;
        }
        if op != Op::Create {
            e.refer = refer_entity;
        }
        match op {
            Op::Update => {
                e.entry = quote! {
                    #[allow(unused_imports)]
                    use #k::AuditEntity as _;
                    let __audit_before = (#expr).audit_clone();
                };
                e.exit = quote! {
                    let __audit_entity = ::core::option::Option::Some(
                        ::std::boxed::Box::new((#expr).audit_updated_from(&__audit_before)),
                    );
                };
                // The entity is read again after the body: the body must borrow it.
                e.capture = quote!();
                // An update that changed nothing is not emitted with `emit_unchanged = false`.
                e.unchanged_skip = (!self.args.emit_unchanged).then(|| {
                    quote! {
                        let __audit_on = match &__audit_entity {
                            ::core::option::Option::Some(e) if e.changes.difference.is_empty() => #k::__private::On::Never,
                            _ => __audit_on,
                        };
                    }
                });
            }
            Op::Delete => {
                e.entry = quote! {
                    #[allow(unused_imports)]
                    use #k::AuditEntity as _;
                    let __audit_deleted = ::std::boxed::Box::new((#expr).audit_deleted());
                };
                e.exit =
                    quote!(let __audit_entity = ::core::option::Option::Some(__audit_deleted););
            }
            Op::Create => {
                e.exit = quote! {
                    #[allow(unused_imports)]
                    use #k::AuditEntity as _;
                    #[allow(unused_variables)]
                    let __audit_entity = match __audit_ok {
                        ::core::option::Option::Some(ret) => ::core::option::Option::Some(
                            ::std::boxed::Box::new((#expr).audit_created()),
                        ),
                        ::core::option::Option::None => ::core::option::Option::None,
                    };
                };
            }
        }
        e
    }

    /// The entities of a bulk call (`each = ...`): one part per entity, paired by
    /// id for an update (see `entity::each_updated`), each emitted as it is made.
    fn each(&self, each: &syn::Expr, op: Op, mut e: Entity) -> Entity {
        let k = &self.k;
        let sp = each.span();
        let ent = quote_spanned!(sp=> #k::__private::entity);
        let given = quote!(__audit_pending.each(::core::option::Option::Some(__audit_given)););
        e.exit = quote!();
        // What hands the parts to `__audit_push`, after the body.
        let produce = if !self.checked.event.changes {
            // References, taken at entry.
            e.entry =
                quote_spanned!(sp=> let __audit_taken = #ent::each_referenced((#each).iter()););
            e.refer = quote!(let __audit_given = __audit_taken.len(); #given);
            quote!(__audit_taken.into_iter().for_each(&mut __audit_push);)
        } else {
            match op {
                Op::Update => {
                    e.entry =
                        quote_spanned!(sp=> let __audit_before = #ent::each_clone((#each).iter()););
                    e.refer = quote!(let __audit_given = __audit_before.len(); #given);
                    e.capture = quote!();
                    quote!(#ent::each_updated(__audit_before, (#each).iter(), &mut __audit_push);)
                }
                Op::Delete => {
                    e.entry = quote_spanned!(sp=> let __audit_taken = #ent::each_deleted((#each).iter()););
                    e.refer = quote!(let __audit_given = __audit_taken.len(); #given);
                    quote!(__audit_taken.into_iter().for_each(&mut __audit_push);)
                }
                Op::Create => {
                    e.refer = quote!(__audit_pending.each(::core::option::Option::None););
                    quote! {
                        #[allow(unused_variables)]
                        if let ::core::option::Option::Some(ret) = __audit_ok {
                            #ent::each_created((#each).iter(), &mut __audit_push);
                        }
                    }
                }
            }
        };
        let summary = self.checked.event.summary;
        // `emit_unchanged = false`: an entity the call did not change is left out.
        let keep_unchanged = self.args.emit_unchanged;
        e.finish = quote! {{
            let mut __audit_bulk = __audit_pending.finish_each(__audit_on, __audit_outcome, #summary);
            {
                let mut __audit_push = |part: ::std::boxed::Box<#ent::EntityPart>| {
                    if #keep_unchanged || !part.changes.difference.is_empty() {
                        __audit_bulk.push(part);
                    }
                };
                #produce
            }
            __audit_bulk.end()
        }};
        e
    }

    /// `reverts = ...`: the reverted record's id, handed to the guard at entry.
    fn reverts(&self) -> TokenStream {
        let k = &self.k;
        let Some((_, expr)) = &self.args.reverts else {
            return quote!();
        };
        quote_spanned! {expr.span()=>
            __audit_pending.reverts(#k::__private::RevertedRecord::__audit_record_id(&(#expr)));
        }
    }

    /// The original body, run under the panic guard: a closure called once, or an
    /// `async` block awaited (for `async fn` and `#[async_trait]` methods). A fake
    /// return edge gives it the declared return type, so that `?` and `return`
    /// infer as in the original function.
    fn run(&self, item: &mut ItemFn, capture: &TokenStream) -> TokenStream {
        let k = &self.k;
        let boxed_output = future_output(&item.sig.output);
        let is_async_trait = async_trait_body(item).is_some();
        let declared: Option<Type> = if is_async_trait {
            boxed_output
        } else {
            match &item.sig.output {
                ReturnType::Default => Some(syn::parse_quote!(())),
                ReturnType::Type(_, ty) => Some((**ty).clone()),
            }
        };
        // The body's statements, not its block: `{ #block }` would make a
        // single-expression body an `unused_braces` warning in the user's code.
        let stmts = match async_trait_body(item) {
            Some(inner) => inner.block.stmts.clone(),
            None => item.block.stmts.clone(),
        };
        let block = quote!(#(#stmts)*);
        let fake_return = match &declared {
            Some(ty) if !contains_impl_trait(ty) => quote! {
                #[allow(unreachable_code, clippy::diverging_sub_expression)]
                if false {
                    let __audit_fake_return: #ty = loop {};
                    return __audit_fake_return;
                }
            },
            _ => quote!(),
        };
        if item.sig.asyncness.is_some() || is_async_trait {
            quote!(#k::__private::catch_unwind_future(async #capture { #fake_return #block }).await)
        } else {
            quote!(#k::__private::call_once(#capture || { #fake_return #block }))
        }
    }

    /// What the call returns: for a `sync` event, an `Ok` whose event was not
    /// committed becomes an `Err` (see `ResultSync`).
    fn finish(&self) -> TokenStream {
        let k = &self.k;
        if self.durability() == audit_catalog::Durability::Sync {
            quote! {
                #[allow(unused_imports)]
                use #k::__private::{PlainSync as _, ResultSync as _};
                (&#k::__private::SyncRet::new(__audit_ret)).__audit_sync(__audit_delivery)
            }
        } else {
            quote! {
                let _ = __audit_delivery;
                __audit_ret
            }
        }
    }

    /// The new body: entry, the guarded original body, then the emission.
    fn body(
        &self,
        registry: TokenStream,
        meta: Metadata,
        entity: Entity,
        run: TokenStream,
    ) -> TokenStream {
        let k = &self.k;
        let Metadata {
            at_entry,
            at_exit,
            fields,
        } = meta;
        let needs_ok = !at_exit.is_empty()
            || ((self.args.entity.is_some() || self.args.each.is_some())
                && self.args.entity_op() == Op::Create);
        let ok_binding =
            needs_ok.then(|| quote!(let __audit_ok = (&__audit_ret_ref).__audit_ok();));
        let (actor, tenant) = self.actor_and_tenant();
        let on = format_ident!(
            "{}",
            match self.args.on {
                On::Always => "Always",
                On::Success => "Success",
                On::Failure => "Failure",
            }
        );
        let Entity {
            entry: entity_entry,
            exit: entity_exit,
            unchanged_skip,
            refer,
            finish: hand_off,
            ..
        } = entity;
        let reverts = self.reverts();
        let finish = self.finish();
        // `-> impl IntoResponse`: the value becomes a response here, so that its
        // status can be read; the function still returns an `impl IntoResponse`.
        let into_response = self.returns_into_response.then(|| {
            quote! {
                let __audit_ret =
                    #k::__private::IntoHttpResponse::__audit_into_response(__audit_ret);
            }
        });
        quote_spanned! {Span::call_site()=>
            {
                #registry
                let (__audit_started, __audit_context) = #k::__private::enter();
                #(#at_entry)*
                #entity_entry
                // Emits a failure if the body panics or its future is dropped unfinished.
                let mut __audit_pending = #k::__private::Pending::new(
                    &__AUDIT_SITE,
                    #k::__private::On::#on,
                    __audit_started,
                    __audit_context,
                    #fields,
                    #actor,
                    #tenant,
                );
                #refer
                #reverts
                let __audit_ret = match #run {
                    ::core::result::Result::Ok(ret) => ret,
                    ::core::result::Result::Err(panic) => __audit_pending.panicked(panic),
                };
                #into_response
                {
                    #[allow(unused_imports)]
                    use #k::__private::{PlainRet as _, ResultRet as _, PlainStatus as _, StatusRet as _};
                    let __audit_ret_ref = #k::__private::Ret(&__audit_ret);
                    // A response status (of the value, else of its `Ok` or `Err`);
                    // 4xx or 5xx makes a failure.
                    let __audit_status = (&__audit_ret_ref).__audit_status()
                        .or_else(|| (&__audit_ret_ref).__audit_ok()
                            .and_then(|v| (&#k::__private::Ret(v)).__audit_status()))
                        .or_else(|| (&__audit_ret_ref).__audit_err()
                            .and_then(|v| (&#k::__private::Ret(v)).__audit_status()));
                    __audit_pending.status(__audit_status);
                    let __audit_outcome = #k::__private::with_status(
                        (&__audit_ret_ref).__audit_outcome(),
                        __audit_status,
                    );
                    #ok_binding
                    #(#at_exit)*
                    #entity_exit
                    let __audit_on = #k::__private::On::#on;
                    #unchanged_skip
                    let __audit_delivery = #hand_off;
                    #finish
                }
            }
        }
    }
}
