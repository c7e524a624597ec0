//! The checks behind the fuzz targets, one public function per target.
//!
//! This file is the `nest-fuzz` crate's library, called by `fuzz/fuzz_targets/*.rs`, and is
//! compiled into the facade's `tests/fuzz_corpus.rs` as a module, which replays
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through the same functions. Each
//! check decodes a test case from the fuzzer's bytes with `arbitrary`'s [`Unstructured`] (so a
//! corpus file means the same thing in both places) and panics when a property fails.
//!
//! | target         | what it feeds                                      | through           |
//! |----------------|----------------------------------------------------|-------------------|
//! | `parser`       | any bytes, cut into chunks anywhere                | nest-sse-client   |
//! | `roundtrip`    | events with any `data`, `event`, `id`, `retry`    | nest-core → client|
//! | `path_query`   | any method and any URI `http::Uri` accepts         | nest-core         |
//! | `cors_headers` | any `Origin` and `Access-Control-Request-*` values | nest-cors         |
//! | `direct_head`  | any bytes as a first request head                  | nest-core, httparse |
//! | `tls_front`    | any bytes as a TLS client's first flight; any bytes after ALPN `h2` | nest-core (rustls) |
//! | `resumable_id` | any `Last-Event-ID`, stream id, record value and owner | nest-core      |

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arbitrary::Unstructured;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
};
use http::header::{CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use nest_core::extract::{Path, Query};
use nest_core::sse::SseEvent;
use nest_core::{Controller, NestApp, NestService, Routes};
use nest_cors::{AllowOrigin, CorsLayer, OriginPattern};
use nest_sse_client::parser::{Item, Parser};
use nest_sse_client::Event;
use tower::util::BoxCloneService;
use tower::{service_fn, Layer, ServiceExt};

// ===== parser =====

/// The client's event-stream parser on any bytes: it never panics, gives the same items
/// whether the stream arrives in one chunk, in chunks cut where the fuzzer says, or byte by
/// byte, and those items are the ones the WHATWG algorithm gives ([`spec_parse`]). After
/// `finish`, the same parser reads a second stream as a fresh one that starts with the
/// remembered last event ID.
///
/// Input: a byte of flags (bit 0: comments on), up to 8 cut points (`u16`), then the stream.
pub fn parser(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let comments = u.arbitrary::<bool>().unwrap_or_default();
    let cuts = cut_points(&mut u);
    let stream = u.take_rest();

    let expected = spec_parse(stream, comments, "");
    let (whole, mut parser) = parse_in_chunks(Parser::new().with_comments(comments), stream, &[]);
    assert_eq!(whole, expected.items, "one chunk vs the spec: {stream:?}");
    assert_eq!(parser.last_event_id(), expected.last_event_id);
    assert_eq!(parser.reconnection_time(), expected.reconnection_time);
    for item in &whole {
        assert_item_has_no_line_break(item);
    }
    let (split, split_parser) =
        parse_in_chunks(Parser::new().with_comments(comments), stream, &cuts);
    assert_eq!(split, whole, "cut at {cuts:?} vs one chunk: {stream:?}");
    assert_eq!(split_parser.last_event_id(), expected.last_event_id);
    assert_eq!(split_parser.reconnection_time(), expected.reconnection_time);
    let mut bytes = Parser::new().with_comments(comments);
    let one_by_one: Vec<Item> = stream
        .iter()
        .flat_map(|b| bytes.feed(&[*b]).collect::<Vec<_>>())
        .collect();
    assert_eq!(one_by_one, whole, "byte by byte vs one chunk: {stream:?}");

    // A second connection on the same parser: nothing of an unfinished line or event may
    // leak into it; the last event ID and the reconnection time carry over.
    parser.finish();
    let (again, parser) = parse_in_chunks(parser, stream, &cuts);
    let second = spec_parse(stream, comments, &expected.last_event_id);
    assert_eq!(
        again, second.items,
        "after finish, cut at {cuts:?}: {stream:?}"
    );
    assert_eq!(parser.last_event_id(), second.last_event_id);
    let reconnection_time = second.reconnection_time.or(expected.reconnection_time);
    assert_eq!(parser.reconnection_time(), reconnection_time);
}

/// What a stream parses to: the items, and the state that outlives it.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    items: Vec<Item>,
    last_event_id: String,
    reconnection_time: Option<u64>,
}

