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

/// Runs guards, the handler, and applies the route's static status/headers/redirect.
pub(super) async fn run_route(
    req: RequestCtx,
    handler: &(dyn Fn(RequestCtx) -> BoxFuture<'static, Response> + Send + Sync),
    meta: &RouteMeta,
) -> Response {
    for guard in &meta.guards {
        if !guard.can_activate(&req).await {
            return HttpException::forbidden("Forbidden resource").into_response();
        }
    }
    let mut res = handler(req).await;
    if res.status().is_success() {
        if let Some(status) = meta.status {
            if res.status() == StatusCode::OK {
                *res.status_mut() = status;
            }
        }
        for (name, value) in &meta.headers {
            if !res.headers().contains_key(name) {
                res.headers_mut().insert(name.clone(), value.clone());
            }
        }
        if let Some((location, status)) = &meta.redirect {
            *res.status_mut() = *status;
            res.headers_mut()
                .insert(http::header::LOCATION, location.clone());
        }
    }
    res
}

/// The static settings `run_route` applies.
#[derive(Default)]
pub(super) struct RouteMeta {
    status: Option<StatusCode>,
    headers: Vec<(HeaderName, HeaderValue)>,
    redirect: Option<(HeaderValue, StatusCode)>,
    guards: Vec<Arc<dyn CanActivate>>,
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
            Ok::<_, Infallible>(run_route(ctx, &*handler, &meta).await)
        }
    }));
    for layer in route.layers {
        svc = layer(svc);
    }
    Call::Layered(svc)
}
