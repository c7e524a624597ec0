//! Shared state: registered on the app, extracted by type.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use super::{Dependencies, FromRequest, RequestCtx};
use crate::response::HttpException;

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

/// Shared state of type `T`, registered with `NestApp::state`. A route that takes `State<T>` for a
/// type the app never registered makes building the app fail, naming the type.
///
/// `T` is cloned per request: wrap large state in an `Arc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromRequest for State<T> {
    async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
        req.app().states.get::<T>().map(State).ok_or_else(|| {
            HttpException::internal_server_error(format!(
                "state of type `{}` was not registered on the app",
                std::any::type_name::<T>()
            ))
        })
    }

    fn declare(deps: &mut Dependencies) {
        deps.state::<T>();
    }
}
