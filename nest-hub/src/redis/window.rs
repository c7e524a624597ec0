//! A topic's local window: the events the read loop brought from Redis, kept under the same
//! retention as in Redis, so that local subscribers read them as they read the in-process ring.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

use crate::{Batch, Retention};

/// What a local read found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Read {
    /// Events, or the gap.
    Batch(Batch),
    /// Nothing after the number yet: wait for the read loop.
    Wait,
    /// The number is before what this window saw (or it is not followed): ask Redis.
    Remote,
}

/// One event: its number, its append time in Redis's clock (ms), its wire bytes.
#[derive(Debug)]
struct Entry {
    seq: u64,
    ms: u64,
    bytes: Bytes,
}

/// The window. It knows every event in `base + 1..=head` (those still retained are in
/// `events`); events up to `base` happened before the read loop followed the topic.
#[derive(Debug, Default)]
pub(super) struct Window {
    /// Whether the read loop tails this topic.
    following: bool,
    /// Grows when Redis lost its data: reads started before then fail.
    generation: u64,
    base: u64,
    head: u64,
    events: VecDeque<Entry>,
    /// The bytes of `events`.
    bytes: usize,
}

impl Window {
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// The newest number here, if the topic is followed.
    pub(super) fn followed_head(&self) -> Option<u64> {
        self.following.then_some(self.head)
    }

    /// Starts following the topic after `head` (the head in Redis just read); false when it
    /// was followed already.
    pub(super) fn follow(&mut self, head: u64) -> bool {
        if self.following {
            return false;
        }
        *self = Self {
            following: true,
            generation: self.generation,
            base: head,
            head,
            ..Self::default()
        };
        true
    }

    /// Forgets everything: Redis lost its data, so the numbers start again.
    pub(super) fn reset(&mut self) {
        *self = Self {
            generation: self.generation + 1,
            ..Self::default()
        };
    }

    /// Adds an event the read loop read. Numbers already here are skipped; a number past the
    /// next one means the ones between are no longer in Redis, so nothing before it is kept.
    pub(super) fn push(&mut self, seq: u64, ms: u64, bytes: Bytes, retention: &Retention) {
        if !self.following || seq <= self.head {
            return;
        }
        if seq > self.head + 1 {
            self.events.clear();
            self.bytes = 0;
        }
        self.bytes += bytes.len();
        self.events.push_back(Entry { seq, ms, bytes });
        self.head = seq;
        self.prune(retention, now_ms());
    }

    /// Drops what the retention no longer keeps at `now` (ms, the clock of the events' times):
    /// the oldest events past the count or the bytes (the newest event stays whatever its
    /// size), and every event older than the age (the newest too).
    fn prune(&mut self, retention: &Retention, now: u64) {
        let cutoff = retention
            .max_age
            .map(|age| now.saturating_sub(age.as_millis() as u64));
        while let Some(oldest) = self.events.front() {
            let over = self.events.len() > retention.max_events
                || (self.bytes > retention.max_bytes && self.events.len() > 1)
                || cutoff.is_some_and(|cutoff| oldest.ms < cutoff);
            if !over {
                break;
            }
            self.bytes -= oldest.bytes.len();
            self.events.pop_front();
        }
    }

