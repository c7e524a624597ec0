//! What nest records through the [`metrics`](https://docs.rs/metrics) facade. Install any
//! recorder (e.g. `metrics-exporter-prometheus`, as `examples/chat.rs` does at `/metrics`);
//! without one every call is a no-op of a few nanoseconds, made per request, per connection, per
//! frame handed to a connection, never per event per subscriber. The hub (crate `nest-hub`)
//! adds `nest_hub_gaps_total`; see its `metrics` module.
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `nest_connections_open` | gauge | `protocol` (`http1`, `http2`) | connections being served (over TLS too) |
//! | `nest_http_requests_total` | counter | `route`, `method`, `status` | requests answered (`route` is the pattern, `/users/:id`; `<unmatched>` for 404s; `method` is one of the nine standard methods or `OTHER`) |
//! | `nest_http_request_duration_seconds` | histogram | `route`, `method`, `status` | until the response head (for SSE: until the stream starts) |
//! | `nest_sse_streams_open` | gauge | `route` | SSE streams open |
//! | `nest_sse_streams_ended_total` | counter | `reason` (`EndReason`: `client_gone`, `closed`, `writers_dropped`, `shutdown`, `overflow`, `failed`, `lifetime`) | SSE streams ended |
//! | `nest_sse_events_total` | counter | | events handed to connections, counted per frame (per subscriber: an event to 1,000 streams counts 1,000) |
//! | `nest_sse_bytes_total` | counter | | bytes of SSE frames handed to connections |
//! | `nest_sse_events_lost_total` | counter | `why` (`refused`, `dropped`, `closed`) | events lost to a stream's overflow policy |
//! | `nest_sse_buffered_bytes` | gauge | | what all SSE queues hold against `ServerConfig::sse_buffer_budget` (set when a stream starts and when a new one is refused: never per frame) |
//! | `nest_sse_budget_refused_total` | counter | | new SSE streams answered 503 because the budget was spent |
//!
//! Every label value comes from a bounded set the app fixes when it is built (its route patterns,
//! the nine standard methods and `OTHER`, the status codes 100–599, the reasons above): no
//! client can add a series. The SSE series of every SSE route, and the counters with a fixed
//! label set, are exported at 0 when the app is built, so a dashboard and a `rate()` see them
//! before the first stream (Prometheus's advice for labels known in advance).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use metrics_util::debugging::{DebugValue, DebuggingRecorder};
//! use nest_core::prelude::*;
//! use tower::ServiceExt;
//!
//! struct Hello;
//! impl Controller for Hello {
//!     fn routes(r: &mut Routes<Self>) {
//!         r.get("/users/:id", |_: Arc<Self>| async { "hi" });
//!     }
//! }
//!
//! let recorder = DebuggingRecorder::new();
//! let snapshot = recorder.snapshotter();
//! metrics::with_local_recorder(&recorder, || {
//!     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//!         let app = NestApp::new().controller(Hello).into_service().unwrap();
//!         let req = http::Request::get("/users/7").body(nest_core::body::Body::empty()).unwrap();
//!         assert_eq!(app.oneshot(req).await.unwrap().status(), 200);
//!     })
//! });
//! let requests = snapshot.snapshot().into_vec().into_iter().find(|(key, ..)| {
//!     key.key().name() == "nest_http_requests_total"
//! });
//! let (key, _, _, value) = requests.expect("the request was counted");
//! assert!(key.key().labels().any(|l| l.key() == "route" && l.value() == "/users/:id"));
//! assert_eq!(value, DebugValue::Counter(1));
//! ```

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use metrics::{counter, gauge, histogram, Gauge, SharedString};

/// Keeps `nest_connections_open` up while a connection is served.
pub(crate) struct ConnectionOpen(Gauge);

