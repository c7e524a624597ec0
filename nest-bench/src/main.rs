//! `nest-bench`: load benchmarks of nest against axum 0.8 and a raw tokio socket writer.
//!
//! Subcommands (each prints JSON lines on stdout so `suite` and other tools can read them):
//!
//! - `serve`: the server side alone, so an external load generator can drive it: `GET /bench`
//!   (SSE, ~100-byte JSON events carrying `"t"`, the send time in Unix nanoseconds, broadcast at
//!   `--rate` events/s, 0 = as fast as possible), `GET /idle` (SSE with keep-alives only) and
//!   `GET /json` (a small JSON document). With `--tls-cert PATH` (nest only) it serves HTTPS with
//!   a fresh self-signed certificate, written to PATH.
//! - `load`: N raw TCP clients of `GET /bench`; counts events by blank lines, reads `"t"` for the
//!   delivery latency.
//! - `idle`: opens N connections to `GET /idle` and holds them.
//! - `load` and `idle` over TLS trust the certificate in `--tls-cert PATH`; `--http2` opens
//!   `--streams-per-connection` SSE streams on each HTTP/2 connection (ALPN `h2` over TLS, prior
//!   knowledge in cleartext).
//! - `cancel`: disconnect detection, client close → server notices (in one process).
//! - `json`: keep-alive HTTP/1.1 load of `GET /json`.
//! - `suite`: runs all of the above as separate pinned processes and writes `BENCHMARKS.md`.
//!
//! Run with: `scripts/bench` (the whole suite) or `cargo run --release -p nest-bench -- --help`.

mod cancel;
mod client;
mod http2;
mod idle;
mod json;
mod load;
mod out;
mod payload;
mod serve;
mod stats;
mod suite;
mod tls;
mod transport;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub(crate) use out::{emit, Result};

/// Benchmarks of nest against axum and a raw socket writer.
#[derive(Debug, Parser)]
#[command(name = "nest-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve GET /bench, /idle and /json with one framework.
    Serve(serve::ServeArgs),
    /// Fan-out load generator: N SSE clients of GET /bench.
    Load(load::LoadArgs),
    /// Open N idle SSE connections to GET /idle and hold them.
    Idle(idle::IdleArgs),
    /// Disconnect detection: client close → server cancel hook (nest) or stream drop (axum).
    Cancel(cancel::CancelArgs),
    /// Keep-alive HTTP/1.1 requests/s of GET /json.
    Json(json::JsonArgs),
    /// Run the whole suite and write BENCHMARKS.md.
    Suite(suite::SuiteArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(&args),
        Command::Load(args) => load::run(&args),
        Command::Idle(args) => idle::run(&args),
        Command::Cancel(args) => cancel::run(&args),
        Command::Json(args) => json::run(&args),
        Command::Suite(args) => suite::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nest-bench: {err}");
            ExitCode::FAILURE
        }
    }
}
