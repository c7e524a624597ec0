//! The binary starts and knows its subcommands (scripts/bench-smoke then runs them for real),
//! and its HTTPS paths work end to end.

use std::process::Command;

#[test]
fn help_lists_every_subcommand() {
    let out = Command::new(env!("CARGO_BIN_EXE_nest-bench"))
        .arg("--help")
        .output()
        .expect("nest-bench runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in ["serve", "load", "idle", "cancel", "json", "suite"] {
        assert!(help.contains(sub), "{sub} missing from:\n{help}");
    }
}

#[test]
fn serve_rejects_an_unknown_framework() {
    let out = Command::new(env!("CARGO_BIN_EXE_nest-bench"))
        .args(["serve", "--framework", "rocket"])
        .output()
        .expect("nest-bench runs");
    assert!(!out.status.success());
}

/// A `serve` child, killed when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `nest-bench ARGS` to its end and returns the last JSON line it printed.
fn last_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_nest-bench"))
        .args(args)
        .output()
        .expect("nest-bench runs");
    assert!(out.status.success(), "{args:?}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// nest over HTTPS with the certificate it wrote: idle streams and the load generator, on
/// HTTP/1.1 and on HTTP/2 (5 streams per connection), each handshake verified against it.
#[test]
fn nest_serves_https_to_idle_and_load_clients() {
    use std::io::BufRead;

    let cert = std::env::temp_dir().join(format!("nest-bench-cli-{}.pem", std::process::id()));
    let cert = cert.to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nest-bench"))
        .args(["serve", "--framework", "nest", "--rate", "200"])
        .args(["--tls-cert", cert])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("nest-bench runs");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let listening: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(listening["https"], true, "{line}");
    let addr = listening["listening"].as_str().unwrap();
    for http2 in [false, true] {
        let mut common = vec!["--addr", addr, "--clients", "12", "--tls-cert", cert];
        if http2 {
            common.extend(["--http2", "--streams-per-connection", "5"]);
        }
        let connections = if http2 { 3 } else { 12 };
        let idle = last_json(&[&["idle", "--hold", "0"], &common[..]].concat());
        assert_eq!(idle["clients"], 12, "{idle}");
        assert_eq!(idle["connections"], connections, "{idle}");
        assert!(
            idle["tls"].as_str().unwrap().starts_with("TLSv1_3"),
            "{idle}"
        );
        let load = last_json(
            &[
                &["load", "--warmup", "0.1", "--duration", "0.3"],
                &common[..],
            ]
            .concat(),
        );
        assert_eq!(load["connected"], 12, "{load}");
        assert_eq!(load["connections"], connections, "{load}");
        assert!(load["events"].as_u64().unwrap() > 0, "{load}");
    }
    drop(server);
    let _ = std::fs::remove_file(cert);
}

#[test]
fn only_nest_serves_https() {
    let out = Command::new(env!("CARGO_BIN_EXE_nest-bench"))
        .args([
            "serve",
            "--framework",
            "axum",
            "--tls-cert",
            "/nonexistent/cert.pem",
        ])
        .output()
        .expect("nest-bench runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only nest"));
}
