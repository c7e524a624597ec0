//! The two SSE events of the protocol, `data` and `control`, on the wire.
//!
//! nest's encoder writes `data: value`; the protocol's reference server, and the conformance
//! suite that checks bytes, write `data:value`. Both parse the same; this writes the latter,
//! and keeps it lossless: a line that starts with a space gets the separator space back (a
//! parser drops exactly one), and CR, LF and CRLF each end a line, so a payload cannot open an
//! event of its own.

use bytes::{BufMut, Bytes, BytesMut};

/// One event: `event: <name>`, one `data:` line per line of `data`, a blank line.
pub(crate) fn event(name: &str, data: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + name.len() + 16);
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_u8(b'\n');
    let mut rest = data;
    loop {
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        let line = &rest[..end];
        out.put_slice(if line.starts_with(' ') {
            b"data: "
        } else {
            b"data:"
        });
        out.put_slice(line.as_bytes());
        out.put_u8(b'\n');
        if end == rest.len() {
            break;
        }
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
    out.put_u8(b'\n');
    out.freeze()
}

/// A comment line that keeps proxies from closing an idle connection.
pub(crate) const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

#[cfg(test)]
mod tests {
    use super::event;

    #[test]
    fn lines_cannot_open_events() {
        assert_eq!(
            &event("data", "a\r\n\r\nevent: control\rb\nc")[..],
            b"event: data\ndata:a\ndata:\ndata:event: control\ndata:b\ndata:c\n\n"
        );
        assert_eq!(&event("control", "{}")[..], b"event: control\ndata:{}\n\n");
        assert_eq!(&event("data", " x")[..], b"event: data\ndata:  x\n\n");
        assert_eq!(&event("data", "")[..], b"event: data\ndata:\n\n");
    }
}
