//! What each extractor and each response type says about a route: the handler's signature is
//! the source of its parameters, body and responses.

use std::borrow::Cow;
use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use schemars::JsonSchema;

use super::Operation;
use crate::body::Body;
use crate::extract::{Path, Query, RequestId, State};
use crate::health::Readiness;
use crate::response::{Html, HttpException, Json, Redirect, Response};
use crate::sse::{LastEventId, SseBody, SseEvents, TypedSseBody};

/// An extractor's part of a route's description: parameters, a body, the errors it answers.
///
/// Implemented for nest's extractors; [`Path<T>`], [`Query<T>`] and [`Json<T>`] need
/// `T: JsonSchema`. A custom extractor implements it (the default describes nothing) to be
/// used on a route with `.doc(…)`.
///
/// # Example
///
/// ```
/// use nest_core::openapi::{DescribeInput, Operation};
///
/// /// The `x-user` header, required.
/// struct User(String);
///
/// impl DescribeInput for User {
///     fn describe_input(op: Operation) -> Operation {
///         op.required_header("x-user", "Who asks").extractor_error(401, "No `x-user` header")
///     }
/// }
/// # let _ = User(String::new()).0;
/// ```
pub trait DescribeInput {
    /// Adds what this extractor reads and answers to `op`.
    fn describe_input(op: Operation) -> Operation {
        op
    }
}

/// A response type's part of a route's description: its success body and its errors.
///
/// # Example
///
/// ```
/// use nest_core::openapi::{DescribeOutput, Operation};
/// use nest_core::{IntoResponse, Json, Response};
///
/// /// A user, as JSON.
/// struct UserView(u64);
///
/// impl IntoResponse for UserView {
///     fn into_response(self) -> Response {
///         Json(serde_json::json!({ "id": self.0 })).into_response()
///     }
/// }
///
/// impl DescribeOutput for UserView {
///     fn describe_output(op: Operation) -> Operation {
///         op.json_success::<serde_json::Value>()
///     }
/// }
/// ```
pub trait DescribeOutput {
    /// Adds what this response is to `op`.
    fn describe_output(op: Operation) -> Operation {
        op
    }
}

/// A handler's extractors, all of which describe themselves: the tuple `.doc(…)` needs.
pub trait DescribeInputs {
    /// Describes each extractor in order.
    fn describe_inputs(op: Operation) -> Operation;
}

macro_rules! inputs {
    ($($ty:ident),*) => {
        impl<$($ty: DescribeInput,)*> DescribeInputs for ($($ty,)*) {
            #[allow(unused_mut)]
            fn describe_inputs(mut op: Operation) -> Operation {
                $(op = $ty::describe_input(op);)*
                op
            }
        }
    };
}

inputs!();
inputs!(T1);
inputs!(T1, T2);
inputs!(T1, T2, T3);
inputs!(T1, T2, T3, T4);
inputs!(T1, T2, T3, T4, T5);
inputs!(T1, T2, T3, T4, T5, T6);
inputs!(T1, T2, T3, T4, T5, T6, T7);
inputs!(T1, T2, T3, T4, T5, T6, T7, T8);
inputs!(T1, T2, T3, T4, T5, T6, T7, T8, T9);
inputs!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10);
inputs!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11);
inputs!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12);

// ===== extractors =====

impl<T: JsonSchema> DescribeInput for Path<T> {
    fn describe_input(op: Operation) -> Operation {
        op.path_params::<T>()
            .extractor_error(400, "A path parameter does not parse")
    }
}

impl<T: JsonSchema> DescribeInput for Query<T> {
    fn describe_input(op: Operation) -> Operation {
        op.query_params::<T>()
            .extractor_error(400, "The query string does not parse")
    }
}

/// The errors of every extractor that reads the body.
fn body_errors(op: Operation) -> Operation {
    op.extractor_error(400, "The body is not valid")
        .extractor_error(413, "The body is over the app's limit")
}

