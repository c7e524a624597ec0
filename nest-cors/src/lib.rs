//! # nest-cors
//!
//! A CORS layer for nest, and for any tower, hyper or axum service: the option set of the npm
//! [`cors`](https://www.npmjs.com/package/cors) package, answered the way the Fetch standard
//! says, and a configuration error is an [`Err`] from [`CorsBuilder::build`], never a panic.
//!
//! # Example
//!
//! A public API: any origin may read, no credentials (the default).
//!
//! ```
//! use http::{header, Method, Request, Response, StatusCode};
//! use nest_cors::CorsLayer;
//! use std::convert::Infallible;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = ServiceBuilder::new()
//!     .layer(CorsLayer::new())
//!     .service(service_fn(|_req: Request<String>| async {
//!         Ok::<_, Infallible>(Response::new(String::from("data: hello\n\n")))
//!     }));
//!
//! let req = Request::get("/events")
//!     .header(header::ORIGIN, "https://anyone.example")
//!     .body(String::new())
//!     .unwrap();
//! let res = app.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
//!
//! let preflight = Request::builder()
//!     .method(Method::OPTIONS)
//!     .uri("/items")
//!     .header(header::ORIGIN, "https://anyone.example")
//!     .header(header::ACCESS_CONTROL_REQUEST_METHOD, "DELETE")
//!     .body(String::new())
//!     .unwrap();
//! let res = app.oneshot(preflight).await.unwrap();
//! assert_eq!(res.status(), StatusCode::NO_CONTENT);
//! assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_METHODS], "GET,HEAD,PUT,PATCH,POST,DELETE");
//! # }
//! ```
//!
//! A credentialed single-page app on a known origin (`EventSource` with `withCredentials`,
//! `fetch` with `credentials: "include"`):
//!
//! ```
//! use http::{header, Request, Response};
//! use nest_cors::{AllowOrigin, CorsLayer};
//! use std::convert::Infallible;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let cors = CorsLayer::builder()
//!     .origin(AllowOrigin::exact("https://app.example"))
//!     .credentials(true)
//!     .allowed_headers(["content-type", "authorization", "last-event-id"])
//!     .build()
//!     .expect("valid CORS configuration");
//! let app = cors.layer(service_fn(|_req: Request<()>| async {
//!     Ok::<_, Infallible>(Response::new(()))
//! }));
//!
//! let req = Request::get("/me")
//!     .header(header::ORIGIN, "https://app.example")
//!     .body(())
//!     .unwrap();
//! let res = app.oneshot(req).await.unwrap();
//! assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
//! assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
//! assert_eq!(res.headers()[header::VARY], "Origin");
//! # }
//! ```
//!
//! A regex of subdomains (anchored: it must match the whole origin):
//!
//! ```
//! use http::{header, Request, Response};
//! use nest_cors::{AllowOrigin, CorsLayer};
//! use std::convert::Infallible;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let cors = CorsLayer::builder()
//!     .origin(AllowOrigin::regex(r"https://[a-z0-9-]+\.example\.com"))
//!     .build()
//!     .expect("valid CORS configuration");
//! let app = cors.layer(service_fn(|_req: Request<()>| async {
//!     Ok::<_, Infallible>(Response::new(()))
//! }));
//!
//! for (origin, allowed) in [
//!     ("https://shop.example.com", true),
//!     ("https://shop.example.com.evil.io", false),
//!     ("https://example.com", false),
//! ] {
//!     let req = Request::get("/").header(header::ORIGIN, origin).body(()).unwrap();
//!     let res = app.clone().oneshot(req).await.unwrap();
//!     assert_eq!(res.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN), allowed);
//! }
//! # }
//! ```
//!
//! # Where to put the layer
//!
//! Apply CORS app-wide, around the router, its 404/405 fallback and the panic catcher: then
//! preflights for paths with no `OPTIONS` route (every path, usually) and error responses get
//! their headers, and a page can read a 404 or 500 instead of seeing an opaque network error.
//! A CORS layer on a single controller or route cannot see preflights: the router has
//! already answered the `OPTIONS` request (with 404 or 405) before that route is reached.
//!
//! The layer is generic over request and response bodies (`ResBody: Default` builds the
//! preflight's empty body), so it wraps nest's service, a hyper `service_fn` or an axum
//! `Router` alike. It only touches the response head: a streaming body such as an SSE stream
//! passes through unbuffered.
//!
//! # Options
//!
//! The npm `cors` options, as [`CorsBuilder`] methods: see [`CorsBuilder`] for the table of
//! defaults, [`AllowOrigin`] for the origin rules, and [`CorsLayer`] for what a preflight
//! answer carries and how `Vary` is merged.
//!
//! # Where this follows Fetch rather than npm `cors` or tower-http
//!
//! - **Credentials with origin `*`** is a build error (npm `cors` sends the pair, and browsers
//!   reject it). `*` in `methods`, `allowed_headers` or `exposed_headers` with credentials is
//!   an error too: Fetch takes `*` literally on credentialed requests.
//! - **Reflect-any with credentials** (npm's `origin: true, credentials: true`) lets every
//!   website read a logged-in user's responses; it needs the explicit, documented-as-dangerous
//!   [`CorsBuilder::dangerously_allow_credentials_for_any_origin`].
//! - **The origin `null`** is allowed only by an exact `"null"` list entry (or a predicate
//!   that says so), never by reflect-any or a regex.
//! - **Regexes match the whole origin** (npm `cors` uses unanchored `RegExp.test`, so
//!   `/example\.com/` also allows `https://example.com.evil.io`).
//! - **A single exact origin** is sent only to that origin, with `Vary: Origin` (npm `cors`
//!   sends it to every requester).
//! - **`Vary`** is merged into the handler's, with no duplicates; `Vary: Origin` is sent
//!   whenever the answer depends on the origin, even for requests without one.
//! - **One `Origin`, one origin**: a request with two `Origin` headers, or with a value that
//!   is not one serialized origin, is allowed under no rule (see
//!   [`CorsLayer`](CorsLayer#requests-with-more-than-one-origin)); no browser sends one.
//! - **A disallowed origin** gets no CORS headers at all; its preflight is still answered with
//!   the success status, so the browser (not a 404) rejects it. npm `cors` sends the other
//!   headers anyway.
//! - **Only real preflights** (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
//!   are answered; tower-http answers every `OPTIONS` (tower-rs/tower-http#497) and npm `cors`
//!   every `OPTIONS` too.
//! - **`max_age` defaults to 600 s**; with no header (npm's and tower-http's default) browsers
//!   re-preflight after 5 seconds.
//! - **List entries are validated** as browsers serialize origins: `https://app.example/` is
//!   an error suggesting `https://app.example` (it could never match).
//!
//! # Why not tower-http's `CorsLayer`
//!
//! It is not built on `tower_http::cors`: that layer panics on invalid configuration (e.g.
//! credentials with `*`) instead of returning an error, answers every `OPTIONS` request
//! itself so plain `OPTIONS` handlers never run, fixes the preflight status at 200, has no
//! async origin predicate and no default max-age. Fixing each of those from outside would mean
//! re-implementing the preflight path anyway.
//!
//! # Handler-set CORS headers
//!
//! A handler that sets `Access-Control-Allow-Origin` itself takes charge of CORS for that
//! response: the layer leaves its CORS headers alone and only merges `Vary` (see [`Cors`]).
//!
//! # Source files
//!
//! The modules are private; every public type is re-exported at the crate root.
//!
//! - `layer.rs`: [`CorsLayer`], the tower layer holding the validated configuration.
//! - `service.rs`: [`Cors`] and its [`ResponseFuture`]: per request, decide about the origin
//!   once, answer a preflight or call the inner service, then add the headers.
//! - `options.rs`: [`CorsBuilder`], the validation of every option, and the configuration
//!   the service reads (header values built once).
//! - `origin.rs`: [`AllowOrigin`], [`OriginPattern`] and the per-request origin decision.
//! - `preflight.rs`: which requests are preflights, and the headers of their answer.
//! - `vary.rs`: the `Vary` names, merged into the handler's.
//! - `error.rs`: [`CorsError`] and [`Result`].
//! - `tests.rs`: unit tests of the header logic on `service_fn`; `tests/` has the
//!   tests over real sockets (hyper, axum, an SSE stream), and `tests/support/` their server,
//!   raw HTTP/1.1 client and `assert_cors`, which checks a response's CORS headers at once.

mod error;
mod layer;
mod options;
mod origin;
mod preflight;
mod service;
mod vary;

#[cfg(test)]
mod tests;

pub use error::{CorsError, Result};
pub use layer::CorsLayer;
pub use options::CorsBuilder;
pub use origin::{AllowOrigin, OriginPattern};
pub use service::{Cors, ResponseFuture};
