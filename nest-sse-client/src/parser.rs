//! The one place where the `text/event-stream` wire format is parsed.
//!
//! [`Parser`] implements the WHATWG algorithm ("Server-sent events",
//! § 9.2.5 *Parsing an event stream* and § 9.2.6 *Interpreting an event
//! stream*) incrementally, over byte chunks split anywhere:
//!
//! - UTF-8 is decoded with U+FFFD for invalid bytes, also when a multi-byte
//!   character is split across chunks; exactly one leading BOM is stripped, and
//!   only at the start of the stream (also when it is split).
//! - Lines end at CRLF, LF or a lone CR. A CR at the end of a chunk ends the
//!   line at once; an LF that then starts the next chunk is not an extra line.
//! - Each byte is scanned for a line end once, so a long line arriving in many
//!   small chunks costs time linear in its length. The value of a `data` line
//!   spanning chunks is appended straight to the event's data, so its bytes
//!   are copied once, as when the line arrives in one chunk.
//! - No input makes it panic.
//!
//! # Example
//!
//! ```
//! use nest_sse_client::parser::{Item, Parser};
//!
//! let mut parser = Parser::new().with_comments(true);
//! let mut items = Vec::new();
//! // Chunks may split the stream anywhere, even inside a CRLF.
//! parser.push(b": keep-alive\r", &mut items);
//! parser.push(b"\nevent: greet\nid: 7\nretry: 1500\ndata: hel", &mut items);
//! parser.push(b"lo\ndata: world\n\n", &mut items);
//!
//! assert_eq!(items.len(), 2);
//! assert_eq!(items[0], Item::Comment("keep-alive".into()));
//! let Item::Event(event) = &items[1] else { panic!("expected an event") };
//! assert_eq!(event.event, "greet");
//! assert_eq!(event.data, "hello\nworld");
//! assert_eq!(event.id, "7");
//! assert_eq!(event.retry, Some(1500));
//! assert_eq!(parser.last_event_id(), "7");
//! assert_eq!(parser.reconnection_time(), Some(1500));
//! ```

use std::borrow::Cow;

use crate::event::Event;

/// The UTF-8 byte order mark.
const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// What the parser yields: a dispatched event, or a comment line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// An event dispatched by a blank line.
    Event(Event),
    /// A comment line (one starting with `:`): the text after the colon, with
    /// one leading space removed as for field values. Only yielded when
    /// enabled with [`Parser::with_comments`].
    Comment(String),
}

/// An incremental, spec-exact `text/event-stream` parser.
///
/// Feed it chunks with [`push`](Parser::push) (or [`feed`](Parser::feed)) and
/// call [`finish`](Parser::finish) at the end of the stream. The parser keeps
/// the state the spec keeps across connections — the last event ID and the
/// reconnection time — so one parser can read every connection of an
/// `EventSource`.
#[derive(Debug, Clone)]
pub struct Parser {
    comments: bool,
    /// Where we are in the leading BOM: `Some(n)` = the first `n` bytes of the
    /// stream matched the BOM so far; `None` = the BOM question is settled.
    bom_matched: Option<usize>,
    /// Bytes of the current line not yet terminated (only when a line spans
    /// chunks; lines within one chunk are parsed in place). Empty while
    /// `in_data_value` is set.
    line: Vec<u8>,
    /// The unterminated line is a `data` field whose name, colon and optional
    /// space have been consumed: the bytes up to its end go straight into
    /// `data` instead of `line`, so a long data line is copied once.
    in_data_value: bool,
    /// The previous chunk ended with CR: an LF starting the next chunk belongs
    /// to that line end.
    after_cr: bool,
    // The interpretation buffers of the spec. The data buffer holds bytes,
    // decoded once at dispatch (see `into_string`).
    data: Vec<u8>,
    event_type: String,
    last_event_id_buffer: String,
    block_retry: Option<u64>,
    // State that outlives a stream.
    last_event_id: String,
    reconnection_time: Option<u64>,
    /// Where `feed` collects its output.
    queue: Vec<Item>,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    /// A parser at the start of a stream, with comments ignored.
    #[must_use]
    pub fn new() -> Self {
        Self {
            comments: false,
            bom_matched: Some(0),
            line: Vec::new(),
            in_data_value: false,
            after_cr: false,
            data: Vec::new(),
            event_type: String::new(),
            last_event_id_buffer: String::new(),
            block_retry: None,
            last_event_id: String::new(),
            reconnection_time: None,
            queue: Vec::new(),
        }
    }

