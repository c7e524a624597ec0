//! The options: [`CorsBuilder`](crate::CorsBuilder), the validation of each one (an error
//! naming the option, never a panic), and the `Config` the service reads, whose header values
//! are built here, once.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, StatusCode};

use crate::error::CorsError;
use crate::origin::{AllowOrigin, OriginRule};
use crate::vary::Vary;

/// The default `methods`, as in npm `cors`.
pub(crate) const DEFAULT_METHODS: &str = "GET,HEAD,PUT,PATCH,POST,DELETE";
/// The default `max_age`: long enough that browsers do not re-preflight every 5 seconds
/// (their default without the header), short enough that a configuration change lands soon.
pub(crate) const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

const REQUEST_HEADERS: &str = "Access-Control-Request-Headers";
const REQUEST_PRIVATE_NETWORK: &str = "Access-Control-Request-Private-Network";

/// Builds a [`CorsLayer`](crate::CorsLayer); every option has the npm `cors` default until set.
///
/// Created by [`CorsLayer::builder`](crate::CorsLayer::builder).
///
/// | option | builder method | default |
/// |---|---|---|
/// | `origin` | [`origin`](CorsBuilder::origin) | [`AllowOrigin::any`] (`*`) |
/// | `methods` | [`methods`](CorsBuilder::methods) | `GET,HEAD,PUT,PATCH,POST,DELETE` |
/// | `allowed_headers` | [`allowed_headers`](CorsBuilder::allowed_headers) | echo `Access-Control-Request-Headers` |
/// | `exposed_headers` | [`exposed_headers`](CorsBuilder::exposed_headers) | none |
/// | `credentials` | [`credentials`](CorsBuilder::credentials) | `false` |
/// | `max_age` | [`max_age`](CorsBuilder::max_age) | 600 s |
/// | `preflight_continue` | [`preflight_continue`](CorsBuilder::preflight_continue) | `false` |
/// | `options_success_status` | [`options_success_status`](CorsBuilder::options_success_status) | `204` |
/// | `private_network` | [`private_network`](CorsBuilder::private_network) | `false` |
///
/// [`build`](CorsBuilder::build) checks everything and returns a [`CorsError`] naming the
/// option at fault instead of panicking.
///
/// # Example
///
/// ```
/// use nest_cors::{AllowOrigin, CorsLayer};
/// use std::time::Duration;
///
/// // A credentialed single-page app on a known origin.
/// let layer = CorsLayer::builder()
///     .origin(AllowOrigin::exact("https://app.example"))
///     .credentials(true)
///     .allowed_headers(["content-type", "authorization", "last-event-id"])
///     .exposed_headers(["x-request-id"])
///     .max_age(Duration::from_secs(3600))
///     .build();
/// assert!(layer.is_ok());
///
/// // A path in an origin is a common mistake: an error that names the option and the fix.
/// let err = CorsLayer::builder()
///     .origin(AllowOrigin::exact("https://app.example/"))
///     .build()
///     .unwrap_err();
/// assert_eq!(err.option(), "origin");
/// assert!(err.to_string().contains("did you mean `https://app.example`"));
///
/// // Fetch treats `*` literally on credentialed requests, so it is refused with credentials.
/// let err = CorsLayer::builder()
///     .origin(AllowOrigin::exact("https://app.example"))
///     .credentials(true)
///     .exposed_headers(["*"])
///     .build()
///     .unwrap_err();
/// assert_eq!(err.option(), "exposed_headers");
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct CorsBuilder {
    origin: AllowOrigin,
    methods: Option<Vec<String>>,
    allowed_headers: Option<Vec<String>>,
    exposed_headers: Vec<String>,
    credentials: bool,
    credentials_for_any_origin: bool,
    max_age: Option<Duration>,
    preflight_continue: bool,
    options_success_status: u16,
    private_network: bool,
}

