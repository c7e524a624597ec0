//! What every example's `main` does the same way (`mod support;` in each example; not an
//! example itself: cargo builds only `examples/*.rs` and `examples/*/main.rs`).

use std::io::IsTerminal;

/// Logs to stderr (stdout is the example's own output: its URL), filtered by `RUST_LOG`
/// (default `info`), with colours only when stderr is a terminal: no escape codes in a file, a
/// pipe or a service's journal.
pub(crate) fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
