//! Controllers: a path prefix and a table of routes, each with its metadata.
//!
//! This is the trait API; the `#[controller]` attribute macros generate the same implementation
//! from an annotated `impl` block.
//!
//! # Example
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
//! }
//!
//! impl Controller for Users {
//!     fn prefix(&self) -> &str {
//!         "/users"
//!     }
//!     fn routes(routes: &mut Routes<Self>) {
//!         routes.get("/:id", Self::find);
//!         routes.post("/", |_: Arc<Self>| async { "created" }).http_code(201);
//!     }
//! }
//!
//! let app = NestApp::new().controller(Users).into_service();
//! assert!(app.is_ok());
//! ```

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use tower::util::BoxCloneSyncService;
use tower::Layer;
use tower_service::Service;

use crate::extract::{Dependencies, RequestCtx};
use crate::handler::__private::IsSse;
use crate::handler::{Handler, SseResponse};
use crate::openapi::{DescribeInputs, DescribeOutput, Operation, SecurityScheme};
use crate::response::Response;
use crate::Request;

/// A controller: a prefix (the seed's `@Controller('')`) and its routes.
pub trait Controller: Send + Sync + Sized + 'static {
    /// The path prefix of every route of this controller; `""` for none.
    fn prefix(&self) -> &str {
        ""
    }

    /// Registers the routes on `routes`.
    fn routes(routes: &mut Routes<Self>);
}

/// A guard (NestJS's `CanActivate`): runs before the handler; `false` answers 403 Forbidden.
/// Guards apply to SSE routes too, so a stream can require authentication before it starts.
pub trait CanActivate: Send + Sync + 'static {
    /// Whether the request may reach the handler.
    fn can_activate<'a>(&'a self, req: &'a RequestCtx) -> BoxFuture<'a, bool>;

    /// The security scheme this guard checks, for the OpenAPI document: the routes it guards
    /// require it. `None` (the default): the document says only that the route may answer 403.
    fn security(&self) -> Option<SecurityScheme> {
        None
    }
}

impl<F> CanActivate for F
where
    F: Fn(&http::request::Parts) -> bool + Send + Sync + 'static,
{
    fn can_activate<'a>(&'a self, req: &'a RequestCtx) -> BoxFuture<'a, bool> {
        let allowed = self(req.parts());
        Box::pin(async move { allowed })
    }
}

/// What kind of response a route gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteKind {
    /// An ordinary request/response route.
    Plain,
    /// A Server-Sent Events route (the seed's `@Sse()`): GET unless `allow_non_get` was set.
    Sse {
        /// The route may use another method than GET (for `fetch`-based clients; browsers'
        /// `EventSource` only sends GET).
        allow_non_get: bool,
    },
}

/// The service a route is, after its guards and layers: takes the request, never fails.
pub type RouteService = BoxCloneSyncService<Request, Response, Infallible>;

/// A tower layer that can wrap a route ([`Routes::layer`], [`RouteConfig::layer`]): any
/// `Layer<RouteService>` whose service answers a [`Request`] with a [`Response`] and never
/// fails. Implemented for every such layer; the bounds are written once, here.
pub trait RouteLayer: Send + 'static {
    /// Wraps a route's service.
    fn wrap(&self, route: RouteService) -> RouteService;
}

impl<L> RouteLayer for L
where
    L: Layer<RouteService> + Send + 'static,
    L::Service:
        Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    <L::Service as Service<Request>>::Future: Send + 'static,
{
    fn wrap(&self, route: RouteService) -> RouteService {
        BoxCloneSyncService::new(self.layer(route))
    }
}

type LayerFn = Box<dyn FnOnce(RouteService) -> RouteService + Send>;

/// A route's handler with its extractors, type-erased.
pub(crate) type RouteFn = Arc<dyn Fn(RequestCtx) -> BoxFuture<'static, Response> + Send + Sync>;

/// One route of a controller, type-erased, with its metadata.
pub(crate) struct Route {
    pub(crate) method: Option<Method>,
    pub(crate) path: String,
    pub(crate) kind: RouteKind,
    pub(crate) status: Option<StatusCode>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) redirect: Option<(HeaderValue, StatusCode)>,
    pub(crate) guards: Vec<Arc<dyn CanActivate>>,
    pub(crate) layers: Vec<LayerFn>,
    pub(crate) handler: RouteFn,
    pub(crate) deps: Dependencies,
    pub(crate) errors: Vec<String>,
    pub(crate) controller: &'static str,
    /// The handler's type name: a function's names the operation in the OpenAPI document.
    pub(crate) handler_name: &'static str,
    pub(crate) doc: Operation,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Route {
    /// `GET /users/:id (app::Users)`: how errors name a route.
    pub(crate) fn describe(&self) -> String {
        let method = self.method.as_ref().map_or("ALL", Method::as_str);
        format!("{method} {} ({})", self.path, self.controller)
    }
}

