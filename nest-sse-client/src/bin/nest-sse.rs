//! `nest-sse URL`: prints server-sent events as a browser's `EventSource`
//! would see them, like `curl -N` but parsed.
//!
//! Exits 0 when the stream ends cleanly (with `--no-reconnect`), or when
//! `--max-events` or `--timeout` stops it; exits 1 with a one-line error on a
//! bad status, a bad content type or a connection failure.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use futures_util::StreamExt;
use nest_sse_client::{Error, Event, EventSource, SseItem};
use reqwest::Method;

/// Prints server-sent events as they arrive.
#[derive(Debug, Parser)]
#[command(name = "nest-sse", version, about)]
struct Args {
    /// The event stream's URL.
    url: String,
    /// One JSON object per event and line: {"event","data","id","retry"}.
    #[arg(long)]
    json: bool,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Resume after this event ID (sent as `Last-Event-ID`).
    #[arg(long, value_name = "ID")]
    last_event_id: Option<String>,
    /// Exit when the stream ends instead of reconnecting.
    #[arg(long)]
    no_reconnect: bool,
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("nest-sse: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn source(args: &Args) -> Result<EventSource, String> {
    let method = match (&args.method, &args.body) {
        (Some(method), _) => Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("invalid method {method:?}"))?,
        (None, Some(_)) => Method::POST,
        (None, None) => Method::GET,
    };
    let client = reqwest::Client::builder().build().map_err(|e| report(&e))?;
    let mut request = client.request(method, args.url.as_str());
    if let Some(body) = &args.body {
        request = request.body(body.clone());
    }
    let mut builder = EventSource::builder_from_request(request).reconnect(!args.no_reconnect);
    for (name, value) in &args.headers {
        builder = builder.header(name, value);
    }
    if let Some(id) = &args.last_event_id {
        builder = builder.last_event_id(id.clone());
    }
    builder.build().map_err(|e| report(&e))
}

/// An error and its causes on one line, `: `-separated: the library's errors
/// show only their own message, and "connection failed" alone does not say why.
fn report(error: &dyn std::error::Error) -> String {
    let chain: Vec<String> = std::iter::successors(Some(error), |&e| e.source())
        .map(ToString::to_string)
        .collect();
    chain.join(": ")
}

async fn run(args: Args) -> Result<(), String> {
    let mut source = source(&args)?;
    let deadline = args.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut out = std::io::stdout().lock();
    let mut seen = 0u64;
    let mut opened = false;
    if args.max_events == Some(0) {
        return Ok(());
    }
    loop {
        let next = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, source.next()).await {
                Ok(next) => next,
                Err(_) => return Ok(()),
            },
            None => source.next().await,
        };
        match next {
            None => return Ok(()),
            Some(Ok(SseItem::Open)) => opened = true,
            Some(Ok(SseItem::Message(event))) => {
                print(&mut out, &event, args.json).map_err(|e| format!("stdout: {e}"))?;
                seen += 1;
                if args.max_events.is_some_and(|max| seen >= max) {
                    return Ok(());
                }
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => handle(&error, opened, args.no_reconnect)?,
        }
    }
}

/// Whether an error ends the run: fatal errors and failures before the
/// first open do; the end of the stream is clean with `--no-reconnect`.
fn handle(error: &Error, opened: bool, no_reconnect: bool) -> Result<(), String> {
    if error.is_ended() && no_reconnect {
        return Ok(());
    }
    if error.is_fatal() || !opened || no_reconnect {
        return Err(report(error));
    }
    eprintln!("nest-sse: {}; reconnecting", report(error));
    Ok(())
}

fn print(out: &mut impl Write, event: &Event, json: bool) -> std::io::Result<()> {
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