    /// Whether comment lines are yielded as [`Item::Comment`] (default: no,
    /// as in a browser). Useful to assert that keep-alives arrive.
    #[must_use]
    pub fn with_comments(mut self, enabled: bool) -> Self {
        self.comments = enabled;
        self
    }

    /// Starts with this last event ID, as an `EventSource` resuming a stream
    /// does (events without an `id` field carry it).
    #[must_use]
    pub fn with_last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = id.into();
        self.last_event_id_buffer.clone_from(&self.last_event_id);
        self
    }

    /// The last event ID: set by a blank line after an `id` field, even when
    /// the block had no data. Sent as `Last-Event-ID` when reconnecting.
    #[must_use]
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time in milliseconds the server asked for with its
    /// last valid `retry` field, if any.
    #[must_use]
    pub fn reconnection_time(&self) -> Option<u64> {
        self.reconnection_time
    }

    /// Parses one chunk, appending what it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Item>) {
        let mut rest = self.strip_bom(chunk);
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(end) = memchr::memchr2(b'\r', b'\n', rest) {
            if self.in_data_value {
                // The end of a data line whose start is already in `data`
                // (only possible for the first line of a chunk).
                self.in_data_value = false;
                self.data.extend_from_slice(&rest[..end]);
                self.data.push(b'\n');
            } else if self.line.is_empty() {
                self.process_line(&rest[..end], out);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&rest[..end]);
                self.process_line(&line, out);
                // Keep the allocation for the next long line.
                line.clear();
                self.line = line;
            }
            let is_cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.hold(rest);
    }

    /// Parses one chunk and returns what it completes.
    pub fn feed(&mut self, chunk: &[u8]) -> impl Iterator<Item = Item> + '_ {
        let mut queue = std::mem::take(&mut self.queue);
        self.push(chunk, &mut queue);
        self.queue = queue;
        self.queue.drain(..)
    }

    /// Ends the stream: an unterminated line and an undispatched event are
    /// discarded, as the spec requires. The parser is then ready for the next
    /// stream (a new connection): a BOM is stripped again, and the last event
    /// ID and reconnection time are kept.
    pub fn finish(&mut self) {
        self.bom_matched = Some(0);
        self.line.clear();
        self.in_data_value = false;
        self.after_cr = false;
        self.data.clear();
        self.event_type.clear();
        self.last_event_id_buffer.clone_from(&self.last_event_id);
        self.block_retry = None;
    }

    /// Removes a BOM at the start of the stream, even one split across chunks.
    fn strip_bom<'a>(&mut self, chunk: &'a [u8]) -> &'a [u8] {
        let Some(matched) = self.bom_matched else {
            return chunk;
        };
        let want = &BOM[matched..];
        let n = want.len().min(chunk.len());
        if chunk[..n] != want[..n] {
            // Not a BOM: the bytes held back so far are ordinary stream bytes.
            self.bom_matched = None;
            self.line.extend_from_slice(&BOM[..matched]);
            return chunk;
        }
        if n == want.len() {
            self.bom_matched = None;
        } else {
            self.bom_matched = Some(matched + n);
        }
        &chunk[n..]
    }

    /// Keeps the unterminated end of a chunk for the next one. Once the line is
    /// known to be a `data` field (`data:` and at least one more byte, which
    /// settles the optional space), its value moves to `data` and the rest of
    /// the line will follow it there.
    fn hold(&mut self, rest: &[u8]) {
        if self.in_data_value {
            self.data.extend_from_slice(rest);
            return;
        }
        self.line.extend_from_slice(rest);
        // A line that is exactly `data:` stays in `line`: whether a space
        // follows is not known yet.
        if let Some(value) = self.line.strip_prefix(b"data:") {
            if !value.is_empty() {
                self.data.extend_from_slice(strip_space(value));
                self.line.clear();
                self.in_data_value = true;
            }
        }
    }

    /// Interprets one line (without its terminator). The line is split on
    /// bytes: the colon and the space are ASCII, so splitting before decoding
    /// gives the same parts as decoding first.
    fn process_line(&mut self, line: &[u8], out: &mut Vec<Item>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => (&line[..colon], strip_space(&line[colon + 1..])),
            None => (line, &[][..]),
        };
        match name {
            // A line starting with a colon is a comment (ignored, by the last
            // arm, unless enabled).
            b"" if self.comments => out.push(Item::Comment(decode(value).into_owned())),
            b"event" => {
                self.event_type.clear();
                self.event_type.push_str(&decode(value));
            }
            b"data" => {
                // One allocation for a first data line, not one for its value
                // and another for the LF.
                self.data.reserve(value.len() + 1);
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            // An id containing NUL is ignored.
            b"id" if !value.contains(&0) => {
                self.last_event_id_buffer.clear();
                self.last_event_id_buffer.push_str(&decode(value));
            }
            b"retry" => {
                if let Some(ms) = parse_retry(value) {
                    self.reconnection_time = Some(ms);
                    self.block_retry = Some(ms);
                }
            }
            _ => {}
        }
    }

    /// The blank-line rule: commit the last event ID, then dispatch unless the
    /// data buffer is empty.
    fn dispatch(&mut self, out: &mut Vec<Item>) {
        self.last_event_id.clone_from(&self.last_event_id_buffer);
        let retry = self.block_retry.take();
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with(b"\n") {
            data.pop();
        }
        let event = if self.event_type.is_empty() {
            String::from("message")
        } else {
            std::mem::take(&mut self.event_type)
        };
        out.push(Item::Event(Event {
            event,
            data: into_string(data),
            id: self.last_event_id.clone(),
            retry,
        }));
    }
}

