//! The examples' OpenAPI documents (issue 35).
//!
//! - Snapshots: each example's document is checked in as `tests/openapi/<example>.json` and
//!   compared exactly. After a change that should alter them, regenerate with
//!   `NEST_UPDATE_SNAPSHOTS=1 cargo test --test openapi snapshots` and review the diff.
//! - Each example serves its document at `GET /openapi.json`, the same as `app.openapi()`, and
//!   a docs page at `GET /docs`.
//! - Validity: every document validates against the official OpenAPI 3.2 JSON Schema (the OpenAPI
//!   Initiative's, as shipped by PyPI's `openapi-spec-validator`) and openapi-spec-validator's
//!   own 3.2 checks (`tests/openapi/validate.py`).
//! - Contract: schemathesis (PyPI) exercises the chat example's JSON routes against its document
//!   over a real socket and must find 0 failures.
//!
//! The Python tools are installed into a venv at `target/openapi-venv` (pinned versions, see
//! [`PACKAGES`]) the first time; without `python3` (or its `venv`) the two tool tests skip loudly
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
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/openapi/{name}.json"))
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
        "{}\nregenerate with `NEST_UPDATE_SNAPSHOTS=1 cargo test --test openapi snapshots` and \
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/openapi-venv");
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp/openapi");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (name, app) in apps() {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, pretty(&app.openapi().unwrap())).unwrap();
        files.push(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi/validate.py");
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
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp/schemathesis");
    // Every check, a fixed seed; `/events` is left out: a stream that never ends is not a
    // response schemathesis can read (its document is checked by the validation test).
    let out = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .args(["run", &url, "--checks", "all", "--seed", "35"])
            .args(["--max-examples", "100", "--exclude-path", "/events"])
            .arg("--report-dir")
            .arg(reports)
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
