//! The official Durable Streams conformance suite (npm, 0.3.6) against the Redis store, on a
//! `redis-server` of its own (free port, temp directory, stopped by pid); then two nest
//! instances on that Redis: the same stream, the same offsets, and an append on one wakes a
//! live reader on the other.
//!
//! Needs `npm`, Node 20 and `redis-server`; without them a loud skip (a failure under `CI=true`).
//! Run: `cargo test -p nest-durable --features redis --test conformance_redis -- --nocapture`.

#[path = "support/conformance.rs"]
mod suite;

#[allow(
    dead_code,
    unreachable_pub,
    reason = "shared with nest-core's Redis tests"
)]
#[path = "../../nest-core/tests/redis/server.rs"]
mod server;

use std::time::{Duration, Instant};

use nest_core::NestApp;
use nest_durable::{DurableConfig, DurableStreams, RedisStore};

/// Every default test of the suite: 338 tests, of which the 6 subscription tests are opt-in.
const EXPECTED_PASSED: u64 = 332;

#[test]
fn redis_store_passes_the_official_suite() {
    let Some(binary) = server::binary_or_skip("redis_store_passes_the_official_suite") else {
        return;
    };
    if suite::npm().is_none() {
        nest_core::test_util::skip(
            "redis_store_passes_the_official_suite",
            "npm is not on PATH",
        );
        return;
    }
    let dir = match suite::install() {
        Ok(dir) => dir,
        Err(why) => {
            nest_core::test_util::skip("redis_store_passes_the_official_suite", &why);
            return;
        }
    };
    let runtime = server::runtime();
    let mut redis = server::RedisServer::start(&binary);
    runtime.block_on(async {
        redis.ready().await;
        let long_poll = Duration::from_secs(2);
        let config = DurableConfig::default()
            .long_poll_timeout(long_poll)
            .max_append_bytes(16 * 1024 * 1024);
        let store = RedisStore::connect(&redis.url(), "suite:", config)
            .await
            .unwrap();
        let app = NestApp::new().controller(DurableStreams::new(store).at("/v1/stream"));
        let server = app.bind(([127, 0, 0, 1], 0)).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        let started = Instant::now();
        let result = suite::run(&dir, "redis", &base, long_poll).await;
        eprintln!(
            "durable streams conformance (redis): {} passed, {} failed, {} skipped in {:.0?}",
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
