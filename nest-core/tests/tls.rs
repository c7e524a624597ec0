//! HTTPS (feature `tls`) over real sockets: SSE on HTTP/2 and HTTP/1.1 by ALPN, certificates made
//! here with rcgen (no checked-in keys), broken configuration, certificate renewal, handshake
//! timeout, plain HTTP on the TLS port, an expired certificate, and shutdown with close_notify.
#![cfg(feature = "tls")]

use std::sync::Arc;
use std::time::Duration;

use nest_core::prelude::*;
use nest_core::server::TlsConfig;
use nest_core::sse::EndReason;
use nest_core::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Events;

impl Controller for Events {
    fn routes(r: &mut Routes<Self>) {
        r.sse("/sse", |_: Arc<Self>| async {
            let (writer, body) = get_sse_stream(
                SseOptions::new()
                    .keep_alive(None)
                    .shutdown_retry(Duration::from_secs(3), Duration::ZERO),
            );
            writer.write("hello").unwrap();
            // The writer stays open with the stream (dropped by the hook).
            body.on_cancel(move |_| drop(writer))
        });
        r.get("/", |_: Arc<Self>| async { "ok" });
        r.get(
            "/over-tls",
            |_: Arc<Self>, req: nest_core::Request| async move {
                let tls = req.extensions().get::<nest_core::server::TlsConnection>();
                if tls.is_some() {
                    "tls"
                } else {
                    "plain"
                }
            },
        );
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1: (certificate PEM, key PEM).
fn certificate() -> (String, String) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    (cert.cert.pem(), cert.signing_key.serialize_pem())
}

async fn serve(tls: TlsConfig, config: ServerConfig) -> Server {
    NestApp::new()
        .config(config)
        .controller(Events)
        .bind_tls(([127, 0, 0, 1], 0), tls)
        .await
        .unwrap()
}

/// A client that trusts only `cert_pem`.
fn client(cert_pem: &str, http1: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap()]);
    let builder = if http1 { builder.http1_only() } else { builder };
    builder.build().unwrap()
}

async fn chunk(res: &mut reqwest::Response) -> String {
    let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk())
        .await
        .expect("timed out waiting for a chunk")
        .expect("stream error")
        .expect("stream ended");
    String::from_utf8(chunk.to_vec()).unwrap()
}

#[tokio::test]
async fn sse_over_https_speaks_http2_and_http1_by_alpn() {
    let (cert, key) = certificate();
    let server = serve(
        TlsConfig::from_pem(&cert, &key).unwrap(),
        ServerConfig::default(),
    )
    .await;
    let url = format!("https://localhost:{}/sse", server.local_addr().port());
    for (http1, version) in [
        (false, http::Version::HTTP_2),
        (true, http::Version::HTTP_11),
    ] {
        let mut res = client(&cert, http1).get(&url).send().await.unwrap();
        assert_eq!(res.version(), version);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        assert_eq!(chunk(&mut res).await, "data: hello\n\n");
    }
    server.shutdown(Duration::from_secs(1)).await;
}

/// Every request over nest's TLS carries `TlsConnection`, HTTP/1.1 (whose URI has no scheme)
/// as HTTP/2, so a cookie set over HTTPS gets `Secure`; a cleartext request does not.
#[tokio::test]
async fn requests_over_tls_are_marked_as_such() {
    let (cert, key) = certificate();
    let server = serve(
        TlsConfig::from_pem(&cert, &key).unwrap(),
        ServerConfig::default(),
    )
    .await;
    let url = format!("https://localhost:{}/over-tls", server.local_addr().port());
    for http1 in [false, true] {
        let res = client(&cert, http1).get(&url).send().await.unwrap();
        assert_eq!(res.text().await.unwrap(), "tls", "http1: {http1}");
    }
    server.shutdown(Duration::from_secs(1)).await;
    let plain = NestApp::new()
        .controller(Events)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let url = format!("http://{}/over-tls", plain.local_addr());
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.text().await.unwrap(), "plain");
    plain.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_broken_certificate_or_key_is_an_error_at_start() {
    let (cert, key) = certificate();
    let (_, other_key) = certificate();
    for (what, cert, key, says) in [
        ("empty chain", "", key.as_str(), "empty"),
        (
            "garbage key",
            cert.as_str(),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "key",
        ),
        ("no key", cert.as_str(), "", "private key"),
        (
            "mismatched key",
            cert.as_str(),
            other_key.as_str(),
            "does not match",
        ),
    ] {
        let err = TlsConfig::from_pem(cert, key).unwrap_err();
        assert!(err.is_tls(), "{what}: {err}");
        assert!(err.to_string().contains(says), "{what}: {err}");
    }
    let err =
        TlsConfig::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
    assert!(
        err.is_io() && err.to_string().contains("/nonexistent/cert.pem"),
        "{err}"
    );
}

