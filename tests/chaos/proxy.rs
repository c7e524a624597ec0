//! A TCP proxy in front of a node that cuts or stalls its connections on command: the faults a
//! network does to a client (a connection dropped in the middle of an event, a peer that stops
//! moving bytes for a while), played between the test's clients and a nest instance.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the proxy does to every open connection.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fault {
    /// Forwards only half of the next chunk the server sends (the middle of an event, usually),
    /// then closes both sides; a connection with nothing to send is closed within 200 ms.
    Cut,
    /// Forwards nothing in either direction for this long.
    Freeze(Duration),
}

/// A proxy on `127.0.0.1:0` to `target`; stopped on drop.
pub(crate) struct Proxy {
    addr: SocketAddr,
    faults: broadcast::Sender<Fault>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub(crate) async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (faults, _) = broadcast::channel(64);
        let sender = faults.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let faults = sender.subscribe();
                tokio::spawn(async move {
                    // The node is down: the client sees its connection closed, as it would.
                    if let Ok(server) = TcpStream::connect(target).await {
                        pump(client, server, faults).await;
                    }
                });
            }
        });
        Self {
            addr,
            faults,
            accept,
        }
    }

    /// Its address.
    #[cfg_attr(
        not(feature = "redis"),
        allow(dead_code, reason = "the Redis scenarios use it")
    )]
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Plays `fault` on every connection open now.
    pub(crate) fn inject(&self, fault: Fault) {
        let _ = self.faults.send(fault);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Moves bytes both ways until either side closes or a fault ends the connection.
async fn pump(
    mut client: TcpStream,
    mut server: TcpStream,
    mut faults: broadcast::Receiver<Fault>,
) {
    let (mut up, mut down) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    let mut cut_by: Option<Instant> = None;
    loop {
        let cut_deadline = async {
            match cut_by {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = client.read(&mut up) => match read {
                Ok(n) if n > 0 => {
                    if server.write_all(&up[..n]).await.is_err() {
                        return;
                    }
                }
                _ => return,
            },
            read = server.read(&mut down) => match read {
                Ok(n) if n > 0 => {
                    let n = if cut_by.is_some() { n.div_ceil(2) } else { n };
                    if client.write_all(&down[..n]).await.is_err() || cut_by.is_some() {
                        return;
                    }
                }
                _ => return,
            },
            fault = faults.recv() => match fault {
                Ok(Fault::Cut) => cut_by = Some(Instant::now() + Duration::from_millis(200)),
                Ok(Fault::Freeze(time)) => tokio::time::sleep(time).await,
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = cut_deadline => return,
        }
    }
}
