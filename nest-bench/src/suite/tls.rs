//! The HTTPS rows: 1c (fan-out over TLS) and 2b (memory per idle SSE stream over TLS, HTTP/1.1
//! and HTTP/2), each next to its cleartext counterpart. The server is nest's hub with
//! `serve --tls-cert`, the clients trust the certificate it wrote (`--tls-cert` again).

use std::path::PathBuf;

use super::model::{LoadResult, MemoryResult, Plan, Wire};
use super::proc::Launcher;
use super::steps::{args, idle_memory_over, load_run, log, serve_with};
use crate::serve::Framework;

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
    // nest's hub over each wire, then the baseline: the raw writer on tokio-rustls.
    MEMORY
        .iter()
        .map(|&wire| (Framework::Nest, wire))
        .chain([(Framework::Raw, Wire::TLS)])
        .map(|(framework, wire)| {
            let result = idle_memory_over(
                launcher,
                plan,
                framework,
                plan.idle_clients,
                wire,
                &wire.serve_args(cert),
                &wire.client_args(cert, plan),
            )?;
            if wire.tls && result.tls.is_none() {
                return Err(format!(
                    "memory {} {}: no TLS handshake",
                    framework.name(),
                    wire.label()
                ));
            }
            Ok(result)
        })
        .collect()
}

/// The wire's command-line flags, for the server and the load client.
impl Wire {
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
