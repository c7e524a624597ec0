//! `NestApp`: the builder that turns controllers, state and layers into a service or a server.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use http_body_util::BodyExt;
//! use nest_core::prelude::*;
//! use tower::ServiceExt;
//!
//! struct Hello;
//! impl Controller for Hello {
//!     fn routes(r: &mut Routes<Self>) {
//!         r.get("/", |_: Arc<Self>, State(greeting): State<&'static str>| async move { greeting });
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let app = NestApp::new().state("hello").controller(Hello).into_service().unwrap();
//! let res = app.oneshot(http::Request::new(nest_core::body::Body::empty())).await.unwrap();
//! assert_eq!(res.status(), 200);
//! assert_eq!(&res.into_body().collect().await.unwrap().to_bytes()[..], b"hello");
//! # });
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};
use tower_service::Service;
use tracing::Instrument;

use crate::body::{Body, BoxError};
use crate::config::ServerConfig;
use crate::context::{AppShared, StateMap, StreamLink};
use crate::controller::{join_paths, Controller, Route, Routes};
use crate::error::Error;
use crate::extract::{ConnIds, RequestId};
use crate::openapi::{Info, OpenApiRoute};
use crate::openapi_routes;
use crate::response::{HttpException, IntoResponse, Response};
use crate::routing::set_request_id;
use crate::routing::Router;
use crate::Request;
use nest_openapi::Document;

type AppService = BoxCloneSyncService<Request, Response, Infallible>;
/// The future of one request through the app (what `NestService` and hyper get).
pub(crate) type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;
type LayerFn = Box<dyn FnOnce(AppService) -> AppService + Send>;
/// Produces a controller's routes under the global prefix.
type ControllerFn = Box<dyn FnOnce(&str) -> Vec<Route> + Send>;

/// The app builder: controllers, a global prefix, shared state, tower layers and server settings.
///
/// Layers wrap everything: the router, the 404/405 answers and the panic catcher, so a CORS or
/// tracing layer sees every request and every response. The last layer added is the outermost.
#[must_use]
pub struct NestApp {
    prefix: String,
    controllers: Vec<ControllerFn>,
    states: StateMap,
    layers: Vec<LayerFn>,
    config: ServerConfig,
    openapi_info: Info,
    openapi_routes: Vec<OpenApiRoute>,
}

impl fmt::Debug for NestApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NestApp")
            .field("prefix", &self.prefix)
            .field("controllers", &self.controllers.len())
            .field("layers", &self.layers.len())
            .field("config", &self.config)
            .finish()
    }
}

impl Default for NestApp {
    fn default() -> Self {
        Self::new()
    }
}

impl NestApp {
    /// An app with no controllers and default settings.
    pub fn new() -> Self {
        Self {
            prefix: String::new(),
            controllers: Vec::new(),
            states: StateMap::default(),
            layers: Vec::new(),
            config: ServerConfig::default(),
            openapi_info: Info::default(),
            openapi_routes: Vec::new(),
        }
    }

    /// Registers a controller.
    pub fn controller<C: Controller>(mut self, controller: C) -> Self {
        self.controllers.push(Box::new(move |global: &str| {
            let controller = Arc::new(controller);
            let prefix = join_paths(global, controller.prefix());
            let mut routes = Routes::new(controller);
            C::routes(&mut routes);
            routes.finish(&prefix)
        }));
        self
    }

