//! The one id type of the hub: `EPOCH-SEQ`, parsed and written here only.
//!
//! ```
//! use nest_hub::HubId;
//!
//! let id = HubId::parse("1733400000123-42").unwrap();
//! assert_eq!((id.epoch(), id.seq()), (1733400000123, 42));
//! assert_eq!(id.to_string(), "1733400000123-42");
//! assert_eq!(id.before().to_string(), "1733400000123-41");
//! assert_eq!(HubId::parse(" 7-1 "), Some(HubId::new(7, 1)));
//! for bad in ["7", "7-", "-1", "7-1-2", "7-+1", "x-1", "7-99999999999999999999"] {
//!     assert_eq!(HubId::parse(bad), None, "{bad}");
//! }
//! ```

use std::fmt;
use std::str::FromStr;

/// An id the hub gives an event: the backend's epoch and the event's number in its topic,
/// written `EPOCH-SEQ` (two decimal numbers). Every event id a hub subscriber sees is one; a
/// resumable stream's ids are `<stream id>:EPOCH-SEQ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HubId {
    epoch: u64,
    seq: u64,
}

impl HubId {
    /// The id of event `seq` in epoch `epoch`.
    pub fn new(epoch: u64, seq: u64) -> Self {
        Self { epoch, seq }
    }

    /// `EPOCH-SEQ` (surrounding whitespace ignored, as in a `Last-Event-ID` header), or `None`
    /// for anything else: each part is 1 to 20 ASCII digits that fit a `u64`, no sign.
    pub fn parse(id: &str) -> Option<Self> {
        let (epoch, seq) = id.trim().split_once('-')?;
        Some(Self::new(number(epoch)?, number(seq)?))
    }

    /// The epoch: it changes when the backend's id space is new (a restart of an in-process
    /// hub, a Redis that lost its data), so an old id never matches a new event.
    pub fn epoch(self) -> u64 {
        self.epoch
    }

    /// The event's number in its topic (from 1, growing by one per event).
    pub fn seq(self) -> u64 {
        self.seq
    }

    /// The id just before this one in the same epoch (`SEQ - 1`, at least 0): where a reader
    /// that wants this event resumes.
    pub fn before(self) -> Self {
        Self::new(self.epoch, self.seq.saturating_sub(1))
    }
}

/// Decimal digits only (`u64::from_str` also takes a leading `+`).
fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl fmt::Display for HubId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.epoch, self.seq)
    }
}

/// The error of parsing a [`HubId`]: the text is not `EPOCH-SEQ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseHubIdError;

impl fmt::Display for ParseHubIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a hub id (EPOCH-SEQ, two decimal numbers)")
    }
}

impl std::error::Error for ParseHubIdError {}

impl FromStr for HubId {
    type Err = ParseHubIdError;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        Self::parse(id).ok_or(ParseHubIdError)
    }
}

#[cfg(test)]
mod tests {
    use super::HubId;

    /// Issue 36: a part is digits only; `u64::from_str` alone would take a sign.
    #[test]
    fn a_part_with_a_sign_or_no_digit_is_not_an_id() {
        for bad in ["7-+1", "+7-1", "7-", "-1", "7-1x"] {
            assert_eq!(HubId::parse(bad), None, "{bad}");
        }
        assert_eq!(HubId::parse("7-1"), Some(HubId::new(7, 1)));
    }
}
