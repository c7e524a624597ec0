//! `durable`: the Durable Streams server of `nest-durable` (memory store) against the protocol's
//! Node reference server (`@durable-streams/server` 0.3.7, in memory, compression off), each in
//! its own process, driven by the same client:
//!
//! - appends/s to one stream and spread over 10,000 streams (64-byte bodies, 32 writers);
//! - SSE live delivery to 1,000 readers of one stream: p50/p99 from the append to each reader;
//! - catch-up throughput of a 100 MiB stream (one reader following `Stream-Next-Offset`).
//!
//! Run with: `cargo run --release -p nest-bench --bin durable` (about two minutes; `--quick`
//! for a smoke run). It installs the reference server with npm into `target/durable-bench` and
//! writes the table to `target/durable-bench/BENCHMARKS-durable.md`.
#![allow(clippy::print_stdout, reason = "a benchmark prints its table")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

const REFERENCE: &str = "@durable-streams/server@0.3.7";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.first().map(String::as_str) {
        Some("serve-nest") => runtime.block_on(serve_nest(args.get(1).map_or(Ok(0), |p| p.parse())?)),
        _ => runtime.block_on(run(args.iter().any(|a| a == "--quick"))),
    }
}

/// The nest side: the memory store at `/v1/stream`, limits raised for the 100 MiB stream.
async fn serve_nest(port: u16) -> Result<()> {
    use nest_durable::{DurableConfig, DurableStreams, MemoryStore};
    let config = DurableConfig::default()
        .max_stream_bytes(256 << 20)
        .max_total_bytes(4 << 30)
        .max_streams(1_000_000);
    let store = MemoryStore::new(config)?;
    let app = nest_core::NestApp::new().controller(DurableStreams::new(store).at("/v1/stream"));
    let server = app.bind(([127, 0, 0, 1], port)).await?;
    println!("{}", server.local_addr());
    server.run_until_signal().await;
    Ok(())
}

struct Server {
    name: &'static str,
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("durable-bench")
}

fn start_nest() -> Result<Server> {
    let port = free_port()?;
    let child = Command::new(std::env::current_exe()?)
        .args(["serve-nest", &port.to_string()])
        .stdout(Stdio::null())
        .spawn()?;
    Ok(Server { name: "nest-durable (memory)", child, base: format!("http://127.0.0.1:{port}") })
}

fn start_reference() -> Result<Server> {
    let dir = bench_dir();
    std::fs::create_dir_all(&dir)?;
    if !dir.join("node_modules/@durable-streams/server/package.json").exists() {
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--save-exact", "--prefix"])
            .arg(&dir)
            .arg(REFERENCE)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(format!("npm install {REFERENCE} failed").into());
        }
    }
    std::fs::write(
        dir.join("reference.mjs"),
        "import { DurableStreamTestServer } from \"@durable-streams/server\"\n\
         const server = new DurableStreamTestServer({ port: Number(process.argv[2]), compression: false })\n\
         console.log(await server.start())\n",
    )?;
    let port = free_port()?;
    let child = Command::new("node")
        .current_dir(&dir)
        .args(["reference.mjs", &port.to_string()])
        .stdout(Stdio::null())
        .spawn()?;
    Ok(Server { name: "Node reference 0.3.7 (memory)", child, base: format!("http://127.0.0.1:{port}") })
}

async fn ready(http: &reqwest::Client, base: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if http.head(format!("{base}/v1/stream/ready-probe")).send().await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{base} did not start").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Debug, Default)]
struct Row {
    one_stream: f64,
    spread: f64,
    p50_ms: f64,
    p99_ms: f64,
    delivered: usize,
    catch_up_mb_s: f64,
}

async fn run(quick: bool) -> Result<()> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let mut rows = Vec::new();
    for start in [start_nest as fn() -> Result<Server>, start_reference] {
        let server = start()?;
        ready(&http, &server.base).await?;
        eprintln!("{}: {}", server.name, server.base);
        let row = workloads(&http, &server.base, quick).await?;
        eprintln!("{}: {row:?}", server.name);
        rows.push((server.name, row));
    }
    let mut table = String::from(
        "| server | appends/s, one stream | appends/s, 10,000 streams | SSE live p50 | SSE live p99 | deliveries | catch-up of 100 MiB |\n|---|---|---|---|---|---|---|\n",
    );
    for (name, r) in &rows {
        table.push_str(&format!(
            "| {name} | {:.0} | {:.0} | {:.2} ms | {:.2} ms | {} | {:.0} MB/s |\n",
            r.one_stream, r.spread, r.p50_ms, r.p99_ms, r.delivered, r.catch_up_mb_s
        ));
    }
    if let [(_, nest), (_, node)] = &rows[..] {
        table.push_str(&format!(
            "\nnest / reference: {:.1}× appends/s to one stream, {:.1}× spread, {:.1}× catch-up.\n",
            nest.one_stream / node.one_stream,
            nest.spread / node.spread,
            nest.catch_up_mb_s / node.catch_up_mb_s
        ));
    }
    println!("{table}");
    std::fs::write(bench_dir().join("BENCHMARKS-durable.md"), &table)?;
    Ok(())
}

