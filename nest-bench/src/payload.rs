//! The benchmark event: ~100 bytes of JSON whose `"t"` is the send time in Unix nanoseconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Padding that brings an event's JSON to about 100 bytes.
const PAD: &str = "nest-bench-nest-bench-nest-bench-nest-bench-nest-ben";

/// Nanoseconds since the Unix epoch (the clock that `"t"` and the load generator share).
pub(crate) fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The JSON of event number `seq`, stamped now.
pub(crate) fn event_json(seq: u64) -> String {
    format!(r#"{{"t":{},"seq":{seq},"pad":"{PAD}"}}"#, unix_nanos())
}

/// Finds the first `"t":<digits>` in `chunk` and returns its value, when all its digits are there.
pub(crate) fn first_t(chunk: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(chunk, br#""t":"#)? + 4;
    let digits = &chunk[at..];
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || len == digits.len() {
        return None;
    }
    std::str::from_utf8(&digits[..len]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_about_100_bytes_and_carry_t() {
        let json = event_json(12_345);
        assert!(
            (95..=110).contains(&json.len()),
            "{} bytes: {json}",
            json.len()
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        let t = parsed["t"].as_u64().unwrap();
        assert_eq!(first_t(format!("data: {json}\n\n").as_bytes()), Some(t));
    }

    #[test]
    fn a_cut_t_is_not_read() {
        assert_eq!(first_t(br#"data: {"t":123"#), None);
        assert_eq!(first_t(br#"data: {"t":123,"#), Some(123));
    }
}
