//! Starting a private nginx for one test binary, the skip policy, and stopping it.
//!
//! The nginx runs in the foreground (`daemon off`) with its own prefix, configuration, pid file,
//! logs and temporary directories in a fresh directory under the system's temp dir, on free
//! ports of 127.0.0.1: it never touches the system's nginx service or `/etc/nginx`. It leads a
//! new process group (its worker is in it too); dropping [`Nginx`] (also while unwinding from a
//! panic) ends that group by its id, prints the error log if the test failed, and removes the
//! directory.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long nginx may take to start listening, or to exit once told to.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// How often the port (or the exit) is polled while waiting.
const POLL: Duration = Duration::from_millis(20);

/// Finds nginx: the `NGINX` environment variable (a path), else `PATH`, else `/usr/sbin`
/// (Debian's place, outside a normal user's `PATH`).
fn find_nginx() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NGINX") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

/// The skip policy: `None` (after a loud message) when nginx is missing and `CI` is not set;
/// a panic when it is missing in CI.
pub(crate) fn binary() -> Option<PathBuf> {
    if let Some(nginx) = find_nginx() {
        return Some(nginx);
    }
    nest::test_util::skip(
        "nginx",
        "nginx not installed (NGINX, PATH, /usr/sbin); install Debian's nginx, or run \
         scripts/test as root, to run the reverse-proxy test",
    );
    None
}

/// A running nginx: its process (the master, leader of its own process group) and directory.
#[derive(Debug)]
pub(crate) struct Nginx {
    master: Child,
    dir: PathBuf,
    ports: BTreeMap<&'static str, SocketAddr>,
}

impl Nginx {
    /// Starts `nginx` with `config`, its `@DIR@` replaced by the private directory and each
    /// `@NAME@` of `ports` by a free port, and waits until it accepts connections on each.
    /// `files` (name, contents) are written to the directory first (certificates, keys).
    pub(crate) fn start(
        nginx: &Path,
        config: &str,
        ports: &[&'static str],
        files: &[(&str, &str)],
    ) -> Self {
        let mut last_error = String::new();
        // A free port is found by binding port 0 and letting it go: another process may take
        // it in between, in which case nginx exits and other ports are tried.
        for attempt in 0..3 {
            match Self::try_start(nginx, config, ports, files, attempt) {
                Ok(started) => return started,
                Err(err) => {
                    eprintln!("nginx: start attempt {attempt} failed: {err}");
                    last_error = err;
                }
            }
        }
        panic!("could not start nginx: {last_error}");
    }

    fn try_start(
        nginx: &Path,
        config: &str,
        names: &[&'static str],
        files: &[(&str, &str)],
        attempt: usize,
    ) -> Result<Self, String> {
        // Held until all are found, so no two names get the same port.
        let listeners = names
            .iter()
            .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("no free port: {e}"))?;
        let mut ports = BTreeMap::new();
        for (name, listener) in names.iter().zip(&listeners) {
            let addr = listener
                .local_addr()
                .map_err(|e| format!("no free port: {e}"))?;
            ports.insert(*name, addr);
        }
        drop(listeners);
        let dir = std::env::temp_dir().join(format!("nest-nginx-{}-{attempt}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Created with the default mode (0755 under the usual umask): started as root, nginx
        // runs its worker as `nobody`, which must reach the temporary directories in here.
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
        for (name, contents) in files {
            let path = dir.join(name);
            std::fs::write(&path, contents).map_err(|e| format!("cannot write {path:?}: {e}"))?;
        }
        let conf = dir.join("nginx.conf");
        let mut text = config.replace("@DIR@", &dir.display().to_string());
        for (name, addr) in &ports {
            text = text.replace(&format!("@{name}@"), &addr.port().to_string());
        }
        std::fs::write(&conf, text).map_err(|e| format!("cannot write {conf:?}: {e}"))?;

        let master = Command::new(nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            // Errors before the configuration is read go here too, not to /var/log/nginx.
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot spawn {}: {e}", nginx.display()))?;
        let mut started = Self { master, dir, ports };
        started.wait_until_listening()?;
        Ok(started)
    }

    /// Polls the ports until nginx accepts connections on each, or fails with its error log.
    fn wait_until_listening(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let mut waiting: Vec<SocketAddr> = self.ports.values().copied().collect();
        loop {
            if let Ok(Some(status)) = self.master.try_wait() {
                return Err(format!(
                    "nginx exited early ({status}); its error log:\n{}",
                    self.error_log()
                ));
            }
            waiting
                .retain(|addr| TcpStream::connect_timeout(addr, Duration::from_secs(1)).is_err());
            if waiting.is_empty() {
                eprintln!(
                    "nginx: listening on {:?} after {:?}",
                    self.ports,
                    started.elapsed()
                );
                return Ok(());
            }
            if started.elapsed() > START_DEADLINE {
                return Err(format!(
                    "nginx did not listen on {waiting:?} within {START_DEADLINE:?}; \
                     its error log:\n{}",
                    self.error_log()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The address nginx listens on for the port named `name` in [`start`](Self::start).
    pub(crate) fn addr(&self, name: &str) -> SocketAddr {
        self.ports[name]
    }

    /// What nginx wrote to its error log so far.
    pub(crate) fn error_log(&self) -> String {
        self.log("error.log")
            .unwrap_or_else(|e| format!("(cannot read the error log: {e})"))
    }

    /// What nginx wrote so far to the log file `name` in its directory.
    pub(crate) fn log(&self, name: &str) -> std::io::Result<String> {
        std::fs::read_to_string(self.dir.join(name))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("nginx error log:\n{}", self.error_log());
        }
        // SIGTERM is nginx's fast shutdown (SIGQUIT would wait for the open event streams): the
        // master stops its worker, waits for it, and exits.
        let _ = Command::new("kill")
            .args(["-TERM", &self.master.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let started = Instant::now();
        while started.elapsed() < START_DEADLINE {
            if let Ok(Some(_)) = self.master.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(POLL);
        }
        // Still there: the master leads its own process group (`process_group(0)`), whose id
        // is its pid, and its worker inherited it. Kill exactly that group, then reap.
        let group = format!("-{}", self.master.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.master.kill();
        let _ = self.master.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
