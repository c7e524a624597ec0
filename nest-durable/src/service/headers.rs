//! The protocol's response headers that the reads and the other methods both set, and the two
//! helpers that set them: the bottom of the service.

use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use nest_core::Response;

/// `Stream-Next-Offset`: where the next read starts.
pub(crate) const STREAM_NEXT_OFFSET: HeaderName = HeaderName::from_static("stream-next-offset");
/// `Stream-Closed`: the stream takes no more appends.
pub(crate) const STREAM_CLOSED: HeaderName = HeaderName::from_static("stream-closed");
/// `Stream-Up-To-Date`: the read reached the end.
pub(crate) const STREAM_UP_TO_DATE: HeaderName = HeaderName::from_static("stream-up-to-date");
/// `Stream-Cursor`: the long-poll cursor.
pub(crate) const STREAM_CURSOR: HeaderName = HeaderName::from_static("stream-cursor");

/// A response with `status` and no body.
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut res = Response::new(nest_core::body::Body::empty());
    *res.status_mut() = status;
    res
}

/// Sets `name` to `value` when it is a valid header value (it always is: offsets and numbers).
pub(crate) fn insert(headers: &mut http::HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}
