//! The framework over real sockets: routing, extractors, errors, protocols, limits, panics, layers.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, StatusCode};
use nest_core::prelude::*;
use nest_core::test_util::TestServer;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone)]
struct Prefix(String);

#[derive(Deserialize)]
struct Pagination {
    page: u32,
    #[serde(default)]
    q: Option<String>,
}

#[derive(Deserialize)]
struct PostParams {
    user: u32,
    post: String,
}

#[derive(Deserialize, Serialize)]
struct NewItem {
    name: String,
}

struct Items;

impl Items {
    async fn list(self: Arc<Self>, Query(p): Query<Pagination>) -> String {
        format!("page {} q {}", p.page, p.q.unwrap_or_default())
    }
    async fn one(self: Arc<Self>, Path(id): Path<u32>, State(prefix): State<Prefix>) -> String {
        format!("{}{id}", prefix.0)
    }
    async fn post(self: Arc<Self>, Path(p): Path<PostParams>) -> String {
        format!("user {} post {}", p.user, p.post)
    }
    async fn create(self: Arc<Self>, Json(item): Json<NewItem>) -> (StatusCode, Json<NewItem>) {
        (StatusCode::CREATED, Json(item))
    }
    async fn replace(self: Arc<Self>, Path(id): Path<u32>, body: String) -> String {
        format!("put {id} {body}")
    }
    async fn patch(self: Arc<Self>, Path(id): Path<u32>) -> String {
        format!("patch {id}")
    }
    async fn delete(self: Arc<Self>, Path(id): Path<u32>) -> Result<StatusCode, HttpException> {
        if id == 0 {
            Err(HttpException::forbidden("nope"))
        } else {
            Ok(StatusCode::NO_CONTENT)
        }
    }
    async fn panics(self: Arc<Self>) -> String {
        panic!("boom")
    }
    async fn static_route(self: Arc<Self>) -> &'static str {
        "static"
    }
    async fn files(self: Arc<Self>, Path(rest): Path<String>) -> String {
        format!("file {rest}")
    }
    async fn endless(self: Arc<Self>) -> nest_core::body::Body {
        let stream = futures_util::stream::unfold(0u64, |n| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Some((Ok::<_, std::io::Error>(format!("{n}\n")), n + 1))
        });
        nest_core::body::Body::from_stream(stream)
    }
    async fn slow(self: Arc<Self>) -> &'static str {
        tokio::time::sleep(Duration::from_millis(300)).await;
        "slow done"
    }
}

impl Controller for Items {
    fn prefix(&self) -> &str {
        "/items"
    }
    fn routes(r: &mut Routes<Self>) {
        r.get("/", Self::list);
        r.get("/new", Self::static_route);
        r.get("/:id", Self::one);
        r.get("/users/:user/posts/:post", Self::post);
        r.get("/files/*path", Self::files);
        r.post("/", Self::create);
        r.put("/:id", Self::replace);
        r.patch("/:id", Self::patch);
        r.delete("/:id", Self::delete);
        r.get("/boom/panic", Self::panics);
        r.get("/stream/endless", Self::endless);
        r.get("/stream/slow", Self::slow);
        r.get("/meta/created", |_: Arc<Self>| async { "made" })
            .http_code(201)
            .header("x-made", "yes");
        r.get("/meta/guarded", |_: Arc<Self>| async { "secret" })
            .guard(|parts: &http::request::Parts| parts.headers.contains_key("x-token"));
    }
}

fn app() -> NestApp {
    NestApp::new()
        .state(Prefix("item-".into()))
        .controller(Items)
}

