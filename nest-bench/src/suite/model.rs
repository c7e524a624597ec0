//! What the suite measures and reports: its arguments and plan, each row's results, and the
//! wire a row runs over.

use std::path::PathBuf;

use clap::Args;

use super::criterion;
use crate::serve::Framework;
use crate::stats::Spread;

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
}

/// Arguments of `suite`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SuiteArgs {
    /// Seconds-long smoke mode: tiny client counts, one run each.
    #[arg(long)]
    pub(crate) smoke: bool,
    /// Where the report goes.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub(crate) out: PathBuf,
    /// criterion's output directory (`<target>/criterion`), for the micro benchmarks' tables.
    #[arg(long)]
    pub(crate) criterion: Option<PathBuf>,
    /// Runs per measurement (default: 3, or 1 in smoke mode).
    #[arg(long)]
    pub(crate) runs: Option<usize>,
    /// The command that regenerates the report, for its header.
    #[arg(long, default_value = "scripts/bench")]
    pub(crate) command: String,
    /// A note for the report's header (e.g. that the machine was shared).
    #[arg(long)]
    pub(crate) note: Option<String>,
}

/// The sizes of one mode.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) runs: usize,
    pub(crate) fanout_clients: Vec<usize>,
    pub(crate) latency_clients: usize,
    pub(crate) latency_rate: u64,
    pub(crate) idle_clients: usize,
    pub(crate) cancel_cycles: usize,
    pub(crate) warmup: f64,
    pub(crate) duration: f64,
    pub(crate) latency_duration: f64,
    /// Rounds of the latency measurement; each round runs every contender once.
    pub(crate) latency_runs: usize,
    pub(crate) json_connections: usize,
    /// Clients of the fan-out over TLS (1c).
    pub(crate) tls_clients: usize,
    /// SSE streams per HTTP/2 connection (2b, 1c).
    pub(crate) streams_per_connection: usize,
}

impl Plan {
    pub(super) fn new(args: &SuiteArgs) -> Self {
        if args.smoke {
            Self {
                runs: args.runs.unwrap_or(1),
                fanout_clients: vec![10],
                latency_clients: 10,
                latency_rate: 100,
                idle_clients: 50,
                cancel_cycles: 3,
                warmup: 0.2,
                duration: 0.5,
                latency_duration: 0.5,
                latency_runs: args.runs.unwrap_or(1),
                json_connections: 8,
                tls_clients: 10,
                streams_per_connection: 10,
            }
        } else {
            Self {
                runs: args.runs.unwrap_or(3),
                fanout_clients: vec![100, 1_000, 10_000],
                latency_clients: 1_000,
                latency_rate: 100,
                idle_clients: 10_000,
                cancel_cycles: 50,
                warmup: 1.0,
                duration: 3.0,
                latency_duration: 5.0,
                latency_runs: args.runs.unwrap_or(5),
                json_connections: 64,
                tls_clients: 1_000,
                streams_per_connection: 100,
            }
        }
    }
}

/// One load run against one server.
#[derive(Debug, Clone)]
pub(crate) struct LoadRun {
    pub(crate) events_per_sec: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) cpu_percent: f64,
    /// The load generator's CPU (share of one core): over TLS it decrypts what the server
    /// encrypts, so it can be the bottleneck.
    pub(crate) client_cpu_percent: f64,
    /// What the TLS handshakes agreed (version and cipher suite), if TLS.
    pub(crate) tls: Option<String>,
}

impl LoadRun {
    /// The server's CPU time per delivered event, in nanoseconds.
    pub(crate) fn server_ns_per_event(&self) -> f64 {
        self.cpu_percent / 100.0 / self.events_per_sec * 1e9
    }
}

/// The runs of one (contender, clients, rate).
#[derive(Debug, Clone)]
pub(crate) struct LoadResult {
    pub(crate) framework: Framework,
    pub(crate) wire: Wire,
    pub(crate) clients: usize,
    pub(crate) runs: Vec<LoadRun>,
}

impl LoadResult {
    pub(crate) fn spread(&self, f: impl Fn(&LoadRun) -> f64) -> Option<Spread> {
        Spread::of(&self.runs.iter().map(f).collect::<Vec<_>>())
    }
}

/// Memory per idle SSE stream (per connection on HTTP/1.1).
#[derive(Debug, Clone)]
pub(crate) struct MemoryResult {
    pub(crate) framework: Framework,
    pub(crate) wire: Wire,
    /// SSE streams asked for.
    pub(crate) streams: usize,
    /// The connections that carry them.
    pub(crate) connections: usize,
    /// Per stream, which is per connection on HTTP/1.1.
    pub(crate) kib_per_connection: Vec<f64>,
    pub(crate) delta_mib: Vec<f64>,
    /// What the TLS handshakes agreed (version and cipher suite), if TLS.
    pub(crate) tls: Option<String>,
}

/// Disconnect detection, µs: per run, the median and the maximum.
#[derive(Debug, Clone)]
pub(crate) struct CancelResult {
    pub(crate) framework: &'static str,
    pub(crate) cycles: usize,
    pub(crate) medians_us: Vec<f64>,
    pub(crate) max_us: f64,
}

/// Requests/s of GET /json.
#[derive(Debug, Clone)]
pub(crate) struct JsonResult {
    pub(crate) framework: Framework,
    pub(crate) connections: usize,
    pub(crate) requests_per_sec: Vec<f64>,
    pub(crate) cpu_percent: Vec<f64>,
}

/// Everything the report shows.
#[derive(Debug, Clone)]
pub(crate) struct Results {
    pub(crate) plan: Plan,
    pub(crate) pinned: bool,
    pub(crate) fanout: Vec<LoadResult>,
    pub(crate) latency: Vec<LoadResult>,
    pub(crate) memory: Vec<MemoryResult>,
    /// 1c: nest's hub over each wire of [`tls::FANOUT`](super::tls::FANOUT), round by round.
    pub(crate) tls_fanout: Vec<LoadResult>,
    /// 2b: nest's hub over each wire of [`tls::MEMORY`](super::tls::MEMORY).
    pub(crate) tls_memory: Vec<MemoryResult>,
    pub(crate) cancel: Vec<CancelResult>,
    pub(crate) json: Vec<JsonResult>,
    pub(crate) micro: Vec<criterion::Result>,
    pub(crate) load_before: String,
    pub(crate) load_after: String,
    pub(crate) seconds: f64,
}
