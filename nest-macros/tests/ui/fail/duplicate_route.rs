use nest_core::prelude::*;

struct App;

#[controller("/users")]
impl App {
    #[get("/:id")]
    async fn one(&self) {}

    #[post("/:id")]
    async fn create(&self) {}

    #[get("/:name/")]
    async fn same_route(&self) {}
}

fn main() {}
