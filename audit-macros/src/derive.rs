//! `#[derive(AuditEntity)]`: field-by-field diff and snapshot, and the catalog entity.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, LitStr};

use crate::check::Errors;

const FIELD_KEYS: &[&str] = &["id", "redact", "skip", "rename"];
const CONTAINER_KEYS: &[&str] = &["entity", "crate"];

struct FieldAttrs {
    id: bool,
    redact: bool,
    skip: bool,
    rename: Option<String>,
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
    };
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("audit")) {
        let r = attr.parse_nested_meta(|m| {
            if m.path.is_ident("id") {
                a.id = true;
            } else if m.path.is_ident("redact") {
                a.redact = true;
            } else if m.path.is_ident("skip") {
                a.skip = true;
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

    let fields = match &input.data {
        Data::Struct(s) => &s.fields,
        Data::Enum(_) | Data::Union(_) => {
            errors.error(
                input.ident.span(),
                "#[derive(AuditEntity)] supports structs; an enum field of an entity is compared whole (derive PartialEq and Serialize on it)",
            );
            return errors.into_result().unwrap_err().to_compile_error();
        }
    };

    let mut snapshot = Vec::new();
    let mut diff = Vec::new();
    let mut ids = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let attrs = field_attrs(field, &mut errors);
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
        let redact = attrs.redact;
        let span = field.ty.span();
        snapshot.push(quote_spanned! {span=>
            __audit_map.insert(#name.to_owned(), (&#k::__private::entity::Field {
                before: &self.#member, after: &self.#member, redact: #redact,
            }).__audit_snapshot(#redact));
        });
        diff.push(quote_spanned! {span=>
            (&#k::__private::entity::Field {
                before: &self.#member, after: &__audit_after.#member, redact: #redact,
            }).__audit_field(__audit_prefix, #name, __audit_out);
        });
    }

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
            let hint = audit_catalog::format_suggestions(&audit_catalog::suggest(&name, names))
                .map(|h| format!("\n\n= help: {h}"))
                .unwrap_or_default();
            errors.error(
                lit.span(),
                format!(
                    "unknown entity `{name}`: catalog `{}` ({}) declares no such entity in [entities]{hint}",
                    loaded.catalog.name, loaded.shown
                ),
            );
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
    let map = format_ident!("__audit_map");
    quote! {
        impl #impl_g #k::AuditDiff for #ident #ty_g #where_g {
            fn audit_snapshot(&self) -> #k::__private::Json {
                #[allow(unused_imports)]
                use #k::__private::entity::{NestedDiff as _, WholeDiff as _};
                let mut #map = #k::__private::JsonMap::new();
                #(#snapshot)*
                #k::__private::Json::Object(#map)
            }
            fn audit_diff(
                &self,
                __audit_after: &Self,
                __audit_prefix: &str,
                __audit_out: &mut #k::__private::JsonMap,
            ) {
                #[allow(unused_imports)]
                use #k::__private::entity::{NestedDiff as _, WholeDiff as _};
                #(#diff)*
            }
        }
        #entity_impl
    }
}
