//! The document: every route's operation, with the schemas they name defined once.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::OnceLock;

use http::{Method, StatusCode};
use schemars::{generate::SchemaSettings, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::events::EventData;
use crate::operation::{Content, ParamDoc, Status};
use crate::{EventSchema, Info, Operation, SecurityScheme};

/// The OpenAPI version of the documents nest writes.
pub const OPENAPI_VERSION: &str = "3.2.0";

/// Where schemas are defined, and how `$ref`s name them.
const SCHEMAS: &str = "/components/schemas";

/// The name of the `HttpException` body's schema.
const ERROR_SCHEMA: &str = "HttpException";

/// One route as the document sees it (nest-core makes one per route of an app).
#[derive(Debug)]
pub struct RouteDoc {
    /// The route's method; `None`: every method.
    pub method: Option<Method>,
    /// The full path, NestJS syntax (`/users/:id`, `/files/*path`).
    pub path: String,
    /// Whether it is an SSE route (its success response is `text/event-stream`).
    pub sse: bool,
    /// The success status (`http_code`, or a redirect's), when it is not 200.
    pub status: Option<u16>,
    /// Whether guards run before it (it may then answer 403).
    pub guarded: bool,
    /// What its guards declare.
    pub security: Vec<SecurityScheme>,
    /// `std::any::type_name` of the controller (its tag is the last segment) and of the
    /// handler (its `operationId` unless the operation names one).
    pub controller: &'static str,
    /// See [`controller`](Self::controller).
    pub handler: &'static str,
    /// What the handler's types and the route's `.doc` say.
    pub operation: Operation,
}

/// An app's document, made the first time it is asked for: an app that never asks pays nothing.
#[derive(Debug)]
pub struct Document {
    info: Info,
    routes: Vec<RouteDoc>,
    document: OnceLock<Value>,
}

impl Document {
    /// The document of these routes, made when first asked for.
    pub fn new(info: Info, routes: Vec<RouteDoc>) -> Self {
        Self {
            info,
            routes,
            document: OnceLock::new(),
        }
    }

    /// The document, made now if it was not yet.
    pub fn get(&self) -> &Value {
        self.document
            .get_or_init(|| build(&self.info, &self.routes))
    }

    /// The title of the document's API.
    pub fn title(&self) -> &str {
        self.info.title()
    }
}

/// The methods a route for every method is listed under.
const ALL_METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// The methods OpenAPI 3.2 has fields for; others go under `additionalOperations`.
const FIXED_METHODS: [&str; 9] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace", "query",
];

/// Builds the document.
fn build(info: &Info, routes: &[RouteDoc]) -> Value {
    let mut builder = Builder {
        schemas: SchemaSettings::draft2020_12()
            .with(|s| {
                s.definitions_path = SCHEMAS.into();
                s.meta_schema = None;
            })
            .into_generator(),
        inline: SchemaSettings::draft2020_12()
            .with(|s| {
                s.inline_subschemas = true;
                s.meta_schema = None;
            })
            .into_generator(),
        uses_error: false,
        security: BTreeMap::new(),
        ids: HashSet::new(),
    };
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut tags = BTreeSet::new();
    for route in routes.iter().filter(|r| !r.operation.hidden) {
        let Ok(parsed) = nest_path::parse(&route.path) else {
            continue; // the router refused it: the app does not build
        };
        let methods: Vec<String> = match &route.method {
            Some(method) => vec![method.as_str().to_owned()],
            None => ALL_METHODS.iter().map(|m| m.to_ascii_uppercase()).collect(),
        };
        let params: Vec<&str> = parsed.params().collect();
        let wildcard = parsed.has_wildcard();
        let key = parsed.to_matchit().replace("{*", "{");
        let item = paths.entry(key).or_default();
        for method in methods {
            let tag = short_name(route.controller);
            tags.insert(tag.clone());
            let op = builder.operation(route, &method, &tag, &params, wildcard);
            let lower = method.to_ascii_lowercase();
            if FIXED_METHODS.contains(&lower.as_str()) {
                item.insert(lower, op);
            } else {
                let extra = item
                    .entry("additionalOperations")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(extra) = extra.as_object_mut() {
                    extra.insert(method, op);
                }
            }
        }
    }

    let mut info_object = json!({ "title": info.title, "version": info.version });
    if let Some(description) = &info.description {
        info_object["description"] = Value::from(description.as_str());
    }
    let mut document = json!({
        "openapi": OPENAPI_VERSION,
        "info": info_object,
        "tags": tags.iter().map(|t| json!({ "name": t })).collect::<Vec<_>>(),
        "paths": paths,
    });
    let mut schemas = builder.schemas.take_definitions(true);
    if builder.uses_error {
        schemas.insert(ERROR_SCHEMA.to_owned(), error_schema());
    }
    let mut components = Map::new();
    if !schemas.is_empty() {
        components.insert("schemas".to_owned(), Value::Object(schemas));
    }
    if !builder.security.is_empty() {
        components.insert("securitySchemes".to_owned(), json!(builder.security));
    }
    if !components.is_empty() {
        document["components"] = Value::Object(components);
    }
    document
}

