//! The backend's records in Redis: one string key each, `PREFIX record:KEY`, with a Redis
//! expiry (`PX`), so every instance sees the same records and Redis forgets them by itself.

use std::time::Duration;

use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::{Script, Value};

use super::failure::{call, Failure};
use crate::{BackendError, Record};

/// The value and the time left in ms, read in one atomic step (`nil` when there is none).
const GET: &str = r"
local value = redis.call('GET', KEYS[1])
if not value then return nil end
return { value, redis.call('PTTL', KEYS[1]) }
";

/// Compare-and-set: `ARGV[2]` for `ARGV[3]` ms (0: removed) when the value is `ARGV[1]`.
const REPLACE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '0' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
";

/// The record commands, with the key prefix and the backend's command connection.
pub(super) struct Records {
    prefix: String,
    get: Script,
    replace: Script,
    timeout: Duration,
    conn: ConnectionManager,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A ttl in ms for Redis: at least 1 (Redis refuses `PX 0`).
fn ms(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

impl Records {
    pub(super) fn new(prefix: &str, timeout: Duration, conn: ConnectionManager) -> Self {
        Self {
            prefix: format!("{prefix}record:"),
            get: Script::new(GET),
            replace: Script::new(REPLACE),
            timeout,
            conn,
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// `SET key value NX PX ttl`.
    pub(super) async fn create(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        let mut set = redis::cmd("SET");
        set.arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ms(ttl));
        let stored = call(self.timeout, set.query_async(&mut self.conn.clone())).await;
        let stored: Option<String> = stored.map_err(Failure::into_error)?;
        Ok(stored.is_some())
    }

    /// The value and the time left.
    pub(super) async fn get(&self, key: &str) -> Result<Option<Record>, BackendError> {
        let get = self.get.key(self.key(key));
        let reply = call(self.timeout, get.invoke_async(&mut self.conn.clone())).await;
        let reply: Value = reply.map_err(Failure::into_error)?;
        if let Value::Nil = reply {
            return Ok(None);
        }
        if let Value::Array(fields) = &reply {
            if let [Value::BulkString(value), Value::Int(ttl)] = fields.as_slice() {
                return Ok(Some(Record {
                    value: Bytes::copy_from_slice(value),
                    // -1: no expiry (set by hand); records always have one.
                    ttl: Duration::from_millis((*ttl).max(0) as u64),
                }));
            }
        }
        Err(BackendError::new(format!(
            "unexpected reply of the hub's record script: {reply:?}"
        )))
    }

    /// Compare-and-set, or delete when `ttl` is zero.
    pub(super) async fn replace(
        &self,
        key: &str,
        expected: &[u8],
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        let mut replace = self.replace.key(self.key(key));
        let ttl = if ttl.is_zero() { 0 } else { ms(ttl) };
        replace.arg(expected).arg(value).arg(ttl);
        let replaced = call(self.timeout, replace.invoke_async(&mut self.conn.clone())).await;
        let replaced: i64 = replaced.map_err(Failure::into_error)?;
        Ok(replaced == 1)
    }
}
