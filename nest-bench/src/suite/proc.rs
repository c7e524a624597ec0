//! Child processes of the suite: pinned with `taskset`, read line by line, measured in /proc.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Instant;

/// How to start the suite's own binary, pinned to a core when `taskset` is there.
#[derive(Debug, Clone)]
pub(crate) struct Launcher {
    exe: PathBuf,
    taskset: bool,
    ticks: f64,
}

impl Launcher {
    /// The current executable; `taskset` if it runs.
    pub(crate) fn new() -> crate::Result<Self> {
        let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
        let taskset = Command::new("taskset")
            .args(["-c", "0", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        Ok(Self {
            exe,
            taskset,
            ticks: clock_ticks(),
        })
    }

    /// Clock ticks per second (`getconf CLK_TCK`), to turn /proc CPU times into shares.
    pub(crate) fn ticks(&self) -> f64 {
        self.ticks
    }

    /// Whether processes are pinned.
    pub(crate) fn pinned(&self) -> bool {
        self.taskset
    }

    /// Starts `nest-bench ARGS` on `core`, its stdout piped.
    pub(crate) fn spawn(&self, core: u32, args: &[String]) -> crate::Result<Proc> {
        let mut cmd = if self.taskset {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(core.to_string()).arg(&self.exe);
            cmd
        } else {
            Command::new(&self.exe)
        };
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.exe.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        Ok(Proc {
            child,
            lines: BufReader::new(stdout),
            gated: args.iter().any(|arg| arg == "--gated"),
        })
    }
}

/// A running child.
#[derive(Debug)]
pub(crate) struct Proc {
    child: Child,
    lines: BufReader<ChildStdout>,
    /// A `serve --gated`: it publishes between SIGUSR1 and SIGUSR2.
    gated: bool,
}

impl Proc {
    /// The next JSON line on its stdout.
    pub(crate) fn next_json(&mut self) -> crate::Result<serde_json::Value> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .lines
                .read_line(&mut line)
                .map_err(|e| format!("read child: {e}"))?;
            if n == 0 {
                let status = self.child.wait().map_err(|e| e.to_string())?;
                return Err(format!("child exited ({status}) without a result"));
            }
            if let Ok(value) = serde_json::from_str(line.trim()) {
                return Ok(value);
            }
        }
    }

    /// Its process id (taskset execs, so it is the benchmark's own).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it was started with `--gated` (see [`crate::serve::ServeArgs`]).
    pub(crate) fn gated(&self) -> bool {
        self.gated
    }

    /// Waits for it to exit; an error unless it succeeded.
    pub(crate) fn wait(mut self) -> crate::Result<()> {
        let status = self.child.wait().map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("child failed: {status}"))
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Kill this child (by its own pid) if it still runs.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Clock ticks per second of /proc/PID/stat (`getconf CLK_TCK`, 100 if unknown).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of `pid`, in ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is the first.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// VmRSS of `pid`, in KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// A CPU-time sample of a process, to take the share of one core between two of them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSample {
    ticks: u64,
    at: Instant,
}

impl CpuSample {
    /// Samples `pid` now.
    pub(crate) fn take(pid: u32) -> Option<Self> {
        Some(Self {
            ticks: cpu_ticks(pid)?,
            at: Instant::now(),
        })
    }

    /// The share of one core used since `self`, in percent.
    pub(crate) fn percent_until(&self, later: &CpuSample, ticks_per_sec: f64) -> f64 {
        let secs = later.at.duration_since(self.at).as_secs_f64();
        (later.ticks.saturating_sub(self.ticks)) as f64 / ticks_per_sec / secs * 100.0
    }
}
