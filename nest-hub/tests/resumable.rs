//! Resumable streams over real sockets: resume before and after the end, expiry, an unknown id, a
//! producer that fails mid-stream, two subscribers of one stream, priming and `retry:`.

use std::sync::Arc;
use std::time::Duration;

use nest_core::prelude::*;
use nest_core::test_util::TestServer;
use nest_hub::resumable::{Resumable, ResumableError, ResumableOptions, ResumableWriter};
use nest_hub::Hub;
use tokio::sync::mpsc;

struct Streams {
    resumable: Resumable,
}

impl Streams {
    /// `GET /streams/{id}`: from the start, or after `Last-Event-ID`.
    async fn stream(
        self: Arc<Self>,
        Path(id): Path<String>,
        last: LastEventId,
    ) -> Result<SseBody, HttpException> {
        Ok(self.resumable.subscribe(&id, &last).await?)
    }

    /// `GET /resume`: the stream named by `Last-Event-ID` alone.
    async fn resume(self: Arc<Self>, last: LastEventId) -> Result<SseBody, HttpException> {
        Ok(self.resumable.resume(&last).await?)
    }
}

impl Controller for Streams {
    fn routes(r: &mut Routes<Self>) {
        r.sse("/streams/:id", Self::stream);
        r.sse("/resume", Self::resume);
    }
}

async fn serve(resumable: &Resumable) -> TestServer {
    let app = NestApp::new().controller(Streams {
        resumable: resumable.clone(),
    });
    TestServer::start(app).await
}

