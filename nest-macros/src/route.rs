//! The route attributes of one method (`#[get]`, `#[sse]`, `#[http_code]`, …) and the
//! registration code they become.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, FnArg, Ident, ImplItemFn, LitInt, LitStr, Meta, ReturnType, Token, Type,
};

/// Every attribute name `#[controller]` takes off the methods and the impl block.
pub(crate) const ATTRIBUTES: &[&str] = &[
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "head",
    "options",
    "all",
    "sse",
    "http_code",
    "header",
    "redirect",
    "use_guards",
    "use_layer",
    "api_response",
];

/// Extractors a handler may take: the `Handler` impls of nest-core stop at 12.
const MAX_EXTRACTORS: usize = 12;

/// The name of a nest attribute (`get`, `sse`, …), by the last segment of its path.
pub(crate) fn nest_attribute(attr: &Attribute) -> Option<&'static str> {
    let last = attr.path().segments.last()?;
    ATTRIBUTES.iter().copied().find(|name| last.ident == name)
}

/// A method attribute: which `Routes` method registers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
    All,
}

impl HttpMethod {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "get" => Self::Get,
            "post" => Self::Post,
            "put" => Self::Put,
            "patch" => Self::Patch,
            "delete" => Self::Delete,
            "head" => Self::Head,
            "options" => Self::Options,
            "all" => Self::All,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Post => "post",
            Self::Put => "put",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::Head => "head",
            Self::Options => "options",
            Self::All => "all",
        }
    }
}

/// One `#[get("/path")]`-style attribute.
struct MethodRoute {
    method: HttpMethod,
    path: String,
    /// The path with its parameter names left out: what two conflicting routes share.
    shape: String,
    span: Span,
    attr: Attribute,
}

/// The per-route settings, in the order they were written (guards run in that order).
enum Setting {
    HttpCode(LitInt),
    Header(LitStr, LitStr),
    Redirect(LitStr, LitInt),
    Guard(Expr),
    Layer(Expr),
}

/// What the OpenAPI document says of the route besides its types.
struct ApiDoc {
    /// The doc comment: its first paragraph is the summary, the rest the description.
    summary: Option<String>,
    description: Option<String>,
    /// `#[api_response(404, "No such room")]`.
    responses: Vec<(LitInt, LitStr)>,
    /// The extractors' types, as written.
    inputs: Vec<Type>,
}

/// The parsed route attributes of one handler method.
pub(crate) struct Route {
    routes: Vec<MethodRoute>,
    sse: Option<(bool, Attribute)>,
    settings: Vec<Setting>,
    handler: TokenStream,
    /// The method's name and return type, which `#[sse]` checks.
    name: Ident,
    output: ReturnType,
    api: ApiDoc,
}

/// A method's duplicate-detection key, how to name it, and the attribute to blame.
pub(crate) struct RouteKey {
    pub(crate) key: (&'static str, String),
    pub(crate) describe: String,
    pub(crate) attr: Attribute,
}

impl Route {
    /// Takes the nest attributes off `method`; `Ok(None)` if it has none (a plain method).
    pub(crate) fn extract(method: &mut ImplItemFn, errors: &mut Errors) -> Option<Self> {
        let (nest, other): (Vec<Attribute>, Vec<Attribute>) = method
            .attrs
            .drain(..)
            .partition(|attr| nest_attribute(attr).is_some());
        method.attrs = other;
        if nest.is_empty() {
            return None;
        }
        let (summary, description) = doc_paragraphs(&method.attrs);
        let mut route = Route {
            routes: Vec::new(),
            sse: None,
            settings: Vec::new(),
            handler: TokenStream::new(),
            name: method.sig.ident.clone(),
            output: method.sig.output.clone(),
            api: ApiDoc {
                summary,
                description,
                responses: Vec::new(),
                inputs: method
                    .sig
                    .inputs
                    .iter()
                    .filter_map(|arg| match arg {
                        FnArg::Typed(typed) => Some((*typed.ty).clone()),
                        FnArg::Receiver(_) => None,
                    })
                    .collect(),
            },
        };
        let mut failed = false;
        for attr in nest {
            if let Err(err) = route.parse_attribute(&attr) {
                errors.push(err);
                failed = true;
            }
        }
        if route.routes.is_empty() {
            if failed {
                // The method attribute itself was wrong: that error is enough.
                return None;
            }
            errors.push(syn::Error::new_spanned(
                &method.sig.ident,
                "this method has route settings but no route: add a method attribute such as \
                 `#[get(\"/path\")]`",
            ));
            return None;
        }
        if let Some((false, attr)) = &route.sse {
            for r in &route.routes {
                if r.method != HttpMethod::Get {
                    errors.push(syn::Error::new_spanned(
                        attr,
                        format!(
                            "SSE routes must be GET (browsers' EventSource only sends GET), but this \
                             one is `#[{}]`; use `#[sse(allow_non_get)]` to stream to fetch clients",
                            r.method.name()
                        ),
                    ));
                }
            }
        }
        match handler_closure(method) {
            Ok(handler) => route.handler = handler,
            Err(err) => errors.push(err),
        }
        Some(route)
    }

