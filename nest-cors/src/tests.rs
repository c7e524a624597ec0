//! Header logic, driven with `tower::ServiceExt::oneshot` on `service_fn`; the wire behaviour
//! is tested over real sockets in `tests/`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tower::{service_fn, Layer, Service, ServiceExt};

use crate::{AllowOrigin, CorsBuilder, CorsLayer, OriginPattern};

#[path = "../tests/support/cors_headers.rs"]
mod cors_headers;

use cors_headers::{assert_cors, CorsHeaders, Headers};

const APP: &str = "https://app.example";
const EVIL: &str = "https://evil.example";
const ECHOED: &str = "content-type,x-token";

/// An inner service that answers `200 handler` (or the status in `x-status`), counts its
/// calls, and copies `x-set-*` request headers onto the response (`x-set-vary: a` → `vary: a`).
fn handler(
    calls: Arc<AtomicUsize>,
) -> impl Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone {
    service_fn(move |req: Request<String>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut res = Response::new(String::from("handler"));
            if let Some(status) = req.headers().get("x-status") {
                *res.status_mut() = StatusCode::from_bytes(status.as_bytes()).unwrap();
            }
            for (name, value) in req.headers() {
                if let Some(target) = name.as_str().strip_prefix("x-set-") {
                    let target = HeaderName::from_bytes(target.as_bytes()).unwrap();
                    res.headers_mut().append(target, value.clone());
                }
            }
            Ok(res)
        }
    })
}

async fn send(layer: &CorsLayer, req: Request<String>) -> (Response<String>, usize) {
    let calls = Arc::new(AtomicUsize::new(0));
    let res = layer
        .layer(handler(Arc::clone(&calls)))
        .oneshot(req)
        .await
        .unwrap();
    (res, calls.load(Ordering::SeqCst))
}

fn get(origin: Option<&str>) -> Request<String> {
    let mut req = Request::get("/").body(String::new()).unwrap();
    if let Some(origin) = origin {
        req.headers_mut()
            .insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
    }
    req
}

fn preflight(origin: &str) -> Request<String> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri("/")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "PUT")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, ECHOED)
        .body(String::new())
        .unwrap()
}

fn build(builder: CorsBuilder) -> CorsLayer {
    builder.build().unwrap()
}

fn exact_with_credentials() -> CorsLayer {
    build(
        CorsLayer::builder()
            .origin(AllowOrigin::exact(APP))
            .credentials(true)
            .exposed_headers(["x-request-id", "etag"]),
    )
}

/// What an actual request from `APP` gets from `exact_with_credentials`.
fn credentialed_answer() -> CorsHeaders<'static> {
    CorsHeaders::allow(APP)
        .credentials()
        .expose("x-request-id,etag")
        .vary("Origin")
}

/// What an allowed `preflight(origin)` gets with the default options (echoed headers).
fn preflight_answer(origin: &str) -> CorsHeaders<'_> {
    CorsHeaders::preflight(origin).allow_headers(ECHOED)
}

#[tokio::test]
async fn any_origin_sends_star_to_everyone_without_vary() {
    let layer = CorsLayer::new();
    for origin in [Some(APP), Some("null"), None] {
        let (res, calls) = send(&layer, get(origin)).await;
        assert_eq!(calls, 1);
        assert_cors(&res, CorsHeaders::allow("*"));
    }
}

#[tokio::test]
async fn default_preflight_echoes_request_headers() {
    let (res, calls) = send(&CorsLayer::new(), preflight(APP)).await;
    assert_eq!(calls, 0, "the layer answers preflights itself");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(res.body(), "");
    assert_eq!(res.header("content-length"), Some("0"));
    assert_cors(
        &res,
        preflight_answer("*").vary("Access-Control-Request-Headers"),
    );
}

#[tokio::test]
async fn preflight_without_request_headers_sends_no_allow_headers() {
    let mut req = preflight(APP);
    req.headers_mut()
        .remove(header::ACCESS_CONTROL_REQUEST_HEADERS);
    let (res, _) = send(&CorsLayer::new(), req).await;
    assert_cors(
        &res,
        CorsHeaders::preflight("*").vary("Access-Control-Request-Headers"),
    );
}

#[tokio::test]
async fn exact_origin_with_credentials_on_actual_requests() {
    let layer = exact_with_credentials();
    let (res, _) = send(&layer, get(Some(APP))).await;
    assert_cors(&res, credentialed_answer());

    for origin in [
        Some(EVIL),
        Some("null"),
        Some("https://app.example.evil.io"),
        None,
    ] {
        let (res, calls) = send(&layer, get(origin)).await;
        assert_eq!(calls, 1, "a disallowed request still reaches the handler");
        assert_eq!(res.body(), "handler");
        assert_cors(&res, CorsHeaders::none().vary("Origin"));
    }
}

