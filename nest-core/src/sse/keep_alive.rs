//! The lazy keep-alive timer: writes only record their time; when the timer fires it checks
//! whether the stream was really idle for a whole interval, and re-arms if not (no timer reset
//! per event).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// The keep-alive state of one stream.
pub(super) struct KeepAlive {
    interval: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    last_write: Option<Instant>,
}

impl KeepAlive {
    pub(super) fn new(interval: Duration) -> Self {
        Self {
            interval,
            sleep: None,
            last_write: None,
        }
    }

    /// Records that the stream just wrote something.
    pub(super) fn wrote(&mut self) {
        self.last_write = Some(Instant::now());
    }

    /// Ready when the stream has been silent for a whole interval: send a keep-alive comment.
    pub(super) fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<()> {
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
