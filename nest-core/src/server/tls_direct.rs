//! The direct SSE path over TLS (feature `tls`): an HTTP/1.1 SSE response over TLS 1.3,
//! written straight to the socket as the cleartext direct path writes it (see [`direct`](super::direct)), each
//! write sealed as TLS records here.
//!
//! Over hyper, an HTTPS SSE connection keeps hyper's two 8 KiB buffers and rustls's connection
//! (its record buffers, the handshake's leftovers, both directions' keys) for its whole life:
//! 21.5 KiB per idle connection. Once an SSE response has started, nothing more is read from the
//! connection but its close, so only the sending direction's key and sequence number are
//! needed. For the first request of an HTTP/1.1 connection over TLS 1.3 that can be an SSE
//! stream (the same test as the cleartext path's, on the first decrypted record, which is not
//! consumed), the app runs as hyper would run it, and when it answers with a stream:
//!
//! - the request's head is consumed, rustls's pending records (the session tickets) are
//!   flushed, and the connection's traffic secrets are taken from rustls
//!   (`dangerous_extract_secrets`, the way kTLS is set up); rustls's connection is dropped;
//! - the head and each frame of the body become one HTTP/1.1 chunk sealed in TLS records of at
//!   most 16 KiB with the suite's AEAD ([`Seal`]), and the body's end becomes the last chunk and
//!   a `close_notify` alert, then FIN;
//! - what the client sends after its request is read and dropped unopened (its `close_notify`,
//!   a `KeyUpdate`, which asks nothing of a server that does not read), counted against
//!   [`DISCARD_LIMIT`](super::direct::DISCARD_LIMIT); its close ends the stream.
//!
//! TLS 1.2 connections, HTTP/2 (ALPN `h2`), and every other request go to hyper unchanged.
//! A key seals at most its suite's confidentiality limit of records (2^24 for AES-GCM): a stream
//! that reaches it is reset, and its client reconnects with `Last-Event-ID`.

use std::io::{self, BufRead};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::Frame;
use rustls::crypto::cipher::{MessageEncrypter, OutboundChunks, OutboundPlainMessage};
use rustls::{ConnectionTrafficSecrets, ContentType, ProtocolVersion, SupportedCipherSuite};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::conn::TlsConnection;
use super::direct::{self, First};
use super::stop::Stop;
use crate::app::NestService;
use crate::body::{Body, BoxError};
use crate::config::ServerConfig;

/// The most plaintext in one TLS record (RFC 8446 §5.1: 2^14 bytes).
const MAX_FRAGMENT: usize = 16 * 1024;

/// A `close_notify` alert's body: level warning, description `close_notify` (RFC 8446 §6.1).
const CLOSE_NOTIFY: &[u8] = &[1, 0];

/// The first request of an HTTP/1.1 connection over TLS: when it can be an SSE stream, the app
/// runs on it (see [`direct::first`]; here the head is the first decrypted record's, read
/// without consuming it). `Hyper(None)` for TLS 1.2, a head that does not fit in the first
/// record, and whatever the direct path does not serve; `Closed` when the client closed or sent
/// nothing within the first-byte timeout, or the server is closing.
pub(super) async fn first(
    tls: &mut TlsStream<TcpStream>,
    app: &NestService,
    config: &ServerConfig,
    stop: &Stop,
) -> First {
    if tls.get_ref().1.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
        return First::Hyper(None);
    }
    let seen = tokio::select! {
        seen = tokio::time::timeout(config.first_byte_timeout, first_record(tls)) => seen,
        () = stop.token.cancelled() => return First::Closed,
    };
    let candidate = match seen {
        Ok(Ok(true)) => {
            let conn = tls.get_mut().1;
            conn.reader()
                .fill_buf()
                .ok()
                .and_then(|buf| direct::candidate(buf, app, config))
        }
        // The client closed (a `close_notify` first, or not): hyper sees the same end.
        Ok(Ok(false)) => return First::Hyper(None),
        Ok(Err(_)) | Err(_) => return First::Closed,
    };
    let Some((mut request, head_len)) = candidate else {
        return First::Hyper(None);
    };
    request.extensions_mut().insert(TlsConnection);
    let Some(res) = direct::answer(request, app, stop).await else {
        return First::Closed;
    };
    if !direct::is_stream(&res) {
        return First::Hyper(Some(res));
    }
    tls.get_mut().1.reader().consume(head_len);
    let (parts, body) = res.into_parts();
    First::Stream(direct::response_head(parts.status, &parts.headers), body)
}

