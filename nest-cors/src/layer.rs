//! [`CorsLayer`]: the tower [`Layer`] that wraps a service in [`Cors`].
//!
//! # Example
//!
//! ```
//! use http::{header, Request, Response};
//! use nest_cors::CorsLayer;
//! use std::convert::Infallible;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // The defaults cannot fail: any origin, npm `cors`'s methods, echoed request headers.
//! let svc = ServiceBuilder::new()
//!     .layer(CorsLayer::new())
//!     .service(service_fn(|_req: Request<()>| async {
//!         Ok::<_, Infallible>(Response::new(()))
//!     }));
//! let req = Request::builder()
//!     .header(header::ORIGIN, "https://anyone.example")
//!     .body(())
//!     .unwrap();
//! let res = svc.oneshot(req).await.unwrap();
//! assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
//! assert!(res.headers().get(header::VARY).is_none());
//! # }
//! ```

use std::sync::Arc;

use tower_layer::Layer;

use crate::options::{Config, CorsBuilder};
use crate::service::Cors;

/// Adds CORS headers to responses and answers preflights; see the [crate docs](crate).
///
/// Cloning is cheap: the validated configuration is shared.
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
