//! An HTTP/1 connection's header-read timeout, kept by nest instead of hyper: a connection with
//! no response in progress that sees no new request for a whole check period is closed.
//!
//! hyper's own timeout (`http1::Builder::header_read_timeout`) starts a timer for every request
//! head and, to start it, turns its connection loop once more after every keep-alive response
//! (a read, a parse, a flush): ~870 instructions per request of ~12,500 (callgrind, `GET /json`),
//! even with the timer's `Sleep` kept between requests. Here a request costs two counters: the
//! connection's service counts each request it starts (`activity`) and how many responses are
//! in progress (`open`, until hyper drops the response's body or the request's future); the
//! connection's task keeps one `Sleep`, which looks at the counters once per period
//! (`ServerConfig::header_read_timeout`, T):
//! - a response in progress, or any request or response that started or ended since the last
//!   look: the connection is in use; look again in T;
//! - neither: the connection was idle, or stuck inside a request head, for the whole period:
//!   closed.
//!
//! So an idle keep-alive connection is closed between T and 2T after its last response, and a
//! client has at most 2T to send a whole request head (hyper's bound was T): a slowloris client
//! trickling a head byte by byte is dropped all the same. A request whose handler or response
//! body takes longer (a long poll, a download, a stream) is never cut by it, as with hyper's.
//!
//! Private to the server (no example here): `conn.rs` counts through [`Busy`] and polls a
//! [`HeadWatch`] in every HTTP/1 connection's task; the tests below run it on a paused clock, and
//! `http.rs`'s header-read timeout tests on real connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::body::Body;
use crate::body::BoxError;

/// What one HTTP/1 connection's service counts for its [`HeadWatch`].
#[derive(Debug, Default)]
pub(super) struct Busy {
    /// Requests started plus responses ended: any change means the connection was used.
    activity: AtomicU64,
    /// Responses in progress: started, and their body (or the request's future) not dropped.
    open: AtomicUsize,
}

impl Busy {
    /// Counts a request that starts; the guard counts its end when dropped (moved into the
    /// response's body with [`Watched::new`] once there is one).
    pub(super) fn start(self: &Arc<Self>) -> InProgress {
        self.bump();
        self.open.fetch_add(1, Ordering::Relaxed);
        InProgress(Arc::clone(self))
    }

    /// The connection's task alone counts (its service and its bodies run in it): a load and a
    /// store, no read-modify-write.
    fn bump(&self) {
        let now = self.activity.load(Ordering::Relaxed);
        self.activity.store(now.wrapping_add(1), Ordering::Relaxed);
    }
}

/// A response in progress ([`Busy::start`]); its drop ends it.
#[derive(Debug)]
pub(super) struct InProgress(Arc<Busy>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        self.0.bump();
    }
}

/// A response body that holds its request's [`InProgress`] until hyper drops it (written, or
/// the connection gone).
pub(super) struct Watched {
    body: Body,
    _progress: Option<InProgress>,
}

impl Watched {
    pub(super) fn new(body: Body, progress: Option<InProgress>) -> Self {
        Self {
            body,
            _progress: progress,
        }
    }
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The connection task's side: one `Sleep`, a look at [`Busy`] each time it fires.
pub(super) struct HeadWatch {
    busy: Arc<Busy>,
    sleep: Pin<Box<Sleep>>,
    period: Duration,
    /// `activity` at the last look.
    seen: u64,
    /// The waker the sleep was last polled with since it was last reset: polled again with the
    /// same one before it fires, it is not re-polled (tokio's poll is ~130 instructions).
    waker: Option<Waker>,
}

impl HeadWatch {
    pub(super) fn new(busy: Arc<Busy>, period: Duration) -> Self {
        let seen = busy.activity.load(Ordering::Relaxed);
        Self {
            busy,
            sleep: Box::pin(tokio::time::sleep(period)),
            period,
            seen,
            waker: None,
        }
    }

