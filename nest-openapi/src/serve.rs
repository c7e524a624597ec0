//! Serving the document: where, and the docs page with its viewer.

/// Where an app serves its document, and optionally a docs page that shows it
/// (nest-core's `NestApp::openapi_route`).
///
/// # Example
///
/// ```
/// use nest_openapi::{OpenApiRoute, Viewer};
///
/// let json_only: OpenApiRoute = "/openapi.json".into();
/// assert_eq!(json_only.json_path(), "/openapi.json");
/// let with_page = OpenApiRoute::new("/openapi.json").docs("/docs").viewer(Viewer::redoc());
/// assert_eq!(with_page.docs_path(), Some("/docs"));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct OpenApiRoute {
    json: String,
    docs: Option<String>,
    viewer: Viewer,
}

impl OpenApiRoute {
    /// The document as JSON at `path` (`GET`).
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            json: path.into(),
            docs: None,
            viewer: Viewer::scalar(),
        }
    }

    /// A docs page at `path` that shows the document in the [`Viewer`] (Scalar by default).
    pub fn docs(mut self, path: impl Into<String>) -> Self {
        self.docs = Some(path.into());
        self
    }

    /// The viewer the docs page loads.
    pub fn viewer(mut self, viewer: Viewer) -> Self {
        self.viewer = viewer;
        self
    }

    /// Where the document is served.
    pub fn json_path(&self) -> &str {
        &self.json
    }

    /// Where the docs page is served, if anywhere.
    pub fn docs_path(&self) -> Option<&str> {
        self.docs.as_deref()
    }

    /// The docs page, with the document's path and the title filled in.
    pub fn page(&self, title: &str) -> String {
        self.viewer
            .template
            .replace(Viewer::SPEC_URL, &escape(&self.json))
            .replace(Viewer::TITLE, &escape(title))
    }

    /// The viewer's template (nest-core checks it has [`Viewer::SPEC_URL`] when the app is
    /// built).
    pub fn viewer_template(&self) -> &str {
        &self.viewer.template
    }
}

impl From<&str> for OpenApiRoute {
    fn from(path: &str) -> Self {
        Self::new(path)
    }
}

impl From<String> for OpenApiRoute {
    fn from(path: String) -> Self {
        Self::new(path)
    }
}

/// The page that shows the document: an HTML template that loads a viewer (from a CDN, so the
/// app serves no scripts), with `{{spec_url}}` where the document's URL goes and `{{title}}`
/// for the API's title. The browser fetches the viewer's script from the CDN: an app that is
/// offline, or whose Content-Security-Policy forbids it, gives a [`custom`](Self::custom)
/// template that loads the script from where it may.
///
/// # Example
///
/// ```
/// use nest_openapi::Viewer;
///
/// let page = Viewer::custom(
///     r#"<!doctype html><title>{{title}}</title><rapi-doc spec-url="{{spec_url}}"></rapi-doc>
///        <script type="module" src="https://unpkg.com/rapidoc/dist/rapidoc-min.js"></script>"#,
/// );
/// assert!(page.template().contains("rapi-doc"));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Viewer {
    template: String,
}

impl Viewer {
    /// Where the template takes the document's URL.
    pub const SPEC_URL: &'static str = "{{spec_url}}";
    /// Where the template takes the API's title.
    pub const TITLE: &'static str = "{{title}}";

    /// Scalar's API reference (the default): reads OpenAPI 3.1 and 3.2.
    pub fn scalar() -> Self {
        Self::custom(include_str!("scalar.html"))
    }

    /// Redoc.
    pub fn redoc() -> Self {
        Self::custom(include_str!("redoc.html"))
    }

    /// Any page: `template` must contain `{{spec_url}}` (building the app fails otherwise);
    /// `{{title}}` is optional. Both are filled in HTML-escaped.
    pub fn custom(template: impl Into<String>) -> Self {
        Self {
            template: template.into(),
        }
    }

    /// The template.
    pub fn template(&self) -> &str {
        &self.template
    }
}

/// Escapes text for an HTML attribute or element.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_document_escaped() {
        let route = OpenApiRoute::new("/a\"b").docs("/docs");
        let page = route.page("<API>");
        assert!(page.contains(r#"data-url="/a&quot;b""#), "{page}");
        assert!(page.contains("<title>&lt;API&gt;</title>"), "{page}");
    }
}
