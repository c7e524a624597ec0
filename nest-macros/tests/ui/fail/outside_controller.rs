use nest_core::prelude::*;

#[get("/free")]
async fn free() {}

#[use_guards(Guard)]
struct NotABlock;

struct App;

impl App {
    #[sse]
    async fn sse(&self) {}
}

#[controller]
fn not_an_impl() {}

fn main() {}
