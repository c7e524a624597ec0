//! Compile-time checks of route paths: the rules of nest-core's router (`routing::to_matchit`),
//! plus the empty path (the seed's `@Controller('')`).

/// Checks `path` as the router will when the app is built; the error says what is wrong.
pub(crate) fn validate(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Ok(());
    }
    if !path.starts_with('/') {
        return Err(format!("path `{path}` must start with `/` (or be empty)"));
    }
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        if segment.contains(['{', '}']) {
            return Err(format!(
                "path `{path}`: braces are not allowed; use `:name` for parameters"
            ));
        }
        if let Some(name) = segment.strip_prefix(':') {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("path `{path}`: invalid parameter name `:{name}`"));
            }
        } else if segment.starts_with('*') {
            // The last non-empty segment: a trailing slash is trimmed when paths are joined.
            let rest_empty = segments[i + 1..].iter().all(|s| s.is_empty());
            if !rest_empty {
                return Err(format!(
                    "path `{path}`: a wildcard must be the last segment"
                ));
            }
        } else if segment.contains([':', '*']) {
            return Err(format!("path `{path}`: `:` and `*` must start a segment"));
        }
    }
    Ok(())
}

/// The key two routes of one controller collide on: no trailing slash, parameter names erased
/// (`/users/:id/` and `/users/:name` are the same route to the router).
pub(crate) fn normalize(path: &str) -> String {
    path.trim_end_matches('/')
        .split('/')
        .map(|segment| {
            if segment.starts_with(':') {
                ":"
            } else if segment.starts_with('*') {
                "*"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::{normalize, validate};

    #[test]
    fn accepts_router_paths() {
        for ok in [
            "",
            "/",
            "/sse",
            "/users/:id",
            "/files/*rest",
            "/files/*",
            "/a/:b_1/c/",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_what_the_router_rejects() {
        for bad in [
            "sse",
            "/users/{id}",
            "/users/:",
            "/u/:a-b",
            "/*rest/x",
            "/a:b",
            "/a*",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn normalizes_for_duplicates() {
        assert_eq!(normalize("/users/:id/"), normalize("/users/:name"));
        assert_eq!(normalize(""), normalize("/"));
        assert_ne!(normalize("/a"), normalize("/b"));
    }
}
