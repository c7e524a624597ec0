//! Reading the protocol's headers and query parameters; each malformed value is a 400 that
//! names it.

use bytes::Bytes;
use http::HeaderMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::Problem;
use crate::offset::{Offset, ReadFrom};
use crate::state::{AppendRequest, CreateRequest, ForkRequest, ProducerTuple};

/// The longest `Stream-Seq` and `Producer-Id` accepted, in bytes.
pub(crate) const MAX_TOKEN: usize = 256;

/// The largest integer JavaScript represents exactly: the bound on producer epochs and seqs.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Problem> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| Problem::bad_request(format!("{name} is not visible ASCII"))),
    }
}

/// A non-negative decimal integer without sign, leading zeros, point or exponent.
fn strict_uint(name: &str, value: &str, max: u64) -> Result<u64, Problem> {
    let bad = || {
        Problem::bad_request(format!(
            "{name} must be a non-negative integer without sign or leading zeros, at most {max}; got {value:?}"
        ))
    };
    if value.is_empty()
        || !value.bytes().all(|b| b.is_ascii_digit())
        || (value.len() > 1 && value.starts_with('0'))
    {
        return Err(bad());
    }
    value
        .parse::<u64>()
        .ok()
        .filter(|v| *v <= max)
        .ok_or_else(bad)
}

/// `Stream-Closed` counts only when it is exactly `true` (any case).
pub(crate) fn closed_flag(headers: &HeaderMap) -> bool {
    headers
        .get("stream-closed")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn content_type(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    Ok(text(headers, "content-type")?
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned))
}

/// A `PUT`'s headers and body.
pub(crate) fn create(headers: &HeaderMap, body: Bytes) -> Result<CreateRequest, Problem> {
    let ttl = text(headers, "stream-ttl")?
        .map(|v| strict_uint("Stream-TTL", v.trim(), 100 * 365 * 24 * 3600))
        .transpose()?;
    let expires_at = match text(headers, "stream-expires-at")? {
        None => None,
        Some(v) => {
            let at = OffsetDateTime::parse(v.trim(), &Rfc3339).map_err(|e| {
                Problem::bad_request(format!(
                    "Stream-Expires-At is not an RFC 3339 timestamp: {e}"
                ))
            })?;
            Some((
                v.trim().to_owned(),
                (at.unix_timestamp_nanos() / 1_000_000) as i64,
            ))
        }
    };
    if ttl.is_some() && expires_at.is_some() {
        return Err(Problem::bad_request(
            "Stream-TTL and Stream-Expires-At exclude each other; send one",
        ));
    }
    let source = text(headers, "stream-forked-from")?;
    let offset = text(headers, "stream-fork-offset")?;
    let sub = text(headers, "stream-fork-sub-offset")?;
    let fork = match source {
        None => {
            if offset.is_some() || sub.is_some() {
                return Err(Problem::bad_request(
                    "Stream-Fork-Offset and Stream-Fork-Sub-Offset need Stream-Forked-From",
                ));
            }
            None
        }
        Some(source) => {
            let offset = offset
                .map(|v| {
                    Offset::parse(v.trim()).map(|o| o.0).ok_or_else(|| {
                        Problem::bad_request(format!(
                            "Stream-Fork-Offset {v:?} is not an offset of this server"
                        ))
                    })
                })
                .transpose()?;
            let sub = sub
                .map(|v| strict_uint("Stream-Fork-Sub-Offset", v.trim(), Offset::MAX))
                .transpose()?
                .unwrap_or(0);
            if sub > 0 && offset.is_none() {
                return Err(Problem::bad_request(
                    "Stream-Fork-Sub-Offset needs Stream-Fork-Offset",
                ));
            }
            Some(ForkRequest {
                source: source.trim().to_owned(),
                offset,
                sub,
            })
        }
    };
    Ok(CreateRequest {
        content_type: content_type(headers)?,
        ttl,
        expires_at,
        closed: closed_flag(headers),
        fork,
        body,
    })
}

