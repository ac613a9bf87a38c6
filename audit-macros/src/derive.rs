//! `#[derive(AuditEntity)]`: field-by-field diff and snapshot, and the catalog entity.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, LitStr};

use crate::check::Errors;

const FIELD_KEYS: &[&str] = &["id", "redact", "skip", "rename", "diff", "with"];
const CONTAINER_KEYS: &[&str] = &["entity", "crate"];

struct FieldAttrs {
    id: bool,
    redact: bool,
    skip: bool,
    rename: Option<String>,
    /// `diff = "elements"`: lists by position, maps by key.
    elements: bool,
    /// `diff = "json"`: the value's JSON, path by path.
    json: bool,
    /// `with = path`: a module with `audit_eq(&T, &T) -> bool` and `audit_json(&T) -> Value`.
    with: Option<syn::Path>,
}

fn unknown_key(errors: &mut Errors, ident: &syn::Path, keys: &[&str]) {
    let name = ident.get_ident().map(|i| i.to_string()).unwrap_or_default();
    let hint =
        audit_catalog::format_suggestions(&audit_catalog::suggest(&name, keys.iter().copied()))
            .unwrap_or_else(|| format!("the keys are: {}", keys.join(", ")));
    errors.error(
        ident.span(),
        format!("unknown #[audit] key `{name}`; {hint}"),
    );
}

fn field_attrs(field: &syn::Field, errors: &mut Errors) -> FieldAttrs {
    let mut a = FieldAttrs {
        id: false,
        redact: false,
        skip: false,
        rename: None,
        elements: false,
        json: false,
        with: None,
    };
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("audit")) {
        let r = attr.parse_nested_meta(|m| {
            if m.path.is_ident("id") {
                a.id = true;
            } else if m.path.is_ident("redact") {
                a.redact = true;
            } else if m.path.is_ident("skip") {
                a.skip = true;
            } else if m.path.is_ident("diff") {
                let s: LitStr = m.value()?.parse()?;
                match s.value().as_str() {
                    "elements" => a.elements = true,
                    "json" => a.json = true,
                    "whole" => a.elements = false,
                    other => errors.error(
                        s.span(),
                        format!("unknown diff mode `{other}`: use \"whole\" (the default), \"elements\" or \"json\""),
                    ),
                }
            } else if m.path.is_ident("with") {
                a.with = Some(m.value()?.parse()?);
            } else if m.path.is_ident("rename") {
                let s: LitStr = m.value()?.parse()?;
                a.rename = Some(s.value());
            } else {
                unknown_key(errors, &m.path, FIELD_KEYS);
                if m.input.peek(syn::Token![=]) {
                    let _: syn::Expr = m.value()?.parse()?;
                }
            }
            Ok(())
        });
        if let Err(e) = r {
            errors.push(e);
        }
    }
    if a.redact && a.skip {
        errors.error(
            field.span(),
            "a field cannot be both `redact` (compared, value hidden) and `skip` (never compared): choose one",
        );
    }
    a
}

/// The generated code of a set of fields.
struct FieldsCode {
    snapshot: Vec<TokenStream>,
    diff: Vec<TokenStream>,
    ids: Vec<(proc_macro2::Span, TokenStream)>,
}

