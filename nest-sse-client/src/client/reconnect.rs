//! When to reconnect: after the reconnection time (the server's `retry`, else
//! the configured default), or exponential backoff with jitter, or the
//! server's `Retry-After`; up to a limit of consecutive failures, counted
//! since the last connection that stayed open long enough to call healthy.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use tokio::time::Instant;

/// The reconnection time a browser uses when the server sent no `retry`.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(3);

/// How long a connection must stay open before its end no longer counts as
/// a failure in a row: the backoff and the retry limit start over.
pub const DEFAULT_HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// The settings, from the [`Builder`](super::Builder).
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) enabled: bool,
    pub(crate) retry: Duration,
    pub(crate) backoff_max: Option<Duration>,
    pub(crate) jitter: bool,
    pub(crate) max_retries: Option<u32>,
    pub(crate) healthy_after: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            enabled: true,
            retry: DEFAULT_RETRY,
            backoff_max: None,
            jitter: true,
            max_retries: None,
            healthy_after: DEFAULT_HEALTHY_AFTER,
        }
    }
}

/// What to do after a connection failed or ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Reconnect after this delay.
    After(Duration),
    /// The retry limit is reached after this many attempts.
    GiveUp(u32),
    /// Reconnecting is off.
    Stop,
}

/// The policy and the failures so far.
#[derive(Debug)]
pub(crate) struct Reconnect {
    policy: Policy,
    /// Reconnection attempts since the last healthy connection.
    failures: u32,
    /// When the current connection opened.
    opened_at: Option<Instant>,
}

impl Reconnect {
    pub(crate) fn new(policy: Policy) -> Self {
        Self {
            policy,
            failures: 0,
            opened_at: None,
        }
    }

    /// The configured reconnection time, used until the server sends `retry`.
    pub(crate) fn default_retry(&self) -> Duration {
        self.policy.retry
    }

    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// A connection opened (200 with an event stream).
    pub(crate) fn opened(&mut self) {
        self.opened_at = Some(Instant::now());
    }

    /// A connection failed or ended. `reconnection_time` is the server's
    /// `retry` or the default; `retry_after` the response's `Retry-After`.
    pub(crate) fn failed(
        &mut self,
        reconnection_time: Duration,
        retry_after: Option<Duration>,
    ) -> Next {
        // Resetting on every open would retry a server that accepts and
        // closes at once forever, and never reach the limit.
        if let Some(opened) = self.opened_at.take() {
            if opened.elapsed() >= self.policy.healthy_after {
                self.failures = 0;
            }
        }
        if !self.policy.enabled {
            return Next::Stop;
        }
        if self
            .policy
            .max_retries
            .is_some_and(|max| self.failures >= max)
        {
            return Next::GiveUp(self.failures);
        }
        self.failures += 1;
        Next::After(retry_after.unwrap_or_else(|| self.delay(reconnection_time)))
    }

    /// The reconnection time, doubled per failure in a row up to the
    /// backoff's max and jittered, when backoff is on.
    fn delay(&self, base: Duration) -> Duration {
        let Some(max) = self.policy.backoff_max else {
            return base;
        };
        let doublings = self.failures.saturating_sub(1).min(31);
        let delay = base.saturating_mul(1 << doublings).min(max);
        if self.policy.jitter {
            jitter(delay, random())
        } else {
            delay
        }
    }
}

/// A delay between half of `delay` and all of it, in whole milliseconds
/// ("equal jitter": clients that failed together spread out, and none comes
/// back sooner than half the backoff).
fn jitter(delay: Duration, random: u64) -> Duration {
    let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    let half = ms / 2;
    Duration::from_millis(ms - random % (half + 1))
}

/// A random number from std's randomly keyed hasher (no RNG dependency).
fn random() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reconnect(policy: Policy) -> Reconnect {
        Reconnect::new(policy)
    }

    fn delays(r: &mut Reconnect, n: usize) -> Vec<Next> {
        (0..n)
            .map(|_| r.failed(Duration::from_secs(1), None))
            .collect()
    }

    #[test]
    fn without_backoff_every_delay_is_the_reconnection_time() {
        let mut r = reconnect(Policy::default());
        let secs = |s| Next::After(Duration::from_secs(s));
        assert_eq!(delays(&mut r, 3), [secs(1), secs(1), secs(1)]);
        assert_eq!(r.failures(), 3);
    }

    #[test]
    fn backoff_doubles_up_to_its_max_and_the_limit_gives_up() {
        let mut r = reconnect(Policy {
            backoff_max: Some(Duration::from_secs(5)),
            jitter: false,
            max_retries: Some(5),
            ..Policy::default()
        });
        let secs = |s| Next::After(Duration::from_secs(s));
        assert_eq!(
            delays(&mut r, 6),
            [secs(1), secs(2), secs(4), secs(5), secs(5), Next::GiveUp(5)]
        );
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_delay() {
        let second = Duration::from_secs(1);
        assert_eq!(jitter(second, 0), second);
        assert_eq!(jitter(second, 500), Duration::from_millis(500));
        assert_eq!(jitter(second, 501), second, "wraps within the range");
        assert_eq!(jitter(Duration::ZERO, 7), Duration::ZERO);
        let mut r = reconnect(Policy {
            backoff_max: Some(Duration::from_secs(8)),
            ..Policy::default()
        });
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            r.failures = 3; // the fourth failure: 8 s before jitter

            let Next::After(delay) = r.failed(second, None) else {
                panic!("no limit");
            };
            assert!(
                (Duration::from_secs(4)..=Duration::from_secs(8)).contains(&delay),
                "{delay:?}"
            );
            seen.insert(delay);
        }
        assert!(seen.len() > 100, "jitter spreads delays: {}", seen.len());
    }

    #[test]
    fn retry_after_wins_over_the_backoff() {
        let mut r = reconnect(Policy {
            backoff_max: Some(Duration::from_secs(30)),
            ..Policy::default()
        });
        let after = Some(Duration::from_secs(120));
        assert_eq!(
            r.failed(Duration::from_secs(1), after),
            Next::After(Duration::from_secs(120))
        );
        assert_eq!(r.failures(), 1, "it counts as a failure");
    }

    #[test]
    fn reconnecting_off_stops() {
        let mut r = reconnect(Policy {
            enabled: false,
            ..Policy::default()
        });
        assert_eq!(r.failed(Duration::from_secs(1), None), Next::Stop);
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_healthy_connection_resets_the_count() {
        let mut r = reconnect(Policy {
            max_retries: Some(2),
            healthy_after: Duration::from_secs(60),
            ..Policy::default()
        });
        let base = Duration::from_secs(1);
        // Opens that end at once are failures in a row.
        for _ in 0..2 {
            r.opened();
            assert!(matches!(r.failed(base, None), Next::After(_)));
        }
        r.opened();
        assert_eq!(r.failed(base, None), Next::GiveUp(2));

        let mut r = reconnect(Policy {
            max_retries: Some(2),
            ..Policy::default()
        });
        r.failed(base, None);
        r.failed(base, None);
        r.opened();
        tokio::time::advance(DEFAULT_HEALTHY_AFTER).await;
        assert_eq!(r.failed(base, None), Next::After(base));
        assert_eq!(r.failures(), 1);
    }
}
