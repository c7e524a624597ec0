//! The official TypeScript client (`@durable-streams/client`, installed with the conformance
//! suite) reads a nest stream on the Redis store: catch-up, then live over SSE; the nest
//! instance it reads from is killed, and the client resumes from its last offset on another
//! instance of the same Redis, with no gap and no duplicate.
//!
//! The client's `fetch` is a small router (what a proxy in front of the instances does):
//! requests go to instance A until it refuses connections, then to B, and a response cut by an
//! instance's death ends (the client 0.2.6 otherwise fails its reader with an uncaught
//! `TypeError: terminated` instead of reconnecting). The client itself knows nothing of B and
//! resumes from the offset it saved.
//!
//! Needs `npm`, Node 20 and `redis-server`; without them a loud skip (a failure under `CI=true`).
//! Run: `cargo test -p nest-durable --features redis --test interop_redis -- --nocapture`.

#[allow(
    dead_code,
    reason = "this test installs the suite for its client, and runs no suite"
)]
#[path = "support/conformance.rs"]
mod suite;

#[allow(
    dead_code,
    unreachable_pub,
    reason = "shared with nest-hub's Redis tests"
)]
#[path = "../../nest-hub/tests/redis/server.rs"]
mod server;

use std::process::Stdio;
use std::time::Duration;

use nest_core::NestApp;
use nest_durable::{DurableConfig, DurableStreams, RedisStore};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStdout;

const READER: &str = r#"import { stream } from "@durable-streams/client"
const [a, b] = process.argv.slice(2)
let target = a
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n")
async function routed(input, init) {
  const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url)
  for (;;) {
    const base = new URL(target)
    url.protocol = base.protocol
    url.host = base.host
    out({ event: "request", url: url.toString() })
    try {
      return ended(await fetch(url, init))
    } catch (e) {
      if (init?.signal?.aborted || target === b) throw e
      out({ event: "failover" })
      target = b
    }
  }
}
// As a proxy in front of the instances does, a response cut by its instance's death ends (the
// client reconnects from its offset) instead of failing the reader with "terminated".
function ended(res) {
  if (!res.body) return res
  const reader = res.body.getReader()
  const body = new ReadableStream({
    async pull(c) {
      try {
        const { done, value } = await reader.read()
        if (done) c.close()
        else c.enqueue(value)
      } catch {
        out({ event: "cut" })
        c.close()
      }
    },
    cancel(reason) {
      return reader.cancel(reason)
    },
  })
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers })
}
const res = await stream({ url: a, offset: "-1", live: "sse", json: true, fetch: routed })
res.subscribeJson(async (batch) => {
  for (const item of batch.items) out({ event: "item", item })
  out({ event: "batch", offset: batch.offset, upToDate: batch.upToDate })
})
await res.closed
"#;

#[test]
fn the_typescript_client_resumes_on_another_instance() {
    let Some(binary) = server::binary_or_skip("the_typescript_client_resumes_on_another_instance")
    else {
        return;
    };
    let test = "the_typescript_client_resumes_on_another_instance";
    if suite::npm().is_none() {
        nest_core::test_util::skip(test, "npm is not on PATH");
        return;
    }
    let dir = match suite::install() {
        Ok(dir) => dir,
        Err(why) => {
            nest_core::test_util::skip(test, &why);
            return;
        }
    };
    std::fs::write(dir.join("interop-reader.mjs"), READER).unwrap();
    let runtime = server::runtime();
    let mut redis = server::RedisServer::start(&binary);
    runtime.block_on(async {
        redis.ready().await;
        let instance = || async {
            let store = RedisStore::connect(&redis.url(), "interop:", DurableConfig::default()).await.unwrap();
            let app = NestApp::new().controller(DurableStreams::new(store).at("/v1/stream"));
            app.bind(([127, 0, 0, 1], 0)).await.unwrap()
        };
        let a = instance().await;
        let b = instance().await;
        let url = |server: &nest_core::Server| format!("http://{}/v1/stream/answers", server.local_addr());
        let (url_a, url_b) = (url(&a), url(&b));
        let http = reqwest::Client::new();
        let put = http.put(&url_a).header("content-type", "application/json").body(r#"[{"n":1},{"n":2},{"n":3}]"#);
        assert_eq!(put.send().await.unwrap().status(), 201);

        let mut child = tokio::process::Command::new("node")
            .current_dir(&dir)
            .arg("interop-reader.mjs")
            .args([&url_a, &url_b])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut log = Vec::new();

        // Catch-up: the three messages, then up to date.
        until(&mut lines, &mut log, |e| e["event"] == "batch" && e["upToDate"] == true).await;
        assert_eq!(items(&log), [1, 2, 3]);

        // Live over SSE: an append on A arrives.
        let post = |url: &str, body: &'static str| http.post(url).header("content-type", "application/json").body(body).send();
        assert_eq!(post(&url_a, r#"{"n":4}"#).await.unwrap().status(), 204);
        until(&mut lines, &mut log, |e| e["event"] == "item" && e["item"]["n"] == 4).await;
        let saved = until(&mut lines, &mut log, |e| e["event"] == "batch").await["offset"].as_str().unwrap().to_owned();
        assert!(
            log.iter().any(|e| e["event"] == "request" && e["url"].as_str().unwrap().contains("live=sse")),
            "the client did not follow over SSE: {log:#?}"
        );

        // A is killed; what is appended on B meanwhile reaches the client, which resumes from
        // the offset it saved.
        a.shutdown(Duration::from_millis(100)).await;
        assert_eq!(post(&url_b, r#"[{"n":5},{"n":6}]"#).await.unwrap().status(), 204);
        until(&mut lines, &mut log, |e| e["event"] == "item" && e["item"]["n"] == 6).await;
        assert_eq!(items(&log), [1, 2, 3, 4, 5, 6], "a gap or a duplicate: {log:#?}");
        let resumed = log
            .iter()
            .filter(|e| e["event"] == "request")
            .map(|e| e["url"].as_str().unwrap().to_owned())
            .find(|u| u.starts_with(&format!("http://{}", b.local_addr())))
            .unwrap_or_else(|| panic!("no request reached B: {log:#?}"));
        assert!(resumed.contains(&format!("offset={saved}")), "{resumed} does not resume from {saved}");
        eprintln!("the TypeScript client resumed on instance B with {resumed}");
        drop(child);
        b.shutdown(Duration::from_secs(1)).await;
    });
}

/// The `n` of every item the client printed, in order.
fn items(log: &[Value]) -> Vec<i64> {
    log.iter()
        .filter(|e| e["event"] == "item")
        .map(|e| e["item"]["n"].as_i64().unwrap())
        .collect()
}

/// Reads the client's lines until one matches (at most 10 s); returns it.
async fn until(
    lines: &mut Lines<BufReader<ChildStdout>>,
    log: &mut Vec<Value>,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let read = async {
        loop {
            let Some(line) = lines.next_line().await.unwrap() else {
                panic!("the client exited; it said: {log:#?}");
            };
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| json!({ "event": "text", "text": line }));
            log.push(event.clone());
            if want(&event) {
                return event;
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), read).await {
        Ok(event) => event,
        Err(_) => panic!("timed out; the client said: {log:#?}"),
    }
}
