//! Security schemes: how a guarded route wants to be called.

use serde_json::{json, Value};

/// A named security scheme (`components.securitySchemes`), required by the routes whose guards
/// declare it (nest-core's `CanActivate::security`) or that say so with
/// [`Operation::security`](crate::Operation::security).
///
/// # Example
///
/// ```
/// use nest_openapi::SecurityScheme;
///
/// let bearer = SecurityScheme::bearer("bearerAuth").bearer_format("JWT");
/// assert_eq!(bearer.name(), "bearerAuth");
/// let key = SecurityScheme::api_key_header("apiKey", "x-api-key");
/// assert_eq!(key.name(), "apiKey");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct SecurityScheme {
    name: String,
    scheme: Value,
}

impl SecurityScheme {
    /// `Authorization: Bearer …`.
    pub fn bearer(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            scheme: json!({ "type": "http", "scheme": "bearer" }),
        }
    }

    /// A key in a request header.
    pub fn api_key_header(name: impl Into<String>, header: &str) -> Self {
        Self::api_key(name, "header", header)
    }

    /// A key in a cookie.
    pub fn api_key_cookie(name: impl Into<String>, cookie: &str) -> Self {
        Self::api_key(name, "cookie", cookie)
    }

    /// A key in the query string.
    pub fn api_key_query(name: impl Into<String>, parameter: &str) -> Self {
        Self::api_key(name, "query", parameter)
    }

    fn api_key(name: impl Into<String>, location: &str, key: &str) -> Self {
        Self {
            name: name.into(),
            scheme: json!({ "type": "apiKey", "in": location, "name": key }),
        }
    }

    /// What the bearer token is (`JWT`); a hint for readers.
    pub fn bearer_format(mut self, format: &str) -> Self {
        if let Some(object) = self.scheme.as_object_mut() {
            object.insert("bearerFormat".to_owned(), Value::from(format));
        }
        self
    }

    /// A description of the scheme.
    pub fn description(mut self, description: &str) -> Self {
        if let Some(object) = self.scheme.as_object_mut() {
            object.insert("description".to_owned(), Value::from(description));
        }
        self
    }

    /// The scheme's name in the document.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn object(&self) -> &Value {
        &self.scheme
    }
}
