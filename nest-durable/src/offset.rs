//! Offsets: the opaque tokens clients resume from.
//!
//! An offset is `0000000000000000_` followed by the position as 16 decimal digits: bytes for a
//! byte stream, messages for a JSON stream. Fixed width makes text order the stream's order, and
//! a fork shares its source's offsets up to the fork point (the protocol's rule). The first part
//! is reserved (always zero); anything else is malformed.

use std::fmt;

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadFrom {
    /// `-1` or no `offset`: the first position.
    Start,
    /// `now`: the tail at the time of the request.
    Now,
    /// A position the server handed out.
    At(u64),
}

/// A position formatted as an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Offset(pub(crate) u64);

const DIGITS: usize = 16;
const MAX: u64 = 9_999_999_999_999_999;

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:0w$}_{:0w$}", 0, self.0, w = DIGITS)
    }
}

impl Offset {
    /// Parses an offset the server handed out; `None` when it is not one.
    pub(crate) fn parse(text: &str) -> Option<Offset> {
        let (epoch, pos) = text.split_once('_')?;
        if epoch.len() != DIGITS || pos.len() != DIGITS {
            return None;
        }
        if !epoch.bytes().all(|b| b == b'0') || !pos.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        pos.parse().ok().map(Offset)
    }

    /// The largest position an offset can name.
    pub(crate) const MAX: u64 = MAX;
}

impl ReadFrom {
    /// Parses the `offset` query parameter (`-1`, `now` or an offset).
    pub(crate) fn parse(text: &str) -> Option<ReadFrom> {
        match text {
            "-1" => Some(ReadFrom::Start),
            "now" => Some(ReadFrom::Now),
            _ => Offset::parse(text).map(|o| ReadFrom::At(o.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sorts_as_text() {
        let a = Offset(9).to_string();
        let b = Offset(10).to_string();
        assert_eq!(a, "0000000000000000_0000000000000009");
        assert!(a < b);
        assert_eq!(Offset::parse(&b), Some(Offset(10)));
    }

    #[test]
    fn rejects_what_the_server_never_hands_out() {
        for bad in [
            "",
            "abc",
            "1,2",
            "0000000000000000_000000000000001",
            "0000000000000001_0000000000000000",
            "0000000000000000_00000000000000a1",
            " 0000000000000000_0000000000000000",
        ] {
            assert_eq!(ReadFrom::parse(bad), None, "{bad:?}");
        }
        assert_eq!(ReadFrom::parse("-1"), Some(ReadFrom::Start));
        assert_eq!(ReadFrom::parse("now"), Some(ReadFrom::Now));
    }
}
