//! The server: an accept loop on hyper 1 + hyper-util, HTTP/1.1 and HTTP/2 (prior knowledge) on one
//! port, limits and timeouts, and a graceful shutdown that never hangs.
//!
//! Shutdown stops accepting, tells every connection to finish its in-flight requests, tells SSE
//! streams to flush and end (through the app's shutdown token), and force-closes whatever is
//! still open when the grace period ends, so an endless response body cannot hold it forever
//! (unlike hyper's own graceful shutdown: hyperium/hyper#2787, tokio-rs/axum#2673).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use nest_core::prelude::*;
//!
//! struct Hello;
//! impl Controller for Hello {
//!     fn routes(r: &mut Routes<Self>) {
//!         r.get("/", |_: Arc<Self>| async { "hello" });
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let server = NestApp::new().controller(Hello).bind(([127, 0, 0, 1], 0)).await.unwrap();
//! assert_ne!(server.local_addr().port(), 0);
//! server.shutdown(Duration::from_secs(1)).await;
//! # });
//! ```

mod conn;
pub use conn::TlsConnection;
mod direct;
mod env;
mod head_watch;
#[cfg(feature = "test-util")]
pub(crate) use direct::parse_head as parse_direct_head;
pub use env::ListenEnv;
mod park;
mod rewind;
mod same_poll;
mod stop;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
mod tls_direct;
#[cfg(all(feature = "tls", feature = "test-util"))]
pub(crate) use tls::{front as tls_front, read_preface};

pub use crate::config::ServerConfig;
#[cfg(feature = "tls")]
pub use tls::TlsConfig;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::{NestApp, NestService};
use crate::error::Error;

/// Serving an app: the server module builds on the app, never the reverse.
impl NestApp {
    /// Builds the app and binds a server to `addr` (port 0 picks a free port; see
    /// [`Server::local_addr`]). The server runs in the background until shut down.
    pub async fn bind(self, addr: impl Into<SocketAddr>) -> Result<Server, Error> {
        let service = self.into_service()?;
        Server::bind(addr, service).await
    }

    /// Builds the app, serves it on `addr`, and shuts down gracefully on Ctrl-C or SIGTERM.
    pub async fn listen(self, addr: impl Into<SocketAddr>) -> Result<(), Error> {
        let server = self.bind(addr).await?;
        tracing::info!(addr = %server.local_addr(), "nest is listening");
        server.run_until_signal().await;
        Ok(())
    }

    /// Builds the app and binds a server where the environment says ([`ListenEnv`]: `HOST`,
    /// `PORT`, and over HTTPS when `TLS_CERT` and `TLS_KEY` name PEM files).
    ///
    /// ```
    /// use nest_core::prelude::*;
    /// use nest_core::server::ListenEnv;
    ///
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let listen = ListenEnv::from_vars(|name| (name == "PORT").then(|| "0".into()), 3000).unwrap();
    /// let server = NestApp::new().bind_env(&listen).await.unwrap();
    /// assert!(server.url().starts_with("http://127.0.0.1:"));
    /// server.shutdown(std::time::Duration::from_secs(1)).await;
    /// # });
    /// ```
    pub async fn bind_env(self, listen: &ListenEnv) -> Result<Server, Error> {
        #[cfg(feature = "tls")]
        if let Some((cert, key)) = listen.tls_files() {
            let tls = TlsConfig::from_pem_files(cert, key)?;
            return self.bind_tls(listen.addr(), tls).await;
        }
        self.bind(listen.addr()).await
    }

    /// As [`bind`](Self::bind), over HTTPS (feature `tls`): HTTP/2 and HTTP/1.1 by ALPN on one
    /// port. Keep a clone of `tls` to renew the certificate while the server runs.
    #[cfg(feature = "tls")]
    pub async fn bind_tls(
        self,
        addr: impl Into<SocketAddr>,
        tls: TlsConfig,
    ) -> Result<Server, Error> {
        let service = self.into_service()?;
        Server::bind_tls(addr, service, tls).await
    }

