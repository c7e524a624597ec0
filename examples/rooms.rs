//! A chat with private rooms on the SSE hub: a user reads and posts only in the rooms their
//! token names. The token is a signed JWT in an `HttpOnly` cookie, which the browser's
//! `EventSource` sends by itself; when it expires mid-stream the page gets `event: reauth`,
//! refreshes its cookie, and the browser resumes with `Last-Event-ID`: nothing is lost.
//!
//! Run with: `cargo run --example rooms`, then open the printed URL, sign in as `ada` with the
//! rooms `a,b` in one window and as `bob` with `b` in another. `HOST` (default 127.0.0.1) and
//! `PORT` (default 3002) choose the address; `ROOMS_SECRET` (32 bytes or more) the HMAC key
//! (a random one per run otherwise: tokens die with the process); `TOKEN_TTL_SECS` (default 900)
//! how long a token lives, e.g. 10 to watch the refresh; `CORS_ORIGIN` lets a page on that origin
//! use the API with credentials (`?api=http://this-server` on its page).
//!
//! - `GET /`: the page (a sign-in form, then the room).
//! - `GET /dev/login?user=ada&rooms=a,b&next=/`: signs in *without a password* and sets the
//!   cookie; a development stand-in for a real login, which would check a password first.
//! - `GET /auth/me`, `POST /auth/refresh`, `POST /auth/logout`.
//! - `GET /rooms/:room/events`: the room's stream (hub topic `rooms/<room>`), resumable with
//!   `Last-Event-ID` (or `?lastEventId=` for a new `EventSource`); 401 without a valid token,
//!   403 for a room the token does not name.
//! - `POST /rooms/:room/messages` `{"text":"…"}`: posts as the token's user; 403 likewise.
#![allow(clippy::print_stdout, reason = "an example prints its URL")]

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use http::header::{LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use nest::auth::{Auth, Authenticator, AuthorizedHub, Grant, Key};
use nest::cors::{AllowOrigin, CorsLayer};
use nest::prelude::*;
use nest::server::ListenEnv;
use nest::sse::hub::{History, Hub, HubOptions, SubscribeOptions};
use nest::Response;
use serde::Deserialize;
use serde_json::json;

#[allow(
    clippy::duplicate_mod,
    reason = "a test that includes two examples includes this module twice"
)]
mod support;

/// How many past messages a first visit to a room shows.
pub const HISTORY: usize = 50;

/// How long after its expiry a token can still be refreshed.
pub const REFRESH_WINDOW: Duration = Duration::from_secs(3600);

/// The largest message accepted (a larger one answers 413).
pub const MAX_BODY: usize = 16 * 1024;

/// The settings of the example's app.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a token lives.
    pub token_ttl: Duration,
    /// The origin of a page allowed to use the API with credentials (CORS), if any.
    pub cors_origin: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(900),
            cors_origin: None,
        }
    }
}

/// The rooms: the hub behind the token's topics, the authenticator that issues cookies.
#[derive(Debug)]
pub struct RoomsController {
    hub: AuthorizedHub,
    auth: Authenticator,
    token_ttl: Duration,
}

/// The query of `GET /dev/login`.
#[derive(Debug, Deserialize)]
pub struct Login {
    /// The user to sign in as.
    pub user: String,
    /// The rooms, comma-separated.
    pub rooms: String,
    /// Where to go next (a path on this server); `/` by default.
    pub next: Option<String>,
}

/// A message as posted.
#[derive(Debug, Deserialize)]
pub struct NewMessage {
    /// What the user wrote.
    pub text: String,
}

/// `?lastEventId=` on a stream: how a page resumes with a new `EventSource` (which cannot set
/// `Last-Event-ID`) after its old one gave up.
#[derive(Debug, Deserialize)]
pub struct Resume {
    /// The last event id the page saw.
    #[serde(rename = "lastEventId")]
    pub last_event_id: Option<String>,
}

