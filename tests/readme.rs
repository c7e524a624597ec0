//! The READMEs' commands and dependency blocks work as printed:
//!
//! - every `cargo …` command (in a shell block or inline) names a package, example, test, bench
//!   and features that exist, with the features a target requires (`--features cli` for the
//!   `nest-sse` binary, `--features auth` for the rooms example);
//! - every dependency block names a crate meant for crates.io, at the workspace's version, with
//!   features it has;
//! - the TLS section's `openssl` command makes a certificate rustls accepts as a server's;
//! - a crate outside the workspace, made from the README alone (its dependency lines, the
//!   Quickstart as `src/main.rs`, the testing section's test as `tests/events.rs`), compiles and
//!   passes its test. Only crates.io is replaced, by `[patch.crates-io]` to this checkout.
//!
//! Run: `cargo test -p nest-tests --test readme`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The workspace root (this package is `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The READMEs a user reads: the workspace's and each crate's.
fn readmes() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root()).unwrap() {
        let readme = entry.unwrap().path().join("README.md");
        if readme.is_file() {
            files.push(readme);
        }
    }
    files.sort();
    files
}

/// A fenced code block: its info string (`sh`, `toml`, `rust,no_run`) and its text.
#[derive(Debug)]
struct Block {
    info: String,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let mut text = String::new();
        for line in lines.by_ref() {
            if line.trim_start().starts_with("```") {
                break;
            }
            text.push_str(line);
            text.push('\n');
        }
        out.push(Block {
            info: info.trim().to_owned(),
            text,
        });
    }
    out
}

/// `cargo metadata` of the workspace: packages by name.
fn packages() -> &'static BTreeMap<String, Value> {
    static PACKAGES: std::sync::OnceLock<BTreeMap<String, Value>> = std::sync::OnceLock::new();
    PACKAGES.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ])
            .current_dir(root())
            .output()
            .expect("cargo metadata");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
        meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap().to_owned(), p.clone()))
            .collect()
    })
}

fn package_at(path: &Path) -> &'static Value {
    let manifest = root().join(path).join("Cargo.toml");
    packages()
        .values()
        .find(|p| Path::new(p["manifest_path"].as_str().unwrap()) == manifest)
        .unwrap_or_else(|| panic!("no package at {}", path.display()))
}

fn targets<'a>(package: &'a Value, kind: &str) -> Vec<&'a Value> {
    package["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == kind))
        .collect()
}

/// Every `cargo` command in `text`: shell lines (continuations joined) and inline code spans.
fn cargo_commands(markdown: &str) -> Vec<String> {
    let mut commands = Vec::new();
    for block in blocks(markdown) {
        if !matches!(block.info.as_str(), "sh" | "bash" | "console" | "shell") {
            continue;
        }
        let joined = block.text.replace("\\\n", " ");
        for line in joined.lines() {
            let line = line.split(" #").next().unwrap().trim();
            if let Some(at) = line.find("cargo ") {
                commands.push(line[at..].trim_end_matches('&').trim().to_owned());
            }
        }
    }
    // Inline code spans that are cargo commands (`cargo run -p … -- URL`).
    for span in markdown.split('`').skip(1).step_by(2) {
        let span = span.replace('\n', " ");
        // `cargo …`, or `VAR=value cargo …`.
        if let Some(at) = span.find("cargo ") {
            if span[..at].split_whitespace().all(|w| w.contains('=')) {
                commands.push(span[at..].to_owned());
            }
        }
    }
    commands
}

