//! axum 0.8: `Sse` over a `tokio::sync::broadcast` receiver, one `Event` built per subscriber
//! per event, as its docs and examples do it. The channel carries `Arc<str>` so receiving does
//! not copy the JSON (kinder to axum than `String`). Keep-alive as nest's, TCP_NODELAY on as
//! nest sets it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use futures_util::Stream;
use tokio::sync::broadcast;

use super::publish::{publish_loop, Broadcast, CAPACITY, KEEP_ALIVE, MESSAGE};

/// The SSE events of one subscriber: lagging skips ahead, a closed channel ends the stream.
fn events(rx: broadcast::Receiver<Arc<str>>) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(json) => return Some((Ok(Event::default().data(&*json)), rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

struct Sender(broadcast::Sender<Arc<str>>);

impl Broadcast for Sender {
    async fn send(&mut self, json: String) {
        // No subscriber is not an error here.
        let _ = self.0.send(json.into());
    }
}

/// Starts axum.
pub(super) async fn start(addr: SocketAddr, rate: u64) -> crate::Result<SocketAddr> {
    let (bench, _) = broadcast::channel::<Arc<str>>(CAPACITY);
    let (idle, _) = broadcast::channel::<Arc<str>>(1);
    let app =
        Router::new()
            .route(
                "/bench",
                get({
                    let bench = bench.clone();
                    move || {
                        let rx = bench.subscribe();
                        async move {
                            Sse::new(events(rx)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
                        }
                    }
                }),
            )
            .route(
                "/idle",
                get({
                    let idle = idle.clone();
                    move || {
                        let rx = idle.subscribe();
                        async move {
                            Sse::new(events(rx)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
                        }
                    }
                }),
            )
            .route("/json", get(|| async { Json(MESSAGE) }));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("axum bind: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("axum bind: {e}"))?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        // The idle channel must outlive the server, or /idle streams would end.
        let _idle = idle;
        let _ = axum::serve(listener, app).await;
    });
    tokio::spawn(publish_loop(Sender(bench), rate));
    Ok(local)
}
