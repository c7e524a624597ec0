//! # nest-auth
//!
//! Who may listen: signed stream credentials that work from a browser's `EventSource`, expiry
//! on open streams, and per-topic authorization for the SSE hub.
//!
//! `EventSource` cannot set an `Authorization` header, so browsers carry the token in an
//! `HttpOnly` cookie; servers and CLIs send `Authorization: Bearer`; a query parameter is
//! there, opt-in, for clients that can do neither. The token is a JWT (the `jsonwebtoken`
//! crate on its pure-Rust backend) whose claims list the hub topics its holder may subscribe
//! and publish to, as Mercure's do.
//!
//! - [`Authenticator`]: keys ([`Key`]: HS256, ES256, EdDSA; rotation by `kid`), the audience,
//!   where tokens are looked for; [`verify`](Authenticator::verify),
//!   [`issue`](Authenticator::issue), [`set_cookie`](Authenticator::set_cookie),
//!   [`refresh`](Authenticator::refresh).
//! - [`Auth`]: the extractor. A missing or invalid token is a 401 with `WWW-Authenticate`
//!   before the handler runs, so no stream starts for it.
//! - [`AuthorizedHub`]: subscribe, resume and publish checked against the claims' topics
//!   ([`TopicSelector`]: exact names, `{segment}`, a `*` prefix), a 403 before any byte when
//!   not allowed; each stream ends at its token's expiry with `event: reauth` and a `retry:`.
//! - [`Error`]: why a request was refused (and the answer it becomes), or why a
//!   configuration is invalid.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use nest_auth::{Auth, AuthorizedHub, Authenticator, Grant, Key};
//! use nest_core::prelude::*;
//! use nest_hub::Hub;
//! use nest_core::test_util::TestServer;
//!
//! struct Rooms { hub: AuthorizedHub }
//!
//! impl Rooms {
//!     async fn events(
//!         self: Arc<Self>,
//!         Auth(claims): Auth,
//!         Path(room): Path<String>,
//!         last: LastEventId,
//!     ) -> Result<nest_core::Response, HttpException> {
//!         Ok(self.hub.subscribe(&claims, &format!("rooms/{room}"), &last).await?)
//!     }
//! }
//!
//! impl Controller for Rooms {
//!     fn routes(r: &mut Routes<Self>) {
//!         r.get("/rooms/:room/events", Self::events);
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let auth = Authenticator::builder()
//!     .key(Key::hmac("2026-12", &[7; 32]).unwrap())
//!     .audience("rooms")
//!     .build()
//!     .unwrap();
//! let hub = AuthorizedHub::new(Hub::new(), auth.clone());
//! let app = NestApp::new().state(auth.clone()).controller(Rooms { hub });
//! let server = TestServer::start(app).await;
//! let client = reqwest::Client::new();
//!
//! // No token: 401 and a challenge, no stream.
//! let res = client.get(server.url("/rooms/a/events")).send().await.unwrap();
//! assert_eq!(res.status(), 401);
//! assert!(res.headers().contains_key("www-authenticate"));
//!
//! // A token for room a, in the cookie a browser would send: a stream for a, 403 for b.
//! let token = auth.issue(&Grant::new("ada").subscribe(["rooms/a"])).unwrap();
//! let cookie = format!("nest_token={}", token.as_str());
//! let res = client.get(server.url("/rooms/a/events")).header("cookie", &cookie).send().await.unwrap();
//! assert_eq!(res.status(), 200);
//! assert_eq!(res.headers()["content-type"], "text/event-stream");
//! let res = client.get(server.url("/rooms/b/events")).header("cookie", &cookie).send().await.unwrap();
//! assert_eq!(res.status(), 403);
//! server.shutdown().await;
//! # });
//! ```
//!
//! # Decisions
//!
//! - **Keys and algorithms.** Each [`Key`] has one algorithm; a token's `kid` picks the key
//!   and its `alg` must be that key's. `alg: none` does not parse; an HS256 token signed with
//!   an ES256 public key is refused. A token without `kid` is accepted only when the
//!   authenticator holds exactly one key. HMAC secrets are at least 32 bytes.
//! - **Claims.** `sub`, `aud` and `exp` are required (`iss` when an issuer is set); the topics
//!   are `{"topics":{"subscribe":[…],"publish":[…]}}` (see [`Claims`]). No leeway on `exp`
//!   by default.
//! - **Expiry.** A stream ends at `exp` plus [`grace`](AuthenticatorBuilder::grace) with
//!   `event: reauth`, `data: {"reason":"expired"}` and `retry:`
//!   ([`reauth_retry`](AuthenticatorBuilder::reauth_retry), 1 s). Its end reason is
//!   `Lifetime`. The page refreshes its cookie (e.g. [`Authenticator::refresh`] behind a
//!   `POST`), the browser reconnects with `Last-Event-ID` and the hub resumes after it.
//! - **Secrets stay out of logs.** Errors never contain the token; nest-core's request span
//!   and metrics carry the path and the route pattern, never the query string;
//!   [`Authenticator::redact`] is for an app's own access log. `Token`'s `Debug` hides it.
//! - **What is not here**: revocation lists (keep tokens short-lived and refresh them), JWKS
//!   fetching, RSA keys.
//!
//! # Source files
//!
//! `authenticator.rs` (verify, issue, refresh), `builder.rs` (its settings, checked),
//! `cookie.rs`, `token.rs`, `keys.rs`, `claims.rs`, `topic.rs`
//! (selectors), `credentials.rs` (header, cookie, query; redaction), `extract.rs` (`Auth`),
//! `hub.rs` (`AuthorizedHub`), `stream.rs` (the `reauth` ending), `error.rs`.

mod authenticator;
mod builder;
mod claims;
mod cookie;
mod credentials;
mod error;
mod extract;
mod hub;
mod keys;
mod same_site;
mod stream;
mod token;
mod topic;

pub use authenticator::Authenticator;
pub use builder::AuthenticatorBuilder;
pub use claims::{Claims, Grant};
pub use error::{Error, Result};
pub use extract::Auth;
pub use hub::AuthorizedHub;
pub use keys::{Key, MIN_HMAC_SECRET};
pub use same_site::SameSite;
pub use stream::REAUTH_EVENT;
pub use token::Token;
pub use topic::TopicSelector;
