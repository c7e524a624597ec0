//! # nest-macros
//!
//! Attribute macros for nest controllers: the decorator style of the seed (`@Controller('')`,
//! `@Get('/sse')`, `@Sse()`), checked at compile time. Use them through nest-core's prelude
//! (`use nest_core::prelude::*;`, or `nest::prelude::*` with the facade).
//!
//! `#[controller]` turns an annotated `impl` block into the same block plus an implementation of
//! nest-core's `Controller` trait. The trait stays for those who prefer it; both styles build the
//! same route table.
//!
//! # Example: the two styles side by side
//!
//! With the macros:
//!
//! ```
//! use nest_core::prelude::*;
//!
//! struct Users;
//!
//! #[controller("/users")]
//! impl Users {
//!     #[get("/:id")]
//!     async fn find(&self, Path(id): Path<u32>) -> Json<serde_json::Value> {
//!         Json(serde_json::json!({ "id": id }))
//!     }
//!
//!     #[post]
//!     #[http_code(201)]
//!     async fn create(&self) -> &'static str {
//!         "created"
//!     }
//!
//!     #[get("/events")]
//!     #[sse]
//!     async fn events(&self) -> SseBody {
//!         let (writer, body) = get_sse_stream(SseOptions::new());
//!         writer.write(serde_json::json!({ "hello": "world" })).unwrap();
//!         body
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let server = nest_core::test_util::TestServer::start(NestApp::new().controller(Users)).await;
//! let res = reqwest::get(server.url("/users/7")).await.unwrap();
//! assert_eq!(res.text().await.unwrap(), r#"{"id":7}"#);
//! let res = reqwest::Client::new().post(server.url("/users")).send().await.unwrap();
//! assert_eq!(res.status(), 201);
//! # server.shutdown().await;
//! # });
//! ```
//!
//! The same controller with the trait:
//!
//! ```
//! use std::sync::Arc;
//! use nest_core::prelude::*;
//!
//! struct Users;
//!
//! impl Users {
//!     async fn find(self: Arc<Self>, Path(id): Path<u32>) -> Json<serde_json::Value> {
//!         Json(serde_json::json!({ "id": id }))
//!     }
//!     async fn create(self: Arc<Self>) -> &'static str {
//!         "created"
//!     }
//!     async fn events(self: Arc<Self>) -> SseBody {
//!         let (writer, body) = get_sse_stream(SseOptions::new());
//!         writer.write(serde_json::json!({ "hello": "world" })).unwrap();
//!         body
//!     }
//! }
//!
//! impl Controller for Users {
//!     fn prefix(&self) -> &str {
//!         "/users"
//!     }
//!     fn routes(routes: &mut Routes<Self>) {
//!         routes.get("/:id", Self::find);
//!         routes.post("", Self::create).http_code(201);
//!         routes.get("/events", Self::events).sse();
//!     }
//! }
//!
//! assert!(NestApp::new().controller(Users).into_service().is_ok());
//! ```
//!
//! # The attributes
//!
//! | macro style | trait style |
//! |---|---|
//! | `#[controller("/prefix")]` on `impl T` | `impl Controller for T { fn prefix(&self) -> &str { "/prefix" } … }` |
//! | `#[get("/path")]` (`post`, `put`, `patch`, `delete`, `head`, `options`, `all`); no argument: `""` | `routes.get("/path", handler)` |
//! | `#[sse]` | `.sse()` (`routes.sse(path, handler)`) |
//! | `#[sse(allow_non_get)]` | `.allow_non_get()` |
//! | `#[http_code(201)]` | `.http_code(201)` |
//! | `#[header("cache-control", "none")]` | `.header("cache-control", "none")` |
//! | `#[redirect("/to", 301)]` (status defaults to 302) | `.redirect("/to", 301)` |
//! | `#[use_guards(A, B::new())]` on a method | `.guard(A).guard(B::new())` |
//! | `#[use_guards(A)]` on the impl block | `routes.guard(A)` before the routes |
//! | `#[use_layer(layer)]` on a method / on the impl block | `.layer(layer)` / `routes.layer(layer)` |
//! | `#[api_response(404, "No such room")]`, the doc comment | `.doc(\|op\| op.response(404, "No such room").summary("…"))` |
//!
//! # OpenAPI
//!
//! Every route is described in the app's OpenAPI document from its signature: each argument
//! and the return type that implement nest-core's `DescribeInput` / `DescribeOutput`
//! (`Path<T>`, `Query<T>`, `Json<T>` with `T: JsonSchema`, `TypedSseBody<E>`, …) say what they
//! are; the others are left out, so a controller whose types have no schema still compiles. The
//! method's doc comment is the operation's summary (first paragraph) and description (the
//! rest); its id is the controller's name and the method's (`Users_find`).
//!
//! Guards (expressions evaluated once, each implementing `CanActivate`) run in the order written;
//! controller guards run before route guards. A guard that answers `false` gives 403 in the
//! `HttpException` shape, before the handler runs, on SSE routes as on the others.
//!
//! # Handlers
//!
//! A route method takes `&self` or `self: Arc<Self>`, then any extractors in any order (up to 12;
//! patterns such as `Path(id): Path<u32>` work), and returns anything that becomes a response.
//! An `#[sse]` route returns nest-core's `SseResponse`: the `SseBody`, or `Result<SseBody, E>` to
//! answer `E` (a 403, a 404) instead of starting the stream. It is usually an `async fn`; a plain
//! `fn` is called inside the handler's future, so it must not block. Methods without route
//! attributes stay plain methods.
//!
//! # Checked at compile time
//!
//! With the error on the offending attribute or argument:
//!
//! - `#[sse]` on a route that is not GET, without `#[sse(allow_non_get)]`: "SSE routes must be GET";
//! - two routes of one controller with the same method and path (trailing slashes and parameter
//!   names do not count: `/:id/` and `/:name` are the same route);
//! - a path that the router would reject, by the same grammar (the nest-path crate; see nest-core's
//!   `Routes`): parameters are `:name` with letters, digits and `_`, each once, a wildcard
//!   `*name` comes last (and not in the controller's prefix), no braces, no empty segment (`//`).
//!   Slashes at the ends do not count: `""` is the prefix itself, `":id"` is `"/:id"`;
//! - an `#[sse]` method whose return type is not an SSE response (`String`, `()`, even
//!   `Response`): "`String` is not an SSE response", on the return type (on the method's name
//!   when it has none);
//! - an invalid status code, header, or redirect;
//! - a receiver other than `&self` / `self: Arc<Self>`, a generic handler, a reference or
//!   `impl Trait` argument;
//! - a route attribute outside a `#[controller]` impl block.
//!
//! Whether each argument is an extractor, and the result a response, is checked by the compiler
//! on the generated registration, with the error on the method's name ("… is not a nest
//! handler", with notes on what a handler takes and returns).
//!
//! # Naming nest-core
//!
//! The generated code names nest-core `::nest_core`, or `::nest` when the crate depends on the
//! `nest` facade instead (found in Cargo.toml with proc-macro-crate). Override it with
//! `#[controller("/prefix", crate = "::my::reexport")]`.