#[tokio::test]
async fn exact_origin_with_credentials_on_preflights() {
    let layer = exact_with_credentials();
    let (res, calls) = send(&layer, preflight(APP)).await;
    assert_eq!(calls, 0);
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let vary = "Origin, Access-Control-Request-Headers";
    assert_cors(&res, preflight_answer(APP).credentials().vary(vary));

    let (res, calls) = send(&layer, preflight(EVIL)).await;
    assert_eq!(
        calls, 0,
        "a disallowed preflight is answered, not forwarded"
    );
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_cors(&res, CorsHeaders::none().vary(vary));
}

#[tokio::test]
async fn error_responses_get_cors_headers() {
    let layer = exact_with_credentials();
    for status in ["404", "405", "500"] {
        let mut req = get(Some(APP));
        req.headers_mut()
            .insert("x-status", HeaderValue::from_static(status));
        let (res, _) = send(&layer, req).await;
        assert_eq!(res.status().as_str(), status);
        assert_cors(&res, credentialed_answer());
    }
}

#[tokio::test]
async fn reflect_allows_any_origin_but_null() {
    let layer = build(CorsLayer::builder().origin(AllowOrigin::reflect()));
    let (res, _) = send(&layer, get(Some("https://x.example:8443"))).await;
    assert_cors(
        &res,
        CorsHeaders::allow("https://x.example:8443").vary("Origin"),
    );

    for origin in [Some("null"), None] {
        let (res, _) = send(&layer, get(origin)).await;
        assert_cors(&res, CorsHeaders::none().vary("Origin"));
    }
}

#[tokio::test]
async fn reflect_with_credentials_through_the_dangerous_opt_in() {
    let layer = build(
        CorsLayer::builder()
            .origin(AllowOrigin::reflect())
            .credentials(true)
            .dangerously_allow_credentials_for_any_origin(),
    );
    let (res, _) = send(&layer, get(Some(EVIL))).await;
    assert_cors(&res, CorsHeaders::allow(EVIL).credentials().vary("Origin"));
}

#[tokio::test]
async fn null_is_allowed_when_listed_explicitly() {
    let layer = build(CorsLayer::builder().origin(AllowOrigin::list(["null", APP])));
    for (origin, allowed) in [("null", true), (APP, true), (EVIL, false)] {
        let (res, _) = send(&layer, get(Some(origin))).await;
        assert_cors(&res, CorsHeaders::allow_if(allowed, origin).vary("Origin"));
    }
}

#[tokio::test]
async fn list_mixes_exact_origins_and_regexes() {
    let layer = build(CorsLayer::builder().origin(AllowOrigin::list([
        OriginPattern::exact("http://localhost:3000"),
        OriginPattern::regex(r"https://([a-z]+\.)?example\.com"),
    ])));
    for (origin, allowed) in [
        ("http://localhost:3000", true),
        ("http://localhost:30000", false),
        ("https://example.com", true),
        ("https://shop.example.com", true),
        ("https://example.com.evil.io", false),
        ("https://evilexample.com", false),
        ("http://example.com", false),
    ] {
        let (res, _) = send(&layer, get(Some(origin))).await;
        assert_cors(&res, CorsHeaders::allow_if(allowed, origin).vary("Origin"));
    }
}

#[tokio::test]
async fn predicate_sees_the_origin_and_the_request_head() {
    let layer = build(
        CorsLayer::builder().origin(AllowOrigin::predicate(|origin, parts| {
            origin.ends_with(".trusted.example") && parts.uri.path().starts_with("/api")
        })),
    );
    let req = |path: &str, origin: &str| {
        Request::get(path)
            .header(header::ORIGIN, origin)
            .body(String::new())
            .unwrap()
    };
    let trusted = "https://a.trusted.example";
    for (path, origin, allowed) in [
        ("/api/x", trusted, true),
        ("/other", trusted, false),
        ("/api/x", EVIL, false),
    ] {
        let (res, _) = send(&layer, req(path, origin)).await;
        assert_cors(&res, CorsHeaders::allow_if(allowed, origin).vary("Origin"));
    }
}

#[tokio::test]
async fn predicate_decides_about_null_itself() {
    let layer = build(CorsLayer::builder().origin(AllowOrigin::predicate(|o, _| o == "null")));
    let (res, _) = send(&layer, get(Some("null"))).await;
    assert_cors(&res, CorsHeaders::allow("null").vary("Origin"));
}

