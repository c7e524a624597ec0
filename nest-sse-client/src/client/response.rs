//! What a browser checks on a response before reading it as an event stream.

use reqwest::header::CONTENT_TYPE;
use reqwest::{Response, StatusCode};

use super::head::ResponseHead;
use crate::error::Error;

/// What came back, as a browser sorts it.
pub(crate) enum Checked {
    /// 200 with `text/event-stream`: read it.
    Stream(ResponseHead),
    /// 204 No Content: the server says "stop"; the stream ends without an error.
    NoContent(ResponseHead),
    /// Another status or content type.
    Failed(Error),
}

/// Checks the response as a browser does: 200 and `text/event-stream`.
pub(crate) fn check(response: &Response) -> Checked {
    let head = ResponseHead::of(response);
    if head.status() == StatusCode::NO_CONTENT {
        return Checked::NoContent(head);
    }
    if head.status() != StatusCode::OK {
        return Checked::Failed(Error::bad_status(head));
    }
    let is_event_stream = head.headers().get(CONTENT_TYPE).is_some_and(|ct| {
        let ct = String::from_utf8_lossy(ct.as_bytes());
        let essence = ct.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("text/event-stream")
    });
    if is_event_stream {
        Checked::Stream(head)
    } else {
        Checked::Failed(Error::bad_content_type(head))
    }
}