impl ConnectionOpen {
    pub(crate) fn new(http2: bool) -> Self {
        let gauge =
            gauge!("nest_connections_open", "protocol" => if http2 { "http2" } else { "http1" });
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for ConnectionOpen {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Counts one SSE stream as open on `route`; the returned gauge is decremented when it ends.
pub(crate) fn sse_stream_opened(route: &Arc<str>) -> Gauge {
    let gauge = gauge!("nest_sse_streams_open", "route" => SharedString::from(route.clone()));
    gauge.increment(1.0);
    gauge
}

/// `reason` is an `EndReason`'s label.
pub(crate) fn sse_stream_ended(reason: &'static str) {
    counter!("nest_sse_streams_ended_total", "reason" => reason).increment(1);
}

pub(crate) fn sse_events(count: u64) {
    counter!("nest_sse_events_total").increment(count);
}

/// The server's buffered SSE bytes now (`ServerConfig::sse_buffer_budget`).
pub(crate) fn sse_buffered(bytes: usize) {
    gauge!("nest_sse_buffered_bytes").set(bytes as f64);
}

/// A new SSE stream refused because the buffer budget was spent.
pub(crate) fn sse_budget_refused() {
    counter!("nest_sse_budget_refused_total").increment(1);
}

pub(crate) fn sse_bytes(count: usize) {
    counter!("nest_sse_bytes_total").increment(count as u64);
}

pub(crate) fn sse_events_lost(count: u64, why: &'static str) {
    // Literal labels: a static key, no allocation per lost event.
    match why {
        "refused" => counter!("nest_sse_events_lost_total", "why" => "refused").increment(count),
        "dropped" => counter!("nest_sse_events_lost_total", "why" => "dropped").increment(count),
        "closed" => counter!("nest_sse_events_lost_total", "why" => "closed").increment(count),
        why => counter!("nest_sse_events_lost_total", "why" => why).increment(count),
    }
}

/// The label of a route no pattern matched.
pub(crate) const UNMATCHED: &str = "<unmatched>";

pub(crate) fn request(route: SharedString, method: &Method, status: StatusCode, took: Duration) {
    let method = method_label(method);
    let status = status_label(status);
    counter!(
        "nest_http_requests_total",
        "route" => route.clone(), "method" => method.clone(), "status" => status.clone()
    )
    .increment(1);
    histogram!(
        "nest_http_request_duration_seconds",
        "route" => route, "method" => method, "status" => status
    )
    .record(took.as_secs_f64());
}

fn method_label(method: &Method) -> SharedString {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    const NAMES: [&str; 9] = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    // Any other method (a client may invent one per request) shares one label: a label value
    // per method would let clients add series without end.
    match KNOWN.iter().position(|m| m == method) {
        Some(i) => SharedString::const_str(NAMES[i]),
        None => SharedString::const_str("OTHER"),
    }
}

/// Exports the series whose labels are known when the app is built at 0: the open-stream gauge
/// of each SSE route, the streams ended by each of `end_reasons` (the `EndReason` labels, from
/// the caller: this module sits below `sse`), and the SSE counters over their fixed
/// label sets.
pub(crate) fn register(sse_routes: &[Arc<str>], end_reasons: &[&'static str]) {
    for route in sse_routes {
        gauge!("nest_sse_streams_open", "route" => SharedString::from(route.clone()))
            .increment(0.0);
    }
    for reason in end_reasons {
        counter!("nest_sse_streams_ended_total", "reason" => *reason).absolute(0);
    }
    counter!("nest_sse_events_total").absolute(0);
    counter!("nest_sse_budget_refused_total").absolute(0);
    gauge!("nest_sse_buffered_bytes").set(0.0);
    counter!("nest_sse_bytes_total").absolute(0);
    for why in ["refused", "dropped", "closed"] {
        counter!("nest_sse_events_lost_total", "why" => why).absolute(0);
    }
}

fn status_label(status: StatusCode) -> SharedString {
    // Statuses are three digits: a static string for each, no allocation per request.
    static DIGITS: std::sync::OnceLock<Vec<Arc<str>>> = std::sync::OnceLock::new();
    let table = DIGITS.get_or_init(|| (100..600).map(|c| Arc::from(c.to_string())).collect());
    match table.get(usize::from(status.as_u16()).wrapping_sub(100)) {
        Some(code) => SharedString::from(code.clone()),
        None => SharedString::from(status.as_u16().to_string()),
    }
}
