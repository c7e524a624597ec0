//! Differential test against eventsource-stream 0.2.3, the design card's
//! baseline: on well-formed common input both agree; the differences listed in
//! the README are asserted to exist (if one disappears, this test says so and
//! the README must change).

use std::time::Duration;

use eventsource_stream::{EventStream, Eventsource};
use futures_util::{stream, Stream, StreamExt};
use nest_sse_client::parser::{Item, Parser};
use nest_sse_client::Event;

type Chunk = Result<Vec<u8>, std::convert::Infallible>;

fn chunks(parts: &[&[u8]]) -> impl Stream<Item = Chunk> + Send + 'static {
    let owned: Vec<Chunk> = parts.iter().map(|p| Ok(p.to_vec())).collect();
    stream::iter(owned)
}

fn to_event(e: eventsource_stream::Event) -> Event {
    Event {
        event: e.event,
        data: e.data,
        id: e.id,
        retry: e
            .retry
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    }
}

/// eventsource-stream's events, or its first error as text.
async fn theirs(parts: &[&[u8]]) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    let mut source = chunks(parts).eventsource();
    while let Some(item) = source.next().await {
        events.push(to_event(item.map_err(|e| e.to_string())?));
    }
    Ok(events)
}

fn ours(parts: &[&[u8]]) -> Vec<Event> {
    let mut parser = Parser::new();
    let mut items = Vec::new();
    for part in parts {
        parser.push(part, &mut items);
    }
    parser.finish();
    items
        .into_iter()
        .filter_map(|item| match item {
            Item::Event(e) => Some(e),
            Item::Comment(_) => None,
        })
        .collect()
}

const COMMON: &[&str] = &[
    "data: hello\n\n",
    "data: a\ndata: b\n\n",
    "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\n",
    ": keep-alive\n\ndata: x\n\n",
    "id: 1\ndata: one\n\nid: 2\ndata: two\n\ndata: three\n\n",
    "retry: 1500\ndata: r\n\n",
    "data: {\"n\":1}\r\n\r\ndata: crlf\r\n\r\n",
    "event: é\ndata: ünïcödé 😀\n\n",
    "data:no-space\n\ndata:  two spaces\n\n",
    "foo: bar\ndata: unknown field ignored\n\n",
    "data\n\ndata:\n\n",
    "id: 5\0\ndata: nul id ignored\n\n",
    "data: unterminated",
];

#[tokio::test]
async fn both_agree_on_well_formed_common_input() {
    for input in COMMON {
        let bytes = input.as_bytes();
        let expected = ours(&[bytes]);
        assert_eq!(theirs(&[bytes]).await.as_ref(), Ok(&expected), "{input:?}");
        for size in [1, 2, 3, 7] {
            let split: Vec<&[u8]> = bytes.chunks(size).collect();
            assert_eq!(ours(&split), expected, "ours, chunks of {size}: {input:?}");
            assert_eq!(
                theirs(&split).await.as_ref(),
                Ok(&expected),
                "theirs, chunks of {size}: {input:?}"
            );
        }
    }
}

#[tokio::test]
async fn difference_a_leading_bom_panics_theirs() {
    let input: &[u8] = b"\xEF\xBB\xBFdata: a\n\n";
    assert_eq!(ours(&[input]), [Event::new("message", "a")]);
    for parts in [vec![input], input.chunks(1).collect()] {
        let owned: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
        let task = tokio::spawn(async move {
            let parts: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
            theirs(&parts).await
        });
        let result = task.await;
        assert!(
            result.as_ref().is_err_and(|e| e.is_panic()),
            "eventsource-stream no longer panics on a BOM: {result:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn difference_a_lone_cr_is_held_back_by_theirs() {
    let input: &[u8] = b"data:1\r\r";
    assert_eq!(ours(&[input]), [Event::new("message", "1")]);
    // While the connection stays open, theirs yields nothing ...
    let open = chunks(&[input]).chain(stream::pending());
    let mut source = EventStream::new(open);
    let next = tokio::time::timeout(Duration::from_secs(60), source.next()).await;
    assert!(next.is_err(), "eventsource-stream yielded {next:?}");
    // ... and at the end of the stream the event is lost.
    assert_eq!(theirs(&[input]).await, Ok(vec![]));
}

#[tokio::test]
async fn difference_retry_with_a_plus_sign() {
    let input: &[u8] = b"retry:+5\ndata: a\n\n";
    assert_eq!(ours(&[input]), [Event::new("message", "a")]);
    assert_eq!(
        theirs(&[input]).await,
        Ok(vec![Event::new("message", "a").with_retry(5)])
    );
}

#[tokio::test]
async fn difference_an_id_only_block_does_not_update_their_last_id() {
    let mut parser = Parser::new();
    assert_eq!(parser.feed(b"id: 7\n\n").count(), 0);
    assert_eq!(parser.last_event_id(), "7");

    let mut source = chunks(&[b"id: 7\n\n"]).eventsource();
    assert!(source.next().await.is_none());
    assert_eq!(source.last_event_id(), "");
}

#[tokio::test]
async fn difference_invalid_utf8_is_an_error_for_theirs() {
    let input: &[u8] = b"data: \xFFa\n\n";
    assert_eq!(ours(&[input]), [Event::new("message", "\u{FFFD}a")]);
    let result = theirs(&[input]).await;
    assert!(
        result.as_ref().is_err_and(|e| e.contains("UTF8")),
        "{result:?}"
    );
}
