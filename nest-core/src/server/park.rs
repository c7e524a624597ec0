//! Idle direct streams without a task of their own.
//!
//! A direct SSE stream lives in its connection's tokio task: a 256-byte task cell, allocated
//! aligned to 128 bytes (with the allocator's slack around it), for the stream's whole life.
//! Most of that life an SSE stream waits: for an event, a keep-alive, its client's close. A
//! quiet stream ([`Stream::parkable`]) that has nothing to do leaves its task: it moves into a
//! [`Parked`] node (the stream and a lock: one 160-byte allocation, against the task's 256
//! aligned to 128 and the stream's 48-byte read waker; the server counts its parked streams,
//! so a shutdown waits for them), registers the node as its waker everywhere (its body, its
//! socket's read interest, the stop registry), and the task ends. The first wake moves the
//! stream into a task it spawns ([`Resumed`]), which polls it as the connection's task did. A busy stream never parks: it must have written
//! nothing for [`PARK_AFTER_MS`](super::direct::PARK_AFTER_MS) before the frame after which it
//! goes idle.
//!
//! A wake never drops a stream where it is called (a waker may be called under a lock the
//! stream's drop takes, e.g. its state's): when the runtime is gone and the spawned task is
//! dropped unpolled, the stream is handed to a thread that drops it ([`bury`]).
//!
//! Private to the server (no example here): the tests below serve parked streams on real
//! sockets, and the direct streams of `nest-core/tests/direct_sse.rs` park whenever idle.

use std::future::Future as _;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use super::direct::Stream;

/// A parked stream, and what wakes it: this node is the waker of everything the stream waits
/// on.
///
/// 136 bytes, 152 with its reference counts (a 160-byte block): the stream (128, its states
/// in the stream's own niche) and the lock; the runtime to resume it on is the server's
/// ([`Stop::runtime`](super::stop::Stop::runtime)), and the server counts its parked streams
/// ([`Stop::park_one`](super::stop::Stop::park_one)) instead of a token on its tracker each.
pub(super) struct Parked {
    held: Mutex<Held>,
}

/// What a node holds.
enum Held {
    /// Made; the stream is not stored yet.
    Fresh,
    /// Woken: before the stream was stored (it is given back to its task), or after (it was
    /// moved to the task the wake spawned).
    Woken,
    /// The stream, parked.
    Parked(Stream),
}

impl Parked {
    fn held(&self) -> MutexGuard<'_, Held> {
        // Every change under the lock is a single assignment: a poisoned lock is whole.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Wake for Parked {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    /// The first wake moves the stream out (under the lock) into a task spawned on the
    /// server's runtime and tracker (outside it); later wakes find nothing to do.
    fn wake_by_ref(self: &Arc<Self>) {
        let stream = match std::mem::replace(&mut *self.held(), Held::Woken) {
            Held::Parked(stream) => stream,
            Held::Fresh | Held::Woken => return,
        };
        let stop = stream.stop();
        let resume_on = stop
            .runtime()
            .map(|handle| (stop.tasks.clone(), handle.clone()));
        let resumed = Resumed {
            stream: Some(stream),
            counted: true,
        };
        // Detached, on the server's tracker: the task ends with the stream, or parks it again
        // in a new node. If the runtime is gone, the task is dropped unpolled (here, or inside
        // `spawn_on`), and its drop buries the stream.
        if let Some((tasks, handle)) = resume_on {
            drop(tasks.spawn_on(resumed, &handle));
        }
    }
}

impl Drop for Parked {
    /// A node dropped with its stream (every waker it gave out dropped unwoken) counts the
    /// stream off the server's parked streams; the stream is dropped with it, as before.
    fn drop(&mut self) {
        let held = std::mem::replace(&mut *self.held(), Held::Woken);
        if let Held::Parked(stream) = held {
            stream.stop().unpark_one();
        }
    }
}

/// Parks `stream` (just polled, pending, and [`Stream::parkable`]): polls it once more with a
/// new node as its waker and stores it there, unless that poll ended it (`None`, dropped
/// here) or a wake came before it was stored: then it is given back, to be polled again by its
/// task (whose waker is registered nowhere any more). Outside a runtime it is given back.
pub(super) fn park(mut stream: Stream) -> Option<Stream> {
    if stream.stop().runtime().is_none() {
        return Some(stream);
    }
    let node = Arc::new(Parked {
        held: Mutex::new(Held::Fresh),
    });
    let waker = Waker::from(node.clone());
    if stream
        .poll_with(&mut Context::from_waker(&waker), true)
        .is_ready()
    {
        return None;
    }
    // Counted before it is stored: a wake right after may count it off.
    stream.stop().park_one();
    let mut held = node.held();
    if let Held::Woken = *held {
        drop(held);
        stream.stop().unpark_one();
        return Some(stream);
    }
    *held = Held::Parked(stream);
    None
}

