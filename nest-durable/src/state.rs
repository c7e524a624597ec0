//! The protocol's rules on one stream, as pure functions on its metadata: what a create, an
//! append or a delete does, or which 4xx it is. Both stores run exactly these functions (the
//! memory store under a lock, the Redis store inside a compare-and-set), so they cannot differ.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::config::DurableConfig;
use crate::error::Problem;
use crate::offset::Offset;

/// One stored unit: a JSON message, or the bytes of one append.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub(crate) start: u64,
    pub(crate) data: Bytes,
}

impl Chunk {
    /// The position after this chunk: one message in JSON mode, its bytes otherwise.
    pub(crate) fn end(&self, json: bool) -> u64 {
        self.start + if json { 1 } else { self.data.len() as u64 }
    }
}

/// An idempotent producer's `(id, epoch, seq)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProducerTuple {
    pub(crate) id: String,
    pub(crate) epoch: u64,
    pub(crate) seq: u64,
}

/// What a stream remembers of a producer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProducerState {
    pub(crate) epoch: u64,
    pub(crate) seq: u64,
    pub(crate) last_ms: i64,
}

/// Where a fork came from (for idempotent re-creation and the source's fork count).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ForkOrigin {
    pub(crate) source: String,
    pub(crate) source_id: u64,
    pub(crate) anchor: u64,
    pub(crate) sub: u64,
}

/// Everything about a stream except its data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub(crate) id: u64,
    pub(crate) content_type: String,
    pub(crate) json: bool,
    pub(crate) ttl: Option<u64>,
    pub(crate) expires_at: Option<String>,
    pub(crate) expires_at_ms: Option<i64>,
    pub(crate) touched_ms: i64,
    pub(crate) closed: bool,
    pub(crate) closed_by: Option<ProducerTuple>,
    pub(crate) tail: u64,
    pub(crate) bytes: u64,
    pub(crate) last_seq: Option<String>,
    pub(crate) producers: BTreeMap<String, ProducerState>,
    pub(crate) fork: Option<ForkOrigin>,
    pub(crate) forks: u32,
    pub(crate) deleted: bool,
}

impl Meta {
    /// Whether the stream's TTL or `Expires-At` has passed at `now_ms`.
    pub(crate) fn expired(&self, now_ms: i64) -> bool {
        if self.expires_at_ms.is_some_and(|at| at <= now_ms) {
            return true;
        }
        self.ttl.is_some_and(|ttl| {
            self.touched_ms
                .saturating_add((ttl as i64).saturating_mul(1000))
                <= now_ms
        })
    }

    /// A read or a write resets a sliding TTL.
    pub(crate) fn touch(&mut self, now_ms: i64) {
        self.touched_ms = now_ms;
    }

    /// The stream as a reader sees it: 410 once soft-deleted.
    pub(crate) fn visible(&self) -> Result<(), Problem> {
        if self.deleted {
            Err(Problem::gone())
        } else {
            Ok(())
        }
    }
}

/// The media type without parameters, lowercased: what the protocol compares.
pub(crate) fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a content type is JSON mode's.
pub(crate) fn is_json(content_type: &str) -> bool {
    essence(content_type) == "application/json"
}

/// Whether SSE sends the data as text (`text/*`, JSON) rather than base64.
pub(crate) fn is_text(content_type: &str) -> bool {
    let e = essence(content_type);
    e.starts_with("text/") || e == "application/json"
}

/// The content type of a stream created without one.
pub(crate) const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

// ===== create =====

/// A parsed `PUT`.
#[derive(Debug, Clone)]
pub(crate) struct CreateRequest {
    pub(crate) content_type: Option<String>,
    pub(crate) ttl: Option<u64>,
    pub(crate) expires_at: Option<(String, i64)>,
    pub(crate) closed: bool,
    pub(crate) fork: Option<ForkRequest>,
    pub(crate) body: Bytes,
}

/// The fork headers of a `PUT`.
#[derive(Debug, Clone)]
pub(crate) struct ForkRequest {
    pub(crate) source: String,
    pub(crate) offset: Option<u64>,
    pub(crate) sub: u64,
}

/// What a `PUT` did.
#[derive(Debug, Clone)]
pub(crate) struct Created {
    pub(crate) created: bool,
    pub(crate) content_type: String,
    pub(crate) tail: u64,
    pub(crate) closed: bool,
}

