//! A nest instance in a process of its own (the chat example's app, plus resumable streams), so
//! that the chaos test can SIGKILL it and start it again: this test binary runs itself as the
//! node (`chaos_node`, an ignored test that serves when `NEST_CHAOS_NODE_PORT` is set).

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nest::prelude::*;
use nest::sse::resumable::{Resumable, ResumableError, ResumableOptions};
use tokio::time::Instant;

use crate::chat;

/// How long a node may take to start (bind, reach Redis) or to stop.
const START: Duration = Duration::from_secs(30);

/// The lease of resumable streams on the nodes: a dead producer is noticed within it.
pub(crate) const LEASE: Duration = Duration::from_secs(3);

/// How many chunks a resumable stream's producer sends, one every [`CHUNK_EVERY`].
pub(crate) const CHUNKS: usize = 40;
const CHUNK_EVERY: Duration = Duration::from_millis(15);

/// A node process, started and stopped by the test.
pub(crate) struct Node {
    pub(crate) name: String,
    port: u16,
    redis: Option<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// A node (not started) on a free port; its output goes to `log`.
    pub(crate) fn new(name: &str, redis: Option<String>, log: PathBuf) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Self {
            name: name.to_owned(),
            port,
            redis,
            log,
            child: None,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// Starts the process and waits until it answers `GET /ready`.
    pub(crate) async fn start(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the node's log");
        let child = Command::new(std::env::current_exe().expect("the test binary"))
            .args(["chaos_node", "--exact", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env("NEST_CHAOS_NODE_PORT", self.port.to_string())
            .env(
                "NEST_CHAOS_NODE_REDIS",
                self.redis.clone().unwrap_or_default(),
            )
            .env("RUST_LOG", "nest_core=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the node's log"))
            .stderr(log)
            .spawn()
            .expect("start a node");
        self.child = Some(child);
        let deadline = Instant::now() + START;
        let client = reqwest::Client::new();
        let ready = format!("http://{}/ready", self.addr());
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "node {} exited ({status}); its log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            let answer = client
                .get(&ready)
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if answer.is_ok_and(|res| res.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} not ready within {START:?}; its log:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: nothing is flushed, nothing is closed cleanly.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM: a graceful shutdown; waits until the process is gone.
    pub(crate) async fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {}", child.id());
        let deadline = Instant::now() + START;
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "node {} did not stop within {START:?} of SIGTERM; its log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(crate) fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

// ===== the node itself (in the child process) =====

/// Serves the chat app (on Redis when `redis` is given) plus resumable streams on `port` until
/// SIGTERM.
pub(crate) async fn serve(port: u16, redis: Option<String>) {
    let deadline = Instant::now() + START;
    let hub = loop {
        let hub = match &redis {
            Some(url) => chat::redis_hub(url).await,
            None => Ok(chat::hub()),
        };
        match hub {
            Ok(hub) => break hub,
            // Redis restarting: try again (the test's deadline is the bound).
            Err(err) if Instant::now() < deadline => {
                eprintln!("node: no hub yet: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("node: no hub within {START:?}: {err}"),
        }
    };
    let options = ResumableOptions::new().lease(LEASE);
    let streams = Arc::new(Resumable::with_options(hub.clone(), options));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let server = loop {
        let app = chat::app(hub.clone()).controller(Streams {
            streams: streams.clone(),
        });
        match app.bind(addr).await {
            Ok(server) => break server,
            // The port of the killed process is still being released.
            Err(err) if Instant::now() < deadline => {
                eprintln!("node: bind {addr}: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("node: cannot bind {addr} within {START:?}: {err}"),
        }
    };
    server.run_until_signal().await;
}

/// `POST /streams/{id}` starts a producer of [`CHUNKS`] chunks; `GET /streams/{id}` reads it,
/// from the start or after `Last-Event-ID`.
struct Streams {
    streams: Arc<Resumable>,
}

impl Streams {
    async fn start(self: Arc<Self>, Path(id): Path<String>) -> Result<&'static str, HttpException> {
        let started = self.streams.start(&id, |out| async move {
            for chunk in 0..CHUNKS {
                out.send(format!("chunk {chunk}")).await?;
                tokio::time::sleep(CHUNK_EVERY).await;
            }
            Ok::<_, ResumableError>(())
        });
        started
            .await
            .map(|()| "started")
            .map_err(|err| HttpException::service_unavailable(err.to_string()))
    }

    async fn read(
        self: Arc<Self>,
        Path(id): Path<String>,
        last: LastEventId,
    ) -> Result<SseBody, HttpException> {
        let body = match last.0 {
            Some(_) => self.streams.resume(&last).await,
            None => self.streams.subscribe(&id, &last).await,
        };
        body.map_err(|err| {
            if err.is_unknown() || err.is_expired() {
                // 404 or 410: either way the reader knows the stream is gone.
                HttpException::not_found(err.to_string())
            } else {
                HttpException::service_unavailable(err.to_string())
            }
        })
    }
}

impl Controller for Streams {
    fn routes(routes: &mut Routes<Self>) {
        routes.post("/streams/:id", Self::start);
        routes.sse("/streams/:id", Self::read);
    }
}