/// A room name: 1 to 32 of `a-z`, `0-9`, `-`, `_`.
fn valid_room(room: &str) -> bool {
    (1..=32).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The hub topic of a room.
fn topic(room: &str) -> String {
    format!("rooms/{room}")
}

impl RoomsController {
    async fn index(self: Arc<Self>) -> Html<&'static str> {
        Html(PAGE)
    }

    /// Development sign-in: any user, any rooms, no password.
    async fn dev_login(
        self: Arc<Self>,
        Query(login): Query<Login>,
        req: Request,
    ) -> Result<Response, HttpException> {
        let user = login.user.trim();
        if user.is_empty() || user.len() > 64 {
            return Err(HttpException::bad_request("user: 1 to 64 characters"));
        }
        let rooms: Vec<&str> = login.rooms.split(',').map(str::trim).collect();
        if rooms.iter().any(|r| !valid_room(r)) {
            return Err(HttpException::bad_request(
                "rooms: comma-separated names of 1 to 32 of a-z, 0-9, -, _",
            ));
        }
        let topics: Vec<String> = rooms.iter().map(|r| topic(r)).collect();
        let grant = Grant::new(user)
            .subscribe(topics.iter().cloned())
            .publish(topics)
            .ttl(self.token_ttl);
        let token = self.auth.issue(&grant)?;
        let (parts, _) = req.into_parts();
        let next = login
            .next
            .filter(|n| n.starts_with('/') && !n.starts_with("//"));
        let location = HeaderValue::try_from(next.as_deref().unwrap_or("/"))
            .map_err(|_| HttpException::bad_request("next: a path"))?;
        let mut headers = HeaderMap::new();
        headers.insert(SET_COOKIE, self.auth.set_cookie(&token, &parts)?);
        headers.insert(LOCATION, location);
        Ok((StatusCode::SEE_OTHER, headers, ()).into_response())
    }

    async fn me(self: Arc<Self>, Auth(claims): Auth) -> Json<serde_json::Value> {
        let rooms: Vec<&str> = claims
            .subscribe_selectors()
            .iter()
            .filter_map(|s| s.as_str().strip_prefix("rooms/"))
            .collect();
        Json(json!({
            "user": claims.subject(),
            "rooms": rooms,
            "expiresIn": claims.expires_in().as_secs(),
        }))
    }

    /// A new cookie for a token that expired less than [`REFRESH_WINDOW`] ago (a real app
    /// would check here that the user still has these rooms).
    async fn refresh(self: Arc<Self>, req: Request) -> Result<Response, HttpException> {
        let (parts, _) = req.into_parts();
        let (_, token) = self.auth.refresh(&parts)?;
        let cookie = self.auth.set_cookie(&token, &parts)?;
        Ok(([(SET_COOKIE, cookie)], StatusCode::NO_CONTENT).into_response())
    }

    async fn logout(self: Arc<Self>, req: Request) -> Result<Response, HttpException> {
        let (parts, _) = req.into_parts();
        let cookie = self.auth.clear_cookie(&parts)?;
        Ok(([(SET_COOKIE, cookie)], StatusCode::NO_CONTENT).into_response())
    }

    /// The room's stream: checked before any byte (401, 403), then resumable.
    async fn events(
        self: Arc<Self>,
        Auth(claims): Auth,
        Path(room): Path<String>,
        last: LastEventId,
        Query(resume): Query<Resume>,
    ) -> Result<Response, HttpException> {
        let last = match last.0 {
            Some(id) => LastEventId(Some(id)),
            None => LastEventId(resume.last_event_id),
        };
        Ok(self
            .hub
            .subscribe(
                &claims,
                &topic(&room),
                SubscribeOptions::from(&last).history(History::Last(HISTORY)),
            )
            .await?)
    }

    async fn post(
        self: Arc<Self>,
        Auth(claims): Auth,
        Path(room): Path<String>,
        Json(message): Json<NewMessage>,
    ) -> Result<(StatusCode, Json<serde_json::Value>), HttpException> {
        if message.text.trim().is_empty() {
            return Err(HttpException::bad_request("text must not be empty"));
        }
        let event = SseEvent::json(&json!({ "user": claims.subject(), "text": message.text }));
        let id = self.hub.publish(&claims, &topic(&room), event).await?;
        Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
    }
}

