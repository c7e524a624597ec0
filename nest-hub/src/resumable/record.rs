//! A stream's record in the hub's backend (key `resumable:<id>`): what every instance needs to
//! serve the stream, so that it resumes on whichever instance the client lands.
//!
//! The value is a line of text, `STATE TAIL_MS FIRST [OWNER]`: the state (`running`, `cancel`
//! when another instance asked the producer to stop, `finished`), the length in ms of the
//! record's last phase, the hub id of the stream's first event (`-` while it is being
//! published), and, for a stream bound to an owner, the owner in hex.
//! The phases come from the record's time to live, not from anyone's clock, so instances with
//! skewed clocks agree: a record with more than `TAIL` left is live; in its last `TAIL` the
//! stream is expired (410); once the record is gone, the id is unknown (404).
//!
//! - A running stream's record lives for `lease + ttl`, renewed every `lease / 3` by the
//!   producer's instance. When that instance dies, the renewals stop: after `lease` the stream
//!   is expired, after another `ttl` it is unknown.
//! - A finished stream's record lives for `2 × ttl`: readable for `ttl`, then expired.

use std::time::Duration;

use bytes::Bytes;

use super::ResumableError;
use crate::{Hub, Record};

/// What the producer of a stream is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Producing, its instance renewing the lease.
    Running,
    /// Producing, and asked to stop: its instance aborts it at the next renewal.
    Cancel,
    /// Done: the end marker is in the topic.
    Finished,
}

/// A decoded record value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StreamRecord {
    pub(super) state: State,
    /// The last phase of the record: expired, not readable.
    pub(super) tail: Duration,
    /// The hub id of the first event; `None` while `start` publishes it.
    pub(super) first: Option<String>,
    /// Who may read and cancel the stream (see `Resumable::owned_by`); `None`: whoever holds
    /// its id.
    pub(super) owner: Option<String>,
}

/// What a record says about a stream now.
#[derive(Debug)]
pub(super) enum Phase {
    /// Readable (running, or finished less than `ttl` ago); the record's value as stored.
    Live(StreamRecord, Bytes),
    /// In its last phase: expired (410).
    Expired(StreamRecord),
    /// No record: never started, or forgotten (404).
    Unknown,
}

/// The key of stream `id`'s record.
pub(super) fn key(id: &str) -> String {
    format!("resumable:{id}")
}

impl StreamRecord {
    pub(super) fn new(state: State, tail: Duration, first: Option<&str>) -> Self {
        Self {
            state,
            tail,
            first: first.map(str::to_owned),
            owner: None,
        }
    }

    /// The same record, bound to `owner`.
    pub(super) fn owned(self, owner: Option<&str>) -> Self {
        Self {
            owner: owner.map(str::to_owned),
            ..self
        }
    }

    /// Whether a caller acting for `owner` may read and cancel the stream: an unbound stream
    /// is anyone's who holds its id; a bound one is its owner's only.
    pub(super) fn allows(&self, owner: Option<&str>) -> bool {
        match &self.owner {
            None => true,
            Some(own) => owner == Some(own.as_str()),
        }
    }

    pub(super) fn encode(&self) -> Bytes {
        let state = match self.state {
            State::Running => "running",
            State::Cancel => "cancel",
            State::Finished => "finished",
        };
        let first = self.first.as_deref().unwrap_or("-");
        let mut line = format!("{state} {} {first}", self.tail.as_millis());
        if let Some(owner) = &self.owner {
            line.push(' ');
            for byte in owner.bytes() {
                line.push_str(&format!("{byte:02x}"));
            }
        }
        Bytes::from(line)
    }

    pub(super) fn decode(value: &[u8]) -> Option<Self> {
        let mut fields = std::str::from_utf8(value).ok()?.splitn(4, ' ');
        let state = match fields.next()? {
            "running" => State::Running,
            "cancel" => State::Cancel,
            "finished" => State::Finished,
            _ => return None,
        };
        let tail = Duration::from_millis(fields.next()?.parse().ok()?);
        let first = match fields.next()? {
            "-" => None,
            first => Some(first.to_owned()),
        };
        let owner = match fields.next() {
            None => None,
            Some(hex) => Some(unhex(hex)?),
        };
        Some(Self {
            state,
            tail,
            first,
            owner,
        })
    }

    /// The same stream, in `state`.
    pub(super) fn with_state(&self, state: State) -> Self {
        Self {
            state,
            ..self.clone()
        }
    }
}

/// `6f77` → `ow`; `None` unless valid hex of UTF-8.
fn unhex(hex: &str) -> Option<String> {
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// The phase of a stored record.
pub(super) fn phase(record: Option<Record>) -> Phase {
    let Some(record) = record else {
        return Phase::Unknown;
    };
    match StreamRecord::decode(&record.value) {
        Some(stream) if record.ttl > stream.tail => Phase::Live(stream, record.value),
        Some(stream) => Phase::Expired(stream),
        None => {
            tracing::warn!(value = ?record.value, "resumable stream: unreadable record, taken as unknown");
            Phase::Unknown
        }
    }
}

/// The phase of stream `id`, read from the hub's backend.
pub(super) async fn lookup(hub: &Hub, id: &str) -> Result<Phase, ResumableError> {
    let record = hub.record(&key(id)).await.map_err(ResumableError::hub)?;
    Ok(phase(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        for (state, first) in [
            (State::Running, None),
            (State::Cancel, Some("17-3")),
            (State::Finished, Some("17-3")),
        ] {
            let record = StreamRecord::new(state, Duration::from_millis(1500), first);
            assert_eq!(StreamRecord::decode(&record.encode()), Some(record));
        }
        assert_eq!(
            &StreamRecord::new(State::Running, Duration::from_secs(2), Some("1-1")).encode()[..],
            b"running 2000 1-1"
        );
        let owned = StreamRecord::new(State::Running, Duration::from_secs(2), None)
            .owned(Some("alice b:ünï"));
        assert_eq!(StreamRecord::decode(&owned.encode()), Some(owned.clone()));
        assert!(owned.allows(Some("alice b:ünï")));
        assert!(!owned.allows(Some("alice")) && !owned.allows(None));
        let open = StreamRecord::new(State::Running, Duration::from_secs(2), None);
        assert!(open.allows(None) && open.allows(Some("anyone")));
        assert_eq!(StreamRecord::decode(b"running 1 1-1 6"), None, "odd hex");
        assert_eq!(StreamRecord::decode(b"running 1 1-1 zz"), None);
        assert_eq!(StreamRecord::decode(b"paused 1 1-1"), None);
        assert_eq!(StreamRecord::decode(b"running x 1-1"), None);
    }

    #[test]
    fn the_phase_follows_the_time_left() {
        let value =
            StreamRecord::new(State::Finished, Duration::from_secs(60), Some("1-1")).encode();
        let at = |secs| {
            phase(Some(Record {
                value: value.clone(),
                ttl: Duration::from_secs(secs),
            }))
        };
        assert!(matches!(at(61), Phase::Live(..)));
        assert!(matches!(at(60), Phase::Expired(..)));
        assert!(matches!(phase(None), Phase::Unknown));
        let garbage = Record {
            value: Bytes::from_static(b"?"),
            ttl: Duration::from_secs(1),
        };
        assert!(matches!(phase(Some(garbage)), Phase::Unknown));
    }
}
