//! One `redis-server` (Debian's) for a test binary: its own free port, directory, config and
//! log; the append-only file with `appendfsync always` (or no persistence at all, for the chaos
//! test's data loss), no RDB snapshots; stopped by its pid on drop, also on panic.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long Redis may take to start (it replays its append-only file first).
const START: Duration = Duration::from_secs(20);

/// Where `redis-server` is: `REDIS_SERVER`, then `PATH`, then `/usr/bin`.
fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("REDIS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

/// `redis-server`, or `None` after reporting that `test` skips: loudly, on the process's
/// stderr (the harness captures `eprintln!` of a passing test) and in the file named by
/// `NEST_SKIP_LOG`, which `scripts/test` reports. Under `CI` a missing server fails instead.
pub(crate) fn binary_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(binary) = binary() {
        return Some(binary);
    }
    nest_core::test_util::skip(
        test,
        "redis-server not found (REDIS_SERVER, PATH, /usr/bin); install Debian's redis-server, \
         or run scripts/test as root",
    );
    None
}

/// The runtime a Redis test runs on: two workers, so that a scenario may block one in place.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A running `redis-server`.
pub(crate) struct RedisServer {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// Whether the append-only file is on.
    aof: bool,
}

impl RedisServer {
    /// Starts Redis on a free port in a new temp directory.
    pub(crate) fn start(binary: &Path) -> Self {
        Self::start_with(binary, true)
    }

    /// As [`start`](Self::start), with the append-only file on (`appendfsync always`) or no
    /// persistence at all (a restart loses everything).
    pub(crate) fn start_with(binary: &Path, aof: bool) -> Self {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("nest-redis-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("make the Redis directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            binary: binary.to_owned(),
            dir,
            port,
            child: None,
            aof,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--appendonly", if self.aof { "yes" } else { "no" }])
            .args(["--appendfsync", "always", "--save", ""])
            .args(["--daemonize", "no", "--maxmemory-policy", "noeviction"])
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("could not start {}: {err}", self.binary.display()));
        self.child = Some(child);
    }

    /// `redis://127.0.0.1:PORT/`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Waits until Redis answers `PING` (polled, with a deadline that fails with its log).
    pub(crate) async fn ready(&mut self) {
        let deadline = Instant::now() + START;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("redis-server exited ({status}); its log:\n{}", self.log());
            }
            if self.ping().await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING within {START:?}; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn ping(&self) -> bool {
        let attempt = async {
            let mut sock = TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
            sock.write_all(b"PING\r\n").await.ok()?;
            let mut reply = [0u8; 7];
            sock.read_exact(&mut reply).await.ok()?;
            Some(&reply == b"+PONG\r\n")
        };
        tokio::time::timeout(Duration::from_secs(1), attempt)
            .await
            .ok()
            .flatten()
            .unwrap_or(false)
    }

    /// Kills Redis (SIGKILL: no clean shutdown, so only what the append-only file holds is
    /// kept) and waits for it to be gone.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts Redis again on the same port and directory (it reads its append-only file).
    pub(crate) async fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.ready().await;
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