impl Controller for RoomsController {
    fn routes(routes: &mut Routes<Self>) {
        routes.get("/", Self::index);
        routes.get("/dev/login", Self::dev_login);
        routes.get("/auth/me", Self::me);
        routes.post("/auth/refresh", Self::refresh);
        routes.post("/auth/logout", Self::logout);
        // A GET route, not `sse`: the stream is a `Response` whose body ends with `reauth`.
        routes.get("/rooms/:room/events", Self::events);
        routes.post("/rooms/:room/messages", Self::post);
    }
}

/// The authenticator on `secret` (HS256, key id `rooms-1`, audience `rooms`), also reading
/// the query parameter `access_token` when `query` (for clients that can set neither a header
/// nor a cookie; nest never logs it).
pub fn authenticator(secret: &[u8], query: bool) -> Result<Authenticator, nest::auth::Error> {
    let builder = Authenticator::builder()
        .key(Key::hmac("rooms-1", secret)?)
        .audience("rooms")
        .realm("rooms")
        .refresh_window(REFRESH_WINDOW)
        .reauth_retry(Duration::from_millis(500));
    let builder = if query {
        builder.query_parameter("access_token")
    } else {
        builder
    };
    builder.build()
}

/// The hub: in process, each subscriber reconnects after 1 s.
pub fn hub() -> Hub {
    Hub::with_backend(
        nest::sse::hub::MemoryBackend::default(),
        HubOptions::new().retry(Duration::from_secs(1)),
    )
}

/// The app: the rooms on `hub`, tokens from `auth`, CORS with credentials for
/// `settings.cors_origin` when set.
pub fn app(
    auth: Authenticator,
    hub: Hub,
    settings: &Settings,
) -> Result<NestApp, Box<dyn std::error::Error>> {
    let controller = RoomsController {
        hub: AuthorizedHub::new(hub, auth.clone()),
        auth: auth.clone(),
        token_ttl: settings.token_ttl,
    };
    let app = NestApp::new()
        .state(auth)
        .controller(controller)
        .body_limit(MAX_BODY);
    Ok(match &settings.cors_origin {
        // `withCredentials` needs the exact origin and `Access-Control-Allow-Credentials`.
        Some(origin) => app.layer(
            CorsLayer::builder()
                .origin(AllowOrigin::exact(origin))
                .credentials(true)
                .allowed_headers(["content-type", "last-event-id"])
                .build()?,
        ),
        None => app,
    })
}