/// The route table of a controller being registered; see [`Controller::routes`].
///
/// # Paths
///
/// A route's path is written NestJS's way and joined to the controller's prefix (and the app's
/// global prefix) with one `/` between them. It is a list of segments separated by `/`:
///
/// | segment | matches | captured by [`Path`](crate::extract::Path) as |
/// |---|---|---|
/// | `users` | itself | |
/// | `:id` | one segment | `id` |
/// | `*path` | the rest of the path (one segment or more); last | `path` |
/// | `*` | the same | `wildcard` |
///
/// - Slashes at either end do not count: `""` and `"/"` are the prefix itself (the seed's
///   `@Controller('')`), `"users/:id"` is `"/users/:id"`, and `"/files/*path/"` is `"/files/*path"`.
/// - Names have ASCII letters, digits and `_`; a path names each parameter once.
/// - A request path matches text over a parameter, and a parameter over a wildcard, whatever the
///   order the routes were registered in.
/// - Building the app fails, naming the route, on braces (`/users/{id}` is matchit's syntax, not
///   nest's), on `:` or `*` inside a segment (`/a:b`), on an empty segment (`/a//b`), on a
///   wildcard that is not last, and on two routes that match the same requests with the same
///   method (`/users/:id` and `/users/:name`).
///
/// `#[controller]` checks the same rules at compile time: both use the `nest-path` crate.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use http_body_util::BodyExt;
/// use nest_core::prelude::*;
/// use tower::ServiceExt;
///
/// #[derive(serde::Deserialize)]
/// struct Nested { dir: String, path: String }
///
/// struct Files;
///
/// impl Controller for Files {
///     fn prefix(&self) -> &str {
///         "files"
///     }
///     fn routes(r: &mut Routes<Self>) {
///         r.get("", |_: Arc<Self>| async { "index" });
///         r.get(":dir", |_: Arc<Self>, Path(dir): Path<String>| async move { format!("dir {dir}") });
///         r.get("/readme/", |_: Arc<Self>| async { "the readme" });
///         r.get("/:dir/*path", |_: Arc<Self>, Path(p): Path<Nested>| async move {
///             format!("{} in {}", p.path, p.dir)
///         });
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let app = NestApp::new().controller(Files).into_service().unwrap();
/// let get = |path: &'static str| {
///     let app = app.clone();
///     async move {
///         let req = http::Request::get(path).body(nest_core::body::Body::empty()).unwrap();
///         let body = app.oneshot(req).await.unwrap().into_body().collect().await.unwrap();
///         String::from_utf8(body.to_bytes().to_vec()).unwrap()
///     }
/// };
/// assert_eq!(get("/files").await, "index");
/// assert_eq!(get("/files/readme").await, "the readme"); // text wins over `:dir`
/// assert_eq!(get("/files/docs").await, "dir docs");
/// assert_eq!(get("/files/docs/a/b.md").await, "a/b.md in docs");
///
/// struct Braces;
/// impl Controller for Braces {
///     fn routes(r: &mut Routes<Self>) {
///         r.get("/users/{id}", |_: Arc<Self>| async { "" });
///     }
/// }
/// let err = NestApp::new().controller(Braces).into_service().unwrap_err();
/// assert!(err.to_string().contains("braces are not allowed; use `:name`"), "{err}");
/// # });
/// ```
pub struct Routes<C> {
    this: Arc<C>,
    pub(crate) routes: Vec<Route>,
    guards: Vec<Arc<dyn CanActivate>>,
    layers: Vec<Arc<dyn Fn(RouteService) -> RouteService + Send + Sync>>,
}

impl<C> fmt::Debug for Routes<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

