//! The [`ResponseHead`] of a response, kept for the caller (and in errors).

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode, Version};

/// The status line and headers of a response, kept by the
/// [`EventSource`](super::EventSource) ([`response`](super::EventSource::response))
/// and by the errors a response causes ([`Error::headers`](crate::Error::headers)).
#[derive(Debug, Clone)]
pub struct ResponseHead {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    /// When it arrived, for an HTTP-date `Retry-After`.
    received: SystemTime,
}

impl ResponseHead {
    pub(crate) fn new(status: StatusCode, version: Version, headers: HeaderMap) -> Self {
        Self {
            status,
            version,
            headers,
            received: SystemTime::now(),
        }
    }

    pub(super) fn of(response: &Response) -> Self {
        Self::new(
            response.status(),
            response.version(),
            response.headers().clone(),
        )
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version (`HTTP/1.1`, `HTTP/2.0`).
    #[must_use]
    pub fn version(&self) -> Version {
        self.version
    }

    /// The headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// `Retry-After` as a delay from when the response arrived: a number of
    /// seconds, or an HTTP date (zero when it is past; rounded up to whole
    /// milliseconds, as tokio's timers count). `None` when absent or
    /// invalid.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        let value = self.headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        let date = httpdate::parse_http_date(value).ok()?;
        let delay = date.duration_since(self.received).unwrap_or(Duration::ZERO);
        let ms = u64::try_from(delay.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        Some(Duration::from_millis(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn head_with_retry_after(value: &str) -> ResponseHead {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        ResponseHead::new(StatusCode::SERVICE_UNAVAILABLE, Version::HTTP_11, headers)
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        assert_eq!(
            head_with_retry_after("120").retry_after(),
            Some(Duration::from_secs(120))
        );
        let head = head_with_retry_after("Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(head.retry_after(), Some(Duration::ZERO), "a past date");
        let in_a_minute = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(60));
        let delay = head_with_retry_after(&in_a_minute).retry_after().unwrap();
        // Whole seconds: the date loses the fraction.
        assert!(
            (Duration::from_secs(58)..=Duration::from_secs(60)).contains(&delay),
            "{delay:?}"
        );
        for invalid in ["soon", "-1", "1.5", ""] {
            assert_eq!(
                head_with_retry_after(invalid).retry_after(),
                None,
                "{invalid}"
            );
        }
    }
}
