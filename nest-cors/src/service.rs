//! The service: [`Cors`](crate::Cors) applies the configuration to each request, and its
//! [`ResponseFuture`](crate::ResponseFuture) adds the headers to the response.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS,
};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::options::Config;
use crate::origin::{OriginCheck, RequestOrigin};
use crate::preflight::Preflight;

/// The CORS middleware; built by [`CorsLayer`](crate::CorsLayer).
///
/// Per request it classifies (preflight or not), decides about the origin once, then either
/// answers the preflight itself or calls the inner service and adds the headers to whatever
/// it returns: success, error status or a streaming (SSE) body, which passes through
/// unbuffered because only the head is touched.
///
/// If the inner service already set `Access-Control-Allow-Origin`, it has taken charge of
/// CORS for that response: the layer then leaves `Access-Control-Allow-Origin`,
/// `-Allow-Credentials`, `-Expose-Headers` (and on a continued preflight `-Allow-Methods`,
/// `-Allow-Headers`, `-Max-Age`) as the inner service set them, and only merges `Vary`.
///
/// # Example
///
/// ```
/// use http::{header, Request, Response, StatusCode};
/// use nest_cors::{AllowOrigin, CorsLayer};
/// use std::convert::Infallible;
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = CorsLayer::builder()
///     .origin(AllowOrigin::exact("https://app.example"))
///     .credentials(true)
///     .exposed_headers(["x-request-id"])
///     .build()
///     .unwrap();
/// let svc = layer.layer(service_fn(|_req: Request<()>| async {
///     let mut res = Response::new(());
///     *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
///     Ok::<_, Infallible>(res)
/// }));
///
/// // Error responses carry the CORS headers too, so the page can read the error.
/// let req = Request::builder()
///     .header(header::ORIGIN, "https://app.example")
///     .body(())
///     .unwrap();
/// let res = svc.clone().oneshot(req).await.unwrap();
/// assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
/// assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
/// assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
/// assert_eq!(res.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS], "x-request-id");
///
/// // A disallowed origin: no CORS headers, but the handler still ran.
/// let req = Request::builder()
///     .header(header::ORIGIN, "https://evil.example")
///     .body(())
///     .unwrap();
/// let res = svc.oneshot(req).await.unwrap();
/// assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
/// assert!(res.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
/// assert!(res.headers().get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
/// assert_eq!(res.headers()[header::VARY], "Origin");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Cors<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> Cors<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Cors<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if self.config.origin.is_disabled() {
            return ResponseFuture {
                inner: Some(self.inner.call(req)),
                cors: None,
            };
        }

        let (parts, body) = req.into_parts();
        let request_origin = RequestOrigin::read(&parts.headers);
        let invalid_origin = request_origin.is_invalid();
        let origin = self.config.origin.check(request_origin, &parts);
        let preflight = Preflight::detect(&parts.method, &parts.headers);
        let answer_here = preflight.is_some() && !self.config.preflight_continue;
        let inner = if answer_here {
            None
        } else {
            Some(self.inner.call(Request::from_parts(parts, body)))
        };
        ResponseFuture {
            inner,
            cors: Some(CorsState {
                config: Arc::clone(&self.config),
                origin,
                invalid_origin,
                preflight,
            }),
        }
    }
}

/// What the response future needs to finish the CORS headers.
#[derive(Debug)]
struct CorsState {
    config: Arc<Config>,
    origin: OriginCheck,
    /// More than one `Origin`, or one that is not a serialized origin: never allowed.
    invalid_origin: bool,
    /// `Some` for a preflight (answered here, or continued to the inner service).
    preflight: Option<Preflight>,
}

pin_project! {
    /// The response future of [`Cors`].
    ///
    /// Allocation-free except when an async origin predicate runs (its future is boxed).
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        // `None` when the layer answers a preflight itself.
        #[pin]
        inner: Option<F>,
        // `None` when CORS is disabled: a plain pass-through.
        cors: Option<CorsState>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(cors) = this.cors else {
            let inner = this.inner.as_pin_mut();
            return inner.map_or(Poll::Pending, |inner| inner.poll(cx));
        };

        ready!(cors.origin.poll_decided(cx));
        let mut response = match this.inner.as_pin_mut() {
            Some(inner) => ready!(inner.poll(cx))?,
            None => Preflight::answer(&cors.config),
        };
        let allow_origin = cors.origin.take();
        cors.finish(allow_origin, response.headers_mut());
        Poll::Ready(Ok(response))
    }
}

impl CorsState {
    /// Adds the CORS headers for the decided origin, then merges `Vary`.
    fn finish(&mut self, allow_origin: Option<HeaderValue>, headers: &mut HeaderMap) {
        let config = &*self.config;
        let inner_took_charge = headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN);
        if let (Some(allow_origin), false) = (allow_origin, inner_took_charge) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
            if config.credentials {
                headers.insert(
                    ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            match &mut self.preflight {
                Some(preflight) => preflight.apply_to(config, headers),
                None => {
                    if let Some(exposed) = &config.exposed_headers {
                        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone());
                    }
                }
            }
        }
        match self.preflight {
            Some(_) => config.preflight_vary.apply_to(headers),
            None => config.actual_vary.apply_to(headers),
        }
        // Under a rule that does not vary (any origin), this answer still depended on the
        // `Origin`: a cache must not hand it to requests with a valid one.
        if self.invalid_origin && !config.origin.varies() {
            config.origin_vary.apply_to(headers);
        }
    }
}
