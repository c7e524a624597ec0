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
//!   small chunks costs time linear in its length.
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
    /// chunks; lines within one chunk are parsed in place).
    line: Vec<u8>,
    /// The previous chunk ended with CR: an LF starting the next chunk belongs
    /// to that line end.
    after_cr: bool,
    // The interpretation buffers of the spec.
    data: String,
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
            after_cr: false,
            data: String::new(),
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
            if self.line.is_empty() {
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
        self.line.extend_from_slice(rest);
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

    /// Interprets one line (without its terminator).
    fn process_line(&mut self, line: &[u8], out: &mut Vec<Item>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        let line = decode(line);
        if let Some(comment) = line.strip_prefix(':') {
            if self.comments {
                let comment = comment.strip_prefix(' ').unwrap_or(comment);
                out.push(Item::Comment(comment.to_owned()));
            }
            return;
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match name {
            "event" => value.clone_into(&mut self.event_type),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            // An id containing NUL is ignored.
            "id" if !value.contains('\0') => value.clone_into(&mut self.last_event_id_buffer),
            "retry" => {
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
        if data.ends_with('\n') {
            data.pop();
        }
        let event = if self.event_type.is_empty() {
            String::from("message")
        } else {
            std::mem::take(&mut self.event_type)
        };
        out.push(Item::Event(Event {
            event,
            data,
            id: self.last_event_id.clone(),
            retry,
        }));
    }
}

/// UTF-8 decoding with U+FFFD for invalid sequences. Decoding line by line is
/// the same as decoding the whole stream: CR and LF are ASCII, so they never
/// sit inside a multi-byte character, and they end any incomplete one.
fn decode(line: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(line)
}

/// A `retry` value counts only when it is one or more ASCII digits; a value too
/// large for `u64` saturates (it is still a valid integer for the spec).
fn parse_retry(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}
