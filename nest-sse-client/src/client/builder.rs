//! [`Builder`]: an [`EventSource`]'s request, client and reconnection policy.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CACHE_CONTROL, PRAGMA};
use reqwest::{Body, Client, Method, Request, RequestBuilder, Url};

use super::reconnect::{Policy, Reconnect};
use super::EventSource;
use crate::error::{Error, Result};
use crate::parser::Parser;

/// What to send.
#[derive(Debug)]
enum Target {
    Url(Url),
    Request(RequestBuilder),
}

/// Configures an [`EventSource`]; made by [`EventSource::builder`] or
/// [`EventSource::builder_from_request`]. Errors are reported by
/// [`build`](Builder::build).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use nest_sse_client::EventSource;
///
/// // One client (one connection pool) for many sources.
/// let client = nest_sse_client::reqwest::Client::new();
/// let source = EventSource::builder("http://127.0.0.1:3000/events")
///     .client(client.clone())
///     .header("authorization", "Bearer token")
///     .last_event_id("41")
///     .retry(Duration::from_secs(1))
///     .backoff(Duration::from_secs(30))
///     .max_retries(5)
///     .build()
///     .unwrap();
/// assert_eq!(source.last_event_id(), "41");
///
/// let error = EventSource::builder("/events").build().unwrap_err();
/// assert!(error.is_builder());
/// assert_eq!(error.to_string(), r#"invalid URL "/events""#);
/// ```
#[derive(Debug)]
#[must_use]
pub struct Builder {
    /// `None` when the URL was invalid (`error` says why).
    target: Option<Target>,
    client: Option<Client>,
    method: Method,
    body: Option<Body>,
    headers: HeaderMap,
    error: Option<Error>,
    last_event_id: String,
    policy: Policy,
    comments: bool,
}

impl Builder {
    fn new(target: Option<Target>) -> Self {
        Self {
            target,
            client: None,
            method: Method::GET,
            body: None,
            headers: HeaderMap::new(),
            error: None,
            last_event_id: String::new(),
            policy: Policy::default(),
            comments: false,
        }
    }

    pub(super) fn get(url: &str) -> Self {
        match parse_url(url) {
            Ok(url) => Self::new(Some(Target::Url(url))),
            Err(error) => {
                let mut builder = Self::new(None);
                builder.error = Some(error);
                builder
            }
        }
    }

    pub(super) fn request(request: RequestBuilder) -> Self {
        Self::new(Some(Target::Request(request)))
    }

