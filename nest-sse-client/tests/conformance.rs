//! Conformance of the parser with the WHATWG "Server-sent events" parsing and
//! interpretation rules. Every case is fed in one chunk, one byte at a time and
//! split at every position, and all three must agree.

use nest_sse_client::parser::{Item, Parser};
use nest_sse_client::Event;

/// What a stream leaves behind: the items (comments enabled), the last event
/// ID and the reconnection time.
#[derive(Debug, PartialEq)]
struct Outcome {
    items: Vec<Item>,
    last_event_id: String,
    reconnection_time: Option<u64>,
}

fn run(chunks: &[&[u8]]) -> Outcome {
    let mut parser = Parser::new().with_comments(true);
    let mut items = Vec::new();
    for chunk in chunks {
        parser.push(chunk, &mut items);
    }
    // Nothing may be held back until the end of the stream: items are
    // collected before `finish`, which only discards.
    parser.finish();
    Outcome {
        items,
        last_event_id: parser.last_event_id().to_owned(),
        reconnection_time: parser.reconnection_time(),
    }
}

/// Parses `input` whole, byte by byte and split at every position.
fn parse(input: &[u8]) -> Outcome {
    let whole = run(&[input]);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&bytes), whole, "byte by byte: {input:?}");
    for at in 0..=input.len() {
        let (a, b) = input.split_at(at);
        assert_eq!(run(&[a, b]), whole, "split at {at}: {input:?}");
    }
    whole
}

fn events(input: &[u8]) -> Vec<Event> {
    parse(input)
        .items
        .into_iter()
        .filter_map(|item| match item {
            Item::Event(event) => Some(event),
            Item::Comment(_) => None,
        })
        .collect()
}

fn ev(event: &str, data: &str, id: &str) -> Event {
    Event::new(event, data).with_id(id)
}

fn msg(data: &str) -> Event {
    ev("message", data, "")
}

// ===== the spec's examples =====

#[test]
fn spec_example_stock_ticker() {
    assert_eq!(
        events(b"data: YHOO\ndata: +2\ndata: 10\n\n"),
        [msg("YHOO\n+2\n10")]
    );
}

#[test]
fn spec_example_four_blocks() {
    let out = parse(
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
    );
    assert_eq!(
        out.items,
        [
            Item::Comment("test stream".into()),
            Item::Event(ev("message", "first event", "1")),
            Item::Event(ev("message", "second event", "")),
            Item::Event(ev("message", " third event", "")),
        ]
    );
    assert_eq!(out.last_event_id, "");
}

#[test]
fn spec_example_empty_data_fields() {
    // Two events, the first with empty data, the second with one LF; the
    // last block is unterminated and is discarded.
    assert_eq!(events(b"data\n\ndata\ndata\n\ndata:"), [msg(""), msg("\n")]);
}

#[test]
fn spec_example_space_after_colon_is_optional() {
    assert_eq!(
        events(b"data:test\n\ndata: test\n\n"),
        [msg("test"), msg("test")]
    );
}

