//! The router: matchit path matching, method dispatch, 404/405 and HEAD.
//!
//! Paths use NestJS syntax: `/users/:id` for a parameter, `/files/*path` (or a bare `*`) for the
//! rest of the path. Static segments win over parameters, parameters over wildcards, whatever the
//! order of registration. Two routes that could match the same request with the same method, and
//! invalid paths, make building the app fail with an error naming both routes.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use nest_core::prelude::*;
//!
//! struct A;
//! impl Controller for A {
//!     fn routes(r: &mut Routes<Self>) {
//!         r.get("/users/:id", |_: Arc<Self>| async { "one" });
//!         r.get("/users/:name", |_: Arc<Self>| async { "other" });
//!     }
//! }
//! let err = NestApp::new().controller(A).into_service().unwrap_err();
//! assert!(err.to_string().contains("/users/:name"), "{err}");
//! assert!(err.to_string().contains("/users/:id"), "{err}");
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use http::{header, HeaderValue, Method};
use http_body::Body as _;
use metrics::SharedString;
use tower::ServiceExt;

use crate::body::Body;
use crate::context::{AppShared, StreamLink};
use crate::controller::{Route, RouteKind, RouteService};
use crate::error::{panic_message, Error};
use crate::extract::{find_header, PathParams, RequestCtx, RequestId, X_REQUEST_ID};
use crate::response::{HttpException, IntoResponse, Response};
use crate::sse::{is_event_stream, SseAttach};
use crate::Request;
use route::{route_call, start_route, Call};

mod route;

/// One registered method of a path.
#[derive(Clone)]
struct Endpoint {
    call: Call,
    /// Registered as an SSE route (`Routes::sse`, `.sse()`).
    sse: bool,
}

/// Everything registered for one path pattern.
#[derive(Clone, Default)]
struct PathEntry {
    /// The route's path as registered (`/users/:id`): the `route` label of metrics.
    route: Arc<str>,
    params: Vec<Arc<str>>,
    methods: Vec<(Method, Endpoint)>,
    any: Option<Endpoint>,
}

impl PathEntry {
    /// Where `method`'s endpoint is in `methods`.
    fn place(&self, method: &Method) -> Option<usize> {
        self.methods.iter().position(|(m, _)| m == method)
    }

    /// The endpoint at `place` (`None`: the any-method one).
    fn endpoint(&self, place: Option<usize>) -> Option<&Endpoint> {
        match place {
            Some(place) => self.methods.get(place).map(|(_, e)| e),
            None => self.any.as_ref(),
        }
    }

    fn allow(&self) -> HeaderValue {
        let mut names: Vec<&str> = self.methods.iter().map(|(m, _)| m.as_str()).collect();
        if names.contains(&"GET") && !names.contains(&"HEAD") {
            names.push("HEAD");
        }
        HeaderValue::try_from(names.join(", ")).unwrap_or(HeaderValue::from_static(""))
    }
}

/// The app's router, a tower service.
#[derive(Clone)]
pub(crate) struct Router {
    inner: Arc<RouterInner>,
}

struct RouterInner {
    matcher: matchit::Router<usize>,
    entries: Vec<PathEntry>,
    app: Arc<AppShared>,
}

/// Translates `/users/:id/*rest` into matchit's `/users/{id}/{*rest}`, collecting the parameter
/// names; the grammar (and its errors) is nest-path's, the one the macros check at compile time.
fn to_matchit(path: &str) -> Result<(String, Vec<Arc<str>>), String> {
    let path = nest_path::parse(path).map_err(|err| err.to_string())?;
    Ok((path.to_matchit(), path.params().map(Arc::from).collect()))
}

/// Percent-decodes a path parameter; `None` when the bytes are not UTF-8 (answered 400 rather
/// than replaced: a lossy value would reach the handler as something the client never sent).
fn percent_decode(value: &str) -> Option<String> {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .ok()
        .map(|value| value.into_owned())
}