    /// Sends with this client instead of a new default one: one connection
    /// pool for many streams, and its settings (TLS roots, HTTP/2, proxy,
    /// `connect_timeout`). A client-wide `timeout` would cut every stream
    /// after that time; use `read_timeout` to detect a silent server.
    /// Replaces the client of a request given to
    /// [`EventSource::builder_from_request`].
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The request method (default GET; POST for the streams of LLM APIs).
    /// Ignored for [`EventSource::builder_from_request`].
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// The request body, sent on every connection. Ignored for
    /// [`EventSource::builder_from_request`].
    pub fn body(mut self, body: impl Into<Body>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Adds a request header (sent on every connection).
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        let (name, value) = (name.as_ref(), value.as_ref());
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            (Err(e), _) => self.fail(format!("bad header name {name:?}"), e),
            (_, Err(e)) => self.fail(format!("bad value for header {name:?}"), e),
        }
        self
    }

    fn fail(&mut self, message: String, source: impl std::error::Error + Send + Sync + 'static) {
        if self.error.is_none() {
            self.error = Some(Error::builder(message, Some(Box::new(source))));
        }
    }

    /// The last event ID to start with: sent as `Last-Event-ID` on the first
    /// request too, as when resuming a stream.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = id.into();
        self
    }

    /// The reconnection time used until the server sends `retry` (default
    /// 3 s, as in browsers). [`Event::retry`](crate::Event::retry) is the
    /// same setting from the server, in milliseconds.
    pub fn retry(mut self, delay: Duration) -> Self {
        self.policy.retry = delay;
        self
    }

    /// Exponential backoff (default: off, as in browsers): the reconnection
    /// time doubles with each failure in a row, up to `max`, and each delay
    /// is jittered to between half of it and all of it (see
    /// [`jitter`](Self::jitter)). A server's `Retry-After` wins.
    pub fn backoff(mut self, max: Duration) -> Self {
        self.policy.backoff_max = Some(max);
        self
    }

    /// Whether backoff delays are jittered (default: yes). Off gives exact
    /// delays, for tests that assert a schedule.
    pub fn jitter(mut self, enabled: bool) -> Self {
        self.policy.jitter = enabled;
        self
    }

    /// Gives up (with a fatal [`Error::is_retry_limit`] error) after this many
    /// reconnection attempts in a row (default: no limit). A connection that
    /// opens and ends within [`healthy_after`](Self::healthy_after) counts as
    /// a failure, so a server that accepts and closes at once reaches the
    /// limit too. `0` never reconnects after a failure.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.policy.max_retries = Some(retries);
        self
    }

    /// How long a connection must stay open for its end not to count as a
    /// failure in a row (default 60 s): then the backoff and the retry count
    /// start over.
    pub fn healthy_after(mut self, duration: Duration) -> Self {
        self.policy.healthy_after = duration;
        self
    }

    /// Whether to reconnect at all (default: yes). Without, the stream ends
    /// after the first response ends or fails.
    pub fn reconnect(mut self, enabled: bool) -> Self {
        self.policy.enabled = enabled;
        self
    }

    /// Whether comment lines are yielded as
    /// [`SseItem::Comment`](super::SseItem::Comment) (default: no).
    pub fn comments(mut self, enabled: bool) -> Self {
        self.comments = enabled;
        self
    }

    /// Builds the source. It connects when first polled.
    ///
    /// # Errors
    ///
    /// [`Error::is_builder`] for an invalid URL (relative, or not http or
    /// https), a bad header, an invalid request, or a request whose body is a
    /// stream (it could not be re-sent when reconnecting).
    pub fn build(self) -> Result<EventSource> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let (client, mut request) = match self.target {
            Some(Target::Url(url)) => {
                let client = match self.client {
                    Some(client) => client,
                    None => Client::builder().build().map_err(|e| {
                        Error::builder("cannot create an HTTP client", Some(Box::new(e)))
                    })?,
                };
                let mut request = Request::new(self.method, url);
                *request.body_mut() = self.body;
                (client, request)
            }
            Some(Target::Request(request)) => {
                let (client, request) = request.build_split();
                let request =
                    request.map_err(|e| Error::builder("invalid request", Some(Box::new(e))))?;
                (self.client.unwrap_or(client), request)
            }
            None => return Err(Error::builder("no request", None)),
        };
        if request.try_clone().is_none() {
            return Err(Error::builder(
                "the request body is a stream and could not be re-sent on reconnect",
                None,
            ));
        }
        let headers = request.headers_mut();
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        headers
            .entry(ACCEPT)
            .or_insert(HeaderValue::from_static("text/event-stream"));
        // What a browser's EventSource sends: its fetch has cache mode "no-store", for which the
        // Fetch standard appends `Pragma: no-cache` and `Cache-Control: no-cache` (HTTP/1.0
        // caches and proxies read only the first).
        headers
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-cache"));
        headers
            .entry(PRAGMA)
            .or_insert(HeaderValue::from_static("no-cache"));
        let parser = Parser::new()
            .with_comments(self.comments)
            .with_last_event_id(self.last_event_id);
        Ok(EventSource::new_with(
            client,
            request,
            parser,
            Reconnect::new(self.policy),
        ))
    }
}

/// An absolute http or https URL; the error names the text.
fn parse_url(text: &str) -> Result<Url> {
    let url = Url::parse(text)
        .map_err(|e| Error::builder(format!("invalid URL {text:?}"), Some(Box::new(e))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::builder(
            format!("invalid URL {text:?} (an event stream needs http or https)"),
            None,
        ));
    }
    Ok(url)
}