    /// A prefix for every route (NestJS's `app.setGlobalPrefix('api')`).
    pub fn global_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Registers shared state, extracted by handlers with [`State<T>`](crate::extract::State).
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.states.insert(value);
        self
    }

    /// Applies a tower layer around the whole app (router, 404/405 fallback and panic catcher).
    pub fn layer<L, ResBody>(mut self, layer: L) -> Self
    where
        L: Layer<AppService> + Send + 'static,
        L::Service:
            Service<Request, Response = http::Response<ResBody>> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Error: Into<BoxError>,
        <L::Service as Service<Request>>::Future: Send + 'static,
        ResBody: http_body::Body<Data = Bytes> + Send + 'static,
        ResBody::Error: Into<BoxError>,
    {
        self.layers.push(Box::new(move |inner| {
            let svc = layer.layer(inner);
            BoxCloneSyncService::new(tower::service_fn(move |req: Request| {
                let svc = svc.clone();
                async move {
                    Ok::<_, Infallible>(match svc.oneshot(req).await {
                        Ok(res) => res.map(Body::new),
                        Err(err) => {
                            let err: BoxError = err.into();
                            tracing::error!(error = %err, "a layer failed");
                            HttpException::internal_server_error(err.to_string()).into_response()
                        }
                    })
                }
            }))
        }));
        self
    }

    /// Replaces the server settings (limits, timeouts, shutdown grace).
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// The request body limit in bytes (default 2 MiB); a larger body answers 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.config = self.config.body_limit(bytes);
        self
    }

    /// The title, version and description of the app's OpenAPI document.
    pub fn openapi_info(mut self, info: Info) -> Self {
        self.openapi_info = info;
        self
    }

    /// Serves the app's OpenAPI document (`GET`, `application/json`) at a path, and a docs page
    /// if the route asks for one: `.openapi_route("/openapi.json")`, or
    /// `.openapi_route(OpenApiRoute::new("/openapi.json").docs("/docs"))`. The paths are taken
    /// as written (no global prefix) and are not in the document.
    pub fn openapi_route(mut self, route: impl Into<OpenApiRoute>) -> Self {
        self.openapi_routes.push(route.into());
        self
    }

    /// Builds the app (failing as [`into_service`](Self::into_service) does) and returns its
    /// OpenAPI 3.2 document; see [`openapi`](crate::openapi).
    pub fn openapi(self) -> Result<serde_json::Value, Error> {
        Ok(self.into_service()?.openapi().clone())
    }

    /// Builds the app as a tower service, for any hyper/tower stack and for `oneshot` tests.
    ///
    /// Fails when a route is invalid, conflicts with another, extracts state the app does not hold,
    /// or a setting is invalid; the error names what is wrong.
    pub fn into_service(self) -> Result<NestService, Error> {
        self.config.validate()?;
        let shared = Arc::new(AppShared::new(self.states, self.config));
        let mut routes = Vec::new();
        for controller in self.controllers {
            routes.extend(controller(&self.prefix));
        }
        let openapi = Arc::new(openapi_routes::document(self.openapi_info, &mut routes));
        for serve in &self.openapi_routes {
            routes.extend(openapi_routes::routes(serve, &openapi)?);
        }
        let router = Router::build(routes, shared.clone())?;
        // Without layers the router is called directly (no boxed service to clone per request).
        let layered = (!self.layers.is_empty()).then(|| {
            let mut svc: AppService = BoxCloneSyncService::new(CatchPanic {
                inner: router.clone(),
            });
            for layer in self.layers {
                svc = layer(svc);
            }
            svc
        });
        Ok(NestService {
            layered,
            router,
            shared,
            openapi,
        })
    }
}

/// A built app: a cloneable tower `Service` that accepts requests with any body.
#[derive(Clone)]
pub struct NestService {
    /// The layers around the panic catcher and the router, when the app has layers.
    layered: Option<AppService>,
    router: Router,
    shared: Arc<AppShared>,
    openapi: Arc<Document>,
}

impl fmt::Debug for NestService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NestService").finish_non_exhaustive()
    }
}

impl NestService {
    /// The app's OpenAPI 3.2 document (made the first time it is asked for, or when the app was
    /// built if it serves it); see [`openapi`](crate::openapi).
    pub fn openapi(&self) -> &serde_json::Value {
        self.openapi.get()
    }
}

impl NestService {
    /// The token that tells long-lived responses (SSE streams) to end; cancel it to shut them down
    /// when you serve this service yourself. `Server` cancels it on shutdown.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    /// How many SSE streams of this app are open right now.
    pub fn live_sse_streams(&self) -> usize {
        self.shared.sse.live.load(Ordering::Relaxed)
    }

    /// What the SSE streams' queues hold right now, against
    /// [`ServerConfig::sse_buffer_budget`] (the gauge `nest_sse_buffered_bytes`).
    pub fn sse_buffered_bytes(&self) -> usize {
        self.shared.sse.budget.used()
    }

