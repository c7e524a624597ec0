//! Topic selectors: which hub topics a token's claims allow (see [`TopicSelector`]).

use std::fmt;

use crate::error::{Error, Result};

/// A topic selector: which hub topics a token's claims allow, Mercure's selectors made small.
///
/// | selector | matches |
/// |---|---|
/// | `*` | every topic |
/// | `rooms/*` (a `*` last) | every topic that starts with `rooms/` (the rest may hold `/`), and `rooms/` itself |
/// | `rooms/{room}/chat` | `{name}` stands for one segment: one character or more, no `/` |
/// | `rooms/lobby` | that topic only |
///
/// A `*` anywhere but last, a `{` without its `}`, an empty or nested `{…}` make the selector
/// invalid: [`TopicSelector::parse`] is an `Err`, and a token carrying one is refused (401). Mercure
/// uses full URI templates (RFC 6570); nest keeps the two forms topics need, one segment and a
/// prefix, so a selector is matched without allocating.
///
/// # Example
///
/// ```
/// use nest_auth::TopicSelector;
///
/// let room = TopicSelector::parse("rooms/{room}/chat").unwrap();
/// assert!(room.matches("rooms/a/chat"));
/// assert!(!room.matches("rooms/a/b/chat") && !room.matches("rooms//chat"));
///
/// let all_rooms = TopicSelector::parse("rooms/*").unwrap();
/// assert!(all_rooms.matches("rooms/a/chat") && !all_rooms.matches("users/ada"));
///
/// assert!(TopicSelector::parse("*").unwrap().matches("anything"));
/// assert!(TopicSelector::parse("rooms/*/chat").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TopicSelector {
    source: String,
    pieces: Vec<Piece>,
    /// Ends with `*`: anything may follow the pieces.
    prefix: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// `{name}`: one segment.
    Segment,
}

impl TopicSelector {
    /// Parses a selector; an `Err` names what is wrong with it.
    pub fn parse(selector: &str) -> Result<Self> {
        let invalid = |why: &str| Error::config(format!("topic selector `{selector}`: {why}"));
        let (body, prefix) = match selector.strip_suffix('*') {
            Some(body) => (body, true),
            None => (selector, false),
        };
        if body.contains('*') {
            return Err(invalid("`*` may only be last"));
        }
        if selector.is_empty() {
            return Err(invalid("empty"));
        }
        let mut pieces = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    pieces.push(Piece::Literal(rest.to_owned()));
                    rest = "";
                }
                Some(i) if rest.as_bytes()[i] == b'}' => return Err(invalid("`}` without `{`")),
                Some(i) => {
                    if i > 0 {
                        pieces.push(Piece::Literal(rest[..i].to_owned()));
                    }
                    let after = &rest[i + 1..];
                    let end = after.find('}').ok_or_else(|| invalid("`{` without `}`"))?;
                    let name = &after[..end];
                    if name.is_empty() || name.contains(['{', '/']) {
                        return Err(invalid("`{…}` holds a name (no `{`, no `/`)"));
                    }
                    if matches!(pieces.last(), Some(Piece::Segment)) {
                        return Err(invalid("two `{…}` in a row cannot be told apart"));
                    }
                    pieces.push(Piece::Segment);
                    rest = &after[end + 1..];
                }
            }
        }
        Ok(Self {
            source: selector.to_owned(),
            pieces,
            prefix,
        })
    }

    /// The selector as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `topic` is one this selector names.
    pub fn matches(&self, topic: &str) -> bool {
        let mut rest = topic;
        for (i, piece) in self.pieces.iter().enumerate() {
            match piece {
                Piece::Literal(text) => match rest.strip_prefix(text.as_str()) {
                    Some(after) => rest = after,
                    None => return false,
                },
                Piece::Segment => {
                    // A segment runs to the next `/`, or to the next literal when that literal
                    // does not start with one (`{id}.json`).
                    let end = match self.pieces.get(i + 1) {
                        Some(Piece::Literal(next)) if !next.starts_with('/') => {
                            match rest.find(next.as_str()) {
                                Some(at) if !rest[..at].contains('/') => at,
                                _ => return false,
                            }
                        }
                        _ => rest.find('/').unwrap_or(rest.len()),
                    };
                    if end == 0 {
                        return false;
                    }
                    rest = &rest[end..];
                }
            }
        }
        self.prefix || rest.is_empty()
    }
}

impl fmt::Debug for TopicSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TopicSelector").field(&self.source).finish()
    }
}

impl fmt::Display for TopicSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Whether any of `selectors` matches `topic`.
pub(crate) fn any_matches(selectors: &[TopicSelector], topic: &str) -> bool {
    selectors.iter().any(|s| s.matches(topic))
}

#[cfg(test)]
mod tests {
    use super::TopicSelector;

    fn m(selector: &str, topic: &str) -> bool {
        TopicSelector::parse(selector).unwrap().matches(topic)
    }

    #[test]
    fn exact_prefix_segment_and_all() {
        assert!(m("rooms/a", "rooms/a"));
        assert!(!m("rooms/a", "rooms/ab") && !m("rooms/a", "rooms/"));
        assert!(m("rooms/*", "rooms/") && m("rooms/*", "rooms/a/b"));
        assert!(!m("rooms/*", "rooms"));
        assert!(m("*", "") && m("*", "x/y"));
        assert!(m("{user}", "ada") && !m("{user}", "ada/x") && !m("{user}", ""));
        assert!(m("rooms/{r}", "rooms/a") && !m("rooms/{r}", "rooms/a/b"));
        assert!(m("rooms/{r}/*", "rooms/a/b/c") && !m("rooms/{r}/*", "rooms/a"));
        assert!(m("books/{id}.json", "books/7.json"));
        assert!(!m("books/{id}.json", "books/a/7.json") && !m("books/{id}.json", "books/.json"));
        assert!(m("u/{a}/{b}", "u/x/y") && !m("u/{a}/{b}", "u/x"));
    }

    #[test]
    fn invalid_selectors_are_errors_naming_the_selector() {
        for bad in ["", "a*b", "*/x", "a/{", "a/}", "a/{}", "a/{x/y}", "{a}{b}"] {
            let err = TopicSelector::parse(bad).unwrap_err();
            assert!(
                err.is_config() && err.to_string().contains(bad),
                "{bad}: {err}"
            );
        }
    }
}
