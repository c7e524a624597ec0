//! An LLM-style answer that survives a page reload: `POST /chat` streams a fake model's tokens
//! as SSE from a resumable stream; the page reads it with `fetch()` (a POST, so no
//! `EventSource`), keeps the text and the last event id in `localStorage`, and after a reload
//! mid-answer POSTs again with `Last-Event-ID`: the answer goes on where it stopped, each token
//! shown exactly once. The model runs detached from the request, so it keeps going while the
//! page is away.
//!
//! Each answer's id is 128 random bits (a capability: unguessable), and a browser's answers
//! are bound to it: the page sets an HttpOnly cookie naming an anonymous owner, and only
//! requests with that cookie can resume its answers (anyone else who learns an id gets 404). A
//! client without the cookie (curl) gets answers readable by whoever holds their id. One owner
//! holds at most 100 answers, the server 10,000 (`ResumableOptions`), so a flood of requests
//! gets 429 / 503 without taking the hub from anyone else.
//!
//! `GET /openapi.json` is the API's OpenAPI 3.2 document (the answer's events typed by
//! [`AnswerEvent`]), `GET /docs` shows it.
//!
//! Run with: `cargo run --example llm`, open the printed URL, press "Ask" and reload the page
//! while the answer streams. `PORT` (default 3003) chooses the port.
#![allow(clippy::print_stdout, reason = "an example prints its URL")]

use std::sync::Arc;
use std::time::Duration;

use nest::http::{header, HeaderMap, HeaderValue};
use nest::openapi::{Info, OpenApiRoute};
use nest::prelude::*;
use nest::server::ListenEnv;
use nest::sse::hub::Hub;
use nest::sse::resumable::{Resumable, ResumableError, ResumableOptions};
use nest::Response;

#[allow(
    clippy::duplicate_mod,
    reason = "a test that includes two examples includes this module twice"
)]
mod support;

/// What the fake model answers, whatever it is asked.
pub const ANSWER: &str = "Server-Sent Events let a server push a stream of text over plain HTTP. \
Each event may carry an id, and a client that lost its connection sends the last id it saw \
to resume exactly where it stopped, so no token is lost and none is shown twice.";

/// The fake model's tokens: the answer's words, each with the space before it.
pub fn tokens() -> Vec<String> {
    ANSWER
        .split_inclusive(' ')
        .map(str::to_owned)
        .collect::<Vec<_>>()
}

/// The events of an answer's stream.
#[derive(Debug, SseEvents)]
pub enum AnswerEvent {
    /// One token of the answer, a JSON string; sent without `event:`, so its type is `message`.
    #[sse_event(name = "message")]
    Token(String),
    /// The model failed; the text says why, and the stream ends.
    #[sse_event(text)]
    Error(String),
}

/// The chat endpoint.
#[derive(Debug)]
pub struct Chat {
    streams: Resumable,
    token_delay: Duration,
}

/// The app, with the fake model waiting `token_delay` before each token.
pub fn app(token_delay: Duration) -> NestApp {
    app_with(token_delay, ResumableOptions::new())
}

/// The app with its resumable streams' options (the tests use smaller limits).
pub fn app_with(token_delay: Duration, options: ResumableOptions) -> NestApp {
    NestApp::new()
        .controller(Chat {
            streams: Resumable::with_options(Hub::new(), options),
            token_delay,
        })
        .openapi_info(Info::new("nest LLM example", "0.1.0"))
        .openapi_route(OpenApiRoute::new("/openapi.json").docs("/docs"))
}

/// The cookie that names a browser's anonymous owner.
const OWNER_COOKIE: &str = "llm_owner";

/// The owner the request's cookie names, if it is one the server could have made (32 hex
/// digits).
fn owner_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(OWNER_COOKIE)?.strip_prefix('='))
        .find(|id| id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_owned)
}

