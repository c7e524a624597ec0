//! Property: any event nest-core accepts, encoded by nest-core and parsed by nest-sse-client with
//! random chunk splits, comes back equal (line breaks as LF). The encoder and the parser are the
//! only two places that write and read the wire format, so this ties them together.

use nest::sse::{encode, SseEvent};
use nest::sse_client::parser::{Item, Parser};
use proptest::prelude::*;

/// Text with the characters that matter: line breaks of every kind, colons, spaces, NUL, BOM,
/// multi-byte characters.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("\n".to_owned()),
            Just("\r".to_owned()),
            Just("\r\n".to_owned()),
            Just(":".to_owned()),
            Just(" ".to_owned()),
            Just("\0".to_owned()),
            Just("\u{feff}".to_owned()),
            Just("é漢🎉".to_owned()),
            "[a-z]{1,5}",
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

fn line() -> impl Strategy<Value = String> {
    text().prop_map(|t| t.replace(['\r', '\n'], ""))
}

#[derive(Debug, Clone)]
struct Spec {
    data: Option<String>,
    event: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        proptest::option::of(text()),
        proptest::option::of(line()),
        proptest::option::of(line().prop_map(|l| l.replace('\0', ""))),
        proptest::option::of(0u64..10_000_000),
    )
        .prop_map(|(data, event, id, retry)| Spec {
            data,
            event,
            id,
            retry,
        })
}

fn to_event(spec: &Spec) -> SseEvent {
    let mut event = SseEvent::new();
    if let Some(data) = &spec.data {
        event = event.with_data(data.clone());
    }
    if let Some(name) = &spec.event {
        event = event.event(name.clone());
    }
    if let Some(id) = &spec.id {
        event = event.id(id.clone());
    }
    if let Some(retry) = spec.retry {
        event = event.retry_ms(retry);
    }
    event
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encoded_events_parse_back_equal(specs in proptest::collection::vec(spec(), 1..6), splits in proptest::collection::vec(any::<usize>(), 0..12)) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        let mut last_id = String::new();
        for spec in &specs {
            let Ok(encoded) = encode(&to_event(spec)) else {
                // Only an event with no field at all is refused here.
                prop_assert!(spec.data.is_none() && spec.event.is_none() && spec.id.is_none() && spec.retry.is_none());
                continue;
            };
            wire.extend_from_slice(encoded.as_bytes());
            if let Some(id) = &spec.id {
                last_id = id.clone();
            }
            if let Some(data) = &spec.data {
                let data = data.replace("\r\n", "\n").replace('\r', "\n");
                let event = spec.event.clone().filter(|e| !e.is_empty()).unwrap_or_else(|| "message".to_owned());
                expected.push((event, data, last_id.clone(), spec.retry));
            }
        }
        let mut cuts: Vec<usize> = splits.iter().map(|s| s % (wire.len() + 1)).collect();
        cuts.sort_unstable();
        let mut parser = Parser::new();
        let mut got = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([wire.len()]) {
            for item in parser.feed(&wire[start..cut]) {
                if let Item::Event(e) = item {
                    got.push((e.event, e.data, e.id, e.retry));
                }
            }
            start = cut;
        }
        prop_assert_eq!(got, expected);
    }
}
