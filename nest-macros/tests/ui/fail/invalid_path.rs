use nest_core::prelude::*;

struct App;

#[controller("/api")]
impl App {
    #[get("/users//posts")]
    async fn empty_segment(&self) {}

    #[get("/users/{id}")]
    async fn braces(&self) {}

    #[get("/users/:user-id")]
    async fn bad_param(&self) {}

    #[get("/files/*rest/more")]
    async fn wildcard_not_last(&self) {}

    #[get("/users/:id/friends/:id")]
    async fn same_param_twice(&self) {}

    #[get("/users:id")]
    async fn colon_inside(&self) {}
}

struct Prefix;

#[controller("/static/*")]
impl Prefix {}

fn main() {}
