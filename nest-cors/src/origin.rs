//! The `origin` option: [`AllowOrigin`](crate::AllowOrigin) and
//! [`OriginPattern`](crate::OriginPattern) as configured, their validation, and the rule
//! compiled from them that decides about each request's origin.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::ORIGIN;
use http::request::Parts;
use http::{HeaderMap, HeaderValue};
use regex::Regex;

use crate::error::CorsError;

/// The option name used in error messages.
const OPTION: &str = "origin";

type Predicate = Arc<dyn Fn(&str, &Parts) -> bool + Send + Sync>;
type BoxFuture = Pin<Box<dyn Future<Output = bool> + Send>>;
type AsyncPredicate = Arc<dyn Fn(String, &Parts) -> BoxFuture + Send + Sync>;

/// The `origin` option: which origins get `Access-Control-Allow-Origin`.
///
/// One of: any origin (`*`, the default), reflect the request's origin, a list of exact
/// origins and/or regexes ([`OriginPattern`]), a predicate, an async predicate, or disabled
/// (no CORS headers at all); passed to [`CorsBuilder::origin`](crate::CorsBuilder::origin).
/// Nothing is validated until [`CorsBuilder::build`](crate::CorsBuilder::build), which returns
/// an error naming `origin` unless list entries are origins exactly as a browser serializes
/// them and regexes compile.
///
/// Every rule except [`AllowOrigin::any`] and [`AllowOrigin::disabled`] depends on the request,
/// so its responses carry `Vary: Origin`, also when the request had no `Origin` or a disallowed
/// one (a cache must not hand one origin's answer to another).
///
/// The origin `null` (sandboxed iframes, `file:` pages, some redirects) is shared by every such
/// context, so it is allowed only by an exact `"null"` entry in a list, or by a predicate that
/// returns `true` for it; [`AllowOrigin::reflect`] and regexes never allow it.
///
/// # Example
///
/// ```
/// use http::{header, Request, Response};
/// use nest_cors::{AllowOrigin, CorsLayer, OriginPattern};
/// use std::convert::Infallible;
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = CorsLayer::builder()
///     .origin(AllowOrigin::list([
///         OriginPattern::exact("https://app.example"),
///         OriginPattern::regex(r"https://[a-z0-9-]+\.preview\.example"),
///     ]))
///     .build()
///     .expect("valid CORS configuration");
/// let svc = ServiceBuilder::new()
///     .layer(layer)
///     .service(service_fn(|_req: Request<String>| async {
///         Ok::<_, Infallible>(Response::new(String::from("hi")))
///     }));
///
/// let ask = |origin: &'static str| {
///     let svc = svc.clone();
///     async move {
///         let req = Request::builder().header(header::ORIGIN, origin).body(String::new()).unwrap();
///         svc.oneshot(req).await.unwrap()
///     }
/// };
///
/// let res = ask("https://pr-42.preview.example").await;
/// assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://pr-42.preview.example");
/// assert_eq!(res.headers()[header::VARY], "Origin");
///
/// // Regexes match the whole origin.
/// let res = ask("https://pr-42.preview.example.evil.io").await;
/// assert!(res.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
/// assert_eq!(res.headers()[header::VARY], "Origin");
/// # }
/// ```
#[derive(Clone)]
pub struct AllowOrigin {
    rule: Rule,
}

#[derive(Clone)]
enum Rule {
    Any,
    Reflect,
    List(Vec<OriginPattern>),
    Predicate(Predicate),
    AsyncPredicate(AsyncPredicate),
    Disabled,
}

impl AllowOrigin {
    /// Any origin: `Access-Control-Allow-Origin: *` on every response (the default), except to
    /// a request with more than one `Origin` or an invalid one (see
    /// [`CorsLayer`](crate::CorsLayer#requests-with-more-than-one-origin)).
    ///
    /// Responses do not depend on the request, so no `Vary: Origin` is added. Browsers refuse
    /// `*` for credentialed requests, so combining this with
    /// [`credentials`](crate::CorsBuilder::credentials) is a configuration error.
    #[must_use]
    pub fn any() -> Self {
        Self { rule: Rule::Any }
    }

