//! Log lines about many subscribers at once, folded to at most one per second.

use std::sync::atomic::{AtomicU64, Ordering};

/// At most one log line per second for what befalls many subscribers at once (a backend that
/// lost its data ends every subscriber of every topic; a burst makes many lag): the line says how
/// many were folded into it, so logging stays O(1) per second whatever the subscribers.
#[derive(Default)]
pub(crate) struct LogGate {
    next_ms: AtomicU64,
    folded: AtomicU64,
}

impl LogGate {
    /// How long a line covers.
    pub(crate) const INTERVAL_MS: u64 = 1000;

    /// `Some(n)` when a line is due at `now_ms` (`n` earlier occurrences were folded into it);
    /// `None` when this one is folded into the next line.
    pub(crate) fn due(&self, now_ms: u64) -> Option<u64> {
        let next = self.next_ms.load(Ordering::Relaxed);
        if now_ms >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now_ms + Self::INTERVAL_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            Some(self.folded.swap(0, Ordering::Relaxed))
        } else {
            self.folded.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}
