//! HTTPS (feature `tls`): rustls with ALPN `h2` and `http/1.1` on one port, so browsers speak
//! HTTP/2 and a page can hold more than six event streams; certificates swapped at run time.
//!
//! The crypto provider is rustls's `ring`: it builds with a C compiler alone (aws-lc-rs also
//! needs cmake and, for some targets, more of a toolchain), and nest passes it explicitly, so
//! an app whose dependency tree enables both providers does not trip over rustls's process-wide
//! default.
//!
//! # Example
//!
//! ```
//! use nest_core::server::TlsConfig;
//!
//! // A certificate and key from PEM (files: `TlsConfig::from_pem_files`).
//! let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
//! let tls = TlsConfig::from_pem(cert.cert.pem(), cert.signing_key.serialize_pem()).unwrap();
//!
//! // Broken input is an error at start, never a panic.
//! let err = TlsConfig::from_pem("", cert.signing_key.serialize_pem()).unwrap_err();
//! assert!(err.is_tls() && err.to_string().contains("empty"), "{err}");
//!
//! // Renewal: new handshakes use the new certificate; a bad one leaves the old in place.
//! let renewed = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
//! tls.reload_pem(renewed.cert.pem(), renewed.signing_key.serialize_pem()).unwrap();
//! assert!(tls.reload_pem(renewed.cert.pem(), cert.signing_key.serialize_pem()).is_err());
//! ```

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

use bytes::{Bytes, BytesMut};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::LazyConfigAcceptor;

use super::conn::{serve_io, Next, Serve, H2_PREFACE};
use super::rewind::Rewind;
use super::stop::{Slot, Stop};
use super::{direct, tls_direct};
use crate::app::NestService;
use crate::config::ServerConfig;
use crate::error::Error;

/// A server's certificate chain and key, for [`NestApp::bind_tls`](crate::NestApp::bind_tls).
///
/// Cheap to clone; clones share the certificate, so keep one to renew it with
/// [`reload_pem`](Self::reload_pem) while the server runs.
#[derive(Clone)]
pub struct TlsConfig {
    resolver: Arc<Resolver>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

/// Hands every handshake the current certificate.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn provider() -> &'static Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// Parses and checks a chain and its key: a non-empty chain, a readable key, and a key that
/// matches the leaf certificate.
fn certified_key(cert_chain: &[u8], key: &[u8]) -> Result<CertifiedKey, Error> {
    let certs = CertificateDer::pem_slice_iter(cert_chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::tls("cannot read the certificate chain (PEM)", Some(Box::new(e))))?;
    if certs.is_empty() {
        return Err(Error::tls(
            "the certificate chain is empty (no `BEGIN CERTIFICATE` block)",
            None,
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| Error::tls("cannot read the private key (PEM)", Some(Box::new(e))))?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| Error::tls("the private key is not usable", Some(Box::new(e))))?;
    let certified = CertifiedKey::new(certs, signing);
    certified.keys_match().map_err(|e| {
        Error::tls(
            "the private key does not match the certificate",
            Some(Box::new(e)),
        )
    })?;
    Ok(certified)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::io(format!("cannot read the {what} {}", path.display()), e))
}

impl TlsConfig {
    /// A certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1), in PEM.
    pub fn from_pem(cert_chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Result<Self, Error> {
        let certified = certified_key(cert_chain.as_ref(), key.as_ref())?;
        Ok(Self {
            resolver: Arc::new(Resolver {
                current: RwLock::new(Arc::new(certified)),
            }),
        })
    }

    /// A self-signed certificate for development, made now for `names` (host names and IP
    /// addresses, e.g. `["localhost", "127.0.0.1", "::1"]`), with its key: the config that serves
    /// it and the certificate in PEM, for a client to trust (`curl --cacert FILE`, a rustls
    /// root store, a browser's certificate settings). It is an end-entity certificate (not a
    /// CA: rustls refuses a CA certificate as a server's own). Never for production: nothing
    /// vouches for it, and each call makes a new one.
    ///
    /// ```
    /// use nest_core::server::TlsConfig;
    ///
    /// let (tls, cert_pem) = TlsConfig::self_signed(["localhost", "127.0.0.1"]).unwrap();
    /// assert!(cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    /// # drop(tls);
    /// assert!(TlsConfig::self_signed(["nöt-ascii.example"]).is_err(), "a SAN is ASCII");
    /// ```
    pub fn self_signed<I, S>(names: I) -> Result<(Self, String), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| Error::config(format!("cannot make a development certificate: {e}")))?;
        let cert_pem = made.cert.pem();
        let config = Self::from_pem(&cert_pem, made.signing_key.serialize_pem())?;
        Ok((config, cert_pem))
    }

