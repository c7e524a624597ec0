//! `nest-sse URL`: prints server-sent events as a browser's `EventSource`
//! would see them, like `curl -N` but parsed.
//!
//! # Exit codes
//!
//! Stable, so scripts can tell failures apart (also in `--help`):
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | the stream ended as asked: `--max-events`, `--timeout`, the end of the response with `--no-reconnect`, 204 No Content (the server's "stop"; a note on stderr), or stdout closed (`nest-sse URL \| head -2`) |
//! | 1 | another failure (writing to stdout) |
//! | 2 | usage: a bad flag, header, method, URL or `--cacert` file |
//! | 3 | connection: connecting failed (refused, DNS, TLS), or the connection broke before the stream opened or with `--no-reconnect` |
//! | 4 | HTTP status: other than 200 and 204 |
//! | 5 | content type: not `text/event-stream` |
//! | 6 | parse: the response was not valid HTTP |
//!
//! As a browser's `EventSource`: network errors, the end of the response and
//! 503/429 (after their `Retry-After`) are reported on stderr and the CLI
//! reconnects, before the stream first opened as after; other statuses,
//! content types and invalid responses end the run. `--fail-fast` ends it at
//! the first failure before the stream opened (a script checking that a server
//! is up); `--no-reconnect` never reconnects.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use futures_util::StreamExt;
use nest_sse_client::reqwest::{self, Method, StatusCode};
use nest_sse_client::{Error, Event, EventSource, ResponseHead, SseItem};

const EXIT_CODES: &str = "\
Like a browser's EventSource, nest-sse reconnects after network errors, the end of
the response and 503/429 (after Retry-After), also before the stream first opened
(--fail-fast: not before; --no-reconnect: never).

Exit codes:
  0  the stream ended as asked (--max-events, --timeout, the end with --no-reconnect),
     the server answered 204 No Content, or stdout was closed (| head)
  1  another failure (writing to stdout)
  2  usage: a bad flag, header, method, URL or --cacert file
  3  connection: connecting failed, or the connection broke
  4  HTTP status other than 200 and 204
  5  content type other than text/event-stream
  6  parse: the response was not valid HTTP";

/// Prints server-sent events as they arrive.
#[derive(Debug, Parser)]
#[command(name = "nest-sse", version, about, after_help = EXIT_CODES)]
struct Args {
    /// The event stream's URL.
    url: String,
    /// One JSON object per event and line: {"event","data","id","retry"}.
    #[arg(long)]
    json: bool,
    /// Print comment lines too (`: text`, or {"comment"} with --json).
    #[arg(long)]
    comments: bool,
    /// Print the response head and each reconnection with its delay (stderr).
    #[arg(short, long)]
    verbose: bool,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Resume after this event ID (sent as `Last-Event-ID`).
    #[arg(long, value_name = "ID")]
    last_event_id: Option<String>,
    /// Exit when the stream ends or fails instead of reconnecting.
    #[arg(long)]
    no_reconnect: bool,
    /// Exit at the first failure before the stream opened (refused, 503, …)
    /// instead of retrying as a browser does.
    #[arg(long)]
    fail_fast: bool,
    /// Exit after this many events.
    #[arg(long, value_name = "N")]
    max_events: Option<u64>,
    /// Exit after this many seconds (fractions allowed).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    timeout: Option<Duration>,
    /// The request method (default GET, or POST with `-d`).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,
    /// A request body.
    #[arg(short = 'd', long = "data", value_name = "BODY")]
    body: Option<String>,
    /// HTTP/2 only: by ALPN over https, by prior knowledge over http.
    #[arg(long)]
    http2: bool,
    /// Accept any TLS certificate (self-signed, expired, another name).
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Trust only the certificates in this PEM file (a private CA).
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("expected `Name: value`, got {text:?}")),
    }
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("expected a number of seconds, got {text:?}"))
}

/// How a run ends; the discriminant is the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Other = 1,
    Usage = 2,
    Connect = 3,
    Status = 4,
    ContentType = 5,
    Parse = 6,
}

