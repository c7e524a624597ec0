//! `durable`: the Durable Streams server of `nest-durable` (memory store) against the protocol's
//! Node reference server (`@durable-streams/server` 0.3.7, in memory, compression off), each in
//! its own process, driven by the same client:
//!
//! - appends/s to one stream and spread over 10,000 streams (64-byte bodies, 32 keep-alive
//!   connections of a raw HTTP/1.1 client);
//! - SSE live delivery to 1,000 readers of one stream: p50/p99 from the append to each reader;
//! - catch-up throughput of a 100 MiB stream (one reader following `Stream-Next-Offset`).
//!
//! Each server is pinned to core 0 (nest with one tokio worker; Node is single-threaded) and the
//! load generator to core 1, as in the other rows.
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

use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

const REFERENCE: &str = "@durable-streams/server@0.3.7";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve-nest") {
        // As the other rows of BENCHMARKS.md: one worker, on the server's core.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        return runtime.block_on(serve_nest(args.get(1).map_or(Ok(0), |p| p.parse())?));
    }
    // The load generator on core 1, each server on core 0 (`taskset`, when there is one).
    if taskset() && std::env::var_os("DURABLE_BENCH_PINNED").is_none() {
        let status = Command::new("taskset")
            .args(["-c", "1"])
            .arg(std::env::current_exe()?)
            .args(&args)
            .env("DURABLE_BENCH_PINNED", "1")
            .status()?;
        std::process::exit(status.code().unwrap_or(1));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args.iter().any(|a| a == "--quick")))
}

fn taskset() -> bool {
    Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `program` on core 0 when `taskset` is there.
fn on_server_core(program: impl AsRef<std::ffi::OsStr>) -> Command {
    if taskset() {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0"]).arg(program);
        cmd
    } else {
        Command::new(program)
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

/// Starts one of the servers.
type Start = fn() -> Result<Server>;

struct Server {
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
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("durable-bench")
}

fn start_nest() -> Result<Server> {
    let port = free_port()?;
    let child = on_server_core(std::env::current_exe()?)
        .args(["serve-nest", &port.to_string()])
        .stdout(Stdio::null())
        .spawn()?;
    Ok(Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    })
}

fn start_reference() -> Result<Server> {
    let dir = bench_dir();
    std::fs::create_dir_all(&dir)?;
    if !dir
        .join("node_modules/@durable-streams/server/package.json")
        .exists()
    {
        let status = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--save-exact",
                "--prefix",
            ])
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
    let child = on_server_core("node")
        .current_dir(&dir)
        .args(["reference.mjs", &port.to_string()])
        .stdout(Stdio::null())
        .spawn()?;
    Ok(Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    })
}

