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
