//! # nest-path
//!
//! The route path grammar of nest, in one place: NestJS-style paths (`/users/:id`,
//! `/files/*path`, a bare `*`) are parsed and checked here, and rendered in the syntax of the
//! [matchit](https://docs.rs/matchit) router (`/users/{id}`). nest-core's router and the
//! compile-time checks of nest-macros both call [`parse`], so a path the macros accept is a path
//! the router accepts, with the same error message when it is not.
//!
//! # Example
//!
//! ```
//! let path = nest_path::parse("/users/:id/files/*rest").unwrap();
//! assert_eq!(path.to_matchit(), "/users/{id}/files/{*rest}");
//! assert_eq!(path.params().collect::<Vec<_>>(), ["id", "rest"]);
//!
//! let err = nest_path::parse("/users/{id}").unwrap_err();
//! assert_eq!(err.to_string(), "path `/users/{id}`: braces are not allowed; use `:name` for parameters");
//! ```
//!
//! # The grammar
//!
//! A path is a list of segments separated by `/`. Slashes at either end do not count, so `""`,
//! `"/"` and `"//"` are all the root, and `users/:id`, `/users/:id` and `/users/:id/` are one
//! path: the rule nest uses when it joins a controller's prefix to a route's path, and NestJS's
//! (`@Get(':id')`). Each segment is one of:
//!
//! | segment | matches | example |
//! |---|---|---|
//! | text | itself | `users` |
//! | `:name` | one segment, captured as `name` | `:id` |
//! | `*name` | the rest of the path (one segment or more), captured as `name` | `*path` |
//! | `*` | the same, captured as [`WILDCARD`] (`"wildcard"`) | `*` |
//!
//! and:
//!
//! - a name has letters, digits and `_` (ASCII), and a path names each parameter once;
//! - a wildcard is the last segment;
//! - `:` and `*` only start a segment (`a:b` is an error, not text), braces are not allowed
//!   (they are matchit's syntax, not NestJS's), and no segment is empty (`/a//b`).

use std::error::Error;
use std::fmt;

/// The name a bare `*` is captured as.
pub const WILDCARD: &str = "wildcard";

/// Parses and checks a route path; see the [crate docs](crate) for the grammar.
///
/// # Errors
///
/// A [`PathError`] naming the path and the first thing wrong with it.
///
/// # Example
///
/// ```
/// use nest_path::{parse, Segment};
///
/// let path = parse("files/*").unwrap();
/// assert_eq!(path.segments(), [Segment::Static("files"), Segment::Wildcard(None)]);
/// assert_eq!(path.to_string(), "/files/*");
/// assert!(parse("/files/*/more").is_err());
/// ```
pub fn parse(path: &str) -> Result<RoutePath<'_>, PathError> {
    let error = |kind| PathError {
        path: path.to_owned(),
        kind,
    };
    let trimmed = path.trim_matches('/');
    let mut segments = Vec::new();
    if trimmed.is_empty() {
        return Ok(RoutePath { segments });
    }
    for text in trimmed.split('/') {
        if matches!(segments.last(), Some(Segment::Wildcard(_))) {
            return Err(error(ErrorKind::WildcardNotLast));
        }
        let segment = parse_segment(text).map_err(error)?;
        if let Some(name) = segment.param() {
            if segments
                .iter()
                .any(|s: &Segment<'_>| s.param() == Some(name))
            {
                return Err(error(ErrorKind::DuplicateParam(name.to_owned())));
            }
        }
        segments.push(segment);
    }
    Ok(RoutePath { segments })
}

fn parse_segment(text: &str) -> Result<Segment<'_>, ErrorKind> {
    if text.is_empty() {
        return Err(ErrorKind::EmptySegment);
    }
    if text.contains(['{', '}']) {
        return Err(ErrorKind::Braces);
    }
    if let Some(name) = text.strip_prefix(':') {
        return if is_name(name) {
            Ok(Segment::Param(name))
        } else {
            Err(ErrorKind::InvalidName(text.to_owned()))
        };
    }
    if let Some(name) = text.strip_prefix('*') {
        return match name {
            "" => Ok(Segment::Wildcard(None)),
            name if is_name(name) => Ok(Segment::Wildcard(Some(name))),
            _ => Err(ErrorKind::InvalidName(text.to_owned())),
        };
    }
    if text.contains([':', '*']) {
        return Err(ErrorKind::MisplacedSigil);
    }
    Ok(Segment::Static(text))
}

