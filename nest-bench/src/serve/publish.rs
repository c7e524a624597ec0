//! What every contender of `serve` shares: the publisher ([`publish_loop`]) and its gate, the
//! buffer sizes, and the answer of `GET /json`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::payload::event_json;

/// How many events each subscriber may have pending (broadcast capacity, hub retention,
/// stream buffer): the same for every contender.
pub(crate) const CAPACITY: usize = 1024;

/// Events published between two yields when the rate is unlimited.
pub(crate) const BATCH: u64 = 32;

/// Keep-alive interval of every contender's SSE streams.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The publishers' gate (see `ServeArgs::gated`): open unless `--gated`.
pub(super) struct Gate {
    open: AtomicBool,
    opened: Notify,
}

pub(super) static GATE: Gate = Gate {
    open: AtomicBool::new(true),
    opened: Notify::const_new(),
};

impl Gate {
    /// Returns at once while the gate is open, else when it opens.
    async fn wait_open(&self) {
        while !self.open.load(Ordering::Acquire) {
            let opened = self.opened.notified();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if self.open.load(Ordering::Acquire) {
                return;
            }
            opened.await;
        }
    }

    /// Closes the gate, then opens and closes it on SIGUSR1 and SIGUSR2.
    pub(super) fn follow_signals(&'static self) -> crate::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut open = signal(SignalKind::user_defined1()).map_err(|e| format!("SIGUSR1: {e}"))?;
        let mut close = signal(SignalKind::user_defined2()).map_err(|e| format!("SIGUSR2: {e}"))?;
        self.open.store(false, Ordering::Release);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(()) = open.recv() => {
                        self.open.store(true, Ordering::Release);
                        self.opened.notify_waiters();
                    }
                    Some(()) = close.recv() => self.open.store(false, Ordering::Release),
                    else => return,
                }
            }
        });
        Ok(())
    }
}

/// What a contender's publisher sends to: one event, as JSON.
pub(crate) trait Broadcast: Send + 'static {
    /// Sends `json` to every subscriber of /bench.
    fn send(&mut self, json: String) -> impl Future<Output = ()> + Send;
}

/// Publishes stamped events to `sink`: at `rate` events/s, or as fast as possible at 0.
pub(crate) async fn publish_loop(mut sink: impl Broadcast, rate: u64) {
    let mut seq = 0u64;
    if rate == 0 {
        loop {
            GATE.wait_open().await;
            for _ in 0..BATCH {
                sink.send(event_json(seq)).await;
                seq += 1;
            }
            tokio::task::yield_now().await;
        }
    }
    // Up to 1,000 events/s one per tick; above, one tick per millisecond with several events.
    let (period, per_tick) = if rate <= 1000 {
        (Duration::from_nanos(1_000_000_000 / rate), 1)
    } else {
        (Duration::from_millis(1), rate / 1000)
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        GATE.wait_open().await;
        for _ in 0..per_tick {
            sink.send(event_json(seq)).await;
            seq += 1;
        }
    }
}

/// The JSON document of `GET /json`.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Message {
    message: &'static str,
}

/// The one `GET /json` answer of every contender.
pub(crate) const MESSAGE: Message = Message {
    message: "Hello, World!",
};
