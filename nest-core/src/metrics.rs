//! What nest records through the [`metrics`](https://docs.rs/metrics) facade. Install any
//! recorder (e.g. `metrics-exporter-prometheus`, as `examples/chat.rs` does at `/metrics`);
//! without one every call is a no-op of a few nanoseconds, made per request, per connection, per
//! frame handed to a connection, never per event per subscriber; without one a request's
//! duration is not even timed (no clock read). The recorder is looked up when the request
//! starts: one installed later counts the requests that start after it. A zero-sized recorder
//! type is taken for the facade's no-op one and gets no request series (every exporter holds
//! its registry; a recorder that forwards to statics needs a field, even a `()` one will not do:
//! give it e.g. a `&'static` reference to what it forwards to). The hub (crate `nest-hub`)
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
//! | `nest_sse_events_lost_total` | counter | `why` (`refused`, `dropped`, `closed`) | events lost to a stream's overflow policy (updated by a stream's 1st, 2nd, 4th … loss since its last loss log line, then once per 64: at most 63 behind per stream; exact when the stream ends) |
//! | `nest_sse_buffered_bytes` | gauge | | what all SSE queues hold as `ServerConfig::sse_buffer_budget` counts it (in 512-byte steps per stream) (set when a stream starts and when a new one is refused: never per frame) |
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

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, StatusCode};
use metrics::{counter, gauge, Gauge, Key, Label, Level, Metadata, SharedString};

/// Keeps `nest_connections_open` up while a connection is served.
///
/// It keeps the protocol (one byte), not the gauge (16 bytes): it lives in every connection's
/// task for the connection's life, so the gauge is looked up again when it is dropped (a hash
/// of a static key, once per connection).
pub(crate) struct ConnectionOpen {
    http2: bool,
}

impl ConnectionOpen {
    pub(crate) fn new(http2: bool) -> Self {
        connections_open(http2).increment(1.0);
        Self { http2 }
    }
}

impl Drop for ConnectionOpen {
    fn drop(&mut self) {
        connections_open(self.http2).decrement(1.0);
    }
}

/// The `nest_connections_open` gauge of a protocol.
fn connections_open(http2: bool) -> Gauge {
    // Literal labels: a static key.
    if http2 {
        gauge!("nest_connections_open", "protocol" => "http2")
    } else {
        gauge!("nest_connections_open", "protocol" => "http1")
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

/// Counts `count` events lost (nothing for none: a stream that ended without losses).
pub(crate) fn sse_events_lost(count: u64, why: &'static str) {
    if count == 0 {
        return;
    }
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

/// Whether a recorder is installed: the request path reads the clock and looks its series up
/// only when one is, so without one a request costs metrics a few instructions, not two clock
/// reads. The facade has no way to ask; without a recorder it hands out its `NoopRecorder`, a
/// zero-sized type, so a zero-sized recorder is taken for it (module docs). Its vtable would
/// tell it exactly, but each crate gets its own copy of that vtable (measured: never equal).
pub(crate) fn recording() -> bool {
    metrics::with_recorder(|recorder| std::mem::size_of_val(recorder) != 0)
}

pub(crate) fn request(route: SharedString, method: &Method, status: StatusCode, took: Duration) {
    // The macros build a label vector and hash a key per series per call (an allocation, even
    // without a recorder); the request path takes its keys from a table instead.
    static META: Metadata<'static> =
        Metadata::new(module_path!(), Level::INFO, Some(module_path!()));
    let keys = request_keys(&route, method_index(method), status);
    metrics::with_recorder(|recorder| {
        recorder.register_counter(&keys.count, &META).increment(1);
        recorder
            .register_histogram(&keys.duration, &META)
            .record(took.as_secs_f64());
    });
}

/// The keys of a request's two series, for one route, method and status.
struct RequestKeys {
    /// `nest_http_requests_total`.
    count: Key,
    /// `nest_http_request_duration_seconds`.
    duration: Key,
}

/// The method labels: the nine standard methods, then `OTHER` for any other (a client may
/// invent one per request; a label value per method would let clients add series without end).
const METHOD_LABELS: [&str; 10] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE", "OTHER",
];

/// `method`'s place in [`METHOD_LABELS`].
fn method_index(method: &Method) -> usize {
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
    KNOWN.iter().position(|m| m == method).unwrap_or(9)
}

/// The keys of a request's series (labels `route`, `method`, `status`), made once per triple and
/// kept for the process's life: the sets are bounded (the apps' route patterns, ten method
/// labels, statuses 100–999), so is what is kept. Each thread looks its triples up by the
/// pattern's address (its text checked: a later app's pattern may reuse an address) with a
/// cheap hash; a triple seen first on a thread is found, or made, in the shared table.
fn request_keys(route: &SharedString, method: usize, status: StatusCode) -> &'static RequestKeys {
    type Shared = HashMap<(Arc<str>, usize, u16), &'static RequestKeys>;
    static SHARED: Mutex<Option<Shared>> = Mutex::new(None);
    let text: &str = route.as_ref();
    let status = status.as_u16();
    let at = (text.as_ptr() as usize, method, status);
    let found = LOCAL.with(|local| {
        let local = local.borrow();
        local.get(&at).copied().filter(|keys| keys.route() == text)
    });
    if let Some(keys) = found {
        return keys;
    }
    let keys = {
        let mut shared = SHARED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *shared
            .get_or_insert_with(HashMap::new)
            .entry((Arc::from(text), method, status))
            .or_insert_with(|| {
                let labels: &'static [Label] = Box::leak(Box::new([
                    Label::new("route", text.to_owned()),
                    Label::from_static_parts("method", METHOD_LABELS[method]),
                    Label::new("status", status.to_string()),
                ]));
                Box::leak(Box::new(RequestKeys {
                    count: Key::from_static_parts("nest_http_requests_total", labels),
                    duration: Key::from_static_parts("nest_http_request_duration_seconds", labels),
                }))
            })
    };
    LOCAL.with(|local| local.borrow_mut().insert(at, keys));
    keys
}