#[test]
fn spec_example_event_types() {
    assert_eq!(
        events(b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n"),
        [
            ev("add", "73857293", ""),
            ev("remove", "2153", ""),
            ev("add", "113411", "")
        ]
    );
}

// ===== BOM =====

#[test]
fn one_leading_bom_is_stripped() {
    assert_eq!(events(b"\xEF\xBB\xBFdata: a\n\n"), [msg("a")]);
}

#[test]
fn a_second_bom_is_part_of_the_first_field_name() {
    // "\u{FEFF}data" is an unknown field: no event.
    assert_eq!(events(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n"), []);
    assert_eq!(events(b"\xEF\xBB\xBF\xEF\xBB\xBF\ndata: a\n\n"), [msg("a")]);
}

#[test]
fn a_bom_after_the_start_is_not_stripped() {
    assert_eq!(events(b"data: a\n\n\xEF\xBB\xBFdata: b\n\n"), [msg("a")]);
    assert_eq!(events(b"data: \xEF\xBB\xBFa\n\n"), [msg("\u{FEFF}a")]);
}

#[test]
fn a_partial_bom_is_decoded_as_invalid_utf8() {
    assert_eq!(events(b"\xEF\xBBdata: a\n\n"), []);
    assert_eq!(events(b"\xEF\xBB\ndata: a\n\n"), [msg("a")]);
    assert_eq!(events(b"\xEFdata: a\n\n"), []);
}

#[test]
fn each_stream_may_start_with_a_bom() {
    let mut parser = Parser::new();
    let mut items = Vec::new();
    parser.push(b"\xEF\xBB", &mut items);
    parser.push(b"\xBFdata: a\n\n", &mut items);
    parser.finish();
    parser.push(b"\xEF", &mut items);
    parser.push(b"\xBB\xBFdata: b\n\n", &mut items);
    assert_eq!(items, [Item::Event(msg("a")), Item::Event(msg("b"))]);
}

// ===== line ends =====

#[test]
fn lf_cr_and_crlf_end_lines() {
    assert_eq!(
        events(b"data: a\r\rdata: b\r\n\r\ndata: c\n\ndata: d\r\n\ndata: e\n\r"),
        [msg("a"), msg("b"), msg("c"), msg("d"), msg("e")]
    );
}

#[test]
fn lf_then_cr_is_two_line_ends() {
    assert_eq!(events(b"data: a\n\rdata: b\n\n"), [msg("a"), msg("b")]);
}

#[test]
fn crlf_inside_a_block_is_one_line_end() {
    assert_eq!(events(b"data: a\r\ndata: b\r\n\r\n"), [msg("a\nb")]);
}

#[test]
fn a_lone_cr_dispatches_at_once() {
    let mut parser = Parser::new();
    let items: Vec<Item> = parser.feed(b"data:1\r\r").collect();
    assert_eq!(items, [Item::Event(msg("1"))]);
}

#[test]
fn cr_at_chunk_end_then_lf_is_not_an_empty_line() {
    let mut parser = Parser::new();
    let mut items = Vec::new();
    parser.push(b"data: a\r", &mut items);
    parser.push(b"", &mut items);
    parser.push(b"\ndata: b\r", &mut items);
    parser.push(b"\n\r", &mut items);
    assert_eq!(items, [Item::Event(msg("a\nb"))]);
}

// ===== comments =====

#[test]
fn comments_are_observable_and_do_not_break_blocks() {
    let out = parse(b":\n: keep-alive\n:no space\n:  two\ndata: a\n: in between\ndata: b\n\n");
    assert_eq!(
        out.items,
        [
            Item::Comment(String::new()),
            Item::Comment("keep-alive".into()),
            Item::Comment("no space".into()),
            Item::Comment(" two".into()),
            Item::Comment("in between".into()),
            Item::Event(msg("a\nb")),
        ]
    );
}

#[test]
fn comments_with_nul_and_long_comments() {
    let out = parse(b": a\0b\ndata: x\n\n");
    assert_eq!(
        out.items,
        [Item::Comment("a\0b".into()), Item::Event(msg("x"))]
    );
    let long = format!(":{}\ndata: y\n\n", "c".repeat(100_000));
    let mut parser = Parser::new().with_comments(true);
    let items: Vec<Item> = long
        .as_bytes()
        .chunks(7)
        .flat_map(|chunk| parser.feed(chunk).collect::<Vec<_>>())
        .collect();
    assert_eq!(
        items,
        [Item::Comment("c".repeat(100_000)), Item::Event(msg("y"))]
    );
}

#[test]
fn comments_are_ignored_by_default() {
    let mut parser = Parser::new();
    let items: Vec<Item> = parser.feed(b": hi\ndata: x\n\n").collect();
    assert_eq!(items, [Item::Event(msg("x"))]);
}

// ===== fields =====

#[test]
fn the_first_colon_splits_name_and_value() {
    assert_eq!(events(b"data:a:b: c\n\n"), [msg("a:b: c")]);
}

#[test]
fn only_one_leading_space_is_removed_and_tabs_are_kept() {
    assert_eq!(
        events(b"data:  two\n\ndata:\ttab\n\ndata: \t mix \n\n"),
        [msg(" two"), msg("\ttab"), msg("\t mix ")]
    );
}

#[test]
fn names_are_exact_and_case_sensitive() {
    assert_eq!(
        events(b"Data: a\n\nDATA: b\n\n data: c\n\ndata : d\n\n\tdata: e\n\n"),
        []
    );
    assert_eq!(
        events(b"Event: x\nID: 3\nRetry: 5\ndata: a\n\n"),
        [msg("a")]
    );
}

#[test]
fn unknown_fields_are_ignored() {
    assert_eq!(events(b"foo: bar\ndata: a\nbaz\ndata2: b\n\n"), [msg("a")]);
}

#[test]
fn a_field_without_colon_has_an_empty_value() {
    assert_eq!(events(b"event: x\nevent\ndata: a\n\n"), [msg("a")]);
}

#[test]
fn event_type_defaults_to_message_and_resets_each_block() {
    assert_eq!(
        events(b"event: \ndata: a\n\nevent: x\ndata: b\n\ndata: c\n\nevent: y\n\ndata: d\n\n"),
        [msg("a"), ev("x", "b", ""), msg("c"), msg("d")]
    );
}

#[test]
fn the_last_event_field_wins() {
    assert_eq!(
        events(b"event: a\nevent: b\ndata: x\n\n"),
        [ev("b", "x", "")]
    );
}

// ===== id =====

#[test]
fn id_containing_nul_is_ignored() {
    let out = parse(b"id: 5\ndata: x\n\nid: 6\0\ndata: y\n\n");
    assert_eq!(
        out.items,
        [
            Item::Event(ev("message", "x", "5")),
            Item::Event(ev("message", "y", "5"))
        ]
    );
    assert_eq!(out.last_event_id, "5");
}

#[test]
fn an_id_only_block_updates_the_last_event_id() {
    let out = parse(b"id: 7\n\n");
    assert_eq!(out.items, []);
    assert_eq!(out.last_event_id, "7");
    assert_eq!(events(b"id: 7\n\ndata: x\n\n"), [ev("message", "x", "7")]);
}

#[test]
fn an_empty_id_resets_the_last_event_id() {
    let out = parse(b"id: 1\n\nid\n\n");
    assert_eq!(out.last_event_id, "");
    let out = parse(b"id: 1\n\nid:\ndata: x\n\n");
    assert_eq!(out.items, [Item::Event(msg("x"))]);
}

#[test]
fn id_keeps_inner_and_extra_spaces() {
    assert_eq!(
        events(b"id:  a b \ndata: x\n\n"),
        [ev("message", "x", " a b ")]
    );
}

#[test]
fn the_id_persists_across_blocks_and_streams() {
    let mut parser = Parser::new().with_last_event_id("41");
    let mut items = Vec::new();
    parser.push(
        b"data: a\n\nid: 42\ndata: b\n\ndata: c\n\nid: 43\ndata: cut",
        &mut items,
    );
    parser.finish();
    assert_eq!(parser.last_event_id(), "42");
    parser.push(b"data: d\n\n", &mut items);
    let ids: Vec<&str> = items
        .iter()
        .map(|item| match item {
            Item::Event(e) => e.id.as_str(),
            Item::Comment(_) => "comment",
        })
        .collect();
    assert_eq!(ids, ["41", "42", "42", "42"]);
}

// ===== retry =====

#[test]
fn retry_with_ascii_digits_sets_the_reconnection_time() {
    let out = parse(b"retry: 1500\ndata: a\n\ndata: b\n\n");
    assert_eq!(
        out.items,
        [
            Item::Event(msg("a").with_retry(1500)),
            Item::Event(msg("b"))
        ]
    );
    assert_eq!(out.reconnection_time, Some(1500));
    let out = parse(b"retry:0\n\n");
    assert_eq!(out.reconnection_time, Some(0));
    assert_eq!(out.items, []);
}

#[test]
fn retry_other_than_digits_is_ignored() {
    for value in [
        "+5",
        "-5",
        "1.5",
        "10ms",
        "",
        "  100",
        " 100 ",
        "1e3",
        "0x10",
        "\u{661}\u{662}",
        "５",
    ] {
        let input = format!("retry:{value}\ndata: a\n\n");
        let out = parse(input.as_bytes());
        assert_eq!(out.items, [Item::Event(msg("a"))], "retry:{value}");
        assert_eq!(out.reconnection_time, None, "retry:{value}");
    }
}

#[test]
fn retry_keeps_the_last_valid_value() {
    let out = parse(b"retry: 100\n\nretry: x\n\nretry: 200\nretry: +3\ndata: a\n\n");
    assert_eq!(out.reconnection_time, Some(200));
    assert_eq!(out.items, [Item::Event(msg("a").with_retry(200))]);
}

#[test]
fn a_huge_retry_saturates() {
    let out = parse(b"retry: 99999999999999999999999999\n\n");
    assert_eq!(out.reconnection_time, Some(u64::MAX));
}

// ===== data and dispatch =====

#[test]
fn empty_data_is_an_event_but_no_data_is_not() {
    assert_eq!(events(b"data:\n\n"), [msg("")]);
    assert_eq!(events(b"data\ndata\n\n"), [msg("\n")]);
    assert_eq!(events(b"event: x\n\n\n\n"), []);
}

#[test]
fn only_one_trailing_lf_is_removed() {
    assert_eq!(events(b"data: a\ndata:\n\n"), [msg("a\n")]);
}

#[test]
fn an_unterminated_event_at_the_end_is_discarded() {
    for input in [
        &b"data: x"[..],
        b"data: x\n",
        b"data: x\r",
        b"data: x\r\n",
        b"id: 9\ndata: x\n",
    ] {
        let out = parse(input);
        assert_eq!(out.items, [], "{input:?}");
        assert_eq!(out.last_event_id, "", "{input:?}");
    }
}

// ===== UTF-8 =====

#[test]
fn multibyte_characters_split_anywhere() {
    assert_eq!(
        events("data: é€😀 ü\n\nevent: ✓\ndata: x\n\n".as_bytes()),
        [msg("é€😀 ü"), ev("✓", "x", "")]
    );
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    assert_eq!(events(b"data: \xFF\xFEa\n\n"), [msg("\u{FFFD}\u{FFFD}a")]);
    // A truncated sequence is one U+FFFD (its maximal subpart) ...
    assert_eq!(events(b"data: \xF0\x9F\x98\n\n"), [msg("\u{FFFD}")]);
    assert_eq!(events(b"data: \xE2\x82a\n\n"), [msg("\u{FFFD}a")]);
    // ... overlong forms and surrogates are one per byte.
    assert_eq!(events(b"data: \xC0\xAF\n\n"), [msg("\u{FFFD}\u{FFFD}")]);
    assert_eq!(
        events(b"data: \xED\xA0\x80\n\n"),
        [msg("\u{FFFD}\u{FFFD}\u{FFFD}")]
    );
    // A line end ends an incomplete character.
    assert_eq!(events(b"data: \xE2\ndata: b\n\n"), [msg("\u{FFFD}\nb")]);
    // Invalid bytes in a field name make it unknown.
    assert_eq!(events(b"dat\xFFa: x\n\n"), []);
}

#[test]
fn the_id_and_event_are_decoded_too() {
    assert_eq!(
        events(b"id: \xFF\nevent: \xC3\xA9\ndata: x\n\n"),
        [ev("é", "x", "\u{FFFD}")]
    );
}

// ===== the feed iterator =====

#[test]
fn feed_yields_what_each_chunk_completes() {
    let mut parser = Parser::default();
    assert_eq!(parser.feed(b"data: a\n\ndata: b").count(), 1);
    assert_eq!(parser.feed(b"\n").count(), 0);
    assert_eq!(
        parser.feed(b"\n").collect::<Vec<_>>(),
        [Item::Event(msg("b"))]
    );
}
