//! The lazy keep-alive timer: writes only record their time; when the timer fires it checks
//! whether the stream was really idle for a whole interval, and re-arms if not (no timer reset
//! per event).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// The keep-alive state of one stream.
pub(super) struct KeepAlive {
    interval: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    last_write: Option<Instant>,
    /// A write since the last `poll_due`: the timer need not be polled (see there).
    wrote: bool,
    /// The waker the timer was last polled with (its data and vtable addresses, compared as
    /// `Waker::will_wake` does), so a skipped poll never leaves it with a stale one.
    polled_with: (usize, usize),
}

fn identity(waker: &Waker) -> (usize, usize) {
    (waker.data() as usize, waker.vtable() as *const _ as usize)
}

impl KeepAlive {
    /// Whether the timer was made (on the first `poll_due`).
    #[cfg(test)]
    pub(super) fn has_timer(&self) -> bool {
        self.sleep.is_some()
    }

    pub(super) fn new(interval: Duration) -> Self {
        Self {
            interval,
            sleep: None,
            last_write: None,
            wrote: false,
            polled_with: (0, 0),
        }
    }

    /// Records that the stream just wrote something.
    pub(super) fn wrote(&mut self) {
        self.last_write = Some(Instant::now());
        self.wrote = true;
    }

    /// Ready when the stream has been silent for a whole interval: send a keep-alive comment.
    pub(super) fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Right after a write (the poll that follows each delivery), a timer set before it
        // cannot be due: it already holds the task's waker from an earlier poll, so polling it
        // again (a timer-entry registration per event) is skipped. If it fires in between, the
        // wake comes back here with `wrote` cleared.
        let waker = identity(cx.waker());
        if std::mem::take(&mut self.wrote) && waker == self.polled_with {
            if let (Some(sleep), Some(last)) = (&self.sleep, self.last_write) {
                if last < sleep.deadline() {
                    return Poll::Pending;
                }
            }
        }
        self.polled_with = waker;
        let last = *self.last_write.get_or_insert_with(Instant::now);
        let interval = self.interval;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(last + interval)));
        while sleep.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            let due = self.last_write.unwrap_or(now) + interval;
            if now >= due {
                self.last_write = Some(now);
                sleep.as_mut().reset(now + interval);
                return Poll::Ready(());
            }
            sleep.as_mut().reset(due);
        }
        Poll::Pending
    }
}
