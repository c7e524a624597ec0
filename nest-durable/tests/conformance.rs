//! The official Durable Streams conformance suite (npm, 0.3.6) against the in-memory store.
//!
//! Needs `npm` and Node 20; without them the test is a loud skip (a failure under `CI=true`).
//! Run: `cargo test -p nest-durable --test conformance -- --nocapture`.

#[path = "support/conformance.rs"]
mod suite;

use std::time::{Duration, Instant};

use nest_core::NestApp;
use nest_durable::{DurableConfig, DurableStreams, MemoryStore};

/// Every default test of the suite: 338 tests, of which the 6 subscription tests are opt-in.
const EXPECTED_PASSED: u64 = 332;

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
        let app = NestApp::new().controller(DurableStreams::new(store.clone()).at("/v1/stream"));
        let server = app.bind(([127, 0, 0, 1], 0)).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        let started = Instant::now();
        let result = suite::run(&dir, "memory", &base, long_poll).await;
        eprintln!(
            "durable streams conformance (memory): {} passed, {} failed, {} skipped in {:.0?}",
            result.passed,
            result.failed,
            result.skipped,
            started.elapsed()
        );
        for failure in &result.failures {
            eprintln!("  FAILED {failure}");
        }
        server.shutdown(Duration::from_secs(1)).await;
        assert_eq!(result.failed, 0, "failures: {:#?}", result.failures);
        assert_eq!(result.passed, EXPECTED_PASSED);
    });
}
