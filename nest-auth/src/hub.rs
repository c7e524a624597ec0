//! Per-topic authorization on the hub: [`AuthorizedHub`] checks the token's claims on every
//! subscribe (a resume with `Last-Event-ID` is a subscribe, so it is checked too) and every
//! publish, and ends each stream when its token expires. It sits above the backend, on the
//! `Hub` API, so it works on the in-process and the Redis backends alike.
//!
//! # Example
//!
//! ```
//! use nest_auth::{AuthorizedHub, Authenticator, Grant, Key};
//! use nest_hub::Hub;
//! use nest_core::sse::LastEventId;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let auth = Authenticator::builder().key(Key::hmac("k1", &[7; 32]).unwrap()).audience("rooms").build().unwrap();
//! let hub = AuthorizedHub::new(Hub::new(), auth.clone());
//! let token = auth.issue(&Grant::new("ada").subscribe(["rooms/a"]).publish(["rooms/a"])).unwrap();
//! let ada = auth.verify(token.as_str()).unwrap();
//!
//! assert!(hub.publish(&ada, "rooms/a", "hello").await.is_ok());
//! assert!(hub.publish(&ada, "rooms/b", "hello").await.unwrap_err().is_forbidden());
//! let res = hub.subscribe(&ada, "rooms/a", &LastEventId(None)).await.unwrap();
//! assert_eq!(res.headers()["content-type"], "text/event-stream");
//! let err = hub.subscribe(&ada, "rooms/b", &LastEventId(Some("1-1".into()))).await.unwrap_err();
//! assert_eq!(err.status(), 403);
//! # });
//! ```

use std::time::Duration;

use nest_core::sse::SseEvent;
use nest_core::{IntoResponse, Response};
use nest_hub::{Hub, SubscribeOptions};
use tokio::time::Instant;

use crate::authenticator::Authenticator;
use crate::claims::{Claims, MAX_LIFETIME};
use crate::error::{Error, Result};
use crate::stream::expiring;

/// A [`Hub`] that asks the token first. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuthorizedHub {
    hub: Hub,
    auth: Authenticator,
}

impl AuthorizedHub {
    /// Wraps `hub`; `auth` gives the grace and the `reauth` retry of streams.
    pub fn new(hub: Hub, auth: Authenticator) -> Self {
        Self { hub, auth }
    }

    /// The hub underneath, for what needs no authorization (stats, server-side publishes).
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Publishes `event` to `topic` when the claims allow publishing there (403 otherwise);
    /// returns the id the hub gave it.
    pub async fn publish(
        &self,
        claims: &Claims,
        topic: &str,
        event: impl Into<SseEvent>,
    ) -> Result<String> {
        if !claims.can_publish(topic) {
            return Err(refused(claims, "publish to", topic));
        }
        Ok(self.hub.publish(topic, event).await?)
    }

    /// A stream of `topic` when the claims allow subscribing to it (403 otherwise, before any
    /// byte of a stream); `how` as for [`Hub::subscribe`]: a `&LastEventId` (resume after it),
    /// or [`SubscribeOptions`] (a first visit's history, a lag policy, stream options). The
    /// stream ends at the token's `exp` plus the grace with the `reauth` event (its lifetime
    /// replaces one set in `how`). Return the response from a GET route.
    pub async fn subscribe(
        &self,
        claims: &Claims,
        topic: &str,
        how: impl Into<SubscribeOptions>,
    ) -> Result<Response> {
        if !claims.can_subscribe(topic) {
            return Err(refused(claims, "subscribe to", topic));
        }
        let lifetime = (claims.expires_in() + self.auth.grace()).min(MAX_LIFETIME);
        // The outer deadline is taken first, so the stream's own lifetime (started inside
        // `subscribe`) never ends it before the `reauth` event is out.
        let deadline = Instant::now() + lifetime;
        let how = how
            .into()
            .map_stream(|options| options.max_lifetime(lifetime, Duration::ZERO));
        let body = self.hub.subscribe(topic, how).await?;
        Ok(expiring(
            body.into_response(),
            deadline,
            self.auth.reauth_retry(),
        ))
    }
}

fn refused(claims: &Claims, action: &str, topic: &str) -> Error {
    tracing::debug!(
        subject = claims.subject(),
        topic,
        action,
        "refused: not in the token's topics"
    );
    Error::forbidden(format!("the token does not allow to {action} this topic"))
}