impl RequestKeys {
    /// The `route` label.
    fn route(&self) -> &str {
        self.count.labels().next().map_or("", Label::value)
    }
}

/// Each thread's request keys, by the pattern's address, method index and status.
type Local = HashMap<(usize, usize, u16), &'static RequestKeys, BuildHasherDefault<Mix>>;

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::default();
}

/// A multiply-rotate hasher for the per-thread label table, whose keys (an address, a method
/// index, a status) no client chooses.
#[derive(Default)]
struct Mix(u64);

impl Hasher for Mix {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(keys: &RequestKeys) -> Vec<(&str, &str)> {
        let (count, duration) = (&keys.count, &keys.duration);
        assert_eq!(count.name(), "nest_http_requests_total");
        assert_eq!(duration.name(), "nest_http_request_duration_seconds");
        assert!(count.labels().eq(duration.labels()));
        count.labels().map(|l| (l.key(), l.value())).collect()
    }

    /// A request's keys are labelled with its route, method label and status, made once per triple (the
    /// same slice again), and a pattern at an address another pattern had gets its own labels.
    #[test]
    fn recording_is_true_only_with_a_recorder() {
        assert!(!recording(), "no recorder on this thread");
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        assert!(metrics::with_local_recorder(&recorder, recording));
        assert!(!metrics::with_local_recorder(
            &metrics::NoopRecorder,
            recording
        ));
    }

    #[test]
    fn request_keys_are_made_once_per_route_method_and_status() {
        let users = SharedString::from(Arc::<str>::from("/users/:id"));
        let get = method_index(&Method::GET);
        let first = request_keys(&users, get, StatusCode::OK);
        assert_eq!(
            texts(first),
            [
                ("route", "/users/:id"),
                ("method", "GET"),
                ("status", "200")
            ]
        );
        assert!(std::ptr::eq(
            first,
            request_keys(&users, get, StatusCode::OK)
        ));
        let other = method_index(&Method::from_bytes(b"BREW").unwrap());
        let brew = request_keys(&users, other, StatusCode::from_u16(418).unwrap());
        assert_eq!(
            texts(brew),
            [
                ("route", "/users/:id"),
                ("method", "OTHER"),
                ("status", "418")
            ]
        );
        // A later pattern at an address an earlier one had: its labels, not the earlier's.
        let posts = SharedString::from(Arc::<str>::from("/posts/:id"));
        let address = <SharedString as AsRef<str>>::as_ref(&posts).as_ptr() as usize;
        LOCAL.with(|local| local.borrow_mut().insert((address, get, 200), first));
        assert_eq!(
            request_keys(&posts, get, StatusCode::OK).route(),
            "/posts/:id"
        );
    }
}
