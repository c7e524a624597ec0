//! The [`Auth`] extractor: a handler that takes it runs only for a request with a valid token;
//! any other gets 401 with `WWW-Authenticate` before the handler runs, so an SSE route never
//! starts a stream for it.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use nest_auth::{Auth, Authenticator, Grant, Key};
//! use nest_core::prelude::*;
//! use nest_core::test_util::TestServer;
//!
//! struct Me;
//! impl Controller for Me {
//!     fn routes(r: &mut Routes<Self>) {
//!         r.get("/me", |_: Arc<Self>, Auth(claims): Auth| async move { claims.subject().to_owned() });
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let auth = Authenticator::builder().key(Key::hmac("k1", &[7; 32]).unwrap()).audience("me").build().unwrap();
//! let token = auth.issue(&Grant::new("ada")).unwrap();
//! let server = TestServer::start(NestApp::new().state(auth).controller(Me)).await;
//! let client = reqwest::Client::new();
//!
//! let res = client.get(server.url("/me")).send().await.unwrap();
//! assert_eq!(res.status(), 401);
//! assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="nest""#);
//!
//! let res = client.get(server.url("/me")).bearer_auth(token.as_str()).send().await.unwrap();
//! assert_eq!(res.text().await.unwrap(), "ada");
//! server.shutdown().await;
//! # });
//! ```

use nest_core::extract::{Dependencies, FromRequest, RequestCtx, State};
use nest_core::HttpException;

use crate::authenticator::Authenticator;
use crate::claims::Claims;

/// The verified claims of the request's token. Needs an [`Authenticator`] registered as app
/// state (`NestApp::state(auth)`); building the app fails otherwise, naming the type.
#[derive(Debug, Clone)]
pub struct Auth(pub Claims);

impl FromRequest for Auth {
    async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
        let State(auth) = State::<Authenticator>::from_request(req).await?;
        match auth.authenticate(req.parts()) {
            Ok(claims) => Ok(Auth(claims)),
            Err(err) => {
                tracing::debug!(reason = %err, "request refused: credentials");
                Err(err.into())
            }
        }
    }

    fn declare(deps: &mut Dependencies) {
        deps.state::<Authenticator>();
    }
}

/// In the app's OpenAPI document, a route that takes [`Auth`] requires a token: a bearer JWT in
/// `Authorization` or (the alternative) the `nest_token` cookie — the default cookie name; an
/// app that renames it describes its own with `Operation::security` — and answers 401 without
/// one. The opt-in query parameter is left out on purpose: it is for `EventSource` pages that
/// cannot do better, not an API to advertise.
impl nest_core::openapi::DescribeInput for Auth {
    fn describe_input(op: nest_core::openapi::Operation) -> nest_core::openapi::Operation {
        use nest_core::openapi::SecurityScheme;
        op.security(
            SecurityScheme::bearer("bearerAuth")
                .bearer_format("JWT")
                .description("A token issued by the app's nest-auth Authenticator"),
        )
        .security(
            SecurityScheme::api_key_cookie("cookieAuth", "nest_token")
                .description("The same token in an HttpOnly cookie (browsers' EventSource)"),
        )
        .extractor_error(
            401,
            "No valid token: missing, expired, badly signed, or for another audience",
        )
    }
}
