//! `nest-bench idle`: N idle SSE connections to `GET /idle`, held open.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use crate::client::{connect, get_request, head_end, is_ok, runtime, CONNECT_CONCURRENCY};

/// Arguments of `idle`.
#[derive(Debug, Clone, Args)]
pub(crate) struct IdleArgs {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: SocketAddr,
    /// How many connections.
    #[arg(long, default_value_t = 1000)]
    pub(crate) clients: usize,
    /// Seconds to hold them once open.
    #[arg(long, default_value_t = 3600.0)]
    pub(crate) hold: f64,
}

/// Runs `idle`: prints `{"phase":"connected",…}` once every connection has its response head,
/// then holds them.
pub(crate) fn run(args: &IdleArgs) -> crate::Result<()> {
    runtime()?.block_on(async {
        let ready = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
        let request: Arc<[u8]> = get_request("/idle").into();
        let started = Instant::now();
        for _ in 0..args.clients {
            let (ready, failed, gate, request) =
                (ready.clone(), failed.clone(), gate.clone(), request.clone());
            let addr = args.addr;
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await;
                let opened = open(addr, &request).await;
                drop(permit);
                match opened {
                    Some(mut sock) => {
                        ready.fetch_add(1, Ordering::Relaxed);
                        // Hold it; read (and drop) keep-alives until the server closes.
                        let mut buf = [0u8; 256];
                        while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
                    }
                    None => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        while ready.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < args.clients
            && started.elapsed() < Duration::from_secs(120)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        crate::emit(
            &serde_json::json!({
                "phase": "connected",
                "clients": ready.load(Ordering::Relaxed),
                "failed": failed.load(Ordering::Relaxed),
                "connect_secs": started.elapsed().as_secs_f64(),
            })
            .to_string(),
        );
        tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    });
    Ok(())
}

/// Connects and reads until the end of a 200 response head.
async fn open(addr: SocketAddr, request: &[u8]) -> Option<tokio::net::TcpStream> {
    let mut sock = connect(addr, request).await.ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while head_end(&head).is_none() {
        let n = sock.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    is_ok(&head).then_some(sock)
}
