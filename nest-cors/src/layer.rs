//! The tower layer: [`CorsLayer`](crate::CorsLayer) holds the validated configuration and
//! wraps each service in [`Cors`](crate::Cors).

use std::sync::Arc;

use tower_layer::Layer;

use crate::error::CorsError;
use crate::options::{Config, CorsBuilder};
use crate::service::Cors;

/// Adds CORS headers to responses and answers preflights; the [crate docs](crate) are the
/// guide.
///
/// Cloning is cheap: the validated configuration is shared. [`CorsLayer::new`] has the
/// defaults, which cannot fail; [`CorsLayer::builder`] sets the options and validates them.
///
/// # Example
///
/// ```
/// use http::{header, Request, Response};
/// use nest_cors::CorsLayer;
/// use std::convert::Infallible;
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // The defaults cannot fail: any origin, npm `cors`'s methods, echoed request headers.
/// let svc = ServiceBuilder::new()
///     .layer(CorsLayer::new())
///     .service(service_fn(|_req: Request<()>| async {
///         Ok::<_, Infallible>(Response::new(()))
///     }));
/// let req = Request::builder()
///     .header(header::ORIGIN, "https://anyone.example")
///     .body(())
///     .unwrap();
/// let res = svc.oneshot(req).await.unwrap();
/// assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
/// assert!(res.headers().get(header::VARY).is_none());
/// # }
/// ```
///
/// # Preflights
///
/// A preflight is an `OPTIONS` request with both `Origin` and `Access-Control-Request-Method`
/// (Fetch §4.8). Any other `OPTIONS` request goes to the inner service untouched, unlike
/// tower-http, which answers every `OPTIONS` itself (tower-rs/tower-http#497).
///
/// The layer answers a preflight itself, unless `preflight_continue` is set, with
/// `options_success_status` (default 204), an empty body and `content-length: 0` (hyper drops
/// that header on the wire for a 204, as RFC 9110 §8.6 requires), whether or not a route
/// exists for the path. Its headers: `Access-Control-Allow-Origin`,
/// `Access-Control-Allow-Credentials` when credentials are on, `Access-Control-Allow-Methods`,
/// `Access-Control-Allow-Headers` (configured or echoed), `Access-Control-Max-Age`, and
/// `Access-Control-Allow-Private-Network` when asked for and enabled. A preflight from a
/// disallowed origin still gets the success status but none of these (only `Vary`), so the
/// browser fails it without learning the configuration.
///
/// ```
/// use http::{header, Method, Request, Response, StatusCode};
/// use nest_cors::{AllowOrigin, CorsLayer};
/// use std::convert::Infallible;
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = CorsLayer::builder()
///     .origin(AllowOrigin::exact("https://app.example"))
///     .build()
///     .unwrap();
/// // An inner service that has no route at all: preflights never reach it.
/// let svc = layer.layer(service_fn(|_req: Request<String>| async {
///     let mut res = Response::new(String::from("not found"));
///     *res.status_mut() = StatusCode::NOT_FOUND;
///     Ok::<_, Infallible>(res)
/// }));
///
/// let preflight = Request::builder()
///     .method(Method::OPTIONS)
///     .uri("/events")
///     .header(header::ORIGIN, "https://app.example")
///     .header(header::ACCESS_CONTROL_REQUEST_METHOD, "PUT")
///     .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type,last-event-id")
///     .body(String::new())
///     .unwrap();
/// let res = svc.clone().oneshot(preflight).await.unwrap();
/// assert_eq!(res.status(), StatusCode::NO_CONTENT);
/// assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
/// assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_METHODS], "GET,HEAD,PUT,PATCH,POST,DELETE");
/// assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS], "content-type,last-event-id");
/// assert_eq!(res.headers()[header::ACCESS_CONTROL_MAX_AGE], "600");
/// assert_eq!(res.headers()[header::CONTENT_LENGTH], "0");
/// assert_eq!(res.headers()[header::VARY], "Origin, Access-Control-Request-Headers");
/// assert!(res.body().is_empty());
///
/// // A plain OPTIONS (no Access-Control-Request-Method) reaches the inner service.
/// let plain = Request::builder()
///     .method(Method::OPTIONS)
///     .header(header::ORIGIN, "https://app.example")
///     .body(String::new())
///     .unwrap();
/// let res = svc.oneshot(plain).await.unwrap();
/// assert_eq!(res.status(), StatusCode::NOT_FOUND);
/// # }
/// ```
///
/// # `Vary`
///
/// The layer names `Origin` whenever `Access-Control-Allow-Origin` depends on the request,
/// and, on preflights, `Access-Control-Request-Headers` when it echoes them and
/// `Access-Control-Request-Private-Network` when private network access is on. The names are
/// merged into the handler's `Vary` (one line, the handler's names first), never replacing it
/// and never repeating a name it already lists; a handler's `Vary: *` is left alone.
///
/// ```
/// use http::{header, Request, Response};
/// use nest_cors::{AllowOrigin, CorsLayer};
/// use std::convert::Infallible;
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = CorsLayer::builder()
///     .origin(AllowOrigin::exact("https://app.example"))
///     .build()
///     .unwrap();
/// let svc = layer.layer(service_fn(|_req: Request<()>| async {
///     let mut res = Response::new(());
///     res.headers_mut().insert(header::VARY, "Accept-Encoding".parse().unwrap());
///     Ok::<_, Infallible>(res)
/// }));
///
/// // No `Origin` at all: still `Vary: Origin`, appended to the handler's own.
/// let res = svc.oneshot(Request::new(())).await.unwrap();
/// assert_eq!(res.headers()[header::VARY], "Accept-Encoding, Origin");
/// # }
/// ```
///
/// # Requests with more than one `Origin`
///
/// A browser sends one `Origin` header holding one origin, serialized as
/// `scheme://host[:port]` (lowercase, without the default port) or `null`: Fetch's grammar for
/// the header is `Origin = origin-or-null`. A request with two `Origin` lines, or with a value
/// that is not one such origin (a list, a URL with a path, `*`), was not made by a browser's
/// CORS protocol, and which origin it means is ambiguous: a proxy may act on the last line
/// where the application reads the first. The layer therefore allows it under no rule, and
/// does not call a predicate for it:
///
/// - an actual request still reaches the inner service, and its response carries no
///   `Access-Control-Allow-*` or `-Expose-Headers` header;
/// - a preflight (still one: `OPTIONS` with `Origin` and `Access-Control-Request-Method`) is
///   answered like one from a disallowed origin, with the success status and none of those
///   headers, so a browser's CORS check fails on it. It is not passed to the inner service,
///   which would answer it as a plain `OPTIONS`;
/// - under [`AllowOrigin::any`](crate::AllowOrigin::any), whose `*` otherwise does not depend
///   on the request, such a response says `Vary: Origin`, so that a shared cache never hands
///   it to requests with a valid origin.
///
/// ```
/// use http::{header, HeaderValue, Request, Response};
/// use nest_cors::{AllowOrigin, CorsLayer};
/// use std::convert::Infallible;
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = CorsLayer::builder()
///     .origin(AllowOrigin::exact("https://app.example"))
///     .credentials(true)
///     .build()
///     .unwrap();
/// let svc = layer.layer(service_fn(|_req: Request<()>| async {
///     Ok::<_, Infallible>(Response::new(()))
/// }));
///
/// let mut req = Request::new(());
/// for origin in ["https://app.example", "https://evil.example"] {
///     req.headers_mut().append(header::ORIGIN, HeaderValue::from_static(origin));
/// }
/// let res = svc.oneshot(req).await.unwrap();
/// assert!(res.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
/// assert!(res.headers().get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
/// assert_eq!(res.headers()[header::VARY], "Origin");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CorsLayer {
    config: Arc<Config>,
}