fn is_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

// ===== impl RoutePath =====

/// A checked route path: its segments, borrowed from the text it was parsed from.
///
/// Its `Display` is the canonical NestJS form: one leading slash, none at the end (`/` for the
/// root).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutePath<'a> {
    segments: Vec<Segment<'a>>,
}

impl<'a> RoutePath<'a> {
    /// The segments, in order; empty for the root.
    pub fn segments(&self) -> &[Segment<'a>] {
        &self.segments
    }

    /// The names the parameters and the wildcard are captured as, in order.
    pub fn params(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.segments.iter().filter_map(Segment::param)
    }

    /// Whether the path ends in a wildcard (then nothing can be appended to it).
    pub fn has_wildcard(&self) -> bool {
        matches!(self.segments.last(), Some(Segment::Wildcard(_)))
    }

    /// The path in matchit's syntax: `/users/{id}/files/{*rest}`, `/{*wildcard}` for `/*`.
    pub fn to_matchit(&self) -> String {
        self.render(|out, segment| match segment {
            Segment::Static(text) => out.push_str(text),
            Segment::Param(name) => {
                out.push('{');
                out.push_str(name);
                out.push('}');
            }
            Segment::Wildcard(name) => {
                out.push_str("{*");
                out.push_str(name.unwrap_or(WILDCARD));
                out.push('}');
            }
        })
    }

    /// The path with its parameter names left out (`/users/:` for `/users/:id`): two paths of the
    /// same shape match the same requests, so two routes with the same method and shape conflict.
    pub fn shape(&self) -> String {
        self.render(|out, segment| match segment {
            Segment::Static(text) => out.push_str(text),
            Segment::Param(_) => out.push(':'),
            Segment::Wildcard(_) => out.push('*'),
        })
    }

    fn render(&self, mut segment: impl FnMut(&mut String, &Segment<'a>)) -> String {
        if self.segments.is_empty() {
            return "/".to_owned();
        }
        let mut out = String::new();
        for s in &self.segments {
            out.push('/');
            segment(&mut out, s);
        }
        out
    }
}

impl fmt::Display for RoutePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(|out, segment| match segment {
            Segment::Static(text) => out.push_str(text),
            Segment::Param(name) => {
                out.push(':');
                out.push_str(name);
            }
            Segment::Wildcard(name) => {
                out.push('*');
                out.push_str(name.unwrap_or(""));
            }
        }))
    }
}

// ===== impl Segment =====

/// One segment of a [`RoutePath`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Segment<'a> {
    /// Text that matches itself: `users`.
    Static(&'a str),
    /// `:name`: one segment of the request path, captured as `name`.
    Param(&'a str),
    /// `*name`, or a bare `*` (`None`): the rest of the request path.
    Wildcard(Option<&'a str>),
}

impl<'a> Segment<'a> {
    /// The name the segment is captured as: a parameter's, a wildcard's ([`WILDCARD`] for a bare
    /// `*`), or `None` for text.
    pub fn param(&self) -> Option<&'a str> {
        match *self {
            Segment::Static(_) => None,
            Segment::Param(name) => Some(name),
            Segment::Wildcard(name) => Some(name.unwrap_or(WILDCARD)),
        }
    }
}

// ===== impl PathError =====

/// Why a path is not a route path; its `Display` names the path and says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    path: String,
    kind: ErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ErrorKind {
    EmptySegment,
    Braces,
    InvalidName(String),
    MisplacedSigil,
    WildcardNotLast,
    DuplicateParam(String),
}

impl PathError {
    /// The path as it was given to [`parse`].
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "path `{}`: ", self.path)?;
        match &self.kind {
            ErrorKind::EmptySegment => f.write_str("empty segment (`//`)"),
            ErrorKind::Braces => f.write_str("braces are not allowed; use `:name` for parameters"),
            ErrorKind::InvalidName(segment) => write!(
                f,
                "invalid parameter name `{segment}` (a name has letters, digits and `_`)"
            ),
            ErrorKind::MisplacedSigil => f.write_str("`:` and `*` must start a segment"),
            ErrorKind::WildcardNotLast => f.write_str("a wildcard must be the last segment"),
            ErrorKind::DuplicateParam(name) => write!(f, "parameter `{name}` appears twice"),
        }
    }
}