macro_rules! method_fns {
    ($($(#[$doc:meta])* $name:ident => $method:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name<H, A>(&mut self, path: &str, handler: H) -> RouteConfig<'_, H::Output, A>
        where
            H: Handler<C, A>,
        {
            self.route(Some(Method::$method), path, handler)
        }
    )*};
}

impl<C: Controller> Routes<C> {
    pub(crate) fn new(this: Arc<C>) -> Self {
        Self {
            this,
            routes: Vec::new(),
            guards: Vec::new(),
            layers: Vec::new(),
        }
    }

    method_fns! {
        /// Registers a GET route (HEAD is answered by it too, with the body stripped).
        get => GET;
        /// Registers a POST route.
        post => POST;
        /// Registers a PUT route.
        put => PUT;
        /// Registers a PATCH route.
        patch => PATCH;
        /// Registers a DELETE route.
        delete => DELETE;
        /// Registers a HEAD route (overrides the one GET routes answer).
        head => HEAD;
        /// Registers an OPTIONS route.
        options => OPTIONS;
    }

    /// Registers a route for every method.
    pub fn all<H, A>(&mut self, path: &str, handler: H) -> RouteConfig<'_, H::Output, A>
    where
        H: Handler<C, A>,
    {
        self.route(None, path, handler)
    }

    /// Registers a GET route that streams Server-Sent Events (the seed's `@Get(path) @Sse()`).
    ///
    /// The handler returns an [`SseResponse`]: the [`SseBody`](crate::sse::SseBody), or
    /// `Result<SseBody, E>` to answer `E` (a 403, a 404) instead of starting the stream. Any other
    /// return type is a compile error.
    pub fn sse<H, A>(&mut self, path: &str, handler: H) -> RouteConfig<'_, H::Output, A>
    where
        H: Handler<C, A>,
        H::Output: SseResponse,
    {
        self.route(Some(Method::GET), path, handler).sse()
    }

    /// Registers a route for `method` (`None`: every method).
    pub fn route<H, A>(
        &mut self,
        method: Option<Method>,
        path: &str,
        handler: H,
    ) -> RouteConfig<'_, H::Output, A>
    where
        H: Handler<C, A>,
    {
        let mut deps = Dependencies::default();
        H::declare(&mut deps);
        let this = self.this.clone();
        self.routes.push(Route {
            method,
            path: path.to_owned(),
            kind: RouteKind::Plain,
            status: None,
            headers: Vec::new(),
            redirect: None,
            guards: self.guards.clone(),
            layers: Vec::new(),
            handler: Arc::new(move |req| handler.call(this.clone(), req)),
            deps,
            errors: Vec::new(),
            controller: std::any::type_name::<C>(),
            handler_name: std::any::type_name::<H>(),
            doc: Operation::default(),
        });
        let route = self.routes.last_mut().expect("just pushed");
        RouteConfig {
            route,
            output: PhantomData,
        }
    }

    /// The controller the routes belong to.
    pub(crate) fn controller(&self) -> &Arc<C> {
        &self.this
    }

    /// Adds a guard to every route of this controller registered after this call.
    pub fn guard<G: CanActivate>(&mut self, guard: G) -> &mut Self {
        self.guards.push(Arc::new(guard));
        self
    }

    /// Applies a tower layer to every route of this controller (around guards and handler).
    pub fn layer<L: RouteLayer + Sync>(&mut self, layer: L) -> &mut Self {
        self.layers.push(Arc::new(move |svc| layer.wrap(svc)));
        self
    }

    pub(crate) fn finish(mut self, prefix: &str) -> Vec<Route> {
        for route in &mut self.routes {
            route.path = join_paths(prefix, &route.path);
            for layer in &self.layers {
                let layer = layer.clone();
                route.layers.push(Box::new(move |svc| layer(svc)));
            }
        }
        self.routes
    }
}

/// Joins path prefixes the way NestJS does: one slash between parts, none at the end.
pub(crate) fn join_paths(prefix: &str, path: &str) -> String {
    let mut out = String::from("/");
    for part in [prefix, path] {
        let part = part.trim_matches('/');
        if part.is_empty() {
            continue;
        }
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push_str(part);
    }
    out
}

/// Per-route settings (the seed's decorators), returned by the registration methods of [`Routes`].
///
/// `R` is what the route's handler returns: [`sse`](Self::sse) and
/// [`allow_non_get`](Self::allow_non_get) need it to be an [`SseResponse`]. `A` is the tuple of
/// its extractors: [`doc`](Self::doc) describes the route from both.
pub struct RouteConfig<'a, R, A = ()> {
    route: &'a mut Route,
    output: PhantomData<fn() -> (R, A)>,
}

impl<R, A> fmt::Debug for RouteConfig<'_, R, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.route.fmt(f)
    }
}

