use nest_core::prelude::*;

struct App;

#[controller]
#[get("/on-the-block")]
impl App {
    #[get("/a")]
    #[http_code(42)]
    async fn code(&self) {}

    #[get("/b")]
    #[header("bad name", "value")]
    async fn header(&self) {}

    #[get("/c")]
    #[redirect("/to", 200)]
    async fn redirect(&self) {}

    #[get("/d")]
    #[sse(allow_post)]
    async fn sse(&self) {}

    #[http_code(201)]
    async fn no_route(&self) {}
}

fn main() {}
