//! `#[derive(SseEvents)]`: an enum whose variants are a stream's event types.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, Data, DeriveInput, Fields, LitStr};

use crate::crate_path::nest_core_path;
use crate::route::doc_lines;

/// One variant: its `event:` name, its data type (`None`: empty data) and its doc comment.
struct Event {
    ident: syn::Ident,
    name: String,
    data: Option<syn::Type>,
    /// `#[sse_event(text)]`: the data is sent as text (`Display`), not JSON.
    text: bool,
    doc: Option<String>,
}

/// Expands the derive; errors name the variant or attribute at fault.
pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "`#[derive(SseEvents)]` goes on an enum: one variant per event type",
        ));
    };
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "`#[derive(SseEvents)]` does not take generic enums; implement `SseEvents` by hand",
        ));
    }
    if data.variants.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "an `SseEvents` enum needs at least one variant",
        ));
    }
    let mut events = Vec::new();
    for variant in &data.variants {
        let data =
            match &variant.fields {
                Fields::Unit => None,
                Fields::Unnamed(fields) if fields.unnamed.len() == 1 => {
                    Some(fields.unnamed[0].ty.clone())
                }
                _ => return Err(syn::Error::new_spanned(
                    variant,
                    "an event variant holds its data in one field (`Message(Message)`) or none \
                     (`Done`)",
                )),
            };
        let (name, text) = event_attrs(&variant.attrs)?;
        if text && data.is_none() {
            return Err(syn::Error::new_spanned(
                variant,
                "`#[sse_event(text)]` goes on a variant with data",
            ));
        }
        events.push(Event {
            ident: variant.ident.clone(),
            name: name.unwrap_or_else(|| lower_camel(&variant.ident.to_string())),
            data,
            text,
            doc: doc_comment(&variant.attrs),
        });
    }
    let krate = nest_core_path();
    let ty = &input.ident;
    let to_event = events.iter().map(|e| {
        let (ident, name) = (&e.ident, &e.name);
        match (&e.data, e.text) {
            (Some(_), false) => {
                quote!(Self::#ident(data) => #krate::sse::SseEvent::json(data).event(#name))
            }
            (Some(_), true) => quote! {
                Self::#ident(data) => #krate::sse::SseEvent::data(data.to_string()).event(#name)
            },
            (None, _) => quote!(Self::#ident => #krate::sse::SseEvent::data("").event(#name)),
        }
    });
    let names = events.iter().map(|e| {
        let (ident, name) = (&e.ident, &e.name);
        match e.data {
            Some(_) => quote!(Self::#ident(_) => #name),
            None => quote!(Self::#ident => #name),
        }
    });
    let schemas = events.iter().map(|e| {
        let name = &e.name;
        let schema = match (&e.data, e.text) {
            (Some(data), false) => {
                quote!(#krate::sse::EventSchema::json::<#data>(#name, generator))
            }
            (Some(_), true) => quote!(#krate::sse::EventSchema::text(#name)),
            (None, _) => quote!(#krate::sse::EventSchema::empty(#name)),
        };
        match &e.doc {
            Some(doc) => quote!(#schema.description(#doc)),
            None => schema,
        }
    });
    Ok(quote! {
        impl #krate::sse::SseEvents for #ty {
            fn to_sse_event(&self) -> #krate::sse::SseEvent {
                match self {
                    #(#to_event,)*
                }
            }

            fn event_name(&self) -> &'static str {
                match self {
                    #(#names,)*
                }
            }
        }

        impl #krate::sse::EventSchemas for #ty {
            fn event_schemas(
                generator: &mut #krate::openapi::schemars::SchemaGenerator,
            ) -> ::std::vec::Vec<#krate::sse::EventSchema> {
                ::std::vec![#(#schemas),*]
            }
        }
    })
}

/// `#[sse_event(name = "…", text)]`: the variant's own name, and whether its data is text.
fn event_attrs(attrs: &[Attribute]) -> syn::Result<(Option<String>, bool)> {
    let mut name = None;
    let mut text = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("sse_event")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("text") {
                text = true;
                Ok(())
            } else if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                let value = lit.value();
                // The encoder refuses these at run time; here they are refused at compile time.
                if value.is_empty() || value.contains(['\n', '\r']) {
                    return Err(syn::Error::new_spanned(
                        lit,
                        "an event name is one non-empty line",
                    ));
                }
                name = Some(value);
                Ok(())
            } else {
                Err(meta.error("expected `#[sse_event(name = \"…\")]` or `#[sse_event(text)]`"))
            }
        })?;
    }
    Ok((name, text))
}

/// `MyEvent` → `myEvent`: JavaScript's naming, as `addEventListener('myEvent', …)` reads it.
fn lower_camel(ident: &str) -> String {
    let mut chars = ident.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The variant's doc comment, its lines joined with spaces.
fn doc_comment(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = doc_lines(attrs)
        .into_iter()
        .filter(|line| !line.is_empty())
        .collect();
    (!lines.is_empty()).then(|| lines.join(" "))
}

#[cfg(test)]
mod tests {
    use super::lower_camel;

    #[test]
    fn names_events_in_lower_camel_case() {
        assert_eq!(lower_camel("MyEvent"), "myEvent");
        assert_eq!(lower_camel("Message"), "message");
        assert_eq!(lower_camel("token"), "token");
    }
}
