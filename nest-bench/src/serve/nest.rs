//! nest: the hub (`--framework nest`) and the plain stream (`--framework nest-stream`), over
//! cleartext or, with `--tls-cert`, HTTPS.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use nest_core::prelude::*;
use nest_core::server::TlsConfig;
use nest_core::sse::{encode, Overflow};
use nest_core::{HttpException, Server};
use nest_hub::{Hub, HubOptions, MemoryBackend, Retention};

use super::publish::{publish_loop, Broadcast, CAPACITY, KEEP_ALIVE, MESSAGE};

/// The hub controller: /bench subscribes to topic `bench`, /idle to topic `idle` (never published).
struct HubBench {
    hub: Hub,
}

impl HubBench {
    async fn bench(self: Arc<Self>) -> Result<SseBody, HttpException> {
        self.subscribe("bench").await
    }

    async fn idle(self: Arc<Self>) -> Result<SseBody, HttpException> {
        self.subscribe("idle").await
    }

    async fn subscribe(&self, topic: &str) -> Result<SseBody, HttpException> {
        self.hub
            .subscribe(topic, &LastEventId(None))
            .await
            .map_err(|err| HttpException::internal_server_error(err.to_string()))
    }

    async fn json(self: Arc<Self>) -> Json<super::publish::Message> {
        Json(MESSAGE)
    }
}

impl Controller for HubBench {
    fn routes(routes: &mut Routes<Self>) {
        routes.sse("/bench", Self::bench);
        routes.sse("/idle", Self::idle);
        routes.get("/json", Self::json);
    }
}

struct HubSink(Hub);

impl Broadcast for HubSink {
    async fn send(&mut self, json: String) {
        // Publishing only fails on an invalid event; ours are valid.
        let _ = self.0.publish("bench", SseEvent::data(json)).await;
    }
}

/// Binds `app` to `addr`, over HTTPS when `tls` is given.
async fn bind(app: NestApp, addr: SocketAddr, tls: Option<TlsConfig>) -> crate::Result<Server> {
    let server = match tls {
        Some(tls) => app.bind_tls(addr, tls).await,
        None => app.bind(addr).await,
    };
    server.map_err(|e| format!("nest bind: {e}"))
}

/// Starts nest with its hub.
pub(super) async fn start_hub(
    addr: SocketAddr,
    rate: u64,
    tls: Option<TlsConfig>,
) -> crate::Result<SocketAddr> {
    let retention = Retention {
        max_events: CAPACITY,
        max_age: None,
        max_bytes: usize::MAX,
    };
    let hub = Hub::with_backend(
        MemoryBackend::new(retention),
        HubOptions::new().keep_alive(Some(KEEP_ALIVE)),
    );
    let app = NestApp::new()
        .controller(HubBench { hub: hub.clone() })
        .config(ServerConfig::default());
    let server = bind(app, addr, tls).await?;
    tokio::spawn(publish_loop(HubSink(hub), rate));
    let local = server.local_addr();
    tokio::spawn(server.wait());
    Ok(local)
}

/// The plain-stream controller: every /bench client gets an `SseWriter` in `writers`.
struct StreamBench {
    writers: Arc<Mutex<Vec<SseWriter>>>,
    idle: Mutex<Vec<SseWriter>>,
}

fn options() -> SseOptions {
    SseOptions::new()
        .keep_alive(Some(KEEP_ALIVE))
        .buffer(CAPACITY, usize::MAX / 2)
        .overflow(Overflow::DropOldest)
}

impl StreamBench {
    async fn bench(self: Arc<Self>) -> SseBody {
        let (writer, body) = get_sse_stream(options());
        lock(&self.writers).push(writer);
        body
    }

    async fn idle(self: Arc<Self>) -> SseBody {
        let (writer, body) = get_sse_stream(options());
        lock(&self.idle).push(writer);
        body
    }

    async fn json(self: Arc<Self>) -> Json<super::publish::Message> {
        Json(MESSAGE)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Controller for StreamBench {
    fn routes(routes: &mut Routes<Self>) {
        routes.sse("/bench", Self::bench);
        routes.sse("/idle", Self::idle);
        routes.get("/json", Self::json);
    }
}

/// Writes each event to every writer. Like any loop over many streams in a tokio task, it
/// yields after a bounded amount of work: every [`WRITES_PER_TURN`] writes (32 events to
/// 1,000 writers, the publisher's batch at 1,000 clients). Without it, 32 events to 10,000
/// writers held the worker for ~35 ms per batch: the connections drained only ~61 at a time
/// between two batches (tokio gives a yielded task the worker back after 61 polls), most
/// writes were dropped from full buffers before delivery, and without the suite's gate the
/// accept loop starved (4,310 of 10,000 clients connected).
struct StreamSink {
    writers: Arc<Mutex<Vec<SseWriter>>>,
    /// Writes since the last yield.
    writes: usize,
}

/// How many writes [`StreamSink`] makes before it yields.
const WRITES_PER_TURN: usize = 32_000;

impl Broadcast for StreamSink {
    async fn send(&mut self, json: String) {
        let Ok(encoded) = encode(&SseEvent::data(json)) else {
            return;
        };
        // Encoded once; every writer shares the bytes. Closed streams leave the list.
        let written = {
            let mut writers = lock(&self.writers);
            writers.retain(|writer| match writer.write_encoded(&encoded) {
                Ok(()) => true,
                Err(err) => !err.is_closed(),
            });
            writers.len()
        };
        self.writes += written;
        if self.writes >= WRITES_PER_TURN {
            self.writes = 0;
            tokio::task::yield_now().await;
        }
    }
}

/// Starts nest with one plain stream per client.
pub(super) async fn start_stream(
    addr: SocketAddr,
    rate: u64,
    tls: Option<TlsConfig>,
) -> crate::Result<SocketAddr> {
    let writers = Arc::new(Mutex::new(Vec::new()));
    let app = NestApp::new()
        .controller(StreamBench {
            writers: writers.clone(),
            idle: Mutex::new(Vec::new()),
        })
        .config(ServerConfig::default());
    let server = bind(app, addr, tls).await?;
    tokio::spawn(publish_loop(StreamSink { writers, writes: 0 }, rate));
    let local = server.local_addr();
    tokio::spawn(server.wait());
    Ok(local)
}
