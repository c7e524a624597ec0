//! No secret in logs (issue 34): a token sent in the query string (`?access_token=`, opt-in)
//! never appears in the tracing output (every span and event at TRACE, spans with their
//! fields), in a metric's labels, or in an error body, whether it is accepted, refused (401),
//! not allowed (403) or sent along a malformed query (400).
//!
//! This binary installs the process's tracing subscriber and metrics recorder: one test only.
//!
//! Run: `cargo test -p nest-tests --test rooms_redaction`.

#[path = "../examples/rooms.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod rooms;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics_util::debugging::DebuggingRecorder;
use nest::auth::Grant;
use nest::sse_client::reqwest::{Client, StatusCode};
use tracing_subscriber::fmt::format::FmtSpan;

const SECRET: &[u8] = b"a test secret of thirty-two bytes";

/// A writer into a shared buffer: what the subscriber printed.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_string_token_is_in_no_log_span_metric_label_or_error_body() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this binary");

    let hub = rooms::hub();
    let auth = rooms::authenticator(SECRET, true).unwrap();
    let server = rooms::app(auth.clone(), hub.clone(), &rooms::Settings::default())
        .unwrap()
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    let client = Client::new();

    let grant = Grant::new("ada")
        .subscribe(["rooms/a"])
        .publish(["rooms/a"]);
    let token = auth.issue(&grant).unwrap();
    let token = token.as_str();
    let signature = token.rsplit('.').next().unwrap().to_owned();
    let forged = format!("{}.{}", token.rsplit_once('.').unwrap().0, "A".repeat(43));
    let mut secrets = vec![token.to_owned(), signature, forged.clone()];
    secrets.push(token.split('.').nth(1).unwrap().to_owned()); // the payload too

    // Accepted: a post and a stream that gets it.
    let res = client
        .post(format!("{base}/rooms/a/messages?access_token={token}"))
        .json(&serde_json::json!({ "text": "hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let mut stream = client
        .get(format!("{base}/rooms/a/events?x=1&access_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(std::str::from_utf8(&first).unwrap().contains("hello"));
    drop(stream);

    // Refused, not allowed, malformed: the error bodies name no secret.
    let cases = [
        (
            format!("/rooms/a/events?access_token={forged}"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            format!("/rooms/b/events?access_token={token}"),
            StatusCode::FORBIDDEN,
        ),
        (
            format!("/rooms/a/events?access_token={token}&lastEventId=1&lastEventId=2"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/nowhere?access_token={token}"),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (path, status) in cases {
        let res = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), status, "{path}");
        let head = format!("{:?}", res.headers());
        let body = res.text().await.unwrap();
        for secret in &secrets {
            assert!(
                !body.contains(secret.as_str()),
                "{status}: the body shows a secret: {body}"
            );
            assert!(
                !head.contains(secret.as_str()),
                "{status}: a header shows a secret: {head}"
            );
        }
    }

    // The stream's end is logged when the server notices the client left.
    let started = Instant::now();
    while hub.stats("rooms/a").subscribers > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the stream never ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.shutdown(Duration::from_secs(1)).await;

    let logs = logs.text();
    // The capture works: the request spans are there, with their paths, at every level.
    assert!(logs.contains("path=/rooms/a/events"), "{logs}");
    assert!(
        logs.contains("TRACE") && logs.contains("sse_stream"),
        "{logs}"
    );
    assert!(logs.contains("request refused: credentials"), "{logs}");
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret in the logs:\n{logs}"
        );
    }
    assert!(
        !logs.contains("access_token"),
        "not even the parameter's name:\n{logs}"
    );

    let snapshot = snapshotter.snapshot().into_vec();
    assert!(!snapshot.is_empty());
    let mut labels = Vec::new();
    for (key, ..) in &snapshot {
        for label in key.key().labels() {
            labels.push(format!("{}={}", label.key(), label.value()));
        }
    }
    assert!(
        labels.iter().any(|l| l == "route=/rooms/:room/events"),
        "{labels:?}"
    );
    for label in &labels {
        assert!(!label.contains("access_token"), "{label}");
        for secret in &secrets {
            assert!(
                !label.contains(secret.as_str()),
                "a secret in a metric label: {label}"
            );
        }
    }

    // What an app's own access log prints.
    let uri: http::Uri = format!("/rooms/a/events?x=1&access_token={token}")
        .parse()
        .unwrap();
    assert_eq!(
        auth.redact(&uri),
        "/rooms/a/events?x=1&access_token=REDACTED"
    );
}