/// Checks one cargo command against the workspace; `Err` says what is wrong.
fn check_command(command: &str, default_package: &str) -> Result<(), String> {
    // Only what comes before a lone `--` is cargo's.
    let words: Vec<&str> = command
        .split_whitespace()
        .take_while(|w| *w != "--")
        .collect();
    let sub = words.get(1).copied().unwrap_or_default();
    if !matches!(sub, "run" | "test" | "bench" | "build" | "install") {
        return Ok(());
    }
    let mut package = None;
    let mut features = Vec::new();
    let mut all_features = false;
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    let mut i = 2;
    while i < words.len() {
        let next = words.get(i + 1).copied();
        match words[i] {
            "-p" | "--package" => {
                package = next.map(|p| packages().get(p).ok_or(format!("no package {p}")));
                i += 1;
            }
            "--path" => {
                package = next.map(|p| Ok(package_at(Path::new(p))));
                i += 1;
            }
            "--features" | "-F" => {
                features.extend(next.unwrap_or_default().split(',').map(str::to_owned));
                i += 1;
            }
            "--all-features" => all_features = true,
            // `cargo install nest-sse-client`: the crate from crates.io, this workspace's.
            word if sub == "install" && packages().contains_key(word) => {
                package = Some(Ok(&packages()[word]));
            }
            kind @ ("--example" | "--test" | "--bench" | "--bin") => {
                wanted.push((kind.trim_start_matches('-'), next.unwrap_or_default()));
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    let package = match package {
        Some(found) => found?,
        None => packages()
            .get(default_package)
            .ok_or(format!("no package {default_package}"))?,
    };
    let name = package["name"].as_str().unwrap();
    for feature in &features {
        let feature = feature.rsplit('/').next().unwrap();
        if package["features"].get(feature).is_none() {
            return Err(format!("{name} has no feature {feature:?}"));
        }
    }
    // `cargo run -p P` / `cargo install` with no target named: P's only binary.
    if wanted.is_empty() && matches!(sub, "run" | "install") {
        let bins = targets(package, "bin");
        match bins.as_slice() {
            [bin] => wanted.push(("bin", bin["name"].as_str().unwrap())),
            [] => return Err(format!("{name} has no binary to run")),
            _ => return Err(format!("{name} has several binaries: name one with --bin")),
        }
    }
    for (kind, target) in wanted {
        let kind = if kind == "example" { "example" } else { kind };
        let found = targets(package, kind)
            .into_iter()
            .find(|t| t["name"] == target)
            .ok_or(format!("{name} has no {kind} {target:?}"))?;
        let required = found["required-features"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for feature in required {
            let feature = feature.as_str().unwrap();
            if !all_features
                && !features
                    .iter()
                    .any(|f| f.rsplit('/').next() == Some(feature))
            {
                return Err(format!(
                    "{name}'s {kind} {target} requires --features {feature}"
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn every_cargo_command_names_real_packages_targets_and_features() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for readme in readmes() {
        let text = std::fs::read_to_string(&readme).unwrap();
        // A crate's README is read in its folder, but cargo commands run from the workspace
        // root; a command without -p means the root package.
        for command in cargo_commands(&text) {
            checked += 1;
            eprintln!("{}: {command}", readme.display());
            if let Err(why) = check_command(&command, "nest-web") {
                wrong.push(format!("{}: `{command}`: {why}", readme.display()));
            }
        }
    }
    assert!(checked >= 15, "only {checked} cargo commands found");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The checker itself finds the mistakes it is for.
#[test]
fn the_command_checker_finds_missing_features_and_targets() {
    for (command, why) in [
        ("cargo install nest-sse-client", "requires --features cli"),
        (
            "cargo run -p nest-sse-client -- URL",
            "requires --features cli",
        ),
        ("cargo run --example rooms", "requires --features auth"),
        ("cargo run --example nope", "no example"),
        ("cargo run --example sse --features tsl", "no feature"),
        ("cargo test -p nest-core --test nope", "no test"),
        ("cargo bench -p nest-nope", "no package"),
    ] {
        let err = check_command(command, "nest-web").expect_err(command);
        assert!(err.contains(why), "{command}: {err}");
    }
    for command in [
        "cargo run -p nest-sse-client --features cli -- URL",
        "cargo run --example rooms --features auth",
        "cargo install --path nest-sse-client --features cli",
        "cargo install nest-sse-client --features cli",
        "cargo test -p nest-tests --test readme",
    ] {
        check_command(command, "nest-web").unwrap_or_else(|e| panic!("{command}: {e}"));
    }
}

/// A dependency block's crate names, versions and features.
fn dependencies(block: &str) -> Vec<(String, String, Vec<String>)> {
    let doc: toml::Table = block.parse().unwrap_or_else(|e| panic!("{e}\n{block}"));
    let mut out = Vec::new();
    for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
        for (name, spec) in doc
            .get(table)
            .and_then(|t| t.as_table())
            .into_iter()
            .flatten()
        {
            let (version, features) = match spec {
                toml::Value::String(version) => (version.clone(), Vec::new()),
                toml::Value::Table(spec) => (
                    spec.get("version")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    spec.get("features")
                        .and_then(|f| f.as_array())
                        .into_iter()
                        .flatten()
                        .map(|f| f.as_str().unwrap().to_owned())
                        .collect(),
                ),
                other => panic!("{name} = {other}"),
            };
            out.push((name.clone(), version, features));
        }
    }
    out
}

#[test]
fn every_dependency_block_names_published_crates_with_real_features() {
    let mut ours = 0;
    for readme in readmes() {
        let text = std::fs::read_to_string(&readme).unwrap();
        for block in blocks(&text).into_iter().filter(|b| b.info == "toml") {
            for (name, version, features) in dependencies(&block.text) {
                let Some(package) = packages().get(&name) else {
                    assert!(
                        !name.starts_with("nest"),
                        "{}: {name} is not a crate of this workspace (the facade is nest-web)",
                        readme.display()
                    );
                    continue;
                };
                ours += 1;
                let publish = &package["publish"];
                assert!(
                    publish.is_null() || publish.as_array().is_some_and(|r| !r.is_empty()),
                    "{}: {name} is not published",
                    readme.display()
                );
                let have = package["version"].as_str().unwrap();
                let req = version.trim_start_matches(['^', '=']);
                assert!(
                    !req.is_empty() && have.starts_with(req),
                    "{}: {name} = {version:?}, the workspace has {have}",
                    readme.display()
                );
                for feature in features {
                    assert!(
                        package["features"].get(&feature).is_some(),
                        "{}: {name} has no feature {feature:?}",
                        readme.display()
                    );
                }
            }
        }
    }
    assert!(
        ours >= 2,
        "only {ours} dependency lines on this workspace's crates"
    );
}

/// The root README's block that follows `intro` (the first block after it).
fn block_after(intro: &str, info: &str) -> String {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let at = text
        .find(intro)
        .unwrap_or_else(|| panic!("the README no longer says {intro:?}"));
    blocks(&text[at..])
        .into_iter()
        .find(|b| b.info == info)
        .unwrap_or_else(|| panic!("no {info} block after {intro:?}"))
        .text
}

/// The TLS section's `openssl` command makes a certificate that nest serves and a rustls client
/// accepts (a CA certificate would fail with `CaUsedAsEndEntity`).
#[tokio::test]
async fn the_openssl_command_makes_a_certificate_rustls_accepts() {
    if Command::new("openssl").arg("version").output().is_err() {
        nest::test_util::skip(
            "the_openssl_command_makes_a_certificate_rustls_accepts",
            "openssl is not installed",
        );
        return;
    }
    let block = block_after("With your own:", "sh").replace("\\\n", " ");
    let openssl = block
        .lines()
        .find(|l| l.trim_start().starts_with("openssl "))
        .expect("an openssl line");
    let dir = root().join("target/tmp/readme-openssl");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new("sh")
        .args(["-c", openssl])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{openssl}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let tls = nest::server::TlsConfig::from_pem_files(dir.join("cert.pem"), dir.join("key.pem"))
        .expect("nest loads the certificate and key");
    struct Hello;
    impl nest::prelude::Controller for Hello {
        fn routes(r: &mut nest::prelude::Routes<Self>) {
            r.get("/", |_: std::sync::Arc<Self>| async { "hello" });
        }
    }
    let server = nest::prelude::NestApp::new()
        .controller(Hello)
        .bind_tls(([127, 0, 0, 1], 0), tls)
        .await
        .unwrap();
    let pem = std::fs::read(dir.join("cert.pem")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/", server.local_addr().port());
    let res = client
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e:?}"));
    assert_eq!(res.text().await.unwrap(), "hello");
    server.shutdown(std::time::Duration::from_secs(1)).await;
}

/// A crate made from the README alone compiles, and its test passes.
#[test]
fn a_crate_made_from_the_readme_passes_its_test() {
    let dir = root().join("target/tmp/readme-crate");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("tests")).unwrap();

    let deps = block_after("## Use it in your project", "toml");
    let dev_deps = block_after("## Testing SSE end to end", "toml");
    let root = root();
    // Exactly the README's lines; only crates.io is replaced by this checkout (`[workspace]`
    // makes the crate its own workspace, though it sits under this one's target/).
    let manifest = format!(
        "[package]\nname = \"readme-crate\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
         publish = false\n\n{deps}\n{dev_deps}\n[workspace]\n\n\
         [patch.crates-io]\nnest-web = {{ path = {root:?} }}\n"
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(
        dir.join("src/main.rs"),
        block_after("## Quickstart", "rust,no_run"),
    )
    .unwrap();
    std::fs::write(
        dir.join("tests/events.rs"),
        block_after("The test, as\n`tests/events.rs`:", "rust"),
    )
    .unwrap();
    // The workspace's lock file: the same versions as this build, so the shared target
    // directory already holds most of them (and nothing is downloaded).
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();

    // target/<profile>/deps/<this test> → target/
    let target = std::env::current_exe()
        .unwrap()
        .ancestors()
        .nth(3)
        .expect("the test binary is in target/<profile>/deps")
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["test", "--offline", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cargo test in {}:\n{stdout}\n{stderr}",
        dir.display()
    );
    assert!(
        stdout.contains("test my_event_has_an_id_and_a_retry_and_resumes ... ok")
            || stdout.contains("1 passed"),
        "the README's test ran:\n{stdout}"
    );
}

/// Each example's default port (`ListenEnv::from_env(PORT)`; the CORS example's page on the next
/// one), as the README's table lists it, and no two collide, nor with a `PORT=` in a README
/// command: the examples and the README's commands can run side by side.
#[test]
fn the_examples_default_ports_do_not_collide() {
    let mut ports: BTreeMap<u16, String> = BTreeMap::new();
    let mut claim = |port: u16, who: String| {
        if let Some(other) = ports.insert(port, who.clone()) {
            panic!("port {port}: {other} and {who}");
        }
    };
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut examples = 0;
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let source = std::fs::read_to_string(&path).unwrap();
        let Some(at) = source.find("ListenEnv::from_env(") else {
            panic!("examples/{name}.rs does not read HOST and PORT with ListenEnv::from_env");
        };
        let rest = &source[at + "ListenEnv::from_env(".len()..];
        let port: u16 = rest[..rest.find(')').unwrap()].parse().unwrap();
        examples += 1;
        claim(port, format!("the {name} example"));
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `cargo run --example {name}")))
            .unwrap_or_else(|| panic!("the README's Examples table has no row for {name}"));
        let listed = row.split('|').nth(2).unwrap().trim();
        if name == "cors" {
            claim(port + 1, "the cors example's page".into());
            assert_eq!(listed, format!("{port}, {}", port + 1), "{row}");
        } else {
            assert_eq!(listed, port.to_string(), "{row}");
        }
    }
    assert!(examples >= 6, "only {examples} examples");
    for readme in readmes() {
        let text = std::fs::read_to_string(&readme).unwrap();
        for word in text.split_whitespace() {
            if let Some(port) = word
                .strip_prefix("PORT=")
                .and_then(|p| p.parse::<u16>().ok())
            {
                if let Some(owner) = ports.get(&port) {
                    // `PORT=3001 cargo run --example chat` names the chat's own default.
                    let line = text.lines().find(|l| l.contains(word)).unwrap();
                    let own = owner
                        .strip_prefix("the ")
                        .and_then(|o| o.strip_suffix(" example"))
                        .is_some_and(|name| line.contains(&format!("--example {name}")));
                    assert!(own, "{}: `{line}` takes {owner}'s port", readme.display());
                }
            }
        }
    }
}