    /// Whether the connection has been idle (or stuck in a request head) for a whole period:
    /// then it is to be closed. Registers `cx` to be woken at the next look otherwise.
    pub(super) fn poll_idle(&mut self, cx: &mut Context<'_>) -> bool {
        let registered = self
            .waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()));
        if registered && !self.sleep.is_elapsed() {
            return false;
        }
        while self.sleep.as_mut().poll(cx).is_ready() {
            let activity = self.busy.activity.load(Ordering::Relaxed);
            let open = self.busy.open.load(Ordering::Relaxed);
            if open == 0 && activity == self.seen {
                return true;
            }
            self.seen = activity;
            self.sleep.as_mut().reset(Instant::now() + self.period);
            self.waker = None;
        }
        // Polled in full: once per period, or for a new waker.
        self.waker = Some(cx.waker().clone());
        false
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::sync::Arc;
    use std::task::Poll;
    use std::time::Duration;

    use http_body::Body as _;

    use super::{Busy, HeadWatch, Watched};
    use crate::body::Body;

    const T: Duration = Duration::from_secs(10);

    async fn idle(watch: &mut HeadWatch) -> bool {
        poll_fn(|cx| Poll::Ready(watch.poll_idle(cx))).await
    }

    /// A connection that never sends a head is closed at the first look (T); one idle after a
    /// response at the first look that finds no change since that response.
    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_closed_after_one_to_two_periods() {
        let busy = Arc::new(Busy::default());
        let mut watch = HeadWatch::new(busy.clone(), T);
        tokio::time::advance(T - Duration::from_millis(1)).await;
        assert!(!idle(&mut watch).await, "before the first look");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(idle(&mut watch).await, "no head for a whole period");

        let mut watch = HeadWatch::new(busy.clone(), T);
        tokio::time::advance(T / 2).await;
        drop(busy.start()); // a request answered mid-period
        tokio::time::advance(T / 2).await;
        assert!(!idle(&mut watch).await, "used in this period");
        tokio::time::advance(T).await;
        assert!(
            idle(&mut watch).await,
            "a whole period idle after the response"
        );
    }

    /// A response in progress (its body held by hyper) keeps the connection however long it
    /// takes; it counts as idle only a whole period after the body is dropped.
    #[tokio::test(start_paused = true)]
    async fn a_response_in_progress_keeps_the_connection() {
        let busy = Arc::new(Busy::default());
        let mut watch = HeadWatch::new(busy.clone(), T);
        let body = Watched::new(Body::from("slow"), Some(busy.start()));
        assert_eq!(body.size_hint().exact(), Some(4), "the body's own hint");
        assert!(!body.is_end_stream());
        assert!(Watched::new(Body::empty(), None).is_end_stream());
        for _ in 0..5 {
            tokio::time::advance(T).await;
            assert!(!idle(&mut watch).await, "a response is in progress");
        }
        drop(body);
        tokio::time::advance(T).await;
        assert!(!idle(&mut watch).await, "it ended in this period");
        tokio::time::advance(T).await;
        assert!(idle(&mut watch).await);
    }

    /// Polled again with the waker it holds, the sleep is not re-polled, and that waker is woken
    /// at the look; a poll with another waker moves the registration to it.
    #[tokio::test(start_paused = true)]
    async fn the_last_waker_is_woken_at_the_look() {
        let busy = Arc::new(Busy::default());
        let mut watch = HeadWatch::new(busy, T);
        let (a, waker_a) = nest_waker();
        let (b, waker_b) = nest_waker();
        let poll = |watch: &mut HeadWatch, waker: &std::task::Waker| {
            watch.poll_idle(&mut std::task::Context::from_waker(waker))
        };
        assert!(!poll(&mut watch, &waker_a));
        assert!(!poll(&mut watch, &waker_a));
        assert!(!poll(&mut watch, &waker_b));
        tokio::time::advance(T).await;
        assert_eq!(
            (a.load(), b.load()),
            (0, 1),
            "the last poller is woken, once"
        );
        assert!(poll(&mut watch, &waker_b));
    }

    /// A counting waker.
    fn nest_waker() -> (Arc<Count>, std::task::Waker) {
        let count = Arc::new(Count::default());
        (count.clone(), std::task::Waker::from(count))
    }

    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl Count {
        fn load(&self) -> usize {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}