mod controller;
mod crate_path;
mod route;
mod sse_events;

use proc_macro::TokenStream;
use quote::quote;
use syn::parse_macro_input;

/// Implements nest-core's `Controller` for the type of the annotated `impl` block, from the route
/// attributes of its methods.
///
/// `#[controller]`, `#[controller("/prefix")]` (`""` allowed, as the seed's `@Controller('')`),
/// `#[controller("/prefix", crate = "::nest")]`. `#[use_guards(…)]` and `#[use_layer(…)]` on the
/// same block apply to every route. See the [crate docs](crate) for the attributes.
///
/// # Example
///
/// The seed's controller; the comments show the trait style it expands to.
///
/// ```
/// use std::sync::Arc;
/// use nest_core::prelude::*;
///
/// struct AuthGuard;
///
/// impl CanActivate for AuthGuard {
///     fn can_activate<'a>(&'a self, req: &'a nest_core::extract::RequestCtx) -> futures_util::future::BoxFuture<'a, bool> {
///         let ok = req.parts().headers.contains_key("authorization");
///         Box::pin(async move { ok })
///     }
/// }
///
/// struct AppController;
///
/// #[controller("")]                  // impl Controller for AppController { fn prefix(&self) -> &str { "" }
/// impl AppController {               //     fn routes(routes: &mut Routes<Self>) {
///     #[get("/sse")]                 //         routes.get("/sse", |this: Arc<Self>| async move { Self::sse(&this).await })
///     #[sse]                         //             .sse()
///     #[use_guards(AuthGuard)]       //             .guard(AuthGuard);
///     async fn sse(&self) -> SseBody {
///         let (write, body) = get_sse_stream(SseOptions::new());
///         write.write(serde_json::json!({ "hello": "world" })).unwrap();
///         body
///     }
/// }
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let server = nest_core::test_util::TestServer::start(NestApp::new().controller(AppController)).await;
/// let res = reqwest::get(server.url("/sse")).await.unwrap();
/// assert_eq!(res.status(), 403); // no `authorization`: the stream never starts
/// let res = reqwest::Client::new().get(server.url("/sse")).header("authorization", "yes").send().await.unwrap();
/// assert_eq!(res.headers()["content-type"], "text/event-stream");
/// # server.shutdown().await;
/// # });
/// ```
#[proc_macro_attribute]
pub fn controller(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(attr as controller::ControllerArgs);
    let item = match syn::parse::<syn::ItemImpl>(item.clone()) {
        Ok(item) => item,
        Err(_) => {
            return misplaced(
                "`#[controller]` goes on an impl block: `#[controller(\"/prefix\")] impl MyController { … }`",
                item,
            )
        }
    };
    controller::expand(args, item).into()
}

