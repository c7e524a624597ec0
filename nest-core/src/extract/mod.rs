//! Extractors: typed values a handler takes from the request.
//!
//! A handler takes the controller (`Arc<Self>`) and then any number of extractors, in any order:
//! [`Path`], [`Query`], [`Json`](crate::Json), [`State`], [`HeaderMap`],
//! [`Method`](http::Method), [`Uri`](http::Uri), [`Bytes`](bytes::Bytes), `String`, the whole
//! [`Request`](crate::Request), and [`LastEventId`](crate::sse::LastEventId). At most one of them
//! may read the body. A failed extractor answers with a clear 4xx [`HttpException`].
//!
//! # Example
//!
//! ```
//! use nest_core::extract::{FromRequest, RequestCtx};
//! use nest_core::HttpException;
//!
//! /// A custom extractor: the `x-user` header, required.
//! struct User(String);
//!
//! impl FromRequest for User {
//!     async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
//!         req.headers()
//!             .get("x-user")
//!             .and_then(|v| v.to_str().ok())
//!             .map(|v| User(v.to_owned()))
//!             .ok_or_else(|| HttpException::unauthorized("x-user header required"))
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let req = http::Request::builder().header("x-user", "ada").body(nest_core::body::Body::empty()).unwrap();
//! let mut ctx = RequestCtx::for_test(req);
//! assert_eq!(User::from_request(&mut ctx).await.unwrap().0, "ada");
//! # });
//! ```

mod body;
mod path;
mod query;
mod request;
mod request_id;
mod state;

pub use body::read_body;
pub use path::Path;
pub use query::Query;
pub(crate) use request_id::{find_header, ConnIds};
pub use request_id::{RequestId, MAX_REQUEST_ID_LEN, X_REQUEST_ID};
pub use state::State;

pub(crate) use path::PathParams;

use std::any::TypeId;
use std::future::Future;
use std::sync::Arc;

use http::request::Parts;
use http::HeaderMap;

use crate::body::Body;
use crate::context::AppShared;
use crate::response::HttpException;

/// The request as extractors see it: its head, its body (until an extractor takes it), the path
/// parameters the router matched, and the app's shared state.
#[derive(Debug)]
pub struct RequestCtx {
    parts: Parts,
    body: Option<Body>,
    params: PathParams,
    app: Arc<AppShared>,
    /// The request's id, when the app handed it over directly (not through the extensions).
    request_id: Option<RequestId>,
}

impl RequestCtx {
    pub(crate) fn new(req: crate::Request, params: PathParams, app: Arc<AppShared>) -> Self {
        let (parts, body) = req.into_parts();
        Self {
            parts,
            body: Some(body),
            params,
            app,
            request_id: None,
        }
    }

    /// With the request's id (the app's own path: no extension map for it).
    pub(crate) fn with_request_id(mut self, id: Option<RequestId>) -> Self {
        self.request_id = id;
        self
    }

    /// The request's id, when the app handed it over directly.
    pub(crate) fn request_id(&self) -> Option<&RequestId> {
        self.request_id.as_ref()
    }

    /// A context for unit-testing an extractor: no path parameters, no state, default limits.
    pub fn for_test(req: crate::Request) -> Self {
        Self::new(req, PathParams::default(), Arc::new(AppShared::default()))
    }

    /// The request head.
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// The path parameters, in the order of the route's path.
    pub fn path_params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter()
    }

    /// Takes the body; `None` when an earlier extractor already took it.
    pub fn take_body(&mut self) -> Option<Body> {
        self.body.take()
    }

    /// The request body limit in bytes (see `NestApp::body_limit`).
    pub fn body_limit(&self) -> usize {
        self.app.config.body_limit
    }

    pub(crate) fn app(&self) -> &Arc<AppShared> {
        &self.app
    }
}

/// Something a handler can take as an argument, built from the request.
pub trait FromRequest: Sized + Send {
    /// Extracts the value, or answers with an error response.
    fn from_request(
        req: &mut RequestCtx,
    ) -> impl Future<Output = Result<Self, HttpException>> + Send;

    /// Declares what the app must provide for this extractor to work (e.g. a state type), so that a
    /// missing one is an error when the app is built rather than at request time.
    fn declare(deps: &mut Dependencies) {
        let _ = deps;
    }
}

/// What a route's extractors need from the app, checked when the app is built.
#[derive(Debug, Default, Clone)]
pub struct Dependencies {
    pub(crate) states: Vec<(TypeId, &'static str)>,
}

impl Dependencies {
    /// Declares that the app must hold shared state of type `T` (see `NestApp::state`).
    pub fn state<T: 'static>(&mut self) {
        self.states
            .push((TypeId::of::<T>(), std::any::type_name::<T>()));
    }
}
