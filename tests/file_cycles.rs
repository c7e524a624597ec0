//! No file imports another that imports it back, in any crate of the workspace.
//!
//! Within a crate, each source file is a node; an edge goes from a file to each file whose items
//! it uses: a `use` of a path (`crate::…`, `super::…`, `self::…`, a child module) and inline
//! paths in code, each resolved to the file that *defines* the item (following `pub use`
//! re-exports). A `pub use` is a re-export, not a use: the facade pattern (a `mod.rs` naming
//! what its children define) is not a cycle. Comments and `#[cfg(test)]` modules are ignored.
//! A strongly connected group of two or more files fails the test, with every edge inside it.
//!
//! Run: `cargo test -p nest-tests --test file_cycles`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

type Module = Vec<String>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `src/` directories of the workspace's crates.
fn crate_sources() -> Vec<PathBuf> {
    let mut dirs = vec![root().join("src")];
    for entry in std::fs::read_dir(root()).unwrap() {
        let dir = entry.unwrap().path();
        if dir.join("Cargo.toml").is_file() && dir.join("src").is_dir() {
            dirs.push(dir.join("src"));
        }
    }
    dirs.sort();
    dirs
}

/// Every `.rs` file under `src` (but `bin/`) by module path: `sse/hub/mod.rs` → `[sse, hub]`.
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut out = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap().with_extension("");
        let mut parts: Module = rel
            .components()
            .map(|c| c.as_os_str().to_str().unwrap().to_owned())
            .collect();
        if parts.first().is_some_and(|p| p == "bin") {
            continue;
        }
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        out.insert(parts, file);
    }
    out
}

