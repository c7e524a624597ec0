//! `x-request-id` on SSE responses: a client's id is echoed, a generated one is not sent (it is
//! on the tracing spans; the header would cost each idle stream memory for its whole life).

use std::sync::Arc;

use nest_core::extract::RequestId;
use nest_core::prelude::*;
use nest_core::test_util::TestServer;

struct Stream;

impl Controller for Stream {
    fn routes(r: &mut Routes<Self>) {
        r.sse("/sse", |_: Arc<Self>| async {
            let (writer, body) = get_sse_stream(SseOptions::new());
            body.on_cancel(move |_| drop(writer))
        });
        // An event stream of the app's own making, not an `SseBody`: an SSE response too.
        r.get("/own-stream", |_: Arc<Self>| async {
            let events = futures_util::stream::iter([Ok::<_, std::io::Error>("data: 1\n\n")]);
            let mut res = nest_core::Response::new(nest_core::body::Body::from_stream(events));
            let event_stream = http::HeaderValue::from_static("text/event-stream");
            res.headers_mut().insert("content-type", event_stream);
            res
        });
    }
}

#[tokio::test]
async fn an_sse_response_echoes_a_client_id_and_sends_no_generated_one() {
    let s = TestServer::start(NestApp::new().controller(Stream)).await;
    let client = reqwest::Client::new();
    let res = client
        .get(s.url("/sse"))
        .header("x-request-id", "from-the-client")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["x-request-id"], "from-the-client");
    let res = client.get(s.url("/sse")).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert!(res.headers().get("x-request-id").is_none());
    let res = client.get(s.url("/own-stream")).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert!(res.headers().get("x-request-id").is_none());
    // Any other response carries a generated id.
    let res = client.get(s.url("/nope")).send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"].len(), 24);
}

struct Echo;

impl Controller for Echo {
    fn routes(r: &mut Routes<Self>) {
        r.get("/id", |_: Arc<Self>, id: RequestId| async move {
            id.as_str().to_owned()
        });
    }
}

struct LayeredEcho;

impl Controller for LayeredEcho {
    fn routes(r: &mut Routes<Self>) {
        r.layer(tower::layer::util::Identity::new());
        r.get("/id", |_: Arc<Self>, id: RequestId| async move {
            id.as_str().to_owned()
        });
    }
}

/// The handler's `RequestId` is the response's `x-request-id`, a new one or the client's,
/// whichever way the id reaches the route: directly (no layers), through the app's layers
/// (the request's extensions), or through a route layer.
#[tokio::test]
async fn the_handler_sees_the_id_the_response_carries_with_and_without_layers() {
    let apps = [
        ("no layers", NestApp::new().controller(Echo)),
        (
            "an app layer",
            NestApp::new()
                .controller(Echo)
                .layer(tower::layer::util::Identity::new()),
        ),
        ("a route layer", NestApp::new().controller(LayeredEcho)),
    ];
    let client = reqwest::Client::new();
    for (how, app) in apps {
        let s = TestServer::start(app).await;
        let res = client.get(s.url("/id")).send().await.unwrap();
        let header = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(header.len(), 24, "{how}: a new id");
        assert_eq!(res.text().await.unwrap(), header, "{how}");
        let res = client
            .get(s.url("/id"))
            .header("x-request-id", "abc-123")
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["x-request-id"], "abc-123", "{how}");
        assert_eq!(res.text().await.unwrap(), "abc-123", "{how}");
    }
}

/// New ids on one keep-alive connection share their first 16 digits and count its requests in
/// the last 8; another connection's ids have first digits of their own. A handler's own
/// `x-request-id` is kept.
#[tokio::test]
async fn a_connections_new_ids_count_its_requests_and_another_connection_differs() {
    struct Own;
    impl Controller for Own {
        fn routes(r: &mut Routes<Self>) {
            r.get("/own", |_: Arc<Self>| async {
                let mut res = "mine".into_response();
                let id = http::HeaderValue::from_static("set-by-the-handler");
                res.headers_mut().insert("x-request-id", id);
                res
            });
        }
    }
    let s = TestServer::start(NestApp::new().controller(Echo).controller(Own)).await;
    let ids = |client: reqwest::Client| {
        let url = s.url("/id");
        async move {
            let mut ids = Vec::new();
            for _ in 0..3 {
                ids.push(client.get(&url).send().await.unwrap().text().await.unwrap());
            }
            ids
        }
    };
    let one = ids(reqwest::Client::new()).await;
    let first = u32::from_str_radix(&one[0][16..], 16).unwrap();
    for (n, id) in one.iter().enumerate() {
        assert_eq!(id[..16], one[0][..16], "{one:?}");
        assert_eq!(
            u32::from_str_radix(&id[16..], 16).unwrap(),
            first + n as u32
        );
    }
    let other = ids(reqwest::Client::new()).await;
    assert_ne!(other[0][..16], one[0][..16]);
    let res = reqwest::get(s.url("/own")).await.unwrap();
    let sent: Vec<_> = res.headers().get_all("x-request-id").iter().collect();
    assert_eq!(sent, ["set-by-the-handler"]);
}
