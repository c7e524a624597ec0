//! The service's limits and timings, validated when the service is built.

use std::time::Duration;

use crate::Error;

/// Limits and timings of a Durable Streams service; every buffer the service keeps has its
/// bound here. [`DurableConfig::validate`] (called when a store is built) rejects values that
/// cannot work, naming the setting.
///
/// ```
/// use std::time::Duration;
/// use nest_durable::DurableConfig;
///
/// let config = DurableConfig::default().max_append_bytes(1 << 20).long_poll_timeout(Duration::from_secs(10));
/// assert!(config.validate().is_ok());
/// let err = DurableConfig::default().max_append_bytes(0).validate().unwrap_err();
/// assert!(err.to_string().contains("max_append_bytes"));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct DurableConfig {
    pub(crate) max_append_bytes: usize,
    pub(crate) max_stream_bytes: u64,
    pub(crate) max_streams: usize,
    pub(crate) max_total_bytes: u64,
    pub(crate) max_read_bytes: usize,
    pub(crate) max_producers: usize,
    pub(crate) producer_ttl: Duration,
    pub(crate) long_poll_timeout: Duration,
    pub(crate) sse_lifetime: Duration,
    pub(crate) cache_control: String,
    pub(crate) cors: bool,
}

impl Default for DurableConfig {
    fn default() -> Self {
        Self {
            max_append_bytes: 4 * 1024 * 1024,
            max_stream_bytes: 64 * 1024 * 1024,
            max_streams: 100_000,
            max_total_bytes: 1024 * 1024 * 1024,
            max_read_bytes: 1024 * 1024,
            max_producers: 1_024,
            producer_ttl: Duration::from_secs(7 * 24 * 3600),
            long_poll_timeout: Duration::from_secs(20),
            sse_lifetime: Duration::from_secs(60),
            cache_control: "public, max-age=60, stale-while-revalidate=300".to_owned(),
            cors: true,
        }
    }
}

impl DurableConfig {
    /// The largest request body of one append or create, in bytes (default 4 MiB); a larger
    /// one is `413 Payload Too Large` and nothing is stored.
    pub fn max_append_bytes(mut self, bytes: usize) -> Self {
        self.max_append_bytes = bytes;
        self
    }

    /// The most bytes one stream may hold (default 64 MiB); an append past it is `413`.
    pub fn max_stream_bytes(mut self, bytes: u64) -> Self {
        self.max_stream_bytes = bytes;
        self
    }

    /// The most streams the store holds at once (default 100,000); creating one more is
    /// `507 Insufficient Storage`. Expired streams are removed first.
    pub fn max_streams(mut self, streams: usize) -> Self {
        self.max_streams = streams;
        self
    }

    /// The most bytes all streams of the in-memory store hold together (default 1 GiB); an
    /// append or create past it is `507 Insufficient Storage`.
    pub fn max_total_bytes(mut self, bytes: u64) -> Self {
        self.max_total_bytes = bytes;
        self
    }

    /// The most bytes one read response (or one SSE `data` event) carries (default 1 MiB); the
    /// client continues from `Stream-Next-Offset`. One message larger than this is sent whole.
    pub fn max_read_bytes(mut self, bytes: usize) -> Self {
        self.max_read_bytes = bytes;
        self
    }

    /// The most idempotent producers one stream remembers (default 1,024); a new producer past
    /// it is `429 Too Many Requests` until the oldest expire (see [`producer_ttl`](Self::producer_ttl)).
    pub fn max_producers(mut self, producers: usize) -> Self {
        self.max_producers = producers;
        self
    }

    /// How long a producer's epoch and sequence are remembered after its last append (default
    /// 7 days, as the protocol recommends for memory stores).
    pub fn producer_ttl(mut self, ttl: Duration) -> Self {
        self.producer_ttl = ttl;
        self
    }

    /// How long a `live=long-poll` read waits for data before `204 No Content` (default 20 s).
    pub fn long_poll_timeout(mut self, timeout: Duration) -> Self {
        self.long_poll_timeout = timeout;
        self
    }

    /// How long a `live=sse` response lasts before the server ends it so that CDNs can collapse
    /// requests (default 60 s, as the protocol recommends); clients reconnect from the last
    /// `streamNextOffset`.
    pub fn sse_lifetime(mut self, lifetime: Duration) -> Self {
        self.sse_lifetime = lifetime;
        self
    }

    /// The `Cache-Control` of catch-up and long-poll reads with data (default `public,
    /// max-age=60, stale-while-revalidate=300`, the protocol's advice for shared streams). Use
    /// `private, max-age=60, stale-while-revalidate=300` or `no-store` for streams that hold
    /// user data.
    pub fn cache_control(mut self, value: impl Into<String>) -> Self {
        self.cache_control = value.into();
        self
    }

    /// Whether the service answers CORS itself (default `true`): `Access-Control-Allow-Origin:
    /// *`, the protocol's headers exposed, preflights answered. Turn it off when the app has
    /// its own CORS layer.
    pub fn cors(mut self, enabled: bool) -> Self {
        self.cors = enabled;
        self
    }

    /// Checks every setting; the error names the first one that cannot work.
    pub fn validate(&self) -> Result<(), Error> {
        let positive = [
            ("max_append_bytes", self.max_append_bytes as u64),
            ("max_stream_bytes", self.max_stream_bytes),
            ("max_streams", self.max_streams as u64),
            ("max_total_bytes", self.max_total_bytes),
            ("max_read_bytes", self.max_read_bytes as u64),
            ("max_producers", self.max_producers as u64),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(Error::config(format!("{name} must be greater than zero")));
            }
        }
        let durations = [
            ("producer_ttl", self.producer_ttl),
            ("long_poll_timeout", self.long_poll_timeout),
            ("sse_lifetime", self.sse_lifetime),
        ];
        for (name, value) in durations {
            if value.is_zero() {
                return Err(Error::config(format!("{name} must be longer than zero")));
            }
        }
        if http::HeaderValue::from_str(&self.cache_control).is_err() {
            return Err(Error::config("cache_control is not a valid header value"));
        }
        Ok(())
    }
}
