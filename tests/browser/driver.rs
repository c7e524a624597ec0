//! Launching chromedriver + headless Chromium for one test, the skip policy, and polling the page.
//!
//! Every [`Browser`] owns its own chromedriver (on a free port) and its own Chromium profile
//! directory. chromedriver is started as the leader of a new process group, so the Chromium it
//! launches is in that group too; dropping the [`Browser`] (also while unwinding from a panic)
//! kills the whole group by its id and removes the profile directory.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long any one condition may take to become true on a loaded machine.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// How often the page is polled while waiting for a condition.
const POLL: Duration = Duration::from_millis(50);

/// At most this many browsers run at once (the CI machines have 2 cores).
static BROWSERS: Semaphore = Semaphore::const_new(2);

/// Numbers the profile directories of this process.
static PROFILES: AtomicUsize = AtomicUsize::new(0);

/// The flags the issue asks for: headless, no sandbox (root in containers), and nothing that
/// would try to reach the network this machine does not have.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--no-default-browser-check",
    "--window-size=800,600",
    // The TLS tests serve certificates made in the test (rcgen), which no root trusts.
    "--ignore-certificate-errors",
];

/// Finds `name` in the environment variable `var` (a path), or in `PATH`.
fn find_binary(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// The skip policy: `None` (after [`report_skip`]) when chromium or chromedriver is missing and
/// `CI` is not set; a panic when they are missing in CI.
fn binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = find_binary("CHROMIUM", &["chromium", "chromium-browser"]);
    let driver = find_binary("CHROMEDRIVER", &["chromedriver"]);
    match (chromium, driver) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        (chromium, driver) => {
            let missing = format!(
                "chromium: {}, chromedriver: {}",
                chromium.map_or("MISSING".into(), |p| p.display().to_string()),
                driver.map_or("MISSING".into(), |p| p.display().to_string()),
            );
            report_skip(&missing);
            None
        }
    }
}

/// Makes a skip visible (`nest::test_util::skip`: stderr past the harness's capture, the
/// `NEST_SKIP_LOG` file `scripts/test` reports, and a failure under CI).
fn report_skip(missing: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a browser test")
        .to_owned();
    nest::test_util::skip(
        &test,
        &format!(
            "chromium/chromedriver not installed ({missing}); install Debian's chromium and \
             chromium-driver, or run scripts/test as root"
        ),
    );
}

/// A chromedriver process group and a profile directory, cleaned up on drop.
#[derive(Debug)]
struct Processes {
    driver: Child,
    profile: PathBuf,
}

impl Drop for Processes {
    fn drop(&mut self) {
        // chromedriver leads its own process group (`process_group(0)`), whose id is its pid;
        // Chromium and its helpers inherited it. Kill exactly that group, then reap chromedriver.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A WebDriver session on a headless Chromium of its own.
#[derive(Debug)]
pub(crate) struct Browser {
    client: Client,
    // Dropped after `client`: the processes die, then the permit lets the next browser start.
    _processes: Processes,
    _permit: SemaphorePermit<'static>,
}

impl Browser {
    /// Starts chromedriver and Chromium; `None` when the test must skip (see [`binaries`]).
    pub(crate) async fn launch() -> Option<Self> {
        let (chromium, driver) = binaries()?;
        let permit = BROWSERS
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let started = Instant::now();
        let mut last_error = String::new();
        // The free port is found by binding port 0 and letting it go: another process may take
        // it in between, in which case chromedriver exits and we try another port.
        for _ in 0..3 {
            match Self::try_launch(&chromium, &driver).await {
                Ok((client, processes)) => {
                    eprintln!("browser: started in {:?}", started.elapsed());
                    return Some(Self {
                        client,
                        _processes: processes,
                        _permit: permit,
                    });
                }
                Err(err) => {
                    eprintln!("browser: launch attempt failed: {err}");
                    last_error = err;
                }
            }
        }
        panic!("could not start chromedriver + chromium: {last_error}");
    }

    async fn try_launch(chromium: &Path, driver: &Path) -> Result<(Client, Processes), String> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let profile = std::env::temp_dir().join(format!(
            "nest-browser-{}-{}",
            std::process::id(),
            PROFILES.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).map_err(|e| format!("cannot create {profile:?}: {e}"))?;
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot spawn {}: {e}", driver.display()))?;
        let mut processes = Processes {
            driver: child,
            profile,
        };

        let url = format!("http://127.0.0.1:{port}");
        wait_for_driver(&mut processes.driver, &url).await?;

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", processes.profile.display()));
        let caps = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": args,
            },
        });
        let caps: Capabilities = match caps {
            Value::Object(map) => map,
            _ => unreachable!("a JSON object"),
        };
        let client = tokio::time::timeout(
            DEADLINE,
            ClientBuilder::new(HttpConnector::new())
                .capabilities(caps)
                .connect(&url),
        )
        .await
        .map_err(|_| "no WebDriver session within the deadline".to_owned())?
        .map_err(|e| format!("cannot create a WebDriver session: {e}"))?;
        Ok((client, processes))
    }

    /// Navigates to `url` and waits for the page to load.
    pub(crate) async fn goto(&self, url: &str) {
        tokio::time::timeout(DEADLINE, self.client.goto(url))
            .await
            .unwrap_or_else(|_| panic!("loading {url} took longer than {DEADLINE:?}"))
            .unwrap_or_else(|e| panic!("cannot load {url}: {e}"));
    }

    /// Runs `script` (a function body: `return …`) in the page and gives back its result.
    pub(crate) async fn eval(&self, script: &str) -> Value {
        tokio::time::timeout(DEADLINE, self.client.execute(script, Vec::new()))
            .await
            .unwrap_or_else(|_| panic!("the page did not run the script within {DEADLINE:?}"))
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `script` until `ready` holds for what it returns, then returns that; panics with
    /// the last observation after [`DEADLINE`].
    pub(crate) async fn wait_for(
        &self,
        what: &str,
        script: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let observed = self.eval(script).await;
            if ready(&observed) {
                return observed;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "timed out after {DEADLINE:?} waiting for {what}; the page last observed:\n{observed:#}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Ends the WebDriver session (Chromium exits); the processes are killed on drop anyway.
    pub(crate) async fn close(self) {
        let Self {
            client,
            _processes,
            _permit,
        } = self;
        let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
        drop(_processes);
        drop(_permit);
    }
}

/// Waits until chromedriver answers `GET /status` with `ready: true`.
async fn wait_for_driver(driver: &mut Child, url: &str) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = driver.try_wait() {
            return Err(format!("chromedriver exited early: {status}"));
        }
        if let Ok(res) = http.get(format!("{url}/status")).send().await {
            if let Ok(body) = res.json::<Value>().await {
                if body["value"]["ready"] == json!(true) {
                    return Ok(());
                }
            }
        }
        if started.elapsed() > DEADLINE {
            return Err(format!(
                "chromedriver at {url} not ready within {DEADLINE:?}"
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}
