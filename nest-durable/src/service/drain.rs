//! Ending live reads when the app shuts down, so that an SSE response or a long-poll ends
//! cleanly (the client reconnects from its offset, on another instance) instead of being cut
//! when the grace period runs out.
//!
//! One task per service (not per reader) awaits [`Readiness::draining`] and wakes every live
//! read at once (it polled readiness every 100 ms before nest-core could be awaited).

use std::sync::{Arc, OnceLock};

use nest_core::health::Readiness;
use tokio::sync::{watch, Notify};

/// `true` once the app shuts down.
#[derive(Debug)]
pub(crate) struct Drain {
    started: OnceLock<()>,
    tx: watch::Sender<bool>,
    /// Notified when the service (its `Drain`) goes: the watcher ends with it.
    gone: Arc<Notify>,
}

impl Drop for Drain {
    fn drop(&mut self) {
        // A stored permit: the watcher sees it even if it was not waiting yet.
        self.gone.notify_one();
    }
}

impl Drain {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            started: OnceLock::new(),
            tx: watch::channel(false).0,
            gone: Arc::new(Notify::new()),
        })
    }

    /// A receiver that turns `true` when the app shuts down; the first call starts the watcher
    /// (it needs the app's readiness, which only a request brings). The watcher ends with the
    /// shutdown or with the service.
    pub(crate) fn subscribe(self: &Arc<Self>, readiness: Readiness) -> watch::Receiver<bool> {
        if self.started.set(()).is_ok() {
            let drain = Arc::downgrade(self);
            let gone = self.gone.clone();
            let draining = readiness.draining();
            tokio::spawn(async move {
                tokio::select! {
                    () = draining => {
                        if let Some(drain) = drain.upgrade() {
                            drain.tx.send_replace(true);
                        }
                    }
                    () = gone.notified() => {}
                }
            });
        }
        self.tx.subscribe()
    }
}
