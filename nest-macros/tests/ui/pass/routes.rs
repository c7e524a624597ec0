//! Every route attribute, both receivers, patterns, sync and async handlers, generic controllers.

use std::marker::PhantomData;
use std::sync::Arc;

use nest_core::prelude::*;

#[derive(serde::Deserialize)]
struct Ids {
    user: u32,
    post: u32,
}

fn has_token(parts: &http::request::Parts) -> bool {
    parts.headers.contains_key("x-token")
}

struct Guarded;

impl CanActivate for Guarded {
    fn can_activate<'a>(
        &'a self,
        _: &'a nest_core::extract::RequestCtx,
    ) -> futures_util::future::BoxFuture<'a, bool> {
        Box::pin(async { true })
    }
}

struct Api;

#[controller("/api", crate = "::nest_core")]
#[use_guards(Guarded)]
impl Api {
    #[get]
    async fn root(&self) -> &'static str {
        "root"
    }

    #[get("/users/:user/posts/:post")]
    async fn post(self: Arc<Self>, Path(Ids { user, post }): Path<Ids>) -> String {
        format!("{user}/{post}")
    }

    #[post("/users")]
    #[http_code(201)]
    #[header("x-created", "yes")]
    async fn create(&self, body: String, Json(value): Json<serde_json::Value>) -> String {
        format!("{body}{value}")
    }

    #[put("/users/:id")]
    #[patch("/users/:id")]
    fn update(&self, Path(id): Path<u32>) -> String {
        id.to_string()
    }

    #[delete("/users/:id")]
    #[use_guards(has_token, Guarded)]
    async fn remove(&self, _: Path<u32>) -> Result<&'static str, HttpException> {
        Err(HttpException::forbidden("no"))
    }

    #[head("/ping")]
    #[options("/ping")]
    #[all("/any/*rest")]
    async fn ping(&self) {}

    #[get("/old")]
    #[redirect("/api")]
    async fn old(&self) {}

    #[get("/sse")]
    #[sse]
    async fn sse(&self, last: LastEventId) -> SseBody {
        let (writer, body) = get_sse_stream(SseOptions::new());
        let _ = writer.write(format!("{:?}", last.as_u64()));
        body
    }

    #[post("/sse")]
    #[sse(allow_non_get)]
    async fn sse_post(&self) -> Result<SseBody, HttpException> {
        Ok(get_sse_stream(SseOptions::new()).1)
    }

    // A plain `fn`, a path without its slashes (NestJS's `@Get(':room')`), a refusal with 204
    // (which tells an `EventSource` to stop reconnecting).
    #[get("rooms/:room/")]
    #[sse]
    fn room(&self, Path(room): Path<String>) -> Result<nest_core::sse::SseBody, http::StatusCode> {
        if room == "lobby" {
            Ok(get_sse_stream(SseOptions::new()).1)
        } else {
            Err(http::StatusCode::NO_CONTENT)
        }
    }

    // An `impl Trait` return type cannot be named in the macro's check: `.sse()` checks it.
    #[get("/opaque")]
    #[sse]
    async fn opaque(&self) -> impl nest_core::handler::SseResponse {
        get_sse_stream(SseOptions::new()).1
    }

    fn not_a_route(&self) -> u8 {
        1
    }
}

struct Generic<T>(PhantomData<T>);

#[controller]
impl<T: Send + Sync + 'static> Generic<T> {
    #[get("/generic")]
    async fn get(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

struct Empty;

#[controller("")]
impl Empty {}

fn main() {
    assert_eq!(Api.not_a_route(), 1);
    assert_eq!(Controller::prefix(&Api), "/api");
    let app = NestApp::new()
        .controller(Api)
        .controller(Generic::<u8>(PhantomData))
        .controller(Empty);
    if let Err(err) = app.into_service() {
        panic!("{err}");
    }
}