/// Snapshot and diff statements for `fields`; `place(member, index, before)` is the
/// place expression of a field on the before (`true`) or after side.
fn fields_code(
    k: &TokenStream,
    fields: &syn::Fields,
    errors: &mut Errors,
    place: &dyn Fn(&TokenStream, usize, bool) -> TokenStream,
) -> FieldsCode {
    let mut snapshot = Vec::new();
    let mut diff = Vec::new();
    let mut ids = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let attrs = field_attrs(field, errors);
        let member = match &field.ident {
            Some(ident) => quote!(#ident),
            None => {
                let index = syn::Index::from(i);
                quote!(#index)
            }
        };
        let name = attrs.rename.clone().unwrap_or_else(|| match &field.ident {
            Some(ident) => ident.to_string().trim_start_matches("r#").to_owned(),
            None => i.to_string(),
        });
        if attrs.id {
            ids.push((field.span(), member.clone()));
        }
        if attrs.skip {
            continue;
        }
        let before = place(&member, i, true);
        let after = place(&member, i, false);
        let redact = attrs.redact;
        let span = field.ty.span();
        snapshot.push(quote_spanned! {span=>
            __audit_map.insert(#name.to_owned(), (&#k::__private::entity::Field {
                before: &#before, after: &#before, redact: #redact,
            }).__audit_snapshot(#redact));
        });
        let field_diff = if let Some(with) = &attrs.with {
            snapshot.pop();
            snapshot.push(quote_spanned! {span=>
                __audit_map.insert(#name.to_owned(), if #redact {
                    #k::__private::Json::from(#k::__private::REDACTED)
                } else {
                    #with::audit_json(&#before)
                });
            });
            quote_spanned! {span=>
                if !#with::audit_eq(&#before, &#after) {
                    let __audit_pair = if #redact {
                        #k::__private::json!([#k::__private::REDACTED, #k::__private::REDACTED])
                    } else {
                        #k::__private::Json::Array(vec![
                            #with::audit_json(&#before),
                            #with::audit_json(&#after),
                        ])
                    };
                    __audit_out.insert(#k::__private::entity::path(__audit_prefix, #name), __audit_pair);
                }
            }
        } else if attrs.json {
            quote_spanned! {span=>
                #k::__private::entity::diff_json(
                    &#before, &#after, (__audit_prefix, #name, #redact), __audit_out,
                );
            }
        } else if attrs.elements {
            quote_spanned! {span=>
                #k::__private::entity::diff_elements(
                    &#before, &#after, (__audit_prefix, #name, #redact), __audit_out,
                );
            }
        } else {
            quote_spanned! {span=>
                (&#k::__private::entity::Field {
                    before: &#before, after: &#after, redact: #redact,
                }).__audit_field(__audit_prefix, #name, __audit_out);
            }
        };
        diff.push(field_diff);
    }

    FieldsCode {
        snapshot,
        diff,
        ids,
    }
}

/// The two bodies of `AuditDiff` (snapshot, diff) and the fields marked `id`.
struct Bodies {
    snapshot: TokenStream,
    diff: TokenStream,
    ids: Vec<(proc_macro2::Span, TokenStream)>,
}

/// `#[audit(entity = "...", crate = "...")]` on the type.
struct ContainerAttrs {
    entity: Option<LitStr>,
    /// The path of the facade crate.
    k: TokenStream,
}

