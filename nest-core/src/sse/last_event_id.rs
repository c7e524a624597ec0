//! The `LastEventId` extractor.

use crate::extract::{FromRequest, RequestCtx};
use crate::response::HttpException;

/// The `Last-Event-ID` request header a reconnecting `EventSource` sends: the id of the last event
/// it received. `None` on a first connection (or when the header is not valid text).
///
/// # Example
///
/// ```
/// use nest_core::extract::{FromRequest, RequestCtx};
/// use nest_core::sse::LastEventId;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let req = http::Request::builder().header("last-event-id", "41").body(Default::default()).unwrap();
/// let id = LastEventId::from_request(&mut RequestCtx::for_test(req)).await.unwrap();
/// assert_eq!(id.as_u64(), Some(41));
/// # });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastEventId(pub Option<String>);

impl LastEventId {
    /// The id parsed as an integer (the seed's numeric ids), if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        self.0.as_deref().and_then(|id| id.trim().parse().ok())
    }
}

impl FromRequest for LastEventId {
    async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
        Ok(LastEventId(
            req.headers()
                .get("last-event-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        ))
    }
}
