//! Handlers: async functions of the controller and any extractors.
//!
//! A handler is any `Fn(Arc<C>, T1, …, Tn) -> impl Future<Output = impl IntoResponse>` where each `Ti`
//! is a [`FromRequest`] extractor (up to 12, in any order). An `async fn method(self: Arc<Self>, …)`
//! on the controller is one, and so is a closure.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use nest_core::{handler::Handler, extract::Query};
//!
//! struct Hello;
//! impl Hello {
//!     async fn greet(self: Arc<Self>, Query(q): Query<std::collections::HashMap<String, String>>) -> String {
//!         format!("hello {}", q.get("name").map(String::as_str).unwrap_or("world"))
//!     }
//! }
//! fn assert_handler<C, A, H: Handler<C, A>>(_: H) {}
//! assert_handler(Hello::greet);
//! ```

use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::extract::{Dependencies, FromRequest, RequestCtx};
use crate::response::{IntoResponse, Response};

/// An async function that handles a request for a controller of type `C`; `Args` are its extractors.
pub trait Handler<C, Args>: Clone + Send + Sync + 'static {
    /// Runs the extractors, then the handler, and turns its result into a response.
    fn call(&self, this: Arc<C>, req: RequestCtx) -> BoxFuture<'static, Response>;

    /// Declares what the extractors need from the app (checked when the app is built).
    fn declare(deps: &mut Dependencies);
}

macro_rules! impl_handler {
    ($($ty:ident),*) => {
        #[allow(non_snake_case, unused_mut, unused_variables)]
        impl<C, F, Fut, R, $($ty,)*> Handler<C, ($($ty,)*)> for F
        where
            C: Send + Sync + 'static,
            F: Fn(Arc<C>, $($ty,)*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoResponse,
            $($ty: FromRequest + 'static,)*
        {
            fn call(&self, this: Arc<C>, mut req: RequestCtx) -> BoxFuture<'static, Response> {
                let f = self.clone();
                Box::pin(async move {
                    $(
                        let $ty = match $ty::from_request(&mut req).await {
                            Ok(value) => value,
                            Err(rejection) => return rejection.into_response(),
                        };
                    )*
                    f(this, $($ty,)*).await.into_response()
                })
            }

            fn declare(deps: &mut Dependencies) {
                $($ty::declare(deps);)*
            }
        }
    };
}

impl_handler!();
impl_handler!(T1);
impl_handler!(T1, T2);
impl_handler!(T1, T2, T3);
impl_handler!(T1, T2, T3, T4);
impl_handler!(T1, T2, T3, T4, T5);
impl_handler!(T1, T2, T3, T4, T5, T6);
impl_handler!(T1, T2, T3, T4, T5, T6, T7);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8, T9);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12);