    /// Reflect the request's `Origin` back, whatever it is (npm `cors`'s `origin: true`).
    ///
    /// The origin `null` is never reflected. Without credentials this is as open as
    /// [`any`](Self::any) but less cacheable. With credentials it lets every website read a
    /// logged-in user's responses, so that pair is refused unless you call
    /// [`CorsBuilder::dangerously_allow_credentials_for_any_origin`](crate::CorsBuilder::dangerously_allow_credentials_for_any_origin).
    #[must_use]
    pub fn reflect() -> Self {
        Self {
            rule: Rule::Reflect,
        }
    }

    /// One exact origin, such as `https://app.example` or `http://localhost:3000`.
    ///
    /// Only a request from that origin gets `Access-Control-Allow-Origin` (npm `cors` sends the
    /// configured origin to everyone; Fetch only needs it for the matching one).
    #[must_use]
    pub fn exact(origin: impl Into<String>) -> Self {
        Self::list([OriginPattern::exact(origin)])
    }

    /// One regex that must match the whole origin (it is anchored for you).
    #[must_use]
    pub fn regex(pattern: impl Into<String>) -> Self {
        Self::list([OriginPattern::regex(pattern)])
    }

    /// A list of exact origins and/or regexes; an origin is allowed when any entry matches.
    ///
    /// Plain strings convert to [`OriginPattern::exact`].
    #[must_use]
    pub fn list<I>(patterns: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<OriginPattern>,
    {
        Self {
            rule: Rule::List(patterns.into_iter().map(Into::into).collect()),
        }
    }

    /// A predicate called with the request's origin and head; `true` allows the origin.
    ///
    /// It also sees the origin `null` and decides about it like about any other. A request
    /// with more than one `Origin`, or one that is not an origin as browsers serialize it, is
    /// disallowed without calling the predicate (see
    /// [`CorsLayer`](crate::CorsLayer#requests-with-more-than-one-origin)).
    #[must_use]
    pub fn predicate<F>(predicate: F) -> Self
    where
        F: Fn(&str, &Parts) -> bool + Send + Sync + 'static,
    {
        Self {
            rule: Rule::Predicate(Arc::new(predicate)),
        }
    }

    /// An async predicate (a database or config-service lookup, say), evaluated per request.
    ///
    /// It receives the origin as an owned `String` and the request head; take what you need
    /// from the head before the `async` block. For actual requests the inner service runs
    /// while the predicate is pending; a preflight is answered when it resolves.
    #[must_use]
    pub fn async_predicate<F, Fut>(predicate: F) -> Self
    where
        F: Fn(String, &Parts) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        Self {
            rule: Rule::AsyncPredicate(Arc::new(move |origin, parts| {
                Box::pin(predicate(origin, parts)) as BoxFuture
            })),
        }
    }

    /// Disabled: the layer adds no CORS headers and passes every request, preflights included,
    /// to the inner service (npm `cors`'s `origin: false`).
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            rule: Rule::Disabled,
        }
    }

    pub(crate) fn is_any(&self) -> bool {
        matches!(self.rule, Rule::Any)
    }

    pub(crate) fn is_reflect(&self) -> bool {
        matches!(self.rule, Rule::Reflect)
    }

    /// Validates the configuration and compiles it into the rule the service evaluates.
    pub(crate) fn compile(self) -> Result<OriginRule, CorsError> {
        Ok(match self.rule {
            Rule::Any => OriginRule::Any,
            Rule::Reflect => OriginRule::Reflect,
            Rule::Disabled => OriginRule::Disabled,
            Rule::Predicate(f) => OriginRule::Predicate(f),
            Rule::AsyncPredicate(f) => OriginRule::AsyncPredicate(f),
            Rule::List(patterns) => {
                let mut exact = Vec::new();
                let mut regexes = Vec::new();
                for pattern in patterns {
                    match pattern.kind {
                        PatternKind::Exact(origin) => {
                            validate_origin(&origin)
                                .map_err(|msg| CorsError::invalid(OPTION, msg))?;
                            exact.push(origin);
                        }
                        PatternKind::Regex(source) => {
                            let anchored = format!("^(?:{source})$");
                            let regex = Regex::new(&anchored).map_err(|err| {
                                CorsError::invalid(
                                    OPTION,
                                    format!("`{source}` is not a valid regex"),
                                )
                                .with_source(err)
                            })?;
                            regexes.push(regex);
                        }
                    }
                }
                OriginRule::List { exact, regexes }
            }
        })
    }
}