    /// The events after `after`, up to about `max_bytes` (at least one).
    pub(super) fn read(&mut self, after: u64, max_bytes: usize, retention: &Retention) -> Read {
        if !self.following {
            return Read::Remote;
        }
        if after >= self.head {
            // Past the head too: a reader that read ahead in Redis waits for the loop to catch up.
            return Read::Wait;
        }
        if retention.max_age.is_some() {
            self.prune(retention, now_ms());
        }
        let oldest = self.events.front().map_or(self.head + 1, |e| e.seq);
        if after + 1 < oldest {
            // Dropped here by the retention: gone in Redis too. Before `base`: ask Redis.
            return if oldest > self.base + 1 {
                Read::Batch(Batch::Gap { oldest })
            } else {
                Read::Remote
            };
        }
        let start = (after + 1 - oldest) as usize;
        let mut end = start + 1;
        let mut size = self.events[start].bytes.len();
        while let Some(next) = self.events.get(end) {
            if size + next.bytes.len() > max_bytes {
                break;
            }
            size += next.bytes.len();
            end += 1;
        }
        let last = self.events[end - 1].seq;
        let bytes = if end == start + 1 {
            self.events[start].bytes.clone()
        } else {
            let mut buf = BytesMut::with_capacity(size);
            for entry in self.events.range(start..end) {
                buf.extend_from_slice(&entry.bytes);
            }
            buf.freeze()
        };
        Read::Batch(Batch::Events { bytes, last })
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retention(max_events: usize, max_bytes: usize) -> Retention {
        Retention {
            max_events,
            max_age: None,
            max_bytes,
        }
    }

    fn events(bytes: &str, last: u64) -> Read {
        Read::Batch(Batch::Events {
            bytes: Bytes::from(bytes.to_owned()),
            last,
        })
    }

    /// A window followed from 0 that got `events` as 1, 2, 3… (time 0), kept by `retention`.
    fn followed(events: &[&'static str], retention: &Retention) -> Window {
        let mut window = Window::default();
        window.follow(0);
        for (seq, data) in (1..).zip(events) {
            window.push(seq, 0, Bytes::from_static(data.as_bytes()), retention);
        }
        window
    }

    #[test]
    fn reads_what_it_followed_and_asks_redis_for_the_rest() {
        let wide = retention(100, usize::MAX);
        let mut window = Window::default();
        assert_eq!(
            window.read(0, usize::MAX, &wide),
            Read::Remote,
            "not followed yet"
        );
        assert!(window.follow(2));
        assert!(!window.follow(5), "following already");
        for seq in 3..=5 {
            window.push(seq, 0, Bytes::from(format!("e{seq}")), &wide);
        }
        window.push(4, 0, Bytes::from_static(b"again"), &wide);
        assert_eq!(window.read(2, usize::MAX, &wide), events("e3e4e5", 5));
        assert_eq!(
            window.read(3, 2, &wide),
            events("e4", 4),
            "max_bytes, at least one"
        );
        assert_eq!(window.read(5, usize::MAX, &wide), Read::Wait);
        assert_eq!(
            window.read(1, usize::MAX, &wide),
            Read::Remote,
            "before the base"
        );
        assert_eq!(
            window.read(9, usize::MAX, &wide),
            Read::Wait,
            "past the head"
        );
    }

    #[test]
    fn retention_and_holes_are_gaps() {
        let two = retention(2, usize::MAX);
        let mut window = Window::default();
        window.follow(0);
        for seq in 1..=4 {
            window.push(seq, 0, Bytes::from(format!("e{seq}")), &two);
        }
        assert_eq!(
            window.read(0, usize::MAX, &two),
            Read::Batch(Batch::Gap { oldest: 3 })
        );
        window.push(9, 0, Bytes::from_static(b"e9"), &two);
        assert_eq!(
            window.read(4, usize::MAX, &two),
            Read::Batch(Batch::Gap { oldest: 9 })
        );

        let bytes = retention(100, 4);
        let mut window = Window::default();
        window.follow(0);
        for seq in 1..=3 {
            window.push(seq, 0, Bytes::from(format!("e{seq}")), &bytes);
        }
        assert_eq!(
            window.read(0, usize::MAX, &bytes),
            Read::Batch(Batch::Gap { oldest: 2 })
        );
    }

    #[test]
    fn following_starts_at_the_head_in_redis() {
        let wide = retention(100, usize::MAX);
        let mut window = Window::default();
        assert!(window.follow(2));
        assert_eq!(window.followed_head(), Some(2));
        assert_eq!(window.read(2, usize::MAX, &wide), Read::Wait, "at the head");
        assert_eq!(
            window.read(1, usize::MAX, &wide),
            Read::Remote,
            "before the base, nothing seen yet"
        );
    }

    #[test]
    fn reads_fill_max_bytes_exactly_and_one_event_is_not_copied() {
        let wide = retention(100, usize::MAX);
        let mut window = followed(&["e1", "e2", "e3", "e4"], &wide);
        let Some(first) = window.events.front().map(|e| e.bytes.clone()) else {
            panic!("four events");
        };
        assert_eq!(
            window.read(0, 6, &wide),
            events("e1e2e3", 3),
            "6 bytes fit in 6"
        );
        assert_eq!(window.read(0, 5, &wide), events("e1e2", 2));
        let Read::Batch(Batch::Events { bytes, last: 1 }) = window.read(0, 2, &wide) else {
            panic!("one event");
        };
        assert_eq!(
            bytes.as_ptr(),
            first.as_ptr(),
            "one event is handed on, not copied"
        );
        // One-byte events: two fit in two bytes, not three.
        let mut window = followed(&["a", "b", "c"], &wide);
        assert_eq!(window.read(0, 2, &wide), events("ab", 2));
    }

    #[test]
    fn retention_by_bytes_counts_what_it_drops() {
        // 3 + 3 bytes pass 4: the first goes (3 left); 2 more make 5: the second goes too.
        let four = retention(100, 4);
        let mut window = followed(&["aaa", "bbb"], &four);
        assert_eq!(window.read(1, usize::MAX, &four), events("bbb", 2));
        window.push(3, 0, Bytes::from_static(b"cc"), &four);
        assert_eq!(
            window.read(1, usize::MAX, &four),
            Read::Batch(Batch::Gap { oldest: 3 })
        );
        // The newest event stays, whatever its size.
        let one = retention(100, 1);
        let mut window = followed(&["e1"], &one);
        assert_eq!(window.read(0, usize::MAX, &one), events("e1", 1));
        // Exactly at the bound: kept.
        let mut window = followed(&["e1", "e2"], &four);
        assert_eq!(window.read(0, usize::MAX, &four), events("e1e2", 2));
    }

    #[test]
    fn retention_by_age_drops_what_is_older_than_the_bound() {
        let minute = Retention {
            max_events: 100,
            max_age: Some(std::time::Duration::from_secs(60)),
            max_bytes: usize::MAX,
        };
        let mut window = Window::default();
        window.follow(0);
        let now = now_ms();
        // An event from 1970 is gone at once, by the real clock.
        window.push(1, 1_000, Bytes::from_static(b"e1"), &minute);
        window.push(2, now, Bytes::from_static(b"e2"), &minute);
        assert_eq!(
            window.read(0, usize::MAX, &minute),
            Read::Batch(Batch::Gap { oldest: 2 })
        );
        // At the bound exactly: kept; a millisecond older: gone.
        let mut window = Window::default();
        window.follow(0);
        let wide = retention(100, usize::MAX);
        window.push(1, 39_999, Bytes::from_static(b"e1"), &wide);
        window.push(2, 40_000, Bytes::from_static(b"e2"), &wide);
        window.push(3, 40_001, Bytes::from_static(b"e3"), &wide);
        window.prune(&minute, 100_000);
        assert_eq!(window.events.front().map(|e| e.seq), Some(2));
        // All of them older: none left, and the next number is the oldest.
        window.prune(&minute, 200_000);
        assert!(window.events.is_empty());
        assert_eq!(
            window.read(1, usize::MAX, &wide),
            Read::Batch(Batch::Gap { oldest: 4 })
        );
    }

    #[test]
    fn a_reset_forgets_and_counts() {
        let wide = retention(100, usize::MAX);
        let mut window = Window::default();
        window.follow(0);
        window.push(1, 0, Bytes::from_static(b"e1"), &wide);
        window.reset();
        assert_eq!(window.generation(), 1);
        assert_eq!(window.followed_head(), None);
        assert_eq!(window.read(0, usize::MAX, &wide), Read::Remote);
    }
}