/// Up to 8 cut points, chosen by the fuzzer (taken modulo the stream's length + 1).
fn cut_points(u: &mut Unstructured<'_>) -> Vec<u16> {
    let count = u.int_in_range(0..=8u8).unwrap_or_default();
    (0..count)
        .map(|_| u.arbitrary::<u16>().unwrap_or_default())
        .collect()
}

/// Feeds `stream` to `parser` in chunks that end at `cuts` (taken modulo one more than the
/// stream's length, and sorted; empty chunks included). The parser comes back unfinished,
/// with the state the stream left.
fn parse_in_chunks(mut parser: Parser, stream: &[u8], cuts: &[u16]) -> (Vec<Item>, Parser) {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) % (stream.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut items = Vec::new();
    let mut start = 0;
    for cut in cuts {
        parser.push(&stream[start..cut], &mut items);
        start = cut;
    }
    parser.push(&stream[start..], &mut items);
    (items, parser)
}

/// The WHATWG algorithm ("Server-sent events", § 9.2.5–9.2.6) in the order the spec words it:
/// decode the whole stream, strip one BOM, split it into lines, interpret each line. The
/// parser does the same incrementally on bytes. Two choices that are nest's: a `retry` value
/// too large for `u64` saturates, and an event carries the `retry` of its own block.
fn spec_parse(stream: &[u8], comments: bool, last_event_id: &str) -> Parsed {
    let text = String::from_utf8_lossy(stream);
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let mut parsed = Parsed {
        items: Vec::new(),
        last_event_id: last_event_id.to_owned(),
        reconnection_time: None,
    };
    let (mut data, mut event_type, mut id_buffer) =
        (String::new(), String::new(), parsed.last_event_id.clone());
    let mut block_retry = None;
    // Only complete lines: an unterminated last line is discarded at the end of the stream.
    let mut lines = split_lines(text);
    lines.pop();
    for line in lines {
        if line.is_empty() {
            parsed.last_event_id.clone_from(&id_buffer);
            let retry = block_retry.take();
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            data.pop();
            let event = if event_type.is_empty() {
                "message".to_owned()
            } else {
                std::mem::take(&mut event_type)
            };
            parsed.items.push(Item::Event(Event {
                event,
                data: std::mem::take(&mut data),
                id: parsed.last_event_id.clone(),
                retry,
            }));
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            "" if comments => parsed.items.push(Item::Comment(value.to_owned())),
            "" => {}
            "event" => event_type = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => id_buffer = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                let ms = value.bytes().fold(0u64, |ms, b| {
                    ms.saturating_mul(10).saturating_add(u64::from(b - b'0'))
                });
                parsed.reconnection_time = Some(ms);
                block_retry = Some(ms);
            }
            _ => {}
        }
    }
    parsed
}

/// Splits at CRLF, LF or a lone CR. The last part is what follows the last line break (empty
/// when the text ends with one), so text without a break is one part.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while let Some(end) = rest.find(['\r', '\n']) {
        lines.push(&rest[..end]);
        let len = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + len..];
    }
    lines.push(rest);
    lines
}

/// A line never spans a line break, so neither does anything parsed from one line; data
/// lines are joined with LF only.
fn assert_item_has_no_line_break(item: &Item) {
    match item {
        Item::Event(event) => {
            assert!(!event.event.is_empty(), "{event:?}");
            assert!(!event.event.contains(['\r', '\n']), "{event:?}");
            assert!(!event.id.contains(['\r', '\n', '\0']), "{event:?}");
            assert!(!event.data.contains('\r'), "{event:?}");
        }
        Item::Comment(text) => assert!(!text.contains(['\r', '\n']), "{text:?}"),
    }
}

// ===== roundtrip =====

/// One event as the fuzzer builds it with `SseEvent`'s public builder.
#[derive(Debug)]
struct EventCase {
    data: Option<String>,
    event: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    comment: Option<String>,
}

