//! One 2026-07-28 request as a handler sees it, and the `InputRequiredResult` it may answer.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::{RequestMeta, Sealer};

/// A request the [`Handler`](crate::Handler) answers: method, params, `_meta`, and, on a
/// retry after an [`InputRequired`] result, the client's `inputResponses` and the state the
/// server sealed (already verified).
#[derive(Debug)]
pub struct McpRequest {
    pub(crate) method: String,
    pub(crate) params: Value,
    pub(crate) meta: RequestMeta,
    pub(crate) state: Option<Value>,
    pub(crate) sealer: Arc<Sealer>,
}

impl McpRequest {
    /// The JSON-RPC method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The params (`_meta` included).
    pub fn params(&self) -> &Value {
        &self.params
    }

    /// `params.name` (tools and prompts) or `params.uri` (resources): what `Mcp-Name` names.
    pub fn name(&self) -> &str {
        name_of(&self.method, &self.params)
    }

    /// `params.arguments` (`null` when absent).
    pub fn arguments(&self) -> &Value {
        &self.params["arguments"]
    }

    /// The request's `_meta`: version, client capabilities, log level, progress token.
    pub fn meta(&self) -> &RequestMeta {
        &self.meta
    }

    /// The client's answer to input request `key`, on a retry.
    pub fn input_response(&self, key: &str) -> Option<&Value> {
        self.params
            .get("inputResponses")
            .and_then(|r| r.get(key))
            .filter(|v| v.is_object())
    }

    /// The state the server sealed into the previous round's `requestState`, verified
    /// (a tampered, foreign or expired one never reaches the handler).
    pub fn state(&self) -> Option<&Value> {
        self.state.as_ref()
    }

    /// The `InputRequiredResult` that asks the client for `input` and carries `state` (sealed
    /// for this method and name) to the retry.
    pub fn input_required(&self, input: InputRequired, state: Option<Value>) -> Value {
        let mut result = json!({"resultType": "input_required", "inputRequests": input.requests});
        if let Some(state) = state {
            result["requestState"] = json!(self.sealer.seal(&self.method, self.name(), &state));
        }
        result
    }
}

/// `params.name` or `params.uri`, by method: the value `Mcp-Name` must carry.
pub(crate) fn name_of<'a>(method: &str, params: &'a Value) -> &'a str {
    let key = match method {
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => "uri",
        _ => "name",
    };
    params.get(key).and_then(Value::as_str).unwrap_or("")
}

/// What a server needs from the client before it can answer: requests by key, which the
/// client answers in `inputResponses` when it sends the request again.
///
/// ```
/// use nest_mcp::InputRequired;
/// use serde_json::json;
/// let input = InputRequired::new()
///     .elicit("user_name", "What is your name?", json!({"type": "object",
///         "properties": {"name": {"type": "string"}}, "required": ["name"]}))
///     .roots("client_roots");
/// assert_eq!(input.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputRequired {
    requests: Map<String, Value>,
}

impl InputRequired {
    /// No requests yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the client to run `method` with `params` and answer under `key`.
    #[must_use]
    pub fn request(mut self, key: impl Into<String>, method: &str, params: Value) -> Self {
        self.requests
            .insert(key.into(), json!({"method": method, "params": params}));
        self
    }

    /// An `elicitation/create` request: ask the user `message`, answers shaped by `schema`.
    #[must_use]
    pub fn elicit(self, key: impl Into<String>, message: &str, schema: Value) -> Self {
        self.request(
            key,
            "elicitation/create",
            json!({"message": message, "requestedSchema": schema}),
        )
    }

    /// A `sampling/createMessage` request: one user message, at most `max_tokens`.
    #[must_use]
    pub fn sample(self, key: impl Into<String>, prompt: &str, max_tokens: u32) -> Self {
        self.request(
            key,
            "sampling/createMessage",
            json!({"messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                   "maxTokens": max_tokens}),
        )
    }

    /// A `roots/list` request.
    #[must_use]
    pub fn roots(self, key: impl Into<String>) -> Self {
        self.request(key, "roots/list", json!({}))
    }

    /// How many requests.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}
