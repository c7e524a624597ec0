//! Controllers written with the attribute macros, over real sockets: methods and extractors,
//! the route decorators, guards on plain and SSE routes, layers, and SSE.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::header::HeaderName;
use http::HeaderValue;
use nest_core::extract::RequestCtx;
use nest_core::prelude::*;
use nest_core::test_util::TestServer;
use serde::{Deserialize, Serialize};
use tower_http::set_header::SetResponseHeaderLayer;

const FORBIDDEN: &str = r#"{"statusCode":403,"message":"Forbidden resource","error":"Forbidden"}"#;

/// Lets requests with `x-token: <token>` through.
struct TokenGuard {
    token: &'static str,
}

impl TokenGuard {
    fn new(token: &'static str) -> Self {
        Self { token }
    }
}

impl CanActivate for TokenGuard {
    fn can_activate<'a>(&'a self, req: &'a RequestCtx) -> BoxFuture<'a, bool> {
        let ok = req
            .parts()
            .headers
            .get("x-token")
            .map(HeaderValue::as_bytes)
            == Some(self.token.as_bytes());
        Box::pin(async move { ok })
    }
}

/// Lets everything through.
struct Open;

impl CanActivate for Open {
    fn can_activate<'a>(&'a self, _: &'a RequestCtx) -> BoxFuture<'a, bool> {
        Box::pin(async { true })
    }
}

#[derive(Clone)]
struct Greeting(&'static str);

#[derive(Deserialize)]
struct Page {
    page: u32,
}

#[derive(Deserialize, Serialize)]
struct NewItem {
    name: String,
}

fn x_layer(value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        HeaderName::from_static("x-layer"),
        HeaderValue::from_static(value),
    )
}

struct Items {
    suffix: String,
}

#[controller("/items")]
impl Items {
    #[get]
    async fn list(&self, Query(p): Query<Page>) -> String {
        format!("page {}{}", p.page, self.suffix)
    }

    // Extractors in any order, `self: Arc<Self>` as well as `&self`.
    #[get("/:id")]
    async fn one(self: Arc<Self>, State(g): State<Greeting>, Path(id): Path<u32>) -> String {
        format!("{} {id}{}", g.0, self.suffix)
    }

    #[post("/")]
    #[http_code(201)]
    #[header("x-created", "yes")]
    async fn create(&self, Json(item): Json<NewItem>) -> Json<NewItem> {
        Json(item)
    }

    #[put("/:id")]
    async fn replace(&self, body: String, Path(id): Path<u32>) -> String {
        format!("put {id} {body}")
    }

    #[patch("/:id")]
    #[delete("/:id")]
    fn touch(&self, Path(id): Path<u32>) -> String {
        format!("touched {id}")
    }

    #[get("/old")]
    #[redirect("/items/new", 301)]
    async fn old(&self) -> &'static str {
        "moving"
    }

    #[get("/secret")]
    #[use_guards(Open, TokenGuard::new("s3cret"))]
    async fn secret(&self) -> &'static str {
        "the secret"
    }

    #[get("/layered")]
    #[use_layer(x_layer("route"))]
    async fn layered(&self) -> &'static str {
        "layered"
    }

    #[all("/any")]
    async fn any(&self, req: Request) -> String {
        req.method().to_string()
    }

    #[get("/events")]
    #[sse]
    #[use_guards(TokenGuard::new("stream"))]
    async fn events(&self) -> SseBody {
        let (writer, body) = get_sse_stream(SseOptions::new().keep_alive(None));
        writer
            .write(serde_json::json!({ "hello": "world" }))
            .unwrap();
        writer.write(SseEvent::data("bye").event("end")).unwrap();
        body
    }

    #[post("/events")]
    #[sse(allow_non_get)]
    async fn post_events(&self, Json(item): Json<NewItem>) -> Result<SseBody, HttpException> {
        if item.name.is_empty() {
            return Err(HttpException::bad_request("no name"));
        }
        let (writer, body) = get_sse_stream(SseOptions::new().keep_alive(None));
        writer.write(SseEvent::data(item.name)).unwrap();
        Ok(body)
    }

    /// A plain method: no route.
    fn helper(&self) -> usize {
        self.suffix.len()
    }
}

struct Admin;

#[use_layer(x_layer("controller"))]
#[controller("/admin")]
#[use_guards(TokenGuard::new("admin"))]
impl Admin {
    #[get]
    async fn index(&self) -> &'static str {
        "admin"
    }

    #[get("/stream")]
    #[sse]
    async fn stream(&self) -> SseBody {
        let (writer, body) = get_sse_stream(SseOptions::new().keep_alive(None));
        writer.write("admin event").unwrap();
        body
    }
}

fn app() -> NestApp {
    NestApp::new()
        .state(Greeting("hello"))
        .controller(Items { suffix: "!".into() })
        .controller(Admin)
}

/// A client whose every request, body included, fails after 10 s instead of hanging (the error
/// names the URL): a stream that should end but does not is a failure, not a stuck test.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn methods_and_extractors() {
    let s = TestServer::start(app()).await;
    let c = client();
    let text = c.get(s.url("/items?page=3")).send().await.unwrap();
    assert_eq!(text.text().await.unwrap(), "page 3!");
    let text = c.get(s.url("/items/7")).send().await.unwrap();
    assert_eq!(text.text().await.unwrap(), "hello 7!");
    let res = c.put(s.url("/items/2")).body("new").send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "put 2 new");
    let res = c.patch(s.url("/items/4")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "touched 4");
    let res = c.delete(s.url("/items/5")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "touched 5");
    for method in ["GET", "POST", "PUT"] {
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        let res = c
            .request(method.clone(), s.url("/items/any"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.text().await.unwrap(), method.as_str());
    }
    let res = c.get(s.url("/items/x")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        Items {
            suffix: "ab".into()
        }
        .helper(),
        2
    );
    s.shutdown().await;
}

