//! The layer on an axum 0.8 `Router`, served over a real socket and driven with reqwest.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::response::sse::{Event, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::stream;
use nest_cors::CorsLayer;
use reqwest::{Client, Method, StatusCode};
use support::{
    assert_cors, credentialed_answer, credentialed_preflight_answer, credentialed_spa, CorsHeaders,
    Headers, APP, EVIL, TIMEOUT,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn cors() -> CorsLayer {
    credentialed_spa().build().unwrap()
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
    assert_cors(&res, credentialed_answer());
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
    assert_cors(&res, credentialed_preflight_answer());

    // The fallback's 404 and the method router's 405 carry the headers.
    let res = client
        .get(format!("{base}/nowhere"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_cors(&res, credentialed_answer());
    let res = client
        .delete(format!("{base}/items"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_cors(&res, credentialed_answer());

    // Disallowed origin: reaches the handler, no CORS headers.
    let res = client
        .get(format!("{base}/items"))
        .header("origin", EVIL)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_cors(&res, CorsHeaders::none().vary("Origin"));
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
    assert_cors(&res, CorsHeaders::none());
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
    assert_eq!(res.header("content-type"), Some("text/event-stream"));
    assert_cors(&res, credentialed_answer());

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
