//! What the document says about one route: the builder of `.doc(|op| …)` and what the
//! handler's types add to it.

use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::{EventSchema, EventSchemas, SecurityScheme};

/// A schema made when the document is built, in its one generator (so that every type is
/// defined once, under `#/components/schemas`).
pub(crate) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The event types of a typed stream.
pub(crate) type EventsFn = fn(&mut SchemaGenerator) -> Vec<EventSchema>;

/// What a request or response body holds.
#[derive(Clone, Copy)]
pub(crate) enum Content {
    /// `application/json` with this schema.
    Json(SchemaFn),
    /// Text of this media type.
    Text(&'static str),
    /// `application/octet-stream`.
    Binary,
    /// `application/json` in the `HttpException` shape.
    Error,
    /// `text/event-stream`: items of these event types, or any events.
    EventStream(Option<EventsFn>),
}

/// Which status a response is documented under.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Status {
    /// The route's success status: `http_code`, a redirect's, or 200.
    Success,
    /// A status code.
    Code(u16),
    /// Any other status (OpenAPI's `default`).
    Default,
}

pub(crate) struct ResponseDoc {
    pub(crate) status: Status,
    pub(crate) description: Option<String>,
    pub(crate) content: Option<Content>,
}

/// Parameters the document lists.
pub(crate) enum ParamDoc {
    /// The path's parameters: the fields of this type, or its one value.
    Path(SchemaFn),
    /// Query parameters: the fields of this type.
    Query(SchemaFn),
    /// A header.
    Header {
        name: String,
        description: String,
        required: bool,
        /// The value's schema; a string when `None`.
        schema: Option<SchemaFn>,
    },
}

pub(crate) struct BodyDoc {
    pub(crate) content: Content,
}

fn schema_of<T: JsonSchema + ?Sized>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// The OpenAPI operation of a route, as `.doc(|op| …)` (and `#[controller]`) build it. The
/// handler's types fill in its parameters, body and responses; the builder adds what types
/// cannot say: a summary, the errors a handler answers, headers it reads by hand.
///
/// # Example
///
/// ```
/// use nest_openapi::{Document, Info, Operation, RouteDoc};
///
/// #[derive(schemars::JsonSchema)]
/// struct NewUser { name: String }
///
/// // What `Json<NewUser>` as the argument, `Result<Json<u64>, HttpException>` as the result and
/// // `.http_code(201)` describe in nest-core, then what the route's `.doc(|op| …)` adds:
/// let op = Operation::default()
///     .json_body::<NewUser>()
///     .json_success::<u64>()
///     .error_default()
///     .summary("Create a user")
///     .response(409, "The name is taken")
///     .header("Idempotency-Key", "Stores the user once however often it is retried");
/// let route = RouteDoc {
///     method: Some(http::Method::POST),
///     path: "/users".into(),
///     sse: false,
///     status: Some(201),
///     guarded: false,
///     security: Vec::new(),
///     controller: "app::Users",
///     handler: "app::Users::create",
///     operation: op,
/// };
/// let doc = Document::new(Info::default(), vec![route]);
/// let op = &doc.get()["paths"]["/users"]["post"];
/// assert_eq!(op["summary"], "Create a user");
/// assert_eq!(op["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/NewUser");
/// assert_eq!(op["responses"]["201"]["content"]["application/json"]["schema"]["type"], "integer");
/// assert_eq!(op["responses"]["409"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/HttpException");
/// assert_eq!(op["parameters"][0]["in"], "header");
/// ```
#[derive(Default)]
#[must_use]
pub struct Operation {
    pub(crate) summary: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) operation_id: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) deprecated: bool,
    pub(crate) hidden: bool,
    pub(crate) params: Vec<ParamDoc>,
    pub(crate) body: Option<BodyDoc>,
    pub(crate) responses: Vec<ResponseDoc>,
    pub(crate) security: Vec<SecurityScheme>,
    pub(crate) success_status: Option<u16>,
    /// Whether the handler's types were described (once, however often `.doc` is called).
    typed: bool,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("summary", &self.summary)
            .field("operation_id", &self.operation_id)
            .field("tags", &self.tags)
            .finish_non_exhaustive()
    }
}

