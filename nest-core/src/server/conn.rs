//! One connection: protocol sniffing under a timeout, then HTTP/1.1 or HTTP/2 with graceful shutdown.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::BytesMut;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::rewind::Rewind;
use crate::app::NestService;
use crate::server::ServerConfig;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads until the bytes tell HTTP/2's preface from anything else. Returns what was read and
/// whether it is HTTP/2, or `None` when the client closed or stayed silent past the timeout
/// (hyper-util's own sniffing has no timeout: hyperium/hyper#3962).
async fn sniff(stream: &mut TcpStream, config: &ServerConfig) -> Option<(BytesMut, bool)> {
    let mut buf = BytesMut::with_capacity(H2_PREFACE.len());
    let read = async {
        loop {
            if buf.len() >= H2_PREFACE.len() || !H2_PREFACE.starts_with(&buf) {
                let h2 = buf.starts_with(H2_PREFACE);
                return Some(h2);
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    };
    match tokio::time::timeout(config.first_byte_timeout, read).await {
        Ok(Some(h2)) => Some((buf, h2)),
        _ => None,
    }
}

pub(crate) async fn serve(
    mut stream: TcpStream,
    app: NestService,
    config: Arc<ServerConfig>,
    stop: CancellationToken,
) {
    let Some((prefix, h2)) = sniff(&mut stream, &config).await else {
        tracing::debug!("connection closed or stalled before its first request");
        return;
    };
    let io = TokioIo::new(Rewind::new(prefix.freeze(), stream));
    let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.oneshot(req).await.unwrap_or_else(|e| match e {})) }
    });
    macro_rules! drive {
        ($conn:expr) => {{
            let conn = $conn;
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => res,
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        }};
    }
    let result = if h2 {
        // Boxed: HTTP/2's connection state is large, and keeping it out of the future every
        // HTTP/1 connection's task carries keeps idle HTTP/1 connections (most SSE clients) small.
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(config.max_head_size).unwrap_or(u32::MAX))
            .max_concurrent_streams(config.http2_max_streams)
            .keep_alive_interval(config.http2_keep_alive);
        Box::pin(async move { drive!(builder.serve_connection(io, svc)) }).await
    } else {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size(config.max_head_size)
            .max_headers(config.max_headers)
            .keep_alive(true)
            .writev(true);
        drive!(builder.serve_connection(io, svc))
    };
    if let Err(err) = result {
        tracing::debug!(error = %err, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    /// Every connection's task carries this future: keep it small (HTTP/2's state is boxed).
    /// The bound is loose (debug build); the point is to notice a regression by kilobytes.
    #[tokio::test]
    async fn the_connection_future_stays_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let app = crate::NestApp::new().into_service().unwrap();
        let config = std::sync::Arc::new(crate::ServerConfig::default());
        let fut = super::serve(
            stream,
            app,
            config,
            tokio_util::sync::CancellationToken::new(),
        );
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 2048, "the connection future grew to {size} bytes");
    }
}