async fn workloads(http: &reqwest::Client, base: &str, quick: bool) -> Result<Row> {
    let secs = if quick { 1 } else { 5 };
    let streams = if quick { 500 } else { 10_000 };
    let readers = if quick { 100 } else { 1_000 };
    let mib = if quick { 8 } else { 100 };
    let run_id = std::process::id();
    let mut row = Row::default();

    let one = format!("{base}/v1/stream/one-{run_id}");
    create(http, &one, "text/plain").await?;
    row.one_stream = appends(http, std::slice::from_ref(&one), Duration::from_secs(secs)).await?;

    let mut urls = Vec::with_capacity(streams);
    for i in 0..streams {
        urls.push(format!("{base}/v1/stream/spread-{run_id}-{i}"));
    }
    for chunk in urls.chunks(64) {
        let created = chunk.iter().map(|u| create(http, u, "text/plain"));
        futures_util::future::try_join_all(created).await?;
    }
    row.spread = appends(http, &urls, Duration::from_secs(secs)).await?;

    let (p50, p99, delivered) = fan_out(base, run_id, readers).await?;
    (row.p50_ms, row.p99_ms, row.delivered) = (p50, p99, delivered);

    row.catch_up_mb_s = catch_up(http, base, run_id, mib).await?;
    Ok(row)
}

async fn create(http: &reqwest::Client, url: &str, content_type: &str) -> Result<()> {
    let res = http.put(url).header("content-type", content_type).send().await?;
    if !res.status().is_success() {
        return Err(format!("PUT {url}: {}", res.status()).into());
    }
    Ok(())
}

/// 32 writers append 64-byte bodies for `time`, each cycling through its share of `urls`.
async fn appends(http: &reqwest::Client, urls: &[String], time: Duration) -> Result<f64> {
    const WRITERS: usize = 32;
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + time;
    let body = bytes::Bytes::from(vec![b'x'; 64]);
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (http, done, body) = (http.clone(), done.clone(), body.clone());
        let mine: Vec<String> = urls.iter().skip(w % urls.len()).step_by(WRITERS.min(urls.len())).cloned().collect();
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while Instant::now() < deadline {
                let url = &mine[i % mine.len()];
                i += 1;
                let res = http.post(url).header("content-type", "text/plain").body(body.clone()).send().await;
                if res.is_ok_and(|r| r.status().is_success()) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64().max(time.as_secs_f64()))
}

/// `readers` SSE readers of one JSON stream; 100 appends of `{"t": µs since start}` 10 ms apart;
/// the latency of every delivery.
async fn fan_out(base: &str, run_id: u32, readers: usize) -> Result<(f64, f64, usize)> {
    let url = format!("{base}/v1/stream/fan-{run_id}");
    // Readers on their own clients: one connection each.
    let http = reqwest::Client::new();
    create(&http, &url, "application/json").await?;
    let origin = Instant::now();
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(readers * 100)));
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    let mut tasks = Vec::new();
    for _ in 0..readers {
        let (url, latencies, ready) = (url.clone(), latencies.clone(), ready.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let Ok(mut res) = http.get(format!("{url}?offset=now&live=sse")).send().await else { return };
            let mut buf = String::new();
            let mut announced = false;
            let mut got = 0;
            while let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(10), res.chunk()).await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let event: String = buf.drain(..end + 2).collect();
                    let data: Vec<&str> = event.lines().filter_map(|l| l.strip_prefix("data:")).collect();
                    if event.starts_with("event: control") || event.contains("\nevent: control") {
                        if !announced {
                            announced = true;
                            ready.add_permits(1);
                        }
                        continue;
                    }
                    let now = origin.elapsed().as_micros() as u64;
                    if let Ok(serde_json::Value::Array(items)) = serde_json::from_str(&data.join("\n")) {
                        let mut l = latencies.lock().unwrap();
                        for item in items {
                            if let Some(t) = item["t"].as_u64() {
                                l.push(now.saturating_sub(t));
                                got += 1;
                            }
                        }
                    }
                }
                if got >= 100 {
                    break;
                }
            }
        }));
    }
    // Every reader has its first control event (it is following) before the first append.
    let _ = tokio::time::timeout(Duration::from_secs(30), ready.acquire_many(readers as u32)).await;
    let writer = reqwest::Client::new();
    for _ in 0..100 {
        let t = origin.elapsed().as_micros() as u64;
        writer.post(&url).header("content-type", "application/json").body(format!("{{\"t\":{t}}}")).send().await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut l = std::mem::take(&mut *latencies.lock().unwrap());
    l.sort_unstable();
    let pct = |p: f64| l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or(0) as f64 / 1000.0;
    Ok((pct(0.50), pct(0.99), l.len()))
}

/// Appends `mib` MiB in 1 MiB appends, then one reader reads it all from `-1`.
async fn catch_up(http: &reqwest::Client, base: &str, run_id: u32, mib: usize) -> Result<f64> {
    let url = format!("{base}/v1/stream/catch-up-{run_id}");
    create(http, &url, "application/octet-stream").await?;
    let block = bytes::Bytes::from(vec![7u8; 1 << 20]);
    for _ in 0..mib {
        let res = http.post(&url).header("content-type", "application/octet-stream").body(block.clone()).send().await?;
        if !res.status().is_success() {
            return Err(format!("append to {url}: {}", res.status()).into());
        }
    }
    let started = Instant::now();
    let mut offset = "-1".to_owned();
    let mut total = 0usize;
    loop {
        let res = http.get(format!("{url}?offset={offset}")).send().await?;
        let up_to_date = res.headers().get("stream-up-to-date").is_some();
        offset = res.headers()["stream-next-offset"].to_str()?.to_owned();
        let mut res = res;
        while let Some(chunk) = res.chunk().await? {
            total += chunk.len();
        }
        if up_to_date {
            break;
        }
    }
    if total != mib << 20 {
        return Err(format!("read {total} bytes of {}", mib << 20).into());
    }
    Ok(total as f64 / 1e6 / started.elapsed().as_secs_f64())
}
