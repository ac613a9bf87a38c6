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
                    "whole" => a.elements = false,
                    other => errors.error(
                        s.span(),
                        format!("unknown diff mode `{other}`: use \"whole\" (the default) or \"elements\""),
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
                    #k::__private::Json::from(#k::REDACTED)
                } else {
                    #with::audit_json(&#before)
                });
            });
            quote_spanned! {span=>
                if !#with::audit_eq(&#before, &#after) {
                    let __audit_pair = if #redact {
                        #k::__private::json!([#k::REDACTED, #k::REDACTED])
                    } else {
                        #k::__private::Json::Array(vec![
                            #with::audit_json(&#before),
                            #with::audit_json(&#after),
                        ])
                    };
                    __audit_out.insert(#k::__private::entity::path(__audit_prefix, #name), __audit_pair);
                }
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

pub fn derive(input: DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
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
                unknown_key(&mut errors, &m.path, CONTAINER_KEYS);
            }
            Ok(())
        });
        if let Err(e) = r {
            errors.push(e);
        }
    }
    let k = krate.map(|p| quote!(#p)).unwrap_or_else(|| quote!(::audit));

    let (snapshot_body, diff_body, ids) = match &input.data {
        Data::Struct(s) => {
            let code = fields_code(&k, &s.fields, &mut errors, &|m, _, before| {
                if before {
                    quote!(self.#m)
                } else {
                    quote!(__audit_after.#m)
                }
            });
            let (snapshot, diff) = (&code.snapshot, &code.diff);
            (
                quote! {
                    let mut __audit_map = #k::__private::JsonMap::new();
                    #(#snapshot)*
                    #k::__private::Json::Object(__audit_map)
                },
                quote!(#(#diff)*),
                code.ids,
            )
        }
        Data::Enum(e) => {
            if let Some(lit) = &entity {
                errors.error(
                    lit.span(),
                    "an entity must be a struct; an enum can be a field of one",
                );
            }
            let mut snap_arms = Vec::new();
            let mut diff_arms = Vec::new();
            for v in &e.variants {
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
                let code = fields_code(&k, &v.fields, &mut errors, &|_, i, before| {
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
                snap_arms.push(if matches!(v.fields, syn::Fields::Unit) {
                    quote!(#pb => #k::__private::Json::from(#vlabel),)
                } else {
                    quote!(#pb => {
                        let mut __audit_map = #k::__private::JsonMap::new();
                        #(#snapshot)*
                        let mut __audit_outer = #k::__private::JsonMap::new();
                        __audit_outer.insert(#vlabel.to_owned(), #k::__private::Json::Object(__audit_map));
                        #k::__private::Json::Object(__audit_outer)
                    })
                });
                diff_arms.push(quote!((#pb, #pa) => { #(#diff)* }));
            }
            (
                quote! {
                    #[allow(unused_variables)]
                    match self { #(#snap_arms)* }
                },
                quote! {
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
                Vec::new(),
            )
        }
        Data::Union(_) => {
            errors.error(
                input.ident.span(),
                "#[derive(AuditEntity)] supports structs and enums, not unions",
            );
            return errors.into_result().unwrap_err().to_compile_error();
        }
    };

    let ident = &input.ident;
    let mut generics = input.generics.clone();
    for tp in generics.type_params_mut() {
        tp.bounds.push(syn::parse_quote!(::core::cmp::PartialEq));
        tp.bounds.push(syn::parse_quote!(#k::__private::Serialize));
    }
    let (impl_g, ty_g, where_g) = generics.split_for_impl();

    let entity_impl = entity.as_ref().and_then(|lit| {
        let loaded = match crate::catalog::load() {
            Ok(l) => l,
            Err(msg) => {
                errors.error(lit.span(), msg);
                return None;
            }
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
        let id = match ids.as_slice() {
            [(_, member)] => member.clone(),
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
        let code = e.code;
        Some(quote! {
            impl #impl_g #k::AuditEntity for #ident #ty_g #where_g {
                const ENTITY: &'static str = #name;
                const TYPE_CODE: u32 = #code;
                fn audit_id(&self) -> #k::__private::Json {
                    #k::__private::entity::to_json(&self.#id)
                }
            }
        })
    });
    if entity.is_none() && !ids.is_empty() {
        errors.error(
            ids[0].0,
            "`#[audit(id)]` needs `#[audit(entity = \"...\")]` on the type",
        );
    }
    if let Err(e) = errors.into_result() {
        return e.to_compile_error();
    }
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
        #entity_impl
    }
}
