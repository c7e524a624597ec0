//! The `Path` extractor and the matched path parameters.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::{FromRequest, RequestCtx};
use crate::response::HttpException;

/// The parameters the router matched, percent-decoded, in path order.
#[derive(Debug, Default, Clone)]
pub(crate) struct PathParams(Vec<(Arc<str>, String)>);

impl PathParams {
    pub(crate) fn push(&mut self, name: Arc<str>, value: String) {
        self.0.push((name, value));
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, v.as_str()))
    }
}

/// Path parameters: one value (`Path<u32>` for `/users/:id`) or a serde struct whose fields are
/// named like the parameters (`Path<Params>` for `/users/:user_id/posts/:post_id`).
///
/// A value that does not parse answers 400.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest for Path<T> {
    async fn from_request(req: &mut RequestCtx) -> Result<Self, HttpException> {
        let encoded = serde_urlencoded::to_string(req.params.iter().collect::<Vec<_>>())
            .map_err(|err| HttpException::internal_server_error(err.to_string()))?;
        // A struct (or map) whose fields are the parameters' names.
        let as_struct = serde_urlencoded::from_str::<T>(&encoded);
        match as_struct {
            Ok(value) => Ok(Path(value)),
            Err(struct_err) => {
                let mut params = req.params.iter();
                match (params.next(), params.next()) {
                    // A single value: `Path<u32>`.
                    (Some((name, _)), None) => {
                        serde_urlencoded::from_str::<Vec<(String, T)>>(&encoded)
                            .ok()
                            .and_then(|mut v| v.pop())
                            .map(|(_, value)| Path(value))
                            .ok_or_else(|| {
                                HttpException::bad_request(format!(
                                    "invalid path parameter `{name}`"
                                ))
                            })
                    }
                    _ => Err(HttpException::bad_request(format!(
                        "invalid path parameters: {struct_err}"
                    ))),
                }
            }
        }
    }
}