impl Default for CorsBuilder {
    fn default() -> Self {
        Self {
            origin: AllowOrigin::any(),
            methods: None,
            allowed_headers: None,
            exposed_headers: Vec::new(),
            credentials: false,
            credentials_for_any_origin: false,
            max_age: Some(DEFAULT_MAX_AGE),
            preflight_continue: false,
            options_success_status: 204,
            private_network: false,
        }
    }
}

impl CorsBuilder {
    /// Which origins may read responses; see [`AllowOrigin`]. Default: any (`*`).
    pub fn origin(mut self, origin: impl Into<AllowOrigin>) -> Self {
        self.origin = origin.into();
        self
    }

    /// `Access-Control-Allow-Methods` on preflights, comma-joined in the given order.
    /// Default: `GET,HEAD,PUT,PATCH,POST,DELETE`.
    ///
    /// Accepts strings and [`http::Method`]s. `*` means any method, but only without
    /// credentials. Methods are case-sensitive: `get` is refused because browsers always send
    /// `GET`. An empty list sends no header, which allows only the CORS-safelisted methods.
    pub fn methods<I>(mut self, methods: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.methods = Some(methods.into_iter().map(|m| m.as_ref().to_owned()).collect());
        self
    }

    /// `Access-Control-Allow-Headers` on preflights, comma-joined.
    /// Default: echo the preflight's `Access-Control-Request-Headers` (with
    /// `Vary: Access-Control-Request-Headers`).
    ///
    /// Accepts strings and [`http::HeaderName`]s; names are sent lowercase. `*` means any
    /// header, but only without credentials.
    pub fn allowed_headers<I>(mut self, headers: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.allowed_headers = Some(headers.into_iter().map(|h| h.as_ref().to_owned()).collect());
        self
    }

    /// Go back to the default of `allowed_headers`: echo `Access-Control-Request-Headers`.
    pub fn echo_request_headers(mut self) -> Self {
        self.allowed_headers = None;
        self
    }

    /// `Access-Control-Expose-Headers` on actual responses: the response headers, beyond the
    /// CORS-safelisted ones, that the page's script may read. Default: none.
    ///
    /// `*` means all headers, but only without credentials.
    pub fn exposed_headers<I>(mut self, headers: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.exposed_headers = headers.into_iter().map(|h| h.as_ref().to_owned()).collect();
        self
    }

    /// `Access-Control-Allow-Credentials: true` for allowed origins, so that cookies and HTTP
    /// auth go along (`EventSource` with `withCredentials`, `fetch` with
    /// `credentials: "include"`). Default: `false`.
    ///
    /// Refused together with [`AllowOrigin::any`] and with `*` in `methods`,
    /// `allowed_headers` or `exposed_headers`, because browsers reject or ignore those pairs;
    /// refused with [`AllowOrigin::reflect`] unless
    /// [`dangerously_allow_credentials_for_any_origin`](Self::dangerously_allow_credentials_for_any_origin)
    /// is called too.
    pub fn credentials(mut self, credentials: bool) -> Self {
        self.credentials = credentials;
        self
    }

    /// **Dangerous**: permit [`AllowOrigin::reflect`] together with credentials.
    ///
    /// That pair lets *every* website a logged-in user visits read their responses from this
    /// server, with their cookies: a cross-site data leak unless every credentialed route is
    /// public anyway. npm `cors` allows it silently; here it needs this explicit opt-in. Prefer
    /// a list, a regex or a predicate.
    pub fn dangerously_allow_credentials_for_any_origin(mut self) -> Self {
        self.credentials_for_any_origin = true;
        self
    }

    /// `Access-Control-Max-Age` on preflights: how long the browser may cache the answer.
    /// `None` sends no header (browsers then cache for 5 seconds). Default: 600 seconds.
    ///
    /// Browsers cap it (Chromium at 2 hours, Firefox at 24 hours).
    pub fn max_age(mut self, max_age: impl Into<Option<Duration>>) -> Self {
        self.max_age = max_age.into();
        self
    }

    /// Pass preflights to the inner service (with the CORS headers added to its response)
    /// instead of answering them. Default: `false`.
    pub fn preflight_continue(mut self, preflight_continue: bool) -> Self {
        self.preflight_continue = preflight_continue;
        self
    }

