//! The Lua scripts the backend runs in Redis. Each runs atomically, so a number is assigned and
//! its event stored in one step, and each first checks that the epoch in Redis is the backend's
//! (a publish or a read against a Redis that lost its data fails instead of reusing numbers).
//!
//! Keys of a topic (a name over 64 bytes is replaced by its digest: [`TopicKeys::new`]): a
//! stream (`PREFIX topic:NAME`) whose entries have the id `SEQ-MS` (the
//! sequence number first, so a range read starts at `N-0`; the append time in Redis's clock in
//! ms second, for age retention and `History::Since`) and one field `d` (the wire bytes); and a
//! hash (`PREFIX meta:NAME`) with `seq` (the head), `lo` (the oldest number retained) and
//! `bytes` (the bytes of the events `lo..=seq`). Retention is kept exactly by `lo`; the stream is
//! trimmed with `MAXLEN ~`/`MINID ~`, which may keep a few more entries than `lo` says.
//!
//! Idempotency keys (`Hub::publish_idempotent`): per key a string `PREFIX once-key:LEN:NAME:KEY`
//! (`:NAME` is `#DIGEST` for a long name, as for the stream; LEN, the length of that part,
//! first, so that no topic's key is another's) holding `EPOCH-SEQ`, with a Redis expiry of
//! `IDEMPOTENCY_TTL`; and per topic a list `PREFIX once:NAME` of its keys, newest first, cut to
//! `IDEMPOTENCY_KEYS` (the key that falls off is deleted). The append script writes them with
//! the event, so a key and its event are stored together or not at all, and persist alike.

use std::time::Duration;

use bytes::Bytes;
use redis::aio::ConnectionLike;
use redis::{Script, ScriptInvocation, Value};

use super::failure::{call, Failure};
use crate::{Batch, Retention, IDEMPOTENCY_KEYS, IDEMPOTENCY_TTL};