/// Implements nest-core's `SseEvents` for an enum whose variants are a stream's event types:
/// `Variant(Data)` is `event: variant` with `Data` as JSON (`Data: Serialize + JsonSchema`), a
/// unit variant is an event with empty data. Names are the variants' in lower camel case
/// (`MyEvent` is `myEvent`) unless `#[sse_event(name = "…")]` says; `#[sse_event(text)]` sends
/// a variant's data (`Display`) as text instead of JSON; doc comments describe the events in the
/// OpenAPI document.
///
/// # Example
///
/// ```
/// use nest_core::sse::SseEvents;
///
/// #[derive(SseEvents)]
/// enum Progress {
///     /// A line of the log.
///     Line(String),
///     #[sse_event(name = "end")]
///     Finished,
/// }
///
/// let bytes = Progress::Line("ok".into()).to_sse_event().encode().unwrap();
/// assert_eq!(bytes.as_bytes(), b"event: line\ndata: \"ok\"\n\n");
/// assert_eq!(Progress::Finished.event_name(), "end");
/// ```
#[proc_macro_derive(SseEvents, attributes(sse_event))]
pub fn derive_sse_events(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as syn::DeriveInput);
    sse_events::expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// An error at the attribute, with the item unchanged so that nothing else fails.
fn misplaced(message: &str, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    let error = syn::Error::new(proc_macro2::Span::call_site(), message).to_compile_error();
    quote!(#error #item).into()
}

macro_rules! route_attributes {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// Only valid on a method of a [`#[controller]`](macro@controller) impl block, which takes it
        /// off; anywhere else it is a compile error.
        #[proc_macro_attribute]
        pub fn $name(_attr: TokenStream, item: TokenStream) -> TokenStream {
            misplaced(
                concat!(
                    "`#[", stringify!($name), "]` must be used on a method of a `#[controller]` impl block"
                ),
                item,
            )
        }
    )*};
}

route_attributes! {
    /// A GET route (HEAD is answered by it too): `#[get("/path")]`, or `#[get]` for the prefix.
    get;
    /// A POST route: `#[post("/path")]` or `#[post]`.
    post;
    /// A PUT route: `#[put("/path")]` or `#[put]`.
    put;
    /// A PATCH route: `#[patch("/path")]` or `#[patch]`.
    patch;
    /// A DELETE route: `#[delete("/path")]` or `#[delete]`.
    delete;
    /// A HEAD route (overrides the one GET routes answer): `#[head("/path")]` or `#[head]`.
    head;
    /// An OPTIONS route: `#[options("/path")]` or `#[options]`.
    options;
    /// A route for every method: `#[all("/path")]` or `#[all]`.
    all;
    /// The route streams Server-Sent Events (the seed's `@Sse()`); it must be GET unless written
    /// `#[sse(allow_non_get)]`, and the method returns `SseBody` or `Result<SseBody, E>` (checked
    /// on its return type).
    sse;
    /// The status of successful responses (NestJS's `@HttpCode(201)`): `#[http_code(201)]`.
    http_code;
    /// A response header unless the handler set it (NestJS's `@Header`):
    /// `#[header("cache-control", "none")]`.
    header;
    /// Redirects successful responses (NestJS's `@Redirect`): `#[redirect("/to", 301)]`; the status
    /// defaults to 302.
    redirect;
    /// A response the route may answer, for the OpenAPI document (NestJS's `@ApiResponse`):
    /// `#[api_response(404, "No such room")]`; an error status has the `HttpException` body.
    api_response;
}

/// Guards (`CanActivate` expressions, evaluated once) on a route, or on every route when on the
/// `#[controller]` impl block: `#[use_guards(AuthGuard, RoleGuard::new("admin"))]`. A guard that
/// answers `false` gives 403 before the handler (or the SSE stream) starts.
#[proc_macro_attribute]
pub fn use_guards(attr: TokenStream, item: TokenStream) -> TokenStream {
    on_controller_block("use_guards", attr, item)
}

/// A tower layer around a route, or around every route when on the `#[controller]` impl block:
/// `#[use_layer(SetResponseHeaderLayer::overriding(…))]`.
#[proc_macro_attribute]
pub fn use_layer(attr: TokenStream, item: TokenStream) -> TokenStream {
    on_controller_block("use_layer", attr, item)
}

/// `#[use_guards(…)] #[controller] impl …`: written above `#[controller]`, the attribute runs
/// first; it moves itself below `#[controller]`, which then takes it. Anywhere else: an error.
fn on_controller_block(name: &str, attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Ok(mut block) = syn::parse::<syn::ItemImpl>(item.clone()) {
        let position = block.attrs.iter().position(|a| {
            a.path()
                .segments
                .last()
                .is_some_and(|s| s.ident == "controller")
        });
        if let Some(position) = position {
            let controller = block.attrs.remove(position);
            let rest = std::mem::take(&mut block.attrs);
            let name = syn::Ident::new(name, proc_macro2::Span::call_site());
            let args = proc_macro2::TokenStream::from(attr);
            let item = quote! {
                #controller
                #[#name(#args)]
                #(#rest)*
                #block
            };
            return item.into();
        }
    }
    let message = format!(
        "`#[{name}]` must be used on a `#[controller]` impl block or on one of its methods"
    );
    misplaced(&message, item)
}