impl Default for AllowOrigin {
    /// [`AllowOrigin::any`].
    fn default() -> Self {
        Self::any()
    }
}

impl fmt::Debug for AllowOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            Rule::Any => f.write_str("AllowOrigin::Any"),
            Rule::Reflect => f.write_str("AllowOrigin::Reflect"),
            Rule::List(list) => f.debug_tuple("AllowOrigin::List").field(list).finish(),
            Rule::Predicate(_) => f.write_str("AllowOrigin::Predicate(..)"),
            Rule::AsyncPredicate(_) => f.write_str("AllowOrigin::AsyncPredicate(..)"),
            Rule::Disabled => f.write_str("AllowOrigin::Disabled"),
        }
    }
}

/// One entry of [`AllowOrigin::list`]: an exact origin or a regex.
#[derive(Debug, Clone)]
pub struct OriginPattern {
    kind: PatternKind,
}

#[derive(Debug, Clone)]
enum PatternKind {
    Exact(String),
    Regex(String),
}

impl OriginPattern {
    /// An exact origin as browsers send it: `scheme://host[:port]`, lowercase, no default
    /// port, no path or trailing slash; or `null`. Compared byte for byte.
    #[must_use]
    pub fn exact(origin: impl Into<String>) -> Self {
        Self {
            kind: PatternKind::Exact(origin.into()),
        }
    }

    /// A regex that must match the whole origin: `https://example\.com` does not match
    /// `https://example.com.evil.io`. It never matches the origin `null`.
    #[must_use]
    pub fn regex(pattern: impl Into<String>) -> Self {
        Self {
            kind: PatternKind::Regex(pattern.into()),
        }
    }
}

impl From<&str> for OriginPattern {
    fn from(origin: &str) -> Self {
        Self::exact(origin)
    }
}

impl From<String> for OriginPattern {
    fn from(origin: String) -> Self {
        Self::exact(origin)
    }
}

/// The validated `origin` rule, evaluated once per request.
#[derive(Clone)]
pub(crate) enum OriginRule {
    Any,
    Reflect,
    List {
        exact: Vec<String>,
        regexes: Vec<Regex>,
    },
    Predicate(Predicate),
    AsyncPredicate(AsyncPredicate),
    Disabled,
}

impl fmt::Debug for OriginRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("Any"),
            Self::Reflect => f.write_str("Reflect"),
            Self::List { exact, regexes } => f
                .debug_struct("List")
                .field("exact", exact)
                .field("regexes", regexes)
                .finish(),
            Self::Predicate(_) => f.write_str("Predicate(..)"),
            Self::AsyncPredicate(_) => f.write_str("AsyncPredicate(..)"),
            Self::Disabled => f.write_str("Disabled"),
        }
    }
}

const NULL: &str = "null";

impl OriginRule {
    pub(crate) fn is_disabled(&self) -> bool {
        matches!(self, Self::Disabled)
    }

    /// Whether `Access-Control-Allow-Origin` depends on the request (so `Vary: Origin`).
    pub(crate) fn varies(&self) -> bool {
        !matches!(self, Self::Any | Self::Disabled)
    }

