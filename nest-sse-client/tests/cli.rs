//! The `nest-sse` binary against a raw HTTP/1.1 server and a real nest app
//! (HTTP/2, HTTPS): every flag and every exit code.

mod support;

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use nest_core::prelude::*;
use nest_core::test_util::TestServer;
use support::{chunked_sse_head, empty_response, head, sse_head, write, Server, Step};

async fn nest_sse(args: &[&str]) -> Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_nest-sse"))
        .args(args)
        .kill_on_drop(true)
        .output();
    // A guard against a hanging binary; every test below ends by itself.
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("nest-sse did not exit within 30 s")
        .expect("nest-sse runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const STREAM: &str =
    ": hi\nevent: greet\nid: 7\nretry: 1500\ndata: hello\ndata: world\n\ndata: plain\n\n";

#[tokio::test]
async fn prints_events_and_exits_0_when_the_stream_ends() {
    let server = Server::start(vec![vec![sse_head(), write(STREAM)]]).await;
    let out = nest_sse(&["--no-reconnect", &server.url("/")]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "event: greet\nid: 7\nretry: 1500\ndata: hello\ndata: world\n\nevent: message\nid: 7\ndata: plain\n\n"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn json_prints_one_object_per_line() {
    let server = Server::start(vec![vec![sse_head(), write(STREAM)]]).await;
    let out = nest_sse(&["--json", "--no-reconnect", &server.url("/")]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        concat!(
            r#"{"event":"greet","data":"hello\nworld","id":"7","retry":1500}"#,
            "\n",
            r#"{"event":"message","data":"plain","id":"7","retry":null}"#,
            "\n"
        )
    );
}

#[tokio::test]
async fn headers_and_last_event_id_are_sent() {
    let server = Server::start(vec![vec![sse_head(), write("data: a\n\n")]]).await;
    let out = nest_sse(&[
        "-H",
        "X-One: 1",
        "--header",
        "Authorization:  Bearer t ",
        "--last-event-id",
        "41",
        "--no-reconnect",
        &server.url("/events"),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let r = &server.requests()[0];
    assert_eq!(r.header("x-one"), Some("1"));
    assert_eq!(r.header("authorization"), Some("Bearer t"));
    assert_eq!(r.header("last-event-id"), Some("41"));
    assert_eq!(r.header("accept"), Some("text/event-stream"));
    // A browser's EventSource fetches with cache mode "no-store": both headers.
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    assert_eq!(stdout(&out), "event: message\nid: 41\ndata: a\n\n");
}

#[tokio::test]
async fn a_bad_header_is_a_usage_error() {
    let out = nest_sse(&["-H", "no colon", "http://127.0.0.1:1/"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Name: value"), "{}", stderr(&out));
}

#[tokio::test]
async fn method_and_body() {
    let server = Server::start(vec![vec![sse_head(), write("data: a\n\n")]]).await;
    let out = nest_sse(&["-d", r#"{"q":1}"#, "--no-reconnect", &server.url("/chat")]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let server2 = Server::start(vec![vec![sse_head(), write("data: a\n\n")]]).await;
    let out2 = nest_sse(&["-X", "PUT", "--no-reconnect", &server2.url("/")]).await;
    assert!(out2.status.success(), "{}", stderr(&out2));
    let r = &server.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.body.as_slice()),
        ("POST", &br#"{"q":1}"#[..])
    );
    assert_eq!(server2.requests()[0].method, "PUT");
}

#[tokio::test]
async fn max_events_stops_an_endless_stream() {
    let server = Server::start(vec![vec![
        sse_head(),
        write("data: 1\n\ndata: 2\n\ndata: 3\n\n"),
        Step::Hold,
    ]])
    .await;
    let out = nest_sse(&["--json", "--max-events", "2", &server.url("/")]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 2, "{}", stdout(&out));
}

#[tokio::test]
async fn timeout_stops_an_endless_stream() {
    let server = Server::start(vec![vec![sse_head(), write("data: 1\n\n"), Step::Hold]]).await;
    let out = nest_sse(&["--json", "--timeout", "0.5", &server.url("/")]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 1);
    // The stream was held open: the run ended by the timeout, on the first
    // connection, not by an end and a reconnection.
    assert_eq!(server.requests().len(), 1);
    assert_eq!(stderr(&out), "");
}

#[tokio::test]
async fn reconnects_by_default_with_last_event_id_and_verbose_shows_how() {
    let head = "< HTTP/1.1 200 OK\n< content-type: text/event-stream\n< connection: close\n<\n";
    let reconnecting = "nest-sse: the server ended the stream; reconnecting";
    for (verbose, expected) in [
        (false, format!("{reconnecting}\n")),
        // The response heads, and the delay: the server's `retry`.
        (true, format!("{head}{reconnecting} in 10ms\n{head}")),
    ] {
        let server = Server::start(vec![
            vec![sse_head(), write("retry: 10\nid: 1\ndata: a\n\n")],
            vec![sse_head(), write("data: b\n\n"), Step::Hold],
        ])
        .await;
        let url = server.url("/");
        let mut args = vec!["--json", "--max-events", "2", &url];
        if verbose {
            args.push("--verbose");
        }
        let out = nest_sse(&args).await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).contains(r#""data":"b","id":"1""#),
            "{}",
            stdout(&out)
        );
        assert_eq!(stderr(&out), expected);
        assert_eq!(server.requests()[1].header("last-event-id"), Some("1"));
    }
}

// ===== exit codes =====

#[tokio::test]
async fn a_204_exits_0_with_a_note() {
    let server = Server::start(vec![
        vec![sse_head(), write("retry: 10\ndata: a\n\n")],
        vec![head("204 No Content", None)],
    ])
    .await;
    let out = nest_sse(&[&server.url("/")]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "event: message\nretry: 10\ndata: a\n\n");
    let err = stderr(&out);
    assert!(
        err.ends_with("nest-sse: the server answered 204 No Content: the stream is over\n"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_bad_status_exits_4_naming_it() {
    let server = Server::start(vec![vec![head("404 Not Found", Some("text/plain"))]]).await;
    let out = nest_sse(&[&server.url("/")]).await;
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("nest-sse: error: unexpected status 404 Not Found"),
        "{err}"
    );
}

#[tokio::test]
async fn a_503_before_the_stream_opened_exits_4_with_fail_fast() {
    let server = Server::start(vec![vec![head("503 Service Unavailable", None)]]).await;
    let out = nest_sse(&["--fail-fast", &server.url("/")]).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(server.requests().len(), 1);
}

/// A first connection answered 503 with `Retry-After` is tried again after it, as the README
/// says (and after the stream opened, the same).
#[tokio::test]
async fn a_503_before_the_stream_opened_is_retried_after_retry_after() {
    let server = Server::start(vec![
        vec![write(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )],
        vec![sse_head(), write("data: up\n\n"), Step::Hold],
    ])
    .await;
    let out = nest_sse(&["--max-events", "1", &server.url("/")]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "event: message\ndata: up\n\n");
    assert_eq!(server.requests().len(), 2);
    assert!(
        stderr(&out).contains("503"),
        "the 503 is reported: {}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_bad_content_type_exits_5_naming_it() {
    let server = Server::start(vec![vec![head("200 OK", Some("application/json"))]]).await;
    let out = nest_sse(&[&server.url("/")]).await;
    assert_eq!(out.status.code(), Some(5));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("`application/json`"), "{err}");
}

#[tokio::test]
async fn a_connection_failure_exits_3() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = nest_sse(&["--fail-fast", &format!("http://{addr}/")]).await;
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("nest-sse: error: connection failed: "),
        "{err}"
    );
    // The causes follow, each once, down to the OS error.
    assert!(err.contains("refused"), "{err}");
    assert_eq!(err.matches("connection failed").count(), 1, "{err}");
}

#[tokio::test]
async fn a_connection_failure_exits_3_with_no_reconnect() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = nest_sse(&["--no-reconnect", &format!("http://{addr}/")]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

/// A refused first connection is retried, as a browser does: the server comes up after the CLI
/// said it would reconnect (the signal; no sleep), and the stream is read.
#[tokio::test]
async fn a_refused_first_connection_is_retried() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_nest-sse"))
        .args(["--max-events", "1", &format!("http://{addr}/")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut errors = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let said = tokio::time::timeout(Duration::from_secs(30), errors.next_line())
        .await
        .expect("a line on stderr")
        .unwrap()
        .expect("a line on stderr");
    assert!(
        said.contains("refused") && said.contains("reconnecting"),
        "{said}"
    );
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let (mut socket, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .expect("the CLI connects again")
        .unwrap();
    let mut request = [0u8; 1024];
    let _ = socket.read(&mut request).await.unwrap();
    socket
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: up\n\n")
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("nest-sse exits after one event")
        .unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(stdout(&out), "event: message\ndata: up\n\n");
}

/// `nest-sse URL | head -2`: when the reader goes away, the CLI ends at once, quietly, with 0,
/// while the stream is quiet (not at the next event, with "Broken pipe").
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_closed_stdout_ends_the_run_quietly() {
    use tokio::io::AsyncBufReadExt;
    let server = Server::start(vec![vec![sse_head(), write("data: a\n\n"), Step::Hold]]).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_nest-sse"))
        .arg(server.url("/"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the first line")
        .unwrap();
    assert_eq!(first.as_deref(), Some("event: message"));
    drop(lines); // as `head` exits
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("nest-sse exits when its reader is gone, without another event")
        .unwrap();
    assert!(out.status.success(), "{:?}: {}", out.status, stderr(&out));
    assert_eq!(stderr(&out), "", "quietly");
}

#[tokio::test]
async fn a_broken_stream_without_reconnect_exits_3() {
    let server = Server::start(vec![vec![
        chunked_sse_head(),
        write("9\r\ndata: a\n\n\r\n20\r\ncut"),
    ]])
    .await;
    let out = nest_sse(&["--no-reconnect", &server.url("/")]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "event: message\ndata: a\n\n");
}

#[tokio::test]
async fn a_response_that_is_not_http_exits_6() {
    for garbage in [
        "SSE/1.0 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let server = Server::start(vec![vec![write(garbage)]]).await;
        let out = nest_sse(&["--no-reconnect", &server.url("/")]).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(6), "{garbage:?}: {err}");
        assert!(
            err.starts_with("nest-sse: error: invalid HTTP response: "),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_relative_url_is_a_usage_error() {
    let out = nest_sse(&["/events"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "nest-sse: error: invalid URL \"/events\": relative URL without a base\n"
    );
}

#[tokio::test]
async fn exit_codes_are_listed_in_help() {
    let out = nest_sse(&["--help"]).await;
    assert!(out.status.success());
    let help = stdout(&out);
    for line in [
        "  3  connection",
        "  4  HTTP status",
        "  5  content type",
        "  6  parse",
    ] {
        assert!(help.contains(line), "{line:?} in {help}");
    }
}

// ===== --comments, --verbose =====

#[tokio::test]
async fn comments_are_printed_with_the_flag() {
    let stream = ": keep-alive\ndata: a\n\n:\n";
    for (flags, expected) in [
        (&[][..], "event: message\ndata: a\n\n"),
        (&["--comments"][..], ": keep-alive\nevent: message\ndata: a\n\n: \n"),
        (
            &["--comments", "--json"][..],
            "{\"comment\":\"keep-alive\"}\n{\"event\":\"message\",\"data\":\"a\",\"id\":\"\",\"retry\":null}\n{\"comment\":\"\"}\n",
        ),
    ] {
        let server = Server::start(vec![vec![sse_head(), write(stream)]]).await;
        let url = server.url("/");
        let mut args = flags.to_vec();
        args.extend(["--no-reconnect", &url]);
        let out = nest_sse(&args).await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), expected, "{flags:?}");
    }
}

#[tokio::test]
async fn verbose_shows_a_failed_response_head() {
    let server = Server::start(vec![vec![empty_response(
        "401 Unauthorized",
        &[("WWW-Authenticate", "Bearer")],
    )]])
    .await;
    let out = nest_sse(&["-v", &server.url("/")]).await;
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert!(
        err.starts_with("< HTTP/1.1 401 Unauthorized\n< www-authenticate: Bearer\n"),
        "{err}"
    );
}

// ===== HTTP/2 and HTTPS, against nest =====

struct Greeter;

impl Controller for Greeter {
    fn routes(r: &mut Routes<Self>) {
        r.sse("/events", |_: Arc<Self>| async {
            let (writer, body) = get_sse_stream(SseOptions::new());
            writer
                .write(SseEvent::data("hi").event("greet"))
                .expect("a fresh stream takes an event");
            writer.close();
            body
        });
    }
}

fn greeter() -> NestApp {
    NestApp::new().controller(Greeter)
}

const GREETING: &str = "event: greet\ndata: hi\n\n";

#[tokio::test]
async fn http2_by_prior_knowledge_over_cleartext() {
    let server = TestServer::start(greeter()).await;
    for (flags, version) in [(&[][..], "HTTP/1.1"), (&["--http2"][..], "HTTP/2.0")] {
        let url = server.url("/events");
        let mut args = flags.to_vec();
        args.extend(["--verbose", "--no-reconnect", &url]);
        let out = nest_sse(&args).await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), GREETING);
        let err = stderr(&out);
        assert!(err.starts_with(&format!("< {version} 200 OK\n")), "{err}");
    }
    server.shutdown().await;
}

/// A nest app over HTTPS with a self-signed certificate, written to a file.
struct Https {
    server: nest_core::Server,
    cert: TempFile,
}

/// A file removed on drop.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Https {
    async fn start() -> Self {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let tls = nest_core::server::TlsConfig::from_pem(
            cert.cert.pem(),
            cert.signing_key.serialize_pem(),
        )
        .unwrap();
        let server = greeter().bind_tls(([127, 0, 0, 1], 0), tls).await.unwrap();
        let path = std::env::temp_dir().join(format!(
            "nest-sse-cli-{}-{}.pem",
            std::process::id(),
            server.local_addr().port()
        ));
        std::fs::write(&path, cert.cert.pem()).unwrap();
        Self {
            server,
            cert: TempFile(path),
        }
    }

    fn url(&self) -> String {
        format!("https://{}/events", self.server.local_addr())
    }
}

#[tokio::test]
async fn https_with_cacert_or_insecure_and_http2_by_alpn() {
    let https = Https::start().await;
    let url = https.url();
    let cert = https.cert.0.to_str().unwrap().to_owned();
    let cert = cert.as_str();

    let out = nest_sse(&["--no-reconnect", &url]).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "an unknown issuer: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("certificate"), "{}", stderr(&out));

    for flags in [
        &["--cacert", cert][..],
        &["--insecure"][..],
        &["-k", "--http2"][..],
    ] {
        let mut args = flags.to_vec();
        args.extend(["--verbose", "--no-reconnect", &url]);
        let out = nest_sse(&args).await;
        assert!(out.status.success(), "{flags:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), GREETING);
        // nest offers h2 by ALPN, and the CLI takes it.
        assert!(
            stderr(&out).starts_with("< HTTP/2.0 200 OK\n"),
            "{}",
            stderr(&out)
        );
    }
    https.server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_missing_cacert_file_is_a_usage_error() {
    let out = nest_sse(&["--cacert", "/nonexistent/ca.pem", "https://127.0.0.1:1/"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("nest-sse: error: --cacert /nonexistent/ca.pem: "),
        "{err}"
    );
}