impl Router {
    pub(crate) fn build(routes: Vec<Route>, app: Arc<AppShared>) -> Result<Self, Error> {
        let mut matcher = matchit::Router::new();
        let mut entries: Vec<PathEntry> = Vec::new();
        let mut by_pattern: HashMap<String, usize> = HashMap::new();
        let mut first_route: HashMap<String, String> = HashMap::new();
        for route in routes {
            let name = route.describe();
            if let Some(err) = route.errors.first() {
                return Err(Error::route(format!("route {name}: {err}")));
            }
            if let RouteKind::Sse {
                allow_non_get: false,
            } = route.kind
            {
                if route.method != Some(Method::GET) {
                    return Err(Error::route(format!(
                        "route {name}: SSE routes must be GET (browsers' EventSource only sends GET); \
                         call `.allow_non_get()` to stream to fetch clients with another method"
                    )));
                }
            }
            for (id, ty) in &route.deps.states {
                if !app.states.contains(*id) {
                    return Err(Error::state(format!(
                        "route {name} extracts `State<{ty}>`, but the app has no state of that type \
                         (register it with `NestApp::state`)"
                    )));
                }
            }
            let (pattern, params) =
                to_matchit(&route.path).map_err(|e| Error::route(format!("route {name}: {e}")))?;
            let index = match by_pattern.get(&pattern) {
                Some(&index) => index,
                None => {
                    matcher
                        .insert(pattern.clone(), entries.len())
                        .map_err(|err| match err {
                            matchit::InsertError::Conflict { with } => Error::route(format!(
                                "route {name} conflicts with {}",
                                first_route.get(&with).cloned().unwrap_or(with)
                            )),
                            other => Error::route(format!("route {name}: invalid path: {other}")),
                        })?;
                    by_pattern.insert(pattern.clone(), entries.len());
                    first_route.insert(pattern.clone(), name.clone());
                    entries.push(PathEntry {
                        route: Arc::from(route.path.as_str()),
                        params,
                        ..PathEntry::default()
                    });
                    entries.len() - 1
                }
            };
            let entry = &mut entries[index];
            let duplicate = match &route.method {
                Some(m) => entry.place(m).is_some(),
                None => entry.any.is_some(),
            };
            if duplicate {
                return Err(Error::route(format!(
                    "route {name} is registered twice (same method and path as {})",
                    first_route.get(&pattern).cloned().unwrap_or_default()
                )));
            }
            let method = route.method.clone();
            let sse = matches!(route.kind, RouteKind::Sse { .. });
            let endpoint = Endpoint {
                call: route_call(route),
                sse,
            };
            match method {
                Some(m) => entry.methods.push((m, endpoint)),
                None => entry.any = Some(endpoint),
            }
        }
        let sse_routes: Vec<Arc<str>> = entries
            .iter()
            .filter(|e| {
                e.methods.iter().any(|(_, e)| e.sse) || e.any.as_ref().is_some_and(|e| e.sse)
            })
            .map(|e| e.route.clone())
            .collect();
        let end_reasons = crate::sse::EndReason::ALL.map(crate::sse::EndReason::label);
        crate::metrics::register(&sse_routes, &end_reasons);
        Ok(Self {
            inner: Arc::new(RouterInner {
                matcher,
                entries,
                app,
            }),
        })
    }
}

impl Router {
    /// Whether `GET path` reaches an SSE route: the server's direct HTTP/1.1 SSE path takes
    /// such a request (see `ServerConfig::direct_sse`).
    pub(crate) fn is_sse_get(&self, path: &str) -> bool {
        let Ok(m) = self.inner.matcher.at(path) else {
            return false;
        };
        let entry = &self.inner.entries[*m.value];
        entry
            .place(&Method::GET)
            .is_some_and(|p| entry.methods[p].1.sse)
    }
}

