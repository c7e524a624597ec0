//! Where a request carries its token: the `Authorization: Bearer` header, a cookie, or (opt-in)
//! a query parameter; and how a query-string token is kept out of what an app logs.
//!
//! # Example
//!
//! ```
//! use nest_auth::{Authenticator, Grant, Key};
//!
//! let auth = Authenticator::builder()
//!     .key(Key::hmac("k1", &[7; 32]).unwrap())
//!     .audience("rooms")
//!     .query_parameter("access_token")
//!     .build()
//!     .unwrap();
//! let token = auth.issue(&Grant::new("ada")).unwrap();
//! let (parts, ()) = http::Request::get(format!("/events?access_token={}", token.as_str()))
//!     .body(())
//!     .unwrap()
//!     .into_parts();
//! assert_eq!(auth.authenticate(&parts).unwrap().subject(), "ada");
//! assert_eq!(auth.redact(&parts.uri), "/events?access_token=REDACTED");
//! ```

use std::borrow::Cow;

use http::request::Parts;
use http::{header, Uri};
use percent_encoding::percent_decode_str;

use crate::error::{Error, Kind, Result};

/// Where the authenticator looks, in this order.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub(crate) header: bool,
    pub(crate) cookie: Option<String>,
    pub(crate) query: Option<String>,
}

/// The token the request carries, if any. A malformed `Authorization` header is an error: a
/// client that sent credentials learns they were not understood.
pub(crate) fn find<'a>(parts: &'a Parts, sources: &Sources) -> Result<Cow<'a, str>> {
    if sources.header {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let value = value.to_str().unwrap_or_default();
            return match value.split_once(' ') {
                Some((scheme, token))
                    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
                {
                    Ok(Cow::Borrowed(token.trim()))
                }
                _ => Err(Error::invalid(
                    "the Authorization header is not `Bearer <token>`",
                )),
            };
        }
    }
    if let Some(name) = &sources.cookie {
        if let Some(token) = cookie(parts, name) {
            return Ok(Cow::Borrowed(token));
        }
    }
    if let Some(name) = &sources.query {
        if let Some(token) = query_param(&parts.uri, name) {
            return Ok(token);
        }
    }
    Err(Error::new(Kind::Missing, "credentials required"))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// The percent-decoded value of query parameter `name`.
fn query_param<'a>(uri: &'a Uri, name: &str) -> Option<Cow<'a, str>> {
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| percent_decode_str(v).decode_utf8().ok())
        .filter(|v| !v.is_empty())
}

/// `uri` as text with the value of query parameter `name` replaced by `REDACTED`.
pub(crate) fn redact(uri: &Uri, name: &str) -> String {
    let Some(query) = uri.query() else {
        return uri.to_string();
    };
    let query: Vec<Cow<'_, str>> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((n, _)) if n == name => Cow::Owned(format!("{n}=REDACTED")),
            _ => Cow::Borrowed(pair),
        })
        .collect();
    let path = uri.path();
    format!("{path}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: http::request::Builder) -> Parts {
        req.body(()).unwrap().into_parts().0
    }

    fn all() -> Sources {
        Sources {
            header: true,
            cookie: Some("tok".into()),
            query: Some("access_token".into()),
        }
    }

    #[test]
    fn header_then_cookie_then_query() {
        let p = parts(
            http::Request::get("/e?access_token=q")
                .header("cookie", "a=1; tok=c")
                .header("authorization", "Bearer h"),
        );
        assert_eq!(find(&p, &all()).unwrap(), "h");
        let p = parts(http::Request::get("/e?access_token=q").header("cookie", "a=1; tok=c"));
        assert_eq!(find(&p, &all()).unwrap(), "c");
        let p = parts(http::Request::get("/e?x=1&access_token=q%2Eb"));
        assert_eq!(find(&p, &all()).unwrap(), "q.b");
        let no_query = Sources {
            query: None,
            ..all()
        };
        assert!(find(&p, &no_query).unwrap_err().is_missing());
        let p = parts(http::Request::get("/e").header("authorization", "Basic YTpi"));
        assert!(find(&p, &all()).unwrap_err().is_invalid());
    }

    #[test]
    fn redaction_replaces_only_the_token() {
        let uri: Uri = "/rooms/a/events?x=1&access_token=secret.jwt&y=2"
            .parse()
            .unwrap();
        assert_eq!(
            redact(&uri, "access_token"),
            "/rooms/a/events?x=1&access_token=REDACTED&y=2"
        );
        let uri: Uri = "/plain".parse().unwrap();
        assert_eq!(redact(&uri, "access_token"), "/plain");
    }
}
