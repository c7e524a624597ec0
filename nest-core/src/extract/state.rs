//! Shared state: registered on the app, extracted by type.

use super::{Dependencies, FromRequest, RequestCtx};
use crate::response::HttpException;

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