    /// Decides about the request's origin. `Decided(None)` means disallowed.
    pub(crate) fn check(&self, origin: RequestOrigin<'_>, parts: &Parts) -> OriginCheck {
        let (value, text) = match (self, origin) {
            (_, RequestOrigin::Invalid) => return OriginCheck::Decided(None),
            (Self::Any, _) => return OriginCheck::Decided(Some(HeaderValue::from_static("*"))),
            (_, RequestOrigin::Absent) => return OriginCheck::Decided(None),
            (_, RequestOrigin::Valid { value, text }) => (value, text),
        };
        let allowed = match self {
            Self::Any | Self::Disabled => false,
            Self::Reflect => text != NULL,
            Self::List { exact, regexes } => {
                exact.iter().any(|entry| entry == text)
                    || (text != NULL && regexes.iter().any(|regex| regex.is_match(text)))
            }
            Self::Predicate(predicate) => predicate(text, parts),
            Self::AsyncPredicate(predicate) => {
                return OriginCheck::Pending {
                    future: predicate(text.to_owned(), parts),
                    origin: value.clone(),
                };
            }
        };
        OriginCheck::Decided(allowed.then(|| value.clone()))
    }
}

/// The request's `Origin`, as far as CORS is concerned.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RequestOrigin<'a> {
    /// No `Origin` header.
    Absent,
    /// One `Origin` header holding one origin as browsers serialize it, or `null`.
    Valid {
        value: &'a HeaderValue,
        text: &'a str,
    },
    /// More than one `Origin` header, or a value that is not one serialized origin: no browser
    /// sends that, and which origin it means is ambiguous, so it is never allowed.
    Invalid,
}

impl<'a> RequestOrigin<'a> {
    pub(crate) fn read(headers: &'a HeaderMap) -> Self {
        let mut values = headers.get_all(ORIGIN).iter();
        let Some(value) = values.next() else {
            return Self::Absent;
        };
        if values.next().is_some() {
            return Self::Invalid;
        }
        match value.to_str() {
            Ok(text) if parse_origin(text).is_ok() => Self::Valid { value, text },
            _ => Self::Invalid,
        }
    }

    pub(crate) fn is_invalid(self) -> bool {
        matches!(self, Self::Invalid)
    }
}

/// The decision about one request's origin: the `Access-Control-Allow-Origin` value to send,
/// or `None` when disallowed; pending while an async predicate runs.
pub(crate) enum OriginCheck {
    Decided(Option<HeaderValue>),
    Pending {
        future: BoxFuture,
        origin: HeaderValue,
    },
}

impl fmt::Debug for OriginCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decided(value) => f.debug_tuple("Decided").field(value).finish(),
            Self::Pending { origin, .. } => {
                f.debug_struct("Pending").field("origin", origin).finish()
            }
        }
    }
}

impl OriginCheck {
    /// Drives a pending async predicate; ready once the decision is known.
    pub(crate) fn poll_decided(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Self::Pending { future, origin } = self {
            let allowed = match future.as_mut().poll(cx) {
                Poll::Ready(allowed) => allowed,
                Poll::Pending => return Poll::Pending,
            };
            let origin = std::mem::replace(origin, HeaderValue::from_static(""));
            *self = Self::Decided(allowed.then_some(origin));
        }
        Poll::Ready(())
    }

    /// The decided `Access-Control-Allow-Origin` value; `None` if disallowed or still pending.
    pub(crate) fn take(&mut self) -> Option<HeaderValue> {
        match self {
            Self::Decided(value) => value.take(),
            Self::Pending { .. } => None,
        }
    }
}