impl Error for PathError {}

#[cfg(test)]
mod tests {
    use super::{parse, Segment, WILDCARD};

    fn matchit(path: &str) -> String {
        parse(path).unwrap().to_matchit()
    }

    #[test]
    fn renders_matchit_syntax() {
        assert_eq!(matchit("/users/:id"), "/users/{id}");
        assert_eq!(matchit("/files/*path"), "/files/{*path}");
        assert_eq!(matchit("/*"), "/{*wildcard}");
        assert_eq!(matchit("/a/:b_1/c/"), "/a/{b_1}/c");
        assert_eq!(matchit("/sse"), "/sse");
    }

    #[test]
    fn the_empty_path_is_the_root() {
        // The seed's `@Controller('')`, and `#[get]` without a path: the controller's prefix.
        for root in ["", "/", "//"] {
            let path = parse(root).unwrap();
            assert!(path.segments().is_empty(), "{root:?}");
            assert_eq!(path.to_matchit(), "/");
            assert_eq!(path.to_string(), "/");
        }
    }

    #[test]
    fn end_slashes_do_not_count() {
        // nest joins a prefix and a path with their end slashes trimmed, NestJS alike: a trailing
        // slash after a wildcard is the same trailing slash as after any other segment.
        assert_eq!(parse("/*x/").unwrap(), parse("/*x").unwrap());
        assert_eq!(parse("/*/").unwrap(), parse("*").unwrap());
        assert_eq!(parse("users/:id").unwrap(), parse("/users/:id/").unwrap());
        assert_eq!(matchit("/*x/"), "/{*x}");
    }

    #[test]
    fn rejects_what_matchit_or_nestjs_would_misread() {
        for (bad, message) in [
            ("/a/*/b", "a wildcard must be the last segment"),
            ("/*rest/x", "a wildcard must be the last segment"),
            ("/a/:", "invalid parameter name `:`"),
            ("/u/:a-b", "invalid parameter name `:a-b`"),
            ("/f/*a.b", "invalid parameter name `*a.b`"),
            ("/a/{x}", "braces are not allowed"),
            ("/a/b}", "braces are not allowed"),
            ("/a/b:c", "`:` and `*` must start a segment"),
            ("/a*", "`:` and `*` must start a segment"),
            ("/a//b", "empty segment"),
            ("/:id/x/:id", "parameter `id` appears twice"),
            ("/:wildcard/*", "parameter `wildcard` appears twice"),
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.path(), bad);
            let text = err.to_string();
            assert!(text.starts_with(&format!("path `{bad}`: ")), "{text}");
            assert!(text.contains(message), "{bad}: {text}");
        }
    }

    #[test]
    fn lists_params_in_order() {
        let path = parse("/:a/x/:b/*").unwrap();
        assert_eq!(path.params().collect::<Vec<_>>(), ["a", "b", WILDCARD]);
        assert!(path.has_wildcard());
        assert!(!parse("/:a").unwrap().has_wildcard());
        assert_eq!(
            path.segments(),
            [
                Segment::Param("a"),
                Segment::Static("x"),
                Segment::Param("b"),
                Segment::Wildcard(None)
            ]
        );
    }

    #[test]
    fn canonical_form_round_trips() {
        for path in ["/", "/users/:id", "/files/*path", "/*", "/a/b"] {
            assert_eq!(parse(path).unwrap().to_string(), path);
        }
        assert_eq!(parse("users/:id/").unwrap().to_string(), "/users/:id");
    }

    #[test]
    fn shape_ignores_names_and_end_slashes() {
        let shape = |p| parse(p).unwrap().shape();
        assert_eq!(shape("/users/:id/"), shape("/users/:name"));
        assert_eq!(shape("/files/*"), shape("/files/*rest"));
        assert_eq!(shape(""), shape("/"));
        assert_ne!(shape("/a"), shape("/b"));
        assert_ne!(shape("/:a"), shape("/*a"));
        assert_ne!(shape("/:a"), shape("/a"));
    }
}