    /// The status of the layer's preflight answers; must be in 200–299. Default: 204.
    ///
    /// Accepts a `u16` or an [`http::StatusCode`].
    pub fn options_success_status(mut self, status: impl Into<u16>) -> Self {
        self.options_success_status = status.into();
        self
    }

    /// Answer `Access-Control-Allow-Private-Network: true` to preflights that carry
    /// `Access-Control-Request-Private-Network: true` (a public page reaching a server on a
    /// private network or localhost). Default: `false`.
    pub fn private_network(mut self, private_network: bool) -> Self {
        self.private_network = private_network;
        self
    }

    /// Validates the options (the first half of [`build`](Self::build), which is in `layer.rs`
    /// with the layer it makes).
    pub(crate) fn into_config(self) -> Result<Config, CorsError> {
        if self.credentials && self.origin.is_any() {
            return Err(CorsError::incompatible(
                "credentials",
                "credentials cannot be combined with origin `*` (browsers reject \
                 `Access-Control-Allow-Origin: *` on credentialed requests); list the \
                 allowed origins instead",
            ));
        }
        if self.credentials && self.origin.is_reflect() && !self.credentials_for_any_origin {
            return Err(CorsError::incompatible(
                "credentials",
                "credentials with origin reflect-any let every website read logged-in users' \
                 responses; list the allowed origins, or call \
                 `dangerously_allow_credentials_for_any_origin()` if that is really intended",
            ));
        }

        let methods = match &self.methods {
            None => Some(HeaderValue::from_static(DEFAULT_METHODS)),
            Some(methods) => join_validated("methods", methods, self.credentials, validate_method)?,
        };
        let allowed_headers = match &self.allowed_headers {
            None => AllowHeaders::Echo,
            Some(headers) => AllowHeaders::List(join_validated(
                "allowed_headers",
                headers,
                self.credentials,
                validate_header_name,
            )?),
        };
        let exposed_headers = join_validated(
            "exposed_headers",
            &self.exposed_headers,
            self.credentials,
            validate_header_name,
        )?;

        let status = self.options_success_status;
        let success_status = StatusCode::from_u16(status)
            .ok()
            .filter(StatusCode::is_success)
            .ok_or_else(|| {
                CorsError::invalid(
                    "options_success_status",
                    format!("{status} is not a success status (200–299)"),
                )
            })?;

        let origin = self.origin.compile()?;
        let origin_varies = origin.varies();

        let mut actual_vary = Vec::new();
        let mut preflight_vary = Vec::new();
        if origin_varies {
            actual_vary.push("Origin");
            preflight_vary.push("Origin");
        }
        if matches!(allowed_headers, AllowHeaders::Echo) {
            preflight_vary.push(REQUEST_HEADERS);
        }
        if self.private_network {
            preflight_vary.push(REQUEST_PRIVATE_NETWORK);
        }

        Ok(Config {
            origin,
            credentials: self.credentials,
            methods,
            allowed_headers,
            exposed_headers,
            max_age: self.max_age.map(|age| HeaderValue::from(age.as_secs())),
            preflight_continue: self.preflight_continue,
            success_status,
            private_network: self.private_network,
            actual_vary: Vary::new(actual_vary),
            preflight_vary: Vary::new(preflight_vary),
            origin_vary: Vary::new(vec!["Origin"]),
        })
    }
}