impl Controller for Chat {
    fn routes(r: &mut Routes<Self>) {
        r.get("/", Self::page)
            .doc(|op| op.summary("The page").text_success("text/html"));
        r.post("/chat", Self::chat).allow_non_get().doc(|op| {
            op.summary("A new answer, or the rest of the one `Last-Event-ID` names")
                .sse_events::<AnswerEvent>()
                .response(
                    404,
                    "No answer with that id (for this browser's owner cookie)",
                )
                .response(429, "This owner holds too many answers")
                .response(503, "The server holds too many answers")
        });
    }
}

impl Chat {
    /// `GET /`: the page, and an owner cookie for a browser that has none.
    async fn page(self: Arc<Self>, headers: HeaderMap) -> Response {
        let mut res = Html(PAGE).into_response();
        if owner_of(&headers).is_none() {
            let owner = nest::id::random_id();
            let cookie = format!("{OWNER_COOKIE}={owner}; Path=/; HttpOnly; SameSite=Strict");
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                res.headers_mut().insert(header::SET_COOKIE, cookie);
            }
        }
        res
    }

    /// `POST /chat`: a new answer, or, with `Last-Event-ID`, the rest of the one it names (the
    /// owner's only, when the answer was started with the browser's cookie).
    async fn chat(
        self: Arc<Self>,
        headers: HeaderMap,
        last: LastEventId,
    ) -> Result<SseBody, HttpException> {
        let streams = match owner_of(&headers) {
            Some(owner) => self.streams.owned_by(owner),
            None => self.streams.clone(),
        };
        if last.0.is_some() {
            return Ok(streams.resume(&last).await?);
        }
        let id = Resumable::new_id();
        let delay = self.token_delay;
        streams
            .start(&id, move |out| async move {
                for token in tokens() {
                    tokio::time::sleep(delay).await;
                    out.send(SseEvent::json(&token)).await?;
                }
                Ok::<(), ResumableError>(())
            })
            .await?;
        Ok(streams.subscribe(&id, &LastEventId(None)).await?)
    }
}

const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>nest LLM stream</title>
<style>body{font:16px system-ui;max-width:40em;margin:2em auto}#answer{white-space:pre-wrap;min-height:4em}</style>
<h1>Ask the fake model</h1>
<button id="ask">Ask</button> <span id="state">idle</span>
<p id="answer"></p>
<script>
const answer = document.getElementById('answer');
const stateView = document.getElementById('state');
// What survives a reload: the text so far and the id of its last event, saved together.
let saved = JSON.parse(localStorage.getItem('nest-llm') || 'null');

function show(state) { stateView.textContent = state; document.body.dataset.state = state; }
function save() { localStorage.setItem('nest-llm', JSON.stringify(saved)); }

function onEvent(block) {
  let id = null, data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('id:')) id = line.slice(3).replace(/^ /, '');
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  const text = data.join('\n');
  if (text !== '') saved.text += JSON.parse(text);
  if (id !== null) saved.lastId = id;
  save();
  answer.textContent = saved.text;
}

async function stream() {
  show('streaming');
  const headers = { 'content-type': 'application/json' };
  if (saved.lastId) headers['last-event-id'] = saved.lastId;
  const res = await fetch('/chat', { method: 'POST', headers, body: JSON.stringify({ prompt: 'SSE?' }) });
  if (!res.ok) { show('error ' + res.status); return; }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      onEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
  saved.done = true;
  save();
  show('done');
}

document.getElementById('ask').onclick = () => {
  saved = { text: '', lastId: null, done: false };
  save();
  answer.textContent = '';
  stream();
};

if (saved) {
  answer.textContent = saved.text;
  if (saved.done) show('done'); else stream();
}
</script>"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_logging();
    let listen = ListenEnv::from_env(3005)?;
    let server = app(Duration::from_millis(120)).bind_env(&listen).await?;
    println!("nest LLM example: open {}", server.url());
    server.run_until_signal().await;
    Ok(())
}
