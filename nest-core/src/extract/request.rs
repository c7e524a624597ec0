//! Extractors for the request head and the whole request.

use http::{HeaderMap, Method, Uri};

use super::{FromRequest, RequestCtx};
use crate::response::HttpException;

impl FromRequest for HeaderMap {
    async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
        Ok(req.headers().clone())
    }
}

impl FromRequest for Method {
    async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
        Ok(req.parts().method.clone())
    }
}

impl FromRequest for Uri {
    async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
        Ok(req.parts().uri.clone())
    }
}

/// The whole request (head and body); it takes the body, so no other body extractor may follow.
impl FromRequest for crate::Request {
    async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
        let body = req.take_body().ok_or_else(|| {
            HttpException::internal_server_error(
                "the request body was already taken by another extractor",
            )
        })?;
        let parts = req.parts();
        let mut builder = http::Request::builder()
            .method(parts.method.clone())
            .uri(parts.uri.clone())
            .version(parts.version);
        if let Some(headers) = builder.headers_mut() {
            *headers = parts.headers.clone();
        }
        let mut out = builder.body(body)?;
        *out.extensions_mut() = parts.extensions.clone();
        Ok(out)
    }
}