impl Operation {
    /// A one-line summary.
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }

    /// A longer description (CommonMark).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The operation's id (by default the controller's name and the handler's, or the method
    /// and the path).
    pub fn operation_id(mut self, id: impl Into<String>) -> Self {
        self.operation_id = Some(id.into());
        self
    }

    /// A tag besides the controller's.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Marks the operation deprecated.
    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }

    /// Leaves the route out of the document.
    pub fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }

    /// A response the handler may answer: an error status (4xx, 5xx) has the `HttpException`
    /// body (`{statusCode, message, error}`); any other has none.
    pub fn response(mut self, status: u16, description: impl Into<String>) -> Self {
        let content = (status >= 400).then_some(Content::Error);
        self.set_response(Status::Code(status), Some(description.into()), content);
        self
    }

    /// A response with a JSON body of type `T`.
    pub fn json_response<T: JsonSchema>(
        mut self,
        status: u16,
        description: impl Into<String>,
    ) -> Self {
        let content = Some(Content::Json(schema_of::<T>));
        self.set_response(Status::Code(status), Some(description.into()), content);
        self
    }

    /// The success status when the handler's types cannot tell it (a handler that returns
    /// `(StatusCode, T)`); `http_code` sets it too.
    pub fn success_status(mut self, status: u16) -> Self {
        self.success_status = Some(status);
        self
    }

    /// An optional request header the handler reads by hand (from a `HeaderMap`).
    pub fn header(mut self, name: impl Into<String>, description: impl Into<String>) -> Self {
        self.params.push(ParamDoc::Header {
            name: name.into(),
            description: description.into(),
            required: false,
            schema: None,
        });
        self
    }

    /// An optional request header whose value follows `T`'s schema (a newtype with its length
    /// or pattern, say).
    pub fn typed_header<T: JsonSchema>(
        mut self,
        name: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.params.push(ParamDoc::Header {
            name: name.into(),
            description: description.into(),
            required: false,
            schema: Some(schema_of::<T>),
        });
        self
    }

    /// A required request header the handler reads by hand.
    pub fn required_header(
        mut self,
        name: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.params.push(ParamDoc::Header {
            name: name.into(),
            description: description.into(),
            required: true,
            schema: None,
        });
        self
    }

    /// The events of an SSE route whose body the types cannot tell (a hub's subscription is an
    /// untyped `SseBody`): `E`'s event types.
    pub fn sse_events<E: EventSchemas>(mut self) -> Self {
        self.set_success(Content::EventStream(Some(E::event_schemas)));
        self
    }

    /// A security requirement (guards declare theirs with
    /// nest-core's `CanActivate::security`).
    pub fn security(mut self, scheme: SecurityScheme) -> Self {
        self.security.push(scheme);
        self
    }

    // ===== what extractors and responses describe =====

    /// Path parameters: the fields of `T`, or `T` itself for a path with one parameter (what
    /// nest-core's `Path<T>` describes).
    pub fn path_params<T: JsonSchema>(mut self) -> Self {
        self.params.push(ParamDoc::Path(schema_of::<T>));
        self
    }

    /// Query parameters: the fields of `T` (what nest-core's `Query<T>` describes).
    pub fn query_params<T: JsonSchema>(mut self) -> Self {
        self.params.push(ParamDoc::Query(schema_of::<T>));
        self
    }

    /// A JSON request body of type `T` (what nest-core's `Json<T>` describes).
    pub fn json_body<T: JsonSchema>(mut self) -> Self {
        self.body = Some(BodyDoc {
            content: Content::Json(schema_of::<T>),
        });
        self
    }

    /// A text request body of this media type (what `String` describes, as `text/plain`).
    pub fn text_body(mut self, media_type: &'static str) -> Self {
        self.body = Some(BodyDoc {
            content: Content::Text(media_type),
        });
        self
    }

    /// A binary request body (what `Bytes` describes).
    pub fn binary_body(mut self) -> Self {
        self.body = Some(BodyDoc {
            content: Content::Binary,
        });
        self
    }

    /// The success response's body: JSON of type `T`.
    pub fn json_success<T: JsonSchema>(mut self) -> Self {
        self.set_success(Content::Json(schema_of::<T>));
        self
    }

    /// The success response's body: text of this media type.
    pub fn text_success(mut self, media_type: &'static str) -> Self {
        self.set_success(Content::Text(media_type));
        self
    }

    /// The success response's body: bytes.
    pub fn binary_success(mut self) -> Self {
        self.set_success(Content::Binary);
        self
    }

    /// The success response: a stream of any Server-Sent Events.
    pub fn sse_success(mut self) -> Self {
        self.set_success(Content::EventStream(None));
        self
    }

    /// Any other status, with the `HttpException` body (what a handler returning
    /// `Result<_, HttpException>` describes).
    pub fn error_default(mut self) -> Self {
        let description = Some("An `HttpException`".to_owned());
        self.add_response(Status::Default, description, Some(Content::Error));
        self
    }

    /// An error an extractor answers (`400` for a body that does not parse), unless the route
    /// already describes that status.
    pub fn extractor_error(mut self, status: u16, description: &str) -> Self {
        self.add_response(
            Status::Code(status),
            Some(description.to_owned()),
            Some(Content::Error),
        );
        self
    }

    /// Marks the handler's types as described; `true` the first time (nest-core describes them
    /// once, however often a route's `.doc` is called).
    #[doc(hidden)]
    pub fn __describe_types_once(&mut self) -> bool {
        !std::mem::replace(&mut self.typed, true)
    }

    /// How many parameters the operation lists (nest-core's tests).
    #[doc(hidden)]
    pub fn __parameter_count(&self) -> usize {
        self.params.len()
    }

    /// The status codes the builder was given (a response's, the success status): nest-core
    /// refuses a route whose document would name one outside 100–599.
    pub fn statuses(&self) -> impl Iterator<Item = u16> + '_ {
        let declared = self.responses.iter().filter_map(|r| match r.status {
            Status::Code(code) => Some(code),
            _ => None,
        });
        declared.chain(self.success_status)
    }

    fn set_success(&mut self, content: Content) {
        match self
            .responses
            .iter_mut()
            .find(|r| r.status == Status::Success)
        {
            Some(response) => response.content = Some(content),
            None => self.responses.push(ResponseDoc {
                status: Status::Success,
                description: None,
                content: Some(content),
            }),
        }
    }

    /// Sets a response, replacing one of the same status.
    fn set_response(
        &mut self,
        status: Status,
        description: Option<String>,
        content: Option<Content>,
    ) {
        self.responses.retain(|r| r.status != status);
        self.responses.push(ResponseDoc {
            status,
            description,
            content,
        });
    }

    /// Adds a response unless one of the same status is there.
    fn add_response(
        &mut self,
        status: Status,
        description: Option<String>,
        content: Option<Content>,
    ) {
        if !self.responses.iter().any(|r| r.status == status) {
            self.responses.push(ResponseDoc {
                status,
                description,
                content,
            });
        }
    }
}
