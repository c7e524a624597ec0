//! The HTTP/2 side of `load` and `idle` (the `h2` crate): one connection carries many SSE
//! streams, as a browser's connection carries a page's EventSources.

use std::net::SocketAddr;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::RecvStream;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::tcp_connect;
use crate::tls::Agreed;
use crate::tls::TlsClient;

/// The receive window of a stream: Chromium's (6 MiB). h2's default (64 KiB, and as much for
/// the whole connection) would hold a fast server back by flow control as no browser does.
const STREAM_WINDOW: u32 = 6 * 1024 * 1024;

/// The receive window of a connection: Chromium's (15 MiB).
const CONNECTION_WINDOW: u32 = 15 * 1024 * 1024;

/// One HTTP/2 connection, driven by a task of its own while a handle or a stream is left.
#[derive(Debug, Clone)]
pub(crate) struct Http2Connection {
    send: SendRequest<Bytes>,
    scheme: &'static str,
}

/// Opens an HTTP/2 connection, over TLS when `tls` is given (what the handshake agreed goes to
/// `agreed`), by prior knowledge otherwise.
pub(crate) async fn connect(
    addr: SocketAddr,
    tls: Option<&TlsClient>,
    agreed: &Agreed,
) -> Result<Http2Connection, String> {
    match tls {
        Some(tls) => {
            let io = tls
                .connect(addr, agreed)
                .await
                .map_err(|e| format!("TLS connect: {e}"))?;
            handshake(io, "https").await
        }
        None => {
            let io = tcp_connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            handshake(io, "http").await
        }
    }
}

async fn handshake<T>(io: T, scheme: &'static str) -> Result<Http2Connection, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake(io)
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    tokio::spawn(async move {
        // Ends when the server closes or every handle and stream is gone.
        let _ = connection.await;
    });
    Ok(Http2Connection { send, scheme })
}

impl Http2Connection {
    /// `GET path` as a new stream; its body once a 200 head arrived. Waits while the
    /// connection has as many streams open as the server allows.
    pub(crate) async fn get(&self, path: &str) -> Result<RecvStream, String> {
        get(self.send.clone(), self.scheme, path).await
    }
}

async fn get(send: SendRequest<Bytes>, scheme: &str, path: &str) -> Result<RecvStream, String> {
    let request = http::Request::get(format!("{scheme}://localhost{path}"))
        .body(())
        .map_err(|e| format!("request: {e}"))?;
    let mut send = send.ready().await.map_err(|e| format!("HTTP/2: {e}"))?;
    let (response, _) = send
        .send_request(request, true)
        .map_err(|e| format!("HTTP/2 request: {e}"))?;
    let response = response
        .await
        .map_err(|e| format!("HTTP/2 response: {e}"))?;
    if response.status() != http::StatusCode::OK {
        return Err(format!("HTTP/2 response: {}", response.status()));
    }
    Ok(response.into_body())
}

/// The next chunk of `body`, its flow-control window handed back so the server can go on
/// sending; `None` at the end or on an error.
pub(crate) async fn next_chunk(body: &mut RecvStream) -> Option<Bytes> {
    let chunk = body.data().await?.ok()?;
    // Fails only once the stream is gone, which the next read reports.
    let _ = body.flow_control().release_capacity(chunk.len());
    Some(chunk)
}
