//! DNS-rebinding protection: a local server answers only requests whose `Host` and `Origin`
//! name a loopback address.

use http::{HeaderMap, StatusCode, Uri};

use crate::RpcError;

/// Whether `Host` (HTTP/2's `:authority`, which hyper puts in the URI) and `Origin` (when
/// sent) are `localhost`, `127.0.0.1` or `[::1]`, with any port. A page on another site whose
/// DNS name was rebound to 127.0.0.1 sends its own name in both, and is refused with 403.
///
/// ```
/// use http::{HeaderMap, Uri};
/// let mut headers = HeaderMap::new();
/// headers.insert("host", "127.0.0.1:3002".parse().unwrap());
/// assert!(nest_mcp::check_loopback(&Uri::from_static("/mcp"), &headers).is_ok());
/// headers.insert("origin", "http://evil.example.com".parse().unwrap());
/// let refused = nest_mcp::check_loopback(&Uri::from_static("/mcp"), &headers).unwrap_err();
/// assert_eq!(refused.status().as_u16(), 403);
/// ```
pub fn check_loopback(uri: &Uri, headers: &HeaderMap) -> Result<(), RpcError> {
    let host = uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get("host").and_then(|v| v.to_str().ok()));
    let origin_ok = match headers.get("origin") {
        None => true,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .is_some_and(|(_, authority)| is_loopback(authority)),
    };
    if host.is_some_and(is_loopback) && origin_ok {
        Ok(())
    } else {
        Err(
            RpcError::new(-32000, "Host or Origin is not a loopback address")
                .with_status(StatusCode::FORBIDDEN),
        )
    }
}

fn is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}