/// UTF-8 decoding with U+FFFD for invalid sequences. Decoding line by line (or
/// field by field) is the same as decoding the whole stream: CR, LF, the colon
/// and the space are ASCII, so they never sit inside a multi-byte character,
/// and they end any incomplete one.
fn decode(bytes: &[u8]) -> Cow<'_, str> {
    // `from_utf8` validates valid text (ASCII above all) many times faster
    // than `from_utf8_lossy`, which walks it byte by byte.
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// [`decode`] for the data buffer, taking it without a copy when it is valid.
/// Decoding the joined data lines once equals decoding each line: they are
/// joined with LF. The rare invalid buffer is validated a second time.
fn into_string(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(string) => string,
        Err(error) => decode(error.as_bytes()).into_owned(),
    }
}

/// A field value without its one optional leading space.
fn strip_space(value: &[u8]) -> &[u8] {
    value.strip_prefix(b" ").unwrap_or(value)
}

/// A `retry` value counts only when it is one or more ASCII digits; a value too
/// large for `u64` saturates (it is still a valid integer for the spec).
fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |acc, &b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `chunks` as one stream (comments on) and ends it.
    fn parse(chunks: &[&[u8]]) -> Vec<Item> {
        let mut parser = Parser::new().with_comments(true);
        let mut items = Vec::new();
        for chunk in chunks {
            parser.push(chunk, &mut items);
        }
        parser.finish();
        items
    }

    fn msg(data: &str) -> Item {
        Item::Event(Event::new("message", data))
    }

    /// Streams whose data lines end in every way, start with or without the
    /// optional space, lack the colon, have a longer name, carry (invalid)
    /// UTF-8, or follow a BOM.
    const STREAMS: &[&[u8]] = &[
        b"data: hello\r\ndata:\r\ndata:x\rdata\ndata:  two\r\n\r\n",
        b"\xEF\xBB\xBFdata: a\n\n",
        b"dataX: no\ndata: yes\ndat\ndata\rdata :no\n\n",
        b"data: \xC3\xA9\xE2\x82\rdata:\xFF\r\n\r",
        b"event: e\rid: 1\rretry: 5\r: c\rdata: d\r\r",
        b"data: \n\ndata:  \r\n\r\n",
    ];

    #[test]
    fn the_streams_parse_as_the_spec_says() {
        let results: Vec<Vec<Item>> = STREAMS.iter().map(|s| parse(&[s])).collect();
        let event = Event::new("e", "d").with_id("1").with_retry(5);
        assert_eq!(
            results,
            [
                vec![msg("hello\n\nx\n\n two")],
                vec![msg("a")],
                vec![msg("yes\n")],
                vec![msg("é\u{FFFD}\n\u{FFFD}")],
                vec![Item::Comment("c".into()), Item::Event(event)],
                vec![msg(""), msg(" ")],
            ]
        );
    }

    /// Every way to cut each stream into three chunks (so also into two, and
    /// between `data:` and the space, between CR and LF, inside the BOM and
    /// inside a character) gives the items of the unsplit stream.
    #[test]
    fn data_lines_split_anywhere_give_the_same_items() {
        for stream in STREAMS {
            let whole = parse(&[stream]);
            for i in 0..=stream.len() {
                for j in i..=stream.len() {
                    let chunks = [&stream[..i], &stream[i..j], &stream[j..]];
                    assert_eq!(parse(&chunks), whole, "cut at {i} and {j}: {stream:?}");
                }
            }
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            assert_eq!(parse(&bytes), whole, "byte by byte: {stream:?}");
        }
    }

    #[test]
    fn a_long_data_line_in_many_chunks() {
        let long: String = "abc€ \t:x".repeat(100_000);
        let mut stream = format!("id: 9\ndata: {long}\r\ndata:{long}").into_bytes();
        stream.extend_from_slice(b"\r\n\r\n");
        let expected = Event::new("message", format!("{long}\n{long}")).with_id("9");
        for size in [1, 3, 4096, 65_537, stream.len()] {
            let chunks: Vec<&[u8]> = stream.chunks(size).collect();
            assert_eq!(
                parse(&chunks),
                [Item::Event(expected.clone())],
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn invalid_utf8_split_across_chunks_is_replaced_as_before() {
        let chunks: [&[u8]; 6] = [
            b"data: a\xE2\x82",
            b"\xACb\xFF",
            b"\xE2\n",
            b"data: \xF0\x9F",
            b"\x98",
            b"\n\n",
        ];
        // As when each line is decoded on its own.
        let lines: [&[u8]; 2] = [b"a\xE2\x82\xACb\xFF\xE2", b"\xF0\x9F\x98"];
        let expected = lines.map(String::from_utf8_lossy).join("\n");
        assert_eq!(expected, "a€b\u{FFFD}\u{FFFD}\n\u{FFFD}");
        assert_eq!(parse(&chunks), [msg(&expected)]);
        assert_eq!(parse(&[&chunks.concat()]), [msg(&expected)]);
    }

    #[test]
    fn finish_discards_a_data_line_in_progress() {
        // Cut inside the value, after the space, and right after the colon
        // (then the line still waits in `line`).
        for pending in [&b"data: par"[..], b"data: ", b"data:"] {
            let mut parser = Parser::new();
            let mut items = Vec::new();
            parser.push(b"data: a\n\ndata: b\n", &mut items);
            parser.push(pending, &mut items);
            parser.finish();
            // Nothing of the discarded line may leak into the next stream.
            parser.push(b"event: e\ndata: c\n\n", &mut items);
            assert_eq!(
                items,
                [msg("a"), Item::Event(Event::new("e", "c"))],
                "{pending:?}"
            );
        }
    }
}