/// Why a string is not an origin as browsers serialize it; the fields are what the
/// configuration error needs to suggest the fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NotAnOrigin<'a> {
    Star,
    Uppercase,
    NoScheme,
    BadScheme(&'a str),
    /// A path, query, fragment or trailing slash; the origin without it.
    Path(&'a str),
    UserInfo,
    BadHostOrPort,
    BadHost(&'a str),
    /// The scheme's default port; the origin without it.
    DefaultPort(&'a str),
}

/// Checks that `origin` is `null` or `scheme://host[:port]` exactly as a browser serializes it
/// in `Origin`: lowercase, no default port, no path. Runs on every request, so it does not
/// allocate.
fn parse_origin(origin: &str) -> Result<(), NotAnOrigin<'_>> {
    if origin == NULL {
        return Ok(());
    }
    if origin == "*" {
        return Err(NotAnOrigin::Star);
    }
    if origin.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(NotAnOrigin::Uppercase);
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(NotAnOrigin::NoScheme);
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_lowercase())
        && scheme
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !scheme_ok {
        return Err(NotAnOrigin::BadScheme(scheme));
    }
    let authority_start = scheme.len() + "://".len();
    if let Some(index) = rest.find(['/', '?', '#']) {
        return Err(NotAnOrigin::Path(&origin[..authority_start + index]));
    }
    if rest.contains('@') {
        return Err(NotAnOrigin::UserInfo);
    }
    let (host, port) = split_host_port(rest).ok_or(NotAnOrigin::BadHostOrPort)?;
    let host_ok = !host.is_empty()
        && host.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || "-._".contains(c) || is_ipv6_char(c)
        });
    if !host_ok {
        return Err(NotAnOrigin::BadHost(host));
    }
    let default_port = match scheme {
        "http" | "ws" => Some("80"),
        "https" | "wss" => Some("443"),
        _ => None,
    };
    if port.is_some() && port == default_port {
        return Err(NotAnOrigin::DefaultPort(
            &origin[..authority_start + host.len()],
        ));
    }
    Ok(())
}

/// Checks that a configured `origin` is what a browser sends in `Origin`, so that the byte
/// comparison can match; the message suggests the fix for the common mistakes.
fn validate_origin(origin: &str) -> Result<(), String> {
    parse_origin(origin).map_err(|fault| match fault {
        NotAnOrigin::Star => {
            "`*` is not an origin; use `AllowOrigin::any()` to allow every origin".into()
        }
        NotAnOrigin::Uppercase => format!(
            "origin `{origin}` has uppercase letters, but browsers send it lowercase: \
             did you mean `{}`?",
            origin.to_ascii_lowercase()
        ),
        NotAnOrigin::NoScheme => format!(
            "`{origin}` is not an origin: expected `scheme://host[:port]`, such as \
             `https://app.example`, or `null`"
        ),
        NotAnOrigin::BadScheme(scheme) => {
            format!("origin `{origin}` has an invalid scheme `{scheme}`")
        }
        NotAnOrigin::Path(trimmed) => format!(
            "origin `{origin}` has a path, query or trailing slash, which browsers never send \
             in `Origin`: did you mean `{trimmed}`?"
        ),
        NotAnOrigin::UserInfo => format!("origin `{origin}` must not contain user info"),
        NotAnOrigin::BadHostOrPort => format!("origin `{origin}` has an invalid host or port"),
        NotAnOrigin::BadHost(host) => format!("origin `{origin}` has an invalid host `{host}`"),
        NotAnOrigin::DefaultPort(trimmed) => format!(
            "origin `{origin}` names the default port, which browsers omit: \
             did you mean `{trimmed}`?"
        ),
    })
}

fn is_ipv6_char(c: char) -> bool {
    matches!(c, '[' | ']' | ':')
}

