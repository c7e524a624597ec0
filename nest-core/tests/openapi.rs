//! The OpenAPI document from both styles of controller: what `#[controller]` reads from a
//! method's signature, doc comment and `#[api_response]`, what `.doc(…)` adds on the trait
//! API, and what every route gets without either (path, kind, tag, guards).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::Method;
use nest_core::extract::{FromRequest, RequestCtx};
use nest_core::openapi::{OpenApiRoute, SecurityScheme, Viewer};
use nest_core::prelude::*;
use nest_core::test_util::TestServer;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Deserialize, JsonSchema)]
struct PostKey {
    user_id: u32,
    post_id: String,
}

#[derive(Deserialize, JsonSchema)]
struct Page {
    page: u32,
    q: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct NewPost {
    title: String,
}

#[derive(Serialize, JsonSchema)]
struct Post {
    title: String,
}

/// An extractor with no description: the macro leaves it out, the route still compiles.
struct Anything;

impl FromRequest for Anything {
    async fn from_request(_: &mut RequestCtx) -> Result<Self, HttpException> {
        Ok(Anything)
    }
}

/// A guard that declares the scheme it checks.
struct Bearer;

impl CanActivate for Bearer {
    fn can_activate<'a>(&'a self, req: &'a RequestCtx) -> BoxFuture<'a, bool> {
        let ok = req.headers().contains_key("authorization");
        Box::pin(async move { ok })
    }

    fn security(&self) -> Option<SecurityScheme> {
        Some(SecurityScheme::bearer("bearerAuth").bearer_format("JWT"))
    }
}

struct Posts;

#[controller("/users")]
#[use_guards(Bearer)]
impl Posts {
    /// Finds a post.
    ///
    /// By its user and its id.
    #[get("/:user_id/posts/:post_id")]
    #[api_response(404, "No such post")]
    async fn find(
        &self,
        Path(key): Path<PostKey>,
        Query(page): Query<Page>,
        _anything: Anything,
    ) -> Result<Json<Post>, HttpException> {
        let _ = (key.user_id, page.page, page.q);
        Ok(Json(Post { title: key.post_id }))
    }

    #[post("/:user_id/posts")]
    #[http_code(201)]
    async fn create(&self, Json(post): Json<NewPost>) -> Json<Post> {
        Json(Post { title: post.title })
    }

    #[get("/files/*path")]
    async fn file(&self, Path(path): Path<String>) -> String {
        path
    }
}

fn operation<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "no {method} {path} in {doc:#}");
    op
}

#[test]
fn the_macros_describe_a_route_from_its_signature() {
    let doc = NestApp::new().controller(Posts).openapi().unwrap();
    let find = operation(&doc, "/users/{user_id}/posts/{post_id}", "get");
    assert_eq!(find["summary"], "Finds a post.");
    assert_eq!(find["description"], "By its user and its id.");
    assert_eq!(find["operationId"], "Posts_find");
    assert_eq!(find["tags"], json!(["Posts"]));
    let params = find["parameters"].as_array().unwrap();
    let param = |name: &str| {
        params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no parameter {name}: {params:?}"))
    };
    assert_eq!(param("user_id")["in"], "path");
    assert_eq!(param("user_id")["schema"]["type"], "integer");
    assert_eq!(param("post_id")["schema"]["type"], "string");
    assert_eq!(param("page")["in"], "query");
    assert_eq!(param("page")["required"], true);
    assert_eq!(param("q")["required"], false);
    assert_eq!(params.len(), 4, "{params:?}");
    let responses = &find["responses"];
    assert_eq!(
        responses["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Post"
    );
    for status in ["400", "403", "404", "default"] {
        assert_eq!(
            responses[status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/HttpException",
            "{status}: {responses:#}"
        );
    }
    assert_eq!(responses["404"]["description"], "No such post");
    assert_eq!(find["security"], json!([{ "bearerAuth": [] }]));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"],
        json!({ "type": "http", "scheme": "bearer", "bearerFormat": "JWT" })
    );

    let create = operation(&doc, "/users/{user_id}/posts", "post");
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/NewPost"
    );
    assert_eq!(create["requestBody"]["required"], true);
    assert!(
        create["responses"]["201"]["content"].is_object(),
        "{create:#}"
    );
    assert!(create["responses"].get("200").is_none(), "{create:#}");
    for status in ["400", "413", "415"] {
        assert!(
            create["responses"][status].is_object(),
            "{status}: {create:#}"
        );
    }

    let file = operation(&doc, "/users/files/{path}", "get");
    assert_eq!(file["parameters"][0]["name"], "path");
    assert_eq!(file["parameters"][0]["schema"]["type"], "string");
    assert!(file["parameters"][0]["description"]
        .as_str()
        .unwrap()
        .contains("rest of the path"));
    assert_eq!(
        file["responses"]["200"]["content"]["text/plain"]["schema"]["type"],
        "string"
    );
}

