//! Ending live reads when the app shuts down, so that an SSE response or a long-poll ends
//! cleanly (the client reconnects from its offset, on another instance) instead of being cut
//! when the grace period runs out.
//!
//! nest tells a handler only through [`Readiness`], which is read, not awaited; so one task per
//! service (not per reader) reads it every [`POLL`] and wakes every live read at once.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nest_core::health::Readiness;
use tokio::sync::watch;

/// How often the one watcher task looks at the app's readiness.
const POLL: Duration = Duration::from_millis(100);

/// `true` once the app shuts down.
#[derive(Debug)]
pub(crate) struct Drain {
    started: OnceLock<()>,
    tx: watch::Sender<bool>,
}

impl Drain {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            started: OnceLock::new(),
            tx: watch::channel(false).0,
        })
    }

    /// A receiver that turns `true` when the app shuts down; the first call starts the watcher
    /// (it needs the app's readiness, which only a request brings). The watcher ends with the
    /// shutdown or with the service.
    pub(crate) fn subscribe(self: &Arc<Self>, readiness: Readiness) -> watch::Receiver<bool> {
        if self.started.set(()).is_ok() {
            let drain = Arc::downgrade(self);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(POLL).await;
                    let Some(drain) = drain.upgrade() else { return };
                    if !readiness.is_ready() {
                        drain.tx.send_replace(true);
                        return;
                    }
                }
            });
        }
        self.tx.subscribe()
    }
}
