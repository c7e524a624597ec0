//! The body type of nest requests and responses.
//!
//! # Example
//!
//! ```
//! use http_body_util::BodyExt;
//! use nest_core::body::Body;
//!
//! # tokio_test_block_on(async {
//! let body = Body::from("hello");
//! let bytes = body.collect().await.unwrap().to_bytes();
//! assert_eq!(&bytes[..], b"hello");
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use http_body::{Frame, SizeHint};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full, StreamBody};

/// A boxed error, the error type of [`Body`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every nest request and response: any `http_body::Body` of `Bytes`, boxed.
pub struct Body(UnsyncBoxBody<Bytes, BoxError>);

impl Body {
    /// Boxes any body whose data is `Bytes`.
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self(body.map_err(Into::into).boxed_unsync())
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::new(Empty::<Bytes>::new())
    }

    /// A body that streams the chunks of `stream`, each as one data frame.
    pub fn from_stream<S, T, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<T, E>> + Send + 'static,
        T: Into<Bytes> + 'static,
        E: Into<BoxError> + 'static,
    {
        Self::new(StreamBody::new(
            stream
                .map_ok(|chunk| Frame::data(chunk.into()))
                .map_err(Into::into),
        ))
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body").finish_non_exhaustive()
    }
}

macro_rules! body_from {
    ($($ty:ty),*) => {$(
        impl From<$ty> for Body {
            fn from(value: $ty) -> Self {
                Self::new(Full::new(Bytes::from(value)))
            }
        }
    )*};
}
body_from!(String, &'static str, Bytes, Vec<u8>, &'static [u8]);

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// Why [`read_limited`] did not return a body.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadError {
    /// Over the limit: announced by `Content-Length`, or found while reading (nothing more is
    /// read).
    TooLarge,
    /// The body failed while being read (the client went away, a broken chunk).
    Failed(BoxError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::TooLarge => f.write_str("the body is larger than the limit"),
            ReadError::Failed(err) => write!(f, "failed to read the body: {err}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads a whole request body of at most `limit` bytes: refused at once when `headers` announce
/// more (`Content-Length`), else read until the limit is passed. The one bounded read of nest
/// (the `Bytes`, `String` and `Json` extractors use it) for handlers that read a body
/// themselves.
///
/// ```
/// use nest_core::body::{read_limited, Body, ReadError};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let headers = http::HeaderMap::new();
/// let bytes = read_limited(&headers, Body::from("hello"), 5).await.unwrap();
/// assert_eq!(&bytes[..], b"hello");
/// let over = read_limited(&headers, Body::from("hello!"), 5).await;
/// assert!(matches!(over, Err(ReadError::TooLarge)));
///
/// let mut announced = http::HeaderMap::new();
/// announced.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from_static("6"));
/// let early = read_limited(&announced, Body::empty(), 5).await;
/// assert!(matches!(early, Err(ReadError::TooLarge)), "refused before reading");
/// # });
/// ```
pub async fn read_limited<B>(
    headers: &http::HeaderMap,
    body: B,
    limit: usize,
) -> Result<Bytes, ReadError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let announced = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(ReadError::TooLarge),
        Err(err) => Err(ReadError::Failed(err)),
    }
}