impl EventCase {
    fn arbitrary(u: &mut Unstructured<'_>) -> arbitrary::Result<(Self, SseEvent)> {
        let case = Self {
            data: u.arbitrary()?,
            event: u.arbitrary()?,
            // An id is a string or an integer.
            id: match u.int_in_range(0..=2u8)? {
                0 => None,
                1 => Some(u.arbitrary()?),
                _ => Some(u.arbitrary::<i64>()?.to_string()),
            },
            retry: u.arbitrary()?,
            comment: u.arbitrary()?,
        };
        let mut event = SseEvent::new();
        if let Some(data) = &case.data {
            event = event.with_data(data.clone());
        }
        if let Some(name) = &case.event {
            event = event.event(name.clone());
        }
        if let Some(id) = &case.id {
            // `EventId::from(i64)` for ids that are an integer's own spelling.
            event = match id.parse::<i64>() {
                Ok(n) if n.to_string() == *id && u.arbitrary()? => event.id(n),
                _ => event.id(id.clone()),
            };
        }
        if let Some(ms) = case.retry {
            event = if u.arbitrary()? {
                event.retry(Duration::from_millis(ms))
            } else {
                event.retry_ms(ms)
            };
        }
        if let Some(comment) = &case.comment {
            event = event.comment(comment.clone());
        }
        Ok((case, event))
    }

    /// What `SseEvent` documents as unsendable: an `event` or `id` with a line break (it
    /// would forge a field), an `id` with NUL (clients ignore it), or no field at all.
    fn must_be_rejected(&self) -> bool {
        let breaks = |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains(['\r', '\n']));
        let no_field = self.data.is_none()
            && self.event.is_none()
            && self.id.is_none()
            && self.retry.is_none()
            && self.comment.is_none();
        breaks(&self.event)
            || breaks(&self.id)
            || self.id.as_deref().is_some_and(|id| id.contains('\0'))
            || no_field
    }
}

/// nest-core's encoder into the client's parser: up to four events with any fields; each is
/// rejected exactly when it cannot be sent, and the accepted ones, concatenated and cut into
/// chunks, parse back to the same fields (data lines split at CR, LF or CRLF come back joined
/// with LF; an empty event type is `message`; an event without `id` carries the last one).
///
/// Input: the events' fields in order, then up to 8 cut points.
pub fn roundtrip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let count = u.int_in_range(1..=4u8).unwrap_or(1);
    let mut stream = Vec::new();
    let mut expected = Parsed {
        items: Vec::new(),
        last_event_id: String::new(),
        reconnection_time: None,
    };
    for _ in 0..count {
        let Ok((case, event)) = EventCase::arbitrary(&mut u) else {
            break;
        };
        match event.encode() {
            Ok(encoded) => {
                assert!(!case.must_be_rejected(), "accepted {case:?} as {encoded:?}");
                stream.extend_from_slice(encoded.as_bytes());
                expect_event(&mut expected, &case);
            }
            Err(error) => assert!(case.must_be_rejected(), "rejected {case:?}: {error}"),
        }
    }
    let cuts = cut_points(&mut u);
    let (items, parser) = parse_in_chunks(Parser::new().with_comments(true), &stream, &cuts);
    assert_eq!(items, expected.items, "cut at {cuts:?}: {stream:?}");
    assert_eq!(parser.last_event_id(), expected.last_event_id);
    assert_eq!(parser.reconnection_time(), expected.reconnection_time);
}

/// What the parser must read back from one accepted event.
fn expect_event(expected: &mut Parsed, case: &EventCase) {
    if let Some(comment) = &case.comment {
        let lines = split_lines(comment);
        expected
            .items
            .extend(lines.into_iter().map(|line| Item::Comment(line.to_owned())));
    }
    if let Some(id) = &case.id {
        expected.last_event_id.clone_from(id);
    }
    if case.retry.is_some() {
        expected.reconnection_time = case.retry;
    }
    if let Some(data) = &case.data {
        let event = case
            .event
            .as_deref()
            .filter(|e| !e.is_empty())
            .unwrap_or("message");
        expected.items.push(Item::Event(Event {
            event: event.to_owned(),
            data: split_lines(data).join("\n"),
            id: expected.last_event_id.clone(),
            retry: case.retry,
        }));
    }
}

// ===== path_query =====

/// The controller `path_query` requests go to: string parameters (which always extract), a
/// wildcard, and typed ones (which answer 400 when they do not parse).
struct Params;

impl Params {
    async fn two(
        self: Arc<Self>,
        Path(params): Path<HashMap<String, String>>,
        Query(query): Query<HashMap<String, String>>,
    ) -> String {
        // A matched route always has its parameters; a panic here is a 500.
        assert!(
            params.contains_key("x") && params.contains_key("y"),
            "{params:?}"
        );
        format!("{} {}", params.len(), query.len())
    }

    async fn rest(
        self: Arc<Self>,
        Path(rest): Path<String>,
        Query(query): Query<HashMap<String, String>>,
    ) -> String {
        format!("{} {}", rest.len(), query.len())
    }