/// Reads TLS records until the connection holds decrypted bytes (`true`) or the client closed
/// (`false`). Nothing decrypted is consumed: hyper reads it next when the direct path does not
/// serve the request.
async fn first_record(tls: &mut TlsStream<TcpStream>) -> io::Result<bool> {
    let (sock, conn) = tls.get_mut();
    loop {
        if let Some(seen) = decrypted(conn) {
            return Ok(seen);
        }
        sock.readable().await?;
        match conn.read_tls(&mut TryRead(sock)) {
            Ok(0) => return Ok(false),
            Ok(_) => {
                conn.process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whether the connection holds decrypted bytes (`true`) or the client closed (`false`); `None`
/// while it has nothing yet.
fn decrypted(conn: &mut rustls::ServerConnection) -> Option<bool> {
    match conn.reader().fill_buf() {
        Ok(buf) => Some(!buf.is_empty()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        // The socket closed without `close_notify`.
        Err(_) => Some(false),
    }
}

/// A socket's non-blocking reads as `io::Read`, for rustls's `read_tls`.
struct TryRead<'a>(&'a TcpStream);

impl io::Read for TryRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

/// Takes the connection off rustls for a direct stream: flushes what rustls still has to send,
/// takes the sending direction's secrets, and seals the response `head` and `body` with them.
/// The socket, the sealed head and the sealed body; `None` when the client stopped taking bytes
/// before the flush ended (within the first-byte timeout) or the secrets could not be had.
pub(super) async fn take(
    mut tls: TlsStream<TcpStream>,
    head: Bytes,
    body: Body,
    config: &ServerConfig,
) -> Option<(TcpStream, Bytes, Body)> {
    match tokio::time::timeout(config.first_byte_timeout, tls.flush()).await {
        Ok(Ok(())) => {}
        _ => return None,
    }
    let (sock, conn) = tls.into_inner();
    let Some(SupportedCipherSuite::Tls13(suite)) = conn.negotiated_cipher_suite() else {
        return None;
    };
    let secrets = match conn.dangerous_extract_secrets() {
        Ok(secrets) => secrets,
        Err(err) => {
            tracing::debug!(error = %err, "TLS secrets not available: connection closed");
            return None;
        }
    };
    let (seq, secrets) = secrets.tx;
    let mut seal = Seal::new(suite, seq, secrets)?;
    let head = seal.seal(ContentType::ApplicationData, &[&head]).ok()?;
    Some((
        sock,
        head,
        Body::new(Sealed {
            body,
            seal,
            done: false,
        }),
    ))
}

/// The sending half of a TLS 1.3 connection: its AEAD key and the next record's sequence number.
pub(crate) struct Seal {
    encrypter: Box<dyn MessageEncrypter>,
    seq: u64,
    /// The most records this key may seal (the suite's confidentiality limit).
    limit: u64,
}

impl Seal {
    /// The sealer of `suite` with `secrets`, whose next record has sequence number `seq`.
    /// `None` for secrets of an AEAD rustls added after this was written.
    pub(crate) fn new(
        suite: &'static rustls::Tls13CipherSuite,
        seq: u64,
        secrets: ConnectionTrafficSecrets,
    ) -> Option<Self> {
        let (key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv }
            | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
            | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (key, iv),
            _ => return None,
        };
        Some(Self {
            encrypter: suite.aead_alg.encrypter(key, iv),
            seq,
            limit: suite.common.confidentiality_limit,
        })
    }

    /// How many bytes [`seal`](Self::seal) makes of `len` bytes of plaintext: a 5-byte header
    /// and the AEAD's payload (the content type and the tag added) per record of at most
    /// [`MAX_FRAGMENT`] bytes.
    fn sealed_len(&self, len: usize) -> usize {
        let full = len / MAX_FRAGMENT;
        let rest = len % MAX_FRAGMENT;
        let record = |plain| 5 + self.encrypter.encrypted_payload_len(plain);
        full * record(MAX_FRAGMENT)
            + if rest > 0 || full == 0 {
                record(rest)
            } else {
                0
            }
    }

    /// `parts`, one after the other, as records of content type `typ` (of at most
    /// [`MAX_FRAGMENT`] bytes of plaintext each), ready for the socket. An error once the key
    /// has sealed its limit of records.
    pub(crate) fn seal(
        &mut self,
        typ: ContentType,
        parts: &[&[u8]],
    ) -> Result<Bytes, rustls::Error> {
        let mut payload = OutboundChunks::new(parts);
        let len = payload.len();
        // Several records are copied into one buffer of their exact size (growing it as they
        // came copied each record again, 3/4 of a 64 KiB frame).
        let mut sealed = if len > MAX_FRAGMENT {
            BytesMut::with_capacity(self.sealed_len(len))
        } else {
            BytesMut::new()
        };
        loop {
            let (now, rest) = payload.split_at(MAX_FRAGMENT);
            if self.seq >= self.limit {
                return Err(rustls::Error::EncryptError);
            }
            let record = self
                .encrypter
                .encrypt(
                    OutboundPlainMessage {
                        typ,
                        // TLS 1.3's records say TLS 1.2 (RFC 8446 §5.1).
                        version: ProtocolVersion::TLSv1_2,
                        payload: now,
                    },
                    self.seq,
                )?
                .encode();
            self.seq += 1;
            if rest.is_empty() && sealed.is_empty() {
                // One record (every frame up to 16 KiB): handed on without a copy.
                return Ok(Bytes::from(record));
            }
            sealed.extend_from_slice(&record);
            if rest.is_empty() {
                return Ok(sealed.freeze());
            }
            payload = rest;
        }
    }
}

/// A body whose frames are HTTP/1.1 chunks sealed in TLS records; its end is the last chunk
/// and a `close_notify`.
struct Sealed {
    body: Body,
    seal: Seal,
    done: bool,
}

impl http_body::Body for Sealed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            let sealed = match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    // Trailers are not sent (as on the cleartext path); an empty chunk would
                    // end the body.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    let mut size = [0u8; 18];
                    let line = usize::from(direct::format_size(data.len(), &mut size));
                    this.seal.seal(
                        ContentType::ApplicationData,
                        &[&size[..line], &data, b"\r\n"],
                    )
                }
                Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                None => {
                    this.done = true;
                    let last = this
                        .seal
                        .seal(ContentType::ApplicationData, &[direct::LAST_CHUNK]);
                    let close = this.seal.seal(ContentType::Alert, &[CLOSE_NOTIFY]);
                    last.and_then(|last| Ok([last, close?].concat().into()))
                }
            };
            return Poll::Ready(Some(sealed.map(Frame::data).map_err(Into::into)));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;

    use http_body_util::BodyExt;
    use rustls::crypto::cipher::{InboundOpaqueMessage, MessageDecrypter};
    use rustls::Tls13CipherSuite;

    use super::*;

    /// The TLS 1.3 suites of nest's provider.
    fn suites() -> Vec<&'static Tls13CipherSuite> {
        rustls::crypto::ring::default_provider()
            .cipher_suites
            .iter()
            .filter_map(|suite| match suite {
                SupportedCipherSuite::Tls13(suite) => Some(*suite),
                _ => None,
            })
            .collect()
    }

    /// A real TLS 1.3 handshake in memory on `suite`: the server's sending secrets and the
    /// client's receiving ones (the same key, from each side), with their sequence numbers.
    fn handshake(
        suite: &'static Tls13CipherSuite,
    ) -> (
        (u64, ConnectionTrafficSecrets),
        (u64, ConnectionTrafficSecrets),
    ) {
        let provider = Arc::new(rustls::crypto::CryptoProvider {
            cipher_suites: vec![SupportedCipherSuite::Tls13(suite)],
            ..rustls::crypto::ring::default_provider()
        });
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let der = cert.cert.der().clone();
        let key =
            rustls_pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], key)
            .unwrap();
        server.enable_secret_extraction = true;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der).unwrap();
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.enable_secret_extraction = true;
        let mut server = rustls::ServerConnection::new(Arc::new(server)).unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
        while client.is_handshaking() || server.is_handshaking() || server.wants_write() {
            let mut wire = Vec::new();
            client.write_tls(&mut wire).unwrap();
            server.read_tls(&mut wire.as_slice()).unwrap();
            server.process_new_packets().unwrap();
            wire.clear();
            server.write_tls(&mut wire).unwrap();
            client.read_tls(&mut wire.as_slice()).unwrap();
            client.process_new_packets().unwrap();
        }
        let sent = server.dangerous_extract_secrets().unwrap().tx;
        let received = client.dangerous_extract_secrets().unwrap().rx;
        assert_eq!(sent.0, received.0, "every record the server sent was read");
        (sent, received)
    }

    /// Opens what `Seal` wrote, record by record, with rustls's decrypter for the client's
    /// secrets: each record's content type and plaintext, in sequence from `seq`.
    fn open(
        suite: &Tls13CipherSuite,
        (mut seq, secrets): (u64, ConnectionTrafficSecrets),
        mut wire: &[u8],
    ) -> Vec<(ContentType, Vec<u8>)> {
        let (key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv }
            | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
            | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (key, iv),
            _ => unreachable!(),
        };
        let mut decrypter: Box<dyn MessageDecrypter> = suite.aead_alg.decrypter(key, iv);
        let mut records = Vec::new();
        while !wire.is_empty() {
            assert_eq!(
                &wire[..3],
                &[23, 3, 3],
                "an application-data record, TLS 1.2 outside"
            );
            let len = usize::from(u16::from_be_bytes([wire[3], wire[4]]));
            let mut payload = wire[5..5 + len].to_vec();
            let msg = InboundOpaqueMessage::new(
                ContentType::ApplicationData,
                ProtocolVersion::TLSv1_2,
                &mut payload,
            );
            let plain = decrypter
                .decrypt(msg, seq)
                .expect("a record sealed with the key");
            records.push((plain.typ, plain.payload.to_vec()));
            seq += 1;
            wire = &wire[5 + len..];
        }
        records
    }

    /// Every TLS 1.3 suite: records that rustls's own decrypter opens with the same key, in
    /// sequence from the number rustls handed on, at most 16 KiB of plaintext each, the
    /// content type inside.
    #[test]
    fn sealed_records_open_with_the_same_key_in_sequence() {
        for suite in suites() {
            let ((seq, secrets), (from, received)) = handshake(suite);
            let mut seal = Seal::new(suite, seq, secrets).unwrap();
            let mut wire = seal
                .seal(ContentType::ApplicationData, &[b"a", b"bc"])
                .unwrap()
                .to_vec();
            assert_eq!(wire.len(), seal.sealed_len(3));
            // Records of at most 2^14 bytes of plaintext (RFC 8446 §5.1), written out: 32,769
            // bytes (with the `<`) are two full records and one of a byte.
            let big = vec![b'x'; 32_768];
            let three = seal
                .seal(ContentType::ApplicationData, &[b"<", &big])
                .unwrap();
            // Made in one buffer of its exact size.
            assert_eq!(three.len(), seal.sealed_len(32_769));
            assert_eq!(
                seal.sealed_len(32_769),
                3 * 5 + 3 * 17 + 32_769,
                "a header, the content type and a 16-byte tag per record"
            );
            assert_eq!(seal.sealed_len(32_768), 2 * 22 + 32_768, "two full records");
            wire.extend_from_slice(&three);
            let three = three.try_into_mut().expect("the only handle");
            assert_eq!(
                three.capacity(),
                three.len(),
                "no spare room: made at its size"
            );
            wire.extend_from_slice(&seal.seal(ContentType::Alert, &[CLOSE_NOTIFY]).unwrap());
            let records = open(suite, (from, received), &wire);
            let shape: Vec<(ContentType, usize)> =
                records.iter().map(|(t, p)| (*t, p.len())).collect();
            assert_eq!(
                shape,
                [
                    (ContentType::ApplicationData, 3),
                    (ContentType::ApplicationData, 16_384),
                    (ContentType::ApplicationData, 16_384),
                    (ContentType::ApplicationData, 1),
                    (ContentType::Alert, 2),
                ],
                "{:?}",
                suite.common.suite
            );
            assert_eq!(records[0].1, b"abc");
            assert_eq!(records[1].1[0], b'<');
            assert_eq!(records[4].1, CLOSE_NOTIFY);
        }
    }

    /// A key seals no more than its suite's confidentiality limit of records.
    #[test]
    fn a_key_seals_up_to_its_limit() {
        let suite = suites()[0];
        let limit = suite.common.confidentiality_limit;
        let (_, secrets) = handshake(suite).0;
        let mut seal = Seal::new(suite, limit - 1, secrets).unwrap();
        assert!(seal.seal(ContentType::ApplicationData, &[b"last"]).is_ok());
        assert!(seal.seal(ContentType::ApplicationData, &[b"over"]).is_err());
    }

    /// The sealed body: each frame one chunk (empty frames skipped), then the last chunk and
    /// `close_notify`, then the end.
    #[tokio::test]
    async fn the_sealed_body_chunks_each_frame_and_ends_with_close_notify() {
        let suite = suites()[0];
        let ((seq, secrets), received) = handshake(suite);
        let frames = futures_util::stream::iter([
            Ok::<_, Infallible>(Bytes::from_static(b"data: a\n\n")),
            Ok(Bytes::new()),
            Ok(Bytes::from_static(b":\n")),
        ]);
        let mut body = Sealed {
            body: Body::from_stream(frames),
            seal: Seal::new(suite, seq, secrets).unwrap(),
            done: false,
        };
        let mut wire = Vec::new();
        while let Some(frame) = body.frame().await {
            wire.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        let records = open(suite, received, &wire);
        let plain: Vec<(ContentType, &[u8])> =
            records.iter().map(|(t, p)| (*t, p.as_slice())).collect();
        assert_eq!(
            plain,
            [
                (ContentType::ApplicationData, &b"9\r\ndata: a\n\n\r\n"[..]),
                (ContentType::ApplicationData, b"2\r\n:\n\r\n"),
                (ContentType::ApplicationData, b"0\r\n\r\n"),
                (ContentType::Alert, CLOSE_NOTIFY),
            ]
        );
    }
}
