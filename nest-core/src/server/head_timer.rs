//! hyper's timer for one HTTP/1 connection: the header-read timeouts of its requests share one
//! tokio `Sleep`.
//!
//! hyper starts a header-read timeout for every request on a keep-alive connection and drops it
//! once the head is read. With hyper-util's `TokioTimer` each is a new `Sleep`, registered in and
//! removed from tokio's timer wheel (two lock rounds, ~700 instructions per request). Here the
//! connection keeps one `Sleep` between requests, registered at an earlier request's deadline:
//! when that passes, the timeout polling it resets it to its own (a later one) and waits on. So a
//! connection costs the wheel one registration per timeout period, and at most one wake-up per
//! period it did not ask for (the kept sleep firing while no head is awaited). It also keeps
//! the waker it last polled the `Sleep` with: a timeout polled with the same waker (the
//! connection's task, every request) while the sleep is registered and has not fired does not
//! poll it again (tokio's poll is ~130 instructions, once per request).
//!
//! Private to the server (no example here): `conn.rs` gives each HTTP/1 connection's builder a
//! `HeadTimer::default()`; the tests below run its timeouts on a paused clock, and `http.rs`'s
//! header-read timeout tests run it on real connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

type Cached = Arc<Mutex<Option<Kept>>>;

/// The connection's `Sleep`, and the waker it was last polled with since it was last reset
/// (`None`: not polled since, so not registered with any waker).
struct Kept {
    sleep: Pin<Box<tokio::time::Sleep>>,
    waker: Option<Waker>,
}

impl Kept {
    fn reset(&mut self, deadline: tokio::time::Instant) {
        self.sleep.as_mut().reset(deadline);
        self.waker = None;
    }
}

/// One connection's timer: a `Sleep` kept between the timeouts it gives hyper.
#[derive(Default, Clone)]
pub(super) struct HeadTimer(Cached);

/// A timeout given to hyper: the connection's `Sleep` while it lives, back in the timer after.
struct HeadSleep {
    sleep: Option<Kept>,
    deadline: tokio::time::Instant,
    home: Cached,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let deadline = tokio::time::Instant::from_std(deadline);
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        let sleep = match kept {
            // Not with hyper's one timeout length, but the trait allows a shorter one.
            Some(mut kept) if kept.sleep.deadline() > deadline => {
                kept.reset(deadline);
                kept
            }
            Some(kept) => kept,
            None => Kept {
                sleep: Box::pin(tokio::time::sleep_until(deadline)),
                waker: None,
            },
        };
        let home = Arc::clone(&self.0);
        Box::pin(HeadSleep {
            sleep: Some(sleep),
            deadline,
            home,
        })
    }

    /// tokio's clock, so a paused clock in tests pauses hyper's deadlines too.
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

impl Future for HeadSleep {
    type Output = ();

