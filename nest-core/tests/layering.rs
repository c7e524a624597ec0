//! The architecture as a test: nest-core's modules depend one way. Each top-level module may
//! use only the modules listed after it (the order of the crate docs' "Layers"); an import of a
//! module above fails this test with the file and the import.

use std::path::{Path, PathBuf};

/// From the top (what a request meets first) to the ground.
const LAYERS: &[&str] = &[
    "test_util",
    "server",
    "app",
    "openapi_routes",
    "routing",
    "controller",
    "openapi",
    "handler",
    "health",
    "sse",
    "extract",
    "context",
    "response",
    "config",
    "error",
    "metrics",
    "id",
    "body",
];

/// The crate root's re-exports, and the layer each comes from.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("NestApp", "app"),
    ("NestService", "app"),
    ("Controller", "controller"),
    ("CanActivate", "controller"),
    ("RouteConfig", "controller"),
    ("RouteKind", "controller"),
    ("Routes", "controller"),
    ("Error", "error"),
    ("Html", "response"),
    ("HttpException", "response"),
    ("IntoResponse", "response"),
    ("Json", "response"),
    ("Redirect", "response"),
    ("Response", "response"),
    ("Server", "server"),
    ("ServerHandle", "server"),
    ("ServerConfig", "config"),
    ("Request", "body"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/sse/hub/mod.rs` → `sse`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_owned())
}

/// The `crate::name` paths a file's code (not its comments) uses.
fn crate_imports(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
            rest = after;
        }
    }
    found
}

#[test]
fn modules_depend_downward_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut upward = Vec::new();
    let mut checked = 0;
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        if module == "lib" {
            continue; // the crate root declares and re-exports everything
        }
        let Some(own) = rank(&module) else {
            panic!(
                "{}: module `{module}` is not in LAYERS: place it",
                file.display()
            );
        };
        let text = std::fs::read_to_string(file).unwrap();
        for import in crate_imports(&text) {
            // Crate-root items (`crate::Request`, `crate::NestApp`…) are re-exports: count
            // them as the module they come from.
            let layer = ROOT_ITEMS
                .iter()
                .find(|(item, _)| *item == import)
                .map_or(import.as_str(), |(_, layer)| *layer);
            if let Some(theirs) = rank(layer) {
                checked += 1;
                if theirs < own {
                    upward.push(format!(
                        "{}: `{module}` uses `crate::{import}`",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(
        checked > 50,
        "the scan found only {checked} imports: is it reading the sources?"
    );
    assert!(
        upward.is_empty(),
        "imports that point upward:\n{}",
        upward.join("\n")
    );
}

/// Lines of code in `text` as tokei counts them: not blank, not a comment (`//`, `///`, `//!`),
/// and not test code (a trailing `#[cfg(test)] mod tests { … }`).
fn code_lines(text: &str) -> usize {
    let mut lines = text.lines().peekable();
    let mut count = 0;
    while let Some(line) = lines.next() {
        let next_is_tests = lines
            .peek()
            .is_some_and(|next| next.starts_with("mod tests {"));
        if line.starts_with("#[cfg(test)]") && next_is_tests {
            break;
        }
        let code = line.trim();
        if !code.is_empty() && !code.starts_with("//") {
            count += 1;
        }
    }
    count
}

#[test]
fn code_lines_skip_comments_blanks_and_tests() {
    let text = "//! doc\n\nfn a() {}\n    // note\n/// b\nfn b() {}\n#[cfg(test)]\nmod tests {\n    fn t() {}\n}\n";
    assert_eq!(code_lines(text), 2);
}

/// Issue 32: nest-core is the HTTP framework and the SSE stream; the hub, its backends and
/// resumable streams are nest-hub. Its code (not tests, comments or blank lines) stays under
/// 8,000 lines, and nothing of Redis is in its dependency tree. Tests are `tests.rs`,
/// `*_tests.rs`, a trailing `mod tests`, and `test_util.rs`: the helpers for tests behind the
/// `test-util` feature (a test server, skip rules, wakers that count), not the framework.
#[test]
fn nest_core_is_the_framework_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let total: usize = files
        .iter()
        .filter(|file| {
            let name = file.file_name().unwrap().to_string_lossy();
            name != "tests.rs" && name != "test_util.rs" && !name.ends_with("_tests.rs")
        })
        .map(|file| code_lines(&std::fs::read_to_string(file).unwrap()))
        .sum();
    assert!(
        (3_000..8_000).contains(&total),
        "nest-core has {total} lines of code (limit 8,000): does it belong in a crate of its own?"
    );
    let tree = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "nest-core",
            "--all-features",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        tree.status.success(),
        "{}",
        String::from_utf8_lossy(&tree.stderr)
    );
    let tree = String::from_utf8(tree.stdout).unwrap();
    assert!(tree.contains("hyper v"), "not a dependency tree:\n{tree}");
    let redis: Vec<&str> = tree.lines().filter(|l| l.contains("redis")).collect();
    assert!(redis.is_empty(), "nest-core depends on Redis: {redis:?}");
}