    /// Whether the app takes new work: false once a shutdown was requested (the server's drain
    /// delay, then its grace period). See [`crate::health::ready`].
    pub fn is_ready(&self) -> bool {
        !self.shared.draining.load(Ordering::Acquire)
    }

    /// Turns readiness false (the server's shutdown has started).
    pub(crate) fn start_draining(&self) {
        self.shared.draining.store(true, Ordering::Release);
        self.shared.drain_signal.cancel();
    }

    pub(crate) fn config(&self) -> &ServerConfig {
        &self.shared.config
    }
}

impl<B> Service<http::Request<B>> for NestService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        self.handle(req)
    }
}

impl NestService {
    /// Whether `GET path` reaches an SSE route (the direct HTTP/1.1 SSE path's first test).
    pub(crate) fn is_sse_get(&self, path: &str) -> bool {
        self.router.is_sse_get(path)
    }

    /// Handles one request; `call` without `&mut`, so the server calls it directly (no
    /// `Oneshot`, no clone of the service per request).
    pub(crate) fn handle<B>(&self, req: http::Request<B>) -> ResponseFuture
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.handle_on(req, None, None)
    }

    /// [`handle`](Self::handle) for a request of a connection: a new id is the next of the
    /// connection's `ids`; on an HTTP/2 connection that watches for stalls, its SSE stream, if
    /// it is one, attaches to `link` and counts its polls there
    /// (`ServerConfig::http2_stall_timeout`).
    pub(crate) fn handle_on<B>(
        &self,
        req: http::Request<B>,
        link: Option<Arc<StreamLink>>,
        ids: Option<&ConnIds>,
    ) -> ResponseFuture
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        // hyper enforces the count on HTTP/1.1 only; this holds on HTTP/2 and for apps served
        // by hand (`HeaderMap::len` is O(1)).
        if req.headers().len() > self.shared.config.max_headers {
            let res = HttpException::new(http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
                .into_response();
            return Box::pin(std::future::ready(Ok(res)));
        }
        let mut req = req.map(Body::new);
        let (id, from_client) = RequestId::from_client(req.headers(), ids);
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            path = %req.uri().path(),
            request_id = id.as_str(),
            status = tracing::field::Empty,
            latency_us = tracing::field::Empty,
        );
        // The response's copy of the id (a new id is 24 inline digits, a client's a shared
        // header value: no allocation until it is written on the response).
        let response_id = id.clone();
        // The router is matched now (no clone of it into the future); without a subscriber for
        // the span, no clock reads and no `Instrumented` wrapper either. Combinators, not
        // `async` blocks: a block that awaits a future it captured holds it twice (as its
        // capture and as its awaitee), so each layer doubled the request's future (6 KiB, moved
        // into its box on every request; one allocation of the route's size now).
        // Without app layers the id goes to the route's context directly (no extension map per
        // request); layers see it in the extensions.
        let dispatch: ResponseFuture = match &self.layered {
            Some(svc) => {
                req.extensions_mut().insert(id);
                if let Some(link) = link {
                    req.extensions_mut().insert(link);
                }
                Box::pin(svc.clone().oneshot(req).map(move |res| {
                    res.map(|mut res| {
                        set_request_id(&mut res, &response_id, from_client, false);
                        res
                    })
                }))
            }
            None => {
                let respond_id = Some((response_id, from_client));
                Box::pin(self.router.dispatch(req, Some(id), link, respond_id))
            }
        };
        if span.is_disabled() {
            return dispatch;
        }
        let start = Instant::now();
        Box::pin(
            async move {
                let res = dispatch.await?;
                let span = tracing::Span::current();
                span.record("status", res.status().as_u16());
                span.record("latency_us", start.elapsed().as_micros() as u64);
                tracing::debug!("response");
                Ok(res)
            }
            .instrument(span),
        )
    }
}

/// Turns a panicking handler into a 500 in the `HttpException` shape; the server keeps serving.
#[derive(Clone)]
struct CatchPanic {
    inner: Router,
}

impl Service<Request> for CatchPanic {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // The id is in the extensions (the app's layers saw it there), and so is the HTTP/2
        // connection's link.
        let link = req.extensions_mut().remove::<Arc<StreamLink>>();
        Box::pin(self.inner.dispatch(req, None, link, None))
    }
}
