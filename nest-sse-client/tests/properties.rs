//! Properties of the parser: chunking never changes the result, and no input
//! makes it panic.

use nest_sse_client::parser::{Item, Parser};
use proptest::prelude::*;

/// Streams built from the bytes that matter: field names, separators, every
/// kind of line end, BOM bytes, multi-byte and invalid UTF-8.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let pieces: Vec<&'static [u8]> = vec![
        b"data",
        b"event",
        b"id",
        b"retry",
        b":",
        b" ",
        b"\t",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        b"x",
        b"42",
        b"+5",
        b"\0",
        b"\xEF\xBB\xBF",
        b"\xEF",
        b"\xBB",
        b"\xC3\xA9",
        b"\xF0\x9F\x98\x80",
        b"\xFF",
        b"\xE2\x82",
    ];
    prop::collection::vec(prop::sample::select(pieces), 0..80).prop_map(|p| p.concat())
}

fn parse_chunks(input: &[u8], cuts: &[usize]) -> (Vec<Item>, String, Option<u64>) {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut parser = Parser::new().with_comments(true);
    let mut items = Vec::new();
    let mut start = 0;
    for cut in cuts {
        parser.push(&input[start..cut], &mut items);
        start = cut;
    }
    parser.push(&input[start..], &mut items);
    parser.finish();
    (
        items,
        parser.last_event_id().to_owned(),
        parser.reconnection_time(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_chunk_splits_give_the_same_items(
        input in sse_bytes(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        prop_assert_eq!(parse_chunks(&input, &cuts), parse_chunks(&input, &[]));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_split_the_same(
        input in prop::collection::vec(any::<u8>(), 0..400),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        prop_assert_eq!(parse_chunks(&input, &cuts), parse_chunks(&input, &[]));
    }

    #[test]
    fn byte_at_a_time_is_the_same_as_one_chunk(input in sse_bytes()) {
        let all: Vec<usize> = (0..=input.len()).collect();
        prop_assert_eq!(parse_chunks(&input, &all), parse_chunks(&input, &[]));
    }

    #[test]
    fn events_written_canonically_come_back(
        events in prop::collection::vec(
            ("[a-z]{1,8}", "[^\r\n]{0,20}(\n[^\r\n]{0,20}){0,3}", "[a-z0-9]{0,5}", prop::option::of(0u64..100_000)),
            1..10,
        ),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut wire = String::new();
        for (event, data, id, retry) in &events {
            wire.push_str(&format!("event: {event}\nid: {id}\n"));
            if let Some(retry) = retry {
                wire.push_str(&format!("retry: {retry}\n"));
            }
            for line in data.split('\n') {
                wire.push_str(&format!("data: {line}\n"));
            }
            wire.push('\n');
        }
        let (items, _, _) = parse_chunks(wire.as_bytes(), &cuts);
        let expected: Vec<Item> = events
            .iter()
            .map(|(event, data, id, retry)| {
                Item::Event(nest_sse_client::Event {
                    event: event.clone(),
                    data: data.clone(),
                    id: id.clone(),
                    retry: *retry,
                })
            })
            .collect();
        prop_assert_eq!(items, expected);
    }
}

/// A long line in many chunks comes back whole, however it is cut. That it
/// costs time linear in its length (no rescanning per chunk) is a speed
/// property, measured by the criterion benchmarks rather than asserted here:
/// `cargo bench -p nest-bench --bench long_line` (8 MiB in 1,024 chunks) and
/// `cargo bench -p nest-sse-client --bench parser`.
#[test]
fn a_long_line_in_many_chunks_is_one_event() {
    let mut line = b"data: ".to_vec();
    line.resize(4 << 20, b'x');
    line.extend_from_slice(b"\n\n");
    for chunks in [1, 256, 16_384] {
        let size = line.len().div_ceil(chunks);
        let mut parser = Parser::new();
        let mut items = Vec::new();
        for chunk in line.chunks(size) {
            parser.push(chunk, &mut items);
        }
        let [Item::Event(event)] = &items[..] else {
            panic!("{chunks} chunks: {} items", items.len());
        };
        assert_eq!(
            event.data.len(),
            (4 << 20) - b"data: ".len(),
            "{chunks} chunks"
        );
        assert!(event.data.bytes().all(|b| b == b'x'), "{chunks} chunks");
    }
}