impl Created {
    pub(crate) fn of(meta: &Meta, created: bool) -> Self {
        Self {
            created,
            content_type: meta.content_type.clone(),
            tail: meta.tail,
            closed: meta.closed,
        }
    }
}

/// A `PUT` on a path that holds a stream: `Ok` when the configuration matches (200), 409 when
/// it does not.
pub(crate) fn check_existing(existing: &Meta, req: &CreateRequest) -> Result<Created, Problem> {
    if existing.deleted {
        return Err(Problem::conflict(
            "a deleted stream's path cannot be reused while forks of it exist",
        ));
    }
    let mismatch = |what: &str| {
        Err(Problem::conflict(format!(
            "the stream exists with another {what}"
        )))
    };
    match (&req.content_type, &existing.fork) {
        (Some(ct), _) if essence(ct) != essence(&existing.content_type) => {
            return mismatch("content type")
        }
        (None, None) if essence(&existing.content_type) != DEFAULT_CONTENT_TYPE => {
            return mismatch("content type")
        }
        _ => {}
    }
    let fork_matches = match (&req.fork, &existing.fork) {
        (None, None) => true,
        (Some(r), Some(e)) => {
            r.source == e.source && r.sub == e.sub && r.offset.is_none_or(|o| o == e.anchor)
        }
        _ => false,
    };
    if !fork_matches {
        return mismatch("fork origin");
    }
    if req.fork.is_none() || req.ttl.is_some() || req.expires_at.is_some() {
        if req.ttl != existing.ttl {
            return mismatch("Stream-TTL");
        }
        if req.expires_at.as_ref().map(|(s, _)| s) != existing.expires_at.as_ref() {
            return mismatch("Stream-Expires-At");
        }
    }
    if req.closed != existing.closed {
        return Err(Problem::conflict(if existing.closed {
            "the stream exists and is closed"
        } else {
            "the stream exists and is open"
        }));
    }
    Ok(Created::of(existing, false))
}

/// The source of a fork, as the store read it: its metadata and its data up to the fork point.
#[derive(Debug)]
pub(crate) struct ForkSource<'a> {
    pub(crate) meta: &'a Meta,
    pub(crate) chunks: Vec<Chunk>,
}

/// Where a fork diverges from `source`: 400 for an offset or sub-offset past its tail.
pub(crate) fn fork_point(source: &Meta, fork: &ForkRequest) -> Result<(u64, u64), Problem> {
    if source.deleted {
        return Err(Problem::conflict("the fork's source stream was deleted"));
    }
    let anchor = fork.offset.unwrap_or(source.tail);
    if anchor > source.tail {
        return Err(Problem::bad_request(format!(
            "Stream-Fork-Offset {} is beyond the source stream's tail {}",
            Offset(anchor),
            Offset(source.tail)
        )));
    }
    let point = anchor + fork.sub;
    if point > source.tail {
        return Err(Problem::bad_request(format!(
            "Stream-Fork-Sub-Offset {} goes past the source stream's data",
            fork.sub
        )));
    }
    Ok((anchor, point))
}

/// A new stream: its metadata and its first chunks (a fork's inherited data, then the body).
pub(crate) fn new_stream(
    req: &CreateRequest,
    source: Option<ForkSource<'_>>,
    id: u64,
    now_ms: i64,
    config: &DurableConfig,
) -> Result<(Meta, Vec<Chunk>), Problem> {
    let mut meta = Meta {
        id,
        content_type: req
            .content_type
            .clone()
            .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned()),
        json: false,
        ttl: req.ttl,
        expires_at: req.expires_at.as_ref().map(|(s, _)| s.clone()),
        expires_at_ms: req.expires_at.as_ref().map(|(_, ms)| *ms),
        touched_ms: now_ms,
        closed: false,
        closed_by: None,
        tail: 0,
        bytes: 0,
        last_seq: None,
        producers: BTreeMap::new(),
        fork: None,
        forks: 0,
        deleted: false,
    };
    let mut chunks = Vec::new();
    if let (Some(fork), Some(source)) = (&req.fork, source) {
        let src = source.meta;
        if let Some(ct) = &req.content_type {
            if essence(ct) != essence(&src.content_type) {
                return Err(Problem::conflict(
                    "the fork's Content-Type differs from its source stream's",
                ));
            }
        } else {
            meta.content_type = src.content_type.clone();
        }
        let (anchor, point) = fork_point(src, fork)?;
        if req.ttl.is_none() && req.expires_at.is_none() {
            meta.ttl = src.ttl;
            meta.expires_at = src.expires_at.clone();
            meta.expires_at_ms = src.expires_at_ms;
        }
        let json = is_json(&meta.content_type);
        for mut chunk in source.chunks {
            if chunk.start >= point {
                break;
            }
            if !json && chunk.end(false) > point {
                chunk.data = chunk.data.slice(..(point - chunk.start) as usize);
            }
            meta.bytes += chunk.data.len() as u64;
            chunks.push(chunk);
        }
        meta.tail = point;
        meta.fork = Some(ForkOrigin {
            source: fork.source.clone(),
            source_id: src.id,
            anchor,
            sub: fork.sub,
        });
    }
    meta.json = is_json(&meta.content_type);
    if !req.body.is_empty() {
        let messages = split_messages(&meta, &req.body, true)?;
        let added = push(&mut meta, &mut chunks, messages);
        if meta.bytes > config.max_stream_bytes {
            return Err(stream_full(config, added));
        }
    }
    meta.closed = req.closed;
    Ok((meta, chunks))
}

