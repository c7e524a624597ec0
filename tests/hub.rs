//! The hub over real sockets: resume exactness across 100 cuts, 1,000 subscribers, injection,
//! and the chat example's validation.

#[path = "../examples/chat.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod chat;

use std::net::SocketAddr;
use std::time::Duration;

use nest::sse::hub::{Hub, HubOptions, MemoryBackend, Retention};
use nest::sse::SseEvent;
use nest::sse_client::parser::{Item, Parser};
use nest::sse_client::testing::TestStream;
use nest::sse_client::Event;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw subscriber connection: the HTTP head is skipped, the body is parsed by the client's parser.
struct RawSubscriber {
    sock: TcpStream,
    parser: Parser,
    in_body: bool,
    head: Vec<u8>,
}

impl RawSubscriber {
    async fn connect(addr: SocketAddr, last_event_id: Option<&str>) -> Self {
        let mut sock = TcpStream::connect(addr).await.unwrap();
        let mut req =
            String::from("GET /events HTTP/1.1\r\nhost: test\r\naccept: text/event-stream\r\n");
        if let Some(id) = last_event_id {
            req.push_str(&format!("last-event-id: {id}\r\n"));
        }
        req.push_str("\r\n");
        sock.write_all(req.as_bytes()).await.unwrap();
        Self {
            sock,
            parser: Parser::new(),
            in_body: false,
            head: Vec::new(),
        }
    }

    /// Reads until at least one event arrived; returns the events of what was read.
    async fn read_events(&mut self) -> Vec<Event> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match tokio::time::timeout(Duration::from_secs(10), self.sock.read(&mut buf))
                .await
            {
                Ok(n) => n.unwrap(),
                Err(_) => panic!(
                    "no data for 10 s; buffered: {:?}",
                    String::from_utf8_lossy(&self.head)
                ),
            };
            assert!(n > 0, "the server closed the stream");
            let mut data = &buf[..n];
            if !self.in_body {
                self.head.extend_from_slice(data);
                let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&self.head[..end]).to_string();
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                // The body is chunked (HTTP/1.1 streaming); strip the chunk framing.
                assert!(
                    head.to_ascii_lowercase()
                        .contains("transfer-encoding: chunked"),
                    "{head}"
                );
                self.in_body = true;
                self.head = self.head[end + 4..].to_vec();
                data = &[];
            }
            self.head.extend_from_slice(data);
            let mut events = Vec::new();
            while let Some((chunk, rest)) = dechunk(&self.head) {
                events.extend(self.parser.feed(&chunk).filter_map(|item| match item {
                    Item::Event(e) => Some(e),
                    _ => None,
                }));
                self.head = rest;
            }
            if !events.is_empty() {
                return events;
            }
        }
    }
}

/// One HTTP/1.1 chunk off the front of `buf`: (payload, rest), or None if incomplete.
fn dechunk(buf: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let size =
        usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).ok()?.trim(), 16).ok()?;
    let start = line_end + 2;
    if buf.len() < start + size + 2 {
        return None;
    }
    Some((
        buf[start..start + size].to_vec(),
        buf[start + size + 2..].to_vec(),
    ))
}

fn big_hub() -> Hub {
    Hub::with_backend(
        MemoryBackend::new(Retention {
            max_events: 100_000,
            max_age: None,
            max_bytes: usize::MAX,
        }),
        HubOptions::new().keep_alive(None),
    )
}

