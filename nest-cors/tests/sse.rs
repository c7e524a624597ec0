//! An SSE-like streaming response (`text/event-stream`, body a stream of chunks) behind the
//! layer on a plain hyper server: the CORS headers are added, and each chunk reaches the
//! client before the next one is produced (nothing buffers the body).

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Incoming;
use nest_cors::{AllowOrigin, CorsLayer};
use support::{assert_cors, serve, CorsHeaders, Headers, RawRequest, APP, TIMEOUT};
use tokio::sync::mpsc;
use tower::{service_fn, Layer};

type Body = BoxBody<Bytes, Infallible>;

/// Serves `/events` as a stream fed by the returned sender (one subscriber).
async fn sse_server(layer: CorsLayer) -> (std::net::SocketAddr, mpsc::UnboundedSender<Bytes>) {
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let rx = Arc::new(Mutex::new(Some(rx)));
    let handler = service_fn(move |req: Request<Incoming>| {
        let rx = rx.clone();
        async move {
            if req.uri().path() != "/events" {
                let mut res = Response::new(Body::default());
                *res.status_mut() = StatusCode::NOT_FOUND;
                return Ok::<_, Infallible>(res);
            }
            let rx = rx.lock().unwrap().take().expect("one subscriber");
            let chunks = stream::unfold(rx, |mut rx| async move {
                let chunk = rx.recv().await?;
                Some((Ok::<_, Infallible>(Frame::data(chunk)), rx))
            });
            let mut res = Response::new(BodyExt::boxed(StreamBody::new(chunks)));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            Ok(res)
        }
    });
    (serve(layer.layer(handler)).await, tx)
}

fn layer() -> CorsLayer {
    CorsLayer::builder()
        .origin(AllowOrigin::exact(APP))
        .credentials(true)
        .allowed_headers(["last-event-id"])
        .build()
        .unwrap()
}

#[tokio::test]
async fn sse_stream_gets_cors_headers_and_chunks_arrive_unbuffered() {
    let (addr, tx) = sse_server(layer()).await;
    let mut res = reqwest::Client::new()
        .get(format!("http://{addr}/events"))
        .header("origin", APP)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    assert_eq!(res.header("content-type"), Some("text/event-stream"));
    assert_eq!(res.header("cache-control"), Some("no-cache"));
    assert_cors(&res, CorsHeaders::allow(APP).credentials().vary("Origin"));
    assert_eq!(res.header("content-length"), None, "a stream has no length");

    for (n, event) in [
        "id: 1\ndata: one\n\n",
        "id: 2\ndata: two\n\n",
        ": keep-alive\n\n",
    ]
    .into_iter()
    .enumerate()
    {
        tx.send(Bytes::from_static(event.as_bytes())).unwrap();
        let chunk = tokio::time::timeout(TIMEOUT, res.chunk())
            .await
            .unwrap_or_else(|_| panic!("chunk {n} arrived before the next was produced"))
            .unwrap()
            .expect("the stream is still open");
        assert_eq!(chunk, event.as_bytes());
    }
    drop(tx);
    let end = tokio::time::timeout(TIMEOUT, res.chunk())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, None, "the stream ends when the producer does");
}

#[tokio::test]
async fn preflight_for_an_sse_route_is_answered_by_the_layer() {
    let (addr, _tx) = sse_server(layer()).await;
    let res = RawRequest::preflight("/events", APP, "GET")
        .header("Access-Control-Request-Headers", "last-event-id")
        .send(addr)
        .await;
    assert_eq!(res.status, 204);
    assert!(res.body.is_empty());
    assert_cors(
        &res,
        CorsHeaders::preflight(APP)
            .credentials()
            .allow_headers("last-event-id")
            .vary("Origin"),
    );
    assert_eq!(res.header("content-type"), None, "not an event stream");
}