/// Validates each entry, refuses `*` with credentials, and joins them with `,`.
/// `None` for an empty list (no header is sent).
fn join_validated(
    option: &'static str,
    entries: &[String],
    credentials: bool,
    validate: fn(&'static str, &str) -> Result<String, CorsError>,
) -> Result<Option<HeaderValue>, CorsError> {
    let mut normalized = Vec::with_capacity(entries.len());
    for entry in entries {
        if entry == "*" {
            if credentials {
                return Err(CorsError::incompatible(
                    option,
                    format!(
                        "`*` in {option} is taken literally by browsers on credentialed \
                         requests; list the names explicitly when credentials are on"
                    ),
                ));
            }
            normalized.push(entry.clone());
            continue;
        }
        normalized.push(validate(option, entry)?);
    }
    if normalized.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(&normalized.join(","))
        .map(Some)
        .map_err(|err| {
            CorsError::invalid(option, "the joined list is not a valid header value")
                .with_source(err)
        })
}

fn validate_method(option: &'static str, method: &str) -> Result<String, CorsError> {
    Method::from_bytes(method.as_bytes()).map_err(|err| {
        CorsError::invalid(option, format!("`{method}` is not a valid HTTP method"))
            .with_source(err)
    })?;
    let upper = method.to_ascii_uppercase();
    // Browsers upper-case these six before sending them; any other spelling never matches.
    let normalized_by_browsers = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
    if upper != method && normalized_by_browsers.contains(&upper.as_str()) {
        return Err(CorsError::invalid(
            option,
            format!(
                "`{method}` never matches: browsers send `{upper}`, and methods are case-sensitive"
            ),
        ));
    }
    Ok(method.to_owned())
}

fn validate_header_name(option: &'static str, name: &str) -> Result<String, CorsError> {
    HeaderName::from_bytes(name.as_bytes())
        .map(|name| name.as_str().to_owned())
        .map_err(|err| {
            CorsError::invalid(option, format!("`{name}` is not a valid header name"))
                .with_source(err)
        })
}

/// `allowed_headers`, validated.
#[derive(Debug, Clone)]
pub(crate) enum AllowHeaders {
    /// Echo the preflight's `Access-Control-Request-Headers`.
    Echo,
    /// A fixed list; `None` when empty.
    List(Option<HeaderValue>),
}

/// The validated configuration the service reads; header values are built once, here.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) origin: OriginRule,
    pub(crate) credentials: bool,
    pub(crate) methods: Option<HeaderValue>,
    pub(crate) allowed_headers: AllowHeaders,
    pub(crate) exposed_headers: Option<HeaderValue>,
    pub(crate) max_age: Option<HeaderValue>,
    pub(crate) preflight_continue: bool,
    pub(crate) success_status: StatusCode,
    pub(crate) private_network: bool,
    pub(crate) actual_vary: Vary,
    pub(crate) preflight_vary: Vary,
    /// Merged in when the request's `Origin` was invalid under a rule that does not vary.
    pub(crate) origin_vary: Vary,
}

