//! `GET`: catch-up, long-poll and SSE reads.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::StatusCode;
use nest_core::body::Body;
use nest_core::{IntoResponse, Response};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::frame;
use super::headers::{
    empty, insert, STREAM_CLOSED, STREAM_CURSOR, STREAM_NEXT_OFFSET, STREAM_UP_TO_DATE,
};
use super::parse::{self, Live};
use crate::error::Problem;
use crate::offset::{Offset, ReadFrom};
use crate::state::{is_text, ReadOutcome};
use crate::store::Store;

/// The cursor epoch the protocol names: 2024-10-09T00:00:00Z, in milliseconds.
const CURSOR_EPOCH_MS: u128 = 1_728_432_000_000;
/// The cursor interval: 20 seconds.
const CURSOR_INTERVAL_MS: u128 = 20_000;

pub(super) async fn get(
    store: &Arc<dyn Store>,
    path: &str,
    req: &http::request::Parts,
    drain: watch::Receiver<bool>,
) -> Result<Response, Problem> {
    let query = parse::read_query(req.uri.query())?;
    let cursor = next_cursor(query.cursor.as_deref());
    match query.live {
        Live::CatchUp => {
            let outcome = store.read(path, query.from).await?;
            Ok(data_response(
                &**store,
                &outcome,
                query.from == ReadFrom::Now,
                None,
                req,
            ))
        }
        Live::LongPoll => long_poll(&**store, path, query.from, cursor, req, drain).await,
        Live::Sse => sse(store, path, query.from, cursor, drain).await,
    }
}

/// A `200` with the data (or none), its offsets and cache validators; `304` when the client's
/// `If-None-Match` matches.
fn data_response(
    store: &dyn Store,
    outcome: &ReadOutcome,
    now: bool,
    cursor: Option<&str>,
    req: &http::request::Parts,
) -> Response {
    let etag = format!(
        "\"{:x}:{}:{}{}\"",
        outcome.id,
        Offset(outcome.start),
        Offset(outcome.next),
        if outcome.at_eof() { ":c" } else { "" }
    );
    let matches = !now
        && req
            .headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().trim_start_matches("W/") == etag || t.trim() == "*")
            });
    let mut res = if matches {
        empty(StatusCode::NOT_MODIFIED)
    } else {
        let mut res = outcome.body().into_response();
        *res.status_mut() = StatusCode::OK;
        res
    };
    let h = res.headers_mut();
    insert(h, header::CONTENT_TYPE, &outcome.content_type);
    insert(h, STREAM_NEXT_OFFSET, &Offset(outcome.next).to_string());
    if outcome.up_to_date() {
        insert(h, STREAM_UP_TO_DATE, "true");
    }
    if outcome.at_eof() {
        insert(h, STREAM_CLOSED, "true");
    }
    if let Some(cursor) = cursor {
        insert(h, STREAM_CURSOR, cursor);
    }
    if now {
        insert(h, header::CACHE_CONTROL, "no-store");
    } else {
        insert(h, header::ETAG, &etag);
        insert(h, header::CACHE_CONTROL, &store.config().cache_control);
    }
    res
}

async fn long_poll(
    store: &dyn Store,
    path: &str,
    from: ReadFrom,
    cursor: String,
    req: &http::request::Parts,
    mut drain: watch::Receiver<bool>,
) -> Result<Response, Problem> {
    let deadline = Instant::now() + store.config().long_poll_timeout;
    let mut at = from;
    loop {
        let mut changed = store.wakeups().subscribe(path);
        let outcome = store.read(path, at).await?;
        if !outcome.data.is_empty() {
            return Ok(data_response(store, &outcome, false, Some(&cursor), req));
        }
        if outcome.closed {
            return Ok(no_content(&outcome, None));
        }
        at = ReadFrom::At(outcome.start);
        tokio::select! {
            _ = changed.changed() => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(no_content(&outcome, Some(&cursor))),
            // The app shuts down: answer now, the client polls again (elsewhere).
            _ = drained(&mut drain) => return Ok(no_content(&outcome, Some(&cursor))),
        }
    }
}

/// Resolves once the app shuts down (never, if the service is gone first).
async fn drained(drain: &mut watch::Receiver<bool>) {
    let shut_down = drain.wait_for(|d| *d).await.is_ok();
    if !shut_down {
        std::future::pending::<()>().await;
    }
}

/// `204`: nothing new before the timeout, or the end of a closed stream.
fn no_content(outcome: &ReadOutcome, cursor: Option<&str>) -> Response {
    let mut res = empty(StatusCode::NO_CONTENT);
    let h = res.headers_mut();
    insert(h, STREAM_NEXT_OFFSET, &Offset(outcome.next).to_string());
    insert(h, STREAM_UP_TO_DATE, "true");
    if outcome.closed {
        insert(h, STREAM_CLOSED, "true");
    } else if let Some(cursor) = cursor {
        insert(h, STREAM_CURSOR, cursor);
    }
    insert(h, header::CACHE_CONTROL, "no-store");
    res
}