    /// As [`from_pem`](Self::from_pem), from files.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, Error> {
        Self::from_pem(
            read(cert_chain.as_ref(), "certificate chain")?,
            read(key.as_ref(), "private key")?,
        )
    }

    /// Replaces the certificate for the handshakes that follow (connections already open keep
    /// theirs). On error nothing changes.
    pub fn reload_pem(
        &self,
        cert_chain: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        let certified = Arc::new(certified_key(cert_chain.as_ref(), key.as_ref())?);
        *self
            .resolver
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner()) = certified;
        tracing::info!("TLS certificate reloaded");
        Ok(())
    }

    /// As [`reload_pem`](Self::reload_pem), from files.
    pub fn reload_pem_files(
        &self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<(), Error> {
        self.reload_pem(
            read(cert_chain.as_ref(), "certificate chain")?,
            read(key.as_ref(), "private key")?,
        )
    }

    /// The acceptor of a server: TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`.
    pub(super) fn acceptor(&self, config: &ServerConfig) -> Result<Accept, Error> {
        let mut tls = rustls::ServerConfig::builder_with_provider(provider().clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::tls("no TLS protocol version available", Some(Box::new(e))))?
            .with_no_client_auth()
            .with_cert_resolver(self.resolver.clone());
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // The direct SSE path takes a stream's sending key from rustls (see `tls_direct`).
        tls.enable_secret_extraction = config.direct_sse;
        Ok(Accept {
            config: Arc::new(tls),
            handshakes: Arc::new(Semaphore::new(config.max_tls_handshakes)),
        })
    }
}

/// What the accept loop needs to serve TLS: the rustls configuration and the handshake slots.
#[derive(Clone)]
pub(super) struct Accept {
    config: Arc<rustls::ServerConfig>,
    handshakes: Arc<Semaphore>,
}

/// Why a connection closed before it served a request (logged at debug: O(1) per client, quiet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// No complete ClientHello within the first-byte timeout (a silent or trickling client).
    NoHello,
    /// Not TLS (plain HTTP on the TLS port), or a handshake the server or client refused.
    Failed,
    /// The handshake did not complete within `tls_handshake_timeout`.
    TimedOut,
    /// ALPN chose `h2` and the client did not send HTTP/2's preface within the first-byte
    /// timeout, or sent something else.
    NoPreface,
    /// The server is shutting down.
    Closing,
}

/// The handshake, in three steps, each under its bound:
///
/// 1. the ClientHello is read without a slot, within `first_byte_timeout` (and the handshake
///    timeout): a connection that stays silent, or sends its hello a byte at a time, costs a
///    task and a socket, never one of the [`ServerConfig::max_tls_handshakes`] slots;
/// 2. a slot is taken for the cryptographic work only: rustls computes the server's whole first
///    flight (key exchange and the certificate's signature) when it takes the ClientHello;
/// 3. the flight is written and the client's answer read without a slot, within what is left
///    of `tls_handshake_timeout`.
async fn handshake<IO>(
    stream: IO,
    accept: &Accept,
    config: &ServerConfig,
) -> Result<tokio_rustls::server::TlsStream<IO>, Refused>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let deadline = Instant::now() + config.tls_handshake_timeout;
    let hello_by = (Instant::now() + config.first_byte_timeout).min(deadline);
    let hello = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let start = match tokio::time::timeout_at(hello_by, hello).await {
        Ok(Ok(start)) => start,
        Ok(Err(_)) => return Err(Refused::Failed),
        Err(_) => return Err(Refused::NoHello),
    };
    let finishing = {
        let slot = tokio::time::timeout_at(deadline, accept.handshakes.acquire()).await;
        let Ok(Ok(_slot)) = slot else {
            return Err(Refused::TimedOut);
        };
        start.into_stream(accept.config.clone())
    };
    match tokio::time::timeout_at(deadline, finishing).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(_)) => Err(Refused::Failed),
        Err(_) => Err(Refused::TimedOut),
    }
}