/// Strips the body of a response to HEAD, keeping (or computing) its `Content-Length`.
fn strip_body(mut res: Response) -> Response {
    if !res.headers().contains_key(header::CONTENT_LENGTH) {
        if let Some(len) = res.body().size_hint().exact() {
            res.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
    }
    *res.body_mut() = Body::empty();
    res
}

impl Router {
    /// Routes one request: 404, 405, HEAD, SSE HEAD, or the route's handler; a panic of the
    /// handler becomes a logged 500 in the `HttpException` shape (the server keeps serving).
    /// Needs no `&mut`, so the app calls it without cloning a service per request.
    /// `id` is the request's id when it is not in the request's extensions; `link` what an SSE
    /// stream of an HTTP/2 connection that watches for stalls attaches to (else the app's);
    /// `respond_id` the id the response carries and whether the client sent it (see
    /// [`set_request_id`]), when no app layer comes after. One combinator for all of it: each
    /// layer of them is a poll and a move of the request's future.
    pub(crate) fn dispatch(
        &self,
        req: Request,
        id: Option<RequestId>,
        link: Option<Arc<StreamLink>>,
        respond_id: Option<(RequestId, bool)>,
    ) -> impl Future<Output = Result<Response, Infallible>> + Send + 'static {
        let start = crate::metrics::recording().then(std::time::Instant::now);
        let method = req.method().clone();
        let routed = AssertUnwindSafe(route_request(self.inner.clone(), req, id, link));
        routed.catch_unwind().map(move |caught| {
            let (mut res, sse) = match caught {
                Ok((res, route, sse)) => {
                    if let Some(start) = start {
                        let took = start.elapsed();
                        crate::metrics::request(route, &method, res.status(), took);
                    }
                    (res, sse)
                }
                Err(panic) => {
                    tracing::error!(panic = %panic_message(&*panic), "handler panicked");
                    let status = http::StatusCode::INTERNAL_SERVER_ERROR;
                    (HttpException::new(status).into_response(), false)
                }
            };
            if let Some((id, from_client)) = &respond_id {
                set_request_id(&mut res, id, *from_client, sse);
            }
            Ok(res)
        })
    }
}

/// Puts the request id on the response (unless the handler set one). An SSE response gets it
/// only when the client sent it: hyper keeps a streaming response's header map for the
/// connection's life, and a fourth header doubles that map (~330 bytes per idle SSE connection,
/// measured); a generated id is on the stream's tracing span instead. An SSE response is one
/// the router attached (`attached_sse`), or any other streaming body of type
/// `text/event-stream` (a body of known length is not looked at).
pub(crate) fn set_request_id(
    res: &mut Response,
    id: &RequestId,
    from_client: bool,
    attached_sse: bool,
) {
    let headers = res.headers();
    let sse = || {
        attached_sse
            || (res.body().size_hint().exact().is_none()
                && find_header(headers, &header::CONTENT_TYPE).is_some_and(is_event_stream))
    };
    if (from_client || !sse()) && find_header(headers, &X_REQUEST_ID).is_none() {
        res.headers_mut().append(X_REQUEST_ID, id.header_value());
    }
}

