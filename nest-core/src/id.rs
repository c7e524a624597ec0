//! Ids that are capabilities: whoever presents one gets what it names (a resumable stream, an
//! MCP session), so each is 128 random bits from the operating system, never a counter or a
//! time.
//!
//! # Example
//!
//! ```
//! let a = nest_core::id::random_id();
//! let b = nest_core::id::random_id();
//! assert_eq!(a.len(), 32);
//! assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
//! assert_ne!(a, b);
//! ```

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// 128 random bits as 32 lower-case hex digits, from the operating system's generator
/// (`getrandom`). Should the system's generator fail (it does not on the platforms nest runs
/// on), the bits come from std's per-process random SipHash keys over a counter and the clock,
/// still unpredictable to a client.
pub fn random_id() -> String {
    let mut bits = [0u8; 16];
    if getrandom::fill(&mut bits).is_err() {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let state = std::collections::hash_map::RandomState::new();
        bits[..8].copy_from_slice(&state.hash_one((n, now, 0u8)).to_le_bytes());
        bits[8..].copy_from_slice(&state.hash_one((n, now, 1u8)).to_le_bytes());
    }
    let mut id = String::with_capacity(32);
    for byte in bits {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    id
}
