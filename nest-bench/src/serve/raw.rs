//! The ceiling: a raw tokio socket writer. Each event is encoded once into `Bytes` (a
//! `broadcast<Bytes>`), and each connection writes everything pending (up to 64 KiB) with one
//! `write_all`. No HTTP framework, no chunked encoding: the response has no length and ends
//! when the connection closes. Over TLS (`--tls-cert`), the same writer on tokio-rustls: the
//! HTTPS rows' baseline.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::publish::{publish_loop, Broadcast, CAPACITY, KEEP_ALIVE};

const MAX_WRITE: usize = 64 * 1024;

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";

struct Sender(broadcast::Sender<Bytes>);

impl Broadcast for Sender {
    async fn send(&mut self, json: String) {
        let mut wire = Vec::with_capacity(json.len() + 8);
        wire.extend_from_slice(b"data: ");
        wire.extend_from_slice(json.as_bytes());
        wire.extend_from_slice(b"\n\n");
        let _ = self.0.send(Bytes::from(wire));
    }
}

/// Reads the request head and returns its path.
async fn read_path<S: AsyncRead + Unpin>(sock: &mut S) -> Option<String> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while memchr::memmem::find(&head, b"\r\n\r\n").is_none() {
        let n = sock.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 16 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\r').next()?;
    let path = line.split(|b| *b == b' ').nth(1)?;
    Some(String::from_utf8_lossy(path).into_owned())
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut sock: S,
    bench: broadcast::Sender<Bytes>,
) {
    let Some(path) = read_path(&mut sock).await else {
        return;
    };
    if path != "/bench" && path != "/idle" {
        let _ = sock
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    }
    if sock.write_all(HEAD).await.is_err() || sock.flush().await.is_err() {
        return;
    }
    if path == "/idle" {
        loop {
            tokio::time::sleep(KEEP_ALIVE).await;
            if sock.write_all(b":\n\n").await.is_err() || sock.flush().await.is_err() {
                return;
            }
        }
    }
    let mut rx = bench.subscribe();
    let mut pending = Vec::with_capacity(MAX_WRITE);
    loop {
        match rx.recv().await {
            Ok(bytes) => pending.extend_from_slice(&bytes),
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        }
        while pending.len() < MAX_WRITE {
            match rx.try_recv() {
                Ok(bytes) => pending.extend_from_slice(&bytes),
                Err(TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        if sock.write_all(&pending).await.is_err() || sock.flush().await.is_err() {
            return;
        }
        pending.clear();
    }
}

/// Starts the raw writer.
pub(super) async fn start(
    addr: SocketAddr,
    rate: u64,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> crate::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("raw bind: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("raw bind: {e}"))?;
    let (bench, _) = broadcast::channel::<Bytes>(CAPACITY);
    let sender = bench.clone();
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    match &tls {
                        None => {
                            tokio::spawn(connection(sock, bench.clone()));
                        }
                        Some(config) => {
                            let accept = tokio_rustls::TlsAcceptor::from(config.clone());
                            let bench = bench.clone();
                            tokio::spawn(async move {
                                if let Ok(sock) = accept.accept(sock).await {
                                    connection(sock, bench).await;
                                }
                            });
                        }
                    }
                }
                // Out of file descriptors, most likely: wait for some to close.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    });
    tokio::spawn(publish_loop(Sender(sender), rate));
    Ok(local)
}