/// Reads HTTP/2's connection preface within the first-byte timeout (hyper's HTTP/2 server waits
/// for it without a bound: a client that negotiated `h2` and stayed silent held its connection,
/// and its place under `max_connections`, for good). Returns the bytes read, for replay.
async fn preface<I: tokio::io::AsyncRead + Unpin>(
    io: &mut I,
    config: &ServerConfig,
) -> Result<Bytes, Refused> {
    let reading = async {
        // Capacity exactly the preface's: `read_buf` reads no further.
        let mut buf = BytesMut::with_capacity(H2_PREFACE.len());
        while buf.len() < H2_PREFACE.len() {
            match io.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return Err(Refused::NoPreface),
                Ok(_) if !H2_PREFACE.starts_with(&buf) => return Err(Refused::NoPreface),
                Ok(_) => {}
            }
        }
        Ok(buf.freeze())
    };
    tokio::time::timeout(config.first_byte_timeout, reading)
        .await
        .unwrap_or(Err(Refused::NoPreface))
}

/// The TLS front on any stream, for the fuzz target (feature `test-util`): the handshake with
/// `tls`'s certificate and `config`'s bounds, then, for `h2`, the preface. `Ok(h2)` when both
/// passed.
#[cfg(feature = "test-util")]
pub(crate) async fn front<IO>(io: IO, tls: &TlsConfig, config: &ServerConfig) -> Result<bool, ()>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let accept = tls.acceptor(config).map_err(drop)?;
    let mut tls = handshake(io, &accept, config).await.map_err(drop)?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    if h2 {
        preface(&mut tls, config).await.map_err(drop)?;
    }
    Ok(h2)
}

/// HTTP/2's preface reader on any stream, for the fuzz target (feature `test-util`): the bytes
/// it read when it accepted.
#[cfg(feature = "test-util")]
pub(crate) async fn read_preface<IO>(io: &mut IO, config: &ServerConfig) -> Option<Bytes>
where
    IO: tokio::io::AsyncRead + Unpin,
{
    preface(io, config).await.ok()
}

/// One TLS connection, holding its `slot` until it ends: the handshake (see [`handshake`]),
/// then, for `h2`, the preface under the first-byte timeout, then HTTP/2 or HTTP/1.1 as ALPN
/// chose (HTTP/1.1 when the client offered none). An HTTP/1.1 SSE stream over TLS 1.3 is
/// written directly (see [`tls_direct`](super::tls_direct)).
///
/// The task's future is the connection future the cleartext path uses (see [`conn::serve`](super::conn::serve)):
/// everything until the connection settles is boxed and freed once it has.
pub(super) fn serve(
    stream: TcpStream,
    accept: Accept,
    app: NestService,
    config: Arc<ServerConfig>,
    slot: Slot,
) -> impl Future<Output = ()> + Send {
    Serve::opening(slot, |stop| open(stream, accept, app, config, stop))
}

