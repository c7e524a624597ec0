//! The event types of an SSE route as the document describes them.

use schemars::{JsonSchema, Schema, SchemaGenerator};

/// The event types of a stream, for the document: what nest-core's `SseEvents` adds to the
/// events it sends (`#[derive(SseEvents)]` writes both), and what
/// [`Operation::sse_events`](crate::Operation::sse_events) lists.
///
/// # Example
///
/// ```
/// use nest_openapi::{EventSchema, EventSchemas, Operation};
/// use schemars::SchemaGenerator;
///
/// struct Tick;
///
/// impl EventSchemas for Tick {
///     fn event_schemas(generator: &mut SchemaGenerator) -> Vec<EventSchema> {
///         vec![EventSchema::json::<u64>("tick", generator).description("One second passed")]
///     }
/// }
///
/// let events = Tick::event_schemas(&mut SchemaGenerator::default());
/// assert_eq!(events[0].name(), "tick");
/// let _op = Operation::default().sse_events::<Tick>();
/// ```
pub trait EventSchemas {
    /// Every event type, with the schema of its data.
    fn event_schemas(generator: &mut SchemaGenerator) -> Vec<EventSchema>;
}

/// One event type of a stream as the OpenAPI document describes it: its `event:` name and the
/// schema of its data.
#[derive(Debug, Clone)]
pub struct EventSchema {
    pub(crate) name: &'static str,
    pub(crate) description: Option<&'static str>,
    pub(crate) data: EventData,
}

/// What an event's data is.
#[derive(Debug, Clone)]
pub(crate) enum EventData {
    /// JSON of this schema.
    Json(Schema),
    /// Text.
    Text,
    /// Nothing (`data:` with an empty value).
    Empty,
}

impl EventSchema {
    /// An event named `name` whose data is a `T` as JSON.
    pub fn json<T: JsonSchema + ?Sized>(
        name: &'static str,
        generator: &mut SchemaGenerator,
    ) -> Self {
        Self {
            name,
            description: None,
            data: EventData::Json(generator.subschema_for::<T>()),
        }
    }

    /// An event named `name` whose data is text, not JSON.
    pub fn text(name: &'static str) -> Self {
        Self {
            name,
            description: None,
            data: EventData::Text,
        }
    }

    /// An event named `name` with empty data.
    pub fn empty(name: &'static str) -> Self {
        Self {
            name,
            description: None,
            data: EventData::Empty,
        }
    }

    /// What the event means, for the document.
    #[must_use]
    pub fn description(mut self, description: &'static str) -> Self {
        self.description = Some(description);
        self
    }

    /// The event's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}
