//! Every option and the combinations from the issue, over a real socket: a hyper 1 server on
//! `127.0.0.1:0` wrapped in the layer, raw HTTP/1.1 requests, assertions on the wire.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use http::Method;
use nest_cors::{AllowOrigin, CorsBuilder, CorsLayer, OriginPattern};
use support::{
    app, assert_cors, credentialed_answer, credentialed_preflight_answer, credentialed_spa, serve,
    CorsHeaders, Headers, RawRequest, APP, DEFAULT_METHODS, EVIL,
};
use tower::{service_fn, Layer};

async fn server(layer: CorsLayer) -> SocketAddr {
    serve(layer.layer(service_fn(app))).await
}

async fn server_with(builder: CorsBuilder) -> SocketAddr {
    server(builder.build().expect("valid configuration")).await
}

/// Sends `GET /` and a preflight with these `Origin` lines and asserts that both are refused:
/// the GET reaches the handler and gets no CORS headers, only `Vary: Origin`; the preflight is
/// answered (204) with none either, only `preflight_vary`.
async fn assert_refused(addr: SocketAddr, origins: &[&str], preflight_vary: &str) {
    let mut get = RawRequest::get("/");
    let mut preflight =
        RawRequest::new("OPTIONS", "/").header("Access-Control-Request-Method", "PUT");
    for origin in origins {
        get = get.origin(origin);
        preflight = preflight.origin(origin);
    }
    let res = get.send(addr).await;
    assert_eq!((res.status, res.body_text()), (200, "ok"), "{origins:?}");
    assert_cors(&res, CorsHeaders::none().vary("Origin"));
    let res = preflight.send(addr).await;
    assert_eq!(
        res.status, 204,
        "{origins:?}: answered, so the browser fails it"
    );
    assert_cors(&res, CorsHeaders::none().vary(preflight_vary));
}

#[tokio::test]
async fn default_public_api() {
    let addr = server(CorsLayer::new()).await;

    let res = RawRequest::get("/").origin(APP).send(addr).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_text(), "ok");
    assert_cors(&res, CorsHeaders::allow("*"));

    // Same-origin or non-browser request: `*` does not depend on it.
    let res = RawRequest::get("/").send(addr).await;
    assert_cors(&res, CorsHeaders::allow("*"));

    // A preflight on a path with no route at all is answered by the layer.
    let res = RawRequest::preflight("/nowhere", APP, "PUT")
        .header("Access-Control-Request-Headers", "content-type,x-token")
        .send(addr)
        .await;
    assert_eq!(res.status, 204);
    assert!(res.body.is_empty());
    assert_cors(
        &res,
        CorsHeaders::preflight("*")
            .allow_headers("content-type,x-token")
            .vary("Access-Control-Request-Headers"),
    );

    // Error responses from the fallback carry the header too.
    for (req, status) in [
        (RawRequest::get("/missing"), 404),
        (RawRequest::new("DELETE", "/"), 405),
        (RawRequest::get("/boom"), 500),
    ] {
        let res = req.origin(APP).send(addr).await;
        assert_eq!(res.status, status);
        assert_cors(&res, CorsHeaders::allow("*"));
    }
}

#[tokio::test]
async fn preflight_content_length_on_the_wire() {
    // With 200 the layer's `content-length: 0` reaches the client.
    let addr = server_with(CorsLayer::builder().options_success_status(200_u16)).await;
    let res = RawRequest::preflight("/", APP, "PUT").send(addr).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-length"), Some("0"));
    assert_eq!(res.header("transfer-encoding"), None);
    assert!(res.body.is_empty());

    // With 204 there is no body either way; RFC 9110 §8.6 forbids Content-Length on a 204,
    // and hyper drops it, so the wire shows neither a length nor chunking.
    let addr = server(CorsLayer::new()).await;
    let res = RawRequest::preflight("/", APP, "PUT").send(addr).await;
    assert_eq!(res.status, 204);
    assert_eq!(res.header("content-length"), None);
    assert_eq!(res.header("transfer-encoding"), None);
    assert!(res.body.is_empty());
}