/// A stream's task: a connection's task that serves its direct stream, or the task a parked
/// stream's first wake spawned, which counts it off the parked streams on its first poll and
/// then serves it as the connection's task did (and parks it again once it is idle).
struct Resumed {
    stream: Option<Stream>,
    /// Still counted among the parked streams (spawned by a wake, not yet polled).
    counted: bool,
}

impl std::future::Future for Resumed {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // No field is pinned (the stream is `Unpin`).
        let this = self.get_mut();
        if let (true, Some(stream)) = (std::mem::take(&mut this.counted), &this.stream) {
            stream.stop().unpark_one();
        }
        poll_or_park(&mut this.stream, cx)
    }
}

impl Drop for Resumed {
    /// A task dropped unpolled (its runtime is gone, maybe inside the wake that spawned it)
    /// buries its stream: the wake may have been called under a lock the stream's drop takes.
    fn drop(&mut self) {
        if let (true, Some(stream)) = (std::mem::take(&mut self.counted), self.stream.take()) {
            stream.stop().unpark_one();
            bury(stream);
        }
    }
}

/// Drops `stream` on a thread of its own (made once): the caller may hold a lock the stream's
/// drop takes (see the module's docs). Only a stream whose runtime is gone comes here.
fn bury(stream: Stream) {
    static GRAVE: OnceLock<Option<std::sync::mpsc::Sender<Stream>>> = OnceLock::new();
    let grave = GRAVE.get_or_init(|| {
        let (send, receive) = std::sync::mpsc::channel::<Stream>();
        std::thread::Builder::new()
            .name("nest-parked-drop".into())
            .spawn(move || receive.into_iter().for_each(drop))
            .ok()
            .map(|_| send)
    });
    match grave {
        Some(send) => {
            if let Err(returned) = send.send(stream) {
                // The thread is gone: forgetting the stream leaks it, dropping it here could
                // deadlock; a leak it is (no thread could be made).
                std::mem::forget(returned.0);
            }
        }
        None => std::mem::forget(stream),
    }
}

