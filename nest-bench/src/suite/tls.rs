//! The HTTPS rows: 1c (fan-out over TLS) and 2b (memory per idle SSE stream over TLS, HTTP/1.1
//! and HTTP/2), each next to its cleartext counterpart. The server is nest's hub with
//! `serve --tls-cert`, the clients trust the certificate it wrote (`--tls-cert` again).

use std::path::PathBuf;

use super::proc::Launcher;
use super::{args, idle_memory_over, load_run, log, serve_with, LoadResult, MemoryResult, Plan};
use crate::serve::Framework;

/// How the suite's server and clients talk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wire {
    /// Over TLS (rustls, ALPN).
    pub(crate) tls: bool,
    /// HTTP/2, many streams per connection (else HTTP/1.1, a stream per connection).
    pub(crate) http2: bool,
}

impl Wire {
    /// Cleartext HTTP/1.1: every row outside 1c and 2b.
    pub(crate) const PLAIN: Wire = Wire {
        tls: false,
        http2: false,
    };
    /// HTTP/1.1 over TLS.
    pub(crate) const TLS: Wire = Wire {
        tls: true,
        http2: false,
    };
    /// HTTP/2 in cleartext, by prior knowledge.
    pub(crate) const H2C: Wire = Wire {
        tls: false,
        http2: true,
    };
    /// HTTP/2 over TLS (ALPN `h2`): what a browser speaks to an HTTPS server.
    pub(crate) const H2: Wire = Wire {
        tls: true,
        http2: true,
    };

    /// Its name in the report.
    pub(crate) fn label(self) -> &'static str {
        match (self.http2, self.tls) {
            (false, false) => "HTTP/1.1 cleartext",
            (false, true) => "HTTP/1.1 over TLS",
            (true, false) => "HTTP/2 cleartext (prior knowledge)",
            (true, true) => "HTTP/2 over TLS",
        }
    }

    /// Its mark in the suite's log: nothing for cleartext HTTP/1.1.
    pub(crate) fn suffix(self) -> String {
        if self == Self::PLAIN {
            String::new()
        } else {
            format!(" ({})", self.label())
        }
    }

    /// The same wire without TLS: what a TLS row is compared with.
    pub(crate) fn cleartext(self) -> Wire {
        Wire { tls: false, ..self }
    }

    fn serve_args(self, cert: &CertFile) -> Vec<String> {
        if self.tls {
            vec!["--tls-cert".to_owned(), cert.path()]
        } else {
            Vec::new()
        }
    }

    fn client_args(self, cert: &CertFile, plan: &Plan) -> Vec<String> {
        let mut list = self.serve_args(cert);
        if self.http2 {
            list.extend(args(&[
                "--http2",
                "--streams-per-connection",
                &plan.streams_per_connection.to_string(),
            ]));
        }
        list
    }
}

/// The wires of 1c, cleartext first: each round runs them in this order.
pub(crate) const FANOUT: [Wire; 4] = [Wire::PLAIN, Wire::TLS, Wire::H2C, Wire::H2];

/// The wires of 2b besides section 2's cleartext HTTP/1.1 row.
pub(crate) const MEMORY: [Wire; 3] = [Wire::TLS, Wire::H2C, Wire::H2];

/// Where `serve --tls-cert` writes its certificate for the clients; removed when dropped.
#[derive(Debug)]
pub(crate) struct CertFile(PathBuf);

impl CertFile {
    /// A path in the temporary directory, unique to this suite run.
    pub(crate) fn new() -> Self {
        Self(std::env::temp_dir().join(format!("nest-bench-{}-cert.pem", std::process::id())))
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for CertFile {
    fn drop(&mut self) {
        // Absent when no TLS server ran.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// 1c: nest's hub at full rate to `plan.tls_clients` clients over each wire of [`FANOUT`].
/// Round by round with a fresh server per run, like 1b, so a row is compared with cleartext
/// within its round.
pub(crate) fn fan_out(
    launcher: &Launcher,
    plan: &Plan,
    cert: &CertFile,
) -> crate::Result<Vec<LoadResult>> {
    let framework = Framework::Nest;
    let mut results: Vec<LoadResult> = FANOUT
        .iter()
        .map(|&wire| LoadResult {
            framework,
            wire,
            clients: plan.tls_clients,
            runs: Vec::new(),
        })
        .collect();
    for round in 0..plan.runs {
        for result in &mut results {
            let wire = result.wire;
            log(&format!(
                "fan-out {}{} clients={} round {}",
                framework.name(),
                wire.suffix(),
                plan.tls_clients,
                round + 1
            ));
            let mut serve_args = wire.serve_args(cert);
            serve_args.push("--gated".to_owned());
            let (server, addr) = serve_with(launcher, framework, 0, &serve_args)?;
            let run = load_run(
                launcher,
                plan,
                &server,
                &addr,
                framework,
                plan.tls_clients,
                plan.duration,
                &wire.client_args(cert, plan),
            )?;
            if wire.tls && run.tls.is_none() {
                return Err(format!("fan-out {}: no TLS handshake", wire.label()));
            }
            result.runs.push(run);
        }
    }
    Ok(results)
}

/// 2b: memory per idle SSE stream of nest's hub over each wire of [`MEMORY`].
pub(crate) fn idle_memory(
    launcher: &Launcher,
    plan: &Plan,
    cert: &CertFile,
) -> crate::Result<Vec<MemoryResult>> {
    MEMORY
        .iter()
        .map(|&wire| {
            let result = idle_memory_over(
                launcher,
                plan,
                Framework::Nest,
                plan.idle_clients,
                wire,
                &wire.serve_args(cert),
                &wire.client_args(cert, plan),
            )?;
            if wire.tls && result.tls.is_none() {
                return Err(format!("memory {}: no TLS handshake", wire.label()));
            }
            Ok(result)
        })
        .collect()
}
