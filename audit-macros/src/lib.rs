//! `#[audited]`: compile-time checked audit emission. Use it through the `audit`
//! crate, which re-exports it; see that crate's documentation.
//!
//! The macro crate is thin (as `sqlx-macros` is): the catalog format, location and
//! validation live in `audit-catalog`; this crate parses the attribute (`attr`),
//! checks it against the catalog (`check`) and generates code (`expand`).

mod attr;
mod catalog;
mod check;
mod derive;
mod expand;
mod fits;

use proc_macro::TokenStream;
use quote::ToTokens;

/// Field-by-field diff and snapshot (`AuditDiff`), and with `#[audit(entity = "...")]`
/// the catalog entity (`AuditEntity`). See the `audit` crate.
#[proc_macro_derive(AuditEntity, attributes(audit))]
pub fn derive_audit_entity(input: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(input) {
        Ok(input) => derive::derive(input).into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Emits a catalog event each time the function returns. See the `audit` crate.
#[proc_macro_attribute]
pub fn audited(args: TokenStream, item: TokenStream) -> TokenStream {
    audited2(args.into(), item.into()).into()
}

fn audited2(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    // On any error: the error and the untouched function, so that one mistake does
    // not cascade into errors about the function's body.
    let fail = |e: syn::Error, item: proc_macro2::TokenStream| {
        let mut out = e.to_compile_error();
        out.extend(item);
        out
    };
    let func: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            return fail(
                syn::Error::new(
                    proc_macro2::Span::call_site(),
                    "#[audited] goes on a function or method with a body",
                ),
                item,
            );
        }
    };
    let args: attr::Args = match syn::parse2(args) {
        Ok(a) => a,
        Err(e) => return fail(e, item),
    };
    let mut errors = check::Errors::default();
    for e in &args.errors {
        errors.push(e.clone());
    }
    let loaded = match catalog::load() {
        Ok(l) => l,
        Err(catalog::LoadError::Report(msg)) => {
            errors.error(proc_macro2::Span::call_site(), msg);
            return fail(errors.into_result().unwrap_err(), item);
        }
        Err(catalog::LoadError::Reported) => {
            return match errors.into_result() {
                Ok(()) => item,
                Err(e) => fail(e, item),
            };
        }
    };
    let checked = check::check(&args, &loaded, &mut errors);
    match (errors.into_result(), checked) {
        (Ok(()), Some(checked)) => expand::expand(func, &args, &checked, &loaded),
        (Err(e), _) => fail(e, func.into_token_stream()),
        (Ok(()), None) => func.into_token_stream(),
    }
}
