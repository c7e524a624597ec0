//! Cache hints (`ttlMs`, `cacheScope`) on results a client may keep (2026-07-28).

use std::time::Duration;

use serde_json::{json, Value};

/// The methods whose results carry cache hints.
pub const CACHEABLE: [&str; 6] = [
    "server/discover",
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
];

/// Who may reuse a cached result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheScope {
    /// Any client of this server may reuse it.
    Public,
    /// Only the client (user) that asked may reuse it.
    Private,
}

/// How long, and for whom, a result stays fresh.
///
/// ```
/// use std::time::Duration;
/// use nest_mcp::{CacheHint, CacheScope};
/// let mut result = serde_json::json!({"tools": []});
/// CacheHint::new(Duration::from_secs(60), CacheScope::Public).apply(&mut result);
/// assert_eq!(result["ttlMs"], 60_000);
/// assert_eq!(result["cacheScope"], "public");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheHint {
    ttl: Duration,
    scope: CacheScope,
}

impl Default for CacheHint {
    /// Not to be reused: `ttlMs: 0`, `cacheScope: "private"`.
    fn default() -> Self {
        Self::new(Duration::ZERO, CacheScope::Private)
    }
}

impl CacheHint {
    /// Fresh for `ttl` (whole milliseconds) within `scope`.
    pub fn new(ttl: Duration, scope: CacheScope) -> Self {
        Self { ttl, scope }
    }

    /// Sets `ttlMs` and `cacheScope` on `result` where the handler did not set them.
    pub fn apply(&self, result: &mut Value) {
        if let Some(object) = result.as_object_mut() {
            let ttl = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
            object.entry("ttlMs").or_insert(json!(ttl));
            let scope = match self.scope {
                CacheScope::Public => "public",
                CacheScope::Private => "private",
            };
            object.entry("cacheScope").or_insert(json!(scope));
        }
    }
}
