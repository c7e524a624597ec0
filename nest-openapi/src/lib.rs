//! The OpenAPI 3.2 document model of nest: what a route's operation says ([`Operation`]), the
//! schemes that guard it ([`SecurityScheme`]), the event types of an SSE route
//! ([`EventSchemas`]), the document's `info` ([`Info`]), where it is served and the docs page
//! that shows it ([`OpenApiRoute`], [`Viewer`]), and the document itself, written from the
//! routes an app hands it ([`Document`]).
//!
//! nest-core fills it from each handler's types and re-exports it as `nest_core::openapi`
//! (and `nest::openapi`), which is where apps reach it; this crate has no web framework in it.
//!
//! # Example
//!
//! ```
//! use http::Method;
//! use nest_openapi::{Document, Info, Operation, RouteDoc};
//!
//! let route = RouteDoc {
//!     method: Some(Method::GET),
//!     path: "/users/:id".into(),
//!     sse: false,
//!     status: None,
//!     guarded: false,
//!     security: Vec::new(),
//!     controller: "app::Users",
//!     handler: "app::Users::get",
//!     operation: Operation::default().summary("A user").json_success::<String>(),
//! };
//! let document = Document::new(Info::new("Users", "1.0.0"), vec![route]);
//! let doc = document.get();
//! assert_eq!(doc["openapi"], "3.2.0");
//! let op = &doc["paths"]["/users/{id}"]["get"];
//! assert_eq!(op["summary"], "A user");
//! assert_eq!(op["parameters"][0]["name"], "id");
//! ```

mod document;
mod events;
mod operation;
mod security;
mod serve;

pub use document::{Document, RouteDoc, OPENAPI_VERSION};
pub use events::{EventSchema, EventSchemas};
pub use operation::Operation;
pub use security::SecurityScheme;
pub use serve::{OpenApiRoute, Viewer};

/// The schemars crate nest's schemas come from, for crates that do not depend on it themselves:
/// its derive then needs to be told where it is,
/// `#[derive(JsonSchema)] #[schemars(crate = "nest_core::openapi::schemars")]`.
pub use schemars;

/// The document's `info`: the API's title, version and description.
///
/// # Example
///
/// ```
/// use nest_openapi::Info;
///
/// let info = Info::new("Chat", "1.2.0").description("A chat on Server-Sent Events");
/// assert_eq!(info.title(), "Chat");
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Info {
    pub(crate) title: String,
    pub(crate) version: String,
    pub(crate) description: Option<String>,
}

impl Info {
    /// A title and the API's version (not nest's, nor OpenAPI's).
    pub fn new(title: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            version: version.into(),
            description: None,
        }
    }

    /// A description (CommonMark).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The title.
    pub fn title(&self) -> &str {
        &self.title
    }
}

impl Default for Info {
    /// `nest app`, version `0.0.0`.
    fn default() -> Self {
        Self::new("nest app", "0.0.0")
    }
}