async fn sse(
    store: &Arc<dyn Store>,
    path: &str,
    from: ReadFrom,
    cursor: String,
    drain: watch::Receiver<bool>,
) -> Result<Response, Problem> {
    let changed = store.wakeups().subscribe(path);
    let first = store.read(path, from).await?;
    let config = store.config();
    // A few events in flight: the follower waits for room, so a slow client slows its own
    // reads and nothing else (each event is at most `max_read_bytes`, base64 a third more).
    let (tx, rx) = mpsc::channel::<Bytes>(SSE_QUEUE);
    let base64 = !is_text(&first.content_type);
    let follow = Follower {
        store: store.clone(),
        path: path.to_owned(),
        tx,
        base64,
        cursor,
        deadline: Instant::now() + config.sse_lifetime,
    };
    tokio::spawn(follow.run(first, changed, drain));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|frame| (Ok::<_, std::convert::Infallible>(frame), rx))
    });
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if base64 {
        h.insert(
            HeaderName::from_static("stream-sse-data-encoding"),
            HeaderValue::from_static("base64"),
        );
    }
    Ok(res)
}

/// Frames queued per SSE response.
const SSE_QUEUE: usize = 4;
/// The keep-alive comment's interval on an idle SSE response.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

/// One SSE reader: sends what is there, then waits for the stream to change. It ends when the
/// client goes away (the body, and with it the receiver, is dropped), at the end of a closed
/// stream, after the configured lifetime, and when the app shuts down.
struct Follower {
    store: Arc<dyn Store>,
    path: String,
    tx: mpsc::Sender<Bytes>,
    base64: bool,
    cursor: String,
    deadline: Instant,
}

/// The client went away.
struct Gone;

impl Follower {
    async fn run(
        self,
        first: ReadOutcome,
        mut changed: watch::Receiver<u64>,
        mut drain: watch::Receiver<bool>,
    ) {
        let _ = self.follow(first, &mut changed, &mut drain).await;
    }

    async fn follow(
        &self,
        first: ReadOutcome,
        changed: &mut watch::Receiver<u64>,
        drain: &mut watch::Receiver<bool>,
    ) -> Result<(), Gone> {
        let mut outcome = first;
        let mut announced = false;
        loop {
            if !outcome.data.is_empty() {
                self.send(frame::event("data", &self.encode(&outcome)))
                    .await?;
                self.control(&outcome).await?;
                announced = outcome.up_to_date();
            } else if !announced {
                self.control(&outcome).await?;
                announced = true;
            }
            if outcome.at_eof() {
                return Ok(());
            }
            if outcome.up_to_date() {
                loop {
                    tokio::select! {
                        res = changed.changed() => {
                            if res.is_err() { return Ok(()) }
                            break;
                        }
                        _ = tokio::time::sleep_until(self.deadline) => return Ok(()),
                        _ = tokio::time::sleep(KEEP_ALIVE_EVERY) => {
                            self.send(Bytes::from_static(frame::KEEP_ALIVE)).await?;
                        }
                        _ = self.tx.closed() => return Err(Gone),
                        // The app shuts down: end the response cleanly; the client
                        // reconnects from its last offset.
                        _ = drained(drain) => return Ok(()),
                    }
                }
            }
            outcome = match self
                .store
                .read(&self.path, ReadFrom::At(outcome.next))
                .await
            {
                Ok(next) => next,
                // Deleted or expired: end the response; the reconnect gets the 404 or 410.
                Err(_) => return Ok(()),
            };
        }
    }

    async fn send(&self, frame: Bytes) -> Result<(), Gone> {
        self.tx.send(frame).await.map_err(|_| Gone)
    }

    fn encode(&self, outcome: &ReadOutcome) -> String {
        let body = outcome.body();
        if self.base64 {
            base64::engine::general_purpose::STANDARD.encode(&body)
        } else {
            String::from_utf8_lossy(&body).into_owned()
        }
    }

    async fn control(&self, outcome: &ReadOutcome) -> Result<(), Gone> {
        let mut control = serde_json::Map::new();
        control.insert(
            "streamNextOffset".into(),
            Offset(outcome.next).to_string().into(),
        );
        if outcome.at_eof() {
            control.insert("streamClosed".into(), true.into());
            control.insert("upToDate".into(), true.into());
        } else {
            control.insert("streamCursor".into(), self.cursor.clone().into());
            if outcome.up_to_date() {
                control.insert("upToDate".into(), true.into());
            }
        }
        let text = serde_json::Value::Object(control).to_string();
        self.send(frame::event("control", &text)).await
    }
}

/// The cursor of a live response: the current 20-second interval since the protocol's epoch,
/// or, when the client already holds that interval (or a later one), a jittered later one so
/// that cursors never go backwards and CDN cache keys keep changing.
pub(crate) fn next_cursor(client: Option<&str>) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let interval = (now.saturating_sub(CURSOR_EPOCH_MS) / CURSOR_INTERVAL_MS) as u64;
    match client.and_then(|c| c.parse::<u64>().ok()) {
        Some(held) if held >= interval => {
            let mut byte = [0u8; 1];
            let _ = getrandom::fill(&mut byte);
            // 1 to 180 intervals: the protocol's 1 to 3,600 seconds of jitter.
            held + 1 + u64::from(byte[0]) % 180
        }
        _ => interval,
    }
    .to_string()
}
