//! The one SSE encoder: `SseEvent` → wire bytes, validated, encoded once and shareable.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::{SseError, SseEvent};

/// An event's wire bytes, encoded once. Cloning is cheap (reference-counted), so one encoded
/// event can be written to any number of streams without re-encoding: each stream's queue holds
/// one pointer to it (an 8-byte slot, so a loop writing it to many streams touches few cache
/// lines per stream).
///
/// # Example
///
/// ```
/// use nest_core::sse::{encode, SseEvent};
///
/// let encoded = encode(&SseEvent::data("line one\nline two")).unwrap();
/// assert_eq!(encoded.as_bytes(), b"data: line one\ndata: line two\n\n");
/// let shared = encoded.clone(); // no copy of the bytes
/// assert_eq!(shared.as_bytes().as_ptr(), encoded.as_bytes().as_ptr());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent(pub(crate) Arc<Bytes>);

impl EncodedEvent {
    /// The wire bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The wire bytes as shared `Bytes`.
    pub fn bytes(&self) -> Bytes {
        Bytes::clone(&self.0)
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes (never true for an encoded event).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn check_line(field: &'static str, value: &str, forbid_nul: bool) -> Result<(), SseError> {
    if value.contains(['\r', '\n']) {
        return Err(SseError::invalid_field(
            field,
            "contains a line break (CR or LF)",
        ));
    }
    if forbid_nul && value.contains('\0') {
        return Err(SseError::invalid_field(
            field,
            "contains NUL, which clients ignore",
        ));
    }
    Ok(())
}

/// The checks of [`encode`] without writing anything: whether the event can be sent (the hub
/// checks an event before it takes a number, and encodes it once the number is known).
///
/// ```
/// use nest_core::sse::{validate, SseEvent};
///
/// assert!(validate(&SseEvent::data("ok")).is_ok());
/// assert_eq!(validate(&SseEvent::data("x").event("a\nb")).unwrap_err().field(), Some("event"));
/// ```
pub fn validate(event: &SseEvent) -> Result<(), SseError> {
    if let Some(err) = &event.json_error {
        return Err(SseError::json(err.clone()));
    }
    if let Some(name) = &event.event {
        check_line("event", name, false)?;
    }
    if let Some(id) = &event.id {
        check_line("id", id, true)?;
    }
    let has_field = event.data.is_some()
        || event.event.is_some()
        || event.id.is_some()
        || event.retry.is_some()
        || event.comment.is_some();
    if !has_field {
        return Err(SseError::empty());
    }
    Ok(())
}

/// Splits on CRLF, CR or LF (CRLF is one break).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\r', '\n']) {
            Some(i) => {
                let skip = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[i + skip..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

fn put_field(buf: &mut BytesMut, name: &[u8], value: &str) {
    buf.put_slice(name);
    buf.put_u8(b':');
    if !value.is_empty() {
        buf.put_u8(b' ');
        buf.put_slice(value.as_bytes());
    }
    buf.put_u8(b'\n');
}

/// Encoding is a method of the event too; it lives here, with the encoder, so that the event
/// type does not depend on its encoding.
impl SseEvent {
    /// Encodes the event into its wire bytes, once; see [`encode`](crate::sse::encode).
    pub fn encode(&self) -> Result<EncodedEvent, SseError> {
        encode(self)
    }
}

/// Encodes an event into its wire format, the only place nest writes it:
///
/// - comment lines first (`: text`), then `event`, `id`, `retry`, one `data:` line per line of the
///   data (lines split at CRLF, CR or LF), and a blank line;
/// - each field is `name: value`; an empty value is written as `name:`;
/// - `retry: 0` is written; an event with only `id` and/or `retry` is allowed;
/// - `event` or `id` with CR or LF, or `id` with NUL, is an [`SseError`] naming the field, and
///   nothing is written: no input can forge a second event or field;
/// - an event with no field at all is an error.
pub fn encode(event: &SseEvent) -> Result<EncodedEvent, SseError> {
    validate(event)?;
    let data_len = event.data.as_ref().map_or(0, |d| d.len() + 16);
    let mut buf = BytesMut::with_capacity(data_len + 64);
    if let Some(comment) = &event.comment {
        for line in lines(comment) {
            buf.put_u8(b':');
            if !line.is_empty() {
                buf.put_u8(b' ');
                buf.put_slice(line.as_bytes());
            }
            buf.put_u8(b'\n');
        }
    }
    if let Some(name) = &event.event {
        put_field(&mut buf, b"event", name);
    }
    if let Some(id) = &event.id {
        put_field(&mut buf, b"id", id);
    }
    if let Some(retry) = event.retry {
        put_field(&mut buf, b"retry", &retry.to_string());
    }
    if let Some(data) = &event.data {
        for line in lines(data) {
            put_field(&mut buf, b"data", line);
        }
    }
    buf.put_u8(b'\n');
    Ok(EncodedEvent(Arc::new(buf.freeze())))
}

/// The keep-alive comment.
pub(crate) const KEEP_ALIVE: &[u8] = b":\n\n";

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn enc(event: SseEvent) -> String {
        String::from_utf8(encode(&event).unwrap().0.to_vec()).unwrap()
    }

    #[test]
    fn text_and_json_data() {
        assert_eq!(enc(SseEvent::data("hello")), "data: hello\n\n");
        assert_eq!(
            enc(serde_json::json!({"hello": "world"}).into()),
            "data: {\"hello\":\"world\"}\n\n"
        );
        assert_eq!(enc(SseEvent::json("a\nb")), "data: \"a\\nb\"\n\n");
    }

    #[test]
    fn multi_line_data_splits_on_lf_cr_and_crlf_once() {
        assert_eq!(enc(SseEvent::data("a\nb")), "data: a\ndata: b\n\n");
        assert_eq!(enc(SseEvent::data("a\rb")), "data: a\ndata: b\n\n");
        assert_eq!(enc(SseEvent::data("a\r\nb")), "data: a\ndata: b\n\n");
        assert_eq!(enc(SseEvent::data("a\n\nb")), "data: a\ndata:\ndata: b\n\n");
        assert_eq!(enc(SseEvent::data("a\n")), "data: a\ndata:\n\n");
        assert_eq!(enc(SseEvent::data("\r\n\r")), "data:\ndata:\ndata:\n\n");
    }

    #[test]
    fn empty_data_is_one_data_line() {
        assert_eq!(enc(SseEvent::data("")), "data:\n\n");
    }

    #[test]
    fn leading_space_in_value_survives() {
        // The parser strips one space after the colon; ours is that one.
        assert_eq!(enc(SseEvent::data(" x")), "data:  x\n\n");
    }

    #[test]
    fn all_fields_in_order() {
        let event = SseEvent::data("d")
            .event("myEvent")
            .id(7)
            .retry_ms(5000)
            .comment("note");
        assert_eq!(
            enc(event),
            ": note\nevent: myEvent\nid: 7\nretry: 5000\ndata: d\n\n"
        );
    }

    #[test]
    fn retry_zero_is_written() {
        assert_eq!(enc(SseEvent::new().retry_ms(0)), "retry: 0\n\n");
        assert_eq!(
            enc(SseEvent::new().retry(Duration::from_millis(1500))),
            "retry: 1500\n\n"
        );
    }

    #[test]
    fn id_only_and_empty_id() {
        assert_eq!(enc(SseEvent::new().id("abc")), "id: abc\n\n");
        assert_eq!(enc(SseEvent::new().id("")), "id:\n\n");
        assert_eq!(enc(SseEvent::new().id(-3)), "id: -3\n\n");
    }

    #[test]
    fn comment_lines() {
        assert_eq!(enc(SseEvent::comment_only("a\nb")), ": a\n: b\n\n");
        assert_eq!(enc(SseEvent::comment_only("")), ":\n\n");
    }

    #[test]
    fn rejects_line_breaks_in_event_and_id() {
        for bad in ["a\nb", "a\rb", "a\r\nb", "\n"] {
            let err = encode(&SseEvent::data("x").event(bad)).unwrap_err();
            assert_eq!(err.field(), Some("event"), "{err}");
            let err = encode(&SseEvent::data("x").id(bad)).unwrap_err();
            assert_eq!(err.field(), Some("id"), "{err}");
        }
        let err = encode(&SseEvent::data("x").id("a\0b")).unwrap_err();
        assert_eq!(err.field(), Some("id"));
        assert!(err.to_string().contains("NUL"));
        // NUL in an event type is harmless and kept.
        assert!(encode(&SseEvent::data("x").event("a\0b")).is_ok());
    }

    #[test]
    fn data_cannot_forge_a_second_event() {
        let wire = enc(SseEvent::data("a\n\nevent: admin\ndata: x"));
        assert_eq!(
            wire,
            "data: a\ndata:\ndata: event: admin\ndata: data: x\n\n"
        );
        assert_eq!(wire.matches("\n\n").count(), 1);
    }

    #[test]
    fn empty_event_and_bad_json_are_errors() {
        assert!(encode(&SseEvent::new()).unwrap_err().is_empty_event());
        let mut map = std::collections::HashMap::new();
        map.insert(vec![1u8], 1);
        assert!(encode(&SseEvent::json(&map)).unwrap_err().is_json());
    }
}
