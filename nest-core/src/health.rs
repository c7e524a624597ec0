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

use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::StatusCode;

use crate::extract::{FromRequest, RequestCtx};
use crate::response::{HttpException, IntoResponse, Json, Response};

/// Whether the app takes new work (an extractor): false once a shutdown was requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness(bool);

impl Readiness {
    /// True until a shutdown is requested.
    pub fn is_ready(self) -> bool {
        self.0
    }
}

impl FromRequest for Readiness {
    async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
        Ok(Readiness(!req.app().draining.load(Ordering::Acquire)))
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