    async fn typed(
        self: Arc<Self>,
        Path(n): Path<u32>,
        Query(query): Query<HashMap<String, u32>>,
    ) -> String {
        format!("{n} {}", query.len())
    }
}

impl Controller for Params {
    fn routes(routes: &mut Routes<Self>) {
        routes.get("/a/:x/:y", Self::two);
        routes.get("/files/*rest", Self::rest);
        routes.get("/n/:n", Self::typed);
    }
}

thread_local! {
    /// One current-thread runtime for the checks that call services, created once per thread.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");

    /// The app of `path_query`, built once per thread.
    static APP: NestService = NestApp::new()
        .controller(Params)
        .into_service()
        .expect("the fuzzed app builds");
}

fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// A method the fuzzer picks: a common one, or any token `http::Method` accepts.
fn method(u: &mut Unstructured<'_>) -> Option<Method> {
    const COMMON: [Method; 5] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::OPTIONS,
        Method::DELETE,
    ];
    let pick = u.int_in_range(0..=COMMON.len()).ok()?;
    match COMMON.get(pick) {
        Some(method) => Some(method.clone()),
        None => Method::from_bytes(u.arbitrary::<&[u8]>().ok()?).ok(),
    }
}

/// nest-core's routing, path-parameter decoding and `Query` extractor on any method and any URI
/// `http::Uri` accepts (origin form, absolute form, authority form, `*`): the app never
/// panics and answers 200, 400, 404 or 405, never 500.
///
/// Input: the method (a common one or any token), then the URI's bytes.
pub fn path_query(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Some(method) = method(&mut u) else {
        return;
    };
    let Ok(uri) = Uri::try_from(u.take_rest()) else {
        return;
    };
    let request = Request::builder()
        .method(method)
        .uri(uri.clone())
        .body(String::new())
        .expect("a valid method and URI make a request");
    let service = APP.with(NestService::clone);
    let Ok(response) = block_on(service.oneshot(request));
    let status = response.status();
    assert!(
        matches!(status.as_u16(), 200 | 400 | 404 | 405),
        "{status} for {uri:?} (path {:?}, query {:?})",
        uri.path(),
        uri.query()
    );
}

// ===== cors_headers =====

/// The origins of the list configuration: exact entries (`null` among them) and a regex.
const EXACT_ORIGINS: [&str; 3] = ["https://app.example", "http://localhost:3000", "null"];
const ORIGIN_REGEX: &str = r"https://[a-z0-9-]+\.example\.com";

/// Origins the fuzzer may pick by index, besides arbitrary bytes: the allowed ones and near
/// misses.
const KNOWN_ORIGINS: [&str; 8] = [
    "https://app.example",
    "http://localhost:3000",
    "null",
    "https://shop.example.com",
    "https://shop.example.com.evil.example",
    "https://app.example/",
    "HTTPS://APP.EXAMPLE",
    "*",
];

/// Which `origin` rule a configuration has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origins {
    List,
    Any,
    Reflect,
}

/// One CORS configuration around a service that always answers 200.
struct CorsCase {
    origins: Origins,
    credentials: bool,
    echo_headers: bool,
    service: BoxCloneService<Request<()>, Response<()>, Infallible>,
}

impl CorsCase {
    fn new(origins: Origins, credentials: bool, echo_headers: bool) -> Self {
        let rule = match origins {
            Origins::List => AllowOrigin::list(
                EXACT_ORIGINS
                    .into_iter()
                    .map(OriginPattern::exact)
                    .chain([OriginPattern::regex(ORIGIN_REGEX)]),
            ),
            Origins::Any => AllowOrigin::any(),
            Origins::Reflect => AllowOrigin::reflect(),
        };
        let mut builder = CorsLayer::builder().origin(rule).credentials(credentials);
        if origins == Origins::Reflect && credentials {
            builder = builder.dangerously_allow_credentials_for_any_origin();
        }
        if !echo_headers {
            builder = builder.allowed_headers(["content-type", "last-event-id"]);
        }
        let layer = builder
            .build()
            .expect("the fuzzed CORS configurations are valid");
        let inner = service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
        Self {
            origins,
            credentials,
            echo_headers,
            service: BoxCloneService::new(layer.layer(inner)),
        }
    }

    /// Whether this configuration allows `origin`, as its rule is documented.
    fn allows(&self, origin: &[u8]) -> bool {
        let Ok(origin) = std::str::from_utf8(origin) else {
            return false;
        };
        match self.origins {
            Origins::Any => true,
            Origins::Reflect => origin != "null",
            Origins::List => EXACT_ORIGINS.contains(&origin) || matches_origin_regex(origin),
        }
    }
}

