//! End to end: `examples/sse.rs` (the seed) served on a real socket, read by nest-sse-client; and
//! every example's `main` run as a child process (HOST, PORT, SIGTERM).

#[path = "../examples/sse.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod example;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nest::sse_client::testing::TestStream;
use nest::sse_client::{EventSource, SseItem};
use nest::{NestService, Server};
use serde_json::json;
use tokio::sync::mpsc;

const PERIOD: Duration = Duration::from_millis(20);

#[tokio::test]
async fn sse_gives_hello_world_messages() {
    let server = example::app(PERIOD)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let mut stream = TestStream::connect(format!("http://{}/sse", server.local_addr())).unwrap();
    for event in stream.collect(3).await.unwrap() {
        assert_eq!(event.event, "message");
        assert_eq!(
            event.data_json::<serde_json::Value>().unwrap(),
            json!({"hello": "world"})
        );
        assert_eq!(event.id, "");
    }
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn sse2_gives_my_event_with_ids_and_retry() {
    let server = example::app(PERIOD)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let mut stream = TestStream::connect(format!("http://{}/sse2", server.local_addr())).unwrap();
    for expected_id in ["1", "2", "3"] {
        let event = stream.expect_event("myEvent").await.unwrap();
        assert_eq!(event.id, expected_id);
        assert_eq!(event.retry, Some(5000));
        assert_eq!(
            event.data_json::<serde_json::Value>().unwrap(),
            json!({"hello": "world"})
        );
    }
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn sse2_continues_after_the_last_event_id() {
    let server = example::app(PERIOD)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let source = EventSource::builder(format!("http://{}/sse2", server.local_addr()))
        .last_event_id("41")
        .build()
        .unwrap();
    let mut stream = TestStream::new(source);
    assert_eq!(stream.expect_event("myEvent").await.unwrap().id, "42");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn sse2_survives_the_largest_last_event_id() {
    let server = example::app(PERIOD)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let source = EventSource::builder(format!("http://{}/sse2", server.local_addr()))
        .last_event_id(u64::MAX.to_string())
        .build()
        .unwrap();
    let mut stream = TestStream::new(source);
    assert_eq!(stream.expect_event("myEvent").await.unwrap().id, "1");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn index_page_opens_both_streams() {
    let server = example::app(PERIOD)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let res = reqwest::get(format!("http://{}/", server.local_addr()))
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    let page = res.text().await.unwrap();
    assert!(page.contains("new EventSource('/sse')") && page.contains("new EventSource('/sse2')"));
    assert!(page.contains("addEventListener('myEvent'"));
    server.shutdown(Duration::from_secs(1)).await;
}

/// The restart test's `retry:` (the example's own is 5 s).
const RETRY: Duration = Duration::from_millis(100);

/// Serves `app` on `addr` again, retrying while the old socket is being released.
async fn rebind(addr: SocketAddr, app: &NestService) -> Server {
    let started = Instant::now();
    loop {
        match Server::bind(addr, app.clone()).await {
            Ok(server) => return server,
            Err(err) if started.elapsed() < Duration::from_secs(10) => {
                eprintln!("rebinding {addr}: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("cannot bind {addr} again: {err}"),
        }
    }
}

#[tokio::test]
async fn after_a_server_restart_the_client_reconnects_with_last_event_id() {
    let server = example::app_with(PERIOD, RETRY)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut stream = TestStream::connect(format!("http://{addr}/sse2"))
        .unwrap()
        .timeout(Duration::from_secs(15));
    stream.expect_open().await.unwrap();
    stream.expect_event("myEvent").await.unwrap();
    stream.expect_event("myEvent").await.unwrap();
    server.shutdown(Duration::from_secs(1)).await;
    // The server is gone (its listener closed first, so no reconnection reaches it); the client
    // waits `retry: 100` between attempts and reaches the new one.
    let service = example::app_with(PERIOD, RETRY).into_service().unwrap();
    let restarted = rebind(addr, &service).await;
    // What the first connection delivered (more than two events, if some were on their way
    // when it shut down), up to the next open: the reconnection.
    let mut last = None;
    loop {
        match stream.next_item().await.unwrap() {
            Ok(SseItem::Message(event)) => last = Some(event.id.parse::<u64>().unwrap()),
            Ok(SseItem::Open) => break,
            _ => {}
        }
    }
    let last = last.unwrap_or(2);
    let next = stream.expect_event("myEvent").await.unwrap();
    assert_eq!(
        next.id,
        (last + 1).to_string(),
        "the new server resumed after the last id the client saw"
    );
    assert_eq!(stream.get_mut().last_event_id(), next.id);
    assert_eq!(
        service.live_sse_streams(),
        1,
        "the reconnection is a request to the restarted server"
    );
    restarted.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn cross_origin_requests_get_cors_headers() {
    let server = example::app(PERIOD)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let res = client
        .get(format!("http://{}/sse", server.local_addr()))
        .header("origin", "http://localhost:9999")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    // A preflight on a path with no route is answered by the CORS layer, not 404.
    let res = client
        .request(
            reqwest::Method::OPTIONS,
            format!("http://{}/nowhere", server.local_addr()),
        )
        .header("origin", "http://localhost:9999")
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    server.shutdown(Duration::from_secs(1)).await;
}

// --- the examples' `main`: HOST, PORT and SIGTERM, in child processes ----------------------------

/// The examples whose `main` the tests run.
const EXAMPLES: [&str; 3] = ["sse", "chat", "cors"];

/// An example's binary. The first call builds them all with cargo (a no-op when they are up to
/// date, as after `cargo test --workspace --all-features`, whose feature set this build repeats
/// so that no dependency is built twice), so each is the current source.
fn example_binary(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "--workspace", "--all-features"]);
        for example in EXAMPLES {
            build.args(["--example", example]);
        }
        let status = build.status().expect("cargo build --example");
        assert!(status.success(), "cargo build of the examples: {status}");
    });
    assert!(EXAMPLES.contains(&name), "{name} is not in EXAMPLES");
    // target/<profile>/deps/<this test> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("examples").join(name))
        .expect("the test binary is in target/<profile>/deps")
}

/// A running example, its stdout read line by line; killed (by its pid) if the test fails.
struct Example {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Example {
    fn start(name: &str, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(example_binary(name))
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run the {name} example: {e}"));
        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            text
        });
        Self {
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    /// What it wrote to stderr; call once it exited.
    fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .map(|reader| reader.join().unwrap())
            .unwrap_or_default()
    }

    /// The next line of its output; `None` when it ended.
    async fn line(&mut self) -> Option<String> {
        tokio::time::timeout(Duration::from_secs(30), self.lines.recv())
            .await
            .expect("timed out waiting for a line from the example")
    }

    /// Waits until it exits on its own.
    async fn exit(&mut self) -> ExitStatus {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("timed out waiting for the example to exit")
    }

    /// Sends SIGTERM once the process handles it (`run_until_signal` installs tokio's handler
    /// in a task of its own: before that, SIGTERM would kill it), and waits for it to exit.
    async fn terminate(&mut self) -> ExitStatus {
        let status = format!("/proc/{}/status", self.child.id());
        tokio::time::timeout(Duration::from_secs(10), async {
            while !handles_sigterm(&std::fs::read_to_string(&status).unwrap_or_default()) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("timed out waiting for the example to handle SIGTERM");
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        self.exit().await
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether `/proc/<pid>/status` says the process catches SIGTERM (bit 15 of `SigCgt`).
fn handles_sigterm(status: &str) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (15 - 1)) != 0)
}

/// The address in `line` after `prefix` (`http://ADDR/…`).
fn address_after(line: &str, prefix: &str) -> SocketAddr {
    let rest = line
        .split_once(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} not in {line:?}"))
        .1;
    let addr = rest
        .strip_prefix("http://")
        .or_else(|| rest.strip_prefix("https://"))
        .unwrap_or(rest);
    let end = addr.find(['/', ',', ' ']).unwrap_or(addr.len());
    addr[..end]
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// The examples listen where `HOST` and `PORT` say (127.0.0.2 and port 0: a free port, not
/// their defaults 127.0.0.1:3000 / 3001) and stop on SIGTERM with exit status 0. The examples
/// here are built with the workspace's features, `tls` among them, so `sse` serves HTTPS with a
/// development certificate it makes itself (its SANs name HOST) and prints where it is.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_sse_and_chat_examples_listen_on_host_and_port_and_stop_on_sigterm() {
    for (name, banner, default_port, scheme) in [
        ("sse", "nest SSE example: open ", 3000, "https"),
        ("chat", "nest chat example: open ", 3001, "http"),
    ] {
        let mut example = Example::start(name, &[("HOST", "127.0.0.2"), ("PORT", "0")]);
        let line = loop {
            let line = example.line().await.expect("the example's address");
            if line.contains(banner) {
                break line;
            }
        };
        assert!(
            line.contains(&format!("open {scheme}://")),
            "{name}: {line}"
        );
        let addr = address_after(&line, banner);
        assert_eq!(addr.ip().to_string(), "127.0.0.2", "{name}: HOST");
        assert_ne!(addr.port(), default_port, "{name}: PORT");
        let client = if scheme == "https" {
            let hint = example.line().await.expect("the certificate's line");
            let file = hint
                .split_once(
                    "development certificate (self-signed, for localhost and this address): ",
                )
                .unwrap_or_else(|| panic!("{hint}"))
                .1;
            let pem = std::fs::read(file.trim()).unwrap();
            let trust = example.line().await.expect("how to trust it");
            assert!(
                trust.contains(&format!("curl --cacert {}", file.trim())),
                "{trust}"
            );
            reqwest::Client::builder()
                .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
                .build()
                .unwrap()
        } else {
            reqwest::Client::new()
        };
        let res = client
            .get(format!("{scheme}://{addr}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name}: its page");
        let status = example.terminate().await;
        assert!(status.success(), "{name}: {status}\n{}", example.stderr());
    }
}

/// `HOST=::1` (an IPv6 address, as `ss` and cloud platforms print it) is an address, not an
/// `AddrParseError`.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_ipv6_host_works() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        nest::test_util::skip("an_ipv6_host_works", "this machine has no IPv6 loopback");
        return;
    }
    let banner = "nest chat example: open ";
    let mut example = Example::start("chat", &[("HOST", "::1"), ("PORT", "0")]);
    let line = loop {
        let line = example.line().await.expect("the example's address");
        if line.contains(banner) {
            break line;
        }
    };
    let addr = address_after(&line, banner);
    assert_eq!(addr.ip().to_string(), "::1", "{line}");
    let res = reqwest::get(format!("http://{addr}/")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(example.terminate().await.success());
}

/// A HOST or PORT that does not parse, or half of a TLS pair, is an error naming the variable,
/// never a default.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_invalid_host_is_an_error_not_a_default() {
    for (env, needle) in [
        (
            &[("HOST", "not an address"), ("PORT", "0")][..],
            "is not an IP address",
        ),
        (&[("PORT", "http")][..], "is not a port number"),
        (
            &[("TLS_CERT", "cert.pem"), ("PORT", "0")][..],
            "TLS_KEY is not",
        ),
    ] {
        let mut example = Example::start("chat", env);
        assert!(!example.exit().await.success(), "{env:?}");
        assert_eq!(example.line().await, None, "no address printed");
        let stderr = example.stderr();
        assert!(stderr.contains(needle), "{env:?}: {stderr}");
    }
}

/// Logs go to stderr, without colour codes when stderr is not a terminal (a pipe here).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn logs_have_no_colour_codes_in_a_pipe() {
    let banner = "nest chat example: open ";
    let mut example = Example::start(
        "chat",
        &[("HOST", "127.0.0.2"), ("PORT", "0"), ("RUST_LOG", "info")],
    );
    while let Some(line) = example.line().await {
        if line.contains(banner) {
            break;
        }
    }
    assert!(example.terminate().await.success());
    let stderr = example.stderr();
    assert!(
        stderr.contains("shutting down"),
        "the shutdown is logged: {stderr:?}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "an escape code in a pipe: {stderr:?}"
    );
}

/// The CORS example serves its API on `PORT` and its page on `PORT + 1`, both on `HOST`. Two free
/// ports side by side are looked for by binding them; another process may take one before the
/// example binds it, so a failed start is tried again on other ports.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_cors_example_listens_on_port_and_the_next_one() {
    let banner = "nest CORS example: API on ";
    for attempt in 1..=5 {
        let port = loop {
            let api = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
            let port = api.local_addr().unwrap().port();
            if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.2", port + 1)).is_ok() {
                break port;
            }
        };
        let mut example = Example::start(
            "cors",
            &[("HOST", "127.0.0.2"), ("PORT", &port.to_string())],
        );
        let Some(line) = example.line().await else {
            eprintln!(
                "attempt {attempt}: the example could not bind ports {port} and {}",
                port + 1
            );
            continue;
        };
        assert!(line.contains(banner), "{line}");
        let api = address_after(&line, banner);
        let page = address_after(&line, "open the page at ");
        assert_eq!(api, SocketAddr::from(([127, 0, 0, 2], port)), "{line}");
        assert_eq!(page, SocketAddr::from(([127, 0, 0, 2], port + 1)), "{line}");
        let res = reqwest::get(format!("http://{page}/")).await.unwrap();
        assert_eq!(res.status(), 200, "the page");
        let status = example.terminate().await;
        assert!(status.success(), "{status}\n{}", example.stderr());
        return;
    }
    panic!("the CORS example could not bind two free ports in 5 attempts");
}
