//! Handlers: async functions of the controller and any extractors.
//!
//! A handler is any `Fn(Arc<C>, T1, …, Tn) -> impl Future<Output = impl IntoResponse>` where each `Ti`
//! is a [`FromRequest`] extractor (up to 12, in any order). An `async fn method(self: Arc<Self>, …)`
//! on the controller is one, and so is a closure.
//!
//! An SSE route's handler must return an [`SseResponse`]: the [`SseBody`], or a `Result` of it
//! (to refuse the stream with an error response before it starts). Anything else is a compile
//! error, so a route cannot serve `text/plain` or an empty `200` to an `EventSource`.
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
use std::marker::PhantomData;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::extract::{Dependencies, FromRequest, RequestCtx};
use crate::response::{IntoResponse, Response};
use crate::sse::{SseBody, TypedSseBody};

/// An async function that handles a request for a controller of type `C`; `Args` are its extractors.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a nest handler",
    label = "not a handler for controller `{C}`",
    note = "a handler takes `Arc<{C}>` first, then up to 12 extractors in any order, each \
            implementing `FromRequest` (`Path<T>`, `Query<T>`, `Json<T>`, `State<T>`, `String`, \
            `HeaderMap`, …)",
    note = "it is an `async fn` or a closure returning a future (`|this: Arc<{C}>| async move {{ … }}`), \
            whose output implements `IntoResponse`",
    note = "at most one extractor reads the body (`Json<T>`, `String`, `Bytes`)"
)]
pub trait Handler<C, Args>: Clone + Send + Sync + 'static {
    /// What the handler's future returns: the route's response, before `into_response`.
    type Output: IntoResponse;

    /// Runs the extractors, then the handler, and turns its result into a response.
    fn call(&self, this: Arc<C>, req: RequestCtx) -> BoxFuture<'static, Response>;

    /// Declares what the extractors need from the app (checked when the app is built).
    fn declare(deps: &mut Dependencies);
}

/// What the handler of a Server-Sent Events route returns: an [`SseBody`] (or a typed stream's
/// [`TypedSseBody`]), or `Result<SseBody, E>` where the error `E` is answered instead of a
/// stream (a 403 or 404 before the stream starts).
///
/// Sealed: no other type is a stream an `EventSource` can read, so registering an SSE route
/// ([`Routes::sse`](crate::Routes::sse), [`RouteConfig::sse`](crate::RouteConfig::sse),
/// `#[sse]`) with a handler returning anything else (`String`, `()`, even `Response`) does not
/// compile.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use nest_core::prelude::*;
///
/// struct Rooms;
///
/// impl Rooms {
///     async fn events(self: Arc<Self>, Path(room): Path<String>) -> Result<SseBody, HttpException> {
///         if room != "lobby" {
///             return Err(HttpException::not_found(format!("no room {room}")));
///         }
///         let (writer, body) = get_sse_stream(SseOptions::new());
///         writer.write("welcome").unwrap();
///         Ok(body)
///     }
/// }
///
/// impl Controller for Rooms {
///     fn routes(r: &mut Routes<Self>) {
///         r.sse("/rooms/:room/events", Self::events);
///     }
/// }
/// assert!(NestApp::new().controller(Rooms).into_service().is_ok());
/// ```
///
/// A handler that returns text is refused at compile time:
///
/// ```compile_fail
/// # use std::sync::Arc;
/// # use nest_core::prelude::*;
/// struct Text;
/// impl Controller for Text {
///     fn routes(r: &mut Routes<Self>) {
///         r.sse("/events", |_: Arc<Self>| async { "data: hi\n\n" });
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an SSE response",
    label = "an SSE route returns `SseBody` or `Result<SseBody, E>`",
    note = "return the body from `get_sse_stream(…)` or a hub's `subscribe(…)`; to refuse the \
            stream before it starts, return `Result<SseBody, HttpException>` and answer \
            `Err(HttpException::…)`"
)]
pub trait SseResponse: IntoResponse + sealed::Sealed {}

impl SseResponse for SseBody {}
impl<E: IntoResponse> SseResponse for Result<SseBody, E> {}
impl<T> SseResponse for TypedSseBody<T> {}
impl<T, E: IntoResponse> SseResponse for Result<TypedSseBody<T>, E> {}

mod sealed {
    use super::{IntoResponse, SseBody, TypedSseBody};

    /// Keeps [`SseResponse`](super::SseResponse) to the types nest-core says are SSE responses.
    pub trait Sealed {}

    impl Sealed for SseBody {}
    impl<E: IntoResponse> Sealed for Result<SseBody, E> {}
    impl<T> Sealed for TypedSseBody<T> {}
    impl<T, E: IntoResponse> Sealed for Result<TypedSseBody<T>, E> {}
}

/// Used by the code `#[controller]` generates; not a public API.
#[doc(hidden)]
pub mod __private {
    use super::{PhantomData, SseResponse};

    /// Proof that `T` is an [`SseResponse`]: made where the macro names the handler's return
    /// type, so that a wrong one is reported there, once.
    #[derive(Debug)]
    pub struct IsSse<T>(PhantomData<fn() -> T>);

    /// Makes the proof; fails to compile unless `T` is an SSE response.
    pub fn assert_sse<T: SseResponse>() -> IsSse<T> {
        IsSse(PhantomData)
    }
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
            type Output = R;

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