fn stream_full(config: &DurableConfig, _added: u64) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the stream would hold more than its limit of {} bytes",
            config.max_stream_bytes
        ),
    )
}

/// Appends messages at the tail; returns the bytes added.
fn push(meta: &mut Meta, chunks: &mut Vec<Chunk>, messages: Vec<Bytes>) -> u64 {
    let mut added = 0;
    for data in messages {
        let chunk = Chunk {
            start: meta.tail,
            data,
        };
        meta.tail = chunk.end(meta.json);
        added += chunk.data.len() as u64;
        chunks.push(chunk);
    }
    meta.bytes += added;
    added
}

/// The body as stored units: JSON mode validates and flattens one level of array (an empty
/// array is 400 on append, nothing on create); other types are one chunk of bytes.
pub(crate) fn split_messages(
    meta: &Meta,
    body: &Bytes,
    create: bool,
) -> Result<Vec<Bytes>, Problem> {
    if !meta.json {
        return Ok(vec![body.clone()]);
    }
    let invalid =
        |e: serde_json::Error| Problem::bad_request(format!("the body is not valid JSON: {e}"));
    let value: &RawValue = serde_json::from_slice(body).map_err(invalid)?;
    let text = value.get();
    if !text.starts_with('[') {
        return Ok(vec![Bytes::copy_from_slice(text.as_bytes())]);
    }
    let items: Vec<&RawValue> = serde_json::from_str(text).map_err(invalid)?;
    if items.is_empty() && !create {
        return Err(Problem::bad_request(
            "an empty JSON array appends nothing; send at least one message",
        ));
    }
    Ok(items
        .into_iter()
        .map(|item| Bytes::copy_from_slice(item.get().as_bytes()))
        .collect())
}

// ===== append =====

/// A parsed `POST`.
#[derive(Debug, Clone)]
pub(crate) struct AppendRequest {
    pub(crate) content_type: Option<String>,
    pub(crate) seq: Option<String>,
    pub(crate) producer: Option<ProducerTuple>,
    pub(crate) close: bool,
    pub(crate) body: Bytes,
}

/// What a `POST` did.
#[derive(Debug, Clone)]
pub(crate) struct Appended {
    /// 200 (a producer's new data), 204 (data without a producer, or a duplicate).
    pub(crate) status: StatusCode,
    pub(crate) tail: u64,
    pub(crate) closed: bool,
    /// `Producer-Epoch` and `Producer-Seq` to echo.
    pub(crate) producer: Option<(u64, u64)>,
}

enum ProducerCheck {
    Accept,
    Duplicate(u64),
}

