//! `nest-bench load`: the fan-out load generator.
//!
//! N raw TCP clients send `GET /bench HTTP/1.1` and count events by blank lines (`\n\n`),
//! without parsing them. For the delivery latency each read contributes one sample: the `"t"`
//! of the first event in it, the oldest of what arrived together (so the figure errs on the
//! slow side). All clients share one read buffer: they run on one thread.
//!
//! Over TLS (`--tls-cert`) each client reads the decrypted bytes into a buffer of its own, and on
//! HTTP/2 (`--http2`) each stream counts the DATA frames it gets; the counting is the same.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::client::{connect, get_request, head_end, is_ok, runtime, CONNECT_CONCURRENCY};
use crate::http2;
use crate::payload::{first_t, unix_nanos};
use crate::stats::percentile;
use crate::tls::Agreed;
use crate::tls::TlsClient;
use crate::transport::{Transport, TransportArgs};

/// Arguments of `load`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoadArgs {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: SocketAddr,
    /// How many SSE clients.
    #[arg(long, default_value_t = 100)]
    pub(crate) clients: usize,
    /// Seconds between the last connect and the start of the measurement.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 3.0)]
    pub(crate) duration: f64,
    /// The SSE path.
    #[arg(long, default_value = "/bench")]
    pub(crate) path: String,
    /// Cleartext, TLS, HTTP/2.
    #[command(flatten)]
    pub(crate) transport: TransportArgs,
}

/// What every client adds to.
#[derive(Default)]
struct Totals {
    measuring: AtomicBool,
    events: AtomicU64,
    connected: AtomicUsize,
    failed: AtomicUsize,
    closed: AtomicUsize,
    latencies_ns: Mutex<Vec<u64>>,
    agreed: Agreed,
}

impl Totals {
    /// A stream ended: closed early by the server, unless the measurement is over.
    fn ended(&self, stop: &CancellationToken) {
        if !stop.is_cancelled() {
            self.closed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

thread_local! {
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; 256 * 1024]);
}

/// Counts blank lines across reads: `last_newline` remembers whether the previous read ended
/// with `\n`.
fn count_events(chunk: &[u8], last_newline: &mut bool) -> u64 {
    let mut count = memchr::memmem::find_iter(chunk, b"\n\n").count() as u64;
    if *last_newline && chunk.first() == Some(&b'\n') {
        count += 1;
    }
    if let Some(last) = chunk.last() {
        *last_newline = *last == b'\n';
    }
    count
}

enum Read {
    More,
    Done,
}

struct Client {
    head: Option<Vec<u8>>,
    last_newline: bool,
    latencies: Vec<u64>,
}

impl Client {
    /// A client that reads a response head first (HTTP/1.1), or starts in the body (HTTP/2).
    fn new(head: bool) -> Self {
        Self {
            head: head.then(Vec::new),
            last_newline: false,
            latencies: Vec::new(),
        }
    }

    /// Adds its latency samples to the totals.
    fn finish(self, totals: &Totals) {
        if let Ok(mut all) = totals.latencies_ns.lock() {
            all.extend_from_slice(&self.latencies);
        }
    }

    /// Handles one read; `Done` when the server closed or answered other than 200.
    fn on_read(&mut self, chunk: &[u8], totals: &Totals) -> Read {
        let body = match &mut self.head {
            Some(head) => {
                head.extend_from_slice(chunk);
                let Some(end) = head_end(head) else {
                    return Read::More;
                };
                if !is_ok(head) {
                    totals.failed.fetch_add(1, Ordering::Relaxed);
                    return Read::Done;
                }
                totals.connected.fetch_add(1, Ordering::Relaxed);
                let skip = chunk.len() - (head.len() - end);
                self.head = None;
                &chunk[skip..]
            }
            None => chunk,
        };
        let events = count_events(body, &mut self.last_newline);
        if events > 0 && totals.measuring.load(Ordering::Relaxed) {
            totals.events.fetch_add(events, Ordering::Relaxed);
            if let Some(t) = first_t(body) {
                self.latencies.push(unix_nanos().saturating_sub(t));
            }
        }
        Read::More
    }
}

async fn client(
    addr: SocketAddr,
    request: Arc<[u8]>,
    totals: Arc<Totals>,
    stop: CancellationToken,
    gate: Arc<Semaphore>,
) {
    let permit = gate.acquire_owned().await;
    let sock = connect(addr, &request).await;
    drop(permit);
    let Ok(sock) = sock else {
        totals.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut state = Client::new(true);
    loop {
        tokio::select! {
            ready = sock.readable() => if ready.is_err() { break },
            () = stop.cancelled() => break,
        }
        let outcome = READ_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            match read_some(&sock, &mut buf) {
                Ok(Some(0)) => Read::Done,
                Ok(Some(n)) => state.on_read(&buf[..n], &totals),
                Ok(None) => Read::More,
                Err(_) => Read::Done,
            }
        });
        if let Read::Done = outcome {
            totals.ended(&stop);
            break;
        }
    }
    state.finish(&totals);
}

/// A client over TLS: reads the decrypted stream into a buffer of its own (a TLS record's
/// plaintext is at most 16 KiB).
async fn client_tls(
    addr: SocketAddr,
    tls: TlsClient,
    request: Arc<[u8]>,
    totals: Arc<Totals>,
    stop: CancellationToken,
    gate: Arc<Semaphore>,
) {
    let permit = gate.acquire_owned().await;
    let sock = async {
        let mut sock = tls.connect(addr, &totals.agreed).await?;
        sock.write_all(&request).await?;
        sock.flush().await?;
        std::io::Result::Ok(sock)
    }
    .await;
    drop(permit);
    let Ok(mut sock) = sock else {
        totals.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut state = Client::new(true);
    let mut buf = vec![0; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = sock.read(&mut buf) => read,
            () = stop.cancelled() => break,
        };
        let outcome = match read {
            Ok(0) | Err(_) => Read::Done,
            Ok(n) => state.on_read(&buf[..n], &totals),
        };
        if let Read::Done = outcome {
            totals.ended(&stop);
            break;
        }
    }
    state.finish(&totals);
}

