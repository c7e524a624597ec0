//! The Model Context Protocol over Streamable HTTP, on nest.
//!
//! One `/mcp` endpoint serves clients of two revisions side by side, chosen per request by
//! [`Revision::detect`]:
//!
//! - **2025-11-25** (and earlier): `initialize`, then `Mcp-Session-Id` on every request, a GET
//!   stream, server-to-client requests. The app keeps its sessions (see `examples/mcp.rs`).
//! - **2026-07-28**: every request stands alone, with its protocol version and the client's
//!   capabilities in `_meta`. [`Stateless`] does all of the transport: it checks `_meta` and
//!   the `MCP-Protocol-Version` / `Mcp-Method` / `Mcp-Name` headers and the `Mcp-Param-*`
//!   headers of [`Handler::header_params`] (`-32602`, `-32020`, `-32022`, HTTP 400), answers `server/discover` and `subscriptions/listen` (an event stream
//!   that is acknowledged first and then carries the [`Change`]s the client's filter asks
//!   for), refuses removed and unknown methods with 404 and `-32601`, opens the sealed
//!   `requestState` of a retry (a tampered one is `-32602`), adds `resultType`, the server's
//!   identity and [`CacheHint`]s to results, and answers with JSON, or with an event stream
//!   when the [`Handler`] sends progress or log notifications before its result.
//!
//! [`check_loopback`] (Host/Origin against DNS rebinding) serves both.
//!
//! # Example
//!
//! ```
//! use http::HeaderMap;
//! use http_body_util::BodyExt;
//! use nest_mcp::{Handler, InputRequired, McpRequest, Reply, RpcError, Stateless};
//! use serde_json::{json, Value};
//!
//! struct Greeter;
//!
//! impl Handler for Greeter {
//!     fn capabilities(&self) -> Value {
//!         json!({"tools": {}})
//!     }
//!     async fn call(&self, request: McpRequest, _reply: Reply) -> Result<Value, RpcError> {
//!         match (request.method(), request.name()) {
//!             ("tools/list", _) => Ok(json!({"tools": [{"name": "greet",
//!                 "inputSchema": {"type": "object"}}]})),
//!             ("tools/call", "greet") => match request.input_response("who") {
//!                 // Round 2: the client answered the elicitation.
//!                 Some(answer) => Ok(json!({"content": [{"type": "text",
//!                     "text": format!("Hello, {}!", answer["content"]["name"])}]})),
//!                 // Round 1: ask who to greet.
//!                 None => Ok(request.input_required(
//!                     InputRequired::new().elicit("who", "Your name?", json!({"type": "object"})),
//!                     Some(json!({"round": 1})),
//!                 )),
//!             },
//!             ("tools/call", other) => Err(RpcError::invalid_params(format!("Unknown tool: {other}"))),
//!             (method, _) => Err(RpcError::method_not_found(method)),
//!         }
//!     }
//! }
//!
//! # async fn json_of(response: nest_core::Response) -> Value {
//! #     serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap()
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mcp = Stateless::builder(Greeter).server_info("greeter", "1.0.0").build()?;
//! let mut headers = HeaderMap::new();
//! headers.insert("mcp-protocol-version", "2026-07-28".parse()?);
//! headers.insert("mcp-method", "tools/call".parse()?); // SEP-2243's standard headers
//! headers.insert("mcp-name", "greet".parse()?);
//! let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
//!                   "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}});
//! let call = |params: Value| json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params});
//!
//! let response = mcp.serve(&headers, call(json!({"name": "greet", "_meta": meta}))).await;
//! let body = json_of(response).await;
//! assert_eq!(body["result"]["resultType"], "input_required");
//! let state = body["result"]["requestState"].as_str().unwrap().to_owned();
//!
//! // The retry carries the answer and the sealed state; a changed state is refused.
//! let answer = json!({"who": {"action": "accept", "content": {"name": "Ada"}}});
//! let tampered = call(json!({"name": "greet", "_meta": meta, "inputResponses": answer,
//!                            "requestState": format!("{state}x")}));
//! let response = mcp.serve(&headers, tampered).await;
//! let body = json_of(response).await;
//! assert_eq!(body["error"]["code"], -32602);
//!
//! let retry = call(json!({"name": "greet", "_meta": meta, "inputResponses": answer,
//!                         "requestState": state}));
//! let response = mcp.serve(&headers, retry).await;
//! let body = json_of(response).await;
//! assert_eq!(body["result"]["content"][0]["text"], "Hello, \"Ada\"!");
//! assert_eq!(body["result"]["resultType"], "complete");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod cache;
mod endpoint;
mod error;
mod origin;
mod params;
mod reply;
mod request;
mod revision;
mod state;
mod subscriptions;

pub use cache::{CacheHint, CacheScope, CACHEABLE};
pub use endpoint::{ConfigError, Handler, Stateless, StatelessBuilder, REMOVED_METHODS};
pub use error::*;
pub use origin::check_loopback;
pub use params::header_params;
pub use reply::Reply;
pub use request::{InputRequired, McpRequest};
pub use revision::{
    RequestMeta, Revision, META_CLIENT_CAPABILITIES, META_CLIENT_INFO, META_LOG_LEVEL,
    META_PROTOCOL_VERSION, META_SERVER_INFO, META_SUBSCRIPTION_ID, SESSION_VERSIONS,
    STATELESS_VERSION,
};
pub use state::Sealer;
pub use subscriptions::{Change, Changes};