fn check_producer(
    meta: &Meta,
    p: &ProducerTuple,
    now_ms: i64,
    config: &DurableConfig,
) -> Result<ProducerCheck, Problem> {
    let live = meta.producers.get(&p.id).filter(|s| {
        s.last_ms
            .saturating_add(config.producer_ttl.as_millis() as i64)
            > now_ms
    });
    match live {
        None if p.seq != 0 && p.epoch > 0 => Err(Problem::bad_request(
            "a new producer epoch must start at Producer-Seq 0",
        )),
        None if p.seq != 0 => Err(Problem::conflict(format!(
            "Producer-Seq {} leaves a gap: expected 0",
            p.seq
        ))
        .header("producer-expected-seq", 0)
        .header("producer-received-seq", p.seq)),
        None => {
            let remembered = meta.producers.len();
            if remembered >= config.max_producers && !meta.producers.contains_key(&p.id) {
                return Err(Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "the stream remembers at most {} producers",
                        config.max_producers
                    ),
                ));
            }
            Ok(ProducerCheck::Accept)
        }
        Some(s) if p.epoch < s.epoch => Err(Problem::new(
            StatusCode::FORBIDDEN,
            format!(
                "Producer-Epoch {} is stale: the producer is at epoch {}",
                p.epoch, s.epoch
            ),
        )
        .header("producer-epoch", s.epoch)),
        Some(s) if p.epoch > s.epoch => {
            if p.seq != 0 {
                Err(Problem::bad_request(
                    "a new producer epoch must start at Producer-Seq 0",
                ))
            } else {
                Ok(ProducerCheck::Accept)
            }
        }
        Some(s) if p.seq <= s.seq => Ok(ProducerCheck::Duplicate(s.seq)),
        Some(s) if p.seq == s.seq + 1 => Ok(ProducerCheck::Accept),
        Some(s) => Err(Problem::conflict(format!(
            "Producer-Seq {} leaves a gap: expected {}",
            p.seq,
            s.seq + 1
        ))
        .header("producer-expected-seq", s.seq + 1)
        .header("producer-received-seq", p.seq)),
    }
}

fn closed_conflict(meta: &Meta) -> Problem {
    Problem::conflict("the stream is closed")
        .header("stream-closed", "true")
        .header("stream-next-offset", Offset(meta.tail))
}

/// Applies a `POST` to `meta`: the chunks to store, or the 4xx naming the problem (and then
/// `meta` is unchanged). `stored_bytes` is what the whole store holds, for its total bound.
pub(crate) fn append(
    meta: &mut Meta,
    req: &AppendRequest,
    now_ms: i64,
    stored_bytes: u64,
    config: &DurableConfig,
) -> Result<(Appended, Vec<Chunk>), Problem> {
    meta.visible()?;
    let echo = |meta: &Meta, status, producer| Appended {
        status,
        tail: meta.tail,
        closed: meta.closed,
        producer,
    };
    if meta.closed {
        if let Some(p) = &req.producer {
            if meta.closed_by.as_ref() == Some(p) {
                return Ok((
                    echo(meta, StatusCode::NO_CONTENT, Some((p.epoch, p.seq))),
                    Vec::new(),
                ));
            }
            if let Err(stale) = check_producer(meta, p, now_ms, config) {
                if stale.status == StatusCode::FORBIDDEN {
                    return Err(stale);
                }
            }
            return Err(closed_conflict(meta));
        }
        if req.close && req.body.is_empty() {
            return Ok((echo(meta, StatusCode::NO_CONTENT, None), Vec::new()));
        }
        return Err(closed_conflict(meta));
    }
    if req.body.is_empty() && !req.close {
        return Err(Problem::bad_request(
            "an append needs a body (an empty body only with Stream-Closed: true)",
        ));
    }
    let mut messages = Vec::new();
    if !req.body.is_empty() {
        let Some(ct) = &req.content_type else {
            return Err(Problem::bad_request(
                "an append with a body needs a Content-Type",
            ));
        };
        if essence(ct) != essence(&meta.content_type) {
            return Err(Problem::conflict(format!(
                "Content-Type {ct} does not match the stream's {}",
                meta.content_type
            )));
        }
        messages = split_messages(meta, &req.body, false)?;
    }
    if let Some(p) = &req.producer {
        if let ProducerCheck::Duplicate(last) = check_producer(meta, p, now_ms, config)? {
            return Ok((
                echo(meta, StatusCode::NO_CONTENT, Some((p.epoch, last))),
                Vec::new(),
            ));
        }
    }
    if let (Some(seq), false) = (&req.seq, req.body.is_empty()) {
        if meta
            .last_seq
            .as_ref()
            .is_some_and(|last| seq.as_bytes() <= last.as_bytes())
        {
            return Err(Problem::conflict(format!(
                "Stream-Seq {seq} is not greater than the last one ({})",
                meta.last_seq.as_deref().unwrap_or("")
            )));
        }
    }
    let added: u64 = messages.iter().map(|m| m.len() as u64).sum();
    if meta.bytes + added > config.max_stream_bytes {
        return Err(stream_full(config, added));
    }
    if stored_bytes + added > config.max_total_bytes {
        return Err(Problem::new(
            StatusCode::INSUFFICIENT_STORAGE,
            format!(
                "the store is full: it holds at most {} bytes",
                config.max_total_bytes
            ),
        ));
    }
    // Everything is checked: from here on the request takes effect.
    let mut chunks = Vec::new();
    push(meta, &mut chunks, messages);
    if let (Some(seq), false) = (&req.seq, req.body.is_empty()) {
        meta.last_seq = Some(seq.clone());
    }
    let ttl = config.producer_ttl.as_millis() as i64;
    meta.producers
        .retain(|_, s| s.last_ms.saturating_add(ttl) > now_ms);
    let mut status = StatusCode::NO_CONTENT;
    let mut echoed = None;
    if let Some(p) = &req.producer {
        meta.producers.insert(
            p.id.clone(),
            ProducerState {
                epoch: p.epoch,
                seq: p.seq,
                last_ms: now_ms,
            },
        );
        // New data from a producer is 200; a producer's close-only request is 204.
        if !req.body.is_empty() {
            status = StatusCode::OK;
        }
        echoed = Some((p.epoch, p.seq));
    }
    if req.close {
        meta.closed = true;
        meta.closed_by = req.producer.clone();
    }
    meta.touch(now_ms);
    Ok((echo(meta, status, echoed), chunks))
}