#[tokio::test]
async fn origin_that_is_not_visible_ascii_is_disallowed() {
    let layer = build(CorsLayer::builder().origin(AllowOrigin::predicate(|_, _| true)));
    let mut req = get(None);
    req.headers_mut().insert(
        header::ORIGIN,
        HeaderValue::from_bytes(b"https://caf\xe9.example").unwrap(),
    );
    let (res, calls) = send(&layer, req).await;
    assert_eq!(calls, 1);
    assert_cors(&res, CorsHeaders::none().vary("Origin"));
}

#[tokio::test]
async fn async_predicate_on_actual_requests_and_preflights() {
    let layer = build(
        CorsLayer::builder()
            .origin(AllowOrigin::async_predicate(|origin, _parts| async move {
                origin == APP
            }))
            .credentials(true),
    );
    let (res, calls) = send(&layer, get(Some(APP))).await;
    assert_eq!(calls, 1);
    assert_cors(&res, CorsHeaders::allow(APP).credentials().vary("Origin"));

    let (res, _) = send(&layer, get(Some(EVIL))).await;
    assert_cors(&res, CorsHeaders::none().vary("Origin"));

    let vary = "Origin, Access-Control-Request-Headers";
    let (res, calls) = send(&layer, preflight(APP)).await;
    assert_eq!(calls, 0);
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_cors(&res, preflight_answer(APP).credentials().vary(vary));

    let (res, _) = send(&layer, preflight(EVIL)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_cors(&res, CorsHeaders::none().vary(vary));
}

#[tokio::test]
async fn async_predicate_runs_concurrently_with_the_inner_service() {
    let (decide_tx, decide_rx) = tokio::sync::oneshot::channel::<bool>();
    let decide_rx = Arc::new(std::sync::Mutex::new(Some(decide_rx)));
    let layer = build(CorsLayer::builder().origin(AllowOrigin::async_predicate(
        move |_origin, _parts| {
            let rx = decide_rx.lock().unwrap().take().expect("called once");
            async move { rx.await.unwrap_or(false) }
        },
    )));
    let (called_tx, called_rx) = tokio::sync::oneshot::channel::<()>();
    let called_tx = Arc::new(std::sync::Mutex::new(Some(called_tx)));
    let svc = layer.layer(service_fn(move |_req: Request<String>| {
        if let Some(tx) = called_tx.lock().unwrap().take() {
            tx.send(()).unwrap();
        }
        async { Ok::<_, Infallible>(Response::new(String::new())) }
    }));
    let response = tokio::spawn(svc.oneshot(get(Some(APP))));
    // The inner service is called before the predicate has decided…
    called_rx.await.unwrap();
    // …and the headers wait for the decision.
    decide_tx.send(true).unwrap();
    let res = response.await.unwrap().unwrap();
    assert_cors(&res, CorsHeaders::allow(APP).vary("Origin"));
}

#[tokio::test]
async fn plain_options_requests_reach_the_handler() {
    let layer = exact_with_credentials();
    let plain = [
        // No Access-Control-Request-Method: not a preflight.
        Request::builder()
            .method(Method::OPTIONS)
            .header(header::ORIGIN, APP)
            .body(String::new())
            .unwrap(),
        // No Origin: not a preflight either.
        Request::builder()
            .method(Method::OPTIONS)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "PUT")
            .body(String::new())
            .unwrap(),
    ];
    for req in plain {
        let had_origin = req.headers().contains_key(header::ORIGIN);
        let (res, calls) = send(&layer, req).await;
        assert_eq!(calls, 1);
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.body(), "handler");
        let expected = match had_origin {
            true => credentialed_answer(),
            false => CorsHeaders::none().vary("Origin"),
        };
        assert_cors(&res, expected);
    }
}

#[tokio::test]
async fn configured_preflight_options() {
    let layer = build(
        CorsLayer::builder()
            .origin(AllowOrigin::exact(APP))
            .methods([Method::GET, Method::POST])
            .allowed_headers(["Content-Type", "Last-Event-ID"])
            .max_age(None)
            .options_success_status(200_u16),
    );
    let (res, calls) = send(&layer, preflight(APP)).await;
    assert_eq!(calls, 0);
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.header("content-length"), Some("0"));
    // Not echoing, so the answer does not vary with the request headers.
    assert_cors(
        &res,
        CorsHeaders::allow(APP)
            .methods("GET,POST")
            .allow_headers("content-type,last-event-id")
            .vary("Origin"),
    );
}

#[tokio::test]
async fn wildcards_without_credentials() {
    let layer = build(
        CorsLayer::builder()
            .methods(["*"])
            .allowed_headers(["*"])
            .exposed_headers(["*"]),
    );
    let (res, _) = send(&layer, preflight(APP)).await;
    assert_cors(
        &res,
        CorsHeaders::allow("*")
            .methods("*")
            .allow_headers("*")
            .max_age("600"),
    );
    let (res, _) = send(&layer, get(Some(APP))).await;
    assert_cors(&res, CorsHeaders::allow("*").expose("*"));
}