/// Starts stream `id` whose producer sends what the test feeds it and ends when the sender
/// is dropped (or fails with the text after `fail:`).
async fn fed(resumable: &Resumable, id: &str) -> mpsc::UnboundedSender<String> {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    resumable
        .start(id, |out: ResumableWriter| async move {
            while let Some(text) = rx.recv().await {
                if let Some(why) = text.strip_prefix("fail:") {
                    return Err(why.to_owned());
                }
                out.send(text).await.map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .await
        .unwrap();
    tx
}

/// One SSE response read chunk by chunk.
struct Reader {
    response: reqwest::Response,
    text: String,
    ended: bool,
}

impl Reader {
    async fn get(url: String, last: Option<&str>) -> Reader {
        let mut req = reqwest::Client::new().get(url);
        if let Some(last) = last {
            req = req.header("last-event-id", last);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200);
        Reader {
            response,
            text: String::new(),
            ended: false,
        }
    }

    /// Reads until `data: <text>` arrived (within 5 s).
    async fn until(&mut self, data: &str) -> &mut Self {
        let needle = format!("data: {data}\n\n");
        tokio::time::timeout(Duration::from_secs(5), async {
            while !self.text.contains(&needle) {
                match self.response.chunk().await.unwrap() {
                    Some(chunk) => self.text.push_str(std::str::from_utf8(&chunk).unwrap()),
                    None => panic!("the stream ended before {data:?}: {:?}", self.text),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {data:?} within 5 s: {:?}", self.text));
        self
    }

    /// Reads to the end of the body (within 5 s): the end must come, never a hang.
    async fn read_to_end(&mut self) -> &str {
        tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(chunk) = self.response.chunk().await.unwrap() {
                self.text.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the stream did not end: {:?}", self.text));
        self.ended = true;
        &self.text
    }

    /// The data of every event read so far.
    fn data(&self) -> Vec<&str> {
        self.text
            .lines()
            .filter_map(|l| l.strip_prefix("data: ").or(l.strip_prefix("data:")))
            .collect()
    }

    fn last_id(&self) -> String {
        self.text
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("id: "))
            .expect("an id")
            .to_owned()
    }
}

async fn status(url: String, last: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(last) = last {
        req = req.header("last-event-id", last);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn resume_before_the_end_gets_the_rest_then_a_clean_end() {
    let resumable = Resumable::new(Hub::new());
    let server = serve(&resumable).await;
    let tx = fed(&resumable, "a1").await;
    for t in ["one", "two"] {
        tx.send(t.into()).unwrap();
    }
    let mut first = Reader::get(server.url("/streams/a1"), None).await;
    first.until("two").await;
    let last = first.last_id();
    assert!(last.starts_with("a1:"), "{last}");
    drop(first); // the client goes away: the producer goes on
    tx.send("three".into()).unwrap();
    tx.send("four".into()).unwrap();
    let mut resumed = Reader::get(server.url("/resume"), Some(&last)).await;
    resumed.until("four").await;
    assert!(resumable.is_running("a1"));
    drop(tx);
    resumed.read_to_end().await;
    assert_eq!(resumed.data(), ["three", "four"]);
    assert!(!resumed.text.contains("nest.end"), "{}", resumed.text);
    server.shutdown().await;
}

#[tokio::test]
async fn resume_after_the_end_gets_the_rest_then_a_clean_end() {
    let resumable = Resumable::new(Hub::new());
    let server = serve(&resumable).await;
    let tx = fed(&resumable, "b1").await;
    for t in ["one", "two", "three"] {
        tx.send(t.into()).unwrap();
    }
    drop(tx);
    let mut all = Reader::get(server.url("/streams/b1"), None).await;
    all.read_to_end().await;
    assert_eq!(all.data(), ["one", "two", "three"]);
    let after_one = all
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .next()
        .unwrap()
        .to_owned();
    // By GET with the stream in the path, and by Last-Event-ID alone.
    let mut rest = Reader::get(server.url("/streams/b1"), Some(&after_one)).await;
    assert_eq!(rest.read_to_end().await.matches("data:").count(), 2);
    assert_eq!(rest.data(), ["two", "three"]);
    let mut nothing = Reader::get(server.url("/resume"), Some(&all.last_id())).await;
    assert_eq!(nothing.read_to_end().await, "");
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn finished_streams_expire_after_the_ttl() {
    let options = ResumableOptions::new().ttl(Duration::from_secs(60));
    let resumable = Resumable::with_options(Hub::new(), options);
    let server = serve(&resumable).await;
    let tx = fed(&resumable, "c1").await;
    tx.send("only".into()).unwrap();
    drop(tx);
    while resumable.is_running("c1") {
        tokio::task::yield_now().await;
    }
    let mut read = Reader::get(server.url("/streams/c1"), None).await;
    assert_eq!(read.read_to_end().await.matches("data: only").count(), 1);
    let id = read.last_id();

    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(status(server.url("/resume"), Some(&id)).await.0, 200);
    tokio::time::advance(Duration::from_secs(2)).await;
    let (code, body) = status(server.url("/resume"), Some(&id)).await;
    assert_eq!(code, 410, "{body}");
    assert!(body.contains("expired"), "{body}");
    assert_eq!(status(server.url("/streams/c1"), None).await.0, 410);
    // After one more ttl the id is forgotten (when a new stream starts): unknown, 404.
    tokio::time::advance(Duration::from_secs(60)).await;
    drop(fed(&resumable, "c2").await);
    assert_eq!(status(server.url("/resume"), Some(&id)).await.0, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn an_unknown_id_is_a_404_never_an_empty_200() {
    let resumable = Resumable::new(Hub::new());
    let server = serve(&resumable).await;
    let (code, body) = status(server.url("/streams/nope"), None).await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no resumable stream `nope`"), "{body}");
    assert_eq!(status(server.url("/resume"), Some("nope:1-2")).await.0, 404);
    // No Last-Event-ID at all, or one of another stream: 400.
    assert_eq!(status(server.url("/resume"), None).await.0, 400);
    drop(fed(&resumable, "d1").await);
    assert_eq!(
        status(server.url("/streams/d1"), Some("other:1-1")).await.0,
        400
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_producer_that_fails_mid_stream_ends_with_an_error_event() {
    let resumable = Resumable::new(Hub::new());
    let server = serve(&resumable).await;
    let tx = fed(&resumable, "e1").await;
    let mut reader = Reader::get(server.url("/streams/e1"), None).await;
    tx.send("partial".into()).unwrap();
    reader.until("partial").await;
    tx.send("fail:model overloaded".into()).unwrap();
    let text = reader.read_to_end().await;
    assert!(
        text.contains("event: error\nid: e1:") && text.ends_with("data: model overloaded\n\n"),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_panicking_or_cancelled_producer_also_ends_with_an_error_event() {
    let resumable = Resumable::new(Hub::new());
    let server = serve(&resumable).await;
    resumable
        .start("p1", |_out| async move {
            panic!("boom");
            #[allow(unreachable_code)]
            Ok::<(), String>(())
        })
        .await
        .unwrap();
    let mut reader = Reader::get(server.url("/streams/p1"), None).await;
    assert!(reader.read_to_end().await.contains("event: error\n"));
    assert!(reader.data().contains(&"the producer panicked"));

    let _tx = fed(&resumable, "p2").await;
    let mut reader = Reader::get(server.url("/streams/p2"), None).await;
    assert!(resumable.cancel("p2"));
    reader.read_to_end().await;
    assert_eq!(reader.data(), ["cancelled"]);
    server.shutdown().await;
}

#[tokio::test]
async fn two_subscribers_of_one_stream_get_every_event_and_the_end() {
    let resumable = Resumable::new(Hub::new());
    let server = serve(&resumable).await;
    let tx = fed(&resumable, "f1").await;
    tx.send("early".into()).unwrap();
    let mut a = Reader::get(server.url("/streams/f1"), None).await;
    a.until("early").await;
    let mut b = Reader::get(server.url("/streams/f1"), None).await;
    b.until("early").await;
    tx.send("late".into()).unwrap();
    drop(tx);
    a.read_to_end().await;
    b.read_to_end().await;
    assert_eq!(a.data(), ["early", "late"]);
    assert_eq!(a.text, b.text);
    server.shutdown().await;
}

#[tokio::test]
async fn priming_event_and_retry_come_first() {
    let options = ResumableOptions::new()
        .priming(true)
        .retry(Duration::from_millis(1500));
    let resumable = Resumable::with_options(Hub::new(), options);
    let server = serve(&resumable).await;
    let tx = fed(&resumable, "g1").await;
    tx.send("x".into()).unwrap();
    drop(tx);
    let mut reader = Reader::get(server.url("/streams/g1"), None).await;
    let text = reader.read_to_end().await.to_owned();
    let mut events = text.split("\n\n");
    // The `retry:` goes at the head of the first event (a block of its own is an empty
    // message to some clients).
    let priming = events
        .next()
        .unwrap()
        .strip_prefix("retry: 1500\n")
        .unwrap();
    assert!(
        priming.starts_with("id: g1:") && priming.ends_with("\ndata:"),
        "{priming}"
    );
    // Resuming from the priming event's id gives the whole answer.
    let priming_id = priming
        .lines()
        .next()
        .unwrap()
        .strip_prefix("id: ")
        .unwrap();
    let mut rest = Reader::get(server.url("/resume"), Some(priming_id)).await;
    rest.read_to_end().await;
    assert_eq!(rest.data(), ["x"]);
    server.shutdown().await;
}

#[tokio::test]
async fn starting_an_id_twice_is_an_error() {
    let resumable = Resumable::new(Hub::new());
    let _tx = fed(&resumable, "h1").await;
    let err: ResumableError = resumable
        .start("h1", |_| async { Ok::<(), String>(()) })
        .await
        .unwrap_err();
    assert!(err.is_exists());
    assert_eq!(err.status(), 409);
    let err = resumable
        .start("bad id", |_| async { Ok::<(), String>(()) })
        .await
        .unwrap_err();
    assert!(err.is_invalid_id());
}