// ===== read =====

/// The data from `from` on, at most about `max_bytes` (at least one unit when there is data).
pub(crate) fn collect(
    chunks: &[Chunk],
    json: bool,
    from: u64,
    max_bytes: usize,
) -> (Vec<Bytes>, Option<u64>) {
    let first = chunks.partition_point(|c| c.end(json) <= from);
    let mut out = Vec::new();
    let mut size = 0;
    let mut next = None;
    for chunk in &chunks[first..] {
        if size >= max_bytes && !out.is_empty() {
            break;
        }
        let data = if !json && chunk.start < from {
            chunk.data.slice((from - chunk.start) as usize..)
        } else {
            chunk.data.clone()
        };
        size += data.len();
        out.push(data);
        next = Some(chunk.end(json));
    }
    (out, next)
}

/// What a read found.
#[derive(Debug, Clone)]
pub(crate) struct ReadOutcome {
    pub(crate) id: u64,
    pub(crate) content_type: String,
    pub(crate) json: bool,
    pub(crate) closed: bool,
    pub(crate) tail: u64,
    pub(crate) start: u64,
    pub(crate) next: u64,
    pub(crate) data: Vec<Bytes>,
}

impl ReadOutcome {
    /// Whether the reader has everything there is.
    pub(crate) fn up_to_date(&self) -> bool {
        self.next >= self.tail
    }

    /// Whether the reader has reached the end of a closed stream.
    pub(crate) fn at_eof(&self) -> bool {
        self.closed && self.up_to_date()
    }

    /// The body in the stream's format: JSON mode wraps messages in one array.
    pub(crate) fn body(&self) -> Bytes {
        if !self.json {
            if self.data.len() == 1 {
                return self.data[0].clone();
            }
            return self.data.concat().into();
        }
        let mut out = Vec::with_capacity(self.data.iter().map(|d| d.len() + 1).sum::<usize>() + 2);
        out.push(b'[');
        for (i, message) in self.data.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(message);
        }
        out.push(b']');
        out.into()
    }
}

/// Builds a read outcome from a stream's metadata and the collected data.
pub(crate) fn outcome(meta: &Meta, start: u64, data: Vec<Bytes>, next: Option<u64>) -> ReadOutcome {
    ReadOutcome {
        id: meta.id,
        content_type: meta.content_type.clone(),
        json: meta.json,
        closed: meta.closed,
        tail: meta.tail,
        start,
        next: next.unwrap_or(start).max(start),
        data,
    }
}

/// A position a reader asked for: 400 past the tail.
pub(crate) fn check_position(meta: &Meta, at: u64) -> Result<(), Problem> {
    if at > meta.tail {
        return Err(Problem::bad_request(format!(
            "offset {} is beyond the stream's tail {}",
            Offset(at),
            Offset(meta.tail)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
