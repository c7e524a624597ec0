use nest_core::prelude::*;

#[derive(SseEvents)]
struct NotAnEnum {
    data: String,
}

#[derive(SseEvents)]
enum TwoFields {
    Pair(String, String),
}

#[derive(SseEvents)]
enum BadName {
    #[sse_event(name = "a\nb")]
    Broken(String),
}

#[derive(SseEvents)]
enum TextWithoutData {
    #[sse_event(text)]
    Done,
}

#[derive(SseEvents)]
enum Empty {}

struct App;

#[controller]
impl App {
    #[get("/a")]
    #[api_response(1000, "no such status")]
    async fn a(&self) {}
}

fn main() {}
