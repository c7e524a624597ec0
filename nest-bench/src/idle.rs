//! `nest-bench idle`: N idle SSE streams on `GET /idle`, held open: one per connection on
//! HTTP/1.1 (cleartext or TLS), `--streams-per-connection` per connection on HTTP/2.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::client::{connect, get_request, head_end, is_ok, runtime, CONNECT_CONCURRENCY};
use crate::http2;
use crate::tls::Agreed;
use crate::tls::TlsClient;
use crate::transport::{Transport, TransportArgs};

/// Arguments of `idle`.
#[derive(Debug, Clone, Args)]
pub(crate) struct IdleArgs {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: SocketAddr,
    /// How many SSE streams (on HTTP/1.1, one per connection).
    #[arg(long, default_value_t = 1000)]
    pub(crate) clients: usize,
    /// Seconds to hold them once open.
    #[arg(long, default_value_t = 3600.0)]
    pub(crate) hold: f64,
    /// Cleartext, TLS, HTTP/2.
    #[command(flatten)]
    pub(crate) transport: TransportArgs,
}

/// What every stream adds to.
#[derive(Debug, Default)]
struct Counts {
    ready: AtomicUsize,
    failed: AtomicUsize,
    agreed: Agreed,
}

impl Counts {
    fn settled(&self) -> usize {
        self.ready.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

/// Runs `idle`: prints `{"phase":"connected",…}` once every stream has its response head,
/// then holds them.
pub(crate) fn run(args: &IdleArgs) -> crate::Result<()> {
    let transport = args.transport.transport()?;
    runtime()?.block_on(async {
        let counts = Arc::new(Counts::default());
        let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
        let request: Arc<[u8]> = get_request("/idle").into();
        let started = Instant::now();
        match &transport {
            Transport::Http2 { tls, streams } => {
                let mut left = args.clients;
                while left > 0 {
                    let streams = left.min(*streams);
                    left -= streams;
                    let (tls, counts, gate) = (tls.clone(), counts.clone(), gate.clone());
                    let addr = args.addr;
                    tokio::spawn(async move {
                        let permit = gate.acquire_owned().await;
                        hold_http2(addr, tls.as_ref(), streams, &counts, permit).await;
                    });
                }
            }
            Transport::Plain | Transport::Tls(_) => {
                let tls = match &transport {
                    Transport::Tls(tls) => Some(tls.clone()),
                    _ => None,
                };
                for _ in 0..args.clients {
                    let (tls, counts, gate, request) =
                        (tls.clone(), counts.clone(), gate.clone(), request.clone());
                    let addr = args.addr;
                    tokio::spawn(async move {
                        let permit = gate.acquire_owned().await;
                        match tls {
                            Some(tls) => {
                                let opened = open_tls(addr, &tls, &request, &counts).await;
                                drop(permit);
                                hold(opened, &counts).await;
                            }
                            None => {
                                let opened = open(addr, &request).await;
                                drop(permit);
                                hold(opened, &counts).await;
                            }
                        }
                    });
                }
            }
        }
        while counts.settled() < args.clients && started.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut line = serde_json::json!({
            "phase": "connected",
            "clients": counts.ready.load(Ordering::Relaxed),
            "failed": counts.failed.load(Ordering::Relaxed),
            "connect_secs": started.elapsed().as_secs_f64(),
        });
        transport.annotate(&mut line, args.clients, &counts.agreed);
        crate::emit(&line.to_string());
        tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    });
    Ok(())
}

/// Counts an opened stream and holds it: reads (and drops) keep-alives until the server
/// closes. A stream that did not open counts as failed.
async fn hold<S: AsyncRead + Unpin>(opened: Option<S>, counts: &Counts) {
    let Some(mut sock) = opened else {
        counts.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    counts.ready.fetch_add(1, Ordering::Relaxed);
    let mut buf = [0u8; 256];
    while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Connects and reads until the end of a 200 response head.
async fn open(addr: SocketAddr, request: &[u8]) -> Option<tokio::net::TcpStream> {
    let mut sock = connect(addr, request).await.ok()?;
    read_head(&mut sock).await.then_some(sock)
}

/// As [`open`], over TLS.
async fn open_tls(
    addr: SocketAddr,
    tls: &TlsClient,
    request: &[u8],
    counts: &Counts,
) -> Option<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut sock = tls.connect(addr, &counts.agreed).await.ok()?;
    sock.write_all(request).await.ok()?;
    sock.flush().await.ok()?;
    read_head(&mut sock).await.then_some(sock)
}

/// Reads until the end of the response head; whether it says 200.
async fn read_head<S: AsyncRead + Unpin>(sock: &mut S) -> bool {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while head_end(&head).is_none() {
        match sock.read(&mut buf).await {
            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return false,
        }
    }
    is_ok(&head)
}

/// One HTTP/2 connection with `streams` idle SSE streams on it, held until the server closes.
/// `permit` (a connect slot) is given back once the connection is up.
async fn hold_http2(
    addr: SocketAddr,
    tls: Option<&TlsClient>,
    streams: usize,
    counts: &Counts,
    permit: Result<tokio::sync::OwnedSemaphorePermit, tokio::sync::AcquireError>,
) {
    let connected = http2::connect(addr, tls, &counts.agreed).await;
    drop(permit);
    let Ok(connection) = connected else {
        counts.failed.fetch_add(streams, Ordering::Relaxed);
        return;
    };
    let holds = (0..streams).map(|_| async {
        match connection.get("/idle").await {
            Ok(mut body) => {
                counts.ready.fetch_add(1, Ordering::Relaxed);
                while http2::next_chunk(&mut body).await.is_some() {}
            }
            Err(_) => {
                counts.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    futures_util::future::join_all(holds).await;
}