#[tokio::test]
async fn credentialed_spa_actual_requests() {
    let addr = server_with(credentialed_spa()).await;

    for (path, status) in [("/", 200), ("/missing", 404), ("/boom", 500)] {
        let res = RawRequest::get(path).origin(APP).send(addr).await;
        assert_eq!(res.status, status, "{path}");
        assert_cors(&res, credentialed_answer());
    }
    let res = RawRequest::new("DELETE", "/").origin(APP).send(addr).await;
    assert_eq!(res.status, 405);
    assert_cors(&res, credentialed_answer());

    // Disallowed, `null` and absent origins: no CORS headers, the handler still answers,
    // and `Vary: Origin` is there all the same.
    for origin in [
        Some(EVIL),
        Some("null"),
        Some("https://app.example.evil.io"),
        None,
    ] {
        let req = RawRequest::get("/");
        let req = match origin {
            Some(origin) => req.origin(origin),
            None => req,
        };
        let res = req.send(addr).await;
        assert_eq!(res.status, 200, "{origin:?}");
        assert_eq!(res.body_text(), "ok");
        assert_cors(&res, CorsHeaders::none().vary("Origin"));
    }
}

#[tokio::test]
async fn credentialed_spa_preflights() {
    let addr = server_with(credentialed_spa()).await;

    let res = RawRequest::preflight("/api/items", APP, "PATCH")
        .header("Access-Control-Request-Headers", "content-type")
        .send(addr)
        .await;
    assert_eq!(res.status, 204);
    assert_cors(&res, credentialed_preflight_answer());

    let res = RawRequest::preflight("/api/items", EVIL, "PATCH")
        .header("Access-Control-Request-Headers", "content-type")
        .send(addr)
        .await;
    assert_eq!(
        res.status, 204,
        "answered, so the browser (not a 404) rejects it"
    );
    assert_cors(
        &res,
        CorsHeaders::none().vary("Origin, Access-Control-Request-Headers"),
    );
}

#[tokio::test]
async fn plain_options_reaches_the_handler() {
    let addr = server_with(credentialed_spa()).await;
    let res = RawRequest::new("OPTIONS", "/options")
        .origin(APP)
        .send(addr)
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_text(), "options handler");
    assert_cors(&res, credentialed_answer());

    // Without Origin an OPTIONS with Access-Control-Request-Method is not a preflight either.
    let res = RawRequest::new("OPTIONS", "/options")
        .header("Access-Control-Request-Method", "PUT")
        .send(addr)
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_text(), "options handler");
    assert_cors(&res, CorsHeaders::none().vary("Origin"));
}

#[tokio::test]
async fn reflect_any_origin_but_null() {
    let addr = server_with(CorsLayer::builder().origin(AllowOrigin::reflect())).await;
    let res = RawRequest::get("/")
        .origin("http://localhost:5173")
        .send(addr)
        .await;
    assert_cors(
        &res,
        CorsHeaders::allow("http://localhost:5173").vary("Origin"),
    );

    assert_refused(addr, &["null"], "Origin, Access-Control-Request-Headers").await;
}

#[tokio::test]
async fn reflect_with_credentials_via_the_dangerous_opt_in() {
    let addr = server_with(
        CorsLayer::builder()
            .origin(AllowOrigin::reflect())
            .credentials(true)
            .dangerously_allow_credentials_for_any_origin(),
    )
    .await;
    let res = RawRequest::get("/").origin(EVIL).send(addr).await;
    assert_cors(&res, CorsHeaders::allow(EVIL).credentials().vary("Origin"));
}

#[tokio::test]
async fn list_of_exact_origins_regexes_and_null() {
    let addr = server_with(CorsLayer::builder().origin(AllowOrigin::list([
        OriginPattern::exact(APP),
        OriginPattern::exact("null"),
        OriginPattern::regex(r"https://[a-z0-9-]+\.example\.com"),
    ])))
    .await;
    for (origin, allowed) in [
        (APP, true),
        ("null", true),
        ("https://shop.example.com", true),
        ("https://example.com", false),
        ("https://shop.example.com.evil.io", false),
        ("https://shop.example.com:8443", false),
        ("http://shop.example.com", false),
        (EVIL, false),
    ] {
        let res = RawRequest::get("/").origin(origin).send(addr).await;
        assert_cors(&res, CorsHeaders::allow_if(allowed, origin).vary("Origin"));

        let res = RawRequest::preflight("/", origin, "PUT").send(addr).await;
        assert_eq!(res.status, 204);
        let expected = if allowed {
            CorsHeaders::preflight(origin)
        } else {
            CorsHeaders::none()
        };
        assert_cors(
            &res,
            expected.vary("Origin, Access-Control-Request-Headers"),
        );
    }
}

#[tokio::test]
async fn regex_of_subdomains() {
    let addr = server_with(
        CorsLayer::builder().origin(AllowOrigin::regex(r"https://([a-z0-9-]+\.)*example\.com")),
    )
    .await;
    for (origin, allowed) in [
        ("https://example.com", true),
        ("https://a.b.example.com", true),
        ("https://example.com.evil.io", false),
        ("https://evil.io/https://example.com", false),
        ("https://notexample.com", false),
    ] {
        let res = RawRequest::get("/").origin(origin).send(addr).await;
        assert_cors(&res, CorsHeaders::allow_if(allowed, origin).vary("Origin"));
    }
}