/// Polls the direct stream in `slot` (a connection task's) and parks it when it is idle:
/// `Ready` when the task may end (the stream ended, or it is parked and `slot` empty),
/// `Pending` while the task keeps it.
pub(super) fn poll_or_park(slot: &mut Option<Stream>, cx: &mut Context<'_>) -> Poll<()> {
    let mut parked_once = false;
    loop {
        let Some(stream) = slot.as_mut() else {
            return Poll::Ready(());
        };
        if std::pin::Pin::new(&mut *stream).poll(cx).is_ready() {
            *slot = None;
            return Poll::Ready(());
        }
        // One try per poll: a stream woken while it parked is polled once more, then waits.
        if parked_once || !stream.parkable() {
            return Poll::Pending;
        }
        parked_once = true;
        let Some(stream) = slot.take() else {
            return Poll::Ready(());
        };
        match park(stream) {
            None => return Poll::Ready(()),
            Some(back) => *slot = Some(back),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::body::Body;
    use crate::server::stop::{Slot, Stop};

    use crate::server::direct::socket_pair;

    type Frames = tokio::sync::mpsc::UnboundedSender<Result<Bytes, Infallible>>;

    /// A chunked direct stream of `body` on `sock`, for `stop`'s server, its head written as
    /// its first poll's first bytes.
    fn stream(sock: TcpStream, body: Body, stop: &Arc<Stop>) -> Stream {
        let head = Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n");
        Stream::new(sock, head, body, Slot(stop.clone()), true)
    }

    /// Tells the name of the thread a body was dropped on, when it is (`None`: unnamed).
    type DroppedOn = std::sync::mpsc::Receiver<Option<String>>;

    /// A direct stream on `sock` whose frames are sent on the returned channel, served as a
    /// connection task on `stop`'s tracker; where its body is dropped.
    fn serve(
        sock: TcpStream,
        stop: &Arc<Stop>,
    ) -> (Frames, tokio::task::JoinHandle<()>, DroppedOn) {
        let (frames, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (on_drop, dropped) = std::sync::mpsc::channel();
        let on_drop = OnDrop(on_drop);
        let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| {
            let _keep = &on_drop;
            rx.poll_recv(cx)
        }));
        let task = stop.tasks.spawn(Resumed {
            stream: Some(stream(sock, body, stop)),
            counted: false,
        });
        (frames, task, dropped)
    }

    /// Sends the name of the thread it is dropped on.
    struct OnDrop(std::sync::mpsc::Sender<Option<String>>);

    impl Drop for OnDrop {
        fn drop(&mut self) {
            let _ = self
                .0
                .send(std::thread::current().name().map(str::to_owned));
        }
    }

    /// Reads from `client` until `want` was read.
    async fn read_until(client: &mut TcpStream, want: &str) -> String {
        let mut all = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&all).contains(want) {
            let n = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf))
                .await
                .expect("read in time")
                .unwrap();
            assert!(
                n > 0,
                "closed before {want:?}: {:?}",
                String::from_utf8_lossy(&all)
            );
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    }

    /// A direct stream served on `stop`'s tracker until it parked (its task ended): its client
    /// and the sender of its body's frames.
    async fn parked(stop: &Arc<Stop>) -> (TcpStream, Frames) {
        let (mut client, sock) = socket_pair().await;
        let (frames, task, _) = serve(sock, stop);
        read_until(&mut client, "200 OK").await;
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the task ends once the stream parked")
            .unwrap();
        (client, frames)
    }

    /// Closes `client` and waits (at most 10 s) until the server's tracker is empty: its
    /// streams ended.
    async fn close_and_drain(mut client: TcpStream, stop: &Stop, what: &str) {
        client.shutdown().await.unwrap();
        drop(client);
        stop.tasks.close();
        let drained = tokio::time::timeout(Duration::from_secs(10), stop.tasks.wait()).await;
        drained.expect(what);
    }

    /// Yields until `done` (the runtime runs the stream's task meanwhile), for at most 10 s.
    async fn until(done: impl Fn() -> bool, what: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::task::yield_now().await;
        }
    }

    /// A stream with nothing to write leaves its task (the task ends, the stream stays on the
    /// server's tracker); a frame wakes it in a new task and reaches the client; the client's
    /// close ends it, and the tracker empties.
    #[tokio::test]
    async fn an_idle_stream_parks_without_a_task_and_wakes_for_a_frame_and_a_close() {
        let stop = Arc::new(Stop::new(tokio_util::sync::CancellationToken::new()));
        let (mut client, frames) = parked(&stop).await;
        assert_eq!(stop.tasks.len(), 1, "the parked stream is still tracked");
        assert_eq!(stop.direct_streams().registered(), 1);
        for i in 0..3 {
            frames
                .send(Ok(Bytes::from(format!("data: {i}\n\n"))))
                .unwrap();
            read_until(&mut client, &format!("data: {i}\n\n")).await;
        }
        close_and_drain(client, &stop, "the stream ends with its client").await;
        assert_eq!(stop.direct_streams().registered(), 0);
        assert!(frames.is_closed(), "the body was dropped");
    }

    /// A node dropped with its stream still in it (every waker it gave out dropped unwoken)
    /// counts the stream off: the server's tracker does not wait for it.
    #[tokio::test]
    async fn a_node_dropped_with_its_stream_counts_it_off() {
        let (_client, sock) = socket_pair().await;
        let stop = Arc::new(Stop::new(tokio_util::sync::CancellationToken::new()));
        stop.park_one();
        assert_eq!(stop.tasks.len(), 1);
        let node = Parked {
            held: Mutex::new(Held::Parked(stream(sock, Body::empty(), &stop))),
        };
        drop(node);
        assert_eq!(
            stop.tasks.len(),
            0,
            "the parked count's token is given back"
        );
    }

    /// Parked streams are counted on the server, not each with a token on its tracker: two
    /// parked streams are one token; it stays while one is parked, and the tracker empties when
    /// the last ends.
    #[tokio::test]
    async fn parked_streams_share_one_token_on_the_tracker_until_the_last_ends() {
        let stop = Arc::new(Stop::new(tokio_util::sync::CancellationToken::new()));
        let mut clients = Vec::new();
        for _ in 0..2 {
            clients.push(parked(&stop).await);
        }
        assert_eq!(stop.tasks.len(), 1, "two parked streams, one token");
        assert_eq!(stop.direct_streams().registered(), 2);
        let (mut first, first_frames) = clients.remove(0);
        first.shutdown().await.unwrap();
        drop(first);
        until(|| first_frames.is_closed(), "the first stream ended").await;
        until(
            || stop.direct_streams().registered() == 1,
            "its registration is gone",
        )
        .await;
        assert_eq!(stop.tasks.len(), 1, "the other is still parked");
        let (second, _frames) = clients.remove(0);
        close_and_drain(
            second,
            &stop,
            "the tracker empties with the last parked stream",
        )
        .await;
    }

    /// A stream that is woken while it parks (here: its body wakes the parking poll's waker)
    /// stays in its task, registered with the task's waker again: the next frame reaches the
    /// client through it.
    #[tokio::test]
    async fn a_stream_woken_while_it_parks_stays_in_its_task() {
        let (mut client, sock) = socket_pair().await;
        let stop = Arc::new(Stop::new(tokio_util::sync::CancellationToken::new()));
        let (frames, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let mut polls = 0;
        let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| {
            polls += 1;
            if polls == 2 {
                // The second poll is the parking one: a wake arrives during it.
                cx.waker().wake_by_ref();
            }
            rx.poll_recv(cx).map(|b| b.map(Ok::<_, Infallible>))
        }));
        let mut serve = Resumed {
            stream: Some(stream(sock, body, &stop)),
            counted: false,
        };
        assert!(
            futures_util::poll!(&mut serve).is_pending(),
            "given back to the task: it keeps it"
        );
        assert!(serve.stream.is_some());
        let task = tokio::spawn(serve);
        read_until(&mut client, "200 OK").await;
        frames.send(Bytes::from_static(b"data: x\n\n")).unwrap();
        read_until(&mut client, "data: x\n\n").await;
        drop(client);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the stream ends with its client")
            .unwrap();
    }

    /// However often a parked stream is woken before its new task runs, one task is spawned:
    /// the tracker counts the parked stream (its token), then that one task.
    #[tokio::test]
    async fn a_parked_stream_woken_twice_gets_one_task() {
        let (mut client, sock) = socket_pair().await;
        let stop = Arc::new(Stop::new(tokio_util::sync::CancellationToken::new()));
        let (_frames, task, _) = serve(sock, &stop);
        read_until(&mut client, "200 OK").await;
        task.await.unwrap();
        assert_eq!(stop.tasks.len(), 1, "parked");
        let node = stop.direct_streams().first().unwrap();
        node.wake_by_ref();
        node.wake_by_ref();
        assert_eq!(stop.tasks.len(), 2, "the parked stream and one task");
        // The task takes the stream; idle, it parks it again in a new node.
        tokio::task::yield_now().await;
        assert_eq!(stop.tasks.len(), 1, "parked again");
        assert!(!stop.direct_streams().first().unwrap().will_wake(&node));
        drop(client);
    }

    /// A parked stream's node is most of what an idle stream costs beside its socket's
    /// registration and its body: 136 bytes, 152 with its reference counts (a 160-byte block;
    /// the task it replaces is 256 aligned to 128, plus the stream's 48-byte read waker).
    #[test]
    fn a_parked_stream_s_node_stays_small() {
        let node = std::mem::size_of::<Parked>();
        assert!(node <= 136, "the parked node grew to {node} bytes");
    }

    /// A stream parked when its runtime shuts down is not leaked: the runtime's end wakes it,
    /// its task cannot be spawned, and it is dropped on the burying thread, which closes its
    /// socket (the client reads EOF) and frees its place on the stop registry.
    #[test]
    fn a_stream_parked_when_its_runtime_ends_is_dropped_and_its_socket_closed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let stop = Arc::new(Stop::new(tokio_util::sync::CancellationToken::new()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (frames, dropped) = runtime.block_on(async {
            let sock = TcpStream::from_std(server).unwrap();
            let (frames, task, dropped) = serve(sock, &stop);
            task.await.unwrap();
            (frames, dropped)
        });
        assert_eq!(stop.direct_streams().registered(), 1, "parked");
        drop(runtime);
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut client, &mut all).expect("EOF, not a timeout");
        assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200 OK"));
        // Dropped on the burying thread (the stream leaves the registry before its body drops).
        let on = dropped
            .recv_timeout(Duration::from_secs(10))
            .expect("the stream was dropped");
        assert_eq!(
            on.as_deref(),
            Some("nest-parked-drop"),
            "dropped on the burying thread, not where it was woken"
        );
        assert!(frames.is_closed());
        assert_eq!(stop.direct_streams().registered(), 0);
    }
}