/// Checks the epoch (`KEYS[1]`, `ARGV[1]`), reads the topic's hash (`KEYS[2]`) and defines the
/// helpers; every topic script starts with it.
const PRELUDE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('NESTEPOCH the epoch in Redis is another one')
end
local function parse(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local meta = redis.call('HMGET', KEYS[2], 'seq', 'lo', 'bytes')
local head = tonumber(meta[1]) or 0
local lo = tonumber(meta[2]) or (head + 1)
";

/// Appends the event (`ARGV[6..]`: its bytes cut where its number goes) with the next number,
/// moves `lo` past what the retention (`ARGV[2..4]`: events, bytes, age in ms or 0) no longer
/// keeps (the newest event is always kept), trims the stream, and returns the number.
///
/// With an idempotency key (`KEYS[4]`, `ARGV[5]` its ttl in ms, 0 for none): when the key holds
/// `EPOCH-SEQ` of this epoch, returns `-SEQ` and stores nothing; else appends and sets the key
/// for the ttl, and keeps the topic's list of keys (`KEYS[5]`) to the newest
/// [`IDEMPOTENCY_KEYS`] (an older key is deleted).
const APPEND: &str = r"
local max_events, max_bytes, max_age = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local key_ttl = tonumber(ARGV[5])
if key_ttl > 0 then
  local known = redis.call('GET', KEYS[4])
  if known and string.sub(known, 1, #ARGV[1] + 1) == ARGV[1] .. '-' then
    return -tonumber(string.sub(known, #ARGV[1] + 2))
  end
end
local seq = head + 1
local data = table.concat({ unpack(ARGV, 7) }, string.format('%d', seq))
local now = now_ms()
local bytes = (tonumber(meta[3]) or 0) + #data
local moved = false
while lo < seq do
  local over = seq - lo + 1 > max_events or bytes > max_bytes
  if not over and max_age == 0 then break end
  local oldest = redis.call('XRANGE', KEYS[3], string.format('%d-0', lo), '+', 'COUNT', 1)[1]
  if oldest == nil then
    lo, bytes = seq, #data
    break
  end
  local oldest_seq, oldest_ms = parse(oldest[1])
  if not over and oldest_ms >= now - max_age then break end
  bytes = bytes - #oldest[2][2]
  lo = oldest_seq + 1
  moved = true
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], string.format('%d-%d', seq, now), 'd', data)
-- MAXLEN trims what the count drops; bytes and age may drop more.
if moved and lo > math.max(1, seq - max_events + 1) then
  redis.call('XTRIM', KEYS[3], 'MINID', '~', string.format('%d-0', lo))
end
redis.call('HSET', KEYS[2], 'seq', string.format('%d', seq), 'lo', string.format('%d', lo),
  'bytes', string.format('%d', bytes))
if key_ttl > 0 then
  redis.call('SET', KEYS[4], ARGV[1] .. '-' .. string.format('%d', seq), 'PX', key_ttl)
  redis.call('LPUSH', KEYS[5], KEYS[4])
  if redis.call('LLEN', KEYS[5]) > tonumber(ARGV[6]) then
    redis.call('DEL', redis.call('RPOP', KEYS[5]))
  end
  redis.call('PEXPIRE', KEYS[5], key_ttl)
end
return seq
";

/// The events after `ARGV[2]` up to `ARGV[3]` bytes (at least one), at most `ARGV[4]` of them,
/// none older than `ARGV[5]` ms (0: any age): `{0, head}` when there is none yet, `{1, oldest}`
/// when some are gone, `{2, last, bytes}` otherwise.
const READ: &str = r"
local after, max_bytes, max_age = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
if after >= head then return {0, head} end
local from = string.format('%d-0', math.max(after + 1, lo))
local entries = redis.call('XRANGE', KEYS[3], from, '+', 'COUNT', ARGV[4])
local i = 1
if max_age > 0 then
  local cutoff = now_ms() - max_age
  while entries[i] ~= nil and select(2, parse(entries[i][1])) < cutoff do i = i + 1 end
end
local first = head + 1
if entries[i] ~= nil then
  first = parse(entries[i][1])
elseif #entries > 0 then
  first = parse(entries[#entries][1]) + 1
end
if after + 1 < first then return {1, first} end
local parts, size, last = {}, 0, after
while entries[i] ~= nil do
  local data = entries[i][2][2]
  if #parts > 0 and size + #data > max_bytes then break end
  parts[#parts + 1] = data
  size = size + #data
  last = parse(entries[i][1])
  i = i + 1
end
return {2, last, table.concat(parts)}
";

/// The topic's head.
const HEAD: &str = "return head";

/// The number before the oldest retained event younger than `ARGV[2]` ms (the head when none
/// is), newest first so that only the young events are looked at.
const AFTER_AGE: &str = r"
local cutoff = now_ms() - tonumber(ARGV[2])
local result = head
local from = '+'
while true do
  local entries = redis.call('XREVRANGE', KEYS[3], from, '-', 'COUNT', 100)
  if #entries == 0 then return result end
  for _, entry in ipairs(entries) do
    local seq, ms = parse(entry[1])
    if seq < lo or ms < cutoff then return result end
    result = seq - 1
  end
  from = '(' .. entries[#entries][1]
end
";

/// Makes a new epoch (`KEYS[1]`) from Redis's clock in ms; prefixes the epoch scripts.
const NEW_EPOCH: &str = r"
local function new_epoch()
  local t = redis.call('TIME')
  local epoch = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
  redis.call('SET', KEYS[1], epoch)
  return epoch
end
";

/// The epoch, made when there is none: on first use, and after Redis lost its data.
const EPOCH: &str = "return redis.call('GET', KEYS[1]) or new_epoch()";

/// A new epoch in place of `ARGV[1]` (unless another instance replaced it already): Redis
/// came back without events it had acknowledged, whose numbers it would give again.
const RENEW_EPOCH: &str = r"
local epoch = redis.call('GET', KEYS[1])
if epoch and epoch ~= ARGV[1] then return epoch end
return new_epoch()
";

/// At most this many entries per range read (then the reader reads again).
const READ_COUNT: usize = 1000;

/// The keys of one topic.
#[derive(Debug)]
pub(super) struct TopicKeys {
    /// The stream of events.
    pub(super) stream: String,
    /// The hash of `seq`, `lo` and `bytes`.
    meta: String,
    /// The list of the topic's idempotency keys.
    idempotency: String,
    /// What each idempotency key starts with (the topic's length first, so that no topic's key
    /// is another's).
    key_prefix: String,
}

/// Names up to this many bytes are used as they are in the topic's keys; longer ones by their
/// digest (see [`TopicKeys::new`]).
pub(super) const LITERAL_NAME: usize = 64;

impl TopicKeys {
    /// The keys of `topic`: `PREFIX topic:NAME` and so on for a name of up to [`LITERAL_NAME`]
    /// bytes, `PREFIX topic#DIGEST` for a longer one (the first 128 bits of its SHA-256, in hex;
    /// `#` where a literal name has `:`, so no digest is ever a literal name). The read loop sends
    /// every followed stream's key with each `XREAD`: with digests, what it sends per event does
    /// not grow with the names' length (200 followers of 30,000-byte names made each publish
    /// resend 6.1 MB).
    pub(super) fn new(prefix: &str, topic: &str) -> Self {
        let name = if topic.len() <= LITERAL_NAME {
            format!(":{topic}")
        } else {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(topic.as_bytes());
            let mut name = String::with_capacity(33);
            name.push('#');
            for byte in &digest[..16] {
                name.push_str(&format!("{byte:02x}"));
            }
            name
        };
        Self {
            stream: format!("{prefix}topic{name}"),
            meta: format!("{prefix}meta{name}"),
            idempotency: format!("{prefix}once{name}"),
            key_prefix: format!("{prefix}once-key:{}{name}:", name.len()),
        }
    }
}

/// What a range read found.
#[derive(Debug)]
pub(super) enum Range {
    /// Events, or the gap.
    Batch(Batch),
    /// Nothing after the number yet; the head is this.
    Empty { head: u64 },
}

/// The scripts, hashed once (they run by `EVALSHA`, loaded again when Redis forgot them).
#[derive(Debug)]
pub(super) struct Scripts {
    append: Script,
    read: Script,
    head: Script,
    after_age: Script,
    epoch: Script,
    renew_epoch: Script,
    /// The epoch's key.
    epoch_key: String,
    retention: Retention,
    /// How long one call may take.
    timeout: Duration,
}

impl Scripts {
    pub(super) fn new(prefix: &str, retention: Retention, timeout: Duration) -> Self {
        let topic = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Self {
            append: topic(APPEND),
            read: topic(READ),
            head: topic(HEAD),
            after_age: topic(AFTER_AGE),
            epoch: Script::new(&format!("{NEW_EPOCH}{EPOCH}")),
            renew_epoch: Script::new(&format!("{NEW_EPOCH}{RENEW_EPOCH}")),
            epoch_key: format!("{prefix}epoch"),
            retention,
            timeout,
        }
    }

    /// The epoch in Redis, made now if there is none.
    pub(super) async fn epoch(&self, conn: &mut impl ConnectionLike) -> Result<u64, Failure> {
        let epoch = self.epoch.key(&self.epoch_key);
        parse_epoch(call(self.timeout, epoch.invoke_async(conn)).await?)
    }

    /// A new epoch in place of `old` (or the one another instance made already).
    pub(super) async fn renew_epoch(
        &self,
        conn: &mut impl ConnectionLike,
        old: u64,
    ) -> Result<u64, Failure> {
        let mut renew = self.renew_epoch.key(&self.epoch_key);
        renew.arg(old);
        parse_epoch(call(self.timeout, renew.invoke_async(conn)).await?)
    }

    /// The heads of these topics in Redis, in one round trip.
    pub(super) async fn heads(
        &self,
        conn: &mut impl ConnectionLike,
        topics: &[&TopicKeys],
    ) -> Result<Vec<u64>, Failure> {
        let mut heads = redis::pipe();
        for keys in topics {
            heads.cmd("HGET").arg(&keys.meta).arg("seq");
        }
        let heads: Vec<Option<u64>> = call(self.timeout, heads.query_async(conn)).await?;
        Ok(heads.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// A call of a topic script: the epoch's key, the topic's keys, the epoch.
    fn on_topic<'a>(
        &'a self,
        script: &'a Script,
        keys: &TopicKeys,
        epoch: u64,
    ) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(&self.epoch_key)
            .key(&keys.meta)
            .key(&keys.stream)
            .arg(epoch);
        invocation
    }

    /// Appends the event whose bytes are `parts` joined by its number; returns the number and
    /// whether it appended: with an idempotency key (`once`) whose event is stored already,
    /// that event's number and `false`.
    pub(super) async fn append(
        &self,
        conn: &mut impl ConnectionLike,
        keys: &TopicKeys,
        epoch: u64,
        once: Option<&str>,
        parts: Vec<Bytes>,
    ) -> Result<(u64, bool), Failure> {
        let retention = &self.retention;
        let mut append = self.on_topic(&self.append, keys, epoch);
        if let Some(key) = once {
            append
                .key(format!("{}{key}", keys.key_prefix))
                .key(&keys.idempotency);
        }
        append
            .arg(retention.max_events.min(i64::MAX as usize))
            .arg(retention.max_bytes)
            .arg(age_ms(retention.max_age));
        match once {
            Some(_) => append
                .arg(IDEMPOTENCY_TTL.as_millis() as u64)
                .arg(IDEMPOTENCY_KEYS),
            None => append.arg(0).arg(0),
        };
        for part in &parts {
            append.arg(part.as_ref());
        }
        let seq: i64 = call(self.timeout, append.invoke_async(conn)).await?;
        Ok((seq.unsigned_abs(), seq > 0))
    }

    /// The events after `after` (up to about `max_bytes`), the gap, or nothing yet.
    pub(super) async fn read(
        &self,
        conn: &mut impl ConnectionLike,
        keys: &TopicKeys,
        epoch: u64,
        after: u64,
        max_bytes: usize,
    ) -> Result<Range, Failure> {
        let mut read = self.on_topic(&self.read, keys, epoch);
        read.arg(after)
            .arg(max_bytes)
            .arg(READ_COUNT)
            .arg(age_ms(self.retention.max_age));
        let reply: Vec<Value> = call(self.timeout, read.invoke_async(conn)).await?;
        let mut reply = reply.into_iter();
        match (reply.next(), reply.next(), reply.next()) {
            (Some(Value::Int(0)), Some(Value::Int(head)), None) => {
                Ok(Range::Empty { head: head as u64 })
            }
            (Some(Value::Int(1)), Some(Value::Int(oldest)), None) => Ok(Range::Batch(Batch::Gap {
                oldest: oldest as u64,
            })),
            (Some(Value::Int(2)), Some(Value::Int(last)), Some(Value::BulkString(bytes))) => {
                Ok(Range::Batch(Batch::Events {
                    bytes: Bytes::from(bytes),
                    last: last as u64,
                }))
            }
            other => Err(Failure::failed(format!(
                "unexpected reply of the hub's read script: {other:?}"
            ))),
        }
    }

    /// The topic's head.
    pub(super) async fn head(
        &self,
        conn: &mut impl ConnectionLike,
        keys: &TopicKeys,
        epoch: u64,
    ) -> Result<u64, Failure> {
        let head = self.on_topic(&self.head, keys, epoch);
        call(self.timeout, head.invoke_async(conn)).await
    }

    /// The number before the oldest retained event younger than `age_ms`.
    pub(super) async fn after_age(
        &self,
        conn: &mut impl ConnectionLike,
        keys: &TopicKeys,
        epoch: u64,
        age_ms: u64,
    ) -> Result<u64, Failure> {
        let mut after_age = self.on_topic(&self.after_age, keys, epoch);
        after_age.arg(age_ms);
        call(self.timeout, after_age.invoke_async(conn)).await
    }
}

fn parse_epoch(epoch: String) -> Result<u64, Failure> {
    epoch
        .parse()
        .map_err(|_| Failure::failed(format!("the hub epoch in Redis is not a number: {epoch:?}")))
}

/// An age in ms for the scripts, 0 for none.
pub(super) fn age_ms(age: Option<Duration>) -> u64 {
    age.map_or(0, |age| (age.as_millis() as u64).max(1))
}