/// A `POST`'s headers and body.
pub(crate) fn append(headers: &HeaderMap, body: Bytes) -> Result<AppendRequest, Problem> {
    let seq = text(headers, "stream-seq")?.map(str::to_owned);
    if seq.as_ref().is_some_and(|s| s.len() > MAX_TOKEN) {
        return Err(Problem::bad_request(format!(
            "Stream-Seq is longer than {MAX_TOKEN} bytes"
        )));
    }
    let id = text(headers, "producer-id")?;
    let epoch = text(headers, "producer-epoch")?;
    let pseq = text(headers, "producer-seq")?;
    let producer =
        match (id, epoch, pseq) {
            (None, None, None) => None,
            (Some(id), Some(epoch), Some(seq)) => {
                let id = id.trim();
                if id.is_empty() || id.len() > MAX_TOKEN {
                    return Err(Problem::bad_request(format!(
                        "Producer-Id must be 1 to {MAX_TOKEN} bytes"
                    )));
                }
                Some(ProducerTuple {
                    id: id.to_owned(),
                    epoch: strict_uint("Producer-Epoch", epoch.trim(), MAX_SAFE_INTEGER)?,
                    seq: strict_uint("Producer-Seq", seq.trim(), MAX_SAFE_INTEGER)?,
                })
            }
            _ => return Err(Problem::bad_request(
                "Producer-Id, Producer-Epoch and Producer-Seq go together: send all three or none",
            )),
        };
    Ok(AppendRequest {
        content_type: content_type(headers)?,
        seq,
        producer,
        close: closed_flag(headers),
        body,
    })
}

/// How a `GET` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Live {
    CatchUp,
    LongPoll,
    Sse,
}

/// A `GET`'s query.
#[derive(Debug)]
pub(crate) struct ReadQuery {
    pub(crate) from: ReadFrom,
    pub(crate) live: Live,
    pub(crate) cursor: Option<String>,
}

/// Parses `offset`, `live` and `cursor`; other parameters are ignored (extensions).
pub(crate) fn read_query(query: Option<&str>) -> Result<ReadQuery, Problem> {
    let mut offset = None;
    let mut live = None;
    let mut cursor = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value).ok_or_else(|| {
            Problem::bad_request(format!(
                "query parameter {key} is not valid percent-encoded UTF-8"
            ))
        })?;
        let slot = match key {
            "offset" => &mut offset,
            "live" => &mut live,
            "cursor" => &mut cursor,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(Problem::bad_request(format!(
                "query parameter {key} appears twice"
            )));
        }
    }
    let live = match live.as_deref() {
        None => Live::CatchUp,
        Some("long-poll") => Live::LongPoll,
        Some("sse") => Live::Sse,
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "live={other:?} is not a read mode (long-poll or sse)"
            )))
        }
    };
    let from = match offset.as_deref() {
        None if live != Live::CatchUp => {
            return Err(Problem::bad_request("live reads need an offset (-1 for the beginning)"))
        }
        None => ReadFrom::Start,
        Some(text) => ReadFrom::parse(text).ok_or_else(|| {
            Problem::bad_request(format!(
                "offset {text:?} is malformed: use -1, now, or a Stream-Next-Offset this server sent"
            ))
        })?,
    };
    Ok(ReadQuery { from, live, cursor })
}

fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = value.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_a_strict_integer() {
        for bad in ["abc", "-1", "+3600", "03600", "3600.0", "3.6e3", ""] {
            let mut headers = HeaderMap::new();
            headers.insert("stream-ttl", bad.parse().unwrap());
            let err = create(&headers, Bytes::new()).unwrap_err();
            assert!(err.message.contains("Stream-TTL"), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn query_rejects_duplicates_and_bad_offsets() {
        assert!(read_query(Some("offset=a&offset=b")).is_err());
        assert!(read_query(Some("offset=")).is_err());
        assert!(read_query(Some("live=sse")).is_err());
        let q = read_query(Some("offset=now&live=long-poll&cursor=5&x=1")).unwrap();
        assert_eq!(
            (q.from, q.live, q.cursor.as_deref()),
            (ReadFrom::Now, Live::LongPoll, Some("5"))
        );
    }
}
