//! Idle direct streams without a task of their own.
//!
//! A direct SSE stream lives in its connection's tokio task: a 256-byte task cell, allocated
//! aligned to 128 bytes (with the allocator's slack around it), for the stream's whole life.
//! Most of that life an SSE stream waits: for an event, a keep-alive, its client's close. A
//! quiet stream ([`Stream::parkable`]) that has nothing to do leaves its task: it moves into a
//! [`Parked`] node (the stream and its token on the server's tracker: one 176-byte allocation,
//! against the task's 256 aligned to 128 and the stream's 48-byte read waker), registers
//! the node as its waker everywhere (its body, its socket's read interest, the stop registry),
//! and the task ends. The first wake spawns a task ([`Resumed`]) that takes the stream back
//! and polls it as the connection's task did. A busy stream never parks: it must have written
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

use tokio_util::task::task_tracker::TaskTrackerToken;

use super::direct::Stream;

/// A parked stream, and what wakes it: this node is the waker of everything the stream waits
/// on.
///
/// 168 bytes with its reference counts (a 176-byte allocation): the stream (128) and its token
/// on the tracker; the runtime to resume it on is the server's ([`Stop::runtime`](super::stop::Stop::runtime)).
pub(super) struct Parked {
    held: Mutex<Held>,
}

struct Held {
    /// The stream while it is parked; taken by the task its first wake spawns.
    stream: Option<Stream>,
    /// Counts the parked stream on its server's tracker of connection tasks (a shutdown
    /// returns once every stream ended, parked ones too); given up when the stream is taken
    /// (its new task is on the tracker).
    tracked: Option<TaskTrackerToken>,
    /// Woken since the node was made (a wake before the stream was stored keeps it out).
    woken: bool,
}

impl Parked {
    fn held(&self) -> MutexGuard<'_, Held> {
        // Every change under the lock is a single assignment: a poisoned lock is whole.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stream, for the task that resumes it (its token on the tracker is dropped after it
    /// left the lock).
    fn take(&self) -> Option<Stream> {
        let (stream, _tracked) = {
            let mut held = self.held();
            (held.stream.take(), held.tracked.take())
        };
        stream
    }
}

impl Wake for Parked {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let resume_on = {
            let mut held = self.held();
            let first = !held.woken;
            held.woken = true;
            match &held.stream {
                Some(stream) if first => {
                    let stop = stream.stop();
                    stop.runtime()
                        .map(|handle| (stop.tasks.clone(), handle.clone()))
                }
                _ => None,
            }
        };
        if let Some((tasks, handle)) = resume_on {
            // Detached, on the server's tracker: the task ends with the stream, or parks it
            // again in a new node.
            let resumed = Resumed {
                node: Some(Resume(self.clone())),
                stream: None,
            };
            drop(tasks.spawn_on(resumed, &handle));
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
        held: Mutex::new(Held {
            stream: None,
            tracked: None,
            woken: false,
        }),
    });
    let waker = Waker::from(node.clone());
    if stream
        .poll_parked(&mut Context::from_waker(&waker))
        .is_ready()
    {
        return None;
    }
    let tracked = stream.stop().tasks.token();
    let mut held = node.held();
    if held.woken {
        return Some(stream);
    }
    held.stream = Some(stream);
    held.tracked = Some(tracked);
    None
}

/// A parked stream's task after a wake: it takes the stream from its node on its first poll,
/// then serves it as the connection's task did (and parks it again once it is idle).
struct Resumed {
    node: Option<Resume>,
    stream: Option<Stream>,
}

impl std::future::Future for Resumed {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // No field is pinned (the stream is `Unpin`).
        let this = self.get_mut();
        if let Some(node) = this.node.take() {
            this.stream = node.0.take();
        }
        poll_or_park(&mut this.stream, cx)
    }
}

/// The node a woken task starts from. If the task is dropped unpolled (the runtime is gone),
/// the stream is buried.
struct Resume(Arc<Parked>);

impl Drop for Resume {
    fn drop(&mut self) {
        if let Some(stream) = self.0.take() {
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
            node: None,
            stream: Some(stream(sock, body, stop)),
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

    /// A stream with nothing to write leaves its task (the task ends, the stream stays on the
    /// server's tracker); a frame wakes it in a new task and reaches the client; the client's
    /// close ends it, and the tracker empties.
    #[tokio::test]
    async fn an_idle_stream_parks_without_a_task_and_wakes_for_a_frame_and_a_close() {
        let (mut client, sock) = socket_pair().await;
        let stop = Arc::new(Stop::new(tokio_util::sync::CancellationToken::new()));
        let (frames, task, _) = serve(sock, &stop);
        read_until(&mut client, "200 OK").await;
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the task ends once the stream parked")
            .unwrap();
        assert_eq!(stop.tasks.len(), 1, "the parked stream is still tracked");
        assert_eq!(stop.direct_streams().registered(), 1);
        for i in 0..3 {
            frames
                .send(Ok(Bytes::from(format!("data: {i}\n\n"))))
                .unwrap();
            read_until(&mut client, &format!("data: {i}\n\n")).await;
        }
        client.shutdown().await.unwrap();
        drop(client);
        stop.tasks.close();
        tokio::time::timeout(Duration::from_secs(10), stop.tasks.wait())
            .await
            .expect("the stream ends with its client");
        assert_eq!(stop.direct_streams().registered(), 0);
        assert!(frames.is_closed(), "the body was dropped");
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
            node: None,
            stream: Some(stream(sock, body, &stop)),
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
    /// registration and its body: 152 bytes, 168 with its reference counts (a 176-byte block;
    /// the task it replaces is 256 aligned to 128, plus the stream's 48-byte read waker).
    #[test]
    fn a_parked_stream_s_node_stays_small() {
        let node = std::mem::size_of::<Parked>();
        assert!(node <= 152, "the parked node grew to {node} bytes");
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
