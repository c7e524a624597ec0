//! The app's shared context: what every request of an app can reach (state, limits, the
//! shutdown signal, SSE figures). It sits below the extractors, the router and the app, which
//! all read it; it imports nothing above the ground (config).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;

/// What every request of an app can reach: state, limits, the shutdown signal, SSE figures.
#[derive(Debug, Default)]
pub(crate) struct AppShared {
    pub(crate) states: StateMap,
    pub(crate) config: ServerConfig,
    pub(crate) shutdown: CancellationToken,
    pub(crate) live_sse: Arc<AtomicUsize>,
    /// Set when a shutdown was requested: readiness turns false (see `health`).
    pub(crate) draining: AtomicBool,
    /// Cancelled when `draining` is set, for handlers that wait for it
    /// (`Readiness::draining`).
    pub(crate) drain_signal: CancellationToken,
}

/// The app's shared state, one value per type.
#[derive(Debug, Default, Clone)]
pub(crate) struct StateMap(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl StateMap {
    pub(crate) fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Arc::new(value));
    }

    pub(crate) fn get<T: Clone + 'static>(&self) -> Option<T> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }

    pub(crate) fn contains(&self, id: TypeId) -> bool {
        self.0.contains_key(&id)
    }
}
