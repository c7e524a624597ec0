//! The app's OpenAPI document, made from its routes, and the routes that serve it (the JSON and
//! the docs page of [`OpenApiRoute`]).

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue};

use crate::controller::{Controller, Route, RouteKind, Routes};
use crate::error::Error;
use crate::response::Html;
use nest_openapi::{Document, Info, OpenApiRoute, RouteDoc, Viewer};

/// The document of `routes`, made when first asked for (the routes' descriptions move into it).
pub(crate) fn document(info: Info, routes: &mut [Route]) -> Document {
    let docs: Vec<RouteDoc> = routes
        .iter_mut()
        .map(|route| RouteDoc {
            method: route.method.clone(),
            path: route.path.clone(),
            sse: matches!(route.kind, RouteKind::Sse { .. }),
            status: route
                .redirect
                .as_ref()
                .map(|(_, status)| status.as_u16())
                .or(route.status.map(|s| s.as_u16())),
            guarded: !route.guards.is_empty(),
            security: route.guards.iter().filter_map(|g| g.security()).collect(),
            controller: route.controller,
            handler: route.handler_name,
            operation: std::mem::take(&mut route.doc),
        })
        .collect();
    Document::new(info, docs)
}

/// The routes that serve `document` where `serve` says; an error names a viewer template that
/// cannot show it.
pub(crate) fn routes(serve: &OpenApiRoute, document: &Document) -> Result<Vec<Route>, Error> {
    if !serve.viewer_template().contains(Viewer::SPEC_URL) {
        return Err(Error::config(format!(
            "the OpenAPI docs page's viewer template has no `{}` for the document's URL",
            Viewer::SPEC_URL
        )));
    }
    let docs = Docs {
        json: Bytes::from(serde_json::to_vec(document.get()).unwrap_or_default()),
        page: serve.docs_path().map(|_| serve.page(document.title())),
        json_path: serve.json_path().to_owned(),
        docs_path: serve.docs_path().map(str::to_owned),
    };
    let mut routes = Routes::new(Arc::new(docs));
    Docs::routes(&mut routes);
    Ok(routes.finish(""))
}

/// The document's bytes and the docs page, served as they were when the app was built.
struct Docs {
    json: Bytes,
    page: Option<String>,
    json_path: String,
    docs_path: Option<String>,
}

impl Controller for Docs {
    fn routes(routes: &mut Routes<Self>) {
        // Registration reads the paths from the controller: `routes` only holds it as `Arc`.
        let this = routes.controller().clone();
        routes.get(&this.json_path, |this: Arc<Self>| async move {
            let content_type: [(HeaderName, HeaderValue); 1] =
                [(header::CONTENT_TYPE, crate::response::JSON)];
            (content_type, this.json.clone())
        });
        if let Some(path) = &this.docs_path {
            routes.get(path, |this: Arc<Self>| async move {
                Html(this.page.clone().unwrap_or_default())
            });
        }
    }
}