    /// As [`listen`](Self::listen), over HTTPS (feature `tls`).
    #[cfg(feature = "tls")]
    pub async fn listen_tls(
        self,
        addr: impl Into<SocketAddr>,
        tls: TlsConfig,
    ) -> Result<(), Error> {
        let server = self.bind_tls(addr, tls).await?;
        tracing::info!(addr = %server.local_addr(), "nest is listening (HTTPS)");
        server.run_until_signal().await;
        Ok(())
    }
}

/// How accepted connections are served.
#[derive(Clone)]
enum Transport {
    /// HTTP/1.1 or HTTP/2 by prior knowledge, told apart by the first bytes.
    Plain,
    /// TLS, then HTTP/2 or HTTP/1.1 as ALPN says.
    #[cfg(feature = "tls")]
    Tls(tls::Accept),
}

/// A running server. It serves in the background until [`shutdown`](Self::shutdown) (or a
/// [`ServerHandle`]) stops it; dropping the `Server` does not stop it.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    tls: bool,
    handle: ServerHandle,
    done: watch::Receiver<bool>,
}

/// A cloneable handle that starts a server's graceful shutdown from anywhere.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    grace: Arc<watch::Sender<Option<Duration>>>,
    default_grace: Duration,
}

impl ServerHandle {
    /// Starts a graceful shutdown with the configured grace period.
    pub fn shutdown(&self) {
        self.shutdown_with_grace(self.default_grace);
    }

    /// Starts a graceful shutdown: in-flight requests get `grace` to finish, then what is left is closed.
    pub fn shutdown_with_grace(&self, grace: Duration) {
        self.grace.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(grace);
                true
            } else {
                false
            }
        });
    }
}

impl Server {
    /// Serves a built app on `addr` (port 0 picks a free port) in the background, until shut
    /// down. [`NestApp::bind`] builds and binds in one step; this keeps the [`NestService`]
    /// (e.g. to read [`NestService::live_sse_streams`]).
    pub async fn bind(addr: impl Into<SocketAddr>, app: NestService) -> Result<Self, Error> {
        Self::start(addr.into(), app, Transport::Plain).await
    }

    /// As [`bind`](Self::bind), over HTTPS (feature `tls`).
    #[cfg(feature = "tls")]
    pub async fn bind_tls(
        addr: impl Into<SocketAddr>,
        app: NestService,
        tls: TlsConfig,
    ) -> Result<Self, Error> {
        let accept = tls.acceptor(app.config())?;
        Self::start(addr.into(), app, Transport::Tls(accept)).await
    }

    async fn start(
        addr: SocketAddr,
        app: NestService,
        transport: Transport,
    ) -> Result<Self, Error> {
        let tls = !matches!(transport, Transport::Plain);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::io(format!("cannot bind {addr}"), e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("cannot read the local address", e))?;
        let config = Arc::new(app.config().clone());
        let (grace_tx, grace_rx) = watch::channel(None);
        let (done_tx, done) = watch::channel(false);
        let handle = ServerHandle {
            grace: Arc::new(grace_tx),
            default_grace: config.shutdown_grace,
        };
        tokio::spawn(async move {
            accept_loop(listener, app, config, transport, grace_rx).await;
            let _ = done_tx.send(true);
        });
        Ok(Self {
            local_addr,
            tls,
            handle,
            done,
        })
    }

