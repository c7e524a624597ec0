//! Which revision a request speaks, and the per-request `_meta` of 2026-07-28.

use http::HeaderMap;
use serde_json::{Map, Value};

use crate::RpcError;

/// The stateless revision: no `initialize`, no session; version and capabilities in `_meta`.
pub const STATELESS_VERSION: &str = "2026-07-28";

/// The revisions with `initialize` and `Mcp-Session-Id`, newest first.
pub const SESSION_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// `_meta` key of the protocol version.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key of the client's capabilities.
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key of the client's name and version.
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key of the log level the client wants notifications at (none when absent).
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// `_meta` key of the server's name and version, on results.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key that tags notifications on a `subscriptions/listen` stream.
pub const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// The two ways a client talks to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revision {
    /// 2025-11-25 and earlier: `initialize`, then `Mcp-Session-Id` on every request.
    Session,
    /// 2026-07-28 and later: every request stands alone, with `_meta`.
    Stateless,
}

impl Revision {
    /// The revision of a POSTed `message`: a request that names a session, or an
    /// `initialize` / `MCP-Protocol-Version` of a session revision, is [`Revision::Session`];
    /// one whose header or `_meta` names any other version is [`Revision::Stateless`] (and is
    /// told which versions the server speaks when it names an unknown one). Anything else
    /// (no header, no `_meta`) is a session request, and gets the session revision's 400.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use nest_mcp::Revision;
    /// use serde_json::json;
    /// let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}});
    /// assert_eq!(Revision::detect(&HeaderMap::new(), &init), Revision::Session);
    /// let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
    ///     "io.modelcontextprotocol/protocolVersion": "2026-07-28"}}});
    /// assert_eq!(Revision::detect(&HeaderMap::new(), &call), Revision::Stateless);
    /// ```
    pub fn detect(headers: &HeaderMap, message: &Value) -> Self {
        if headers.contains_key("mcp-session-id") {
            return Self::Session;
        }
        let header = headers
            .get("mcp-protocol-version")
            .map(|v| v.to_str().unwrap_or("?"));
        let meta = message
            .get("params")
            .and_then(|p| p.get("_meta"))
            .and_then(|m| m.get(META_PROTOCOL_VERSION));
        match (header, meta) {
            (Some(v), _) if SESSION_VERSIONS.contains(&v) => Self::Session,
            (Some(_), _) | (None, Some(_)) => Self::Stateless,
            (None, None) => Self::Session,
        }
    }
}

/// The `_meta` every 2026-07-28 request carries.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestMeta {
    version: String,
    capabilities: Map<String, Value>,
    client_info: Option<Value>,
    log_level: Option<String>,
    progress_token: Option<Value>,
}

impl RequestMeta {
    /// Reads and checks `params._meta`, in this order: an `MCP-Protocol-Version` header naming
    /// a version not in `supported` is `-32022` (HTTP 400, with `data.supported` and
    /// `data.requested`); `_meta` must name a protocol version and hold the client's
    /// capabilities (`-32602`, HTTP 400); the header must be present and equal `_meta`'s
    /// version (`-32020`, HTTP 400); that version must be supported (`-32022`).
    pub fn parse(
        headers: &HeaderMap,
        params: &Value,
        supported: &[&str],
    ) -> Result<Self, RpcError> {
        let header = headers.get("mcp-protocol-version").map(|v| v.to_str());
        if let Some(Ok(version)) = header {
            if !supported.contains(&version) {
                return Err(RpcError::unsupported_version(version, supported));
            }
        }
        let bad =
            |why: &str| RpcError::invalid_params(why).with_status(http::StatusCode::BAD_REQUEST);
        let meta = params
            .get("_meta")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("Invalid params: _meta is required"))?;
        let version = meta
            .get(META_PROTOCOL_VERSION)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                bad("Invalid params: _meta must name io.modelcontextprotocol/protocolVersion")
            })?;
        let capabilities = meta
            .get(META_CLIENT_CAPABILITIES)
            .and_then(Value::as_object)
            .ok_or_else(|| {
                bad("Invalid params: _meta must hold io.modelcontextprotocol/clientCapabilities")
            })?;
        match header {
            Some(Ok(header)) if header == version => {}
            Some(_) => {
                return Err(RpcError::header_mismatch(
                    "MCP-Protocol-Version header does not match _meta protocolVersion",
                ))
            }
            None => {
                return Err(RpcError::header_mismatch(
                    "MCP-Protocol-Version header is required",
                ))
            }
        }
        if !supported.contains(&version) {
            return Err(RpcError::unsupported_version(version, supported));
        }
        Ok(Self {
            version: version.to_owned(),
            capabilities: capabilities.clone(),
            client_info: meta.get(META_CLIENT_INFO).cloned(),
            log_level: meta
                .get(META_LOG_LEVEL)
                .and_then(Value::as_str)
                .map(str::to_owned),
            progress_token: meta.get("progressToken").filter(|t| !t.is_null()).cloned(),
        })
    }

    /// The protocol version of the request.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether the client declared capability `name` (`"sampling"`, `"elicitation"`, `"roots"`).
    pub fn supports(&self, name: &str) -> bool {
        self.capabilities.contains_key(name)
    }

    /// `Ok` when the client declared `name`, else the `-32021` error naming it.
    pub fn require(&self, name: &str) -> Result<(), RpcError> {
        if self.supports(name) {
            Ok(())
        } else {
            Err(RpcError::missing_capability(name))
        }
    }

    /// The client's name and version, when sent (a SHOULD, never required).
    pub fn client_info(&self) -> Option<&Value> {
        self.client_info.as_ref()
    }

    /// The level the client wants log notifications at; none are sent when absent.
    pub fn log_level(&self) -> Option<&str> {
        self.log_level.as_deref()
    }

    /// The token progress notifications carry, when the client asked for progress.
    pub fn progress_token(&self) -> Option<&Value> {
        self.progress_token.as_ref()
    }
}
