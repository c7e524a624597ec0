//! The suite's steps: servers and load clients as processes, each measurement repeated.

use std::time::Duration;

use serde_json::Value;

use super::model::{CancelResult, JsonResult, LoadResult, LoadRun, MemoryResult, Plan, Wire};
use super::proc::{self, rss_kib, CpuSample, Launcher};
use crate::serve::Framework;

pub(super) const FANOUT: [Framework; 4] = [
    Framework::Raw,
    Framework::Nest,
    Framework::NestStream,
    Framework::Axum,
];

pub(super) fn log(msg: &str) {
    eprintln!("[suite] {msg}");
}

/// 10,000 clients need the open-file limit (20,000 here) in both processes.
pub(super) fn check_open_files(plan: &Plan) -> crate::Result<()> {
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

pub(super) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub(super) fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Starts `serve` on core 0 and returns it with its address.
pub(super) fn serve(
    launcher: &Launcher,
    framework: Framework,
    rate: u64,
) -> crate::Result<(proc::Proc, String)> {
    serve_with(launcher, framework, rate, &[])
}

/// As [`serve`], with more arguments (`--tls-cert`).
pub(super) fn serve_with(
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

/// Fan-out at full rate, round by round: each round runs every contender once at each client
/// count, each run on a fresh server, so run k of each contender is paired (the machine's
/// speed drifts between minutes by more than some differences measured here, as in the
/// latency and JSON rows) and no run inherits what an earlier one left in its server.
pub(super) fn fan_out(
    launcher: &Launcher,
    plan: &Plan,
    frameworks: &[Framework],
    client_counts: &[usize],
) -> crate::Result<Vec<LoadResult>> {
    let mut results: Vec<LoadResult> = client_counts
        .iter()
        .flat_map(|&clients| {
            frameworks.iter().map(move |&framework| LoadResult {
                framework,
                wire: Wire::PLAIN,
                clients,
                runs: Vec::new(),
            })
        })
        .collect();
    for run in 0..plan.runs {
        for result in &mut results {
            let (framework, clients) = (result.framework, result.clients);
            let (server, addr) = serve_with(launcher, framework, 0, &args(&["--gated"]))?;
            log(&format!(
                "fan-out {} clients={clients} run {}",
                framework.name(),
                run + 1
            ));
            result.runs.push(load_run(
                launcher,
                plan,
                &server,
                &addr,
                framework,
                clients,
                plan.duration,
                &[],
            )?);
            drop(server);
        }
    }
    Ok(results)
}

/// One run of the load generator against a running server; `more` are the client's transport
/// arguments (none: cleartext HTTP/1.1).
#[allow(clippy::too_many_arguments)] // The suite's plain parameters, each used once.
pub(super) fn load_run(
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
pub(super) fn gate(server: &proc::Proc, signal: &str) {
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

pub(super) fn check_load(
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

pub(super) fn idle_memory(
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

pub(super) fn cancel(
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
pub(super) fn json_rounds(
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
pub(super) fn json_run(
    launcher: &Launcher,
    plan: &Plan,
    result: &mut JsonResult,
) -> crate::Result<()> {
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
