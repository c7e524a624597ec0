//! The `nest-sse` binary against a raw HTTP/1.1 server: every flag and exit
//! status.

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use support::{head, sse_head, write, Server, Step};

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
    let start = Instant::now();
    let out = nest_sse(&["--json", "--timeout", "0.5", &server.url("/")]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(start.elapsed() >= Duration::from_millis(500));
    assert_eq!(stdout(&out).lines().count(), 1);
}

#[tokio::test]
async fn reconnects_by_default_with_last_event_id() {
    let server = Server::start(vec![
        vec![sse_head(), write("retry: 10\nid: 1\ndata: a\n\n")],
        vec![sse_head(), write("data: b\n\n"), Step::Hold],
    ])
    .await;
    let out = nest_sse(&["--json", "--max-events", "2", &server.url("/")]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(r#""data":"b","id":"1""#),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("reconnecting"), "{}", stderr(&out));
    assert_eq!(server.requests()[1].header("last-event-id"), Some("1"));
}

#[tokio::test]
async fn a_bad_status_exits_1_naming_it() {
    let server = Server::start(vec![vec![head("404 Not Found", Some("text/plain"))]]).await;
    let out = nest_sse(&[&server.url("/")]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("nest-sse: error: unexpected status 404 Not Found"),
        "{err}"
    );
}

#[tokio::test]
async fn a_bad_content_type_exits_1_naming_it() {
    let server = Server::start(vec![vec![head("200 OK", Some("application/json"))]]).await;
    let out = nest_sse(&[&server.url("/")]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("`application/json`"), "{err}");
}

#[tokio::test]
async fn a_connection_failure_exits_1() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = nest_sse(&[&format!("http://{addr}/")]).await;
    assert_eq!(out.status.code(), Some(1));
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
async fn a_broken_stream_without_reconnect_exits_1() {
    let server = Server::start(vec![vec![
        write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"),
        write("9\r\ndata: a\n\n\r\n20\r\ncut"),
    ]])
    .await;
    let out = nest_sse(&["--no-reconnect", &server.url("/")]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), "event: message\ndata: a\n\n");
}
