//! `nest-bench serve`: one framework serving `GET /bench`, `GET /idle` and `GET /json`.
//!
//! Every contender gets the same publisher (`publish::publish_loop`): it stamps each event with the
//! send time, and at `--rate 0` publishes batches of `publish::BATCH` events and yields between them.
//! The runtime is tokio's multi-thread runtime with one worker (`--runtime current` for
//! current_thread): FINDINGS measured bigger batches per wake, hence more events/s, with it.

mod axum;
mod nest;
mod publish;
mod raw;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use publish::GATE;

/// The contenders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Framework {
    /// nest's hub: one topic, subscribers read its ring buffer.
    Nest,
    /// nest's plain stream: one `SseWriter` per client, the event encoded once, `write_encoded`.
    NestStream,
    /// axum 0.8: `Sse` over a `tokio::sync::broadcast` receiver, an `Event` per subscriber.
    Axum,
    /// A raw tokio socket writer of pre-encoded bytes: all pending events in one `write`.
    Raw,
}

impl Framework {
    /// The name on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Framework::Nest => "nest",
            Framework::NestStream => "nest-stream",
            Framework::Axum => "axum",
            Framework::Raw => "raw",
        }
    }
}

/// The runtime flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Flavor {
    /// Multi-thread runtime with `--workers` workers.
    Multi,
    /// current_thread runtime.
    Current,
}

/// Arguments of `serve`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// The contender.
    #[arg(long, value_enum)]
    pub(crate) framework: Framework,
    /// The port on 127.0.0.1 (0: any free one; the chosen port is printed).
    #[arg(long, default_value_t = 0)]
    pub(crate) port: u16,
    /// Events per second on /bench (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub(crate) rate: u64,
    /// The runtime flavour.
    #[arg(long, value_enum, default_value_t = Flavor::Multi)]
    pub(crate) runtime: Flavor,
    /// Worker threads of the multi-thread runtime.
    #[arg(long, default_value_t = 1)]
    pub(crate) workers: usize,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN; nest and nest-stream only) with a fresh
    /// self-signed certificate for localhost and 127.0.0.1, written to PATH as PEM for the
    /// clients' `--tls-cert`.
    #[arg(long, value_name = "PATH")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// Publish only while the gate is open: SIGUSR1 opens it, SIGUSR2 closes it (closed at
    /// start). The suite opens it once every client of a run is connected, so a publisher
    /// running flat out does not starve the connects (a run at 10,000 clients measures 10,000).
    #[arg(long)]
    pub(crate) gated: bool,
}

/// Runs `serve` until killed.
pub(crate) fn run(args: &ServeArgs) -> crate::Result<()> {
    let runtime = match args.runtime {
        Flavor::Multi => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.workers.max(1))
            .enable_all()
            .build(),
        Flavor::Current => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
    .map_err(|e| format!("runtime: {e}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let (tls, raw_tls) = match (&args.tls_cert, args.framework) {
        (None, _) => (None, None),
        (Some(path), Framework::Nest | Framework::NestStream) => {
            (Some(crate::tls::server_config(path)?), None)
        }
        (Some(path), Framework::Raw) => (None, Some(crate::tls::raw_server_config(path)?)),
        (Some(_), other) => {
            return Err(format!(
                "--tls-cert: only nest, nest-stream and raw serve HTTPS here, not {}",
                other.name()
            ))
        }
    };
    let https = tls.is_some() || raw_tls.is_some();
    runtime.block_on(async {
        if args.gated {
            GATE.follow_signals()?;
        }
        let local = match args.framework {
            Framework::Nest => nest::start_hub(addr, args.rate, tls).await?,
            Framework::NestStream => nest::start_stream(addr, args.rate, tls).await?,
            Framework::Axum => axum::start(addr, args.rate).await?,
            Framework::Raw => raw::start(addr, args.rate, raw_tls).await?,
        };
        crate::emit(
            &serde_json::json!({ "listening": local.to_string(), "https": https }).to_string(),
        );
        std::future::pending::<()>().await;
        Ok(())
    })
}