    /// A kept sleep still has an earlier timeout's deadline: when that passes, it is reset to
    /// this one's (no reset per request: one per timeout period at most). Not polled again
    /// with the waker it holds while it has not fired: the timer wheel wakes that waker.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        let Some(kept) = self.sleep.as_mut() else {
            return Poll::Ready(());
        };
        let registered = kept
            .waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()));
        if registered && !kept.sleep.is_elapsed() {
            return Poll::Pending;
        }
        while kept.sleep.as_mut().poll(cx).is_ready() {
            if kept.sleep.deadline() >= deadline {
                return Poll::Ready(());
            }
            kept.reset(deadline);
        }
        if !registered || kept.waker.is_none() {
            kept.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl hyper::rt::Sleep for HeadSleep {}

impl Drop for HeadSleep {
    fn drop(&mut self) {
        let mut home = self.home.lock().unwrap_or_else(PoisonError::into_inner);
        if home.is_none() {
            *home = self.sleep.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::FutureExt;
    use hyper::rt::Timer;

    use super::HeadTimer;

    /// The second timeout reuses the first one's `Sleep` (no new one while it is cached) and fires
    /// at its own deadline: not at the first one's, which has passed by then.
    #[tokio::test(start_paused = true)]
    async fn a_later_timeout_reuses_the_sleep_and_keeps_its_own_deadline() {
        let timer = HeadTimer::default();
        let mut first = timer.sleep(Duration::from_secs(10));
        assert!((&mut first).now_or_never().is_none());
        let address = |timer: &HeadTimer| {
            let cached = timer.0.lock().unwrap();
            cached
                .as_ref()
                .map(|kept| &*kept.sleep as *const tokio::time::Sleep)
        };
        assert_eq!(
            address(&timer),
            None,
            "the sleep is the timeout's while it lives"
        );
        drop(first);
        let kept = address(&timer).expect("a dropped timeout's sleep is kept");
        tokio::time::advance(Duration::from_secs(5)).await;
        let mut second = timer.sleep(Duration::from_secs(10));
        assert_eq!(address(&timer), None);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(
            (&mut second).now_or_never().is_none(),
            "fired at the old deadline"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(
            (&mut second).now_or_never().is_some(),
            "not fired at its own"
        );
        drop(second);
        assert_eq!(address(&timer), Some(kept), "one sleep for both timeouts");
        // A fired sleep is reset too: the next timeout waits its whole length.
        let mut third = timer.sleep(Duration::from_secs(3));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!((&mut third).now_or_never().is_none());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!((&mut third).now_or_never().is_some());
    }

    /// A timeout polled again with the waker it holds is not re-polled, and that waker is woken
    /// when it fires; polled by another waker, it wakes that one instead.
    #[tokio::test(start_paused = true)]
    async fn the_waker_that_polled_last_is_woken() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use std::task::{Context, Wake, Waker};

        #[derive(Default)]
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let (a, b) = (Arc::new(Count::default()), Arc::new(Count::default()));
        let (waker_a, waker_b) = (Waker::from(a.clone()), Waker::from(b.clone()));
        let timer = HeadTimer::default();
        let mut poll = |sleep: &mut std::pin::Pin<Box<dyn hyper::rt::Sleep>>, waker: &Waker| {
            sleep
                .as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_ready()
        };
        let mut first = timer.sleep(Duration::from_secs(1));
        assert!(!poll(&mut first, &waker_a));
        assert!(!poll(&mut first, &waker_a), "polled again: still pending");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(a.0.load(Ordering::SeqCst), 1, "the holder's waker is woken");
        assert!(poll(&mut first, &waker_a));
        drop(first);
        // The kept sleep is reset for the next timeout, held by A, then polled by B.
        let mut second = timer.sleep(Duration::from_secs(1));
        assert!(!poll(&mut second, &waker_a));
        assert!(!poll(&mut second, &waker_b));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.0.load(Ordering::SeqCst), 1, "the last poller is woken");
        assert!(poll(&mut second, &waker_b));
    }

    /// Two timeouts at once (hyper has one per connection, the trait allows more): the second
    /// gets its own sleep, and only one is kept after.
    #[tokio::test(start_paused = true)]
    async fn timeouts_at_once_each_have_a_sleep() {
        let timer = HeadTimer::default();
        let mut a = timer.sleep(Duration::from_secs(1));
        let mut b = timer.sleep(Duration::from_secs(2));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!((&mut a).now_or_never().is_some());
        assert!((&mut b).now_or_never().is_none());
        drop(a);
        drop(b);
        assert!(timer.0.lock().unwrap().is_some());
        // A shorter timeout than the kept sleep's is not held to the later deadline.
        let mut long = timer.sleep(Duration::from_secs(60));
        assert!((&mut long).now_or_never().is_none());
        drop(long);
        let mut short = timer.sleep(Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!((&mut short).now_or_never().is_some());
        assert_eq!(timer.now(), tokio::time::Instant::now().into_std());
    }
}