/// The code of a file without comments, with string and character literals emptied (a `{` or
/// `//` inside one is not code), and without `#[cfg(test)] mod … { … }` blocks.
fn code(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let boundary = i == 0 || !ident(chars[i - 1]);
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                if chars[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
            continue;
        }
        // Raw strings: r"…", r#"…"#, br"…", br#"…"#.
        if boundary && (c == 'r' || (c == 'b' && next == Some('r'))) {
            let mut j = i + if c == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                j += 1;
                loop {
                    if j >= chars.len() {
                        break;
                    }
                    if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    if chars[j] == '\n' {
                        out.push('\n');
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
                continue;
            }
        }
        // Strings and byte strings, with escapes.
        if c == '"' || (boundary && c == 'b' && next == Some('"')) {
            let mut j = i + if c == 'b' { 2 } else { 1 };
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' {
                    j += 1;
                }
                if chars.get(j) == Some(&'\n') {
                    out.push('\n');
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j + 1;
            continue;
        }
        // Character literals ('{', '\'', '\u{7b}'), not lifetimes ('a).
        if c == '\'' {
            let close = if next == Some('\\') {
                (i + 3..chars.len().min(i + 12)).find(|&j| chars[j] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(close) = close {
                out.push_str("' '");
                i = close + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    let test_mod = Regex::new(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{").unwrap();
    while let Some(found) = test_mod.find(&out) {
        let mut depth = 1;
        let mut end = out.len();
        for (i, c) in out[found.end()..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = found.end() + i + 1;
                break;
            }
        }
        out.replace_range(found.start()..end, "");
    }
    out
}

/// The paths a `use` tree names: `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<Vec<String>> {
    fn split_top(s: &str) -> Vec<&str> {
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (i, c) in s.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&s[start..]);
        parts
    }
    fn rec(prefix: &[String], s: &str, out: &mut Vec<Vec<String>>) {
        for part in split_top(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            if let Some(open) = part.find('{') {
                let mut head = prefix.to_vec();
                head.extend(
                    part[..open]
                        .split("::")
                        .filter(|s| !s.trim().is_empty())
                        .map(|s| s.trim().to_owned()),
                );
                rec(&head, &part[open + 1..part.rfind('}').unwrap()], out);
            } else {
                let part = part.split(" as ").next().unwrap().trim();
                let mut path = prefix.to_vec();
                path.extend(
                    part.split("::")
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
                if path.last().is_some_and(|l| l == "self" || l == "*") {
                    path.pop();
                }
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    rec(&[], tree, &mut out);
    out
}

struct Crate {
    files: BTreeMap<Module, PathBuf>,
    defs: BTreeMap<Module, BTreeSet<String>>,
    reexports: BTreeMap<Module, BTreeMap<String, Vec<String>>>,
    codes: BTreeMap<Module, String>,
}

impl Crate {
    fn read(src: &Path) -> Self {
        let files = modules(src);
        let def = Regex::new(
            r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+|unsafe\s+|const\s+)*(?:struct|enum|fn|trait|type|const|static|union|macro_rules!)\s+([A-Za-z_]\w*)",
        )
        .unwrap();
        let pub_use = Regex::new(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);").unwrap();
        let mut defs = BTreeMap::new();
        let mut reexports = BTreeMap::new();
        let mut codes = BTreeMap::new();
        for (module, file) in &files {
            let text = code(&std::fs::read_to_string(file).unwrap());
            defs.insert(
                module.clone(),
                def.captures_iter(&text).map(|c| c[1].to_owned()).collect(),
            );
            let mut names = BTreeMap::new();
            for c in pub_use.captures_iter(&text) {
                for path in expand(&c[1].replace('\n', " ")) {
                    if let Some(last) = path.last() {
                        names.insert(last.clone(), path);
                    }
                }
            }
            reexports.insert(module.clone(), names);
            codes.insert(module.clone(), text);
        }
        Self {
            files,
            defs,
            reexports,
            codes,
        }
    }

    /// The file that defines what `path` names, seen from `module`; `None` for other crates.
    fn resolve(&self, module: &Module, path: &[String], depth: usize) -> Option<Module> {
        let (mut current, mut rest): (Module, &[String]) = match path.first()?.as_str() {
            "crate" => (Vec::new(), &path[1..]),
            "self" => (module.clone(), &path[1..]),
            "super" => {
                let mut current = module.clone();
                let mut rest = path;
                while rest.first().is_some_and(|s| s == "super") {
                    current.pop();
                    rest = &rest[1..];
                }
                (current, rest)
            }
            first => {
                let mut child = module.clone();
                child.push(first.to_owned());
                if !self.files.contains_key(&child) {
                    return None;
                }
                (module.clone(), path)
            }
        };
        while let Some(next) = rest.first() {
            let mut child = current.clone();
            child.push(next.clone());
            if !self.files.contains_key(&child) {
                break;
            }
            current = child;
            rest = &rest[1..];
        }
        if !self.files.contains_key(&current) {
            return None; // a path into a module with no file here (a crate root elsewhere)
        }
        if let Some(name) = rest.first() {
            if !self.defs[&current].contains(name) && depth < 10 {
                if let Some(target) = self.reexports[&current].get(name) {
                    if let Some(found) = self.resolve(&current, target, depth + 1) {
                        return Some(found);
                    }
                }
            }
        }
        Some(current)
    }

    /// Each file's edges: the files it uses, with the path that makes each.
    fn edges(&self) -> BTreeMap<Module, BTreeMap<Module, String>> {
        let any_use = Regex::new(r"\buse\s+([^;]+);").unwrap();
        let pub_use = Regex::new(r"\bpub(?:\([^)]*\))?\s+use\s+[^;]+;").unwrap();
        let inline = Regex::new(r"(?:^|[^\w:])([a-z_]\w*(?:::[A-Za-z_]\w*)+)").unwrap();
        let mut edges: BTreeMap<Module, BTreeMap<Module, String>> = BTreeMap::new();
        for (module, text) in &self.codes {
            let mut add = |path: Vec<String>| {
                if let Some(target) = self.resolve(module, &path, 0) {
                    if &target != module {
                        edges
                            .entry(module.clone())
                            .or_default()
                            .entry(target)
                            .or_insert_with(|| path.join("::"));
                    }
                }
            };
            let private = pub_use.replace_all(text, "");
            for c in any_use.captures_iter(&private) {
                for path in expand(&c[1].replace('\n', " ")) {
                    add(path);
                }
            }
            let body = any_use.replace_all(&private, "");
            for c in inline.captures_iter(&body) {
                add(c[1].split("::").map(str::to_owned).collect());
            }
        }
        edges
    }
}

/// The strongly connected groups of two or more files (Tarjan).
fn cycles(
    nodes: &[Module],
    edges: &BTreeMap<Module, BTreeMap<Module, String>>,
) -> Vec<Vec<Module>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<Module, BTreeMap<Module, String>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        on: BTreeSet<Module>,
        next: usize,
        out: Vec<Vec<Module>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: &Module) {
            self.index.insert(v.clone(), self.next);
            self.low.insert(v.clone(), self.next);
            self.next += 1;
            self.stack.push(v.clone());
            self.on.insert(v.clone());
            let targets: Vec<Module> = self
                .edges
                .get(v)
                .map(|e| e.keys().cloned().collect())
                .unwrap_or_default();
            for w in targets {
                if !self.index.contains_key(&w) {
                    self.visit(&w);
                    let low = self.low[v].min(self.low[&w]);
                    self.low.insert(v.clone(), low);
                } else if self.on.contains(&w) {
                    let low = self.low[v].min(self.index[&w]);
                    self.low.insert(v.clone(), low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(&w);
                    let done = &w == v;
                    group.push(w);
                    if done {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.out.push(group);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in nodes {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.out
}

/// The cycles of the crate at `src`, each with the edges inside it, as text.
fn report(src: &Path) -> Vec<String> {
    let krate = Crate::read(src);
    let edges = krate.edges();
    let nodes: Vec<Module> = krate.files.keys().cloned().collect();
    let name = |m: &Module| {
        if m.is_empty() {
            "lib".to_owned()
        } else {
            m.join("/")
        }
    };
    cycles(&nodes, &edges)
        .into_iter()
        .map(|group| {
            let members: BTreeSet<&Module> = group.iter().collect();
            let mut text = group.iter().map(name).collect::<Vec<_>>().join(" <-> ");
            for from in &group {
                for (to, why) in edges.get(from).into_iter().flatten() {
                    if members.contains(to) {
                        text.push_str(&format!("\n    {} -> {}: {why}", name(from), name(to)));
                    }
                }
            }
            text
        })
        .collect()
}

#[test]
fn no_crate_has_a_file_level_import_cycle() {
    let mut found = Vec::new();
    let sources = crate_sources();
    assert!(sources.len() >= 7, "only {} crates found", sources.len());
    for src in sources {
        for cycle in report(&src) {
            found.push(format!("{}: {cycle}", src.display()));
        }
    }
    assert!(
        found.is_empty(),
        "file-level import cycles:\n{}",
        found.join("\n")
    );
}

/// The checker finds what it is for: siblings that use each other, a parent that uses a child
/// that uses the parent, through a re-export too; and a re-export alone is not a cycle.
#[test]
fn the_checker_finds_cycles_and_not_re_exports() {
    let dir = root().join("target/tmp/file-cycles");
    let _ = std::fs::remove_dir_all(&dir);
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "src/lib.rs",
        "mod a;\nmod b;\nmod m;\npub use a::A;\npub use m::M;\n",
    );
    write("src/a.rs", "use crate::b::B;\npub struct A(B);\n");
    write(
        "src/b.rs",
        "pub struct B;\nfn f() -> crate::A { todo!() }\n",
    );
    write(
        "src/m/mod.rs",
        "mod child;\npub use child::C;\npub struct M;\nfn g() { child::run() }\n",
    );
    write(
        "src/m/child.rs",
        "pub struct C(super::M);\npub fn run() {}\n",
    );
    write(
        "src/m/quiet.rs",
        "// use super::M; in a comment\nconst URL: &str = \"http://x\";\n\
         #[cfg(test)]\nmod tests {\n    use super::super::M;\n    const B: &[u8] = br#\"{\"#;\n    const C: char = '{';\n}\n",
    );
    let cycles = report(&dir.join("src"));
    assert_eq!(cycles.len(), 2, "{cycles:#?}");
    assert!(cycles[0].starts_with("a <-> b"), "{}", cycles[0]);
    assert!(
        cycles[0].contains("b -> a: crate::A"),
        "through the re-export: {}",
        cycles[0]
    );
    assert!(cycles[1].starts_with("m <-> m/child"), "{}", cycles[1]);
    assert!(
        cycles[1].contains("m -> m/child: child::run"),
        "{}",
        cycles[1]
    );

    // Without the parent's call into its child, only its re-export remains: no cycle.
    write(
        "src/m/mod.rs",
        "mod child;\npub use child::C;\npub struct M;\n",
    );
    write("src/b.rs", "pub struct B;\n");
    assert_eq!(report(&dir.join("src")), Vec::<String>::new());
}
