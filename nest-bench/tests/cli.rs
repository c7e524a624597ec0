//! The binary starts and knows its subcommands (scripts/bench-smoke then runs them for real).

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