/// The body of every `HttpException`, NestJS's error shape.
fn error_schema() -> Value {
    json!({
        "description": "An error, in NestJS's shape: `{\"statusCode\":404,\"message\":\"no such room\",\"error\":\"Not Found\"}`",
        "type": "object",
        "properties": {
            "statusCode": { "type": "integer", "minimum": 100, "maximum": 999, "description": "The response's status" },
            "message": { "type": "string", "description": "What went wrong" },
            "error": { "type": "string", "description": "The status's reason phrase, when the message is not it" }
        },
        "required": ["statusCode", "message"]
    })
}

/// `app::chat::ChatController` → `ChatController`; `health::ready<app::Ops>` → `ready`.
fn short_name(type_name: &str) -> String {
    let base = type_name.split('<').next().unwrap_or(type_name);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

struct Builder {
    /// Defines named types under `#/components/schemas`.
    schemas: SchemaGenerator,
    /// Inlines everything: parameters are listed field by field.
    inline: SchemaGenerator,
    uses_error: bool,
    security: BTreeMap<String, Value>,
    ids: HashSet<String>,
}

impl Builder {
    fn operation(
        &mut self,
        route: &RouteDoc,
        method: &str,
        tag: &str,
        params: &[&str],
        wildcard: bool,
    ) -> Value {
        let op = &route.operation;
        let mut out = Map::new();
        let mut tags = vec![tag.to_owned()];
        tags.extend(op.tags.iter().cloned());
        out.insert("tags".to_owned(), json!(tags));
        if let Some(summary) = &op.summary {
            out.insert("summary".to_owned(), json!(summary));
        }
        if let Some(description) = &op.description {
            out.insert("description".to_owned(), json!(description));
        }
        out.insert(
            "operationId".to_owned(),
            json!(self.operation_id(route, method)),
        );
        let parameters = self.parameters(op, params, wildcard);
        if !parameters.is_empty() {
            out.insert("parameters".to_owned(), Value::Array(parameters));
        }
        if let Some(body) = &op.body {
            out.insert(
                "requestBody".to_owned(),
                json!({ "required": true, "content": self.content(body.content) }),
            );
        }
        out.insert("responses".to_owned(), self.responses(route));
        let mut security: Vec<&SecurityScheme> = route.security.iter().collect();
        security.extend(op.security.iter());
        if !security.is_empty() {
            let requirements: Vec<Value> = security
                .iter()
                .map(|scheme| {
                    self.security
                        .insert(scheme.name().to_owned(), scheme.object().clone());
                    json!({ scheme.name(): [] })
                })
                .collect();
            out.insert("security".to_owned(), Value::Array(requirements));
        }
        if op.deprecated {
            out.insert("deprecated".to_owned(), Value::Bool(true));
        }
        Value::Object(out)
    }

    /// The operation's own id, or the controller's and handler's names (a named function), or
    /// the method and path; unique in the document.
    fn operation_id(&mut self, route: &RouteDoc, method: &str) -> String {
        let base = match &route.operation.operation_id {
            Some(id) => id.clone(),
            None if !route.handler.contains("{{") => format!(
                "{}_{}",
                short_name(route.controller),
                short_name(route.handler)
            ),
            None => {
                let path: String = route
                    .path
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                let path = path.trim_matches('_');
                let path = if path.is_empty() { "root" } else { path };
                format!("{}_{path}", method.to_ascii_lowercase())
            }
        };
        let mut id = base.clone();
        let mut n = 2;
        while !self.ids.insert(id.clone()) {
            id = format!("{base}_{n}");
            n += 1;
        }
        id
    }

    fn parameters(&mut self, op: &Operation, names: &[&str], wildcard: bool) -> Vec<Value> {
        let mut out = Vec::new();
        let path_schema = op.params.iter().find_map(|p| match p {
            ParamDoc::Path(schema) => Some(schema(&mut self.inline).to_value()),
            _ => None,
        });
        for (i, name) in names.iter().enumerate() {
            let schema = match &path_schema {
                Some(schema) => match schema.get("properties") {
                    Some(fields) => fields.get(*name).cloned(),
                    None if names.len() == 1 => Some(schema.clone()),
                    None => None,
                },
                None => None,
            };
            let mut param = json!({
                "name": name,
                "in": "path",
                "required": true,
                "schema": schema.unwrap_or_else(|| json!({ "type": "string" })),
            });
            if wildcard && i == names.len() - 1 {
                param["description"] = json!("The rest of the path (one segment or more)");
            }
            out.push(param);
        }
        for param in &op.params {
            match param {
                ParamDoc::Path(_) => {}
                ParamDoc::Query(schema) => {
                    let schema = schema(&mut self.inline).to_value();
                    let required: Vec<&str> = schema
                        .get("required")
                        .and_then(Value::as_array)
                        .map(|r| r.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    if let Some(fields) = schema.get("properties").and_then(Value::as_object) {
                        for (name, field) in fields {
                            out.push(json!({
                                "name": name,
                                "in": "query",
                                "required": required.contains(&name.as_str()),
                                "schema": field,
                            }));
                        }
                    }
                }
                ParamDoc::Header {
                    name,
                    description,
                    required,
                    schema,
                } => {
                    let schema = match schema {
                        Some(schema) => schema(&mut self.inline).to_value(),
                        None => json!({ "type": "string" }),
                    };
                    out.push(json!({
                        "name": name,
                        "in": "header",
                        "required": required,
                        "description": description,
                        "schema": schema,
                    }));
                }
            }
        }
        out
    }

    fn responses(&mut self, route: &RouteDoc) -> Value {
        let op = &route.operation;
        let success = op.success_status.or(route.status).unwrap_or(200);
        let mut responses: BTreeMap<Status, (Option<String>, Option<Content>)> = BTreeMap::new();
        // Success first: a response declared with the success status's code refines it.
        let mut declared: Vec<_> = op.responses.iter().collect();
        declared.sort_by_key(|r| r.status != Status::Success);
        for response in declared {
            let status = match response.status {
                Status::Code(code) if code == success => Status::Success,
                status => status,
            };
            let entry = responses.entry(status).or_insert((None, None));
            if response.description.is_some() {
                entry.0.clone_from(&response.description);
            }
            if response.content.is_some() {
                entry.1 = response.content;
            }
        }
        let default_success = route.sse.then_some(Content::EventStream(None));
        responses
            .entry(Status::Success)
            .or_insert((None, default_success));
        if route.guarded {
            responses.entry(Status::Code(403)).or_insert((
                Some("A guard refused the request".to_owned()),
                Some(Content::Error),
            ));
        }
        let mut out = Map::new();
        for (status, (description, content)) in responses {
            let (key, reason) = match status {
                Status::Success => (success.to_string(), reason(success, route.sse)),
                Status::Code(code) => (code.to_string(), reason(code, false)),
                Status::Default => ("default".to_owned(), "Any other status".to_owned()),
            };
            let mut response = json!({ "description": description.unwrap_or(reason) });
            if let Some(content) = content {
                response["content"] = self.content(content);
            }
            out.insert(key, response);
        }
        Value::Object(out)
    }

    fn content(&mut self, content: Content) -> Value {
        match content {
            Content::Json(schema) => {
                json!({ "application/json": { "schema": schema(&mut self.schemas) } })
            }
            Content::Text(media_type) => json!({ media_type: { "schema": { "type": "string" } } }),
            Content::Binary => json!({ "application/octet-stream": {} }),
            Content::Error => {
                self.uses_error = true;
                let reference = format!("#{SCHEMAS}/{ERROR_SCHEMA}");
                json!({ "application/json": { "schema": { "$ref": reference } } })
            }
            Content::EventStream(events) => {
                let events = events.map(|events| events(&mut self.schemas));
                json!({ "text/event-stream": { "itemSchema": item_schema(events.as_deref()) } })
            }
        }
    }
}

/// The reason phrase of `status`, as a response's description.
fn reason(status: u16, sse: bool) -> String {
    if sse && status == 200 {
        return "A stream of Server-Sent Events".to_owned();
    }
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Response")
        .to_owned()
}

/// One event of a stream, as OpenAPI 3.2 describes `text/event-stream` items: an object with the
/// fields a client's parser yields (`data` always, as text), and with typed events one branch
/// per event type, whose `data` is JSON of the event's schema (`contentSchema`).
fn item_schema(events: Option<&[EventSchema]>) -> Value {
    let mut item = json!({
        "type": "object",
        "properties": {
            "event": { "type": "string" },
            "data": { "type": "string" },
            "id": { "type": "string" },
            "retry": { "type": "integer", "minimum": 0 }
        },
        "required": ["data"]
    });
    if let Some(events) = events {
        let branches: Vec<Value> = events
            .iter()
            .map(|event| {
                let data = match &event.data {
                    EventData::Json(schema) => json!({
                        "contentMediaType": "application/json",
                        "contentSchema": schema,
                    }),
                    EventData::Text => json!({ "type": "string" }),
                    EventData::Empty => json!({ "const": "" }),
                };
                let mut branch = json!({
                    "title": event.name,
                    "properties": { "event": { "const": event.name }, "data": data },
                });
                // `message` is the type of an event without `event:`.
                if event.name != "message" {
                    branch["required"] = json!(["event"]);
                }
                if let Some(description) = event.description {
                    branch["description"] = json!(description);
                }
                branch
            })
            .collect();
        item["oneOf"] = Value::Array(branches);
    }
    item
}

#[cfg(test)]
mod tests {
    use super::short_name;

    #[test]
    fn names_types_and_functions_by_their_last_segment() {
        assert_eq!(short_name("chat::ChatController"), "ChatController");
        assert_eq!(short_name("nest_core::health::ready<chat::Ops>"), "ready");
        assert_eq!(short_name("Plain"), "Plain");
    }
}
