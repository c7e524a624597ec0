//! The examples' OpenAPI documents (issue 35).
//!
//! - Snapshots: each example's document is checked in as `tests/openapi/<example>.json` and
//!   compared exactly. After a change that should alter them, regenerate with
//!   `NEST_UPDATE_SNAPSHOTS=1 cargo test -p nest-tests --test openapi snapshots` and review the diff.
//! - Each example serves its document at `GET /openapi.json`, the same as `app.openapi()`, and
//!   a docs page at `GET /docs`.
//! - Validity: every document validates against the official OpenAPI 3.2 JSON Schema (the OpenAPI
//!   Initiative's, as shipped by PyPI's `openapi-spec-validator`) and openapi-spec-validator's
//!   own 3.2 checks (`tests/openapi/validate.py`).
//! - Contract: schemathesis (PyPI) exercises the chat example's JSON routes against its document
//!   over a real socket and must find 0 failures.
//! - Events: what each example's streams send, read by nest-sse-client, conforms to the route's
//!   `itemSchema` and, for typed events, the data to the event type's `contentSchema`
//!   (`tests/openapi/check_events.py`).
//!
//! The Python tools are installed into a venv at `target/openapi-venv` (pinned versions, see
//! [`PACKAGES`]) the first time; without `python3` (or its `venv`) the three tool tests skip loudly
//! (stderr and `NEST_SKIP_LOG`), and under `CI` they fail.

#[path = "../examples/chat.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    reason = "the example's `main` is not run here"
)]
mod chat;

#[path = "../examples/llm.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod llm;

#[path = "../examples/sse.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod sse;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use nest::NestApp;
use serde_json::Value;

/// What the tool tests install, pinned: the validator whose 0.9 line added OpenAPI 3.2 (and
/// ships the official 3.2 schema), the JSON Schema validator, and schemathesis.
const PACKAGES: &[&str] = &[
    "openapi-spec-validator==0.9.0",
    "jsonschema==4.26.0",
    "schemathesis==4.32.5",
];

/// The examples' apps, by the name of their snapshot.
fn apps() -> Vec<(&'static str, NestApp)> {
    vec![
        ("sse", sse::app(Duration::from_secs(1))),
        ("chat", chat::app(chat::hub())),
        ("llm", llm::app(Duration::from_millis(1))),
    ]
}

fn snapshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("openapi/{name}.json"))
}

fn pretty(document: &Value) -> String {
    serde_json::to_string_pretty(document).unwrap() + "\n"
}

