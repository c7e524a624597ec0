//! The fuzz corpus as ordinary tests: every file of `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` goes through the same check as the fuzz target
//! (`fuzz/checks.rs`), so `cargo test` keeps what the fuzzers found without cargo-fuzz or a
//! nightly compiler. Run the fuzzers with `scripts/fuzz`.
//!
//! A crash whose fix belongs to another crate waits in `fuzz/open/<target>/`, replayed by an
//! ignored test of its own; once fixed, its file moves to `fuzz/regressions/<target>/`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

// The checks are the fuzz crate's public library; here they are a private module.
#[allow(unreachable_pub)]
#[path = "../fuzz/checks.rs"]
mod checks;

/// Runs `check` on every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`,
/// and fails naming each file that failed.
fn replay(target: &str, check: fn(&[u8])) {
    let files: Vec<PathBuf> = ["corpus", "regressions"]
        .iter()
        .flat_map(|dir| files_in(&fuzz_dir().join(dir).join(target)))
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f.starts_with(fuzz_dir().join("corpus"))),
        "no corpus for {target}"
    );
    let failed: Vec<&PathBuf> = files.iter().filter(|file| !passes(file, check)).collect();
    assert!(failed.is_empty(), "{target} failed on {failed:#?}");
}

fn passes(file: &Path, check: fn(&[u8])) -> bool {
    let data = std::fs::read(file).expect("a readable corpus file");
    catch_unwind(AssertUnwindSafe(|| check(&data))).is_ok()
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// One test per target, named after it.
macro_rules! replay_tests {
    ($($target:ident),* $(,)?) => {$(
        #[test]
        fn $target() {
            replay(stringify!($target), checks::$target);
        }
    )*};
}

replay_tests!(
    parser,
    roundtrip,
    path_query,
    cors_headers,
    direct_head,
    resumable_id
);
#[cfg(feature = "tls")]
replay_tests!(tls_front);
