//! `nest-bench suite`: every load benchmark as separate processes, the server pinned to core 0
//! and the client to core 1 (`taskset`), each measurement repeated; then BENCHMARKS.md.

mod criterion;
mod proc;
mod report;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::serve::Framework;
use crate::stats::Spread;
use proc::{rss_kib, CpuSample, Launcher};
pub(crate) use tls::Wire;

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
    fn new(args: &SuiteArgs) -> Self {
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
    /// 1c: nest's hub over each wire of [`tls::FANOUT`], round by round.
    pub(crate) tls_fanout: Vec<LoadResult>,
    /// 2b: nest's hub over each wire of [`tls::MEMORY`].
    pub(crate) tls_memory: Vec<MemoryResult>,
    pub(crate) cancel: Vec<CancelResult>,
    pub(crate) json: Vec<JsonResult>,
    pub(crate) micro: Vec<criterion::Result>,
    pub(crate) load_before: String,
    pub(crate) load_after: String,
    pub(crate) seconds: f64,
}

const FANOUT: [Framework; 4] = [
    Framework::Raw,
    Framework::Nest,
    Framework::NestStream,
    Framework::Axum,
];

fn log(msg: &str) {
    eprintln!("[suite] {msg}");
}

/// Runs the suite and writes the report.
pub(crate) fn run(args: &SuiteArgs) -> crate::Result<()> {
    let started = std::time::Instant::now();
    let plan = Plan::new(args);
    let launcher = Launcher::new()?;
    if !launcher.pinned() {
        log("taskset is missing: processes run unpinned");
    }
    check_open_files(&plan)?;
    let load_before = loadavg();
    let mut fanout = Vec::new();
    for framework in FANOUT {
        fanout.extend(fan_out(&launcher, &plan, framework, &plan.fanout_clients)?);
    }
    let mut latency: Vec<LoadResult> = FANOUT
        .iter()
        .map(|&framework| LoadResult {
            framework,
            wire: Wire::PLAIN,
            clients: plan.latency_clients,
            runs: Vec::new(),
        })
        .collect();
    // Round by round, every contender once per round: the machine's speed drifts by more than
    // the differences measured here, and a paired comparison (same round) cancels the drift.
    for round in 0..plan.latency_runs {
        for result in &mut latency {
            let (server, addr) = serve(&launcher, result.framework, plan.latency_rate)?;
            log(&format!(
                "latency {} clients={} rate={} round {}",
                result.framework.name(),
                plan.latency_clients,
                plan.latency_rate,
                round + 1
            ));
            let run = load_run(
                &launcher,
                &plan,
                &server,
                &addr,
                result.framework,
                plan.latency_clients,
                plan.latency_duration,
                &[],
            )?;
            result.runs.push(run);
        }
    }
    let cert = tls::CertFile::new();
    let tls_fanout = tls::fan_out(&launcher, &plan, &cert)?;
    let mut memory = Vec::new();
    // At the suite's count (10,000), then at a tenth of it (1,000), where fixed costs show more.
    let mut counts = vec![plan.idle_clients];
    if plan.idle_clients >= 1_000 {
        counts.push(plan.idle_clients / 10);
    }
    for clients in counts {
        for framework in FANOUT {
            memory.push(idle_memory(&launcher, &plan, framework, clients)?);
        }
    }
    let tls_memory = tls::idle_memory(&launcher, &plan, &cert)?;
    let cancel = vec![
        cancel(&launcher, &plan, "nest")?,
        cancel(&launcher, &plan, "axum")?,
    ];
    let json = json_rounds(&launcher, &plan, &[Framework::Nest, Framework::Axum])?;
    let micro = args
        .criterion
        .as_deref()
        .map(criterion::read_all)
        .unwrap_or_default();
    let results = Results {
        plan,
        pinned: launcher.pinned(),
        fanout,
        latency,
        memory,
        tls_fanout,
        tls_memory,
        cancel,
        json,
        micro,
        load_before,
        load_after: loadavg(),
        seconds: started.elapsed().as_secs_f64(),
    };
    let markdown = report::render(&results, args);
    std::fs::write(&args.out, markdown)
        .map_err(|e| format!("write {}: {e}", args.out.display()))?;
    log(&format!(
        "wrote {} in {:.0} s",
        args.out.display(),
        results.seconds
    ));
    Ok(())
}

