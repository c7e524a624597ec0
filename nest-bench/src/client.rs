//! What the client subcommands share: connecting many sockets, the request, the runtime.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A current_thread runtime: each client process is pinned to one core.
pub(crate) fn runtime() -> crate::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))
}

/// `GET path HTTP/1.1` with a Host header.
pub(crate) fn get_request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: */*\r\n\r\n").into_bytes()
}

/// Connects and sends `request`, retrying while the server's accept queue is full.
pub(crate) async fn connect(addr: SocketAddr, request: &[u8]) -> std::io::Result<TcpStream> {
    let mut sock = tcp_connect(addr).await?;
    sock.write_all(request).await?;
    Ok(sock)
}

/// Connects with `TCP_NODELAY`, retrying while the server's accept queue is full.
pub(crate) async fn tcp_connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let mut tries = 0;
    loop {
        match TcpStream::connect(addr).await {
            Ok(sock) => {
                sock.set_nodelay(true)?;
                return Ok(sock);
            }
            Err(err) if tries >= 100 => return Err(err),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// How many connects are in flight at once (below the accept backlog of 1,024).
pub(crate) const CONNECT_CONCURRENCY: usize = 256;

/// The response head's end in `buf`, when it is there: the offset of the first body byte.
pub(crate) fn head_end(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find(buf, b"\r\n\r\n").map(|at| at + 4)
}

/// Whether a response head says 200.
pub(crate) fn is_ok(head: &[u8]) -> bool {
    head.starts_with(b"HTTP/1.1 200")
}