/// Routes one request (matching, 404, 405, HEAD, the route's call started); the future gives
/// back the response and the route pattern it matched (for metrics). Not an `async fn`: one
/// would hold the request beside the call it was moved into (1.4 KiB per request's future, past
/// malloc's per-thread cache); this future holds the call's box and what to do after it.
fn route_request(
    inner: Arc<RouterInner>,
    mut req: Request,
    id: Option<RequestId>,
    link: Option<Arc<StreamLink>>,
) -> RouteFuture {
    let done = |res, route| RouteFuture::Done(Some((res, route, false)));
    let Ok(matched) = inner.matcher.at(req.uri().path()) else {
        let res = HttpException::new(http::StatusCode::NOT_FOUND).into_response();
        return done(res, SharedString::const_str(crate::metrics::UNMATCHED));
    };
    let index = *matched.value;
    let entry = &inner.entries[index];
    let mut params = PathParams::default();
    for (name, (_, value)) in entry.params.iter().zip(matched.params.iter()) {
        let Some(value) = percent_decode(value) else {
            let res = HttpException::bad_request(format!(
                "path parameter `{name}` is not valid UTF-8 once percent-decoded"
            ))
            .into_response();
            return done(res, SharedString::from(entry.route.clone()));
        };
        params.push(name.clone(), value);
    }
    let route = entry.route.clone();
    let method = req.method();
    let http2 = req.version() == http::Version::HTTP_2;
    // HEAD runs what GET runs when it has no handler of its own (guards, handler), so it
    // answers GET's status and headers; an SSE body is dropped unsent (its cancel hook runs:
    // `ClientGone`).
    let head = method == Method::HEAD;
    let place = match entry.place(method) {
        None if head => entry.place(&Method::GET).map(Some),
        found => found.map(Some),
    };
    let Some(place) = place.or(entry.any.as_ref().map(|_| None)) else {
        return done(not_allowed(entry), SharedString::from(route));
    };
    let Some(endpoint) = entry.endpoint(place) else {
        return done(not_allowed(entry), SharedString::from(route));
    };
    let call = match &endpoint.call {
        Call::Layered(svc) => {
            req.extensions_mut().insert(params);
            if let Some(id) = id {
                req.extensions_mut().insert(id);
            }
            req.extensions_mut().insert(inner.app.clone());
            Pending::Layered(svc.clone().oneshot(req))
        }
        // Without a body the handler starts now: what it does not keep of the request (the
        // head's bytes, shared with hyper's read buffer) is gone before hyper reads again, so
        // hyper reuses that buffer (else a new 8 KiB one per request). With a body it starts
        // on the first poll: a body dropped before hyper has read it closes the connection.
        Call::Direct { handler, meta } => {
            let bodiless = req.body().is_end_stream();
            let ctx = RequestCtx::new(req, params, inner.app.clone()).with_request_id(id);
            match bodiless {
                true => Pending::Handler(start_route(ctx, handler, meta)),
                false => Pending::Start(Some(ctx)),
            }
        }
    };
    RouteFuture::Running(Running {
        call,
        inner,
        at: (index, place),
        route,
        link,
        head,
        http2,
    })
}

/// The future of `route_request`.
#[allow(clippy::large_enum_variant)] // `Running` is the common case: a box would cost every request
enum RouteFuture {
    /// Answered while routing (404, 405, a bad parameter); `None` once taken.
    Done(Option<(Response, SharedString, bool)>),
    Running(Running),
}

/// A route's call under way, and what is done to its response after.
struct Running {
    call: Pending,
    inner: Arc<RouterInner>,
    /// The route's endpoint: its path entry and its place there (`PathEntry::endpoint`).
    at: (usize, Option<usize>),
    route: Arc<str>,
    link: Option<Arc<StreamLink>>,
    head: bool,
    http2: bool,
}

/// A route's call: its handler, or its layered service.
enum Pending {
    /// A handler's request before the first poll: the handler runs then, not while hyper reads
    /// the request (a request body dropped before hyper has read it closes the connection).
    Start(Option<RequestCtx>),
    Handler(BoxFuture<'static, Response>),
    Layered(tower::util::Oneshot<RouteService, Request>),
}

impl Future for RouteFuture {
    /// The response, the route pattern (for metrics), whether it is an SSE stream the router
    /// attached.
    type Output = (Response, SharedString, bool);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let res = match this {
            RouteFuture::Done(done) => return Poll::Ready(done.take().expect("polled after done")),
            RouteFuture::Running(run) => match &mut run.call {
                Pending::Layered(oneshot) => {
                    ready!(Pin::new(oneshot).poll(cx)).unwrap_or_else(|never| match never {})
                }
                pending => {
                    let (entry, place) = run.at;
                    let endpoint = run.inner.entries[entry].endpoint(place);
                    let Some(Call::Direct { handler, meta }) = endpoint.map(|e| &e.call) else {
                        unreachable!("a route without layers is called directly")
                    };
                    if let Pending::Start(ctx) = pending {
                        let ctx = ctx.take().expect("a handler starts once");
                        *pending = Pending::Handler(start_route(ctx, handler, meta));
                    }
                    let Pending::Handler(future) = pending else {
                        unreachable!("started above")
                    };
                    let mut res = ready!(future.as_mut().poll(cx));
                    meta.apply(&mut res);
                    res
                }
            },
        };
        let RouteFuture::Running(run) = std::mem::replace(this, RouteFuture::Done(None)) else {
            unreachable!("answered above")
        };
        let mut res = if run.head { strip_body(res) } else { res };
        let sse = attach_sse(
            &mut res,
            &run.inner.app,
            &run.route,
            run.http2,
            run.link.as_ref(),
        );
        Poll::Ready((res, SharedString::from(run.route), sse))
    }
}

