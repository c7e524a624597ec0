use std::sync::Arc;

use nest_core::prelude::*;

struct App;

struct NotAResponse;

impl App {
    async fn borrowed(self: Arc<Self>, _name: &str) -> String {
        String::new()
    }

    async fn no_response(self: Arc<Self>) -> NotAResponse {
        NotAResponse
    }

    async fn no_controller(_id: Path<u32>) -> String {
        String::new()
    }
}

impl Controller for App {
    fn routes(r: &mut Routes<Self>) {
        r.get("/borrowed", Self::borrowed);
        r.get("/no-response", Self::no_response);
        r.get("/no-controller", Self::no_controller);
        r.get("/not-async", |_: Arc<Self>| "text");
    }
}

fn main() {}
