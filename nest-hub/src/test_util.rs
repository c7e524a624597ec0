//! Test helpers (feature `test-util`): resumable stream records and ids as the fuzz target
//! `resumable_id` checks them.
//!
//! ```
//! use nest_hub::test_util::{decode_resumable_record, encode_resumable_record, is_valid_resumable_id};
//!
//! let value = encode_resumable_record(2, 1500, Some("7-1"), Some("alice"));
//! assert_eq!(
//!     decode_resumable_record(&value),
//!     Some(("finished".into(), 1500, Some("7-1".into()), Some("alice".into())))
//! );
//! assert_eq!(decode_resumable_record(b"paused 1 -"), None);
//! assert!(is_valid_resumable_id("answer-1") && !is_valid_resumable_id("a b"));
//! ```

/// What a resumable stream's record holds, decoded from a stored value: its state (`running`,
/// `cancel`, `finished`), its tail in ms, the hub id of its first event and its owner; `None`
/// for a value that is not a record.
pub fn decode_resumable_record(
    value: &[u8],
) -> Option<(String, u64, Option<String>, Option<String>)> {
    crate::resumable::decode_record(value)
}

/// A resumable stream's record value made of its fields (`state` 0, 1, 2: running, cancel,
/// finished).
pub fn encode_resumable_record(
    state: u8,
    tail_ms: u64,
    first: Option<&str>,
    owner: Option<&str>,
) -> bytes::Bytes {
    crate::resumable::encode_record(state, tail_ms, first, owner)
}

/// Whether `id` can name a resumable stream (what `Resumable::start` accepts).
pub fn is_valid_resumable_id(id: &str) -> bool {
    crate::resumable::is_valid_id(id)
}
