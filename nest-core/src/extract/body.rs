//! Body extractors: `Bytes`, `String` and `Json<T>`, all under the app's body limit.

use bytes::Bytes;
use http::header;
use serde::de::DeserializeOwned;

use super::{FromRequest, RequestCtx};
use crate::body::{read_limited, ReadError};
use crate::response::{HttpException, Json};

/// Reads the whole request body, answering 413 when it is over the app's body limit
/// (announced by `Content-Length` or found while reading) and 500 when an extractor already took it.
pub async fn read_body(req: &mut RequestCtx) -> Result<Bytes, HttpException> {
    let limit = req.body_limit();
    let body = req.take_body().ok_or_else(|| {
        HttpException::internal_server_error(
            "the request body was already taken by another extractor",
        )
    })?;
    read_limited(req.headers(), body, limit)
        .await
        .map_err(|err| match err {
            ReadError::TooLarge => HttpException::payload_too_large(format!(
                "request body is larger than the limit of {limit} bytes"
            )),
            ReadError::Failed(err) => {
                HttpException::bad_request(format!("failed to read the request body: {err}"))
            }
        })
}

impl FromRequest for Bytes {
    async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
        read_body(req).await
    }
}

impl FromRequest for String {
    async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
        let bytes = read_body(req).await?;
        String::from_utf8(bytes.into()).map_err(|err| {
            HttpException::bad_request(format!("request body is not valid UTF-8: {err}"))
        })
    }
}

fn is_json(req: &RequestCtx) -> bool {
    let Some(content_type) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: DeserializeOwned + Send> FromRequest for Json<T> {
    async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
        if !is_json(req) {
            return Err(HttpException::unsupported_media_type(
                "expected a request with `Content-Type: application/json`",
            ));
        }
        let bytes = read_body(req).await?;
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|err| HttpException::bad_request(format!("invalid JSON body: {err}")))
    }
}
