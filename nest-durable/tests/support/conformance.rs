//! Runs the official Durable Streams server conformance suite
//! (`@durable-streams/server-conformance-tests`, npm) against a nest server, with vitest.
//!
//! The suite is installed once into `target/durable-conformance` (`npm install --prefix`),
//! skipped when that version is already there. Its own CLI (`--run URL`) cannot find its test
//! file inside `node_modules` under vitest 4, so a two-line test file that calls
//! `runConformanceTests({ baseUrl })` is written next to it and run with `npx vitest run`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The suite's version: the target.
pub(crate) const SUITE_VERSION: &str = "0.3.6";
/// The vitest the suite is run with.
pub(crate) const VITEST_VERSION: &str = "4.1.12";

/// What vitest reported.
#[derive(Debug)]
pub(crate) struct SuiteResult {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
    pub(crate) skipped: u64,
    pub(crate) failures: Vec<String>,
}

fn dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("durable-conformance")
}

/// `npm` on PATH, or `None`.
pub(crate) fn npm() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|p| p.join("npm"))
        .find(|p| p.is_file())
}

fn installed(dir: &Path) -> bool {
    let manifest = dir.join("node_modules/@durable-streams/server-conformance-tests/package.json");
    std::fs::read_to_string(manifest)
        .is_ok_and(|text| text.contains(&format!("\"version\": \"{SUITE_VERSION}\"")))
        && dir.join("node_modules/.bin/vitest").exists()
}

/// Installs the suite (once) and returns its directory; `Err` says why it could not.
pub(crate) fn install() -> Result<PathBuf, String> {
    let dir = dir();
    if installed(&dir) {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let status = std::process::Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--save-exact",
            "--prefix",
        ])
        .arg(&dir)
        .arg(format!(
            "@durable-streams/server-conformance-tests@{SUITE_VERSION}"
        ))
        .arg(format!("vitest@{VITEST_VERSION}"))
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("npm install: {e}"))?;
    if !status.success() || !installed(&dir) {
        return Err(format!("npm install failed ({status})"));
    }
    Ok(dir)
}

/// Runs the suite against `base_url` (the server's origin; streams live under `/v1/stream`).
/// `name` tells the result files of two stores apart.
pub(crate) async fn run(
    dir: &Path,
    name: &str,
    base_url: &str,
    long_poll_timeout: Duration,
) -> SuiteResult {
    let test_file = format!("{name}.test.mjs");
    let source = format!(
        "import {{ runConformanceTests }} from \"@durable-streams/server-conformance-tests\"\n\
         runConformanceTests({{ baseUrl: {base_url:?}, longPollTimeoutMs: {} }})\n",
        long_poll_timeout.as_millis() * 2
    );
    std::fs::write(dir.join(&test_file), source).expect("write the suite's test file");
    let report = dir.join(format!("{name}.json"));
    let _ = std::fs::remove_file(&report);
    let mut child = tokio::process::Command::new("npx")
        .current_dir(dir)
        .args([
            "vitest",
            "run",
            &test_file,
            "--reporter=dot",
            "--reporter=json",
        ])
        .arg(format!("--outputFile.json={}", report.display()))
        .env("CI", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start npx vitest");
    // The suite takes about a minute; ten is a hang.
    match tokio::time::timeout(Duration::from_secs(600), child.wait()).await {
        Ok(status) => {
            status.expect("wait for vitest");
        }
        Err(_) => {
            let _ = child.kill().await;
            panic!("the conformance suite did not finish in 10 minutes");
        }
    }
    let text = std::fs::read_to_string(&report).expect("vitest wrote its JSON report");
    let json: serde_json::Value = serde_json::from_str(&text).expect("the report is JSON");
    let count = |key: &str| json[key].as_u64().unwrap_or(0);
    let mut failures = Vec::new();
    for file in json["testResults"].as_array().into_iter().flatten() {
        for test in file["assertionResults"].as_array().into_iter().flatten() {
            if test["status"] == "failed" {
                let message = test["failureMessages"][0]
                    .as_str()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("");
                failures.push(format!(
                    "{} :: {}",
                    test["fullName"].as_str().unwrap_or("?"),
                    message
                ));
            }
        }
    }
    SuiteResult {
        passed: count("numPassedTests"),
        failed: count("numFailedTests"),
        skipped: count("numPendingTests") + count("numTodoTests"),
        failures,
    }
}

/// Every default test of the suite: 338 tests, of which the 6 subscription tests are opt-in.
pub(crate) const EXPECTED_PASSED: u64 = 332;

/// Serves `store` at `/v1/stream` on 127.0.0.1, runs the suite against it (from `dir`), prints
/// the counts and each failure, and asserts 0 failed and [`EXPECTED_PASSED`] passed.
pub(crate) async fn check(
    dir: &Path,
    name: &str,
    store: impl Into<nest_durable::AnyStore>,
    long_poll: Duration,
) {
    let app = nest_core::NestApp::new()
        .controller(nest_durable::DurableStreams::new(store).at("/v1/stream"));
    let server = app.bind(([127, 0, 0, 1], 0)).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let started = std::time::Instant::now();
    let result = run(dir, name, &base, long_poll).await;
    eprintln!(
        "durable streams conformance ({name}): {} passed, {} failed, {} skipped in {:.0?}",
        result.passed,
        result.failed,
        result.skipped,
        started.elapsed()
    );
    for failure in &result.failures {
        eprintln!("  FAILED {failure}");
    }
    server.shutdown(Duration::from_secs(1)).await;
    assert_eq!(result.failed, 0, "failures: {:#?}", result.failures);
    assert_eq!(result.passed, EXPECTED_PASSED);
}
