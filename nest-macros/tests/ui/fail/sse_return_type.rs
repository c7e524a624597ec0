use nest_core::prelude::*;

struct App;

#[controller]
impl App {
    #[get("/text")]
    #[sse]
    async fn text(&self) -> String {
        "data: hi\n\n".to_owned()
    }

    #[get("/nothing")]
    #[sse]
    async fn nothing(&self) {}

    #[get("/response")]
    #[sse]
    async fn response(&self) -> nest_core::Response {
        get_sse_stream(SseOptions::new()).1.into_response()
    }

    #[post("/text-result")]
    #[sse(allow_non_get)]
    fn text_result(&self) -> Result<String, HttpException> {
        Ok(String::new())
    }
}

fn main() {}
