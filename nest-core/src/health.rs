//! Health routes for load balancers and orchestrators: liveness, and readiness that turns false
//! as soon as a shutdown is requested (see `ServerConfig::drain_delay`), so new streams go to
//! other instances before this one cuts its own.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use nest_core::prelude::*;
//! use nest_core::health;
//!
//! struct Ops;
//! impl Controller for Ops {
//!     fn routes(r: &mut Routes<Self>) {
//!         r.get("/ready", health::ready);
//!         r.get("/live", health::live);
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let config = ServerConfig::default().drain_delay(Duration::from_secs(2));
//! let server = NestApp::new().config(config).controller(Ops).bind(([127, 0, 0, 1], 0)).await.unwrap();
//! let url = format!("http://{}/ready", server.local_addr());
//! assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
//! server.handle().shutdown();
//! // Draining: still serving, but not ready.
//! assert_eq!(reqwest::get(&url).await.unwrap().status(), 503);
//! assert!(!server.is_ready());
//! # server.wait().await;
//! # });
//! ```

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::StatusCode;

use crate::extract::{FromRequest, RequestCtx};
use crate::response::{HttpException, IntoResponse, Json, Response};

/// Whether the app takes new work (an extractor): false once a shutdown was requested.
///
/// Read when asked, not when extracted: a handler can ask again after its work. A publish to an
/// in-process hub that ends after the shutdown began may have missed the open streams (they end
/// with the shutdown, and the hub's events end with the process); answering 503 then makes the
/// client retry it elsewhere (with its idempotency key), where it is not lost. The chat example
/// does so.
#[derive(Clone)]
pub struct Readiness(Arc<crate::context::AppShared>);

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Readiness").field(&self.is_ready()).finish()
    }
}

impl Readiness {
    /// True until a shutdown is requested (now, when called).
    pub fn is_ready(&self) -> bool {
        !self.0.draining.load(Ordering::Acquire)
    }

    /// Resolves when a shutdown is requested (at once if one was): for a handler's long wait
    /// (a long-poll, a live read) that should end cleanly, so its client reconnects elsewhere,
    /// before the grace period cuts it. Owned (`'static`): it can move into a task.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use nest_core::health::Readiness;
    /// use nest_core::prelude::*;
    ///
    /// struct Poll;
    /// impl Controller for Poll {
    ///     fn routes(r: &mut Routes<Self>) {
    ///         r.get("/wait", |_: Arc<Self>, readiness: Readiness| async move {
    ///             tokio::select! {
    ///                 _ = readiness.draining() => "draining: come back elsewhere",
    ///                 _ = tokio::time::sleep(Duration::from_secs(30)) => "nothing new",
    ///             }
    ///         });
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let config = ServerConfig::default().drain_delay(Duration::from_secs(5));
    /// let server = NestApp::new().config(config).controller(Poll).bind(([127, 0, 0, 1], 0)).await.unwrap();
    /// let url = format!("http://{}/wait", server.local_addr());
    /// let waiting = tokio::spawn(async move { reqwest::get(&url).await.unwrap().text().await.unwrap() });
    /// // Whether the request arrives before or after this, it gets the same answer: the drain
    /// // delay keeps serving, and `draining()` resolves at once once draining.
    /// server.handle().shutdown();
    /// assert_eq!(waiting.await.unwrap(), "draining: come back elsewhere");
    /// # server.wait().await;
    /// # });
    /// ```
    pub fn draining(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.0.drain_signal.clone().cancelled_owned()
    }
}

impl FromRequest for Readiness {
    async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
        Ok(Readiness(req.app().clone()))
    }
}

/// A readiness route: `200 {"status":"ready"}`, or `503 {"status":"draining"}` from the moment a
/// shutdown is requested. Register it with `routes.get("/ready", health::ready)`.
pub async fn ready<C: Send + Sync + 'static>(_: Arc<C>, readiness: Readiness) -> Response {
    if readiness.is_ready() {
        Json(serde_json::json!({ "status": "ready" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "draining" })),
        )
            .into_response()
    }
}

/// A liveness route: `200 {"status":"live"}` while the process serves at all.
pub async fn live<C: Send + Sync + 'static>(_: Arc<C>) -> Response {
    Json(serde_json::json!({ "status": "live" })).into_response()
}
