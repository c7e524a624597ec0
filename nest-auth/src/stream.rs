//! A stream that ends when its token does: at `exp` plus the grace, the client gets
//!
//! ```text
//! event: reauth
//! data: {"reason":"expired"}
//! retry: 1000
//! ```
//!
//! and the stream ends (its end reason is `Lifetime`). The page refreshes its cookie on
//! `reauth`; the browser reconnects after `retry` with `Last-Event-ID`, and the hub resumes
//! after that id, so nothing is lost.
//!
//! nest-core's `SseBody` ends at a lifetime with a `retry:` only; the `reauth` event is added
//! by a thin body around it (one timer, one pointer), which is why authorized hub streams are
//! served from `routes.get` as a `Response` rather than from `routes.sse`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use http_body_util::BodyExt;
//! use nest_auth::{AuthorizedHub, Authenticator, Grant, Key, REAUTH_EVENT};
//! use nest_core::sse::LastEventId;
//! use nest_hub::Hub;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
//! let auth = Authenticator::builder().key(Key::hmac("k1", &[7; 32]).unwrap()).audience("rooms").build().unwrap();
//! let token = auth.issue(&Grant::new("ada").subscribe(["news"]).ttl(Duration::from_secs(60))).unwrap();
//! let claims = auth.verify(token.as_str()).unwrap();
//! let hub = AuthorizedHub::new(Hub::new(), auth);
//! let mut body = hub.subscribe(&claims, "news", &LastEventId(None)).await.unwrap().into_body();
//! // The paused clock runs ahead to the token's expiry (keep-alive comments on the way).
//! let mut last = Vec::new();
//! while let Some(frame) = body.frame().await {
//!     last = frame.unwrap().into_data().unwrap().to_vec();
//! }
//! let last = String::from_utf8(last).unwrap();
//! assert!(last.starts_with(&format!("event: {REAUTH_EVENT}\nretry: 1000\n")), "{last}");
//! # });
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use nest_core::body::{Body, BoxError};
use nest_core::sse::{encode, SseEvent};
use nest_core::Response;
use tokio::time::{Instant, Sleep};

/// The type of the event sent when a stream's token expires.
pub const REAUTH_EVENT: &str = "reauth";

/// `res` (an SSE response), ending at `deadline` with the `reauth` event and `retry`.
pub(crate) fn expiring(res: Response, deadline: Instant, retry: Duration) -> Response {
    let reauth = encode(
        &SseEvent::data(r#"{"reason":"expired"}"#)
            .event(REAUTH_EVENT)
            .retry(retry),
    )
    .map(|e| e.bytes())
    .unwrap_or_default();
    res.map(|inner| {
        Body::new(Expiring {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            reauth: Some(reauth),
        })
    })
}

struct Expiring {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    /// Sent once, when the deadline passes; the inner stream ends by its own lifetime, set to
    /// the same deadline.
    reauth: Option<Bytes>,
}

impl HttpBody for Expiring {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.reauth.is_some() && this.deadline.as_mut().poll(cx).is_ready() {
            if let Some(reauth) = this.reauth.take() {
                return Poll::Ready(Some(Ok(Frame::data(reauth))));
            }
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.reauth.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
