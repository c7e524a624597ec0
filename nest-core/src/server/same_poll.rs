//! A plain TCP connection's reads: one that was `Pending` earlier in the same poll of the
//! connection's task is `Pending` again without asking the socket.
//!
//! hyper's HTTP/1 server reads twice after every keep-alive response when it has a header-read
//! timeout (nest always sets one): once to see whether the client closed (`maybe_notify`), then
//! once more in a second turn of its loop, to start the next head's timeout (`idle()` asks for
//! that turn). Both find nothing, in the same poll; the second costs a tokio readiness check with
//! its waker lock (~200 instructions per request of ~12,800, callgrind). Nothing makes a TCP socket
//! readable within one poll of a task without waking that task: the first `Pending` registered the
//! task's waker with tokio's driver, and a driver thread that finds the socket readable wakes it,
//! so it is polled again, under a new count. A write does not change what a TCP socket has to
//! read, so writes in between do not matter (TLS is not wrapped: a TLS read may wait on a write).
//!
//! Private to the server: `conn.rs` wraps each connection's I/O in [`SamePoll`], with a
//! [`PollCount`] for cleartext ones that it ticks at the top of every poll of the connection's
//! task; the tests below show the short cut and that a new poll asks the socket again.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};

/// How many times the connection's task has been polled (shared with its [`SamePoll`]).
#[derive(Debug, Default, Clone)]
pub(super) struct PollCount(Arc<AtomicU64>);

impl PollCount {
    /// Counts one poll of the task: call it first thing in every poll, before the connection's.
    pub(super) fn tick(&self) {
        // One task polls it: a load and a store, no read-modify-write.
        let count = self.0.load(Ordering::Relaxed);
        self.0.store(count.wrapping_add(1), Ordering::Relaxed);
    }

    fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// I/O whose reads skip the socket when a read was `Pending` in this same poll (with a count;
/// without one, as over TLS, every read asks).
#[derive(Debug)]
pub(super) struct SamePoll<I> {
    io: I,
    polls: Option<PollCount>,
    /// The poll in which a read was last `Pending`; `None` after a read that was not.
    pending_in: Option<u64>,
}

impl<I> SamePoll<I> {
    pub(super) fn new(io: I, polls: Option<PollCount>) -> Self {
        Self {
            io,
            polls,
            pending_in: None,
        }
    }
}

impl<I: Read + Unpin> Read for SamePoll<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(polls) = &this.polls else {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        };
        let now = polls.now();
        if this.pending_in == Some(now) {
            return Poll::Pending;
        }
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        this.pending_in = read.is_pending().then_some(now);
        read
    }
}

impl<I: Write + Unpin> Write for SamePoll<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::mem::MaybeUninit;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use hyper::rt::{Read, ReadBuf, ReadBufCursor, Write};

    use super::{PollCount, SamePoll};

    /// A socket stand-in: `Pending` until `ready`, counting the times it is asked.
    #[derive(Default)]
    struct Socket {
        asked: usize,
        ready: bool,
        vectored: bool,
    }

    impl Write for Socket {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }
    }

    /// Writes go to the socket as they are: whether it takes vectored writes (hyper's `writev`)
    /// is the socket's answer.
    #[test]
    fn writes_are_the_sockets() {
        for vectored in [true, false] {
            let socket = Socket {
                vectored,
                ..Socket::default()
            };
            let io = SamePoll::new(socket, Some(PollCount::default()));
            assert_eq!(io.is_write_vectored(), vectored);
        }
    }

    impl Read for Socket {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            mut buf: ReadBufCursor<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.asked += 1;
            if !this.ready {
                return Poll::Pending;
            }
            buf.put_slice(b"hi");
            Poll::Ready(Ok(()))
        }
    }

    fn read(io: &mut SamePoll<Socket>) -> Poll<Vec<u8>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut storage = [MaybeUninit::<u8>::uninit(); 16];
        let mut buf = ReadBuf::uninit(&mut storage);
        Pin::new(io)
            .poll_read(&mut cx, buf.unfilled())
            .map(|result| {
                result.unwrap();
                buf.filled().to_vec()
            })
    }

    /// A second read in the same poll is `Pending` without asking the socket, even when the
    /// socket has bytes by then; the next poll asks it and reads them; reads that were not
    /// `Pending` do not make the next one skip.
    #[test]
    fn a_read_pending_in_this_poll_is_pending_again_and_the_next_poll_asks() {
        let polls = PollCount::default();
        let mut io = SamePoll::new(Socket::default(), Some(polls.clone()));
        polls.tick();
        assert!(read(&mut io).is_pending());
        io.io.ready = true;
        assert!(read(&mut io).is_pending(), "same poll");
        assert_eq!(io.io.asked, 1, "the socket was asked once");
        polls.tick();
        assert_eq!(
            read(&mut io),
            Poll::Ready(b"hi".to_vec()),
            "a new poll reads"
        );
        assert_eq!(
            read(&mut io),
            Poll::Ready(b"hi".to_vec()),
            "ready reads never skip"
        );
        assert_eq!(io.io.asked, 3);
    }

    /// Without a count (TLS) every read asks the socket.
    #[test]
    fn without_a_count_every_read_asks() {
        let mut io = SamePoll::new(Socket::default(), None);
        assert!(read(&mut io).is_pending());
        assert!(read(&mut io).is_pending());
        assert_eq!(io.io.asked, 2);
    }
}
