//! The official Durable Streams conformance suite (npm, 0.3.6) against the in-memory store.
//!
//! Needs `npm` and Node 20; without them the test is a loud skip (a failure under `CI=true`).
//! Run: `cargo test -p nest-durable --test conformance -- --nocapture`.

#[path = "support/conformance.rs"]
mod suite;

use std::time::Duration;

use nest_durable::{DurableConfig, MemoryStore};

#[test]
fn memory_store_passes_the_official_suite() {
    if suite::npm().is_none() {
        nest_core::test_util::skip(
            "memory_store_passes_the_official_suite",
            "npm is not on PATH",
        );
        return;
    }
    let dir = match suite::install() {
        Ok(dir) => dir,
        Err(why) => {
            nest_core::test_util::skip("memory_store_passes_the_official_suite", &why);
            return;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let long_poll = Duration::from_secs(2);
        let config = DurableConfig::default()
            .long_poll_timeout(long_poll)
            .max_append_bytes(16 * 1024 * 1024);
        let store = MemoryStore::new(config).unwrap();
        suite::check(&dir, "memory", store, long_poll).await;
    });
}
