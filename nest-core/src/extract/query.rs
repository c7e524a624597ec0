//! The `Query` extractor.

use serde::de::DeserializeOwned;

use super::{FromRequest, RequestCtx};
use crate::response::HttpException;

/// The query string, deserialized with serde (`?page=2&q=rust` into a struct). Answers 400 when it
/// does not deserialize; a missing query string deserializes from an empty one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest for Query<T> {
    async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
        let query = req.parts().uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(Query)
            .map_err(|err| HttpException::bad_request(format!("invalid query string: {err}")))
    }
}
