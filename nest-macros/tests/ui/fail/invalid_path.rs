use nest_core::prelude::*;

struct App;

#[controller("/api")]
impl App {
    #[get("users")]
    async fn no_slash(&self) {}

    #[get("/users/{id}")]
    async fn braces(&self) {}

    #[get("/users/:user-id")]
    async fn bad_param(&self) {}

    #[get("/files/*rest/more")]
    async fn wildcard_not_last(&self) {}
}

struct Prefix;

#[controller("prefix")]
impl Prefix {}

fn main() {}