/// A small deterministic generator for the cut points.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_is_exact_across_100_cuts_while_publishing() {
    const TOTAL: usize = 3000;
    let hub = big_hub();
    let server = chat::app(hub.clone())
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let addr = server.local_addr();
    // The first subscriber (no Last-Event-ID: live events only) is registered before publishing.
    let mut first = Some(RawSubscriber::connect(addr, None).await);
    tokio::time::timeout(Duration::from_secs(10), async {
        while hub.stats("chat").subscribers == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap();
    let publisher = tokio::spawn({
        let hub = hub.clone();
        async move {
            for i in 0..TOTAL {
                hub.publish(
                    "chat",
                    SseEvent::json(&json!({"user": "p", "text": i.to_string(), "ts": 0}))
                        .event("message"),
                )
                .await
                .unwrap();
                if i % 10 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    });
    let mut received: Vec<String> = Vec::new();
    let mut last_id: Option<String> = None;
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut cuts = 0;
    while received.len() < TOTAL {
        let mut sub = match first.take() {
            Some(sub) => sub,
            None => RawSubscriber::connect(addr, last_id.as_deref()).await,
        };
        // Read a random number of batches, then cut the connection (unless it is the last round).
        let batches = if cuts < 100 {
            1 + xorshift(&mut rng) % 4
        } else {
            u64::MAX
        };
        let mut read = 0;
        while read < batches && received.len() < TOTAL {
            for event in sub.read_events().await {
                assert_eq!(
                    event.event, "message",
                    "no gap events: the buffer holds everything"
                );
                let text = event.data_json::<serde_json::Value>().unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                received.push(text);
                last_id = Some(event.id.clone());
            }
            read += 1;
        }
        drop(sub);
        cuts += 1;
    }
    publisher.await.unwrap();
    assert!(
        cuts > 100,
        "the connection was cut at 100 points ({cuts} connections)"
    );
    let expected: Vec<String> = (0..TOTAL).map(|i| i.to_string()).collect();
    assert_eq!(received.len(), TOTAL, "no duplicate");
    assert_eq!(received, expected, "no gap, no duplicate, in order");
    server.shutdown(Duration::from_secs(1)).await;
}

/// This process's soft open-file limit (`/proc/self/limits`), when it can be read.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// A thousand subscribers, or as many as the open-file limit allows at two sockets each (client
/// and server are in this process), leaving room for the tests that run alongside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_receive_every_event_in_order() {
    const ROOM: usize = 256;
    let fits = open_file_limit().map_or(1000, |limit| limit.saturating_sub(ROOM) / 2);
    if fits < 1000 {
        eprintln!("the open-file limit allows {fits} subscribers, not 1,000");
    }
    let subscribers = fits.min(1000);
    const EVENTS: usize = 50;
    let hub = big_hub();
    let server = chat::app(hub.clone())
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut subs = Vec::new();
    for _ in 0..subscribers {
        subs.push(RawSubscriber::connect(addr, None).await);
    }
    // Every subscriber is registered before publishing starts.
    tokio::time::timeout(Duration::from_secs(30), async {
        while hub.stats("chat").subscribers < subscribers {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("all subscribers connect");
    let readers: Vec<_> = subs
        .into_iter()
        .map(|mut sub| {
            tokio::spawn(async move {
                let mut texts = Vec::new();
                while texts.len() < EVENTS {
                    for e in sub.read_events().await {
                        texts.push(e.data);
                    }
                }
                texts
            })
        })
        .collect();
    for i in 0..EVENTS {
        hub.publish("chat", SseEvent::data(i.to_string()).event("message"))
            .await
            .unwrap();
    }
    let expected: Vec<String> = (0..EVENTS).map(|i| i.to_string()).collect();
    for reader in readers {
        let texts = tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .expect("every subscriber reads every event");
        assert_eq!(texts.unwrap(), expected);
    }
    assert_eq!(hub.stats("chat").published, EVENTS as u64);
    server.shutdown(Duration::from_secs(1)).await;
}

/// Plain text with line breaks of every kind, published on the hub, reaches the client as one
/// event: the encoder splits it into `data:` lines, so no line of it starts a field or ends the
/// event.
#[tokio::test]
async fn published_text_cannot_forge_an_event() {
    let hub = chat::hub();
    let server = chat::app(hub.clone())
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let mut sub = RawSubscriber::connect(server.local_addr(), None).await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while hub.stats("chat").subscribers == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the subscriber is registered");
    let forged = "hi\n\nevent: admin\rid: 99\r\n\r\ndata: x\nretry: 1";
    let id = hub
        .publish("chat", SseEvent::data(forged).event("message"))
        .await
        .unwrap();
    hub.publish("chat", SseEvent::data("after").event("message"))
        .await
        .unwrap();
    // Everything up to the next event published: nothing in between.
    let mut events = Vec::new();
    while !events.iter().any(|e: &Event| e.data == "after") {
        events.extend(sub.read_events().await);
    }
    assert_eq!(events.len(), 2, "one event, then the next one: {events:?}");
    let event = &events[0];
    assert_eq!(event.event, "message");
    assert_eq!(event.id, id, "the hub's id, not the forged one");
    // The first event carries the hub's own `retry:` (it heads the first event, issue 28), never
    // the forged `retry: 1`.
    let hub_retry = chat::RETRY.as_millis() as u64;
    assert_eq!(event.retry, Some(hub_retry), "no forged retry");
    // Every line break came through as a line of data (the parser reads each as LF).
    assert_eq!(
        event.data,
        "hi\n\nevent: admin\nid: 99\n\ndata: x\nretry: 1"
    );
    server.shutdown(Duration::from_secs(1)).await;
}

/// The chat's own route: a message posted as JSON arrives as the same JSON.
#[tokio::test]
async fn a_posted_message_arrives_as_the_same_json() {
    let server = chat::app(chat::hub())
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    let mut stream = TestStream::connect(format!("{base}/events")).unwrap();
    stream.expect_open().await.unwrap();
    let text = "hi\n\nevent: admin\ndata: x";
    let res = reqwest::Client::new()
        .post(format!("{base}/messages"))
        .json(&json!({"user": "mallory", "text": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let event = stream.next_event().await.unwrap();
    assert_eq!(event.event, "message");
    let data: serde_json::Value = event.data_json().unwrap();
    assert_eq!(data["text"], text);
    assert_eq!(data["user"], "mallory");
    assert!(data["ts"].as_u64().unwrap() > 0);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn chat_rejects_bad_json_and_oversized_messages() {
    let server = chat::app(chat::hub())
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let url = format!("http://{}/messages", server.local_addr());
    let client = reqwest::Client::new();
    let res = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = client
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"user":"a"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "missing text");
    let res = client
        .post(&url)
        .json(&json!({"user": "a", "text": "x".repeat(chat::MAX_BODY)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    server.shutdown(Duration::from_secs(1)).await;
}
