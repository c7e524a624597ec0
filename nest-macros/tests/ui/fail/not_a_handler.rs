use nest_core::prelude::*;

struct App;

struct NotAResponse;

#[controller]
impl App {
    #[get("/number")]
    async fn number(&self, id: u32) -> String {
        id.to_string()
    }

    #[get("/no-response")]
    async fn no_response(&self) -> NotAResponse {
        NotAResponse
    }
}

fn main() {}
