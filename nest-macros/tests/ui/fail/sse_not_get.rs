use nest_core::prelude::*;

struct App;

#[controller]
impl App {
    #[post("/sse")]
    #[sse]
    async fn sse(&self) -> SseBody {
        get_sse_stream(SseOptions::new()).1
    }

    #[all("/all")]
    #[sse]
    async fn all(&self) -> SseBody {
        get_sse_stream(SseOptions::new()).1
    }
}

fn main() {}
