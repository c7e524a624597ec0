//! The layer on an axum 0.8 `Router`, served over a real socket and driven with reqwest.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::response::sse::{Event, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::stream;
use nest_cors::{AllowOrigin, CorsLayer};
use reqwest::{Client, Method, StatusCode};
use support::TIMEOUT;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const APP: &str = "https://app.example";

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn cors() -> CorsLayer {
    CorsLayer::builder()
        .origin(AllowOrigin::exact(APP))
        .credentials(true)
        .exposed_headers(["x-request-id"])
        .build()
        .unwrap()
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    let mut values = res.headers().get_all(name).iter();
    let first = values.next().map(|v| v.to_str().unwrap());
    assert!(values.next().is_none(), "{name} sent more than once");
    first
}

#[tokio::test]
async fn layer_around_an_axum_router() {
    let router = Router::new()
        .route("/items", get(|| async { "items" }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no route") })
        .layer(cors());
    let base = format!("http://{}", serve(router).await);
    let client = Client::new();

    let res = client
        .get(format!("{base}/items"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(&res, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        header(&res, "access-control-expose-headers"),
        Some("x-request-id")
    );
    assert_eq!(header(&res, "vary"), Some("Origin"));
    assert_eq!(res.text().await.unwrap(), "items");

    // axum's method router would answer this OPTIONS with 405; the layer answers first.
    let res = client
        .request(Method::OPTIONS, format!("{base}/items"))
        .header("origin", APP)
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(&res, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        header(&res, "access-control-allow-methods"),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE")
    );
    assert_eq!(
        header(&res, "access-control-allow-headers"),
        Some("content-type")
    );
    assert_eq!(header(&res, "access-control-max-age"), Some("600"));
    assert_eq!(
        header(&res, "vary"),
        Some("Origin, Access-Control-Request-Headers")
    );

    // The fallback's 404 and the method router's 405 carry the headers.
    let res = client
        .get(format!("{base}/nowhere"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(APP));
    let res = client
        .delete(format!("{base}/items"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(&res, "access-control-allow-credentials"),
        Some("true")
    );

    // Disallowed origin: reaches the handler, no CORS headers.
    let res = client
        .get(format!("{base}/items"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    assert_eq!(header(&res, "access-control-allow-credentials"), None);
    assert_eq!(header(&res, "vary"), Some("Origin"));
}

/// Why the docs say to apply CORS app-wide: a layer on the routes only never sees a preflight
/// for a path without a route, so the browser gets the router's bare 404.
#[tokio::test]
async fn route_layer_cannot_see_unrouted_preflights() {
    let router = Router::new()
        .route("/items", get(|| async { "items" }))
        .route_layer(cors());
    let base = format!("http://{}", serve(router).await);
    let res = Client::new()
        .request(Method::OPTIONS, format!("{base}/nowhere"))
        .header("origin", APP)
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&res, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn axum_sse_stream_passes_through_unbuffered() {
    let (tx, rx) = mpsc::unbounded_channel::<&'static str>();
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(Some(rx)));
    let router = Router::new()
        .route(
            "/events",
            get(move || {
                let rx = rx.clone();
                async move {
                    let rx = rx.lock().await.take().expect("one subscriber");
                    let events = stream::unfold(rx, |mut rx| async move {
                        let data = rx.recv().await?;
                        Some((Ok::<_, Infallible>(Event::default().data(data)), rx))
                    });
                    Sse::new(events)
                }
            }),
        )
        .layer(cors());
    let base = format!("http://{}", serve(router).await);

    let mut res = Client::new()
        .get(format!("{base}/events"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "content-type"), Some("text/event-stream"));
    assert_eq!(header(&res, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(&res, "access-control-allow-credentials"),
        Some("true")
    );

    for data in ["one", "two"] {
        tx.send(data).unwrap();
        let chunk = tokio::time::timeout(TIMEOUT, res.chunk())
            .await
            .expect("the event arrives before the next one is sent")
            .unwrap()
            .expect("the stream is still open");
        assert_eq!(chunk, format!("data: {data}\n\n").as_bytes());
    }
}
