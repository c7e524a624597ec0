//! The `origin` option: [`AllowOrigin`](crate::AllowOrigin) and
//! [`OriginPattern`](crate::OriginPattern) as configured, their validation, and the rule
//! compiled from them that decides about each request's origin.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::request::Parts;
use http::HeaderValue;
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
    /// Any origin: `Access-Control-Allow-Origin: *` on every response (the default).
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
    /// whose `Origin` is not visible ASCII is disallowed without calling the predicate.
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
    pub(crate) fn check(&self, origin: Option<&HeaderValue>, parts: &Parts) -> OriginCheck {
        if let Self::Any = self {
            return OriginCheck::Decided(Some(HeaderValue::from_static("*")));
        }
        let Some(value) = origin else {
            return OriginCheck::Decided(None);
        };
        let Ok(text) = value.to_str() else {
            return OriginCheck::Decided(None);
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

/// Checks that `origin` is what a browser sends in `Origin`, so that the byte comparison can
/// match; the message suggests the fix for the common mistakes.
fn validate_origin(origin: &str) -> Result<(), String> {
    if origin == NULL {
        return Ok(());
    }
    if origin == "*" {
        return Err("`*` is not an origin; use `AllowOrigin::any()` to allow every origin".into());
    }
    let lower = origin.to_ascii_lowercase();
    if lower != origin {
        return Err(format!(
            "origin `{origin}` has uppercase letters, but browsers send it lowercase: \
             did you mean `{lower}`?"
        ));
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(format!(
            "`{origin}` is not an origin: expected `scheme://host[:port]`, such as \
             `https://app.example`, or `null`"
        ));
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_lowercase())
        && scheme
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !scheme_ok {
        return Err(format!(
            "origin `{origin}` has an invalid scheme `{scheme}`"
        ));
    }
    if let Some(index) = rest.find(['/', '?', '#']) {
        let trimmed = format!("{scheme}://{}", &rest[..index]);
        return Err(format!(
            "origin `{origin}` has a path, query or trailing slash, which browsers never send \
             in `Origin`: did you mean `{trimmed}`?"
        ));
    }
    if rest.contains('@') {
        return Err(format!("origin `{origin}` must not contain user info"));
    }
    let (host, port) = split_host_port(rest)
        .ok_or_else(|| format!("origin `{origin}` has an invalid host or port"))?;
    let host_ok = !host.is_empty()
        && host.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || "-._".contains(c) || is_ipv6_char(c)
        });
    if !host_ok {
        return Err(format!("origin `{origin}` has an invalid host `{host}`"));
    }
    if let Some(port) = port {
        let default = match scheme {
            "http" | "ws" => Some("80"),
            "https" | "wss" => Some("443"),
            _ => None,
        };
        if default == Some(port) {
            let trimmed = format!("{scheme}://{host}");
            return Err(format!(
                "origin `{origin}` names the default port, which browsers omit: \
                 did you mean `{trimmed}`?"
            ));
        }
    }
    Ok(())
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

    #[test]
    fn regexes_are_anchored_and_never_match_null() {
        let rule = AllowOrigin::list([
            OriginPattern::regex(r"https://example\.com"),
            OriginPattern::regex(".*"),
        ])
        .compile()
        .unwrap();
        let parts = http::Request::new(()).into_parts().0;
        let check = |origin: &'static str| match rule
            .check(Some(&HeaderValue::from_static(origin)), &parts)
        {
            OriginCheck::Decided(value) => value,
            OriginCheck::Pending { .. } => unreachable!("sync rule"),
        };
        assert_eq!(check("https://example.com").unwrap(), "https://example.com");
        assert!(check("null").is_none());

        let strict = AllowOrigin::regex(r"https://example\.com")
            .compile()
            .unwrap();
        let decided = |origin: &'static str| {
            matches!(
                strict.check(Some(&HeaderValue::from_static(origin)), &parts),
                OriginCheck::Decided(Some(_))
            )
        };
        assert!(decided("https://example.com"));
        assert!(!decided("https://example.com.evil.io"));
        assert!(!decided("https://evil.io/https://example.com"));
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