#[tokio::test]
async fn a_renewed_certificate_is_used_by_new_connections() {
    let (old_cert, old_key) = certificate();
    let (new_cert, new_key) = certificate();
    let tls = TlsConfig::from_pem(&old_cert, &old_key).unwrap();
    let server = serve(tls.clone(), ServerConfig::default()).await;
    let url = format!("https://localhost:{}/", server.local_addr().port());
    assert!(
        client(&new_cert, true).get(&url).send().await.is_err(),
        "not renewed yet"
    );
    // A bad renewal leaves the old certificate in place.
    assert!(tls.reload_pem(&new_cert, &old_key).is_err());
    assert_eq!(
        client(&old_cert, true)
            .get(&url)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    tls.reload_pem(&new_cert, &new_key).unwrap();
    let res = client(&new_cert, true).get(&url).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "ok");
    server.shutdown(Duration::from_secs(1)).await;
}

/// Reads until the server closes the connection (EOF or reset), failing after 10 s.
async fn closed_by_server(socket: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut all)).await;
    assert!(read.is_ok(), "the server must close the connection");
    all
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_is_dropped() {
    let (cert, key) = certificate();
    let config = ServerConfig::default().tls_handshake_timeout(Duration::from_millis(200));
    let server = serve(TlsConfig::from_pem(&cert, &key).unwrap(), config).await;
    let mut socket = TcpStream::connect(server.local_addr()).await.unwrap();
    assert!(closed_by_server(&mut socket).await.is_empty());
    server.shutdown(Duration::from_secs(1)).await;
}

/// A rustls client configuration that trusts only `cert_pem` and offers `alpn`.
fn raw_client_config(cert_pem: &str, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS client that negotiates `h2` and never sends HTTP/2's preface is closed after the
/// first-byte timeout (before: never; 1,000 of them stayed open after 76 s, and 50 locked a
/// server with a connection cap of 50 for good). The timeouts differ, so the one that acts is
/// the one named: first byte 300 ms, head read 60 s, handshake 30 s.
#[tokio::test]
async fn an_h2_client_that_never_sends_the_preface_is_closed_after_the_first_byte_timeout() {
    let (cert, key) = certificate();
    let config = ServerConfig::default()
        .first_byte_timeout(Duration::from_millis(300))
        .header_read_timeout(Duration::from_secs(60))
        .tls_handshake_timeout(Duration::from_secs(30));
    let server = serve(TlsConfig::from_pem(&cert, &key).unwrap(), config).await;
    let connector = tokio_rustls::TlsConnector::from(raw_client_config(&cert, &[b"h2"]));
    let tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("the handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let started = tokio::time::Instant::now();
    let mut all = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut all)).await;
    assert!(read.is_ok(), "the server must close a silent h2 connection");
    eprintln!(
        "RELIABILITY TLS h2 without preface: closed after {:?} (first_byte_timeout 300 ms)",
        started.elapsed()
    );
    // And a real HTTP/2 client is served as before.
    let url = format!("https://localhost:{}/", server.local_addr().port());
    let res = client(&cert, false).get(&url).send().await.unwrap();
    assert_eq!(res.version(), http::Version::HTTP_2);
    server.shutdown(Duration::from_secs(1)).await;
}

