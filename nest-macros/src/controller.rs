//! `#[controller]`: an annotated `impl` block becomes the same block plus an `impl Controller`.

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Expr, ImplItem, ItemImpl, LitStr, Token};

use crate::crate_path::nest_core_path;
use crate::route::{nest_attribute, parse_exprs, Errors, Route};

/// The arguments of `#[controller("/prefix", crate = "path")]`, both optional.
pub(crate) struct ControllerArgs {
    prefix: Option<LitStr>,
    krate: Option<syn::Path>,
}

impl Parse for ControllerArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = ControllerArgs {
            prefix: None,
            krate: None,
        };
        if input.peek(LitStr) {
            let prefix: LitStr = input.parse()?;
            let value = prefix.value();
            let path =
                nest_path::parse(&value).map_err(|err| syn::Error::new(prefix.span(), err))?;
            if path.has_wildcard() {
                return Err(syn::Error::new(
                    prefix.span(),
                    "a controller prefix cannot contain a wildcard (it must be the last segment of the whole path)",
                ));
            }
            args.prefix = Some(prefix);
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        if !input.is_empty() {
            input.parse::<Token![crate]>()?;
            input.parse::<Token![=]>()?;
            let lit: LitStr = input.parse()?;
            args.krate = Some(lit.parse()?);
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        if !input.is_empty() {
            return Err(input.error("expected `#[controller(\"/prefix\", crate = \"path\")]`"));
        }
        Ok(args)
    }
}

/// The controller-wide settings, from attributes on the impl block.
enum ControllerSetting {
    Guard(Expr),
    Layer(Expr),
}

/// Expands `#[controller(args)] impl … { … }`.
pub(crate) fn expand(args: ControllerArgs, mut item: ItemImpl) -> TokenStream {
    let mut errors = Errors::default();
    if let Some((_, trait_, _)) = &item.trait_ {
        errors.push(syn::Error::new_spanned(
            trait_,
            "`#[controller]` goes on an inherent impl block (`impl MyController { … }`), not a trait impl",
        ));
    }

    let settings = controller_settings(&mut item.attrs, &mut errors);

    let mut routes = Vec::new();
    let mut seen: HashMap<(&'static str, String), (String, syn::Ident)> = HashMap::new();
    for impl_item in &mut item.items {
        let attrs = match impl_item {
            ImplItem::Fn(method) => {
                if let Some(route) = Route::extract(method, &mut errors) {
                    for key in route.keys() {
                        if let Some((first, name)) = seen.get(&key.key) {
                            errors.push(syn::Error::new_spanned(
                                key.attr,
                                format!(
                                    "duplicate route: `{}` has the same method and path as `{first}` on `{name}`",
                                    key.describe
                                ),
                            ));
                        } else {
                            seen.insert(key.key, (key.describe, method.sig.ident.clone()));
                        }
                    }
                    routes.push(route);
                }
                continue;
            }
            ImplItem::Const(c) => &mut c.attrs,
            ImplItem::Type(t) => &mut t.attrs,
            ImplItem::Macro(m) => &mut m.attrs,
            _ => continue,
        };
        for attr in attrs.iter().filter(|a| nest_attribute(a).is_some()) {
            errors.push(syn::Error::new_spanned(
                attr,
                "route attributes go on methods of the `#[controller]` impl block",
            ));
        }
        attrs.retain(|a| nest_attribute(a).is_none());
    }

    let krate = args.krate.map_or_else(nest_core_path, |p| quote!(#p));
    let prefix = args.prefix.map_or_else(|| quote!(""), |p| quote!(#p));
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();
    let self_ty = &item.self_ty;
    let routes_ident = format_ident!("routes");

    let body = match errors.into_compile_errors() {
        // Still implement the trait, without routes, so that one mistake gives one error.
        Some(compile_errors) => {
            return quote! {
                #compile_errors
                #item
                impl #impl_generics #krate::Controller for #self_ty #where_clause {
                    fn routes(_: &mut #krate::Routes<Self>) {}
                }
            }
        }
        None => {
            let settings = settings.iter().map(|s| match s {
                ControllerSetting::Guard(g) => quote!(#routes_ident.guard(#g);),
                ControllerSetting::Layer(l) => quote!(#routes_ident.layer(#l);),
            });
            let controller = type_name(&item.self_ty);
            let registrations = routes
                .iter()
                .map(|r| r.register(&krate, &routes_ident, &controller));
            quote! {
                #(#settings)*
                #(#registrations)*
            }
        }
    };
    let unused = routes.is_empty() && settings.is_empty();
    let param = if unused {
        quote!(_)
    } else {
        quote!(#routes_ident)
    };

    quote! {
        #item
        impl #impl_generics #krate::Controller for #self_ty #where_clause {
            fn prefix(&self) -> &str {
                #prefix
            }

            fn routes(#param: &mut #krate::Routes<Self>) {
                #body
            }
        }
    }
}

/// Takes `#[use_guards]` and `#[use_layer]` off the impl block; any other nest attribute there is
/// an error.
fn controller_settings(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> Vec<ControllerSetting> {
    let mut settings = Vec::new();
    for attr in attrs.iter() {
        match nest_attribute(attr) {
            None => {}
            Some("use_guards") => match parse_exprs(attr) {
                Ok(guards) => settings.extend(guards.into_iter().map(ControllerSetting::Guard)),
                Err(err) => errors.push(err),
            },
            Some("use_layer") => match attr.parse_args() {
                Ok(layer) => settings.push(ControllerSetting::Layer(layer)),
                Err(err) => errors.push(err),
            },
            Some(name) => errors.push(syn::Error::new_spanned(
                attr,
                format!("`#[{name}]` goes on a method of the `#[controller]` impl block, not on the block"),
            )),
        }
    }
    attrs.retain(|a| nest_attribute(a).is_none());
    settings
}

/// The last segment of the controller's type (`app::Users<T>` → `Users`), for operation ids.
fn type_name(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(path) => path
            .path
            .segments
            .last()
            .map_or_else(String::new, |s| s.ident.to_string()),
        other => quote!(#other).to_string(),
    }
}