async fn start() -> TestServer {
    TestServer::start(app()).await
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test]
async fn methods_and_extractors() {
    let s = start().await;
    let c = client();
    let get = |p: &str| c.get(s.url(p)).send();
    assert_eq!(
        get("/items?page=2&q=x")
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "page 2 q x"
    );
    assert_eq!(
        get("/items/7").await.unwrap().text().await.unwrap(),
        "item-7"
    );
    assert_eq!(
        get("/items/new").await.unwrap().text().await.unwrap(),
        "static"
    );
    assert_eq!(
        get("/items/users/3/posts/hello%20world")
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "user 3 post hello world"
    );
    assert_eq!(
        get("/items/files/a/b/c.txt")
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "file a/b/c.txt"
    );

    let res = c
        .post(s.url("/items"))
        .json(&serde_json::json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.text().await.unwrap(), r#"{"name":"x"}"#);

    let res = c.put(s.url("/items/5")).body("body").send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "put 5 body");
    let res = c.patch(s.url("/items/5")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "patch 5");
    let res = c.delete(s.url("/items/5")).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let res = c.delete(s.url("/items/0")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"statusCode":403,"message":"nope","error":"Forbidden"}"#
    );
}

#[tokio::test]
async fn route_metadata_status_headers_guards() {
    let s = start().await;
    let res = client()
        .get(s.url("/items/meta/created"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["x-made"], "yes");
    let res = client()
        .get(s.url("/items/meta/guarded"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = client()
        .get(s.url("/items/meta/guarded"))
        .header("x-token", "t")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "secret");
}

#[tokio::test]
async fn error_statuses() {
    let s = start().await;
    let c = client();
    let res = c.get(s.url("/nowhere")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"statusCode":404,"message":"Not Found"}"#
    );

    let res = c.post(s.url("/items/7")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET, PUT, PATCH, DELETE, HEAD");

    let res = c.get(s.url("/items/abc")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let res = c.get(s.url("/items?page=notanumber")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("invalid query string"));

    let res = c
        .post(s.url("/items"))
        .body(r#"{"name":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let res = c
        .post(s.url("/items"))
        .header("content-type", "application/json")
        .body("{bad")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("invalid JSON body: key must be a string"));

    let big = "x".repeat(3 * 1024 * 1024);
    let res = c.put(s.url("/items/1")).body(big).send().await.unwrap();
    assert_eq!(res.status(), 413);
}

#[tokio::test]
async fn body_limit_also_applies_to_chunked_bodies() {
    let s = TestServer::start(app().body_limit(10)).await;
    let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>("0123456"), Ok("789abc")]);
    let res = client()
        .put(s.url("/items/1"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

#[tokio::test]
async fn head_strips_the_body_on_http1_and_http2() {
    let s = start().await;
    for c in [
        client(),
        reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap(),
    ] {
        let res = c.head(s.url("/items/7")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-length"], "6");
        assert_eq!(res.bytes().await.unwrap().len(), 0);
    }
}

#[tokio::test]
async fn http1_and_http2_prior_knowledge_on_one_port() {
    let s = start().await;
    let res = client().get(s.url("/items/1")).send().await.unwrap();
    assert_eq!(res.version(), http::Version::HTTP_11);
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let res = h2.get(s.url("/items/1")).send().await.unwrap();
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert_eq!(res.text().await.unwrap(), "item-1");
}

async fn assert_dropped(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
    // A reset (Err) is a close too; HTTP/1 may answer 408 before closing.
    if let Ok(n) = read.expect("the server should close a stalled connection") {
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            n == 0 || text.starts_with("HTTP/1.1 408"),
            "unexpected answer: {text}"
        );
    }
}

#[tokio::test]
async fn stalled_clients_are_dropped() {
    let config = ServerConfig::default()
        .first_byte_timeout(Duration::from_millis(200))
        .header_read_timeout(Duration::from_millis(200));
    let s = TestServer::start(app().config(config)).await;
    // A client that starts like HTTP/2's preface and stalls (the protocol sniff's timeout).
    let mut a = TcpStream::connect(s.addr()).await.unwrap();
    a.write_all(b"PRI").await.unwrap();
    // A client that starts an HTTP/1 request and stalls (the header read timeout).
    let mut b = TcpStream::connect(s.addr()).await.unwrap();
    b.write_all(b"GET").await.unwrap();
    // A client that sends nothing.
    let mut c = TcpStream::connect(s.addr()).await.unwrap();
    assert_dropped(&mut a).await;
    assert_dropped(&mut b).await;
    assert_dropped(&mut c).await;
}

/// hyper starts the header read timeout whenever it waits for a request head, so it is also the
/// idle keep-alive timeout between requests (`ServerConfig::header_read_timeout`).
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    let config = ServerConfig::default().header_read_timeout(Duration::from_millis(200));
    let s = TestServer::start(app().config(config)).await;
    let mut socket = TcpStream::connect(s.addr()).await.unwrap();
    socket
        .write_all(b"GET /items/1 HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = socket.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // Kept alive, then idle: closed.
    assert_dropped(&mut socket).await;
}

#[tokio::test]
async fn oversized_heads_are_refused_on_http1_and_http2() {
    let s = start().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for (c, proto) in [(client(), "HTTP/1.1"), (h2, "HTTP/2")] {
        let res = c
            .get(s.url("/items/1"))
            .header("x-big", "a".repeat(100 * 1024))
            .send()
            .await;
        // HTTP/2: h2 refuses a header list over the limit by resetting the stream.
        match res {
            Ok(res) => assert_eq!(res.status(), 431, "{proto}: a 100 KB header"),
            Err(err) => assert_eq!(proto, "HTTP/2", "{proto}: {err}"),
        }
        let mut req = c.get(s.url("/items/1"));
        for i in 0..500 {
            req = req.header(format!("x-h{i}"), "v");
        }
        let res = req
            .send()
            .await
            .expect("a 431 answer, not a transport error");
        assert_eq!(res.status(), 431, "{proto}: 500 headers must be refused");
    }
}

#[tokio::test]
async fn a_path_parameter_that_is_not_utf8_is_a_400() {
    let s = start().await;
    let res = client().get(s.url("/items/a%ff%fe")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("not valid UTF-8"));
    let res = client()
        .get(s.url("/items/caf%C3%A9"))
        .send()
        .await
        .unwrap();
    // Valid UTF-8 decodes and reaches the extractor, which refuses "café" as a number.
    let text = res.text().await.unwrap();
    assert!(text.contains("invalid path parameter `id`"), "{text}");
}

#[tokio::test]
async fn a_panicking_handler_gives_500_and_the_server_keeps_serving() {
    let s = start().await;
    let c = client();
    let res = c.get(s.url("/items/boom/panic")).send().await.unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"statusCode":500,"message":"Internal Server Error"}"#
    );
    let res = c.get(s.url("/items/1")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "item-1");
}

#[tokio::test]
async fn tower_http_layers_apply_to_routes_and_404s() {
    let layer = tower_http::set_header::SetResponseHeaderLayer::overriding(
        http::header::HeaderName::from_static("x-layer"),
        HeaderValue::from_static("on"),
    );
    let s = TestServer::start(app().layer(layer)).await;
    let res = client().get(s.url("/items/1")).send().await.unwrap();
    assert_eq!(res.headers()["x-layer"], "on");
    let res = client().get(s.url("/missing")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["x-layer"], "on");
    let res = client()
        .get(s.url("/items/boom/panic"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(res.headers()["x-layer"], "on");
}

#[tokio::test]
async fn global_prefix() {
    let s = TestServer::start(app().global_prefix("/api/v1")).await;
    assert_eq!(
        client()
            .get(s.url("/api/v1/items/2"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "item-2"
    );
    assert_eq!(
        client()
            .get(s.url("/items/2"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn build_errors_name_the_problem() {
    struct NeedsState;
    impl Controller for NeedsState {
        fn routes(r: &mut Routes<Self>) {
            r.get("/", |_: Arc<Self>, State(_): State<u64>| async { "" });
        }
    }
    let err = NestApp::new()
        .controller(NeedsState)
        .into_service()
        .unwrap_err();
    assert!(
        err.is_state() && err.to_string().contains("State<u64>"),
        "{err}"
    );

    struct Twice;
    impl Controller for Twice {
        fn routes(r: &mut Routes<Self>) {
            r.get("/a", |_: Arc<Self>| async { "" });
            r.get("/a/", |_: Arc<Self>| async { "" });
        }
    }
    let err = NestApp::new().controller(Twice).into_service().unwrap_err();
    assert!(
        err.is_route() && err.to_string().contains("registered twice"),
        "{err}"
    );

    struct Bad;
    impl Controller for Bad {
        fn routes(r: &mut Routes<Self>) {
            r.get("/a/*rest/b", |_: Arc<Self>| async { "" });
        }
    }
    let err = NestApp::new().controller(Bad).into_service().unwrap_err();
    assert!(
        err.is_route() && err.to_string().contains("wildcard"),
        "{err}"
    );

    struct BadHeader;
    impl Controller for BadHeader {
        fn routes(r: &mut Routes<Self>) {
            r.get("/", |_: Arc<Self>| async { "" })
                .header("bad name", "v");
        }
    }
    let err = NestApp::new()
        .controller(BadHeader)
        .into_service()
        .unwrap_err();
    assert!(err.to_string().contains("invalid header"), "{err}");
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_closes_endless_bodies() {
    let s = start().await;
    let handle = s.handle().unwrap();
    let slow = tokio::spawn({
        let url = s.url("/items/stream/slow");
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    });
    let mut endless = client()
        .get(s.url("/items/stream/endless"))
        .send()
        .await
        .unwrap();
    assert!(endless.chunk().await.unwrap().is_some());
    // The slow request is in flight once the endless one streams (both were sent first).
    tokio::task::yield_now().await;
    let shutdown = tokio::time::timeout(Duration::from_secs(20), async {
        handle.shutdown_with_grace(Duration::from_secs(1));
        s.shutdown().await;
    });
    shutdown
        .await
        .expect("shutdown must not hang on an endless body");
    assert_eq!(slow.await.unwrap(), "slow done");
    // The endless body was cut at the deadline: the stream ends (with an error or EOF).
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = endless.chunk().await {}
    });
    rest.await.expect("the endless body must be closed");
}

#[tokio::test]
async fn a_request_whose_first_packet_looks_like_the_http2_preface_still_works() {
    // "P" could begin "PRI * HTTP/2.0": the server reads it, waits for more and replays it to
    // HTTP/1 once "OST" tells it apart. End to end through hyper; the two writes usually arrive
    // apart, and server::conn's unit test covers the split deterministically.
    let s = start().await;
    let mut stream = TcpStream::connect(s.addr()).await.unwrap();
    stream.write_all(b"P").await.unwrap();
    stream.flush().await.unwrap();
    tokio::task::yield_now().await;
    stream
        .write_all(b"OST /items HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 12\r\nconnection: close\r\n\r\n{\"name\":\"p\"}")
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.ends_with(r#"{"name":"p"}"#), "{answer}");
}

/// Records the `request_id` field of every `request` span.
#[derive(Clone, Default)]
struct SpanIds(Arc<std::sync::Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanIds {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Visit<'a>(&'a SpanIds);
        impl tracing::field::Visit for Visit<'_> {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "request_id" {
                    self.0 .0.lock().unwrap().push(value.to_owned());
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        if attrs.metadata().name() == "request" {
            attrs.record(&mut Visit(self));
        }
    }
}

#[tokio::test]
async fn the_request_id_round_trips_and_is_on_the_span() {
    use tracing_subscriber::layer::SubscriberExt;
    let ids = SpanIds::default();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(ids.clone()));
    let s = start().await;
    let res = client()
        .get(s.url("/items/1"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-42");
    let res = client()
        .get(s.url("/items/1"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 24);
    let res = client().get(s.url("/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let for_404 = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(
        *ids.0.lock().unwrap(),
        ["trace-42".to_owned(), generated, for_404]
    );
}
