//! A Durable Streams server: ElectricSQL's open protocol for append-only streams read by offset,
//! at `/v1/stream/*` (any path under it is a stream the client names). `PUT` creates, `POST`
//! appends, `GET ?offset=` reads from any offset (`-1`: the beginning, `now`: the tail), and
//! `live=long-poll` or `live=sse` follow new data; a client resumes from the last
//! `Stream-Next-Offset` it saw. The official TypeScript client (`@durable-streams/client`)
//! speaks to it.
//!
//! Run with: `cargo run --example durable --features durable` (`HOST`, `PORT`, default 3007).
//! Streams are in memory; with `NEST_REDIS_URL=redis://127.0.0.1:6379/` and
//! `--features durable,redis` they are on Redis, so several instances (on several ports) serve
//! the same streams with the same offsets.
//!
//! Anyone who can reach it can create, read and delete every stream: put authentication in
//! front of it before it leaves your machine.
#![allow(clippy::print_stdout, reason = "an example prints its URL")]

use nest::prelude::*;
use nest::server::ListenEnv;
use nest_durable::{AnyStore, DurableConfig, DurableStreams, MemoryStore};

#[allow(
    clippy::duplicate_mod,
    reason = "a test that includes two examples includes this module twice"
)]
mod support;

/// Where the streams live.
pub const BASE: &str = "/v1/stream";

/// The app: the Durable Streams service under [`BASE`] on `store`, next to a CORS layer.
pub fn app(store: impl Into<AnyStore>) -> NestApp {
    NestApp::new().controller(DurableStreams::new(store).at(BASE))
}

#[allow(
    dead_code,
    reason = "tests include this file for `app` and do not call `main`"
)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_logging();
    let listen = ListenEnv::from_env(3007)?;
    let store = match std::env::var("NEST_REDIS_URL") {
        Ok(url) => redis_store(&url).await?,
        Err(_) => MemoryStore::new(DurableConfig::default())?.into(),
    };
    let server = app(store).bind_env(&listen).await?;
    println!(
        "nest Durable Streams example: {}{BASE}/<your-stream>",
        server.url().trim_end_matches('/')
    );
    server.run_until_signal().await;
    Ok(())
}

/// The store on the Redis at `url`, keys under `nest-durable:`.
#[cfg(feature = "redis")]
async fn redis_store(url: &str) -> Result<AnyStore, Box<dyn std::error::Error>> {
    let store =
        nest_durable::RedisStore::connect(url, "nest-durable:", DurableConfig::default()).await?;
    Ok(store.into())
}

/// Without the `redis` feature there is no Redis store: setting `NEST_REDIS_URL` is an error
/// that says how to build the example.
#[cfg(not(feature = "redis"))]
async fn redis_store(_url: &str) -> Result<AnyStore, Box<dyn std::error::Error>> {
    Err(
        "NEST_REDIS_URL is set, but the example was built without Redis: add --features durable,redis"
            .into(),
    )
}