#[tokio::test]
async fn predicate_and_async_predicate() {
    let sync = server_with(
        CorsLayer::builder().origin(AllowOrigin::predicate(|origin, parts| {
            origin.starts_with("http://localhost:") && parts.uri.path() != "/boom"
        })),
    )
    .await;
    let async_ = server_with(
        CorsLayer::builder()
            .origin(AllowOrigin::async_predicate(|origin, parts| {
                let path_ok = parts.uri.path() != "/boom";
                async move { path_ok && origin.starts_with("http://localhost:") }
            }))
            .credentials(true),
    )
    .await;
    const LOCAL: &str = "http://localhost:3000";
    for (addr, credentials) in [(sync, false), (async_, true)] {
        let allowed = |headers: CorsHeaders<'static>| match credentials {
            true => headers.credentials(),
            false => headers,
        };
        let res = RawRequest::get("/").origin(LOCAL).send(addr).await;
        assert_cors(&res, allowed(CorsHeaders::allow(LOCAL).vary("Origin")));

        // The predicate sees the request head: /boom is refused, but still reaches the handler.
        let res = RawRequest::get("/boom").origin(LOCAL).send(addr).await;
        assert_eq!(res.status, 500);
        assert_cors(&res, CorsHeaders::none().vary("Origin"));

        let res = RawRequest::preflight("/", LOCAL, "DELETE").send(addr).await;
        assert_eq!(res.status, 204);
        let vary = "Origin, Access-Control-Request-Headers";
        assert_cors(&res, allowed(CorsHeaders::preflight(LOCAL).vary(vary)));
        let res = RawRequest::preflight("/", EVIL, "DELETE").send(addr).await;
        assert_eq!(res.status, 204);
        assert_cors(&res, CorsHeaders::none().vary(vary));
    }
}

#[tokio::test]
async fn configured_methods_headers_max_age_and_status() {
    let addr = server_with(
        CorsLayer::builder()
            .origin(AllowOrigin::exact(APP))
            .methods([Method::GET, Method::POST, Method::DELETE])
            .allowed_headers(["Content-Type", "Authorization"])
            .exposed_headers(["ETag", "X-Total-Count"])
            .max_age(Duration::from_secs(86_400))
            .options_success_status(200_u16),
    )
    .await;
    let res = RawRequest::preflight("/", APP, "DELETE")
        .header("Access-Control-Request-Headers", "x-not-listed")
        .send(addr)
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-length"), Some("0"));
    assert!(res.body.is_empty());
    assert_cors(
        &res,
        CorsHeaders::allow(APP)
            .methods("GET,POST,DELETE")
            .allow_headers("content-type,authorization")
            .max_age("86400")
            .vary("Origin"),
    );

    let res = RawRequest::get("/").origin(APP).send(addr).await;
    assert_cors(
        &res,
        CorsHeaders::allow(APP)
            .expose("etag,x-total-count")
            .vary("Origin"),
    );

    let addr = server_with(CorsLayer::builder().max_age(None)).await;
    let res = RawRequest::preflight("/", APP, "PUT").send(addr).await;
    assert_eq!(res.status, 204);
    assert_cors(
        &res,
        CorsHeaders::allow("*")
            .methods(DEFAULT_METHODS)
            .vary("Access-Control-Request-Headers"),
    );
}

#[tokio::test]
async fn private_network_access() {
    let addr = server_with(
        CorsLayer::builder()
            .origin(AllowOrigin::exact(APP))
            .private_network(true),
    )
    .await;
    let res = RawRequest::preflight("/", APP, "GET")
        .header("Access-Control-Request-Private-Network", "true")
        .send(addr)
        .await;
    assert_eq!(res.status, 204);
    let vary = "Origin, Access-Control-Request-Headers, Access-Control-Request-Private-Network";
    assert_cors(
        &res,
        CorsHeaders::preflight(APP).private_network().vary(vary),
    );

    // Not asked: not sent.
    let res = RawRequest::preflight("/", APP, "GET").send(addr).await;
    assert_cors(&res, CorsHeaders::preflight(APP).vary(vary));
    // Asked by a disallowed origin: not sent.
    let res = RawRequest::preflight("/", EVIL, "GET")
        .header("Access-Control-Request-Private-Network", "true")
        .send(addr)
        .await;
    assert_cors(&res, CorsHeaders::none().vary(vary));

    // Off (the default): not sent even when asked.
    let addr = server(CorsLayer::new()).await;
    let res = RawRequest::preflight("/", APP, "GET")
        .header("Access-Control-Request-Private-Network", "true")
        .send(addr)
        .await;
    assert_cors(
        &res,
        CorsHeaders::preflight("*").vary("Access-Control-Request-Headers"),
    );
}