impl CorsLayer {
    /// The default configuration, which cannot fail: any origin (`*`), methods
    /// `GET,HEAD,PUT,PATCH,POST,DELETE`, echoed request headers, no credentials,
    /// max-age 600 s, preflights answered with 204.
    #[must_use]
    pub fn new() -> Self {
        Self::from_config(Config::defaults())
    }

    /// A builder starting from the defaults of [`new`](Self::new).
    pub fn builder() -> CorsBuilder {
        CorsBuilder::default()
    }

    pub(crate) fn from_config(config: Config) -> Self {
        Self {
            config: Arc::new(config),
        }
    }
}

impl Default for CorsLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = Cors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Cors::new(inner, Arc::clone(&self.config))
    }
}

/// Building is the builder's last step, here with the layer it makes (so the options do not
/// depend on the layer).
impl CorsBuilder {
    /// Validates the options and builds the layer.
    ///
    /// # Errors
    ///
    /// A [`CorsError`] naming the option at fault: an origin entry that is not an origin as
    /// browsers send it, an invalid regex, an invalid method or header name, a success status
    /// outside 200–299, or credentials with `*` (in `origin`, `methods`, `allowed_headers`
    /// or `exposed_headers`) or with reflect-any without the explicit opt-in.
    pub fn build(self) -> Result<CorsLayer, CorsError> {
        Ok(CorsLayer::from_config(self.into_config()?))
    }
}