impl Exit {
    /// The exit code for an error of the library.
    fn of(error: &Error) -> Self {
        if error.is_builder() {
            Self::Usage
        } else if error.is_status() {
            Self::Status
        } else if error.is_content_type() {
            Self::ContentType
        } else if error.is_invalid_response() {
            Self::Parse
        } else {
            Self::Connect
        }
    }
}

/// A failed run: its exit code and one line for stderr.
#[derive(Debug)]
struct Failure {
    exit: Exit,
    message: String,
}

impl Failure {
    fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }

    fn of(error: &Error) -> Self {
        Self::new(Exit::of(error), report(error))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("nest-sse: error: {}", failure.message);
            ExitCode::from(failure.exit as u8)
        }
    }
}

fn client(args: &Args) -> Result<reqwest::Client, Failure> {
    let mut client = reqwest::Client::builder();
    if args.http2 {
        client = client.http2_prior_knowledge();
    }
    if args.insecure {
        client = client.danger_accept_invalid_certs(true);
    }
    if let Some(path) = &args.cacert {
        let usage =
            |why: String| Failure::new(Exit::Usage, format!("--cacert {}: {why}", path.display()));
        let pem = std::fs::read(path).map_err(|e| usage(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| usage(report(&e)))?;
        if certs.is_empty() {
            return Err(usage("no PEM certificate in the file".into()));
        }
        client = client.tls_certs_only(certs);
    }
    client
        .build()
        .map_err(|e| Failure::new(Exit::Other, report(&e)))
}

fn source(args: &Args) -> Result<EventSource, Failure> {
    let method = match (&args.method, &args.body) {
        (Some(method), _) => Method::from_bytes(method.as_bytes())
            .map_err(|_| Failure::new(Exit::Usage, format!("invalid method {method:?}")))?,
        (None, Some(_)) => Method::POST,
        (None, None) => Method::GET,
    };
    let mut builder = EventSource::builder(&args.url)
        .client(client(args)?)
        .method(method)
        .comments(args.comments)
        .reconnect(!args.no_reconnect);
    if let Some(body) = &args.body {
        builder = builder.body(body.clone());
    }
    for (name, value) in &args.headers {
        builder = builder.header(name, value);
    }
    if let Some(id) = &args.last_event_id {
        builder = builder.last_event_id(id.clone());
    }
    builder.build().map_err(|e| Failure::of(&e))
}

/// An error and its causes on one line, `: `-separated: the library's errors
/// show only their own message, and "connection failed" alone does not say why.
fn report(error: &dyn std::error::Error) -> String {
    let chain: Vec<String> = std::iter::successors(Some(error), |&e| e.source())
        .map(ToString::to_string)
        .collect();
    chain.join(": ")
}

async fn run(args: Args) -> Result<(), Failure> {
    let mut source = source(&args)?;
    let deadline = args.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut out = std::io::stdout().lock();
    let mut seen = 0u64;
    let mut opened = false;
    if args.max_events == Some(0) {
        return Ok(());
    }
    let stdout_closed = stdout_closed();
    tokio::pin!(stdout_closed);
    loop {
        let next = async {
            match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, source.next()).await.ok(),
                None => Some(source.next().await),
            }
        };
        let next = tokio::select! {
            next = next => match next {
                Some(next) => next,
                None => return Ok(()), // --timeout
            },
            // The reader went away while the stream was quiet: done, at once.
            () = &mut stdout_closed => return Ok(()),
        };
        let printed = match next {
            None => return ended(&source, args.verbose),
            Some(Ok(SseItem::Open)) => {
                opened = true;
                if let Some(head) = source.response().filter(|_| args.verbose) {
                    print_head(head);
                }
                Ok(())
            }
            Some(Ok(SseItem::Message(event))) => {
                seen += 1;
                print_event(&mut out, &event, args.json)
            }
            Some(Ok(SseItem::Comment(text))) => print_comment(&mut out, &text, args.json),
            Some(Ok(_)) => Ok(()),
            Some(Err(error)) => {
                handle(&error, &source, opened, &args)?;
                Ok(())
            }
        };
        match printed {
            // The reader went away (`nest-sse URL | head -2`): done, quietly, as `cat` is.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(Failure::new(Exit::Other, format!("stdout: {e}"))),
            Ok(()) => {}
        }
        if args.max_events.is_some_and(|max| seen >= max) {
            return Ok(());
        }
    }
}

