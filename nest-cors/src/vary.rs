//! `Vary`: the request headers a CORS answer depends on, joined once when the layer is built
//! and merged into the handler's `Vary`. The behaviour is documented on
//! [`CorsLayer`](crate::CorsLayer#vary).

use http::header::{HeaderMap, HeaderValue, VARY};

/// The `Vary` names one kind of response (actual or preflight) gets, joined once at build time.
#[derive(Debug, Clone)]
pub(crate) struct Vary {
    names: Vec<&'static str>,
    joined: Option<HeaderValue>,
}

impl Vary {
    pub(crate) fn new(names: Vec<&'static str>) -> Self {
        let joined = (!names.is_empty()).then(|| {
            HeaderValue::from_str(&names.join(", ")).expect("static header names are valid")
        });
        Self { names, joined }
    }

    /// Merges the names into `headers`; allocates only when the handler set `Vary` itself.
    pub(crate) fn apply_to(&self, headers: &mut HeaderMap) {
        let Some(joined) = &self.joined else {
            return;
        };
        if !headers.contains_key(VARY) {
            headers.insert(VARY, joined.clone());
            return;
        }

        let mut existing = Vec::new();
        for value in headers.get_all(VARY) {
            match value.to_str() {
                Ok(text) => existing.push(text),
                // A value we cannot read: keep it as is and add our names on a line of their own.
                Err(_) => {
                    let missing = self.missing(&existing);
                    if !missing.is_empty() {
                        let line = HeaderValue::from_str(&missing.join(", "))
                            .expect("static header names are valid");
                        headers.append(VARY, line);
                    }
                    return;
                }
            }
        }
        let listed = || {
            existing
                .iter()
                .flat_map(|line| line.split(','))
                .map(str::trim)
        };
        if listed().any(|name| name == "*") {
            return;
        }
        let missing = self.missing(&existing);
        if missing.is_empty() {
            return;
        }
        let merged = listed()
            .filter(|name| !name.is_empty())
            .chain(missing)
            .collect::<Vec<_>>()
            .join(", ");
        // The names came from valid header values plus static names, so this cannot fail;
        // should it ever, keep the handler's header untouched.
        if let Ok(merged) = HeaderValue::from_str(&merged) {
            headers.insert(VARY, merged);
        }
    }

    /// Our names that none of the handler's `Vary` lines list (compared case-insensitively).
    fn missing(&self, existing: &[&str]) -> Vec<&'static str> {
        self.names
            .iter()
            .copied()
            .filter(|ours| {
                !existing
                    .iter()
                    .flat_map(|line| line.split(','))
                    .any(|theirs| theirs.trim().eq_ignore_ascii_case(ours))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(existing: &[&'static str], ours: Vec<&'static str>) -> Vec<String> {
        let mut headers = HeaderMap::new();
        for value in existing {
            headers.append(VARY, HeaderValue::from_static(value));
        }
        Vary::new(ours).apply_to(&mut headers);
        headers
            .get_all(VARY)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn inserts_when_absent() {
        assert_eq!(merged(&[], vec!["Origin"]), ["Origin"]);
        assert_eq!(
            merged(&[], vec!["Origin", "Access-Control-Request-Headers"]),
            ["Origin, Access-Control-Request-Headers"]
        );
    }

    #[test]
    fn nothing_to_add_leaves_headers_alone() {
        assert!(merged(&[], vec![]).is_empty());
        assert_eq!(merged(&["accept"], vec![]), ["accept"]);
    }

    #[test]
    fn appends_to_the_handlers_vary_without_duplicates() {
        assert_eq!(
            merged(&["Accept-Encoding"], vec!["Origin"]),
            ["Accept-Encoding, Origin"]
        );
        assert_eq!(
            merged(&["accept-encoding", "origin"], vec!["Origin"]),
            ["accept-encoding", "origin"]
        );
        assert_eq!(
            merged(
                &["Accept, origin"],
                vec!["Origin", "Access-Control-Request-Headers"]
            ),
            ["Accept, origin, Access-Control-Request-Headers"]
        );
    }

    #[test]
    fn vary_star_already_covers_everything() {
        assert_eq!(merged(&["*"], vec!["Origin"]), ["*"]);
    }

    #[test]
    fn unreadable_value_is_kept_and_names_added_on_their_own_line() {
        let mut headers = HeaderMap::new();
        headers.append(VARY, HeaderValue::from_bytes(b"caf\xe9").unwrap());
        Vary::new(vec!["Origin"]).apply_to(&mut headers);
        let lines: Vec<_> = headers.get_all(VARY).iter().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].as_bytes(), b"caf\xe9");
        assert_eq!(lines[1], "Origin");
    }
}