#[tokio::test]
async fn private_network_only_when_asked_and_enabled() {
    let ask = || {
        let mut req = preflight(APP);
        req.headers_mut().insert(
            "access-control-request-private-network",
            HeaderValue::from_static("true"),
        );
        req
    };
    let on = build(CorsLayer::builder().private_network(true));
    let vary = "Access-Control-Request-Headers, Access-Control-Request-Private-Network";
    let (res, _) = send(&on, ask()).await;
    assert_cors(&res, preflight_answer("*").private_network().vary(vary));
    let (res, _) = send(&on, preflight(APP)).await;
    assert_cors(&res, preflight_answer("*").vary(vary));

    let (res, _) = send(&CorsLayer::new(), ask()).await;
    assert_cors(
        &res,
        preflight_answer("*").vary("Access-Control-Request-Headers"),
    );
}

#[tokio::test]
async fn preflight_continue_passes_preflights_to_the_handler() {
    let layer = build(
        CorsLayer::builder()
            .origin(AllowOrigin::exact(APP))
            .preflight_continue(true),
    );
    let mut req = preflight(APP);
    req.headers_mut()
        .insert("x-status", HeaderValue::from_static("202"));
    let (res, calls) = send(&layer, req).await;
    assert_eq!(calls, 1);
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.body(), "handler");
    assert_cors(
        &res,
        preflight_answer(APP).vary("Origin, Access-Control-Request-Headers"),
    );
}

#[tokio::test]
async fn disabled_adds_nothing_and_forwards_preflights() {
    let layer = build(CorsLayer::builder().origin(AllowOrigin::disabled()));
    let (res, calls) = send(&layer, preflight(APP)).await;
    assert_eq!(calls, 1);
    assert_eq!(res.status(), StatusCode::OK);
    assert_cors(&res, CorsHeaders::none());
    let (res, calls) = send(&layer, get(Some(APP))).await;
    assert_eq!(calls, 1);
    assert_cors(&res, CorsHeaders::none());
}

#[tokio::test]
async fn vary_is_merged_into_the_handlers() {
    let layer = exact_with_credentials();
    let mut req = get(Some(APP));
    req.headers_mut()
        .insert("x-set-vary", HeaderValue::from_static("Accept-Encoding"));
    let (res, _) = send(&layer, req).await;
    assert_eq!(res.all("vary"), ["Accept-Encoding, Origin"]);

    let mut req = get(Some(APP));
    req.headers_mut()
        .insert("x-set-vary", HeaderValue::from_static("origin"));
    let (res, _) = send(&layer, req).await;
    assert_eq!(res.all("vary"), ["origin"]);
}

#[tokio::test]
async fn handler_that_sets_allow_origin_keeps_its_cors_headers() {
    let layer = exact_with_credentials();
    let mut req = get(Some(APP));
    req.headers_mut().insert(
        "x-set-access-control-allow-origin",
        HeaderValue::from_static("*"),
    );
    let (res, _) = send(&layer, req).await;
    // Not replaced, not duplicated, and no credentials added to a response the handler took
    // charge of.
    assert_cors(&res, CorsHeaders::allow("*").vary("Origin"));
}

#[tokio::test]
async fn inner_errors_pass_through() {
    let svc = CorsLayer::new().layer(service_fn(|_req: Request<String>| async {
        Err::<Response<String>, _>("boom")
    }));
    let err = svc.oneshot(get(Some(APP))).await.unwrap_err();
    assert_eq!(err, "boom");
}

#[test]
fn layer_service_and_future_are_send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CorsLayer>();
    assert_send_sync::<crate::Cors<()>>();
    type Fut = std::future::Ready<Result<Response<String>, Infallible>>;
    fn assert_send<T: Send>() {}
    assert_send::<crate::ResponseFuture<Fut>>();
}

#[tokio::test]
async fn preflight_continue_with_a_disallowed_origin_or_an_async_predicate() {
    let layer = build(
        CorsLayer::builder()
            .origin(AllowOrigin::async_predicate(|origin, _| async move {
                origin == APP
            }))
            .preflight_continue(true),
    );
    let (res, calls) = send(&layer, preflight(EVIL)).await;
    assert_eq!(calls, 1);
    assert_eq!(res.body(), "handler");
    let vary = "Origin, Access-Control-Request-Headers";
    assert_cors(&res, CorsHeaders::none().vary(vary));

    let (res, calls) = send(&layer, preflight(APP)).await;
    assert_eq!(calls, 1);
    assert_cors(&res, preflight_answer(APP).vary(vary));
}