    fn parse_attribute(&mut self, attr: &Attribute) -> syn::Result<()> {
        let name = nest_attribute(attr).unwrap_or_default();
        if let Some(method) = HttpMethod::from_name(name) {
            let lit = match &attr.meta {
                Meta::Path(_) => None,
                _ => Some(attr.parse_args::<LitStr>()?),
            };
            let (path, span) = lit
                .map(|lit| (lit.value(), lit.span()))
                .unwrap_or((String::new(), attr.span()));
            let shape = nest_path::parse(&path)
                .map_err(|err| syn::Error::new(span, err))?
                .shape();
            self.routes.push(MethodRoute {
                method,
                path,
                shape,
                span,
                attr: attr.clone(),
            });
            return Ok(());
        }
        match name {
            "sse" => {
                if self.sse.is_some() {
                    return Err(syn::Error::new_spanned(attr, "duplicate `#[sse]`"));
                }
                let allow_non_get = match &attr.meta {
                    Meta::Path(_) => false,
                    _ => {
                        let ident: syn::Ident = attr.parse_args().map_err(|_| {
                            syn::Error::new_spanned(
                                attr,
                                "expected `#[sse]` or `#[sse(allow_non_get)]`",
                            )
                        })?;
                        if ident != "allow_non_get" {
                            return Err(syn::Error::new_spanned(ident, "expected `allow_non_get`"));
                        }
                        true
                    }
                };
                self.sse = Some((allow_non_get, attr.clone()));
            }
            "http_code" => {
                let code: LitInt = attr.parse_args()?;
                let value: u16 = code.base10_parse()?;
                if !(100..=999).contains(&value) {
                    return Err(syn::Error::new_spanned(
                        code,
                        "an HTTP status code is between 100 and 999",
                    ));
                }
                self.settings.push(Setting::HttpCode(code));
            }
            "header" => {
                let args =
                    attr.parse_args_with(Punctuated::<LitStr, Token![,]>::parse_terminated)?;
                let [name, value] = <[LitStr; 2]>::try_from(args.into_iter().collect::<Vec<_>>())
                    .map_err(|_| {
                    syn::Error::new_spanned(attr, "expected `#[header(\"name\", \"value\")]`")
                })?;
                if !is_header_name(&name.value()) {
                    return Err(syn::Error::new_spanned(name, "invalid header name"));
                }
                if !is_header_value(&value.value()) {
                    return Err(syn::Error::new_spanned(value, "invalid header value"));
                }
                self.settings.push(Setting::Header(name, value));
            }
            "redirect" => {
                let RedirectArgs { to, status } = attr.parse_args()?;
                if !is_header_value(&to.value()) {
                    return Err(syn::Error::new_spanned(to, "invalid redirect location"));
                }
                let value: u16 = status.base10_parse()?;
                if !(300..=399).contains(&value) {
                    return Err(syn::Error::new_spanned(
                        status,
                        "a redirect status is between 300 and 399",
                    ));
                }
                self.settings.push(Setting::Redirect(to, status));
            }
            "use_guards" => {
                for guard in parse_exprs(attr)? {
                    self.settings.push(Setting::Guard(guard));
                }
            }
            "use_layer" => self.settings.push(Setting::Layer(attr.parse_args()?)),
            "api_response" => {
                let ApiResponseArgs {
                    status,
                    description,
                } = attr.parse_args()?;
                let value: u16 = status.base10_parse()?;
                if !(100..=599).contains(&value) {
                    return Err(syn::Error::new_spanned(
                        status,
                        "an OpenAPI response status is between 100 and 599",
                    ));
                }
                self.api.responses.push((status, description));
            }
            _ => unreachable!("every nest attribute is handled"),
        }
        Ok(())
    }

