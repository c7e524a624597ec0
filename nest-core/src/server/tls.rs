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
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::conn::{serve_io, Stop};
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
        Ok(Accept {
            acceptor: TlsAcceptor::from(Arc::new(tls)),
            handshakes: Arc::new(Semaphore::new(config.max_tls_handshakes)),
        })
    }
}

/// What the accept loop needs to serve TLS: the acceptor and the handshake slots.
#[derive(Clone)]
pub(super) struct Accept {
    acceptor: TlsAcceptor,
    handshakes: Arc<Semaphore>,
}

/// One TLS connection: a handshake under the timeout and the handshake limit, then HTTP/2 or
/// HTTP/1.1 as ALPN chose (HTTP/1.1 when the client offered none).
pub(super) async fn serve(
    stream: TcpStream,
    accept: Accept,
    app: NestService,
    config: Arc<ServerConfig>,
    stop: Arc<Stop>,
) {
    let handshake = async {
        let _slot = accept.handshakes.acquire().await.ok()?;
        tokio::select! {
            tls = accept.acceptor.accept(stream) => tls.ok(),
            // Shutting down: a connection still in its handshake is closed.
            () = stop.token.cancelled() => None,
        }
    };
    // Boxed, as the sniff is: its state would otherwise stay in the task for the connection's life.
    let tls = match tokio::time::timeout(config.tls_handshake_timeout, Box::pin(handshake)).await {
        Ok(Some(tls)) => tls,
        // A failed handshake (plain HTTP on the TLS port, an unknown CA at the client) or a
        // client that never finished it: closed, logged at debug (O(1) per client, quiet).
        Ok(None) => {
            tracing::debug!("TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return;
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    serve_io(
        hyper_util::rt::TokioIo::new(tls),
        h2,
        app,
        None,
        &config,
        &stop,
    )
    .await;
}
