//! The macros through the `nest` facade: the generated code names the crate `::nest` here (the
//! package that depends on nest-core is `nest` itself), and `crate = "…"` overrides it.

use nest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

struct Facade;

#[controller("/facade")]
impl Facade {
    #[get("/:id")]
    #[header("x-style", "macro")]
    async fn find(&self, Path(id): Path<u32>) -> String {
        format!("facade {id}")
    }

    #[get("/events")]
    #[sse]
    async fn events(self: Arc<Self>) -> SseBody {
        let (writer, body) = get_sse_stream(SseOptions::new().keep_alive(None));
        writer.write("from the facade").unwrap();
        body
    }
}

struct Overridden;

#[nest::prelude::controller("/core", crate = "::nest_core")]
impl Overridden {
    #[nest::prelude::post]
    #[nest::prelude::http_code(202)]
    async fn accept(&self, body: String) -> String {
        body
    }
}

/// The trait style, next to the macro style, in one app.
struct ByHand;

impl Controller for ByHand {
    fn prefix(&self) -> &str {
        "/by-hand"
    }

    fn routes(routes: &mut Routes<Self>) {
        routes.get("/", |_: Arc<Self>| async { "by hand" });
    }
}

#[tokio::test]
async fn macros_resolve_through_the_facade() {
    let app = NestApp::new()
        .controller(Facade)
        .controller(Overridden)
        .controller(ByHand);
    let server = app.bind(([127, 0, 0, 1], 0)).await.unwrap();
    let url = |path: &str| format!("http://{}{path}", server.local_addr());
    let client = reqwest::Client::new();
    let res = client.get(url("/facade/3")).send().await.unwrap();
    assert_eq!(res.headers()["x-style"], "macro");
    assert_eq!(res.text().await.unwrap(), "facade 3");
    let res = client.get(url("/facade/events")).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.text().await.unwrap(), "data: from the facade\n\n");
    let res = client
        .post(url("/core"))
        .body("queued")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(res.text().await.unwrap(), "queued");
    let res = client.get(url("/by-hand")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "by hand");
    server.shutdown(Duration::from_secs(1)).await;
}