/// One HTTP/2 connection with `streams` SSE clients on it, each counting its DATA frames.
async fn connection_http2(
    addr: SocketAddr,
    tls: Option<TlsClient>,
    streams: usize,
    path: Arc<str>,
    totals: Arc<Totals>,
    stop: CancellationToken,
    gate: Arc<Semaphore>,
) {
    let permit = gate.acquire_owned().await;
    let connected = http2::connect(addr, tls.as_ref(), &totals.agreed).await;
    drop(permit);
    let Ok(connection) = connected else {
        totals.failed.fetch_add(streams, Ordering::Relaxed);
        return;
    };
    let clients = (0..streams).map(|_| async {
        let Ok(mut body) = connection.get(&path).await else {
            totals.failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        totals.connected.fetch_add(1, Ordering::Relaxed);
        let mut state = Client::new(false);
        loop {
            let chunk = tokio::select! {
                chunk = http2::next_chunk(&mut body) => chunk,
                () = stop.cancelled() => break,
            };
            let Some(chunk) = chunk else {
                totals.ended(&stop);
                break;
            };
            state.on_read(&chunk, &totals);
        }
        state.finish(&totals);
    });
    futures_util::future::join_all(clients).await;
}

/// One non-blocking read: `None` when nothing was there after all.
fn read_some(sock: &TcpStream, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
    match sock.try_read(buf) {
        Ok(n) => Ok(Some(n)),
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
        Err(err) => Err(err),
    }
}

/// Runs `load` and prints its result as one JSON line.
pub(crate) fn run(args: &LoadArgs) -> crate::Result<()> {
    let transport = args.transport.transport()?;
    let result = runtime()?.block_on(measure(args, &transport));
    crate::emit(&result.to_string());
    Ok(())
}

/// Spawns the clients of `transport`: one task per connection.
fn spawn_clients(
    args: &LoadArgs,
    transport: &Transport,
    totals: &Arc<Totals>,
    stop: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let request: Arc<[u8]> = get_request(&args.path).into();
    let (totals, stop) = (totals.clone(), stop.clone());
    let tasks = (0..transport.connections(args.clients)).map(|at| {
        let (totals, stop, gate) = (totals.clone(), stop.clone(), gate.clone());
        match transport {
            Transport::Plain => {
                tokio::spawn(client(args.addr, request.clone(), totals, stop, gate))
            }
            Transport::Tls(tls) => tokio::spawn(client_tls(
                args.addr,
                tls.clone(),
                request.clone(),
                totals,
                stop,
                gate,
            )),
            Transport::Http2 { tls, streams } => {
                // The last connection takes what is left.
                let streams = (args.clients - at * streams).min(*streams);
                tokio::spawn(connection_http2(
                    args.addr,
                    tls.clone(),
                    streams,
                    args.path.as_str().into(),
                    totals,
                    stop,
                    gate,
                ))
            }
        }
    });
    tasks.collect()
}

async fn measure(args: &LoadArgs, transport: &Transport) -> serde_json::Value {
    let totals = Arc::new(Totals::default());
    let stop = CancellationToken::new();
    let started = Instant::now();
    let tasks = spawn_clients(args, transport, &totals, &stop);
    // Wait until every client has its response head (or failed), at most a minute.
    while totals.connected.load(Ordering::Relaxed) + totals.failed.load(Ordering::Relaxed)
        < args.clients
        && started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    crate::emit(
        &serde_json::json!({
            "phase": "connected",
            "connected": totals.connected.load(Ordering::Relaxed),
        })
        .to_string(),
    );
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    totals.measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    crate::emit(r#"{"phase":"measuring"}"#);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    totals.measuring.store(false, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    crate::emit(r#"{"phase":"measured"}"#);
    let events = totals.events.load(Ordering::Relaxed);
    stop.cancel();
    for task in tasks {
        let _ = task.await;
    }
    let mut latencies = totals
        .latencies_ns
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    latencies.sort_unstable();
    let micros = |p: f64| percentile(&latencies, p).map(|ns| ns as f64 / 1000.0);
    let mut result = serde_json::json!({
        "clients": args.clients,
        "connected": totals.connected.load(Ordering::Relaxed),
        "failed": totals.failed.load(Ordering::Relaxed),
        "closed_early": totals.closed.load(Ordering::Relaxed),
        "connect_secs": connect_secs,
        "secs": secs,
        "events": events,
        "events_per_sec": events as f64 / secs,
        "latency_samples": latencies.len(),
        "p50_us": micros(50.0),
        "p99_us": micros(99.0),
        "max_us": micros(100.0),
    });
    transport.annotate(&mut result, args.clients, &totals.agreed);
    result
}

#[cfg(test)]
mod tests {
    use super::count_events;

    #[test]
    fn blank_lines_are_counted_across_reads() {
        let mut nl = false;
        assert_eq!(count_events(b"data: a\n\ndata: b\n", &mut nl), 1);
        assert_eq!(count_events(b"\ndata: c\n\n", &mut nl), 2);
        assert_eq!(count_events(b"", &mut nl), 0);
        assert_eq!(count_events(b"data: d\n", &mut nl), 0);
    }
}
