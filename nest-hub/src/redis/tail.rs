//! The read loop: one per backend, on its own connection. A multi-key `XREAD BLOCK` over the
//! streams of the topics that have local readers brings each new event once, and the topic's
//! window hands it to every local subscriber. When Redis goes away it reconnects with backoff
//! and goes on after the last event each window has, so open streams resume without a gap.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use tokio::time::Instant;

use super::failure::{call, Failure};
use super::topic::RedisTopic;
use super::topic::Shared;
use crate::BackendError;

/// How long one `XREAD` waits for events before the loop asks again (it is woken sooner when
/// a topic is added).
const BLOCK: Duration = Duration::from_secs(5);

/// At most this many events per stream per `XREAD`.
const READ_COUNT: usize = 1000;

/// The first wait before reconnecting; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(3);

/// Runs the loop until the backend is dropped (which aborts it). Logs one line when Redis is
/// lost and one when it is back, never one per event or per attempt.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut outage: Option<Instant> = None;
    let mut backoff = BACKOFF_MIN;
    loop {
        let err = match connect(&shared).await {
            Ok(mut conn) => {
                if let Some(since) = outage.take() {
                    tracing::info!(
                        outage = ?since.elapsed(),
                        "redis hub: Redis is back; open streams resume"
                    );
                }
                shared.online.notify_waiters();
                tail(&shared, &mut conn, &mut backoff).await
            }
            Err(err) => err,
        };
        if outage.is_none() {
            tracing::warn!(
                error = %err,
                source = ?std::error::Error::source(&err),
                "redis hub: lost Redis; publishing fails and open streams wait until it is back"
            );
            outage = Some(Instant::now());
        }
        tokio::time::sleep(backoff).await;
        backoff = next_backoff(backoff);
    }
}

/// The wait before the next attempt to reconnect: twice the last, at most [`BACKOFF_MAX`].
fn next_backoff(backoff: Duration) -> Duration {
    (backoff * 2).min(BACKOFF_MAX)
}

/// How long an `XREAD` of the loop may take before Redis counts as unavailable: its [`BLOCK`]
/// and then the call timeout (`RedisConfig::timeout`). Shorter, and every quiet read would
/// time out, so the loop would reconnect every few seconds with nothing wrong.
fn read_deadline(timeout: Duration) -> Duration {
    BLOCK + timeout
}

/// The loop's own connection (a blocking read would hold up other commands), after checking
/// the epoch: a Redis that lost its data has a new one.
async fn connect(shared: &Shared) -> Result<MultiplexedConnection, BackendError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(shared.timeout)
        .set_response_timeout(read_deadline(shared.timeout));
    let mut conn = call(
        shared.timeout,
        shared
            .client
            .get_multiplexed_async_connection_with_config(&config),
    )
    .await
    .map_err(Failure::into_error)?;
    let epoch = shared
        .scripts
        .epoch(&mut conn)
        .await
        .map_err(Failure::into_error)?;
    shared.adopt_epoch(epoch);
    check_rewind(shared, &mut conn).await?;
    // Have the command connection reconnect now rather than on the next publish.
    let _ = call(
        shared.timeout,
        redis::cmd("PING").query_async::<()>(&mut shared.conn()),
    )
    .await;
    Ok(conn)
}

/// A Redis that came back with fewer events than this instance saw it give lost acknowledged
/// writes (no append-only file, or not `appendfsync always`, and a crash): it would give their
/// numbers again, to other events. A new epoch makes every id from before unknown instead.
async fn check_rewind(
    shared: &Shared,
    conn: &mut MultiplexedConnection,
) -> Result<(), BackendError> {
    // What this instance knows first, then Redis's heads (which only grow, unless lost).
    let known: Vec<(Arc<RedisTopic>, u64)> = shared
        .topics()
        .values()
        .map(|topic| (topic.clone(), topic.known()))
        .filter(|(_, known)| *known > 0)
        .collect();
    if known.is_empty() {
        return Ok(());
    }
    let keys: Vec<_> = known.iter().map(|(topic, _)| topic.keys()).collect();
    let heads = shared
        .scripts
        .heads(conn, &keys)
        .await
        .map_err(Failure::into_error)?;
    if known
        .iter()
        .zip(heads)
        .any(|((_, known), head)| head < *known)
    {
        let epoch = shared
            .scripts
            .renew_epoch(conn, shared.epoch())
            .await
            .map_err(Failure::into_error)?;
        shared.adopt_epoch(epoch);
    }
    Ok(())
}