impl<T: JsonSchema> DescribeInput for Json<T> {
    fn describe_input(op: Operation) -> Operation {
        body_errors(op.json_body::<T>())
            .extractor_error(415, "The request is not `Content-Type: application/json`")
    }
}

impl DescribeInput for String {
    fn describe_input(op: Operation) -> Operation {
        body_errors(op.text_body("text/plain"))
    }
}

impl DescribeInput for Bytes {
    fn describe_input(op: Operation) -> Operation {
        body_errors(op.binary_body())
    }
}

impl DescribeInput for LastEventId {
    fn describe_input(op: Operation) -> Operation {
        op.header(
            "Last-Event-ID",
            "The id of the last event the client received: the stream resumes after it",
        )
    }
}

impl DescribeInput for RequestId {
    fn describe_input(op: Operation) -> Operation {
        op.header(
            "X-Request-Id",
            "The request's id, echoed in the response (one is made when absent)",
        )
    }
}

/// Extractors that read nothing a client chooses.
macro_rules! silent_inputs {
    ($($ty:ty),*) => {$(
        impl DescribeInput for $ty {}
    )*};
}

silent_inputs!(HeaderMap, Method, Uri, crate::Request, Readiness);

impl<T> DescribeInput for State<T> {}

// ===== responses =====

impl<T: JsonSchema> DescribeOutput for Json<T> {
    fn describe_output(op: Operation) -> Operation {
        op.json_success::<T>()
    }
}

impl DescribeOutput for serde_json::Value {
    fn describe_output(op: Operation) -> Operation {
        op.json_success::<serde_json::Value>()
    }
}

macro_rules! text_outputs {
    ($($ty:ty),*) => {$(
        impl DescribeOutput for $ty {
            fn describe_output(op: Operation) -> Operation {
                op.text_success("text/plain")
            }
        }
    )*};
}

text_outputs!(String, &'static str, Cow<'static, str>);

impl<T> DescribeOutput for Html<T> {
    fn describe_output(op: Operation) -> Operation {
        op.text_success("text/html")
    }
}

impl DescribeOutput for Bytes {
    fn describe_output(op: Operation) -> Operation {
        op.binary_success()
    }
}

impl DescribeOutput for Vec<u8> {
    fn describe_output(op: Operation) -> Operation {
        op.binary_success()
    }
}

/// Responses whose body or status their type does not tell.
macro_rules! silent_outputs {
    ($($ty:ty),*) => {$(
        impl DescribeOutput for $ty {}
    )*};
}

silent_outputs!((), StatusCode, Response, Body, Redirect, Infallible);

impl DescribeOutput for HttpException {
    fn describe_output(op: Operation) -> Operation {
        op.error_default()
    }
}

impl<T: DescribeOutput, E: DescribeOutput> DescribeOutput for Result<T, E> {
    fn describe_output(op: Operation) -> Operation {
        E::describe_output(T::describe_output(op))
    }
}

impl<T: DescribeOutput> DescribeOutput for (StatusCode, T) {
    fn describe_output(op: Operation) -> Operation {
        T::describe_output(op)
    }
}

impl<T: DescribeOutput> DescribeOutput for (HeaderMap, T) {
    fn describe_output(op: Operation) -> Operation {
        T::describe_output(op)
    }
}

impl<T: DescribeOutput> DescribeOutput for (StatusCode, HeaderMap, T) {
    fn describe_output(op: Operation) -> Operation {
        T::describe_output(op)
    }
}

impl<T: DescribeOutput, const N: usize> DescribeOutput for ([(HeaderName, HeaderValue); N], T) {
    fn describe_output(op: Operation) -> Operation {
        T::describe_output(op)
    }
}

impl DescribeOutput for SseBody {
    fn describe_output(op: Operation) -> Operation {
        op.sse_success()
    }
}

impl<E: SseEvents> DescribeOutput for TypedSseBody<E> {
    fn describe_output(op: Operation) -> Operation {
        op.sse_events::<E>()
    }
}
