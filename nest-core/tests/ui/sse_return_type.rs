use std::sync::Arc;

use nest_core::prelude::*;
use nest_core::Response;

struct App;

impl App {
    async fn text(self: Arc<Self>) -> String {
        "data: hi\n\n".to_owned()
    }

    async fn response(self: Arc<Self>) -> Response {
        get_sse_stream(SseOptions::new()).1.into_response()
    }
}

impl Controller for App {
    fn routes(r: &mut Routes<Self>) {
        r.sse("/text", Self::text);
        r.sse("/response", Self::response);
        // Forgets to return the body: the closure's future gives `()`.
        r.sse("/forgot", |_: Arc<Self>| async {
            let (writer, _body) = get_sse_stream(SseOptions::new());
            writer.write("hello").unwrap();
        });
        // `.sse()` and `.allow_non_get()` check the handler registered before them.
        r.get("/marked", Self::text).sse();
        r.post("/posted", Self::text).allow_non_get();
    }
}

fn main() {}
