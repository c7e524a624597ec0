//! Every way a token is refused, each with the answer it becomes: expired, wrong signature,
//! unknown `kid`, `alg: none`, algorithm confusion, another audience or issuer, a topic not in
//! the claims (subscribe, resume and publish), and invalid configurations.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use nest_auth::{Auth, Authenticator, AuthorizedHub, Error, Grant, Key};
use nest_core::prelude::*;
use nest_core::test_util::TestServer;
use nest_core::IntoResponse;
use nest_hub::Hub;
use serde_json::{json, Value};

const ES_PRIVATE: &str = include_str!("keys/es256-private.pem");
const ES_PUBLIC: &str = include_str!("keys/es256-public.pem");
const ED_PRIVATE: &str = include_str!("keys/ed25519-private.pem");
const ED_PUBLIC: &str = include_str!("keys/ed25519-public.pem");
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn auth_with(keys: Vec<Key>) -> Authenticator {
    let mut builder = Authenticator::builder().audience("rooms").realm("rooms");
    for key in keys {
        builder = builder.key(key);
    }
    builder.build().expect("a valid configuration")
}

fn hmac_auth() -> Authenticator {
    auth_with(vec![Key::hmac("hs", SECRET).unwrap()])
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(aud: &str, exp: u64) -> Value {
    json!({ "sub": "ada", "aud": aud, "exp": exp, "topics": { "subscribe": ["rooms/a"] } })
}

/// A token signed by hand (not by the authenticator): what an attacker or another issuer sends.
fn forge(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The 401 the error becomes, with its challenge.
fn assert_401(err: Error, description: &str) {
    assert!(err.is_invalid(), "{err:?}");
    assert!(
        err.to_string().contains(description),
        "{err} / {description}"
    );
    let res = nest_core::HttpException::from(err).into_response();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with(r#"Bearer realm="rooms", error="invalid_token""#),
        "{challenge}"
    );
}

#[test]
fn valid_tokens_of_each_algorithm_verify() {
    for key in [
        Key::hmac("hs", SECRET).unwrap(),
        Key::es256("es", ES_PRIVATE, ES_PUBLIC).unwrap(),
        Key::ed25519("ed", ED_PRIVATE, ED_PUBLIC).unwrap(),
    ] {
        let kid = key.kid().to_owned();
        let auth = auth_with(vec![key]);
        let token = auth
            .issue(&Grant::new("ada").subscribe(["rooms/a"]))
            .unwrap();
        let claims = auth.verify(token.as_str()).unwrap();
        assert_eq!((claims.subject(), claims.kid()), ("ada", kid.as_str()));
        assert!(claims.can_subscribe("rooms/a") && !claims.can_subscribe("rooms/b"));
    }
}

#[test]
fn an_expired_token_is_refused() {
    let auth = hmac_auth();
    let token = forge(
        Algorithm::HS256,
        Some("hs"),
        &EncodingKey::from_secret(SECRET),
        &claims("rooms", now() - 1),
    );
    let err = auth.verify(&token).unwrap_err();
    assert!(err.is_expired());
    assert_401(err, "expired");
    // Expired during the second of its `exp` too (jsonwebtoken alone still accepts it then,
    // when the token's streams have already ended with `reauth`).
    let this_second = forge(
        Algorithm::HS256,
        Some("hs"),
        &EncodingKey::from_secret(SECRET),
        &claims("rooms", now()),
    );
    assert!(auth.verify(&this_second).unwrap_err().is_expired());
    // The same token one hour younger is fine: the test is on `exp` alone.
    let fresh = forge(
        Algorithm::HS256,
        Some("hs"),
        &EncodingKey::from_secret(SECRET),
        &claims("rooms", now() + 3600),
    );
    assert!(auth.verify(&fresh).is_ok());
}

#[test]
fn a_wrong_signature_is_refused() {
    let auth = hmac_auth();
    let other = forge(
        Algorithm::HS256,
        Some("hs"),
        &EncodingKey::from_secret(b"another secret, also 32 bytes long"),
        &claims("rooms", now() + 60),
    );
    assert_401(auth.verify(&other).unwrap_err(), "signature");

    // A payload changed after signing (the topics widened to everything).
    let token = auth
        .issue(&Grant::new("ada").subscribe(["rooms/a"]))
        .unwrap();
    let parts: Vec<&str> = token.as_str().split('.').collect();
    let widened = b64url(
        json!({ "sub": "ada", "aud": "rooms", "exp": now() + 60, "topics": { "subscribe": ["*"] } })
            .to_string()
            .as_bytes(),
    );
    let tampered = format!("{}.{widened}.{}", parts[0], parts[2]);
    assert_401(auth.verify(&tampered).unwrap_err(), "signature");
}

#[test]
fn an_unknown_kid_is_refused_and_rotation_keeps_old_tokens_valid() {
    let old = Key::hmac("2026-11", b"the old secret, thirty-two bytes!").unwrap();
    let new = Key::hmac("2026-12", SECRET).unwrap();
    let before = auth_with(vec![old.clone()]);
    let old_token = before.issue(&Grant::new("ada")).unwrap();

    let rotated = Authenticator::builder()
        .key(old)
        .key(new.clone())
        .signing_key("2026-12")
        .audience("rooms")
        .build()
        .unwrap();
    assert_eq!(rotated.verify(old_token.as_str()).unwrap().kid(), "2026-11");
    let new_token = rotated.issue(&Grant::new("ada")).unwrap();
    assert_eq!(rotated.verify(new_token.as_str()).unwrap().kid(), "2026-12");

    // A kid that names a key other than the one that signed: the signature does not hold.
    let wrong_kid = forge(
        Algorithm::HS256,
        Some("2026-12"),
        &EncodingKey::from_secret(b"the old secret, thirty-two bytes!"),
        &claims("rooms", now() + 60),
    );
    let err = rotated.verify(&wrong_kid).unwrap_err();
    assert!(
        err.is_invalid() && err.to_string().contains("signature"),
        "{err}"
    );

    // The old key retired: its tokens name a kid nobody knows.
    let after = Authenticator::builder()
        .key(new)
        .key(Key::es256("es", ES_PRIVATE, ES_PUBLIC).unwrap())
        .signing_key("2026-12")
        .audience("rooms")
        .realm("rooms")
        .build()
        .unwrap();
    assert_401(after.verify(old_token.as_str()).unwrap_err(), "key id");
    // With two keys, a token must say which one signed it.
    let no_kid = forge(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(SECRET),
        &claims("rooms", now() + 60),
    );
    assert_401(after.verify(&no_kid).unwrap_err(), "no key id");
}

#[test]
fn alg_none_is_refused() {
    let auth = hmac_auth();
    for header in [
        json!({ "alg": "none", "typ": "JWT", "kid": "hs" }),
        json!({ "alg": "None", "kid": "hs" }),
        json!({ "alg": "none" }),
    ] {
        let token = format!(
            "{}.{}.",
            b64url(header.to_string().as_bytes()),
            b64url(claims("rooms", now() + 60).to_string().as_bytes())
        );
        assert_401(auth.verify(&token).unwrap_err(), "malformed");
    }
}

#[test]
fn algorithm_confusion_is_refused() {
    // The classic: an HS256 token whose HMAC secret is the ES256 *public* key, which anyone has.
    let auth = auth_with(vec![Key::es256("es", ES_PRIVATE, ES_PUBLIC).unwrap()]);
    let confused = forge(
        Algorithm::HS256,
        Some("es"),
        &EncodingKey::from_secret(ES_PUBLIC.as_bytes()),
        &claims("rooms", now() + 60),
    );
    assert_401(auth.verify(&confused).unwrap_err(), "algorithm");
    // EdDSA signed, claimed as ES256 under the ES256 key's kid.
    let ed = forge(
        Algorithm::EdDSA,
        Some("es"),
        &EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap(),
        &claims("rooms", now() + 60),
    );
    assert_401(auth.verify(&ed).unwrap_err(), "algorithm");
}

#[test]
fn another_audience_or_issuer_is_refused() {
    let auth = hmac_auth();
    let key = EncodingKey::from_secret(SECRET);
    let other = forge(
        Algorithm::HS256,
        Some("hs"),
        &key,
        &claims("billing", now() + 60),
    );
    assert_401(auth.verify(&other).unwrap_err(), "audience");
    let mut no_aud = claims("rooms", now() + 60);
    no_aud.as_object_mut().unwrap().remove("aud");
    let no_aud = forge(Algorithm::HS256, Some("hs"), &key, &no_aud);
    assert_401(auth.verify(&no_aud).unwrap_err(), "claim");
    let many = forge(
        Algorithm::HS256,
        Some("hs"),
        &key,
        &json!({ "sub": "ada", "aud": ["billing", "rooms"], "exp": now() + 60 }),
    );
    assert!(auth.verify(&many).is_ok(), "an array holding our audience");

    let with_issuer = Authenticator::builder()
        .key(Key::hmac("hs", SECRET).unwrap())
        .audience("rooms")
        .issuer("https://login.example")
        .realm("rooms")
        .build()
        .unwrap();
    let mut foreign = claims("rooms", now() + 60);
    foreign["iss"] = json!("https://evil.example");
    let foreign = forge(Algorithm::HS256, Some("hs"), &key, &foreign);
    assert_401(with_issuer.verify(&foreign).unwrap_err(), "issuer");
}

#[test]
fn a_token_with_an_invalid_topic_selector_is_refused() {
    let auth = hmac_auth();
    let token = forge(
        Algorithm::HS256,
        Some("hs"),
        &EncodingKey::from_secret(SECRET),
        &json!({ "sub": "ada", "aud": "rooms", "exp": now() + 60, "topics": { "subscribe": ["rooms/*/x"] } }),
    );
    assert_401(auth.verify(&token).unwrap_err(), "topics");
    // And the authenticator never signs one.
    let err = auth
        .issue(&Grant::new("ada").subscribe(["rooms/*/x"]))
        .unwrap_err();
    assert!(err.is_config(), "{err}");
}

#[tokio::test]
async fn topics_not_in_the_claims_are_403_on_subscribe_resume_and_publish() {
    let auth = hmac_auth();
    let hub = AuthorizedHub::new(Hub::new(), auth.clone());
    let token = auth
        .issue(
            &Grant::new("ada")
                .subscribe(["rooms/a", "users/{user}/inbox"])
                .publish(["rooms/a"]),
        )
        .unwrap();
    let ada = auth.verify(token.as_str()).unwrap();
    let id = hub.publish(&ada, "rooms/a", "hi").await.unwrap();

    let first = LastEventId(None);
    let resume = LastEventId(Some(id.clone()));
    for last in [&first, &resume] {
        assert!(hub.subscribe(&ada, "rooms/a", last).await.is_ok());
        assert!(hub.subscribe(&ada, "users/ada/inbox", last).await.is_ok());
        for topic in ["rooms/b", "rooms/a/x", "rooms", "users/ada/inbox/x"] {
            let err = hub.subscribe(&ada, topic, last).await.unwrap_err();
            assert!(err.is_forbidden(), "{topic}: {err}");
            let res = nest_core::HttpException::from(err).into_response();
            assert_eq!(res.status(), StatusCode::FORBIDDEN);
            assert!(res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains(r#"error="insufficient_scope""#));
        }
    }
    // Another issuer's far-future `exp` neither overflows nor keeps a stream forever.
    let far = forge(
        Algorithm::HS256,
        Some("hs"),
        &EncodingKey::from_secret(SECRET),
        &claims("rooms", u64::MAX / 2),
    );
    let far = auth.verify(&far).unwrap();
    assert!(far.expires_in() > Duration::from_secs(1_000_000_000));
    assert!(hub.subscribe(&far, "rooms/a", &first).await.is_ok());

    // Subscribing is not publishing.
    let err = hub.publish(&ada, "users/ada/inbox", "x").await.unwrap_err();
    assert!(err.is_forbidden() && err.status() == StatusCode::FORBIDDEN);
    assert_eq!(hub.hub().stats("users/ada/inbox").published, 0);
    assert_eq!(hub.hub().stats("rooms/a").published, 1);
}

#[test]
fn invalid_configuration_is_an_error_naming_the_setting() {
    let err = |b: nest_auth::AuthenticatorBuilder| b.build().unwrap_err().to_string();
    let hs = || Key::hmac("hs", SECRET).unwrap();
    assert!(err(Authenticator::builder().audience("a")).contains("no key"));
    assert!(err(Authenticator::builder().key(hs())).contains("audience"));
    assert!(err(Authenticator::builder().key(hs()).key(hs()).audience("a")).contains("twice"));
    assert!(err(Authenticator::builder()
        .key(hs())
        .audience("a")
        .signing_key("x"))
    .contains("`x`"));
    assert!(err(Authenticator::builder()
        .key(hs())
        .audience("a")
        .cookie("a b"))
    .contains("cookie"));
    let verify_only = Key::es256_public("es", ES_PUBLIC).unwrap();
    assert!(err(Authenticator::builder()
        .key(verify_only)
        .audience("a")
        .signing_key("es"))
    .contains("cannot sign"));
    // An ES256 private key with the Ed25519... no: with another P-256 public key.
    let mismatched = Key::es256("es", ES_PRIVATE, &other_p256_public()).unwrap();
    assert!(err(Authenticator::builder().key(mismatched).audience("a")).contains("do not match"));
    assert!(Key::hmac("short", b"0123456789").unwrap_err().is_config());
    assert!(Key::ed25519_public(
        "ed",
        "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"
    )
    .unwrap_err()
    .is_config());
}

/// A P-256 public key that is not [`ES_PUBLIC`]'s.
fn other_p256_public() -> String {
    "-----BEGIN PUBLIC KEY-----\n\
     MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\n\
     q9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n\
     -----END PUBLIC KEY-----\n"
        .to_owned()
}

struct Me;

impl Controller for Me {
    fn routes(r: &mut Routes<Self>) {
        r.get("/events", |_: Arc<Self>, Auth(_): Auth| async {
            let (writer, body) = get_sse_stream(SseOptions::new());
            writer.write("secret").unwrap();
            body.into_response()
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_a_refused_token_is_a_401_with_a_challenge_never_a_stream() {
    let auth = hmac_auth();
    let server = TestServer::start(NestApp::new().state(auth.clone()).controller(Me)).await;
    let client = reqwest::Client::new();
    let expired = forge(
        Algorithm::HS256,
        Some("hs"),
        &EncodingKey::from_secret(SECRET),
        &claims("rooms", now() - 10),
    );
    let cases: [(Option<String>, &str); 4] = [
        (None, r#"Bearer realm="rooms""#),
        (Some(format!("Bearer {expired}")), "expired"),
        (Some("Bearer a.b.c".to_owned()), "malformed"),
        (Some(format!("Basic {expired}")), "Bearer <token>"),
    ];
    for (authorization, challenge) in cases {
        let mut req = client.get(server.url("/events"));
        if let Some(value) = &authorization {
            req = req.header("authorization", value);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{authorization:?}");
        assert_eq!(res.headers()["content-type"], "application/json");
        let got = res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(got.contains(challenge), "{got}");
        let body = res.text().await.unwrap();
        assert!(
            !body.contains("secret") && !body.contains(&expired),
            "{body}"
        );
    }
    let token = auth.issue(&Grant::new("ada")).unwrap();
    let res = client
        .get(server.url("/events"))
        .bearer_auth(token.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    server.shutdown().await;
}

#[test]
fn refresh_reissues_a_recently_expired_token_only() {
    let auth = Authenticator::builder()
        .key(Key::hmac("hs", SECRET).unwrap())
        .audience("rooms")
        .refresh_window(Duration::from_secs(60))
        .build()
        .unwrap();
    let key = EncodingKey::from_secret(SECRET);
    let request = |token: &str| {
        http::Request::post("/auth/refresh")
            .header("cookie", format!("nest_token={token}"))
            .body(())
            .unwrap()
            .into_parts()
            .0
    };
    let mut recent = claims("rooms", now() - 30);
    recent["iat"] = json!(now() - 630);
    let recent = forge(Algorithm::HS256, Some("hs"), &key, &recent);
    let (old, token) = auth.refresh(&request(&recent)).unwrap();
    let new = auth.verify(token.as_str()).unwrap();
    assert_eq!(new.subject(), old.subject());
    assert!(new.can_subscribe("rooms/a") && !new.can_subscribe("rooms/b"));
    assert_eq!(
        token.ttl(),
        Duration::from_secs(600),
        "the old token's lifetime"
    );

    let old_token = forge(
        Algorithm::HS256,
        Some("hs"),
        &key,
        &claims("rooms", now() - 3600),
    );
    let err = auth.refresh(&request(&old_token)).unwrap_err();
    assert!(err.is_expired(), "{err}");
    let forged = forge(
        Algorithm::HS256,
        Some("hs"),
        &EncodingKey::from_secret(b"another secret, also 32 bytes long"),
        &claims("rooms", now() - 1),
    );
    let err = auth.refresh(&request(&forged)).unwrap_err();
    assert!(err.is_invalid() && !err.is_expired(), "{err}");
}

#[test]
fn cookies_are_http_only_same_site_and_secure_over_https() {
    let auth = hmac_auth();
    let token = auth.issue(&Grant::new("ada")).unwrap();
    let plain = http::Request::get("http://a.test/login")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let cookie = auth.set_cookie(&token, &plain).unwrap();
    let cookie = cookie.to_str().unwrap();
    // Max-Age: the token's 15 minutes and the refresh window's 15 (the browser keeps sending
    // an expired token to the refresh endpoint).
    assert!(cookie.starts_with(&format!(
        "nest_token={}; Path=/; Max-Age=1800; ",
        token.as_str()
    )));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
    let proxied = http::Request::get("/login")
        .header("x-forwarded-proto", "https")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    assert!(auth
        .set_cookie(&token, &proxied)
        .unwrap()
        .to_str()
        .unwrap()
        .ends_with("; Secure"));
    // No lifetime overflows, however long.
    let forever = auth.issue(&Grant::new("ada").ttl(Duration::MAX)).unwrap();
    assert!(auth.set_cookie(&forever, &plain).is_ok());
    let cleared = auth.clear_cookie(&plain).unwrap();
    assert!(cleared
        .to_str()
        .unwrap()
        .starts_with("nest_token=; Path=/; Max-Age=0;"));
    assert!(!format!("{token:?}").contains(token.as_str()));
}
