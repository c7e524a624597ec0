//! `subscriptions/listen`: one long-lived event stream per subscription, acknowledged first,
//! then only the notifications the client's filter asks for, each tagged with the
//! subscription's id (the request's id).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::revision::META_SUBSCRIPTION_ID;

/// A change a listening client may want to hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The tool list changed (`notifications/tools/list_changed`).
    Tools,
    /// The prompt list changed (`notifications/prompts/list_changed`).
    Prompts,
    /// The resource list changed (`notifications/resources/list_changed`).
    Resources,
    /// Resource `uri` changed (`notifications/resources/updated`).
    Resource(String),
}

impl Change {
    fn notification(&self) -> (&'static str, Value) {
        match self {
            Self::Tools => ("notifications/tools/list_changed", json!({})),
            Self::Prompts => ("notifications/prompts/list_changed", json!({})),
            Self::Resources => ("notifications/resources/list_changed", json!({})),
            Self::Resource(uri) => ("notifications/resources/updated", json!({"uri": uri})),
        }
    }

    /// Whether a subscription with `filter` (a `SubscriptionFilter`) wants this change.
    fn wanted_by(&self, filter: &Value) -> bool {
        match self {
            Self::Tools => filter["toolsListChanged"] == true,
            Self::Prompts => filter["promptsListChanged"] == true,
            Self::Resources => filter["resourcesListChanged"] == true,
            Self::Resource(uri) => filter["resourceSubscriptions"]
                .as_array()
                .is_some_and(|uris| uris.iter().any(|u| u == uri.as_str())),
        }
    }
}

/// Where an app announces changes; every open `subscriptions/listen` stream whose filter
/// wants a change gets it. Cloning shares the channel.
///
/// ```
/// let changes = nest_mcp::Changes::new();
/// assert_eq!(changes.publish(nest_mcp::Change::Tools), 0); // nobody listens yet
/// ```
#[derive(Debug, Clone)]
pub struct Changes {
    tx: broadcast::Sender<Change>,
    listeners: Arc<AtomicUsize>,
}

impl Default for Changes {
    fn default() -> Self {
        Self::new()
    }
}

impl Changes {
    /// A channel that holds up to 64 changes for a slow stream (older ones are skipped).
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(64).0,
            listeners: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Announces `change`; returns how many streams are open to hear it.
    pub fn publish(&self, change: Change) -> usize {
        self.tx.send(change).unwrap_or(0)
    }

    /// How many listen streams are open.
    pub fn listeners(&self) -> usize {
        self.listeners.load(Ordering::Relaxed)
    }

    pub(crate) fn subscribe(&self, max: usize) -> Option<Listener> {
        let previous = self.listeners.fetch_add(1, Ordering::Relaxed);
        let listener = Listener {
            rx: self.tx.subscribe(),
            count: self.listeners.clone(),
        };
        (previous < max).then_some(listener)
    }
}

/// One open listen stream: counted while it lives.
pub(crate) struct Listener {
    rx: broadcast::Receiver<Change>,
    count: Arc<AtomicUsize>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Listener {
    /// The next change `filter` wants, as a notification tagged with `id`; `None` when the
    /// channel is gone.
    pub(crate) async fn next(&mut self, filter: &Value, id: &Value) -> Option<Value> {
        loop {
            match self.rx.recv().await {
                Ok(change) if change.wanted_by(filter) => {
                    let (method, mut params) = change.notification();
                    params["_meta"] = json!({ META_SUBSCRIPTION_ID: id });
                    return Some(json!({"jsonrpc": "2.0", "method": method, "params": params}));
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// The first message on a listen stream.
pub(crate) fn acknowledged(filter: &Value, id: &Value) -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
           "params": {"notifications": filter, "_meta": { META_SUBSCRIPTION_ID: id }}})
}