/// [`ORIGIN_REGEX`], anchored, written out.
fn matches_origin_regex(origin: &str) -> bool {
    origin
        .strip_prefix("https://")
        .and_then(|rest| rest.strip_suffix(".example.com"))
        .is_some_and(|sub| {
            !sub.is_empty()
                && sub
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

thread_local! {
    /// Every configuration `cors_headers` picks from, built once per thread.
    static CORS_CASES: Vec<CorsCase> = {
        let mut cases = Vec::new();
        for echo in [true, false] {
            for credentials in [false, true] {
                cases.push(CorsCase::new(Origins::List, credentials, echo));
                cases.push(CorsCase::new(Origins::Reflect, credentials, echo));
            }
            cases.push(CorsCase::new(Origins::Any, false, echo));
        }
        cases
    };
}

/// A header value the fuzzer picks: a known origin, or any bytes `HeaderValue` accepts.
fn origin_value(u: &mut Unstructured<'_>) -> Option<HeaderValue> {
    let pick = u.int_in_range(0..=KNOWN_ORIGINS.len()).ok()?;
    match KNOWN_ORIGINS.get(pick) {
        Some(origin) => Some(HeaderValue::from_static(origin)),
        None => any_value(u),
    }
}

fn any_value(u: &mut Unstructured<'_>) -> Option<HeaderValue> {
    HeaderValue::from_bytes(u.arbitrary::<&[u8]>().ok()?).ok()
}

/// nest-cors on requests with any `Origin` (none, one or two), `Access-Control-Request-Method`
/// and `Access-Control-Request-Headers` values and any method, under list, any and reflect
/// rules with and without credentials: it never panics; it answers a preflight itself (204)
/// and passes anything else on; `Access-Control-Allow-Origin` appears at most once and is `*`
/// under the any rule (never with credentials), else the request's single `Origin`, byte for
/// byte, and one the rule allows; a disallowed request gets no CORS headers.
///
/// Input: the configuration, the method, the `Origin` headers, then the other headers.
///
/// `fuzz/regressions/cors_headers/two-origin-headers` is the first finding: nest-cors answered
/// two `Origin` headers with the first as `Access-Control-Allow-Origin` (now fixed).
pub fn cors_headers(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(pick) = u.arbitrary::<u8>() else {
        return;
    };
    let Some(method) = method(&mut u) else {
        return;
    };
    let mut request = Request::builder()
        .method(method)
        .body(())
        .expect("a request");
    let headers = request.headers_mut();
    for _ in 0..u.int_in_range(0..=2u8).unwrap_or_default() {
        if let Some(origin) = origin_value(&mut u) {
            headers.append(ORIGIN, origin);
        }
    }
    let optional: [HeaderName; 3] = [
        ACCESS_CONTROL_REQUEST_METHOD,
        ACCESS_CONTROL_REQUEST_HEADERS,
        HeaderName::from_static("access-control-request-private-network"),
    ];
    for name in optional {
        if u.arbitrary::<bool>().unwrap_or_default() {
            if let Some(value) = any_value(&mut u) {
                headers.insert(name, value);
            }
        }
    }
    let origins: Vec<HeaderValue> = headers.get_all(ORIGIN).iter().cloned().collect();
    let preflight = request.method() == Method::OPTIONS
        && !origins.is_empty()
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    let request_headers = request
        .headers()
        .get(ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();

    CORS_CASES.with(|cases| {
        let case = &cases[usize::from(pick) % cases.len()];
        let Ok(response) = block_on(case.service.clone().oneshot(request));
        let context = format!(
            "origins {:?} credentials {} echo {} preflight {preflight} origin {origins:?}: {:?}",
            case.origins,
            case.credentials,
            case.echo_headers,
            response.headers()
        );
        let expected_status = if preflight {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::OK
        };
        assert_eq!(response.status(), expected_status, "{context}");

        let allow: Vec<&HeaderValue> = response
            .headers()
            .get_all(ACCESS_CONTROL_ALLOW_ORIGIN)
            .iter()
            .collect();
        assert!(allow.len() <= 1, "{context}");
        let Some(allowed) = allow.first() else {
            let cors = response
                .headers()
                .keys()
                .find(|name| name.as_str().starts_with("access-control-"));
            assert!(
                cors.is_none(),
                "CORS headers without Access-Control-Allow-Origin: {context}"
            );
            return;
        };
        if case.origins == Origins::Any {
            assert_eq!(*allowed, "*", "{context}");
            assert!(!case.credentials, "{context}");
        } else {
            assert_eq!(
                origins.len(),
                1,
                "an origin allowed, but not the request's single one: {context}"
            );
            assert_eq!(*allowed, &origins[0], "{context}");
            assert!(
                case.allows(allowed.as_bytes()),
                "an origin the rule does not allow: {context}"
            );
        }
        let credentials = response.headers().get(ACCESS_CONTROL_ALLOW_CREDENTIALS);
        assert_eq!(credentials.is_some(), case.credentials, "{context}");
        if preflight && case.echo_headers {
            let echoed = response.headers().get(ACCESS_CONTROL_ALLOW_HEADERS);
            assert_eq!(echoed, request_headers.as_ref(), "{context}");
        }
    });
}

// ===== direct_head =====

/// Headers as names (lower-case) and value bytes.
type Headers = Vec<(String, Vec<u8>)>;

/// What `parse_direct_head` made of a head, in a comparable form: the head's length, the URI,
/// and the headers in the map's order.
type DirectHead = (usize, Uri, Headers);

/// The headers a head that the direct path takes must not have: they announce a body, an
/// upgrade or an expectation, which are hyper's business.
const HYPER_ONLY: [HeaderName; 4] = [CONTENT_LENGTH, TRANSFER_ENCODING, UPGRADE, EXPECT];

/// `parse_direct_head` on `bytes`, checked to be a bodiless `GET` in HTTP/1.1 with at most
/// `max_headers` headers, a head length within `bytes` and none of [`HYPER_ONLY`].
fn parse_direct(bytes: &[u8], max_headers: usize) -> Option<DirectHead> {
    let (parts, len) = nest_core::test_util::parse_direct_head(bytes, max_headers)?;
    assert!(len <= bytes.len(), "head of {len} in {} bytes", bytes.len());
    assert_eq!(parts.method, Method::GET, "{bytes:?}");
    assert_eq!(parts.version, Version::HTTP_11, "{bytes:?}");
    assert!(parts.headers.len() <= max_headers, "{bytes:?}");
    for name in &HYPER_ONLY {
        assert!(!parts.headers.contains_key(name), "{name} in {bytes:?}");
    }
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    Some((len, parts.uri, headers))
}

/// What the direct path must make of a head that httparse parses as complete, as hyper would
/// take it: the head's length and its request target when it is a bodiless `GET` in HTTP/1.1
/// whose headers (at most `max_headers`) are all valid `http` names and values and none of
/// [`HYPER_ONLY`]; `Err` when httparse does not see a complete head.
fn httparse_head(bytes: &[u8], max_headers: usize) -> Result<Option<(usize, String)>, ()> {
    let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = req.parse(bytes) else {
        return Err(());
    };
    let valid = req.method == Some("GET")
        && req.version == Some(1)
        && req.headers.iter().all(|h| {
            HeaderName::from_bytes(h.name.as_bytes()).is_ok_and(|name| !HYPER_ONLY.contains(&name))
                && HeaderValue::from_bytes(h.value).is_ok()
        });
    let path = req.path.expect("a complete request has a target");
    Ok(valid.then(|| (len, path.to_owned())))
}

/// The header lines of `head` read naively (split at LF, an optional CR before it, the name
/// up to the first `:`, the value without the spaces and tabs around it), the empty lines
/// before the request line skipped: the request line, the headers, and the length up to the
/// end of the first empty line after the request line (`None` when there is none).
fn read_head(head: &[u8]) -> (Vec<u8>, Headers, Option<usize>) {
    let mut lines = Vec::new();
    let mut start = 0;
    while let Some(lf) = head[start..].iter().position(|&b| b == b'\n') {
        let line = &head[start..start + lf];
        lines.push((line.strip_suffix(b"\r").unwrap_or(line), start + lf + 1));
        start += lf + 1;
    }
    let mut lines = lines.into_iter().skip_while(|(line, _)| line.is_empty());
    let request_line = lines
        .next()
        .map(|(line, _)| line.to_vec())
        .unwrap_or_default();
    let mut headers = Vec::new();
    for (line, end) in lines {
        if line.is_empty() {
            return (request_line, headers, Some(end));
        }
        let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
        let value = line.get(colon + 1..).unwrap_or_default();
        let ows = |b: &u8| *b == b' ' || *b == b'\t';
        let first = value.iter().position(|b| !ows(b)).unwrap_or(value.len());
        let last = value.iter().rposition(|b| !ows(b)).map_or(first, |i| i + 1);
        headers.push((name, value[first..last].to_vec()));
    }
    (request_line, headers, None)
}

/// Headers in the order a `HeaderMap` iterates them: each name's values together, the names
/// in the order they first appear.
fn grouped(headers: &[(String, Vec<u8>)]) -> Headers {
    let mut names: Vec<&String> = Vec::new();
    for (name, _) in headers {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
        .into_iter()
        .flat_map(|name| headers.iter().filter(move |(n, _)| n == name).cloned())
        .collect()
}

/// The direct HTTP/1.1 SSE path's head parser (`parse_direct_head`, httparse underneath) on any
/// bytes: it never panics; what it takes is a bodiless `GET` in HTTP/1.1 with at most
/// `max_headers` headers and none that announces a body, an upgrade or an expectation, its
/// head ends with the input's first empty line after the request line (CRLF or bare LF),
/// and its headers are that head's header lines (lower-case names, values without the
/// spaces around them), in order for each name. The result depends on the head only (the
/// same without what follows it, and with garbage after it). Re-serialized
/// (`GET <uri> HTTP/1.1`, `name: value` lines, CRLF), the request parses back the same.
/// And it takes every head httparse parses as complete and hyper would serve as such a
/// `GET` (valid `http` header names and values), except the ones whose target `http::Uri`
/// rejects (hyper answers those 400 itself): otherwise an SSE request would go to hyper.
///
/// Input: a byte for `max_headers` (1 + the byte modulo 120), then the bytes of the head
/// and whatever follows it.
///
/// `fuzz/regressions/direct_head/lf-line-then-crlf-empty-line` is the first finding, in this
/// check: a head whose last header line ends with a bare LF and whose empty line is CRLF.
pub fn direct_head(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let max_headers = 1 + usize::from(u.arbitrary::<u8>().unwrap_or_default()) % 120;
    let bytes = u.take_rest();

    let parsed = parse_direct(bytes, max_headers);
    let with_garbage = |head: &[u8]| [head, b"\r\n\r\nPOST / HTTP/1.1\r\n\xff\0\n\n"].concat();
    match httparse_head(bytes, max_headers) {
        Err(()) => assert!(
            parsed.is_none(),
            "taken, httparse says incomplete: {bytes:?}"
        ),
        Ok(expected) => {
            let expected = expected.filter(|(_, target)| Uri::try_from(target.as_str()).is_ok());
            assert_eq!(
                parsed.as_ref().map(|(len, uri, _)| (*len, uri.clone())),
                expected.map(|(len, target)| (len, Uri::try_from(target).expect("a URI"))),
                "vs httparse (max_headers {max_headers}): {bytes:?}"
            );
        }
    }
    let Some((len, uri, headers)) = parsed else {
        return;
    };
    let head = &bytes[..len];
    assert_eq!(
        parse_direct(head, max_headers),
        Some((len, uri.clone(), headers.clone()))
    );
    assert_eq!(
        parse_direct(&with_garbage(head), max_headers),
        Some((len, uri.clone(), headers.clone())),
        "with garbage after {head:?}"
    );
    assert_eq!(
        parse_direct(&with_garbage(bytes), max_headers),
        Some((len, uri.clone(), headers.clone())),
        "with garbage after {bytes:?}"
    );

    let (request_line, raw_headers, end) = read_head(head);
    // The last header line may end with LF and the empty line with CRLF, or the other way.
    assert!(
        head.ends_with(b"\n\r\n") || head.ends_with(b"\n\n"),
        "{head:?}"
    );
    assert_eq!(
        end,
        Some(len),
        "the head ends at its first empty line: {head:?}"
    );
    let target = request_line
        .strip_prefix(b"GET ")
        .and_then(|rest| rest.strip_suffix(b" HTTP/1.1"))
        .unwrap_or_else(|| panic!("a GET HTTP/1.1 request line: {request_line:?}"));
    assert_eq!(Uri::try_from(target).ok(), Some(uri.clone()), "{head:?}");
    assert_eq!(
        headers,
        grouped(&raw_headers),
        "the head's header lines: {head:?}"
    );

    let mut again = format!("GET {uri} HTTP/1.1\r\n").into_bytes();
    for (name, value) in &headers {
        again.extend_from_slice(format!("{name}: ").as_bytes());
        again.extend_from_slice(value);
        again.extend_from_slice(b"\r\n");
    }
    again.extend_from_slice(b"\r\n");
    assert_eq!(
        parse_direct(&again, max_headers),
        Some((again.len(), uri, headers)),
        "re-serialized {head:?} as {again:?}"
    );
}

// ===== tls_front =====

/// A certificate for the TLS front, made once per process (rcgen; nothing checked in).
#[cfg(feature = "tls")]
fn tls_config() -> &'static nest_core::server::TlsConfig {
    static TLS: std::sync::OnceLock<nest_core::server::TlsConfig> = std::sync::OnceLock::new();
    TLS.get_or_init(|| {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
        nest_core::server::TlsConfig::from_pem(cert.cert.pem(), cert.signing_key.serialize_pem())
            .expect("a fresh certificate")
    })
}

/// The server's TLS front (ClientHello read before a handshake slot, the handshake, then
/// HTTP/2's preface when ALPN chose `h2`) on a client that sends the fuzzer's bytes and goes
/// away: never a panic, never a completed handshake (a client's `Finished` cannot be written
/// before the server's random is known). And the preface reader alone on the same bytes: it
/// accepts exactly when they start with the 24-byte preface, and then has read the preface and
/// nothing after it.
///
/// Input: a byte of flags (bit 0: the bytes start with a real ClientHello prefix), then the
/// bytes.
#[cfg(feature = "tls")]
pub fn tls_front(data: &[u8]) {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let config = nest_core::ServerConfig::default()
        .first_byte_timeout(Duration::from_millis(200))
        .tls_handshake_timeout(Duration::from_millis(400));
    runtime.block_on(async {
        let front = nest_core::test_util::tls_front(tls_config(), &config, data).await;
        assert!(front.is_err(), "a handshake completed on {data:?}");
        let read = nest_core::test_util::h2_preface(&config, data).await;
        if data.starts_with(PREFACE) {
            assert_eq!(read.as_deref(), Some(PREFACE), "{data:?}");
        } else {
            assert_eq!(read, None, "{data:?}");
        }
    });
}

// ===== resumable_id =====

/// Resumable streams' ids and records: `Resumable::stream_of` never panics on any
/// `Last-Event-ID`, and names the stream of every id the server makes (`<stream>:<EPOCH-SEQ>`,
/// also for stream ids with `:` in them); a stored record value decodes without a panic, and
/// any record (any first id, any owner) reads back exactly as written.
///
/// Input: a stream id, an epoch, a sequence number, a state, a tail, an optional first id, an
/// optional owner (all from `arbitrary`), then the rest as a raw `Last-Event-ID` and a raw
/// record value.
pub fn resumable_id(data: &[u8]) {
    use nest_hub::resumable::Resumable;
    use nest_hub::test_util::{
        decode_resumable_record, encode_resumable_record, is_valid_resumable_id,
    };
    let mut u = Unstructured::new(data);
    let stream: String = u.arbitrary().unwrap_or_default();
    let epoch: u64 = u.arbitrary().unwrap_or_default();
    let seq: u64 = u.arbitrary().unwrap_or_default();
    let state: u8 = u.arbitrary().unwrap_or_default();
    let tail: u32 = u.arbitrary().unwrap_or_default();
    let first: Option<String> = u.arbitrary().unwrap_or_default();
    let owner: Option<String> = u.arbitrary().unwrap_or_default();
    let raw = u.take_rest();

    let _ = Resumable::stream_of(&String::from_utf8_lossy(raw));
    let _ = decode_resumable_record(raw);
    if is_valid_resumable_id(&stream) {
        let id = format!("{stream}:{epoch}-{seq}");
        assert_eq!(Resumable::stream_of(&id), Some(stream.as_str()), "{id:?}");
    }
    // First ids are the hub's `EPOCH-SEQ` (no spaces); owners are any text.
    let first = first.filter(|f| !f.is_empty() && !f.contains(' ') && f != "-");
    let value = encode_resumable_record(state, u64::from(tail), first.as_deref(), owner.as_deref());
    let (read_state, read_tail, read_first, read_owner) =
        decode_resumable_record(&value).unwrap_or_else(|| panic!("{value:?} does not decode"));
    assert_eq!(
        read_state,
        ["running", "cancel", "finished"][usize::from(state % 3)]
    );
    assert_eq!(read_tail, u64::from(tail));
    assert_eq!(read_first, first);
    assert_eq!(read_owner, owner);
}