/// Connections that never send a ClientHello, and clients that send one and then stall, hold no
/// handshake slot: with one slot, 40 of each, and long timeouts (first byte 20 s, handshake
/// 30 s), a real HTTPS request is answered at once (before: every slot was taken by a silent
/// TCP connection for the whole handshake timeout; 300 of them made real requests wait 9 s).
#[tokio::test]
async fn silent_and_stalled_handshakes_hold_no_handshake_slot() {
    let (cert, key) = certificate();
    let config = ServerConfig::default()
        .max_tls_handshakes(1)
        .first_byte_timeout(Duration::from_secs(20))
        .tls_handshake_timeout(Duration::from_secs(30));
    let server = serve(TlsConfig::from_pem(&cert, &key).unwrap(), config).await;
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(TcpStream::connect(server.local_addr()).await.unwrap());
    }
    let client_config = raw_client_config(&cert, &[b"http/1.1"]);
    for _ in 0..40 {
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut conn = rustls::ClientConnection::new(client_config.clone(), name).unwrap();
        let mut hello = Vec::new();
        conn.write_tls(&mut hello).unwrap();
        let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
        tcp.write_all(&hello).await.unwrap();
        // Never reads the server's flight, never finishes.
        held.push(tcp);
    }
    let url = format!("https://localhost:{}/", server.local_addr().port());
    let started = tokio::time::Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(8), client(&cert, true).get(&url).send())
        .await
        .expect("a real client must not wait for the silent ones' slots")
        .unwrap();
    assert_eq!(res.status(), 200);
    eprintln!(
        "RELIABILITY TLS slots: 40 silent + 40 stalled handshakes, 1 slot: a real request answered in {:?}",
        started.elapsed()
    );
    drop(held);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_closed_and_tls_goes_on() {
    let (cert, key) = certificate();
    let server = serve(
        TlsConfig::from_pem(&cert, &key).unwrap(),
        ServerConfig::default(),
    )
    .await;
    let mut socket = TcpStream::connect(server.local_addr()).await.unwrap();
    socket
        .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_by_server(&mut socket).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "no HTTP answer in clear text"
    );
    let url = format!("https://localhost:{}/", server.local_addr().port());
    assert_eq!(
        client(&cert, false)
            .get(&url)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_expired_certificate_is_refused_by_the_client() {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    // The server starts with it (renewal may be on its way); the client refuses it.
    let tls = TlsConfig::from_pem(cert.pem(), key.serialize_pem()).unwrap();
    let server = serve(tls, ServerConfig::default()).await;
    let url = format!("https://localhost:{}/", server.local_addr().port());
    let err = client(&cert.pem(), true)
        .get(&url)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn shutdown_ends_tls_streams_with_the_final_event_and_close_notify() {
    let (cert, key) = certificate();
    let server = serve(
        TlsConfig::from_pem(&cert, &key).unwrap(),
        ServerConfig::default(),
    )
    .await;
    let url = format!("https://localhost:{}/sse", server.local_addr().port());
    let mut readers = Vec::new();
    for http1 in [true, false] {
        let mut res = client(&cert, http1).get(&url).send().await.unwrap();
        assert_eq!(chunk(&mut res).await, "data: hello\n\n");
        readers.push(tokio::spawn(async move {
            // rustls reports a connection closed without close_notify as an error: a clean
            // end of the body means the server sent it (HTTP/1.1) or ended the stream (HTTP/2).
            let mut all = String::new();
            while let Some(chunk) = res.chunk().await.expect("a clean end of the stream") {
                all.push_str(std::str::from_utf8(&chunk).unwrap());
            }
            all
        }));
    }
    server.shutdown(Duration::from_secs(5)).await;
    for reader in readers {
        let text = tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .expect("the stream must end")
            .unwrap();
        assert_eq!(text, "retry: 3000\n\n");
    }
}

/// The routes of the direct path over TLS: a stream that says whether it saw [`TlsConnection`]
/// and sends a 40 KB event (three TLS records), one whose writer the test keeps, and one that
/// ends after its event. Each reports its end.
#[derive(Clone)]
struct Direct {
    ended: tokio::sync::mpsc::UnboundedSender<EndReason>,
    writer: Arc<std::sync::Mutex<Option<SseWriter>>>,
}

impl Controller for Direct {
    fn routes(r: &mut Routes<Self>) {
        r.sse(
            "/marked",
            |this: Arc<Self>, req: nest_core::Request| async move {
                let tls = req
                    .extensions()
                    .get::<nest_core::server::TlsConnection>()
                    .is_some();
                let (writer, body) = get_sse_stream(SseOptions::new().keep_alive(None));
                writer.write(if tls { "tls" } else { "plain" }).unwrap();
                writer.write("x".repeat(40_000)).unwrap();
                let ended = this.ended.clone();
                body.on_cancel(move |reason| {
                    drop(writer);
                    let _ = ended.send(reason);
                })
            },
        );
        r.sse("/kept", |this: Arc<Self>| async move {
            let (writer, body) = get_sse_stream(SseOptions::new().keep_alive(None));
            writer.write("first").unwrap();
            *this.writer.lock().unwrap() = Some(writer);
            body
        });
        r.sse("/finite", |_: Arc<Self>| async {
            let (writer, body) = get_sse_stream(SseOptions::new().keep_alive(None));
            writer.write("one").unwrap();
            body
        });
    }
}

type Ended = tokio::sync::mpsc::UnboundedReceiver<EndReason>;

async fn serve_direct(cert: &str, key: &str) -> (Server, Direct, Ended) {
    serve_direct_with(cert, key, ServerConfig::default()).await
}

async fn serve_direct_with(cert: &str, key: &str, config: ServerConfig) -> (Server, Direct, Ended) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let direct = Direct {
        ended: tx,
        writer: Arc::default(),
    };
    let server = NestApp::new()
        // On whatever `NEST_TEST_DIRECT_SSE` says: these tests are about the direct path.
        .config(config.direct_sse(true))
        .controller(direct.clone())
        .bind_tls(([127, 0, 0, 1], 0), TlsConfig::from_pem(cert, key).unwrap())
        .await
        .unwrap();
    (server, direct, rx)
}

/// A raw TLS client (HTTP/1.1 by ALPN, the protocol versions given) that sent `GET path`.
async fn raw_get(
    server: &Server,
    cert: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    path: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut tls = raw_connect(server, cert, versions).await;
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    tls
}

/// A raw TLS client (HTTP/1.1 by ALPN, the protocol versions given), handshake done.
async fn raw_connect(
    server: &Server,
    cert: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.expect("the handshake")
}

/// Reads from `tls` until what was read contains `needle`; all that was read.
async fn read_until(tls: &mut tokio_rustls::client::TlsStream<TcpStream>, needle: &str) -> String {
    let mut all = Vec::new();
    let reading = async {
        while !String::from_utf8_lossy(&all).contains(needle) {
            let mut buf = [0u8; 4096];
            let n = tls.read(&mut buf).await.expect("a readable stream");
            assert!(
                n > 0,
                "the stream ended before {needle:?}: {:?}",
                String::from_utf8_lossy(&all)
            );
            all.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .expect("timed out");
    String::from_utf8(all).unwrap()
}

/// An HTTP/1.1 SSE stream over TLS 1.3 is written by the direct path (its head says
/// `connection: close`, which hyper's does not), with the request marked as over TLS; an event
/// larger than a TLS record (40 KB: three records) arrives whole; and the client's close runs the
/// cancel hook with `ClientGone`.
#[tokio::test]
async fn an_http1_sse_stream_over_tls13_is_written_directly() {
    let (cert, key) = certificate();
    let (server, _direct, mut ended) = serve_direct(&cert, &key).await;
    let url = format!("https://localhost:{}/marked", server.local_addr().port());
    let mut res = client(&cert, true).get(&url).send().await.unwrap();
    assert_eq!(res.version(), http::Version::HTTP_11);
    assert_eq!(
        res.headers()["connection"],
        "close",
        "the direct path's head"
    );
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let big = format!("data: {}\n\n", "x".repeat(40_000));
    while text.len() < "data: tls\n\n".len() + big.len() {
        text.push_str(&chunk(&mut res).await);
    }
    assert_eq!(text, format!("data: tls\n\n{big}"));
    drop(res);
    let reason = tokio::time::timeout(Duration::from_secs(10), ended.recv())
        .await
        .expect("the cancel hook runs when the client closes");
    assert_eq!(reason, Some(EndReason::ClientGone));
    server.shutdown(Duration::from_secs(1)).await;
}

/// A stream that ends is closed as TLS closes: its last chunk, then `close_notify` (rustls
/// reads to the end without error only after one), then FIN.
#[tokio::test]
async fn a_direct_tls_stream_ends_with_its_last_chunk_and_close_notify() {
    let (cert, key) = certificate();
    let (server, _direct, _ended) = serve_direct(&cert, &key).await;
    let mut tls = raw_get(&server, &cert, &[&rustls::version::TLS13], "/finite").await;
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut all))
        .await
        .expect("the server ends the stream")
        .expect("close_notify before the connection's end");
    let text = String::from_utf8(all).unwrap();
    assert!(text.contains("connection: close\r\n"), "{text}");
    assert!(
        text.ends_with("\r\n\r\nb\r\ndata: one\n\n\r\n0\r\n\r\n"),
        "{text:?}"
    );
    server.shutdown(Duration::from_secs(1)).await;
}

/// A TLS 1.2 connection is served by hyper as before (no `connection: close`), its stream
/// whole.
#[tokio::test]
async fn an_sse_stream_over_tls12_is_served_by_hyper() {
    let (cert, key) = certificate();
    let (server, _direct, _ended) = serve_direct(&cert, &key).await;
    let mut tls = raw_get(&server, &cert, &[&rustls::version::TLS12], "/marked").await;
    let text = read_until(&mut tls, "data: tls\n\n").await;
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(!text.contains("connection: close"), "{text}");
    server.shutdown(Duration::from_secs(1)).await;
}

/// The direct path does not read what the client sends: a client that updates its keys (a
/// `KeyUpdate` asking the server to update too) still decrypts every event after it, sealed
/// with the key it had.
#[tokio::test]
async fn a_client_key_update_leaves_a_direct_stream_readable() {
    let (cert, key) = certificate();
    let (server, direct, _ended) = serve_direct(&cert, &key).await;
    let mut tls = raw_get(&server, &cert, &[&rustls::version::TLS13], "/kept").await;
    let head = read_until(&mut tls, "data: first\n\n").await;
    assert!(head.contains("connection: close\r\n"), "{head}");
    tls.get_mut().1.refresh_traffic_keys().unwrap();
    tls.flush().await.unwrap();
    let writer = direct.writer.lock().unwrap().take().unwrap();
    for n in 0..3 {
        writer.write(format!("after {n}")).unwrap();
    }
    read_until(&mut tls, "data: after 2\n\n").await;
    drop(writer);
    server.shutdown(Duration::from_secs(1)).await;
}

/// The direct path looks at the first TLS record only: a head split over two records is served
/// by hyper, whole (hyper reads what the direct path looked at and did not consume).
#[tokio::test]
async fn a_head_split_over_two_records_is_served_by_hyper() {
    let (cert, key) = certificate();
    let (server, _direct, _ended) = serve_direct(&cert, &key).await;
    let mut tls = raw_connect(&server, &cert, &[&rustls::version::TLS13]).await;
    tls.write_all(b"GET /marked HTTP/1.1\r\n").await.unwrap();
    tls.flush().await.unwrap();
    tls.write_all(b"host: localhost\r\n\r\n").await.unwrap();
    let text = read_until(&mut tls, "data: tls\n\n").await;
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(!text.contains("connection: close"), "hyper's head: {text}");
    server.shutdown(Duration::from_secs(1)).await;
}

/// A client that finishes its handshake and sends no request is closed after the first-byte
/// timeout (300 ms here; the head read timeout, 60 s, is not the one that acts), as a cleartext
/// one is.
#[tokio::test]
async fn a_silent_client_after_its_handshake_is_closed_after_the_first_byte_timeout() {
    let (cert, key) = certificate();
    let config = ServerConfig::default()
        .first_byte_timeout(Duration::from_millis(300))
        .header_read_timeout(Duration::from_secs(60));
    let (server, _direct, _ended) = serve_direct_with(&cert, &key, config).await;
    let mut tls = raw_connect(&server, &cert, &[&rustls::version::TLS13]).await;
    let mut all = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut all)).await;
    assert!(read.is_ok(), "the server must close a silent connection");
    assert!(all.is_empty(), "{all:?}");
    server.shutdown(Duration::from_secs(1)).await;
}

/// A client that resets its connection right after its handshake, before any request, gives
/// its place back at once (not after the first-byte timeout, 60 s here): with room for one
/// connection, the next client is served.
#[tokio::test]
async fn a_client_that_resets_after_its_handshake_frees_its_place_at_once() {
    let (cert, key) = certificate();
    let config = ServerConfig::default()
        .max_connections(Some(1))
        .first_byte_timeout(Duration::from_secs(60));
    let (server, _direct, _ended) = serve_direct_with(&cert, &key, config).await;
    let tls = raw_connect(&server, &cert, &[&rustls::version::TLS13]).await;
    socket2::SockRef::from(tls.get_ref().0)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(tls);
    let url = format!("https://localhost:{}/finite", server.local_addr().port());
    let res = tokio::time::timeout(
        Duration::from_secs(10),
        client(&cert, true).get(&url).send(),
    )
    .await
    .expect("the reset client's place was given back")
    .unwrap();
    assert_eq!(res.text().await.unwrap(), "data: one\n\n");
    server.shutdown(Duration::from_secs(1)).await;
}