/// 10,000 clients need the open-file limit (20,000 here) in both processes.
fn check_open_files(plan: &Plan) -> crate::Result<()> {
    let need = plan
        .fanout_clients
        .iter()
        .copied()
        .chain([plan.idle_clients, plan.latency_clients])
        .max()
        .unwrap_or(0)
        + 100;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    match soft {
        Some(soft) if soft < need => Err(format!(
            "the open-file limit is {soft}, {need} are needed: run `ulimit -n 20000` first (scripts/bench does)"
        )),
        _ => Ok(()),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Starts `serve` on core 0 and returns it with its address.
fn serve(
    launcher: &Launcher,
    framework: Framework,
    rate: u64,
) -> crate::Result<(proc::Proc, String)> {
    serve_with(launcher, framework, rate, &[])
}

/// As [`serve`], with more arguments (`--tls-cert`).
fn serve_with(
    launcher: &Launcher,
    framework: Framework,
    rate: u64,
    more: &[String],
) -> crate::Result<(proc::Proc, String)> {
    let mut list = args(&[
        "serve",
        "--framework",
        framework.name(),
        "--port",
        "0",
        "--rate",
        &rate.to_string(),
    ]);
    list.extend_from_slice(more);
    let mut server = launcher.spawn(0, &list)?;
    let line = server.next_json()?;
    let addr = line["listening"]
        .as_str()
        .ok_or_else(|| format!("serve said {line}"))?
        .to_owned();
    Ok((server, addr))
}

/// Fan-out at full rate: one server, every client count, `plan.runs` runs each.
fn fan_out(
    launcher: &Launcher,
    plan: &Plan,
    framework: Framework,
    client_counts: &[usize],
) -> crate::Result<Vec<LoadResult>> {
    let (server, addr) = serve_with(launcher, framework, 0, &args(&["--gated"]))?;
    let mut results = Vec::new();
    for &clients in client_counts {
        let mut runs = Vec::new();
        for run in 0..plan.runs {
            log(&format!(
                "fan-out {} clients={clients} run {}",
                framework.name(),
                run + 1
            ));
            runs.push(load_run(
                launcher,
                plan,
                &server,
                &addr,
                framework,
                clients,
                plan.duration,
                &[],
            )?);
        }
        results.push(LoadResult {
            framework,
            wire: Wire::PLAIN,
            clients,
            runs,
        });
    }
    drop(server);
    Ok(results)
}

/// One run of the load generator against a running server; `more` are the client's transport
/// arguments (none: cleartext HTTP/1.1).
#[allow(clippy::too_many_arguments)] // The suite's plain parameters, each used once.
fn load_run(
    launcher: &Launcher,
    plan: &Plan,
    server: &proc::Proc,
    addr: &str,
    framework: Framework,
    clients: usize,
    duration: f64,
    more: &[String],
) -> crate::Result<LoadRun> {
    let mut list = args(&[
        "load",
        "--addr",
        addr,
        "--clients",
        &clients.to_string(),
        "--warmup",
        &plan.warmup.to_string(),
        "--duration",
        &duration.to_string(),
    ]);
    list.extend_from_slice(more);
    let mut load = launcher.spawn(1, &list)?;
    let mut start = None;
    let mut end = None;
    let sample = |pid| CpuSample::take(server.pid()).zip(CpuSample::take(pid));
    let result = loop {
        let line = load.next_json()?;
        match line["phase"].as_str() {
            // Every client is connected: a gated server (`serve --gated`) starts publishing.
            Some("connected") => gate(server, "USR1"),
            Some("measuring") => start = sample(load.pid()),
            Some("measured") => end = sample(load.pid()),
            _ => break line,
        }
    };
    load.wait()?;
    // Quiet again until the next run's clients are connected.
    gate(server, "USR2");
    let (cpu, client_cpu) = match (start, end) {
        (Some(a), Some(b)) => (
            a.0.percent_until(&b.0, launcher.ticks()),
            a.1.percent_until(&b.1, launcher.ticks()),
        ),
        _ => (f64::NAN, f64::NAN),
    };
    let mut run = check_load(framework, clients, &result, cpu)?;
    run.client_cpu_percent = client_cpu;
    Ok(run)
}

/// Opens (`USR1`) or closes (`USR2`) a server's publishing gate; a server started without
/// `--gated` ignores both (the signals' default action is replaced by its handler only then,
/// so the suite signals only gated servers).
fn gate(server: &proc::Proc, signal: &str) {
    if !server.gated() {
        return;
    }
    let sent = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(server.pid().to_string())
        .status();
    if !sent.is_ok_and(|status| status.success()) {
        log(&format!("could not send SIG{signal} to the server"));
    }
}

fn check_load(
    framework: Framework,
    clients: usize,
    result: &Value,
    cpu_percent: f64,
) -> crate::Result<LoadRun> {
    let connected = result["connected"].as_u64().unwrap_or(0);
    let events = result["events"].as_u64().unwrap_or(0);
    // A partial connect (the server starved its accept loop) is reported, not fatal.
    if connected < clients as u64 {
        log(&format!(
            "fan-out {}: only {connected} of {clients} clients connected",
            framework.name()
        ));
    }
    if connected == 0 || events == 0 {
        return Err(format!(
            "fan-out {} with {clients} clients failed: {result}",
            framework.name()
        ));
    }
    let ms = |key: &str| result[key].as_f64().map_or(f64::NAN, |us| us / 1000.0);
    Ok(LoadRun {
        events_per_sec: result["events_per_sec"].as_f64().unwrap_or(0.0),
        p50_ms: ms("p50_us"),
        p99_ms: ms("p99_us"),
        cpu_percent,
        client_cpu_percent: f64::NAN,
        tls: result["tls"].as_str().map(str::to_owned),
    })
}

fn idle_memory(
    launcher: &Launcher,
    plan: &Plan,
    framework: Framework,
    clients: usize,
) -> crate::Result<MemoryResult> {
    idle_memory_over(launcher, plan, framework, clients, Wire::PLAIN, &[], &[])
}

/// Memory per idle stream over `wire`: `serve_more` and `idle_more` are the server's and the
/// client's transport arguments.
#[allow(clippy::too_many_arguments)] // The suite's plain parameters, each used once.
pub(crate) fn idle_memory_over(
    launcher: &Launcher,
    plan: &Plan,
    framework: Framework,
    clients: usize,
    wire: Wire,
    serve_more: &[String],
    idle_more: &[String],
) -> crate::Result<MemoryResult> {
    let mut result = MemoryResult {
        framework,
        wire,
        streams: clients,
        connections: clients,
        kib_per_connection: Vec::new(),
        delta_mib: Vec::new(),
        tls: None,
    };
    for run in 0..plan.runs {
        log(&format!(
            "memory {}{} idle={} run {}",
            framework.name(),
            wire.suffix(),
            clients,
            run + 1
        ));
        // One event a second on /bench (nobody listens): no busy publisher.
        let (server, addr) = serve_with(launcher, framework, 1, serve_more)?;
        std::thread::sleep(Duration::from_millis(300));
        let before = rss_kib(server.pid()).ok_or("no VmRSS")?;
        let mut list = args(&["idle", "--addr", &addr, "--clients", &clients.to_string()]);
        list.extend_from_slice(idle_more);
        let mut idle = launcher.spawn(1, &list)?;
        let line = idle.next_json()?;
        let open = line["clients"].as_u64().unwrap_or(0) as usize;
        if let Some(connections) = line["connections"].as_u64() {
            result.connections = connections as usize;
        }
        if let Some(agreed) = line["tls"].as_str() {
            result.tls = Some(agreed.to_owned());
        }
        // A connect that failed (rarely, one in 10,000 after many runs back to back) is
        // logged; the figure is per open connection. Most of them failing is an error.
        if open < clients {
            if open * 100 < clients * 99 {
                return Err(format!("idle {}: {line}", framework.name()));
            }
            log(&format!(
                "memory {}: {open} of {} connections open, measuring those",
                framework.name(),
                clients
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
        let after = rss_kib(server.pid()).ok_or("no VmRSS")?;
        let delta = after.saturating_sub(before) as f64;
        result.kib_per_connection.push(delta / open as f64);
        result.delta_mib.push(delta / 1024.0);
        drop(idle);
        drop(server);
    }
    Ok(result)
}

fn cancel(
    launcher: &Launcher,
    plan: &Plan,
    framework: &'static str,
) -> crate::Result<CancelResult> {
    let mut result = CancelResult {
        framework,
        cycles: plan.cancel_cycles,
        medians_us: Vec::new(),
        max_us: 0.0,
    };
    for run in 0..plan.runs {
        log(&format!("cancel {framework} run {}", run + 1));
        let mut proc = launcher.spawn(
            0,
            &args(&[
                "cancel",
                "--framework",
                framework,
                "--runs",
                &plan.cancel_cycles.to_string(),
            ]),
        )?;
        let line = proc.next_json()?;
        proc.wait()?;
        if line["missed"].as_u64() != Some(0) {
            return Err(format!("cancel {framework}: {line}"));
        }
        result
            .medians_us
            .push(line["median_us"].as_f64().unwrap_or(f64::NAN));
        result.max_us = result.max_us.max(line["max_us"].as_f64().unwrap_or(0.0));
    }
    Ok(result)
}

/// Requests/s of each contender, round by round (as the latency rounds: every contender once
/// per round, in turn, each with a fresh server), so a ratio can be taken within a round.
fn json_rounds(
    launcher: &Launcher,
    plan: &Plan,
    frameworks: &[Framework],
) -> crate::Result<Vec<JsonResult>> {
    let mut results: Vec<JsonResult> = frameworks
        .iter()
        .map(|&framework| JsonResult {
            framework,
            connections: plan.json_connections,
            requests_per_sec: Vec::new(),
            cpu_percent: Vec::new(),
        })
        .collect();
    for round in 0..plan.latency_runs {
        for result in &mut results {
            log(&format!(
                "json {} round {}",
                result.framework.name(),
                round + 1
            ));
            json_run(launcher, plan, result)?;
        }
    }
    Ok(results)
}

/// One measured run of `json` against a fresh server of `result.framework`.
fn json_run(launcher: &Launcher, plan: &Plan, result: &mut JsonResult) -> crate::Result<()> {
    let framework = result.framework;
    let (server, addr) = serve(launcher, framework, 1)?;
    let start = CpuSample::take(server.pid());
    let mut load = launcher.spawn(
        1,
        &args(&[
            "json",
            "--addr",
            &addr,
            "--connections",
            &plan.json_connections.to_string(),
            "--warmup",
            &plan.warmup.to_string(),
            "--duration",
            &plan.duration.to_string(),
        ]),
    )?;
    let line = load.next_json()?;
    let end = CpuSample::take(server.pid());
    load.wait()?;
    let rps = line["requests_per_sec"].as_f64().unwrap_or(0.0);
    if rps <= 0.0 || line["errors"].as_u64() != Some(0) {
        return Err(format!("json {}: {line}", framework.name()));
    }
    result.requests_per_sec.push(rps);
    if let (Some(a), Some(b)) = (start, end) {
        result
            .cpu_percent
            .push(a.percent_until(&b, launcher.ticks()));
    }
    drop(server);
    Ok(())
}