impl<R, A> RouteConfig<'_, R, A> {
    /// Marks the route as a Server-Sent Events stream (the seed's `@Sse()`); its handler must
    /// return an [`SseResponse`] (checked at compile time). SSE routes must be GET; another method
    /// is an error when the app is built unless [`allow_non_get`](Self::allow_non_get).
    pub fn sse(self) -> Self
    where
        R: SseResponse,
    {
        self.mark_sse(false)
    }

    /// Marks the route as a Server-Sent Events stream that may use another method than GET (POST
    /// streams, as LLM APIs use with `fetch`); its handler must return an [`SseResponse`].
    /// Browsers' `EventSource` only sends GET and cannot use such a route.
    pub fn allow_non_get(self) -> Self
    where
        R: SseResponse,
    {
        self.mark_sse(true)
    }

    /// [`sse`](Self::sse) for `#[controller]`, whose check of `R` is `proof`, made on the handler's
    /// return type so that the error points there.
    #[doc(hidden)]
    pub fn __sse(self, proof: IsSse<R>, allow_non_get: bool) -> Self {
        let _ = proof;
        self.mark_sse(allow_non_get)
    }

    fn mark_sse(self, allow_non_get: bool) -> Self {
        self.route.kind = RouteKind::Sse { allow_non_get };
        self
    }

    /// The status of a successful (2xx) response (NestJS's `@HttpCode(201)`); an invalid code is an
    /// error when the app is built.
    pub fn http_code(self, code: u16) -> Self {
        match StatusCode::from_u16(code) {
            Ok(status) => self.route.status = Some(status),
            Err(_) => self.route.errors.push(format!("invalid http_code {code}")),
        }
        self
    }

    /// A header set on the route's responses unless the handler set it (NestJS's `@Header`).
    /// An invalid name or value is an error when the app is built.
    pub fn header(self, name: &str, value: &str) -> Self {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => self.route.headers.push((name, value)),
            _ => self
                .route
                .errors
                .push(format!("invalid header `{name}: {value}`")),
        }
        self
    }

    /// Answers successful responses with a redirect to `to` (NestJS's `@Redirect(url, status)`).
    pub fn redirect(self, to: &str, status: u16) -> Self {
        match (HeaderValue::try_from(to), StatusCode::from_u16(status)) {
            (Ok(location), Ok(status)) if status.is_redirection() => {
                self.route.redirect = Some((location, status));
            }
            _ => self
                .route
                .errors
                .push(format!("invalid redirect to `{to}` with status {status}")),
        }
        self
    }

    /// Adds a guard to this route; `false` answers 403.
    pub fn guard<G: CanActivate>(self, guard: G) -> Self {
        self.route.guards.push(Arc::new(guard));
        self
    }

    /// Applies a tower layer to this route only (around its guards and handler). It cannot see
    /// requests the router answers itself (404, 405, or CORS preflights on app-wide layers).
    pub fn layer<L: RouteLayer>(self, layer: L) -> Self {
        self.route.layers.push(Box::new(move |svc| layer.wrap(svc)));
        self
    }

    /// Describes the route in the app's OpenAPI document from its handler's types (parameters,
    /// body, responses, an SSE route's events; see [`openapi`](crate::openapi)), then with
    /// `describe` for what types cannot say: a summary, the errors it answers, headers it reads
    /// by hand. Needs every extractor to implement
    /// [`DescribeInput`](crate::openapi::DescribeInput) and the result
    /// [`DescribeOutput`] (`Json<T>`, `Path<T>` and `Query<T>`
    /// with `T: JsonSchema`). A route without it is described by its path and kind only.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use nest_core::prelude::*;
    ///
    /// struct Users;
    /// impl Controller for Users {
    ///     fn routes(r: &mut Routes<Self>) {
    ///         r.get("/users/:id", |_: Arc<Self>, Path(id): Path<u32>| async move { Json(id) })
    ///             .doc(|op| op.summary("One user").response(404, "No such user"));
    ///     }
    /// }
    /// let doc = NestApp::new().controller(Users).openapi().unwrap();
    /// let op = &doc["paths"]["/users/{id}"]["get"];
    /// assert_eq!(op["parameters"][0]["schema"]["type"], "integer");
    /// assert_eq!(op["responses"]["404"]["description"], "No such user");
    /// ```
    pub fn doc(self, describe: impl FnOnce(Operation) -> Operation) -> Self
    where
        R: DescribeOutput,
        A: DescribeInputs,
    {
        self.__doc(|mut op| {
            if op.__describe_types_once() {
                op = R::describe_output(A::describe_inputs(op));
            }
            describe(op)
        })
    }

    /// [`doc`](Self::doc) for `#[controller]`, which describes the types it can name itself.
    #[doc(hidden)]
    pub fn __doc(self, describe: impl FnOnce(Operation) -> Operation) -> Self {
        let op = std::mem::take(&mut self.route.doc);
        self.route.doc = describe(op);
        // OpenAPI's responses are 1XX to 5XX.
        for status in self.route.doc.statuses() {
            if !(100..=599).contains(&status) {
                let error = format!("invalid OpenAPI response status {status}");
                self.route.errors.push(error);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::join_paths;

    #[test]
    fn joins_like_nestjs() {
        assert_eq!(join_paths("", ""), "/");
        assert_eq!(join_paths("", "/sse"), "/sse");
        assert_eq!(join_paths("/api/", "users/:id/"), "/api/users/:id");
        assert_eq!(join_paths("api", "/"), "/api");
    }
}
