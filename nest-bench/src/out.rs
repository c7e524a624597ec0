//! What every subcommand shares: its error type and its one way to talk to `suite`.

use std::io::Write;

/// The error of every subcommand: a message for the user.
pub(crate) type Result<T, E = String> = std::result::Result<T, E>;

/// Prints one line on stdout and flushes it (the subcommands talk to `suite` this way).
pub(crate) fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout only means nobody listens any more.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
