//! A route that takes `Auth` says so in the app's OpenAPI document: the bearer and cookie
//! schemes as alternatives, and the 401 it answers without a token.

use std::sync::Arc;

use nest_auth::{Auth, Authenticator, Key};
use nest_core::prelude::*;

struct Me;

impl Controller for Me {
    fn routes(r: &mut Routes<Self>) {
        r.get("/me", |_: Arc<Self>, Auth(claims): Auth| async move {
            claims.subject().to_owned()
        })
        .doc(|op| op.summary("Who the token names"));
    }
}

#[test]
fn an_auth_route_requires_a_token_in_the_document() {
    let auth = Authenticator::builder()
        .key(Key::hmac("k1", &[7; 32]).unwrap())
        .audience("api")
        .build()
        .unwrap();
    let doc = NestApp::new().state(auth).controller(Me).openapi().unwrap();
    let op = &doc["paths"]["/me"]["get"];
    assert_eq!(
        op["security"],
        serde_json::json!([{ "bearerAuth": [] }, { "cookieAuth": [] }]),
        "{op}"
    );
    assert!(op["responses"]["401"].is_object(), "{op}");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["bearerAuth"]["bearerFormat"], "JWT");
    assert_eq!(schemes["cookieAuth"]["in"], "cookie");
    assert_eq!(schemes["cookieAuth"]["name"], "nest_token");
}