/// The handshake, the preface or the direct path's first request: how the connection goes on.
async fn open(
    stream: TcpStream,
    accept: Accept,
    app: NestService,
    config: Arc<ServerConfig>,
    stop: Arc<Stop>,
) -> Next {
    let opening = async {
        let mut tls = handshake(stream, &accept, &config).await?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let prefix = if h2 {
            preface(&mut tls, &config).await?
        } else {
            Bytes::new()
        };
        Ok::<_, Refused>((tls, h2, prefix))
    };
    let opened = tokio::select! {
        opened = opening => opened,
        // Shutting down: a connection still in its handshake is closed.
        () = stop.token.cancelled() => Err(Refused::Closing),
    };
    let (mut tls, h2, prefix) = match opened {
        Ok(opened) => opened,
        Err(why) => {
            tracing::debug!(?why, "TLS connection closed before its first request");
            return Next::Closed;
        }
    };
    let mut first = None;
    if config.direct_sse && !h2 {
        match tls_direct::first(&mut tls, &app, &config, &stop).await {
            direct::First::Stream(head, body) => {
                return match tls_direct::take(tls, head, body, &config).await {
                    Some((sock, head, body)) => Next::Direct(Box::new((sock, head, body, false))),
                    None => Next::Closed,
                };
            }
            direct::First::Hyper(res) => first = res,
            direct::First::Closed => return Next::Closed,
        }
    }
    // Boxed: hyper's connection state stays out of the task of a direct SSE connection.
    Next::Hyper(Box::pin(async move {
        serve_io(
            hyper_util::rt::TokioIo::new(Rewind::new(prefix, tls)),
            h2,
            true,
            app,
            first,
            &config,
            &stop,
        )
        .await;
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use rustls_pki_types::pem::PemObject;

    use super::*;

    /// A certificate for `localhost` and a client configuration that trusts only it.
    fn pair() -> (TlsConfig, Arc<rustls::ClientConfig>) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let tls = TlsConfig::from_pem(cert.cert.pem(), cert.signing_key.serialize_pem()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(cert.cert.pem().as_bytes()).unwrap())
            .unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider().clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (tls, Arc::new(client))
    }

    /// A client may take up to the first-byte timeout to send its ClientHello (5 s of 10 here,
    /// on the paused clock), and then up to what is left of the handshake timeout.
    #[tokio::test(start_paused = true)]
    async fn a_late_client_hello_within_the_timeout_is_served() {
        let (tls, client) = pair();
        let config = ServerConfig::default()
            .first_byte_timeout(Duration::from_secs(10))
            .tls_handshake_timeout(Duration::from_secs(20));
        let accept = tls.acceptor(&config).unwrap();
        let (near, far) = tokio::io::duplex(64 * 1024);
        let connector = tokio_rustls::TlsConnector::from(client);
        let client = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
            connector.connect(name, near).await
        });
        assert_eq!(handshake(far, &accept, &config).await.map(drop), Ok(()));
        assert!(client.await.unwrap().is_ok());
        // Past the first-byte timeout: refused.
        let (near, far) = tokio::io::duplex(64 * 1024);
        let connector = tokio_rustls::TlsConnector::from(pair().1);
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(11)).await;
            let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
            connector.connect(name, near).await
        });
        assert_eq!(
            handshake(far, &accept, &config).await.map(drop),
            Err(Refused::NoHello)
        );
        late.abort();
    }

    /// The preface reader takes the preface and nothing after it, and refuses 24 bytes of
    /// anything else (hyper would meet them otherwise).
    #[tokio::test]
    async fn the_preface_reader_takes_only_the_preface() {
        let config = ServerConfig::default();
        let mut good: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04";
        assert_eq!(preface(&mut good, &config).await.unwrap(), H2_PREFACE);
        assert_eq!(
            good, b"\x00\x00\x12\x04",
            "nothing after the preface was read"
        );
        let mut http1: &[u8] = b"GET / HTTP/1.1\r\nhost: example.test\r\n\r\n";
        assert_eq!(preface(&mut http1, &config).await, Err(Refused::NoPreface));
    }

    /// Renewal from files reads them: a missing file is an error naming it and leaves the
    /// certificate in place; good files replace it.
    #[test]
    fn reload_from_files_reads_them() {
        let (tls, _) = pair();
        let dir = std::env::temp_dir().join(format!("nest-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let err = tls.reload_pem_files(&missing, &missing).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let renewed = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, renewed.cert.pem()).unwrap();
        std::fs::write(&key, renewed.signing_key.serialize_pem()).unwrap();
        let before = tls.resolver.current.read().unwrap().clone();
        tls.reload_pem_files(&cert, &key).unwrap();
        let after = tls.resolver.current.read().unwrap().clone();
        assert!(
            !Arc::ptr_eq(&before, &after),
            "the certificate was replaced"
        );
        std::fs::write(&key, "not a key").unwrap();
        assert!(tls.reload_pem_files(&cert, &key).is_err());
        let kept = tls.resolver.current.read().unwrap().clone();
        assert!(
            Arc::ptr_eq(&after, &kept),
            "a bad file leaves the certificate in place"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `max_tls_handshakes` is enforced (issue 36: no test set it): with every slot taken, a
    /// real client's handshake waits after its ClientHello (on the paused clock, an hour passes
    /// without it finishing); once a slot is free it completes.
    #[tokio::test(start_paused = true)]
    async fn a_handshake_waits_for_a_free_slot() {
        let (tls, client) = pair();
        let config = ServerConfig::default()
            .max_tls_handshakes(1)
            .first_byte_timeout(Duration::from_secs(7200))
            .tls_handshake_timeout(Duration::from_secs(7200));
        let accept = tls.acceptor(&config).unwrap();
        let busy = accept.handshakes.clone().acquire_owned().await.unwrap();
        let (near, far) = tokio::io::duplex(64 * 1024);
        let connector = tokio_rustls::TlsConnector::from(client);
        let client = tokio::spawn(async move {
            let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
            connector.connect(name, near).await
        });
        let server = {
            let accept = accept.clone();
            let config = config.clone();
            tokio::spawn(async move { handshake(far, &accept, &config).await.map(drop) })
        };
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(
            !server.is_finished(),
            "the handshake went on without a slot"
        );
        assert!(!client.is_finished());
        drop(busy);
        assert_eq!(server.await.unwrap(), Ok(()));
        assert!(client.await.unwrap().is_ok());
    }
}