/// Splits `host[:port]` (host may be a bracketed IPv6 address); `None` for a malformed port.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let port_start = if authority.starts_with('[') {
        let close = authority.find(']')?;
        match &authority[close + 1..] {
            "" => return Some((authority, None)),
            rest if rest.starts_with(':') => close + 1,
            _ => return None,
        }
    } else {
        match authority.rfind(':') {
            Some(index) => index,
            None => return Some((authority, None)),
        }
    };
    let (host, port) = (&authority[..port_start], &authority[port_start + 1..]);
    let port_ok = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && !(port.len() > 1 && port.starts_with('0'))
        && port.parse::<u32>().is_ok_and(|p| p <= 65535);
    if !port_ok || (!host.starts_with('[') && host.contains(':')) {
        return None;
    }
    Some((host, Some(port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_origins_as_browsers_serialize_them() {
        for origin in [
            "null",
            "https://app.example",
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "https://[2001:db8::1]",
            "chrome-extension://abcdef",
        ] {
            assert_eq!(validate_origin(origin), Ok(()), "{origin}");
        }
    }

    #[test]
    fn rejects_common_mistakes_with_a_suggestion() {
        let cases = [
            ("https://app.example/", "did you mean `https://app.example`"),
            (
                "https://app.example/api",
                "did you mean `https://app.example`",
            ),
            ("https://App.Example", "did you mean `https://app.example`"),
            (
                "https://app.example:443",
                "did you mean `https://app.example`",
            ),
            ("http://app.example:80", "did you mean `http://app.example`"),
            ("app.example", "expected `scheme://host[:port]`"),
            ("*", "AllowOrigin::any()"),
            ("https://", "invalid host"),
            ("https://a.example:99999", "invalid host or port"),
            ("https://a.example:", "invalid host or port"),
            ("https://user@a.example", "user info"),
            ("https://a b.example", "invalid host"),
        ];
        for (origin, expected) in cases {
            let err = validate_origin(origin).unwrap_err();
            assert!(err.contains(expected), "{origin}: {err}");
        }
    }

    /// The decision of a sync `rule` for a request with these `Origin` lines.
    fn decide(rule: &OriginRule, origins: &[&'static str]) -> Option<HeaderValue> {
        let mut request = http::Request::new(());
        for origin in origins {
            let value = HeaderValue::from_static(origin);
            request.headers_mut().append(ORIGIN, value);
        }
        let parts = request.into_parts().0;
        match rule.check(RequestOrigin::read(&parts.headers), &parts) {
            OriginCheck::Decided(value) => value,
            OriginCheck::Pending { .. } => unreachable!("sync rule"),
        }
    }

    #[test]
    fn regexes_are_anchored_and_never_match_null() {
        let rule = AllowOrigin::list([
            OriginPattern::regex(r"https://example\.com"),
            OriginPattern::regex(".*"),
        ])
        .compile()
        .unwrap();
        let allowed = decide(&rule, &["https://example.com"]);
        assert_eq!(allowed.unwrap(), "https://example.com");
        assert!(decide(&rule, &["null"]).is_none());

        let strict = AllowOrigin::regex(r"https://example\.com")
            .compile()
            .unwrap();
        assert!(decide(&strict, &["https://example.com"]).is_some());
        assert!(decide(&strict, &["https://example.com.evil.io"]).is_none());
    }

    #[test]
    fn only_one_serialized_origin_is_a_valid_request_origin() {
        let read = |origins: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for origin in origins {
                headers.append(ORIGIN, HeaderValue::from_static(origin));
            }
            match RequestOrigin::read(&headers) {
                RequestOrigin::Absent => "absent",
                RequestOrigin::Valid { .. } => "valid",
                RequestOrigin::Invalid => "invalid",
            }
        };
        assert_eq!(read(&[]), "absent");
        for origin in ["https://a.example", "http://[::1]:8080", "null"] {
            assert_eq!(read(&[origin]), "valid", "{origin}");
        }
        let a = "https://a.example";
        assert_eq!(read(&[a, "https://b.example"]), "invalid");
        assert_eq!(read(&[a, a]), "invalid", "even the same origin twice");
        for origin in [
            "https://a.example, https://b.example",
            "https://a.example/",
            "https://A.example",
            "*",
            "",
        ] {
            assert_eq!(read(&[origin]), "invalid", "{origin}");
        }
        let mut headers = HeaderMap::new();
        let latin1 = HeaderValue::from_bytes(b"https://caf\xe9.example").unwrap();
        headers.insert(ORIGIN, latin1);
        assert!(RequestOrigin::read(&headers).is_invalid());
    }

    #[test]
    fn any_allows_no_origin_but_not_an_invalid_one() {
        let any = AllowOrigin::any().compile().unwrap();
        assert_eq!(decide(&any, &[]).unwrap(), "*");
        assert_eq!(decide(&any, &["https://a.example"]).unwrap(), "*");
        assert!(decide(&any, &["https://a.example", "https://b.example"]).is_none());
        assert!(decide(&any, &["https://a.example/"]).is_none());
    }

    #[test]
    fn invalid_regex_is_an_error_naming_origin() {
        let err = AllowOrigin::regex("https://(unclosed")
            .compile()
            .unwrap_err();
        assert_eq!(err.option(), "origin");
        assert!(err.to_string().contains("https://(unclosed"), "{err}");
    }
}