/// Resolves when stdout is a pipe whose reader has gone away (`| head -2`
/// exited): poll(2) reports an error or hang-up on the pipe's write end
/// (asked for no event, it reports only those). A thread waits in poll, as
/// stdout stays a blocking descriptor for the writes; for a terminal or a
/// file it waits forever and the future never resolves.
#[cfg(unix)]
async fn stdout_closed() {
    use rustix::event::{poll, PollFd, PollFlags};
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let stdout = std::io::stdout();
        loop {
            let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
            match poll(&mut fds, None) {
                Ok(_)
                    if fds[0]
                        .revents()
                        .intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL) =>
                {
                    let _ = tx.send(());
                    return;
                }
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => return, // cannot watch: the next write will tell
            }
        }
    });
    if rx.await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Elsewhere a closed stdout shows at the next write.
#[cfg(not(unix))]
async fn stdout_closed() {
    std::future::pending().await
}

/// The stream ended without an error: a 204, or after an end without
/// reconnecting (already reported).
fn ended(source: &EventSource, verbose: bool) -> Result<(), Failure> {
    if let Some(head) = source.response() {
        if head.status() == StatusCode::NO_CONTENT {
            if verbose {
                print_head(head);
            }
            eprintln!("nest-sse: the server answered 204 No Content: the stream is over");
        }
    }
    Ok(())
}

/// Whether an error ends the run: fatal errors do, every failure with
/// `--no-reconnect`, and failures before the first open with `--fail-fast`;
/// the end of the stream is clean with `--no-reconnect`.
fn handle(error: &Error, source: &EventSource, opened: bool, args: &Args) -> Result<(), Failure> {
    if let Some(head) = error.response().filter(|_| args.verbose) {
        print_head(head);
    }
    if error.is_ended() && args.no_reconnect {
        return Ok(());
    }
    if error.is_fatal() || args.no_reconnect || (args.fail_fast && !opened) {
        return Err(Failure::of(error));
    }
    match source.reconnect_delay() {
        Some(delay) if args.verbose => {
            eprintln!("nest-sse: {}; reconnecting in {delay:?}", report(error));
        }
        _ => eprintln!("nest-sse: {}; reconnecting", report(error)),
    }
    Ok(())
}

/// A response head on stderr, as `curl -v` shows it.
fn print_head(head: &ResponseHead) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "< {:?} {}", head.version(), head.status());
    for (name, value) in head.headers() {
        let _ = writeln!(
            err,
            "< {name}: {}",
            String::from_utf8_lossy(value.as_bytes())
        );
    }
    let _ = writeln!(err, "<");
}

fn print_event(out: &mut impl Write, event: &Event, json: bool) -> std::io::Result<()> {
    if json {
        let line = serde_json::to_string(event).map_err(std::io::Error::other)?;
        writeln!(out, "{line}")?;
    } else {
        writeln!(out, "event: {}", event.event)?;
        if !event.id.is_empty() {
            writeln!(out, "id: {}", event.id)?;
        }
        if let Some(retry) = event.retry {
            writeln!(out, "retry: {retry}")?;
        }
        for line in event.data.split('\n') {
            writeln!(out, "data: {line}")?;
        }
        writeln!(out)?;
    }
    out.flush()
}

fn print_comment(out: &mut impl Write, text: &str, json: bool) -> std::io::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::json!({ "comment": text }))?;
    } else {
        writeln!(out, ": {text}")?;
    }
    out.flush()
}