/// Expands the derive: `AuditDiff` always, `AuditEntity` with `entity = "..."`. On
/// error the errors come with fallback impls (as `thiserror` does), so that the
/// type's uses compile and only the real mistakes are reported.
pub fn derive(input: DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let attrs = container_attrs(&input, &mut errors);
    let bodies = match &input.data {
        Data::Struct(s) => struct_bodies(&attrs.k, &s.fields, &mut errors),
        Data::Enum(e) => {
            if let Some(lit) = &attrs.entity {
                errors.error(
                    lit.span(),
                    "an entity must be a struct; an enum can be a field of one",
                );
            }
            enum_bodies(&attrs.k, e, &mut errors)
        }
        Data::Union(_) => {
            errors.error(
                input.ident.span(),
                "#[derive(AuditEntity)] supports structs and enums, not unions",
            );
            return errors.into_result().unwrap_err().to_compile_error();
        }
    };
    let entity = entity_impl(&input, &attrs, &bodies.ids, &mut errors);
    if let Err(e) = errors.into_result() {
        let fallback = fallback(&input, &attrs);
        let errors = e.to_compile_error();
        return quote!(#errors #fallback);
    }
    let diff = diff_impl(&input, &attrs.k, &bodies);
    quote!(#diff #entity)
}

fn container_attrs(input: &DeriveInput, errors: &mut Errors) -> ContainerAttrs {
    let mut entity: Option<LitStr> = None;
    let mut krate: Option<syn::Path> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("audit")) {
        let r = attr.parse_nested_meta(|m| {
            if m.path.is_ident("entity") {
                entity = Some(m.value()?.parse()?);
            } else if m.path.is_ident("crate") {
                let s: LitStr = m.value()?.parse()?;
                krate = Some(s.parse()?);
            } else {
                unknown_key(errors, &m.path, CONTAINER_KEYS);
            }
            Ok(())
        });
        if let Err(e) = r {
            errors.push(e);
        }
    }
    let k = krate.map(|p| quote!(#p)).unwrap_or_else(|| quote!(::audit));
    ContainerAttrs { entity, k }
}

/// A struct: its fields, snapshot into one object, compared one by one.
fn struct_bodies(k: &TokenStream, fields: &syn::Fields, errors: &mut Errors) -> Bodies {
    let code = fields_code(k, fields, errors, &|m, _, before| {
        if before {
            quote!(self.#m)
        } else {
            quote!(__audit_after.#m)
        }
    });
    let (snapshot, diff) = (&code.snapshot, &code.diff);
    Bodies {
        snapshot: quote! {
            let mut __audit_map = #k::__private::JsonMap::new();
            #(#snapshot)*
            #k::__private::Json::Object(__audit_map)
        },
        diff: quote!(#(#diff)*),
        ids: code.ids,
    }
}

/// An enum: the same variant compares its fields; a change of variant is a change
/// of the whole value (under `prefix`, or `$` at the top).
fn enum_bodies(k: &TokenStream, e: &syn::DataEnum, errors: &mut Errors) -> Bodies {
    let mut snap_arms = Vec::new();
    let mut diff_arms = Vec::new();
    for v in &e.variants {
        let (snap, diff) = variant_arms(k, v, errors);
        snap_arms.push(snap);
        diff_arms.push(diff);
    }
    Bodies {
        snapshot: quote! {
            #[allow(unused_variables)]
            match self { #(#snap_arms)* }
        },
        diff: quote! {
            #[allow(unused_variables, unreachable_patterns)]
            match (self, __audit_after) {
                #(#diff_arms)*
                _ => {
                    let __audit_key = if __audit_prefix.is_empty() { "$" } else { __audit_prefix };
                    __audit_out.insert(
                        __audit_key.to_owned(),
                        #k::__private::Json::Array(vec![self.audit_snapshot(), __audit_after.audit_snapshot()]),
                    );
                }
            }
        },
        ids: Vec::new(),
    }
}

/// The snapshot arm and the diff arm of one variant.
fn variant_arms(
    k: &TokenStream,
    v: &syn::Variant,
    errors: &mut Errors,
) -> (TokenStream, TokenStream) {
    let vname = &v.ident;
    let vlabel = vname.to_string();
    let binds = |side: &str| -> Vec<proc_macro2::Ident> {
        (0..v.fields.len())
            .map(|i| format_ident!("__audit_{}{}", side, i))
            .collect()
    };
    let (b, a) = (binds("b"), binds("a"));
    let pattern = |names: &[proc_macro2::Ident]| match &v.fields {
        syn::Fields::Named(f) => {
            let members = f.named.iter().map(|x| x.ident.as_ref().expect("named"));
            quote!(Self::#vname { #(#members: #names),* })
        }
        syn::Fields::Unnamed(_) => quote!(Self::#vname(#(#names),*)),
        syn::Fields::Unit => quote!(Self::#vname),
    };
    let (pb, pa) = (pattern(&b), pattern(&a));
    let code = fields_code(k, &v.fields, errors, &|_, i, before| {
        let bind = if before { &b[i] } else { &a[i] };
        quote!((*#bind))
    });
    for (span, _) in &code.ids {
        errors.error(
            *span,
            "`#[audit(id)]` belongs on a field of an entity struct",
        );
    }
    let (snapshot, diff) = (&code.snapshot, &code.diff);
    let snap = if matches!(v.fields, syn::Fields::Unit) {
        quote!(#pb => #k::__private::Json::from(#vlabel),)
    } else {
        quote!(#pb => {
            let mut __audit_map = #k::__private::JsonMap::new();
            #(#snapshot)*
            let mut __audit_outer = #k::__private::JsonMap::new();
            __audit_outer.insert(#vlabel.to_owned(), #k::__private::Json::Object(__audit_map));
            #k::__private::Json::Object(__audit_outer)
        })
    };
    (snap, quote!((#pb, #pa) => { #(#diff)* }))
}

/// The type's generics, each type parameter bounded by what a diff needs.
fn bounded_generics(input: &DeriveInput, k: &TokenStream) -> syn::Generics {
    let mut generics = input.generics.clone();
    for tp in generics.type_params_mut() {
        tp.bounds.push(syn::parse_quote!(::core::cmp::PartialEq));
        tp.bounds.push(syn::parse_quote!(#k::__private::Serialize));
    }
    generics
}

/// `AuditEntity`, when the type names its catalog entity: checked against the
/// catalog, with exactly one `#[audit(id)]` field.
fn entity_impl(
    input: &DeriveInput,
    attrs: &ContainerAttrs,
    ids: &[(proc_macro2::Span, TokenStream)],
    errors: &mut Errors,
) -> Option<TokenStream> {
    let Some(lit) = &attrs.entity else {
        if let Some((span, _)) = ids.first() {
            errors.error(
                *span,
                "`#[audit(id)]` needs `#[audit(entity = \"...\")]` on the type",
            );
        }
        return None;
    };
    let loaded = match crate::catalog::load() {
        Ok(l) => l,
        Err(crate::catalog::LoadError::Report(msg)) => {
            errors.error(lit.span(), msg);
            return None;
        }
        Err(crate::catalog::LoadError::Reported) => return None,
    };
    let name = lit.value();
    let Some(e) = loaded.catalog.entity(&name) else {
        let names = loaded.catalog.entities.iter().map(|e| e.name.as_str());
        errors.push(loaded.unknown(
            lit.span(),
            ("entity", "entity"),
            &name,
            " in [entities]",
            names,
        ));
        return None;
    };
    let id = match ids {
        [(_, member)] => member,
        [] => {
            errors.error(
                input.ident.span(),
                format!("entity `{name}` needs its id: mark one field `#[audit(id)]`"),
            );
            return None;
        }
        [_, rest @ ..] => {
            for (span, _) in rest {
                errors.error(*span, "only one field can be `#[audit(id)]`");
            }
            return None;
        }
    };
    let (k, ident, code) = (&attrs.k, &input.ident, e.code);
    let generics = bounded_generics(input, k);
    let (impl_g, ty_g, where_g) = generics.split_for_impl();
    Some(quote! {
        impl #impl_g #k::AuditEntity for #ident #ty_g #where_g {
            const ENTITY: &'static str = #name;
            const TYPE_CODE: u32 = #code;
            fn audit_id(&self) -> #k::__private::Json {
                #k::__private::entity::to_json(&self.#id)
            }
        }
    })
}

fn diff_impl(input: &DeriveInput, k: &TokenStream, bodies: &Bodies) -> TokenStream {
    let ident = &input.ident;
    let generics = bounded_generics(input, k);
    let (impl_g, ty_g, where_g) = generics.split_for_impl();
    let (snapshot_body, diff_body) = (&bodies.snapshot, &bodies.diff);
    quote! {
        impl #impl_g #k::AuditDiff for #ident #ty_g #where_g {
            fn audit_snapshot(&self) -> #k::__private::Json {
                #[allow(unused_imports)]
                use #k::__private::entity::{NestedDiff as _, WholeDiff as _};
                #snapshot_body
            }
            fn audit_diff(
                &self,
                __audit_after: &Self,
                __audit_prefix: &str,
                __audit_out: &mut #k::__private::JsonMap,
            ) {
                #[allow(unused_imports)]
                use #k::__private::entity::{NestedDiff as _, WholeDiff as _};
                #diff_body
            }
        }
    }
}

/// Impls that compile whatever was wrong, so that the errors above are the only
/// ones: the type's uses (`entity = ...` sites, trait bounds) do not cascade. They
/// come with those errors, so the crate never builds and they never run: their
/// bodies are the simplest that type-check.
fn fallback(input: &DeriveInput, attrs: &ContainerAttrs) -> TokenStream {
    let (k, ident) = (&attrs.k, &input.ident);
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    let entity = attrs.entity.as_ref().map(|lit| {
        quote! {
            impl #impl_g #k::AuditEntity for #ident #ty_g #where_g {
                const ENTITY: &'static str = #lit;
                const TYPE_CODE: u32 = 0;
                fn audit_id(&self) -> #k::__private::Json {
                    #k::__private::Json::Null
                }
            }
        }
    });
    quote! {
        impl #impl_g #k::AuditDiff for #ident #ty_g #where_g {
            fn audit_snapshot(&self) -> #k::__private::Json {
                #k::__private::Json::Null
            }
            fn audit_diff(&self, _: &Self, _: &str, _: &mut #k::__private::JsonMap) {}
        }
        #entity
    }
}