struct Plain;

impl Controller for Plain {
    fn prefix(&self) -> &str {
        "plain"
    }

    fn routes(r: &mut Routes<Self>) {
        // No `.doc`: the path and the kind only.
        r.get(
            "/items/:id",
            |_: Arc<Self>, Path(id): Path<u32>| async move { Json(id) },
        );
        r.sse("/events", |_: Arc<Self>| async {
            get_sse_stream(SseOptions::new()).1
        });
        r.get("/secret", |_: Arc<Self>| async { "hidden" })
            .doc(|op| op.hidden());
        r.all("/any", |_: Arc<Self>| async { "any" });
        r.route(
            Some(Method::from_bytes(b"PURGE").unwrap()),
            "/cache",
            |_: Arc<Self>| async { "purged" },
        );
        // Described twice: the types once.
        r.get("/page", |_: Arc<Self>, Query(p): Query<Page>| async move {
            p.page.to_string()
        })
        .doc(|op| op.summary("first"))
        .doc(|op| op.description("second"));
    }
}

#[test]
fn every_route_is_in_the_document_even_without_doc() {
    let doc = NestApp::new()
        .global_prefix("api")
        .controller(Plain)
        .openapi()
        .unwrap();
    let item = operation(&doc, "/api/plain/items/{id}", "get");
    assert_eq!(item["parameters"][0]["schema"]["type"], "string");
    assert_eq!(item["responses"], json!({ "200": { "description": "OK" } }));
    assert_eq!(item["tags"], json!(["Plain"]));

    let events = operation(&doc, "/api/plain/events", "get");
    let stream = &events["responses"]["200"]["content"]["text/event-stream"]["itemSchema"];
    assert_eq!(stream["properties"]["data"]["type"], "string");
    assert!(stream.get("oneOf").is_none());

    assert!(doc["paths"].get("/api/plain/secret").is_none(), "hidden");

    let any = &doc["paths"]["/api/plain/any"];
    let mut ids = Vec::new();
    for method in ["get", "put", "post", "delete", "patch"] {
        ids.push(any[method]["operationId"].as_str().unwrap().to_owned());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "unique operation ids: {ids:?}");

    let purge = &doc["paths"]["/api/plain/cache"]["additionalOperations"]["PURGE"];
    assert!(purge.is_object(), "{doc:#}");

    let page = operation(&doc, "/api/plain/page", "get");
    assert_eq!(page["summary"], "first");
    assert_eq!(page["description"], "second");
    assert_eq!(page["parameters"].as_array().unwrap().len(), 2);
}

#[test]
fn a_viewer_without_the_documents_url_fails_the_build() {
    let err = NestApp::new()
        .controller(Plain)
        .openapi_route(
            OpenApiRoute::new("/openapi.json")
                .docs("/docs")
                .viewer(Viewer::custom("<p>no url</p>")),
        )
        .into_service()
        .unwrap_err();
    assert!(err.is_config(), "{err}");
    assert!(err.to_string().contains("{{spec_url}}"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_and_a_redoc_page_are_served_where_asked() {
    let app = NestApp::new().controller(Plain).openapi_route(
        OpenApiRoute::new("/spec/openapi.json")
            .docs("/reference")
            .viewer(Viewer::redoc()),
    );
    let server = TestServer::start(app).await;
    let res = reqwest::get(server.url("/spec/openapi.json"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let served: Value = res.json().await.unwrap();
    assert_eq!(served["openapi"], "3.2.0");
    assert!(served["paths"].get("/spec/openapi.json").is_none());
    let page = reqwest::get(server.url("/reference"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"<redoc spec-url="/spec/openapi.json">"#),
        "{page}"
    );
    server.shutdown().await;
}

struct Refined;

impl Controller for Refined {
    fn routes(r: &mut Routes<Self>) {
        r.post(
            "/posts",
            |_: Arc<Self>, Json(p): Json<NewPost>| async move { Json(Post { title: p.title }) },
        )
        .http_code(201)
        .doc(|op| op.response(201, "The post, stored"));
    }
}

#[test]
fn a_response_declared_with_the_success_status_refines_it() {
    let doc = NestApp::new().controller(Refined).openapi().unwrap();
    let created = &operation(&doc, "/posts", "post")["responses"]["201"];
    assert_eq!(created["description"], "The post, stored");
    assert_eq!(
        created["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Post"
    );
}

struct BadStatus;

impl Controller for BadStatus {
    fn routes(r: &mut Routes<Self>) {
        r.get("/", |_: Arc<Self>| async { "" })
            .doc(|op| op.response(1000, "no such status"));
    }
}

#[test]
fn an_invalid_response_status_fails_the_build() {
    let err = NestApp::new().controller(BadStatus).openapi().unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid OpenAPI response status 1000"),
        "{err}"
    );
}
