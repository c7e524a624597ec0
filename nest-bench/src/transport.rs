//! How `load` and `idle` reach the server: cleartext HTTP/1.1 (the default, and the only way of
//! the cleartext rows), HTTP/1.1 over TLS (`--tls-cert`), or HTTP/2 (`--http2`: ALPN `h2` over
//! TLS, prior knowledge in cleartext) with many SSE streams on each connection.

use std::path::PathBuf;

use clap::Args;

use crate::tls::{Agreed, Alpn, TlsClient};

/// The transport flags of `load` and `idle`.
#[derive(Debug, Clone, Args)]
pub(crate) struct TransportArgs {
    /// Connect over TLS, trusting only the certificate in this PEM file (`serve --tls-cert`
    /// writes it).
    #[arg(long, value_name = "PATH")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// HTTP/2 with many streams per connection: ALPN `h2` with --tls-cert, prior knowledge
    /// without.
    #[arg(long)]
    pub(crate) http2: bool,
    /// SSE streams per HTTP/2 connection (nest allows 100 by default).
    #[arg(long, default_value_t = 100)]
    pub(crate) streams_per_connection: usize,
}

/// What the flags chose.
#[derive(Debug, Clone)]
pub(crate) enum Transport {
    /// HTTP/1.1 over TCP: the raw clients of the cleartext rows.
    Plain,
    /// HTTP/1.1 over TLS: one SSE stream per connection.
    Tls(TlsClient),
    /// HTTP/2: `streams` SSE streams per connection, over TLS when `tls` is there.
    Http2 {
        /// The TLS client (ALPN `h2`), or none for cleartext.
        tls: Option<TlsClient>,
        /// Streams per connection.
        streams: usize,
    },
}

impl TransportArgs {
    /// Reads the certificate, if any, and checks the flags.
    pub(crate) fn transport(&self) -> crate::Result<Transport> {
        let alpn = if self.http2 { Alpn::Http2 } else { Alpn::Http1 };
        let tls = match &self.tls_cert {
            Some(path) => Some(TlsClient::new(path, alpn)?),
            None => None,
        };
        Ok(match (tls, self.http2) {
            (_, true) if self.streams_per_connection == 0 => {
                return Err("--streams-per-connection must be at least 1".to_owned())
            }
            (tls, true) => Transport::Http2 {
                tls,
                streams: self.streams_per_connection,
            },
            (Some(tls), false) => Transport::Tls(tls),
            (None, false) => Transport::Plain,
        })
    }
}

impl Transport {
    /// How many connections carry `streams` SSE streams.
    pub(crate) fn connections(&self, streams: usize) -> usize {
        match self {
            Transport::Http2 {
                streams: per_connection,
                ..
            } => streams.div_ceil(*per_connection),
            Transport::Plain | Transport::Tls(_) => streams,
        }
    }

    /// Adds to a client's JSON result what it says about the transport: the HTTP version, the
    /// connections and what the TLS handshakes agreed (null in cleartext).
    pub(crate) fn annotate(&self, result: &mut serde_json::Value, streams: usize, agreed: &Agreed) {
        let Some(result) = result.as_object_mut() else {
            return;
        };
        let http = if matches!(self, Transport::Http2 { .. }) {
            "2"
        } else {
            "1.1"
        };
        result.insert("http".to_owned(), http.into());
        result.insert("connections".to_owned(), self.connections(streams).into());
        result.insert("tls".to_owned(), agreed.get().cloned().into());
    }
}
