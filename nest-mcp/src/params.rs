//! SEP-2243's custom headers: a tool argument whose schema has `"x-mcp-header": "Region"` also
//! travels as `Mcp-Param-Region`, so that proxies can route on it without reading the body. The
//! server checks that the two agree.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::HeaderMap;
use serde_json::Value;

use crate::RpcError;

/// The `(argument, header suffix)` pairs a tool's `inputSchema` declares with `x-mcp-header`.
///
/// ```
/// use serde_json::json;
/// let schema = json!({"type": "object", "properties": {
///     "region": {"type": "string", "x-mcp-header": "Region"}, "query": {"type": "string"}}});
/// assert_eq!(nest_mcp::header_params(&schema), [("region".to_owned(), "Region".to_owned())]);
/// ```
pub fn header_params(input_schema: &Value) -> Vec<(String, String)> {
    input_schema["properties"]
        .as_object()
        .map(|properties| {
            properties
                .iter()
                .filter_map(|(name, def)| {
                    let suffix = def.get("x-mcp-header")?.as_str()?;
                    Some((name.clone(), suffix.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Checks each `(argument, suffix)` of `params`: when the arguments carry a value, header
/// `Mcp-Param-<suffix>` must be present and equal it, either literally or as
/// `=?base64?<standard, padded Base64 of UTF-8>?=`. Anything else is `-32020`, HTTP 400.
pub(crate) fn check(
    headers: &HeaderMap,
    arguments: &Value,
    params: &[(String, String)],
) -> Result<(), RpcError> {
    for (name, suffix) in params {
        let expected = match arguments.get(name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        let header = format!("mcp-param-{}", suffix.to_ascii_lowercase());
        let mismatch = |why: &str| RpcError::header_mismatch(format!("Mcp-Param-{suffix}: {why}"));
        let sent = headers
            .get(header.as_str())
            .ok_or_else(|| mismatch("required, the argument is in the body"))?
            .to_str()
            .map_err(|_| mismatch("not visible ASCII"))?;
        let value = match sent
            .strip_prefix("=?base64?")
            .and_then(|rest| rest.strip_suffix("?="))
        {
            Some(encoded) => STANDARD
                .decode(encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| mismatch("invalid Base64"))?,
            None => sent.to_owned(),
        };
        if value != expected {
            return Err(mismatch("does not match the argument"));
        }
    }
    Ok(())
}