    /// The keys the duplicate check compares.
    pub(crate) fn keys(&self) -> impl Iterator<Item = RouteKey> + '_ {
        self.routes.iter().map(|r| RouteKey {
            key: (r.method.name(), r.shape.clone()),
            describe: format!("#[{}(\"{}\")]", r.method.name(), r.path),
            attr: r.attr.clone(),
        })
    }

    /// `routes.get("/path", handler).sse().http_code(201)…;`, once per method attribute.
    /// `controller` names the operation in the OpenAPI document, with the method's name.
    pub(crate) fn register(
        &self,
        krate: &TokenStream,
        routes: &Ident,
        controller: &str,
    ) -> TokenStream {
        let handler = &self.handler;
        let settings: Vec<TokenStream> = self
            .settings
            .iter()
            .map(|setting| match setting {
                Setting::HttpCode(code) => quote!(.http_code(#code)),
                Setting::Header(name, value) => quote!(.header(#name, #value)),
                Setting::Redirect(to, status) => quote!(.redirect(#to, #status)),
                Setting::Guard(guard) => quote!(.guard(#guard)),
                Setting::Layer(layer) => quote!(.layer(#layer)),
            })
            .collect();
        let sse = match &self.sse {
            None => quote!(),
            Some((allow_non_get, _)) => self.mark_sse(krate, *allow_non_get),
        };
        let several = self.routes.len() > 1;
        self.routes
            .iter()
            .map(|r| {
                let method = format_ident!("{}", r.method.name(), span = r.span);
                let path = LitStr::new(&r.path, r.span);
                let id = match several {
                    false => format!("{controller}_{}", self.name),
                    true => format!("{controller}_{}_{}", self.name, r.method.name()),
                };
                let doc = self.describe(krate, &id);
                quote! {
                    #routes.#method(#path, #handler) #sse #(#settings)* #doc;
                }
            })
            .collect()
    }

    /// `.__doc(|op| …)`: each type of the signature describes itself if it can (the probes of
    /// `openapi::__private`), then the doc comment and `#[api_response]`s.
    fn describe(&self, krate: &TokenStream, id: &str) -> TokenStream {
        let private = quote!(#krate::openapi::__private);
        let inputs = self.api.inputs.iter().map(|ty| {
            quote! {
                #[allow(clippy::needless_borrow)]
                let op = (&&#private::Probe::<#ty>::new()).describe_input(op);
            }
        });
        let output = match &self.output {
            ReturnType::Default => quote! {
                #[allow(clippy::needless_borrow)]
                let op = (&&#private::Probe::<()>::new()).describe_output(op);
            },
            ReturnType::Type(_, ty) if !names_impl_trait(ty) => {
                quote! {
                    #[allow(clippy::needless_borrow)]
                    let op = (&&#private::Probe::<#ty>::new()).describe_output(op);
                }
            }
            ReturnType::Type(..) => quote!(),
        };
        let summary = self.api.summary.iter();
        let description = self.api.description.iter();
        let responses = self
            .api
            .responses
            .iter()
            .map(|(status, text)| quote!(.response(#status, #text)));
        quote! {
            .__doc(|op| {
                #[allow(unused_imports)]
                use #private::{
                    DescribedInput as _, DescribedOutput as _, NotDescribedInput as _,
                    NotDescribedOutput as _,
                };
                let op = op.operation_id(#id);
                #(#inputs)*
                #output
                op #(.summary(#summary))* #(.description(#description))* #(#responses)*
            })
        }
    }
}

/// `#[api_response(404, "No such room")]`.
struct ApiResponseArgs {
    status: LitInt,
    description: LitStr,
}

impl Parse for ApiResponseArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let status = input.parse()?;
        input.parse::<Token![,]>()?;
        let description = input.parse()?;
        Ok(Self {
            status,
            description,
        })
    }
}

/// A doc comment's first paragraph (the summary) and the rest (the description), each with its
/// lines joined.
fn doc_paragraphs(attrs: &[Attribute]) -> (Option<String>, Option<String>) {
    let lines = doc_lines(attrs);
    let mut paragraphs = lines
        .split(|line| line.is_empty())
        .filter(|p| !p.is_empty())
        .map(|p| p.join(" "));
    let summary = paragraphs.next();
    let rest: Vec<String> = paragraphs.collect();
    (summary, (!rest.is_empty()).then(|| rest.join("\n\n")))
}

/// The lines of an item's doc comment, trimmed (an empty line ends a paragraph).
pub(crate) fn doc_lines(attrs: &[Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

impl Route {
    /// `.__sse(assert_sse::<ReturnType>(), allow_non_get)`: the check that the handler returns an
    /// SSE body is made on the return type's own tokens, so that the error points at it (at the
    /// method's name when it has none), once. The plain `.sse()` would check the same type but
    /// report it on the attribute.
    fn mark_sse(&self, krate: &TokenStream, allow_non_get: bool) -> TokenStream {
        let assert = quote!(#krate::handler::__private::assert_sse);
        let proof = match &self.output {
            ReturnType::Default => quote_spanned!(self.name.span()=> #assert::<()>()),
            ReturnType::Type(_, ty) if !names_impl_trait(ty) => {
                quote_spanned!(ty.span()=> #assert::<#ty>())
            }
            // `impl Trait` cannot be named in the assertion: the checked method, on its span.
            ReturnType::Type(_, ty) => {
                let method = if allow_non_get {
                    "allow_non_get"
                } else {
                    "sse"
                };
                let method = Ident::new(method, ty.span());
                return quote!(.#method());
            }
        };
        quote!(.__sse(#proof, #allow_non_get))
    }
}

/// Whether `impl Trait` appears anywhere in `ty` (`impl Future`, `Result<impl X, E>`).
fn names_impl_trait(ty: &Type) -> bool {
    fn scan(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => ident == "impl",
            proc_macro2::TokenTree::Group(group) => scan(group.stream()),
            _ => false,
        })
    }
    scan(quote!(#ty))
}

struct RedirectArgs {
    to: LitStr,
    status: LitInt,
}

impl Parse for RedirectArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let to = input.parse()?;
        let status = if input.is_empty() {
            // NestJS's `@Redirect(url)` defaults to 302 Found.
            LitInt::new("302", to_span(&to))
        } else {
            input.parse::<Token![,]>()?;
            input.parse()?
        };
        Ok(Self { to, status })
    }
}

fn to_span(lit: &LitStr) -> Span {
    lit.span()
}

/// `#[use_guards(A, B::new())]`: one or more expressions.
pub(crate) fn parse_exprs(attr: &Attribute) -> syn::Result<Vec<Expr>> {
    let exprs = attr.parse_args_with(Punctuated::<Expr, Token![,]>::parse_terminated)?;
    if exprs.is_empty() {
        return Err(syn::Error::new_spanned(attr, "expected at least one guard"));
    }
    Ok(exprs.into_iter().collect())
}

/// A token (RFC 9110), as `http::HeaderName` accepts it.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Visible ASCII, spaces and tabs, as `http::HeaderValue::from_str` accepts them.
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// The receiver forms a handler may have.
enum Receiver {
    /// `&self`: the closure lends the `Arc`'s content.
    Ref,
    /// `self: Arc<Self>`: the closure passes the `Arc` on.
    Arc,
}

/// `|this: Arc<Self>, a0: T0, …| async move { Self::name(&this, a0, …).await }`.
fn handler_closure(method: &ImplItemFn) -> syn::Result<TokenStream> {
    let sig = &method.sig;
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "route handlers cannot be generic",
        ));
    }
    let mut inputs = sig.inputs.iter();
    let receiver = match inputs.next() {
        Some(FnArg::Receiver(r)) => receiver_kind(r)?,
        _ => {
            return Err(syn::Error::new_spanned(
                &sig.ident,
                "route handlers take `&self` or `self: Arc<Self>` first",
            ))
        }
    };
    let mut args = Vec::new();
    let mut types = Vec::new();
    for (i, input) in inputs.enumerate() {
        let FnArg::Typed(typed) = input else {
            unreachable!("only the first argument can be a receiver")
        };
        check_extractor_type(&typed.ty)?;
        args.push(format_ident!("__nest_arg{i}"));
        types.push(&typed.ty);
    }
    if args.len() > MAX_EXTRACTORS {
        return Err(syn::Error::new_spanned(
            &sig.inputs,
            format!("a route handler takes at most {MAX_EXTRACTORS} extractors"),
        ));
    }
    let name = &sig.ident;
    let this = match receiver {
        Receiver::Ref => quote!(&this),
        Receiver::Arc => quote!(this),
    };
    let call = quote!(Self::#name(#this, #(#args),*));
    let call = if sig.asyncness.is_some() {
        quote!(#call.await)
    } else {
        call
    };
    // Spanned on the method's name: a handler that is not one (an argument that is no extractor,
    // a result that is no response) is reported there.
    Ok(quote_spanned! {name.span()=>
        |this: ::std::sync::Arc<Self>, #(#args: #types),*| async move { #call }
    })
}

fn receiver_kind(receiver: &syn::Receiver) -> syn::Result<Receiver> {
    let unsupported = || {
        syn::Error::new_spanned(
            receiver,
            "unsupported receiver: route handlers take `&self` or `self: Arc<Self>`",
        )
    };
    if receiver.colon_token.is_none() {
        return match (&receiver.reference, &receiver.mutability) {
            (Some(_), None) => Ok(Receiver::Ref),
            _ => Err(unsupported()),
        };
    }
    if receiver.mutability.is_some() {
        return Err(unsupported());
    }
    match &*receiver.ty {
        Type::Reference(r) if r.mutability.is_none() && is_self(&r.elem) => Ok(Receiver::Ref),
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last().ok_or_else(unsupported)?;
            match &last.arguments {
                syn::PathArguments::AngleBracketed(args)
                    if last.ident == "Arc" && args.args.len() == 1 =>
                {
                    match &args.args[0] {
                        syn::GenericArgument::Type(ty) if is_self(ty) => Ok(Receiver::Arc),
                        _ => Err(unsupported()),
                    }
                }
                _ => Err(unsupported()),
            }
        }
        _ => Err(unsupported()),
    }
}

fn is_self(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self"))
}

/// Extractors are owned values built from the request: no borrows, no `impl Trait`.
fn check_extractor_type(ty: &Type) -> syn::Result<()> {
    match ty {
        Type::Reference(_) => Err(syn::Error::new_spanned(
            ty,
            "unsupported argument: extractors are owned values (`String`, `Path<u32>`, …), not references",
        )),
        Type::ImplTrait(_) => Err(syn::Error::new_spanned(
            ty,
            "unsupported argument: `impl Trait` cannot be an extractor",
        )),
        Type::Infer(_) | Type::Never(_) | Type::TraitObject(_) | Type::BareFn(_) => {
            Err(syn::Error::new_spanned(ty, "unsupported argument type for an extractor"))
        }
        _ => Ok(()),
    }
}

/// Errors collected across a whole impl block, reported together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }

    pub(crate) fn into_compile_errors(self) -> Option<TokenStream> {
        self.0.map(|err| err.to_compile_error())
    }
}
