//! `x-request-id` on SSE responses: a client's id is echoed, a generated one is not sent (it is
//! on the tracing spans; the header would cost each idle stream memory for its whole life).

use std::sync::Arc;

use nest_core::prelude::*;
use nest_core::test_util::TestServer;

struct Stream;

impl Controller for Stream {
    fn routes(r: &mut Routes<Self>) {
        r.sse("/sse", |_: Arc<Self>| async {
            let (writer, body) = get_sse_stream(SseOptions::new());
            body.on_cancel(move |_| drop(writer))
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
    // Any other response carries a generated id.
    let res = client.get(s.url("/nope")).send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"].len(), 24);
}