#[tokio::test]
async fn snapshots() {
    let update = std::env::var_os("NEST_UPDATE_SNAPSHOTS").is_some();
    let mut stale = Vec::new();
    for (name, app) in apps() {
        let document = pretty(&app.openapi().unwrap());
        let path = snapshot_path(name);
        if update {
            std::fs::write(&path, &document).unwrap();
            continue;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        if checked_in != document {
            stale.push(format!(
                "{}: differs from the document (first difference at byte {})",
                path.display(),
                first_difference(&checked_in, &document)
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nregenerate with `NEST_UPDATE_SNAPSHOTS=1 cargo test -p nest-tests --test openapi snapshots` and \
         review the diff",
        stale.join("\n")
    );
}

fn first_difference(a: &str, b: &str) -> usize {
    a.bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

#[tokio::test]
async fn each_example_serves_its_document_and_a_docs_page() {
    let client = reqwest::Client::new();
    for (name, app) in apps() {
        let service = app.into_service().unwrap();
        let expected = service.openapi().clone();
        assert!(
            expected["paths"].get("/openapi.json").is_none(),
            "{name}: the document lists itself"
        );
        let server = nest::Server::bind(([127, 0, 0, 1], 0), service)
            .await
            .unwrap();
        let base = format!("http://{}", server.local_addr());
        let res = client
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name}");
        assert_eq!(res.headers()["content-type"], "application/json", "{name}");
        let served: Value = res.json().await.unwrap();
        assert_eq!(served, expected, "{name}: served document");

        let res = client.get(format!("{base}/docs")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{name}");
        let page = res.text().await.unwrap();
        assert!(
            page.contains(r#"data-url="/openapi.json""#),
            "{name}: {page}"
        );
        server.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn typed_events_are_item_schemas() {
    let document = sse::app(Duration::from_secs(1)).openapi().unwrap();
    let events = |path: &str| {
        document["paths"][path]["get"]["responses"]["200"]["content"]["text/event-stream"]
            ["itemSchema"]
            .clone()
    };
    // `/sse2` returns `TypedSseBody<Sse2Event>`: one branch, `myEvent` with `Hello` as JSON.
    let typed = events("/sse2");
    assert_eq!(typed["oneOf"][0]["properties"]["event"]["const"], "myEvent");
    let data = &typed["oneOf"][0]["properties"]["data"];
    assert_eq!(data["contentMediaType"], "application/json");
    assert_eq!(data["contentSchema"]["$ref"], "#/components/schemas/Hello");
    // `/sse` returns an untyped `SseBody`: any events, no branches.
    let untyped = events("/sse");
    assert_eq!(untyped["properties"]["data"]["type"], "string");
    assert!(untyped.get("oneOf").is_none(), "{untyped}");
    // `Last-Event-ID` is `sse2`'s header parameter.
    assert_eq!(
        document["paths"]["/sse2"]["get"]["parameters"][0]["name"],
        "Last-Event-ID"
    );
}

// ===== the Python tools =====

/// The venv's python, with [`PACKAGES`] installed (once per process, and kept in `target/`
/// across runs: a marker file names what was installed).
fn python() -> Result<PathBuf, String> {
    static INSTALLED: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(python) = &*installed {
        return Ok(python.clone());
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/openapi-venv");
    let python = dir.join("bin/python");
    let marker = dir.join("nest-installed.txt");
    let wanted = PACKAGES.join("\n");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        if !python.exists() {
            let status = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&dir)
                .status()
                .map_err(|e| format!("python3 not found ({e})"))?;
            if !status.success() {
                return Err(format!("`python3 -m venv` failed ({status})"));
            }
        }
        let status = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PACKAGES)
            .status()
            .map_err(|e| format!("the venv's python does not run ({e})"))?;
        if !status.success() {
            return Err(format!(
                "`pip install {}` failed ({status})",
                PACKAGES.join(" ")
            ));
        }
        std::fs::write(&marker, &wanted).map_err(|e| e.to_string())?;
    }
    *installed = Some(python.clone());
    Ok(python)
}

fn skip(test: &str, why: &str) {
    nest::test_util::skip(
        test,
        &format!("{why}; it needs python3 with venv and PyPI (pip)"),
    );
}

#[tokio::test]
async fn documents_validate_against_the_official_openapi_3_2_schema() {
    let python = match tokio::task::spawn_blocking(python).await.unwrap() {
        Ok(python) => python,
        Err(why) => return skip("OpenAPI 3.2 validation of the examples' documents", &why),
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tmp/openapi");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (name, app) in apps() {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, pretty(&app.openapi().unwrap())).unwrap();
        files.push(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/validate.py");
    let out = Command::new(&python)
        .arg(script)
        .args(&files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "validation failed:\n{text}");
    assert_eq!(
        text.matches("valid OpenAPI 3.2").count(),
        files.len(),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_contract_failure_in_the_chat_example() {
    let python = match tokio::task::spawn_blocking(python).await.unwrap() {
        Ok(python) => python,
        Err(why) => return skip("schemathesis against the chat example", &why),
    };
    let schemathesis = python.with_file_name("schemathesis");
    let server = chat::app(chat::hub())
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let url = format!("http://{}/openapi.json", server.local_addr());
    // It runs in target/ so that its reports and cache (`.schemathesis/`) stay there.
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tmp/schemathesis");
    std::fs::create_dir_all(&reports).unwrap();
    // Every check, a fixed seed; `/events` is left out: a stream that never ends is not a
    // response schemathesis can read (its document is checked by the validation test).
    let out = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .args(["run", &url, "--checks", "all", "--seed", "35"])
            .args(["--max-examples", "100", "--exclude-path", "/events"])
            .arg("--report-dir")
            .arg(&reports)
            .current_dir(&reports)
            .env("NO_COLOR", "1")
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .output()
            .expect("schemathesis runs")
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    server.shutdown(Duration::from_secs(1)).await;
    assert!(out.status.success(), "schemathesis failed:\n{text}");
    // Each JSON route was exercised: 4 operations tested, and nothing failed.
    assert!(text.contains("Tested: 4"), "{text}");
    assert!(!text.contains("failure"), "{text}");
}

/// One event as a client parsed it, as the document's `itemSchema` describes events.
fn item(path: &str, method: &str, event: &nest::sse_client::Event) -> Value {
    let mut item = serde_json::json!({ "event": event.event, "data": event.data });
    if !event.id.is_empty() {
        item["id"] = Value::from(event.id.as_str());
    }
    if let Some(retry) = event.retry {
        item["retry"] = Value::from(retry);
    }
    serde_json::json!({ "path": path, "method": method, "item": item })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_events_conform_to_their_item_schemas() {
    use nest::sse_client::testing::TestStream;
    use nest::sse_client::EventSource;

    let python = match tokio::task::spawn_blocking(python).await.unwrap() {
        Ok(python) => python,
        Err(why) => return skip("the examples' events against their item schemas", &why),
    };
    let mut checks: Vec<(&str, Value, Vec<Value>)> = Vec::new();

    // sse: `/sse2` is typed (`myEvent` with `Hello`), `/sse` untyped.
    let app = || sse::app_with(Duration::from_millis(10), Duration::from_millis(100));
    let document = app().openapi().unwrap();
    let server = app().bind(([127, 0, 0, 1], 0)).await.unwrap();
    let mut events = Vec::new();
    for path in ["/sse2", "/sse"] {
        let url = format!("http://{}{path}", server.local_addr());
        let mut stream = TestStream::connect(url).unwrap();
        for event in stream.collect(2).await.unwrap() {
            events.push(item(path, "get", &event));
        }
    }
    server.shutdown(Duration::from_secs(1)).await;
    checks.push(("sse", document, events));

    // chat: a posted message comes back as `event: message` with a `ChatMessage`.
    let document = chat::app(chat::hub()).openapi().unwrap();
    let server = chat::app(chat::hub())
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    let mut stream = TestStream::connect(format!("{base}/events")).unwrap();
    stream.expect_open().await.unwrap();
    let posted = reqwest::Client::new()
        .post(format!("{base}/messages"))
        .json(&serde_json::json!({ "user": "ada", "text": "hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    let event = stream.expect_event("message").await.unwrap();
    server.shutdown(Duration::from_secs(1)).await;
    checks.push(("chat", document, vec![item("/events", "get", &event)]));

    // llm: `POST /chat` streams the answer's tokens.
    let document = llm::app(Duration::from_millis(1)).openapi().unwrap();
    let server = llm::app(Duration::from_millis(1))
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let source = EventSource::builder(format!("http://{}/chat", server.local_addr()))
        .method(nest::http::Method::POST)
        .build()
        .unwrap();
    let mut stream = TestStream::new(source);
    let events = stream.collect(3).await.unwrap();
    server.shutdown(Duration::from_secs(1)).await;
    let events = events.iter().map(|e| item("/chat", "post", e)).collect();
    checks.push(("llm", document, events));

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tmp/openapi");
    std::fs::create_dir_all(&dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/check_events.py");
    for (name, document, events) in checks {
        let document_path = dir.join(format!("{name}.json"));
        let events_path = dir.join(format!("{name}-events.json"));
        std::fs::write(&document_path, pretty(&document)).unwrap();
        std::fs::write(&events_path, pretty(&Value::Array(events))).unwrap();
        let out = Command::new(&python)
            .arg(&script)
            .arg(&document_path)
            .arg(&events_path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{name}: {text}");
        assert!(text.contains("conforms"), "{name}: {text}");
    }
}
