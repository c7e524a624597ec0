//! How the generated code names nest-core: through `nest-core` or the `nest` facade, whichever the
//! user depends on, unless `#[controller(crate = "…")]` says.

use proc_macro2::{Span, TokenStream};
use proc_macro_crate::{crate_name, FoundCrate};
use quote::quote;
use syn::Ident;

/// The path to nest-core's root as seen from the crate being compiled.
///
/// Inside the `nest` facade package (its examples, tests and doc tests) that is `::nest`; otherwise
/// `nest-core` under whatever name it was given, then `nest`, then `::nest_core`. Inside nest-core
/// itself (its integration tests and doc tests are separate crates) it is `::nest_core`.
pub(crate) fn nest_core_path() -> TokenStream {
    if let Ok(FoundCrate::Itself) = crate_name("nest") {
        return quote!(::nest);
    }
    match crate_name("nest-core") {
        Ok(FoundCrate::Name(name)) => return named(&name),
        Ok(FoundCrate::Itself) => return quote!(::nest_core),
        Err(_) => {}
    }
    match crate_name("nest") {
        Ok(FoundCrate::Name(name)) => named(&name),
        _ => quote!(::nest_core),
    }
}

fn named(name: &str) -> TokenStream {
    let ident = Ident::new(name, Span::call_site());
    quote!(::#ident)
}