async fn ready(http: &reqwest::Client, base: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if http
            .head(format!("{base}/v1/stream/ready-probe"))
            .send()
            .await
            .is_ok()
        {
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
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let rounds = if quick { 1 } else { 3 };
    let starts: [(&str, Start); 2] = [
        ("nest-durable (memory)", start_nest),
        ("Node reference 0.3.7 (memory)", start_reference),
    ];
    let mut runs: Vec<Vec<Row>> = vec![Vec::new(), Vec::new()];
    // Each round runs both servers, fresh, in turn.
    for round in 0..rounds {
        for (i, (name, start)) in starts.iter().enumerate() {
            let server = start()?;
            ready(&http, &server.base).await?;
            let row = workloads(&http, &server.base, quick).await?;
            eprintln!("round {round}, {name}: {row:?}");
            runs[i].push(row);
        }
    }
    let rows: Vec<(&str, Row)> = starts
        .iter()
        .zip(&runs)
        .map(|((name, _), r)| (*name, median(r)))
        .collect();
    let now = httpdate_now();
    let mut table = format!(
        "## 8. Durable Streams: nest-durable against the Node reference server\n\n\
         Generated by `cargo run --release -p nest-bench --bin durable` (run by `scripts/bench`) on {now}. \
         The same client drives both servers: appends of 64-byte bodies from 32 keep-alive connections of a raw HTTP/1.1 client for 5 s, \
         to one stream and round-robin over 10,000 streams; 1,000 SSE readers of one JSON stream (`offset=now&live=sse`) and 100 appends 10 ms apart, \
         latency from the append's start to each delivery; catch-up of a 100 MiB binary stream (100 appends of 1 MiB) by one reader following `Stream-Next-Offset`. \
         The reference is `@durable-streams/server` 0.3.7 (`DurableStreamTestServer`, in memory, compression off); \
         nest-durable is the `MemoryStore` with default limits except 256 MiB per stream.\n\n\
         Median of {rounds} round(s); each round starts both servers fresh. Server on core 0 (nest: one tokio worker), load generator on core 1.\n\n\
         | server | appends/s, one stream | appends/s, 10,000 streams | SSE live p50 | SSE live p99 | deliveries | catch-up of 100 MiB |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (name, r) in &rows {
        table.push_str(&format!(
            "| {name} | {:.0} | {:.0} | {:.2} ms | {:.2} ms | {} | {:.0} MB/s |\n",
            r.one_stream, r.spread, r.p50_ms, r.p99_ms, r.delivered, r.catch_up_mb_s
        ));
    }
    if let [(_, nest), (_, node)] = &rows[..] {
        table.push_str(&format!(
            "\nnest / reference: {:.1}× appends/s to one stream, {:.1}× to 10,000 streams, {:.1}× lower SSE p99, {:.1}× catch-up.\n",
            nest.one_stream / node.one_stream,
            nest.spread / node.spread,
            node.p99_ms / nest.p99_ms,
            nest.catch_up_mb_s / node.catch_up_mb_s
        ));
    }
    println!("{table}");
    std::fs::write(bench_dir().join("BENCHMARKS-durable.md"), &table)?;
    Ok(())
}

/// The median of each figure over the rounds.
fn median(rows: &[Row]) -> Row {
    let med = |f: fn(&Row) -> f64| {
        let mut v: Vec<f64> = rows.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Row {
        one_stream: med(|r| r.one_stream),
        spread: med(|r| r.spread),
        p50_ms: med(|r| r.p50_ms),
        p99_ms: med(|r| r.p99_ms),
        delivered: med(|r| r.delivered as f64) as usize,
        catch_up_mb_s: med(|r| r.catch_up_mb_s),
    }
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
    row.one_stream = appends(std::slice::from_ref(&one), Duration::from_secs(secs)).await?;

    let mut urls = Vec::with_capacity(streams);
    for i in 0..streams {
        urls.push(format!("{base}/v1/stream/spread-{run_id}-{i}"));
    }
    for chunk in urls.chunks(64) {
        let created = chunk.iter().map(|u| create(http, u, "text/plain"));
        futures_util::future::try_join_all(created).await?;
    }
    row.spread = appends(&urls, Duration::from_secs(secs)).await?;

    let (p50, p99, delivered) = fan_out(base, run_id, readers).await?;
    (row.p50_ms, row.p99_ms, row.delivered) = (p50, p99, delivered);

    row.catch_up_mb_s = catch_up(http, base, run_id, mib).await?;
    Ok(row)
}

async fn create(http: &reqwest::Client, url: &str, content_type: &str) -> Result<()> {
    let res = http
        .put(url)
        .header("content-type", content_type)
        .send()
        .await?;
    if !res.status().is_success() {
        return Err(format!("PUT {url}: {}", res.status()).into());
    }
    Ok(())
}

/// 32 writers, each on its own keep-alive connection (a raw HTTP/1.1 client, so that the client
/// costs little of the two cores the server shares with it), append 64-byte bodies for `time`,
/// each cycling through its share of `urls`.
async fn appends(urls: &[String], time: Duration) -> Result<f64> {
    const WRITERS: usize = 32;
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + time;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let done = done.clone();
        let mine: Vec<(String, String)> = urls
            .iter()
            .skip(w % urls.len())
            .step_by(WRITERS.min(urls.len()))
            .map(|u| {
                let rest = u.strip_prefix("http://").unwrap_or(u);
                let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                (host.to_owned(), path.to_owned())
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut sock = tokio::net::TcpStream::connect(&mine[0].0).await?;
            sock.set_nodelay(true)?;
            let mut buf = Vec::with_capacity(4096);
            let mut i = 0;
            while Instant::now() < deadline {
                let (host, path) = &mine[i % mine.len()];
                i += 1;
                let request = format!(
                    "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n{}",
                    "x".repeat(64)
                );
                sock.write_all(request.as_bytes()).await?;
                if read_response(&mut sock, &mut buf).await? {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<_, std::io::Error>(())
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64
        / started.elapsed().as_secs_f64().max(time.as_secs_f64()))
}

/// Reads one response (head, and a body of `Content-Length` or chunked); whether it was 2xx.
async fn read_response(
    sock: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    buf.clear();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if sock.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let ok = head.get(9..10) == Some("2");
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    if let Some(length) = length {
        while buf.len() < head_end + length {
            if sock.read_buf(buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    } else if head.contains("transfer-encoding: chunked") {
        while !buf[head_end..].ends_with(b"0\r\n\r\n") {
            if sock.read_buf(buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
    Ok(ok)
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
            let Ok(mut res) = http.get(format!("{url}?offset=now&live=sse")).send().await else {
                return;
            };
            let mut buf = String::new();
            let mut announced = false;
            let mut got = 0;
            while let Ok(Ok(Some(chunk))) =
                tokio::time::timeout(Duration::from_secs(10), res.chunk()).await
            {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let event: String = buf.drain(..end + 2).collect();
                    let data: Vec<&str> = event
                        .lines()
                        .filter_map(|l| l.strip_prefix("data:"))
                        .collect();
                    if event.starts_with("event: control") || event.contains("\nevent: control") {
                        if !announced {
                            announced = true;
                            ready.add_permits(1);
                        }
                        continue;
                    }
                    let now = origin.elapsed().as_micros() as u64;
                    if let Ok(serde_json::Value::Array(items)) =
                        serde_json::from_str(&data.join("\n"))
                    {
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
        writer
            .post(&url)
            .header("content-type", "application/json")
            .body(format!("{{\"t\":{t}}}"))
            .send()
            .await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut l = std::mem::take(&mut *latencies.lock().unwrap());
    l.sort_unstable();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    Ok((pct(0.50), pct(0.99), l.len()))
}

/// Appends `mib` MiB in 1 MiB appends, then one reader reads it all from `-1`.
async fn catch_up(http: &reqwest::Client, base: &str, run_id: u32, mib: usize) -> Result<f64> {
    let url = format!("{base}/v1/stream/catch-up-{run_id}");
    create(http, &url, "application/octet-stream").await?;
    let block = bytes::Bytes::from(vec![7u8; 1 << 20]);
    for _ in 0..mib {
        let res = http
            .post(&url)
            .header("content-type", "application/octet-stream")
            .body(block.clone())
            .send()
            .await?;
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

/// Now, as the report's date (`2026-12-05 03:43 UTC`), from the system clock.
fn httpdate_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3_600,
        rest % 3_600 / 60
    )
}