#[tokio::test]
async fn http_code_header_and_redirect() {
    let s = TestServer::start(app()).await;
    let res = client()
        .post(s.url("/items"))
        .json(&NewItem { name: "ada".into() })
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["x-created"], "yes");
    assert_eq!(res.text().await.unwrap(), r#"{"name":"ada"}"#);
    let res = client().get(s.url("/items/old")).send().await.unwrap();
    assert_eq!(res.status(), 301);
    assert_eq!(res.headers()["location"], "/items/new");
    s.shutdown().await;
}

#[tokio::test]
async fn route_guards_answer_403_in_the_exception_shape() {
    let s = TestServer::start(app()).await;
    let res = client().get(s.url("/items/secret")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.text().await.unwrap(), FORBIDDEN);
    let res = client()
        .get(s.url("/items/secret"))
        .header("x-token", "s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "the secret");
    s.shutdown().await;
}

#[tokio::test]
async fn guards_run_before_an_sse_stream_starts() {
    let s = TestServer::start(app()).await;
    let res = client().get(s.url("/items/events")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.text().await.unwrap(), FORBIDDEN);
    let res = client()
        .get(s.url("/items/events"))
        .header("x-token", "stream")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(
        res.text().await.unwrap(),
        "data: {\"hello\":\"world\"}\n\nevent: end\ndata: bye\n\n"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn sse_with_allow_non_get() {
    let s = TestServer::start(app()).await;
    let res = client()
        .post(s.url("/items/events"))
        .json(&NewItem {
            name: "posted".into(),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.text().await.unwrap(), "data: posted\n\n");
    let res = client()
        .post(s.url("/items/events"))
        .json(&NewItem {
            name: String::new(),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    s.shutdown().await;
}

#[tokio::test]
async fn controller_guards_and_layers() {
    let s = TestServer::start(app()).await;
    let res = client().get(s.url("/admin")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["x-layer"], "controller");
    assert_eq!(res.text().await.unwrap(), FORBIDDEN);
    let res = client()
        .get(s.url("/admin"))
        .header("x-token", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-layer"], "controller");
    assert_eq!(res.text().await.unwrap(), "admin");
    let res = client().get(s.url("/admin/stream")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = client()
        .get(s.url("/admin/stream"))
        .header("x-token", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "data: admin event\n\n");
    s.shutdown().await;
}

#[tokio::test]
async fn route_layers() {
    let s = TestServer::start(app()).await;
    let res = client().get(s.url("/items/layered")).send().await.unwrap();
    assert_eq!(res.headers()["x-layer"], "route");
    assert_eq!(res.text().await.unwrap(), "layered");
    let res = client().get(s.url("/items/7")).send().await.unwrap();
    assert!(res.headers().get("x-layer").is_none());
    s.shutdown().await;
}

/// NestJS-style paths with the macros: `""` for the prefix itself, no slashes at the ends, a
/// trailing slash after a wildcard; and an SSE route that refuses a stream before it starts.
struct Feeds;

#[controller("")]
impl Feeds {
    #[get]
    async fn root(&self) -> &'static str {
        "root"
    }

    #[get("files/*path/")]
    async fn file(&self, Path(path): Path<String>) -> String {
        format!("file {path}")
    }

    #[get("feeds/:name")]
    #[sse]
    async fn feed(&self, Path(name): Path<String>) -> Result<SseBody, HttpException> {
        feed(name)
    }
}

fn feed(name: String) -> Result<SseBody, HttpException> {
    if name != "news" {
        return Err(HttpException::not_found(format!("no feed {name}")));
    }
    let (writer, body) = get_sse_stream(SseOptions::new().keep_alive(None));
    writer.write("headline").unwrap();
    Ok(body)
}

/// The same routes with the trait API, whose paths the router checks when the app is built: the
/// two check one grammar (nest-path), so they accept the same paths and serve the same routes.
struct FeedsByHand;

impl Controller for FeedsByHand {
    fn routes(r: &mut Routes<Self>) {
        r.get("", |_: Arc<Self>| async { "root" });
        r.get(
            "files/*path/",
            |_: Arc<Self>, Path(path): Path<String>| async move { format!("file {path}") },
        );
        r.sse(
            "feeds/:name",
            |_: Arc<Self>, Path(name): Path<String>| async move { feed(name) },
        );
    }
}

#[tokio::test]
async fn nestjs_paths_and_sse_refusals_alike_in_both_styles() {
    for app in [
        NestApp::new().controller(Feeds),
        NestApp::new().controller(FeedsByHand),
    ] {
        let s = TestServer::start(app).await;
        let get = |path: &str| client().get(s.url(path)).send();
        assert_eq!(get("/").await.unwrap().text().await.unwrap(), "root");
        let res = get("/files/a/b.txt").await.unwrap();
        assert_eq!(res.text().await.unwrap(), "file a/b.txt");
        let res = get("/feeds/news").await.unwrap();
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        assert_eq!(res.text().await.unwrap(), "data: headline\n\n");
        let res = get("/feeds/sports").await.unwrap();
        assert_eq!(res.status(), 404);
        assert!(res.text().await.unwrap().contains("no feed sports"));
        s.shutdown().await;
    }
}