/// 32 random bytes from the operating system.
fn random_secret() -> std::io::Result<Vec<u8>> {
    let mut secret = vec![0; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut secret)?;
    Ok(secret)
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>nest rooms</title>
<style>body{font:14px system-ui;margin:2em;max-width:40em}#log{border:1px solid #ccc;height:20em;overflow:auto;padding:.5em}.sys{color:#888}#state{font-size:85%;color:#666}</style>
</head>
<body>
<h1>nest rooms <span id="state"></span></h1>
<form id="login" hidden>
  <input id="user" placeholder="user" value="ada" size="8">
  <input id="rooms" placeholder="rooms, comma-separated" value="a,b" size="16">
  <button>sign in</button> <small>(development sign-in: no password)</small>
</form>
<div id="room" hidden>
  <p>signed in as <b id="me"></b>; rooms: <span id="list"></span> <button id="logout">sign out</button></p>
  <div id="log"></div>
  <form id="post"><input id="text" placeholder="message" size="30" autofocus> <button>send</button></form>
</div>
<script>
  // `?api=` puts the API on another origin (CORS with credentials); `?room=` picks the room.
  const params = new URLSearchParams(location.search);
  const API = params.get('api') || '';
  const credentials = API ? 'include' : 'same-origin';
  const $ = (id) => document.getElementById(id);
  const line = (text, cls) => { const p = document.createElement('div'); p.textContent = text; if (cls) p.className = cls; $('log').appendChild(p); $('log').scrollTop = $('log').scrollHeight; };
  // What the page saw, for people and for tests.
  window.state = { me: null, room: null, messages: [], opened: 0, errors: 0, closed: 0, reauths: 0, refreshed: 0, refusals: 0, duplicates: 0, lastId: null, posted: [] };
  const seen = new Set();
  let source = null;

  async function refresh() {
    try {
      const res = await fetch(API + '/auth/refresh', { method: 'POST', credentials });
      if (res.ok) window.state.refreshed += 1; else window.state.refusals += 1;
      return res.ok;
    } catch (e) {
      window.state.refusals += 1;
      return false;
    }
  }

  function open(room) {
    const resume = window.state.lastId ? '?lastEventId=' + encodeURIComponent(window.state.lastId) : '';
    source = new EventSource(API + '/rooms/' + encodeURIComponent(room) + '/events' + resume, { withCredentials: !!API });
    window.source = source;
    source.onopen = () => { window.state.opened += 1; $('state').textContent = '● live'; };
    source.addEventListener('message', (e) => {
      window.state.lastId = e.lastEventId;
      if (seen.has(e.lastEventId)) { window.state.duplicates += 1; return; }
      seen.add(e.lastEventId);
      const m = JSON.parse(e.data);
      window.state.messages.push({ id: e.lastEventId, user: m.user, text: m.text });
      line(m.user + ': ' + m.text);
    });
    // The token expired: refresh the cookie now; the browser reconnects after `retry`.
    source.addEventListener('reauth', () => { window.state.reauths += 1; line('(session renewed)', 'sys'); refresh(); });
    source.onerror = async () => {
      window.state.errors += 1;
      if (source.readyState !== EventSource.CLOSED) { $('state').textContent = '◌ reconnecting…'; return; }
      // Refused (401: the cookie was not renewed in time, or is missing): renew once, then
      // open a new EventSource that resumes with ?lastEventId=.
      window.state.closed += 1;
      $('state').textContent = '○ closed';
      if (await refresh()) open(room);
    };
  }

  async function start() {
    const res = await fetch(API + '/auth/me', { credentials });
    if (!res.ok) {
      window.state.me = 'anonymous';
      $('login').hidden = false;
      // A page that opens a room anyway sees the error path (401: no events).
      if (params.get('room')) { window.state.room = params.get('room'); open(params.get('room')); }
      return;
    }
    const me = await res.json();
    window.state.me = me.user;
    const room = params.get('room') || me.rooms[0];
    window.state.room = room;
    $('me').textContent = me.user;
    $('list').textContent = me.rooms.join(', ');
    $('room').hidden = false;
    if (room) open(room);
  }

  window.post = async (text) => {
    const res = await fetch(API + '/rooms/' + encodeURIComponent(window.state.room) + '/messages', {
      method: 'POST', credentials, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) });
    window.state.posted.push(res.status);
    return res.status;
  };
  $('post').onsubmit = async (e) => {
    e.preventDefault();
    const status = await window.post($('text').value);
    if (status === 201) $('text').value = ''; else line('(not sent: ' + status + ')', 'sys');
  };
  $('login').onsubmit = (e) => {
    e.preventDefault();
    location.href = '/dev/login?user=' + encodeURIComponent($('user').value) + '&rooms=' + encodeURIComponent($('rooms').value) + '&next=/';
  };
  $('logout').onclick = async () => { await fetch(API + '/auth/logout', { method: 'POST', credentials }); location.reload(); };
  start();
</script>
</body>
</html>
"#;

#[allow(
    dead_code,
    reason = "tests include this file for `app` and do not call `main`"
)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_logging();
    let listen = ListenEnv::from_env(3004)?;
    let secret = match std::env::var("ROOMS_SECRET") {
        Ok(secret) => secret.into_bytes(),
        Err(_) => random_secret()?,
    };
    let mut settings = Settings {
        cors_origin: std::env::var("CORS_ORIGIN").ok(),
        ..Settings::default()
    };
    if let Ok(ttl) = std::env::var("TOKEN_TTL_SECS") {
        settings.token_ttl = Duration::from_secs(ttl.parse()?);
    }
    let server = app(authenticator(&secret, false)?, hub(), &settings)?
        .bind_env(&listen)
        .await?;
    println!(
        "nest rooms example: open {} (development sign-in, no password)",
        server.url()
    );
    server.run_until_signal().await;
    Ok(())
}