/// Connects an SSE response's stream to the app (shutdown token, live-stream count, the buffer
/// budget), or answers 503 with `Retry-After` when the server's SSE buffer budget is spent
/// (`ServerConfig::sse_buffer_budget`): the stream is dropped unsent. Whether the response is
/// an attached SSE stream.
fn attach_sse(
    res: &mut Response,
    app: &AppShared,
    route: &Arc<str>,
    http2: bool,
    link: Option<&Arc<StreamLink>>,
) -> bool {
    let Some(attach) = res.extensions_mut().remove::<SseAttach>() else {
        return false;
    };
    if app.sse.budget.exhausted() {
        crate::metrics::sse_budget_refused();
        crate::metrics::sse_buffered(app.sse.budget.used());
        *res =
            HttpException::service_unavailable("the server's SSE buffers are full: retry shortly")
                .header(header::RETRY_AFTER, HeaderValue::from_static("5"))
                .into_response();
        return false;
    }
    attach.attach(link.unwrap_or(&app.link), &app.sse, route, http2);
    true
}

fn not_allowed(entry: &PathEntry) -> Response {
    HttpException::new(http::StatusCode::METHOD_NOT_ALLOWED)
        .header(header::ALLOW, entry.allow())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::to_matchit;

    /// `Allow` names HEAD once: added for GET, not again when it has a handler of its own.
    #[test]
    fn allow_names_head_once() {
        use std::sync::Arc;

        use http::Method;

        let handler: crate::controller::RouteFn =
            Arc::new(|_| Box::pin(async { crate::response::IntoResponse::into_response("") }));
        let endpoint = || super::Endpoint {
            call: super::Call::Direct {
                handler: handler.clone(),
                meta: Arc::default(),
            },
            sse: false,
        };
        let entry = |methods: &[Method]| super::PathEntry {
            methods: methods.iter().map(|m| (m.clone(), endpoint())).collect(),
            ..super::PathEntry::default()
        };
        assert_eq!(entry(&[Method::GET]).allow(), "GET, HEAD");
        assert_eq!(entry(&[Method::GET, Method::HEAD]).allow(), "GET, HEAD");
        assert_eq!(entry(&[Method::HEAD]).allow(), "HEAD");
        assert_eq!(entry(&[Method::POST]).allow(), "POST");
    }

    /// A request's routing future stays small: an `async fn` holding the request beside the
    /// call it moved it into was 1,368 bytes, past the size malloc serves from its per-thread
    /// cache (1,032), on every request.
    #[test]
    fn the_routing_future_is_small() {
        let size = std::mem::size_of::<super::RouteFuture>();
        assert!(size <= 400, "{size} bytes");
    }

    #[test]
    fn translates_nestjs_paths() {
        assert_eq!(to_matchit("/users/:id").unwrap().0, "/users/{id}");
        assert_eq!(to_matchit("/files/*path").unwrap().0, "/files/{*path}");
        let (pattern, params) = to_matchit("/*").unwrap();
        assert_eq!(
            (pattern.as_str(), &*params[0]),
            ("/{*wildcard}", "wildcard")
        );
        // The cases the router and the macros used to disagree on.
        assert_eq!(to_matchit("").unwrap().0, "/");
        assert_eq!(to_matchit("/*x/").unwrap().0, "/{*x}");
        assert!(to_matchit("/a/*/b").is_err());
        assert!(to_matchit("/a/:").is_err());
        assert!(to_matchit("/a/{x}").is_err());
        assert!(to_matchit("/a/b:c").is_err());
    }
}
