//! `nest-bench json`: keep-alive HTTP/1.1 load of `GET /json`, one request in flight per
//! connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{connect, get_request, head_end, is_ok, runtime};

/// Arguments of `json`.
#[derive(Debug, Clone, Args)]
pub(crate) struct JsonArgs {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: SocketAddr,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 64)]
    pub(crate) connections: usize,
    /// Seconds before the measurement.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 3.0)]
    pub(crate) duration: f64,
}

/// The body length a response head announces.
fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    text.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

/// Sends requests back to back until `stop`; adds the answered ones to `count` while measuring.
async fn connection(
    mut sock: TcpStream,
    request: Arc<[u8]>,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
) {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    // `connect` already sent the first request.
    while !stop.load(Ordering::Relaxed) {
        buf.clear();
        let complete = loop {
            if let Some(end) = head_end(&buf) {
                match content_length(&buf[..end]) {
                    Some(len) if buf.len() >= end + len => break is_ok(&buf),
                    Some(_) => {}
                    None => break false,
                }
            }
            match sock.read(&mut chunk).await {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => break false,
            }
        };
        if !complete {
            errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if measuring.load(Ordering::Relaxed) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        if sock.write_all(&request).await.is_err() {
            errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
}

/// Runs `json` and prints `{"requests_per_sec":…}`.
pub(crate) fn run(args: &JsonArgs) -> crate::Result<()> {
    let result = runtime()?.block_on(async {
        let request: Arc<[u8]> = get_request("/json").into();
        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..args.connections {
            let sock = connect(args.addr, &request)
                .await
                .map_err(|e| format!("connect {}: {e}", args.addr))?;
            tasks.push(tokio::spawn(connection(
                sock,
                request.clone(),
                measuring.clone(),
                stop.clone(),
                count.clone(),
                errors.clone(),
            )));
        }
        tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
        measuring.store(true, Ordering::Relaxed);
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
        measuring.store(false, Ordering::Relaxed);
        let secs = t0.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            let _ = task.await;
        }
        let requests = count.load(Ordering::Relaxed);
        Ok::<_, String>(serde_json::json!({
            "connections": args.connections,
            "requests": requests,
            "errors": errors.load(Ordering::Relaxed),
            "secs": secs,
            "requests_per_sec": requests as f64 / secs,
        }))
    })?;
    crate::emit(&result.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::content_length;

    #[test]
    fn content_length_is_read_case_insensitively() {
        assert_eq!(
            content_length(b"HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\n"),
            Some(27)
        );
        assert_eq!(content_length(b"HTTP/1.1 200 OK\r\n\r\n"), None);
    }
}
