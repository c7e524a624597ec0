//! The mountable service: a controller that answers the protocol's methods on every path under
//! its base path.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use nest_core::health::Readiness;
use nest_core::{Controller, IntoResponse, Request, Response, Routes};

use crate::error::Problem;
use crate::offset::Offset;
use crate::store::memory::MemoryStore;
use crate::store::Store;

mod drain;
mod frame;
mod headers;
mod parse;
mod read;

use headers::{empty, insert, STREAM_CLOSED, STREAM_NEXT_OFFSET};

/// The longest stream path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// A store the service can run on: [`MemoryStore`] or, with the `redis` feature,
/// [`RedisStore`](crate::RedisStore).
#[derive(Debug, Clone)]
pub struct AnyStore(pub(crate) Arc<dyn Store>);

impl From<MemoryStore> for AnyStore {
    fn from(store: MemoryStore) -> Self {
        AnyStore(Arc::new(store))
    }
}

#[cfg(feature = "redis")]
impl From<crate::RedisStore> for AnyStore {
    fn from(store: crate::RedisStore) -> Self {
        AnyStore(Arc::new(store))
    }
}

/// The Durable Streams protocol as a nest controller: every path under its base path is a
/// stream (`PUT` creates, `POST` appends, `GET` reads, `HEAD` and `DELETE`).
///
/// Mount it with one line: `NestApp::new().controller(DurableStreams::new(store).at("/v1/stream"))`.
///
/// Stream paths are chosen by clients, so a path is not a secret: whoever may reach the base
/// path may create, read, append to and delete any stream under it. Authorization is the app's:
/// a tower layer on the app (`NestApp::layer`) that checks the request before it reaches the
/// service.
pub struct DurableStreams {
    store: Arc<dyn Store>,
    base: String,
    drain: Arc<drain::Drain>,
}

