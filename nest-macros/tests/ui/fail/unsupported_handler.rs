use nest_core::prelude::*;

struct App;

#[controller]
impl App {
    #[get("/a")]
    async fn by_value(self) {}

    #[get("/b")]
    async fn mutable(&mut self) {}

    #[get("/c")]
    async fn no_receiver() {}

    #[get("/d")]
    async fn borrowed(&self, _name: &str) {}

    #[get("/e")]
    async fn impl_trait(&self, _value: impl Into<String>) {}

    #[get("/f")]
    async fn generic<T>(&self) {}
}

fn main() {}
