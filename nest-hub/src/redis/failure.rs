//! How a Redis call failed, and what the backend does about it.

use std::future::Future;
use std::time::Duration;

use redis::{ErrorKind, RedisError, RedisResult};

use crate::BackendError;

/// How long one Redis call may take, set once by the backend (`RedisConfig::timeout`).
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a call to Redis did not succeed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The epoch in Redis is not the backend's: Redis lost its data (or it was flushed), so the
    /// numbers start again under a new epoch.
    Epoch,
    /// Redis did not answer (down, restarting, loading its data, too slow): worth trying again
    /// once it is back.
    Unavailable(BackendError),
    /// Anything else (a key of the wrong type, say): trying again would fail again.
    Failed(BackendError),
}

impl Failure {
    pub(super) fn failed(message: impl Into<String>) -> Self {
        Self::Failed(BackendError::new(message))
    }

    /// The error for the caller (a history loss is turned into one by the backend).
    pub(super) fn into_error(self) -> BackendError {
        match self {
            Self::Epoch => BackendError::new("the hub epoch in Redis changed: Redis lost its data"),
            Self::Unavailable(err) | Self::Failed(err) => err,
        }
    }
}

impl From<RedisError> for Failure {
    fn from(err: RedisError) -> Self {
        if err.code() == Some("NESTEPOCH") {
            return Self::Epoch;
        }
        let transient = err.is_io_error()
            || err.is_unrecoverable_error()
            || matches!(
                err.kind(),
                ErrorKind::BusyLoadingError | ErrorKind::TryAgain | ErrorKind::MasterDown
            );
        if transient {
            Self::Unavailable(BackendError::with_source("Redis is unavailable", err))
        } else {
            Self::Failed(BackendError::with_source(
                "Redis refused a hub command",
                err,
            ))
        }
    }
}

/// Awaits a Redis call; a timeout counts as Redis being unavailable.
pub(super) async fn call<T>(
    timeout: Duration,
    call: impl Future<Output = RedisResult<T>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(Failure::from),
        Err(_) => Err(Failure::Unavailable(BackendError::new(format!(
            "Redis did not answer within {timeout:?}"
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(err: RedisError) -> &'static str {
        match Failure::from(err) {
            Failure::Epoch => "epoch",
            Failure::Unavailable(_) => "unavailable",
            Failure::Failed(_) => "failed",
        }
    }

    #[test]
    fn what_waiting_can_mend_is_unavailable_the_rest_failed() {
        let io = |kind| RedisError::from(std::io::Error::new(kind, "io"));
        // Any I/O error, whether redis-rs would reconnect for it (a reset) or not (a timeout).
        assert_eq!(kind(io(std::io::ErrorKind::ConnectionReset)), "unavailable");
        assert_eq!(kind(io(std::io::ErrorKind::TimedOut)), "unavailable");
        // Not I/O, but a reconnect mends it.
        assert_eq!(
            kind((ErrorKind::ParseError, "garbled").into()),
            "unavailable"
        );
        // Redis answers, but not yet: loading its data, a failover.
        for busy in [
            ErrorKind::BusyLoadingError,
            ErrorKind::TryAgain,
            ErrorKind::MasterDown,
        ] {
            assert_eq!(kind((busy, "not yet").into()), "unavailable", "{busy:?}");
        }
        // Trying again would fail again.
        assert_eq!(kind((ErrorKind::TypeError, "WRONGTYPE").into()), "failed");
        assert_eq!(kind((ErrorKind::ResponseError, "ERR").into()), "failed");
    }
}
