//! `nest-bench cancel`: how soon the server notices that a client closed an idle SSE stream.
//!
//! nest: the stream's cancel hook records the time. axum: a guard owned by the stream records
//! the time when axum drops the stream. The client closes its socket after the first event
//! and an idle pause; the figure is hook time − close time. Server and client share the
//! process (monotonic clock), on separate runtimes and threads.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use nest_core::prelude::*;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::client::{connect, get_request};

/// The contenders of `cancel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CancelFramework {
    /// nest's cancel hook (`SseBody::on_cancel`).
    Nest,
    /// axum: the `Sse` stream's drop.
    Axum,
}

/// Arguments of `cancel`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CancelArgs {
    /// The contender.
    #[arg(long, value_enum)]
    pub(crate) framework: CancelFramework,
    /// How many connect–close cycles.
    #[arg(long, default_value_t = 50)]
    pub(crate) runs: usize,
    /// Milliseconds the stream stays idle before the client closes.
    #[arg(long, default_value_t = 20)]
    pub(crate) idle_ms: u64,
}

type Noticed = mpsc::UnboundedSender<Instant>;

struct CancelBench {
    noticed: Noticed,
}

impl CancelBench {
    async fn cancel(self: Arc<Self>) -> SseBody {
        let (writer, body) = get_sse_stream(SseOptions::new());
        let _ = writer.write(SseEvent::data("hello"));
        let noticed = self.noticed.clone();
        // The hook owns the writer: the stream stays open until the client goes.
        body.on_cancel(move |_reason| {
            let _ = noticed.send(Instant::now());
            drop(writer);
        })
    }
}

impl Controller for CancelBench {
    fn routes(routes: &mut Routes<Self>) {
        routes.sse("/cancel", Self::cancel);
    }
}

/// Sends the time it is dropped.
struct DropGuard(Noticed);

impl Drop for DropGuard {
    fn drop(&mut self) {
        let _ = self.0.send(Instant::now());
    }
}

async fn start_nest(noticed: Noticed) -> crate::Result<SocketAddr> {
    let server = NestApp::new()
        .controller(CancelBench { noticed })
        .bind(([127, 0, 0, 1], 0))
        .await
        .map_err(|e| format!("nest bind: {e}"))?;
    let addr = server.local_addr();
    tokio::spawn(server.wait());
    Ok(addr)
}

async fn start_axum(noticed: Noticed) -> crate::Result<SocketAddr> {
    use axum::response::sse::{Event, Sse};
    use futures_util::StreamExt;

    let app = axum::Router::new().route(
        "/cancel",
        axum::routing::get(move || {
            let guard = DropGuard(noticed.clone());
            async move {
                let first = futures_util::stream::once(async {
                    Ok::<_, Infallible>(Event::default().data("hello"))
                });
                let stream = first.chain(futures_util::stream::pending()).map(move |e| {
                    let _owned = &guard;
                    e
                });
                Sse::new(stream)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| format!("axum bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// Runs `cancel` and prints the median and maximum detection time.
pub(crate) fn run(args: &CancelArgs) -> crate::Result<()> {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let addr = server_rt.block_on(async {
        match args.framework {
            CancelFramework::Nest => start_nest(tx).await,
            CancelFramework::Axum => start_axum(tx).await,
        }
    })?;
    let client_rt = crate::client::runtime()?;
    let request = get_request("/cancel");
    let mut micros = Vec::with_capacity(args.runs);
    let mut missed = 0;
    client_rt.block_on(async {
        for _ in 0..args.runs {
            let mut sock = connect(addr, &request)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            // Wait for the first event: the stream is live.
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while memchr::memmem::find(&seen, b"hello").is_none() {
                match sock.read(&mut buf).await {
                    Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                    _ => return Err("the stream ended before its first event".to_owned()),
                }
            }
            tokio::time::sleep(Duration::from_millis(args.idle_ms)).await;
            let closed = Instant::now();
            drop(sock);
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                Ok(Some(noticed)) => {
                    micros.push(noticed.saturating_duration_since(closed).as_secs_f64() * 1e6);
                }
                _ => missed += 1,
            }
        }
        Ok::<_, String>(())
    })?;
    let spread = crate::stats::Spread::of(&micros);
    crate::emit(
        &serde_json::json!({
            "framework": format!("{:?}", args.framework).to_lowercase(),
            "runs": args.runs,
            "missed": missed,
            "median_us": spread.map(|s| s.median),
            "min_us": spread.map(|s| s.min),
            "max_us": spread.map(|s| s.max),
        })
        .to_string(),
    );
    Ok(())
}
