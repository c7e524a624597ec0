//! `nest-bench suite`: every load benchmark as separate processes, the server pinned to core 0
//! and the client to core 1 (`taskset`), each measurement repeated; then BENCHMARKS.md.

mod criterion;
mod model;
mod proc;
mod report;
mod steps;
mod tls;

use crate::serve::Framework;
use model::{LoadResult, Plan};
pub(crate) use model::{Results, SuiteArgs, Wire};
use proc::Launcher;
use steps::*;

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
    let fanout = fan_out(&launcher, &plan, &FANOUT, &plan.fanout_clients)?;
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
