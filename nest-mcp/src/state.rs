//! `requestState`: what a server hands a client with an `InputRequiredResult` and gets back
//! on the retry. The client holds it, so it is sealed: HMAC-SHA256 under a key drawn at
//! random when the endpoint is built, bound to the method and the tool, prompt or resource
//! it was issued for, and valid for a limited time.
//!
//! Sealed is not encrypted (the client can read the state: keep secrets out of it) and not
//! single-use (a client may send the same retry twice within the lifetime: make the step it
//! resumes idempotent, or keep a server-side record keyed by something inside the state).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::RpcError;

type HmacSha256 = Hmac<Sha256>;

/// Seals and opens `requestState` values.
///
/// ```
/// use std::time::Duration;
/// use serde_json::json;
/// let sealer = nest_mcp::Sealer::random(Duration::from_secs(600)).unwrap();
/// let token = sealer.seal("tools/call", "greet", &json!({"round": 2}));
/// assert_eq!(sealer.open("tools/call", "greet", &token).unwrap(), json!({"round": 2}));
/// // Another tool, or a changed token, is refused with -32602.
/// assert_eq!(sealer.open("tools/call", "other", &token).unwrap_err().code(), -32602);
/// assert!(sealer.open("tools/call", "greet", &format!("{token}x")).is_err());
/// ```
pub struct Sealer {
    key: [u8; 32],
    ttl: Duration,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer with a fresh random key (from the operating system); states expire after
    /// `ttl`. An error when the system has no randomness to give.
    pub fn random(ttl: Duration) -> Result<Self, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(Self { key, ttl })
    }

    /// A sealer with a given key (servers behind a load balancer share one).
    pub fn with_key(key: [u8; 32], ttl: Duration) -> Self {
        Self { key, ttl }
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload);
        mac
    }

    /// `state`, sealed for `method` on `name` (a tool or prompt name, a resource URI).
    pub fn seal(&self, method: &str, name: &str, state: &Value) -> String {
        let payload = json!({"m": method, "n": name, "t": now_secs(), "s": state}).to_string();
        let tag = self.mac(payload.as_bytes()).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The state sealed in `token`, when it was sealed here for `method` on `name` and has
    /// not expired; else `-32602`.
    pub fn open(&self, method: &str, name: &str, token: &str) -> Result<Value, RpcError> {
        let invalid = || RpcError::invalid_params("Invalid requestState: integrity check failed");
        let (payload, tag) = token.split_once('.').ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        self.mac(&payload)
            .verify_slice(&tag)
            .map_err(|_| invalid())?;
        let mut sealed: Value = serde_json::from_slice(&payload).map_err(|_| invalid())?;
        if sealed["m"] != method || sealed["n"] != name {
            return Err(invalid());
        }
        let age = now_secs().saturating_sub(sealed["t"].as_u64().unwrap_or(0));
        if age > self.ttl.as_secs() {
            return Err(RpcError::invalid_params("Invalid requestState: expired"));
        }
        Ok(sealed["s"].take())
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