impl fmt::Debug for DurableStreams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableStreams")
            .field("store", &self.store)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl DurableStreams {
    /// The service on `store`, at the base path `/` (see [`at`](Self::at)).
    #[must_use]
    pub fn new(store: impl Into<AnyStore>) -> Self {
        Self {
            store: store.into().0,
            base: "/".to_owned(),
            drain: drain::Drain::new(),
        }
    }

    /// Serves streams under `base` (for example `/v1/stream`): a stream's URL is the base path
    /// followed by any path the client chooses.
    #[must_use]
    pub fn at(mut self, base: impl Into<String>) -> Self {
        self.base = base.into();
        self
    }

    async fn handle(self: Arc<Self>, readiness: Readiness, req: Request) -> Response {
        let cors = self.store.config().cors;
        let mut res = match self.dispatch(req, readiness).await {
            Ok(res) => res,
            Err(problem) => problem.into_response(),
        };
        security_headers(&mut res, cors);
        res
    }

    async fn dispatch(&self, req: Request, readiness: Readiness) -> Result<Response, Problem> {
        let path = req.uri().path().to_owned();
        if path.len() > MAX_PATH_BYTES {
            return Err(Problem::new(
                StatusCode::URI_TOO_LONG,
                format!("stream paths are at most {MAX_PATH_BYTES} bytes"),
            ));
        }
        let store = &self.store;
        match *req.method() {
            Method::GET => {
                let drain = self.drain.subscribe(readiness);
                read::get(store, &path, &req.into_parts().0, drain).await
            }
            Method::HEAD => self.head(&path).await,
            Method::PUT => {
                let location = location(&req, &path);
                let (parts, body) = self.body(req).await?;
                let created = store
                    .create(&path, parse::create(&parts.headers, body)?)
                    .await?;
                let status = if created.created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                let mut res = empty(status);
                let h = res.headers_mut();
                insert(h, header::CONTENT_TYPE, &created.content_type);
                insert(h, STREAM_NEXT_OFFSET, &Offset(created.tail).to_string());
                if created.closed {
                    insert(h, STREAM_CLOSED, "true");
                }
                if created.created {
                    insert(h, header::LOCATION, &location);
                }
                Ok(res)
            }
            Method::POST => {
                let (parts, body) = self.body(req).await?;
                let appended = store
                    .append(&path, parse::append(&parts.headers, body)?)
                    .await?;
                let mut res = empty(appended.status);
                let h = res.headers_mut();
                insert(h, STREAM_NEXT_OFFSET, &Offset(appended.tail).to_string());
                if appended.closed {
                    insert(h, STREAM_CLOSED, "true");
                }
                if let Some((epoch, seq)) = appended.producer {
                    insert(h, PRODUCER_EPOCH, &epoch.to_string());
                    insert(h, PRODUCER_SEQ, &seq.to_string());
                }
                Ok(res)
            }
            Method::DELETE => {
                store.delete(&path).await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            Method::OPTIONS if self.store.config().cors => Ok(preflight(req.headers())),
            _ => Err(Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "streams answer GET, HEAD, PUT, POST and DELETE",
            )
            .header("allow", "GET, HEAD, PUT, POST, DELETE, OPTIONS")),
        }
    }

    async fn head(&self, path: &str) -> Result<Response, Problem> {
        let meta = self.store.head(path).await?;
        let mut res = empty(StatusCode::OK);
        let h = res.headers_mut();
        insert(h, header::CONTENT_TYPE, &meta.content_type);
        insert(h, STREAM_NEXT_OFFSET, &Offset(meta.tail).to_string());
        if let Some(ttl) = meta.ttl {
            insert(h, HeaderName::from_static("stream-ttl"), &ttl.to_string());
        }
        if let Some(at) = &meta.expires_at {
            insert(h, HeaderName::from_static("stream-expires-at"), at);
        }
        if meta.closed {
            insert(h, STREAM_CLOSED, "true");
        }
        insert(h, header::CACHE_CONTROL, "no-store");
        Ok(res)
    }

    /// Reads the body under the append limit: 413 naming it when over.
    async fn body(&self, req: Request) -> Result<(http::request::Parts, Bytes), Problem> {
        let limit = self.store.config().max_append_bytes;
        let too_large = || {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than the limit of {limit} bytes per append"),
            )
        };
        let (parts, body) = req.into_parts();
        match nest_core::body::read_limited(&parts.headers, body, limit).await {
            Ok(bytes) => Ok((parts, bytes)),
            Err(nest_core::body::ReadError::TooLarge) => Err(too_large()),
            Err(err) => Err(Problem::bad_request(err.to_string())), // "failed to read the body: …"
        }
    }
}

impl Controller for DurableStreams {
    fn prefix(&self) -> &str {
        &self.base
    }

    fn routes(routes: &mut Routes<Self>) {
        routes.all("/*", Self::handle);
    }
}

const PRODUCER_EPOCH: HeaderName = HeaderName::from_static("producer-epoch");
const PRODUCER_SEQ: HeaderName = HeaderName::from_static("producer-seq");

/// The headers a browser client must be able to read.
const EXPOSED: &str = "stream-next-offset, stream-cursor, stream-up-to-date, stream-closed, \
    stream-ttl, stream-expires-at, stream-sse-data-encoding, producer-epoch, producer-seq, \
    producer-expected-seq, producer-received-seq, etag, location, content-type";

/// The protocol's browser security headers (section 12.7), on every answer, errors included.
fn security_headers(res: &mut Response, cors: bool) {
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    if cors {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED),
        );
    }
}

fn preflight(headers: &http::HeaderMap) -> Response {
    let mut res = empty(StatusCode::NO_CONTENT);
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, PUT, POST, DELETE, OPTIONS"),
    );
    let asked = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static(
            "content-type, if-none-match, stream-seq, stream-ttl, stream-expires-at, stream-closed, \
             stream-forked-from, stream-fork-offset, stream-fork-sub-offset, producer-id, producer-epoch, producer-seq",
        ));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    res
}

/// The absolute URL of the stream, for `Location`.
fn location(req: &Request, path: &str) -> String {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let scheme = req.uri().scheme_str().unwrap_or("http");
    format!("{scheme}://{host}{path}")
}