    /// The address the server listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's base URL: `http://` or `https://`, then [`local_addr`](Self::local_addr)
    /// (an IPv6 address in brackets), then `/`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/", self.local_addr)
    }

    /// Whether the server takes new work: false from the moment a shutdown is requested (during
    /// [`ServerConfig::drain_delay`] it still serves, so a load balancer can stop sending new
    /// streams before they are cut). Serve it on a route with [`crate::health::ready`].
    pub fn is_ready(&self) -> bool {
        self.handle.grace.borrow().is_none()
    }

    /// A handle that can shut the server down from another task.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Shuts down gracefully and waits until every connection is closed (at most `grace` plus
    /// the time to close them).
    pub async fn shutdown(self, grace: Duration) {
        self.handle.shutdown_with_grace(grace);
        self.wait().await;
    }

    /// Serves until Ctrl-C or SIGTERM, then shuts down gracefully with the configured grace period
    /// and returns once every connection is closed.
    pub async fn run_until_signal(self) {
        let handle = self.handle();
        tokio::spawn(async move {
            shutdown_signal().await;
            handle.shutdown();
        });
        self.wait().await;
    }

    /// Waits until the server has shut down (started by a [`ServerHandle`]).
    pub async fn wait(mut self) {
        let _ = self.done.wait_for(|done| *done).await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    app: NestService,
    config: Arc<ServerConfig>,
    transport: Transport,
    mut grace_rx: watch::Receiver<Option<Duration>>,
) {
    let stop = Arc::new(stop::Stop::with_limit(
        app.shutdown_token(),
        config.max_connections,
    ));
    // A tracker, not a JoinSet: no list entry allocated per connection, nothing to reap.
    // Connections close themselves when the grace period ends (`Stop::force`); HTTP/2 stream
    // tasks are on the same tracker, so shutdown returns after every stream's body ended.
    let conns = stop.tasks.clone();
    // Resolves with the grace period once a shutdown is requested and the drain delay (still
    // serving, readiness already false) is over.
    let stopping = async {
        let grace = requested_grace(&mut grace_rx)
            .await
            .unwrap_or(config.shutdown_grace);
        app.start_draining();
        if !config.drain_delay.is_zero() {
            tracing::info!(delay = ?config.drain_delay, "draining: not ready, still serving");
            tokio::time::sleep(config.drain_delay).await;
        }
        grace
    };
    tokio::pin!(stopping);
    let grace = loop {
        // At the connection limit, stop accepting: new connections wait in the kernel's
        // backlog until one closes (its permit goes back when its task ends).
        if let Some(limit) = &stop.limit {
            tokio::select! {
                grace = &mut stopping => break grace,
                // Given back by the connection's `Slot` (the semaphore is never closed).
                permit = limit.acquire() => {
                    if let Ok(permit) = permit {
                        permit.forget();
                    }
                }
            }
        }
        tokio::select! {
            grace = &mut stopping => break grace,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    configure_socket(&stream, &config);
                    let app = app.clone();
                    let config = config.clone();
                    let slot = stop::Slot(stop.clone());
                    // The peer is logged here rather than kept in the task for a log line at
                    // the end: every byte of the task stays for the connection's life.
                    tracing::trace!(%peer, "connection accepted");
                    let transport = transport.clone();
                    // The task's future is the connection's future itself (a wrapping
                    // `async` block would keep its captures beside it for the connection's
                    // life).
                    match transport {
                        Transport::Plain => {
                            conns.spawn(conn::serve(stream, app, config, slot));
                        }
                        #[cfg(feature = "tls")]
                        Transport::Tls(accept) => {
                            conns.spawn(tls::serve(stream, accept, app, config, slot));
                        }
                    }
                }
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning; the loop goes on
                    // serving once descriptors are free again.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    };
    drop(listener);
    conns.close();
    tracing::info!(open_connections = conns.len(), ?grace, "shutting down");
    stop.fire();
    if tokio::time::timeout(grace, conns.wait()).await.is_err() {
        tracing::warn!(
            open_connections = conns.len(),
            "grace period over: closing the remaining connections"
        );
        stop.force();
        conns.wait().await;
    }
}

/// Resolves with the grace period once a shutdown is requested (`None` if every handle is gone).
async fn requested_grace(rx: &mut watch::Receiver<Option<Duration>>) -> Option<Duration> {
    let grace = rx.wait_for(Option::is_some).await.map(|grace| *grace);
    match grace {
        Ok(grace) => grace,
        Err(_) => std::future::pending().await,
    }
}

fn configure_socket(stream: &tokio::net::TcpStream, config: &ServerConfig) {
    let _ = stream.set_nodelay(true);
    if let Some(idle) = config.tcp_keepalive {
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(Duration::from_secs(10))
            .with_retries(3);
        let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive);
    }
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
    if let Some(timeout) = config.tcp_user_timeout {
        let _ = socket2::SockRef::from(stream).set_tcp_user_timeout(Some(timeout));
    }
}

/// Resolves on Ctrl-C, or SIGTERM on Unix.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