#[tokio::test]
async fn preflight_continue_lets_the_handler_answer() {
    let addr = server_with(
        CorsLayer::builder()
            .origin(AllowOrigin::exact(APP))
            .preflight_continue(true),
    )
    .await;
    let res = RawRequest::preflight("/options", APP, "PUT")
        .header("Access-Control-Request-Headers", "x-token")
        .send(addr)
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_text(), "options handler");
    let vary = "Origin, Access-Control-Request-Headers";
    assert_cors(
        &res,
        CorsHeaders::preflight(APP)
            .allow_headers("x-token")
            .vary(vary),
    );

    // With no OPTIONS route the handler's 404 is what the browser gets.
    let res = RawRequest::preflight("/nowhere", APP, "PUT")
        .send(addr)
        .await;
    assert_eq!(res.status, 404);
    assert_cors(&res, CorsHeaders::preflight(APP).vary(vary));
}

#[tokio::test]
async fn vary_is_appended_to_the_handlers() {
    let addr = server_with(credentialed_spa()).await;
    let res = RawRequest::get("/vary").origin(APP).send(addr).await;
    assert_eq!(res.all("vary"), ["Accept-Encoding, Origin"]);
    let res = RawRequest::get("/vary").send(addr).await;
    assert_eq!(res.all("vary"), ["Accept-Encoding, Origin"]);

    // Any origin does not vary: the handler's Vary is left exactly as it was.
    let addr = server(CorsLayer::new()).await;
    let res = RawRequest::get("/vary").origin(APP).send(addr).await;
    assert_eq!(res.all("vary"), ["Accept-Encoding"]);
}

#[tokio::test]
async fn disabled_sends_no_cors_headers_and_forwards_preflights() {
    let addr = server_with(CorsLayer::builder().origin(AllowOrigin::disabled())).await;
    let res = RawRequest::get("/").origin(APP).send(addr).await;
    assert_eq!(res.status, 200);
    assert_cors(&res, CorsHeaders::none());

    let res = RawRequest::preflight("/options", APP, "PUT")
        .send(addr)
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_text(), "options handler");
    assert_cors(&res, CorsHeaders::none());
}

/// Browsers send exactly one `Origin`, holding one serialized origin (Fetch's CORS protocol).
/// A request with two `Origin` lines is not a CORS request from a browser, and the layer must
/// not pick one of them (it used to take the first): no `Access-Control-Allow-*` headers,
/// whichever line would be allowed alone; a preflight is answered like a disallowed origin's.
#[tokio::test]
async fn two_origin_headers_are_not_allowed() {
    let addr = server_with(credentialed_spa()).await;
    let vary = "Origin, Access-Control-Request-Headers";
    for origins in [[APP, EVIL], [EVIL, APP], [APP, APP]] {
        assert_refused(addr, &origins, vary).await;
    }

    // Under any-origin too: `*` does not depend on the origin, but this answer does, so it
    // says `Vary: Origin` (a cache must not give it to requests with a valid origin).
    let addr = server(CorsLayer::new()).await;
    let vary = "Access-Control-Request-Headers, Origin";
    assert_refused(addr, &[APP, EVIL], vary).await;
}

/// An `Origin` value that is not one origin as browsers serialize it (a list, a URL with a
/// path, `*`, uppercase, the default port) is not allowed either, even by reflect-any.
#[tokio::test]
async fn an_origin_that_is_not_one_serialized_origin_is_not_allowed() {
    let addr = server_with(CorsLayer::builder().origin(AllowOrigin::reflect())).await;
    for origin in [
        "https://app.example, https://evil.example",
        "https://app.example https://evil.example",
        "https://app.example/",
        "*",
        "app.example",
        "https://App.Example",
        "https://app.example:443",
    ] {
        assert_refused(addr, &[origin], "Origin, Access-Control-Request-Headers").await;
    }
    // What browsers do send is reflected as before.
    for origin in ["https://app.example:8443", "http://[::1]:3000", "null"] {
        let res = RawRequest::get("/").origin(origin).send(addr).await;
        let allowed = origin != "null";
        assert_cors(&res, CorsHeaders::allow_if(allowed, origin).vary("Origin"));
    }
}