/// Reads until the connection fails; returns why.
async fn tail(
    shared: &Shared,
    conn: &mut MultiplexedConnection,
    backoff: &mut Duration,
) -> BackendError {
    // The wake stream's last entry seen (not `$`: a wake sent before this read is seen too).
    let mut woken_after = "0-0".to_owned();
    loop {
        shared.wake_sent.store(false, Ordering::SeqCst);
        let followed = shared.followed();
        let mut xread = redis::cmd("XREAD");
        xread
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS");
        for (topic, _, _) in &followed {
            xread.arg(&topic.keys().stream);
        }
        xread.arg(&shared.wake_key);
        for (_, head, _) in &followed {
            // After every id whose number is `head`: the next number on.
            xread.arg(format!("{head}-{}", u64::MAX));
        }
        xread.arg(&woken_after);
        let reply: Value = match call(read_deadline(shared.timeout), xread.query_async(conn)).await
        {
            Ok(reply) => reply,
            Err(failure) => return failure.into_error(),
        };
        *backoff = BACKOFF_MIN;
        let by_key: HashMap<&[u8], &(Arc<RedisTopic>, u64, u64)> = followed
            .iter()
            .map(|entry| (entry.0.keys().stream.as_bytes(), entry))
            .collect();
        for (key, entries) in streams(reply) {
            if key == shared.wake_key.as_bytes() {
                if let Some(last) = entries.last() {
                    woken_after = String::from_utf8_lossy(&last.0).into_owned();
                }
            } else if let Some((topic, _, generation)) = by_key.get(key.as_slice()) {
                let events = entries
                    .into_iter()
                    .filter_map(|(id, data)| {
                        let (seq, ms) = parse_id(&id)?;
                        Some((seq, ms, data))
                    })
                    .collect();
                topic.deliver(*generation, events);
            }
        }
    }
}

/// `SEQ-MS` → (SEQ, MS).
fn parse_id(id: &[u8]) -> Option<(u64, u64)> {
    let (seq, ms) = std::str::from_utf8(id).ok()?.split_once('-')?;
    Some((seq.parse().ok()?, ms.parse().ok()?))
}

/// A stream's key and its entries: (id, the `d` field).
type Stream = (Vec<u8>, Vec<(Vec<u8>, Bytes)>);

/// An `XREAD` reply; nothing when it timed out.
fn streams(reply: Value) -> Vec<Stream> {
    let pairs: Vec<(Value, Value)> = match reply {
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|stream| match stream {
                Value::Array(pair) => {
                    let mut pair = pair.into_iter();
                    Some((pair.next()?, pair.next()?))
                }
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs,
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .filter_map(|(key, entries)| {
            let (Value::BulkString(key), Value::Array(entries)) = (key, entries) else {
                return None;
            };
            Some((key, entries.into_iter().filter_map(entry).collect()))
        })
        .collect()
}

/// One stream entry: its id and its `d` field.
fn entry(entry: Value) -> Option<(Vec<u8>, Bytes)> {
    let Value::Array(parts) = entry else {
        return None;
    };
    let mut parts = parts.into_iter();
    let (Some(Value::BulkString(id)), Some(fields)) = (parts.next(), parts.next()) else {
        return None;
    };
    let fields: Vec<Value> = match fields {
        Value::Array(fields) => fields,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => return None,
    };
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if let (Value::BulkString(name), Value::BulkString(value)) = (name, value) {
            if name == b"d" {
                return Some((id, Bytes::from(value)));
            }
        }
    }
    // An entry without data (the wake stream's): its id still counts.
    Some((id, Bytes::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_an_xread_reply() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("p:topic:a"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("4-1700000000000"),
                    Value::Array(vec![bulk("d"), bulk("x")]),
                ]),
                Value::Array(vec![
                    bulk("5-1700000000001"),
                    Value::Array(vec![bulk("w"), bulk("1")]),
                ]),
            ]),
        ])]);
        let read = streams(reply);
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].0, b"p:topic:a");
        assert_eq!(
            read[0].1[0],
            (b"4-1700000000000".to_vec(), Bytes::from_static(b"x"))
        );
        assert_eq!(read[0].1[1].1, Bytes::new());
        assert_eq!(parse_id(b"4-1700000000000"), Some((4, 1_700_000_000_000)));
        assert!(streams(Value::Nil).is_empty(), "a timed-out read");
    }

    #[test]
    fn parses_a_resp3_xread_reply() {
        // RESP3 (`redis://…?protocol=resp3`): the streams and each entry's fields are maps.
        let reply = Value::Map(vec![(
            bulk("p:topic:a"),
            Value::Array(vec![Value::Array(vec![
                bulk("7-1700000000002"),
                Value::Map(vec![(bulk("d"), bulk("y"))]),
            ])]),
        )]);
        let read = streams(reply);
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].0, b"p:topic:a");
        assert_eq!(
            read[0].1,
            [(b"7-1700000000002".to_vec(), Bytes::from_static(b"y"))]
        );
    }

    #[test]
    fn reconnects_back_off_from_100_ms_doubling_up_to_3_s() {
        let mut waits = vec![BACKOFF_MIN];
        for _ in 0..6 {
            waits.push(next_backoff(*waits.last().unwrap()));
        }
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3000, 3000]);
    }

    #[test]
    fn a_quiet_read_ends_before_its_deadline() {
        // Redis answers a quiet `XREAD BLOCK` after BLOCK: the deadline leaves the call's
        // timeout on top, so a quiet topic is not taken for a lost Redis.
        for timeout in [Duration::from_millis(1), Duration::from_secs(2)] {
            assert_eq!(read_deadline(timeout), BLOCK + timeout);
        }
    }
}
