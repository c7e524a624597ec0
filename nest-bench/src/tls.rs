//! HTTPS in the benchmarks: `serve --tls-cert PATH` makes a fresh self-signed certificate and
//! writes it to PATH; the clients (`load`/`idle --tls-cert PATH`) trust that certificate alone.
//! The handshake is verified for real, as a browser's would be against a trusted certificate:
//! no verifier that accepts anything. rustls with the ring provider on both sides, as nest-core;
//! the client offers cipher suites in a browser's order.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use nest_core::server::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::client::tcp_connect;

/// What the first TLS handshake agreed (version and cipher suite), kept for the result.
#[derive(Debug, Default)]
pub(crate) struct Agreed(OnceLock<String>);

impl Agreed {
    /// Keeps `agreed` unless a handshake already told.
    pub(crate) fn record(&self, agreed: String) {
        let _ = self.0.set(agreed);
    }

    /// What the first handshake agreed, if one told.
    pub(crate) fn get(&self) -> Option<&String> {
        self.0.get()
    }
}

/// The name the certificate is made for and the clients ask for (SNI).
const HOST: &str = "localhost";

/// A self-signed certificate for `localhost` and 127.0.0.1, written to `cert_path` (PEM) for
/// the clients; the server's side of it.
pub(crate) fn server_config(cert_path: &Path) -> crate::Result<TlsConfig> {
    let made = rcgen::generate_simple_self_signed(vec![HOST.to_owned(), "127.0.0.1".to_owned()])
        .map_err(|e| format!("generate a certificate: {e}"))?;
    let cert = made.cert.pem();
    std::fs::write(cert_path, &cert)
        .map_err(|e| format!("write the certificate to {}: {e}", cert_path.display()))?;
    TlsConfig::from_pem(cert, made.signing_key.serialize_pem())
        .map_err(|e| format!("TLS configuration: {e}"))
}

/// The raw writer's TLS (the baseline of the HTTPS rows): a rustls server configuration with a
/// fresh self-signed certificate, written to `cert_path` as for nest; ring, TLS 1.2 and 1.3,
/// ALPN `http/1.1`, rustls's defaults otherwise (what a hand-written tokio-rustls server has).
pub(crate) fn raw_server_config(cert_path: &Path) -> crate::Result<Arc<rustls::ServerConfig>> {
    let made = rcgen::generate_simple_self_signed(vec![HOST.to_owned(), "127.0.0.1".to_owned()])
        .map_err(|e| format!("generate a certificate: {e}"))?;
    std::fs::write(cert_path, made.cert.pem())
        .map_err(|e| format!("write the certificate to {}: {e}", cert_path.display()))?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(made.signing_key.serialize_der())
        .map_err(|e| format!("the certificate's key: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS versions: {e}"))?
    .with_no_client_auth()
    .with_single_cert(vec![made.cert.der().clone()], key)
    .map_err(|e| format!("TLS configuration: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The protocol a client offers by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alpn {
    /// `http/1.1`.
    Http1,
    /// `h2`.
    Http2,
}

/// A TLS client that trusts one certificate and offers one protocol.
#[derive(Clone)]
pub(crate) struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
    alpn: Alpn,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("name", &self.name)
            .field("alpn", &self.alpn)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Trusts the certificates in the PEM file `cert_path` and nothing else.
    pub(crate) fn new(cert_path: &Path, alpn: Alpn) -> crate::Result<Self> {
        let pem = std::fs::read(cert_path)
            .map_err(|e| format!("read the certificate {}: {e}", cert_path.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("{}: {e}", cert_path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", cert_path.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("{}: no certificate in it", cert_path.display()));
        }
        let mut provider = rustls::crypto::ring::default_provider();
        // A browser's order: Chromium and Firefox offer AES-128-GCM first, and a rustls server
        // (nest's) takes the client's preference.
        provider
            .cipher_suites
            .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS client: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![match alpn {
            Alpn::Http1 => b"http/1.1".to_vec(),
            Alpn::Http2 => b"h2".to_vec(),
        }];
        let name = ServerName::try_from(HOST).map_err(|e| format!("server name: {e}"))?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            name,
            alpn,
        })
    }

    /// Connects (retrying while the accept queue is full) and completes the handshake, whose
    /// version and cipher suite go to `agreed`; an error when the server did not agree to the
    /// protocol offered.
    pub(crate) async fn connect(
        &self,
        addr: SocketAddr,
        agreed: &Agreed,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let sock = tcp_connect(addr).await?;
        let tls = self.connector.connect(self.name.clone(), sock).await?;
        agreed.record(negotiated(&tls));
        let wanted: &[u8] = match self.alpn {
            Alpn::Http1 => b"http/1.1",
            Alpn::Http2 => b"h2",
        };
        if tls.get_ref().1.alpn_protocol() != Some(wanted) {
            return Err(std::io::Error::other(
                "the server refused the ALPN protocol",
            ));
        }
        Ok(tls)
    }
}

/// What a handshake agreed, for the report: `TLSv1_3 TLS13_AES_256_GCM_SHA384`.
fn negotiated(tls: &TlsStream<TcpStream>) -> String {
    let conn = tls.get_ref().1;
    let version = conn
        .protocol_version()
        .map_or_else(|| "?".to_owned(), |v| format!("{v:?}"));
    let suite = conn
        .negotiated_cipher_suite()
        .map_or_else(|| "?".to_owned(), |s| format!("{:?}", s.suite()));
    format!("{version} {suite}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_trusts_only_a_pem_file_with_a_certificate() {
        let dir = std::env::temp_dir().join(format!("nest-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("cert.pem");
        server_config(&cert).unwrap();
        assert!(TlsClient::new(&cert, Alpn::Http2).is_ok());
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = TlsClient::new(&empty, Alpn::Http1).unwrap_err();
        assert!(err.contains("no certificate"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
