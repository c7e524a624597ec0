//! Preflights: which requests are preflights (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`, Fetch §4.8), and the headers of their answer. The
//! behaviour is documented on [`CorsLayer`](crate::CorsLayer#preflights).

use http::header::{
    HeaderMap, HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD,
    CONTENT_LENGTH, ORIGIN,
};
use http::{Method, Response};

use crate::options::{AllowHeaders, Config};

/// Not among `http`'s constants: Private Network Access (WICG).
const REQUEST_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-request-private-network");
const ALLOW_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-allow-private-network");

/// What a preflight asks for, kept until its answer is built.
#[derive(Debug)]
pub(crate) struct Preflight {
    /// The `Access-Control-Request-Headers` value, echoed when `allowed_headers` is unset.
    request_headers: Option<HeaderValue>,
    /// Whether it carried `Access-Control-Request-Private-Network: true`.
    private_network: bool,
}

impl Preflight {
    /// `Some` when the request is a CORS preflight.
    pub(crate) fn detect(method: &Method, headers: &HeaderMap) -> Option<Self> {
        if method != Method::OPTIONS
            || !headers.contains_key(ORIGIN)
            || !headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        Some(Self {
            request_headers: headers.get(ACCESS_CONTROL_REQUEST_HEADERS).cloned(),
            private_network: headers
                .get(REQUEST_PRIVATE_NETWORK)
                .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"true")),
        })
    }

    /// The layer's own answer: success status, empty body, `content-length: 0`.
    pub(crate) fn answer<B: Default>(config: &Config) -> Response<B> {
        let mut response = Response::new(B::default());
        *response.status_mut() = config.success_status;
        response
            .headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        response
    }

    /// The preflight-only headers for an allowed origin (ACAO and ACAC are set by the caller).
    pub(crate) fn apply_to(&mut self, config: &Config, headers: &mut HeaderMap) {
        if let Some(methods) = &config.methods {
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, methods.clone());
        }
        let allowed = match &config.allowed_headers {
            AllowHeaders::Echo => self.request_headers.take(),
            AllowHeaders::List(list) => list.clone(),
        };
        if let Some(allowed) = allowed {
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, allowed);
        }
        if let Some(max_age) = &config.max_age {
            headers.insert(ACCESS_CONTROL_MAX_AGE, max_age.clone());
        }
        if config.private_network && self.private_network {
            headers.insert(ALLOW_PRIVATE_NETWORK, HeaderValue::from_static("true"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_options_with_origin_and_request_method_is_a_preflight() {
        let headers = |pairs: &[(HeaderName, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(name.clone(), HeaderValue::from_static(value));
            }
            map
        };
        let full = headers(&[
            (ORIGIN, "https://a.example"),
            (ACCESS_CONTROL_REQUEST_METHOD, "PUT"),
        ]);
        assert!(Preflight::detect(&Method::OPTIONS, &full).is_some());
        assert!(Preflight::detect(&Method::GET, &full).is_none());
        assert!(
            Preflight::detect(&Method::OPTIONS, &headers(&[(ORIGIN, "https://a.example")]))
                .is_none()
        );
        assert!(Preflight::detect(
            &Method::OPTIONS,
            &headers(&[(ACCESS_CONTROL_REQUEST_METHOD, "PUT")])
        )
        .is_none());
        assert!(Preflight::detect(&Method::OPTIONS, &HeaderMap::new()).is_none());
    }

    #[test]
    fn private_network_request_is_read_case_insensitively() {
        let mut map = HeaderMap::new();
        map.insert(ORIGIN, HeaderValue::from_static("https://a.example"));
        map.insert(
            ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("GET"),
        );
        map.insert(REQUEST_PRIVATE_NETWORK, HeaderValue::from_static("TRUE"));
        assert!(
            Preflight::detect(&Method::OPTIONS, &map)
                .unwrap()
                .private_network
        );
        map.insert(REQUEST_PRIVATE_NETWORK, HeaderValue::from_static("false"));
        assert!(
            !Preflight::detect(&Method::OPTIONS, &map)
                .unwrap()
                .private_network
        );
    }
}
