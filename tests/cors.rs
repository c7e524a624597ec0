//! nest-cors on a `NestApp`, over real sockets: preflights on routed, unrouted and SSE paths,
//! error responses, SSE streams, the three setups of `examples/cors.rs`.

#[path = "../examples/cors.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod cors_example;

#[path = "../nest-cors/tests/support/cors_headers.rs"]
mod cors_headers;

use std::sync::Arc;
use std::time::Duration;

use cors_headers::{assert_cors, CorsHeaders, Headers};
use nest::prelude::*;
use nest::test_util::TestServer;
use reqwest::{Method, StatusCode};

const PAGE: &str = "http://127.0.0.1:9000";

/// A client whose every request fails after 10 s instead of hanging.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn preflight(
    server: &TestServer,
    path: &str,
    origin: &str,
    method: &str,
) -> reqwest::Response {
    client()
        .request(Method::OPTIONS, server.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn public_api_preflights_anywhere_and_headers_on_every_response() {
    let server = TestServer::start(cors_example::public_api()).await;
    for path in ["/api/items/1", "/api/events", "/no/such/route"] {
        let res = preflight(&server, path, PAGE, "PUT").await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT, "{path}");
        assert_cors(
            &res,
            CorsHeaders::preflight("*")
                .allow_headers("content-type")
                .vary("Access-Control-Request-Headers"),
        );
        assert!(res.bytes().await.unwrap().is_empty());
    }
    // Error responses carry CORS headers, so pages can read them.
    let res = client()
        .get(server.url("/missing"))
        .header("origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_cors(&res, CorsHeaders::allow("*"));
    let res = client()
        .post(server.url("/api/items/1"))
        .header("origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_cors(&res, CorsHeaders::allow("*"));
    // An SSE stream carries them too, and still streams.
    let mut res = client()
        .get(server.url("/api/events"))
        .header("origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_cors(&res, CorsHeaders::allow("*"));
    assert_eq!(res.header("content-type"), Some("text/event-stream"));
    let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(chunk.starts_with(b"id: 0\ndata: {\"n\":0}"), "{chunk:?}");
}

#[tokio::test]
async fn a_panic_500_carries_cors_headers() {
    struct Boom;
    impl Controller for Boom {
        fn routes(r: &mut Routes<Self>) {
            r.get("/boom", |_: Arc<Self>| async {
                panic!("boom");
                #[allow(unreachable_code)]
                ""
            });
        }
    }
    let server = TestServer::start(NestApp::new().controller(Boom).layer(CorsLayer::new())).await;
    let res = client()
        .get(server.url("/boom"))
        .header("origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    assert_cors(&res, CorsHeaders::allow("*"));
}

#[tokio::test]
async fn options_requests_that_are_not_preflights_reach_the_router() {
    let server = TestServer::start(cors_example::public_api()).await;
    // No Access-Control-Request-Method: not a preflight, so the router answers (no OPTIONS route).
    let res = client()
        .request(Method::OPTIONS, server.url("/api/items/1"))
        .header("origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
}

#[tokio::test]
async fn credentialed_spa_on_a_known_origin() {
    let server = TestServer::start(cors_example::spa(PAGE).unwrap()).await;
    let res = preflight(&server, "/api/items/7", PAGE, "PUT").await;
    assert_eq!(res.status(), 204);
    assert_cors(
        &res,
        CorsHeaders::preflight(PAGE)
            .credentials()
            .allow_headers("content-type,last-event-id")
            .max_age("3600")
            .vary("Origin"),
    );

    let res = client()
        .put(server.url("/api/items/7"))
        .header("origin", PAGE)
        .json(&serde_json::json!({"name": "seven"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_cors(
        &res,
        CorsHeaders::allow(PAGE)
            .credentials()
            .expose("x-request-id")
            .vary("Origin"),
    );

    // Another origin: no CORS headers, but the request still reached the handler.
    let res = client()
        .get(server.url("/api/items/7"))
        .header("origin", "http://127.0.0.1:9999")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_cors(&res, CorsHeaders::none().vary("Origin"));
}

#[tokio::test]
async fn regex_of_subdomains_matches_whole_origins_only() {
    let server = TestServer::start(cors_example::subdomains().unwrap()).await;
    for (origin, allowed) in [
        ("https://shop.example.com", true),
        ("https://a-b.example.com", true),
        ("https://example.com", false),
        ("https://shop.example.com.evil.io", false),
        ("http://shop.example.com", false),
        ("null", false),
    ] {
        let res = client()
            .get(server.url("/api/items/1"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_cors(&res, CorsHeaders::allow_if(allowed, origin).vary("Origin"));
    }
}

/// A configured origin must be what a browser sends in `Origin`, at the edges of that grammar: a
/// scheme starts with a letter, a bracketed IPv6 host is followed by nothing or `:port`, a port
/// has no leading zero (0 itself is a port).
#[test]
fn configured_origins_are_checked_at_the_edges_of_the_origin_grammar() {
    for (origin, valid) in [
        ("h1+.-://app.example", true),
        ("1http://app.example", false),
        ("+http://app.example", false),
        ("http://[::1]:8080", true),
        ("http://[::1]", true),
        ("http://[::1]x8080", false),
        ("http://localhost:0", true),
        ("http://localhost:8080", true),
        ("http://localhost:080", false),
        ("http://localhost:00", false),
    ] {
        let built = CorsLayer::builder()
            .origin(nest::cors::AllowOrigin::exact(origin))
            .build();
        assert_eq!(built.is_ok(), valid, "{origin}: {:?}", built.err());
    }
}
