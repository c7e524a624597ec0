//! OpenAPI 3.2 documents, made from the routes: the API describes itself.
//!
//! Every route is in the app's document ([`NestApp::openapi`](crate::NestApp::openapi),
//! [`NestService::openapi`](crate::NestService::openapi)) with its path, its path parameters,
//! its controller as a tag, its guards' security requirements, and its kind: an SSE route's
//! success response is `text/event-stream`. The types in the handler's signature say the rest
//! (schemas from `schemars`, JSON Schema 2020-12 as OpenAPI 3.1 and 3.2 use it):
//!
//! - [`Path<T>`](crate::extract::Path) and [`Query<T>`](crate::extract::Query): typed
//!   parameters (`T: JsonSchema`);
//! - [`Json<T>`](crate::Json) as an argument: the request body; as the result: the success body;
//! - `Result<_, HttpException>`: any other status with the `HttpException` body;
//! - [`TypedSseBody<E>`](crate::sse::TypedSseBody): the stream's events, one `itemSchema` branch
//!   per event type of `E` ([`SseEvents`](crate::sse::SseEvents)); an untyped
//!   [`SseBody`](crate::sse::SseBody) is any events.
//!
//! `#[controller]` routes read their types by themselves (and their summary from the method's
//! doc comment); a trait-style route opts in with [`RouteConfig::doc`](crate::RouteConfig::doc),
//! which also adds what types cannot say: a summary, the errors the handler answers, a header
//! it reads by hand ([`Operation`]).
//!
//! [`NestApp::openapi_route`](crate::NestApp::openapi_route) serves the document, and a docs
//! page if asked ([`OpenApiRoute`], [`Viewer`]).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use nest_core::prelude::*;
//! use nest_core::openapi::{Info, OpenApiRoute};
//! use nest_core::sse::{get_typed_sse_stream, SseEvents, TypedSseBody};
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Room { room: String }
//!
//! #[derive(Serialize, JsonSchema)]
//! struct Message { text: String }
//!
//! #[derive(SseEvents)]
//! enum RoomEvent {
//!     /// A message in the room.
//!     Message(Message),
//! }
//!
//! struct Rooms;
//!
//! impl Rooms {
//!     async fn events(self: Arc<Self>, Path(p): Path<Room>) -> Result<TypedSseBody<RoomEvent>, HttpException> {
//!         let (writer, body) = get_typed_sse_stream(SseOptions::new());
//!         writer.write(RoomEvent::Message(Message { text: format!("welcome to {}", p.room) })).unwrap();
//!         Ok(body)
//!     }
//! }
//!
//! impl Controller for Rooms {
//!     fn routes(r: &mut Routes<Self>) {
//!         r.sse("/rooms/:room/events", Self::events).doc(|op| op.summary("A room's events"));
//!     }
//! }
//!
//! let app = NestApp::new()
//!     .controller(Rooms)
//!     .openapi_info(Info::new("Rooms", "1.0.0"))
//!     .openapi_route(OpenApiRoute::new("/openapi.json").docs("/docs"));
//! let doc = app.openapi().unwrap();
//! assert_eq!(doc["openapi"], "3.2.0");
//! let op = &doc["paths"]["/rooms/{room}/events"]["get"];
//! assert_eq!(op["parameters"][0]["schema"]["type"], "string");
//! let item = &op["responses"]["200"]["content"]["text/event-stream"]["itemSchema"];
//! assert_eq!(item["oneOf"][0]["properties"]["event"]["const"], "message");
//! assert_eq!(item["oneOf"][0]["properties"]["data"]["contentSchema"]["$ref"], "#/components/schemas/Message");
//! ```

mod describe;

#[doc(hidden)]
pub mod __private;

pub use describe::{DescribeInput, DescribeInputs, DescribeOutput};
/// The document model, from `nest-openapi`.
pub use nest_openapi::{
    schemars, EventSchema, EventSchemas, Info, OpenApiRoute, Operation, SecurityScheme, Viewer,
};