impl Config {
    /// The defaults; they cannot fail validation.
    pub(crate) fn defaults() -> Self {
        CorsBuilder::default()
            .into_config()
            .unwrap_or_else(|_| unreachable!("the default options are valid"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::CorsLayer;

    fn err(builder: CorsBuilder) -> CorsError {
        builder
            .build()
            .expect_err("configuration should be refused")
    }

    fn exact() -> CorsBuilder {
        CorsLayer::builder().origin(AllowOrigin::exact("https://app.example"))
    }

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let config = Config::defaults();
        assert!(matches!(config.origin, OriginRule::Any));
        assert_eq!(config.methods.unwrap(), DEFAULT_METHODS);
        assert!(matches!(config.allowed_headers, AllowHeaders::Echo));
        assert!(config.exposed_headers.is_none());
        assert!(!config.credentials);
        assert_eq!(config.max_age.unwrap(), "600");
        assert!(!config.preflight_continue);
        assert_eq!(config.success_status, StatusCode::NO_CONTENT);
        assert!(!config.private_network);
    }

    #[test]
    fn credentials_with_any_origin_is_refused() {
        let e = err(CorsLayer::builder().credentials(true));
        assert_eq!(e.option(), "credentials");
        assert!(e.is_incompatible());
        assert!(e.to_string().contains("origin `*`"), "{e}");
    }

    #[test]
    fn credentials_with_reflect_needs_the_named_opt_in() {
        let reflect = || {
            CorsLayer::builder()
                .origin(AllowOrigin::reflect())
                .credentials(true)
        };
        let e = err(reflect());
        assert_eq!(e.option(), "credentials");
        assert!(
            e.to_string()
                .contains("dangerously_allow_credentials_for_any_origin"),
            "{e}"
        );
        assert!(reflect()
            .dangerously_allow_credentials_for_any_origin()
            .build()
            .is_ok());
        // Without credentials reflect needs no opt-in.
        assert!(CorsLayer::builder()
            .origin(AllowOrigin::reflect())
            .build()
            .is_ok());
    }

    #[test]
    fn star_is_refused_with_credentials_in_each_list() {
        let e = err(exact().credentials(true).methods(["GET", "*"]));
        assert_eq!(e.option(), "methods");
        let e = err(exact().credentials(true).allowed_headers(["*"]));
        assert_eq!(e.option(), "allowed_headers");
        let e = err(exact().credentials(true).exposed_headers(["*"]));
        assert_eq!(e.option(), "exposed_headers");
        assert!(e.is_incompatible());
        // Without credentials `*` is fine.
        let config = exact()
            .methods(["*"])
            .allowed_headers(["*"])
            .exposed_headers(["*"])
            .into_config()
            .unwrap();
        assert_eq!(config.methods.unwrap(), "*");
        assert_eq!(config.exposed_headers.unwrap(), "*");
    }

    #[test]
    fn invalid_methods_and_header_names_are_named() {
        let e = err(exact().methods(["GET", "GE T"]));
        assert_eq!(e.option(), "methods");
        assert!(e.is_invalid_value());
        assert!(e.to_string().contains("`GE T`"), "{e}");
        assert!(
            std::error::Error::source(&e).is_some(),
            "http's error is the source"
        );
        let e = err(exact().methods(["get"]));
        assert!(e.to_string().contains("browsers send `GET`"), "{e}");
        let e = err(exact().allowed_headers(["content-type", "bad header"]));
        assert_eq!(e.option(), "allowed_headers");
        assert!(e.to_string().contains("`bad header`"), "{e}");
        let e = err(exact().exposed_headers(["x:y"]));
        assert_eq!(e.option(), "exposed_headers");
    }

    #[test]
    fn lists_are_joined_and_header_names_lowercased() {
        let config = exact()
            .methods([
                Method::GET,
                Method::POST,
                Method::from_bytes(b"patch").unwrap(),
            ])
            .allowed_headers(["Content-Type", "X-Custom"])
            .exposed_headers([http::header::ETAG])
            .into_config()
            .unwrap();
        assert_eq!(config.methods.unwrap(), "GET,POST,patch");
        match config.allowed_headers {
            AllowHeaders::List(Some(value)) => assert_eq!(value, "content-type,x-custom"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(config.exposed_headers.unwrap(), "etag");
        let config = exact().methods(Vec::<String>::new()).into_config().unwrap();
        assert!(config.methods.is_none());
    }

    #[test]
    fn success_status_must_be_2xx() {
        for status in [199_u16, 300, 404, 1000, 0] {
            let e = err(CorsLayer::builder().options_success_status(status));
            assert_eq!(e.option(), "options_success_status");
            assert!(e.to_string().contains(&status.to_string()), "{e}");
        }
        let config = CorsLayer::builder()
            .options_success_status(StatusCode::OK)
            .into_config()
            .unwrap();
        assert_eq!(config.success_status, StatusCode::OK);
    }

    #[test]
    fn vary_names_follow_the_options() {
        let config = exact().private_network(true).into_config().unwrap();
        let mut headers = http::HeaderMap::new();
        config.preflight_vary.apply_to(&mut headers);
        assert_eq!(
            headers[http::header::VARY],
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Private-Network"
        );
        let config = CorsLayer::builder()
            .allowed_headers(["content-type"])
            .into_config()
            .unwrap();
        let mut headers = http::HeaderMap::new();
        config.preflight_vary.apply_to(&mut headers);
        config.actual_vary.apply_to(&mut headers);
        assert!(headers.get(http::header::VARY).is_none());
    }
}
