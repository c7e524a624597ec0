//! One route's call: its guards, handler and static settings, and the tower service around them
//! when it has layers.

use std::convert::Infallible;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue, StatusCode};
use tower::util::BoxCloneSyncService;

use crate::context::AppShared;
use crate::controller::{CanActivate, Route, RouteFn, RouteService};
use crate::extract::{PathParams, RequestCtx};
use crate::response::{HttpException, IntoResponse, Response};
use crate::Request;

/// How a route is called: directly when it has no tower layers (no boxing, no extensions), or
/// through its layered service.
#[derive(Clone)]
pub(super) enum Call {
    Direct {
        handler: RouteFn,
        meta: Arc<RouteMeta>,
    },
    Layered(RouteService),
}

/// Starts a route's call: its handler's future when it has no guards, else its guards and then
/// the handler in one box (an `async` block over `&meta` and the request would make every
/// request's future the size of both). The caller applies `meta` to the response.
pub(super) fn start_route(
    req: RequestCtx,
    handler: &RouteFn,
    meta: &Arc<RouteMeta>,
) -> BoxFuture<'static, Response> {
    if meta.guards.is_empty() {
        return handler(req);
    }
    let (handler, meta) = (handler.clone(), meta.clone());
    Box::pin(async move {
        for guard in &meta.guards {
            if !guard.can_activate(&req).await {
                return HttpException::forbidden("Forbidden resource").into_response();
            }
        }
        handler(req).await
    })
}

/// A route's guards and the static settings applied to its successful responses.
#[derive(Default)]
pub(super) struct RouteMeta {
    status: Option<StatusCode>,
    headers: Vec<(HeaderName, HeaderValue)>,
    redirect: Option<(HeaderValue, StatusCode)>,
    guards: Vec<Arc<dyn CanActivate>>,
}

impl RouteMeta {
    /// Applies the route's status, headers and redirect to a successful response.
    pub(super) fn apply(&self, res: &mut Response) {
        if res.status().is_success() {
            if let Some(status) = self.status {
                if res.status() == StatusCode::OK {
                    *res.status_mut() = status;
                }
            }
            for (name, value) in &self.headers {
                if !res.headers().contains_key(name) {
                    res.headers_mut().insert(name.clone(), value.clone());
                }
            }
            if let Some((location, status)) = &self.redirect {
                *res.status_mut() = *status;
                res.headers_mut()
                    .insert(http::header::LOCATION, location.clone());
            }
        }
    }
}

/// Builds a route's service: guards and handler innermost, then its layers (first added innermost).
pub(super) fn route_call(route: Route) -> Call {
    let meta = Arc::new(RouteMeta {
        status: route.status,
        headers: route.headers,
        redirect: route.redirect,
        guards: route.guards,
    });
    let handler = route.handler;
    if route.layers.is_empty() {
        return Call::Direct { handler, meta };
    }
    // Layers see a plain `Request`; the matched parameters and the app travel in its extensions.
    let mut svc = BoxCloneSyncService::new(tower::service_fn(move |mut req: Request| {
        let meta = meta.clone();
        let handler = handler.clone();
        async move {
            let params = req
                .extensions_mut()
                .remove::<PathParams>()
                .unwrap_or_default();
            let app = req
                .extensions_mut()
                .remove::<Arc<AppShared>>()
                .unwrap_or_default();
            let ctx = RequestCtx::new(req, params, app);
            let mut res = start_route(ctx, &handler, &meta).await;
            meta.apply(&mut res);
            Ok::<_, Infallible>(res)
        }
    }));
    for layer in route.layers {
        svc = layer(svc);
    }
    Call::Layered(svc)
}
