//! The cost per new stream of checking its token: `Authenticator::authenticate` on a request
//! carrying the token in its cookie (find it, verify the signature, check the claims, parse
//! the topic selectors), for HS256, ES256 and EdDSA; and issuing one.
//!
//! Run: `cargo bench -p nest-auth --bench verify`.

#![allow(missing_docs, reason = "a criterion bench")]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use nest_auth::{Authenticator, Grant, Key};

const ES_PRIVATE: &str = include_str!("../tests/keys/es256-private.pem");
const ES_PUBLIC: &str = include_str!("../tests/keys/es256-public.pem");
const ED_PRIVATE: &str = include_str!("../tests/keys/ed25519-private.pem");
const ED_PUBLIC: &str = include_str!("../tests/keys/ed25519-public.pem");

fn authenticator(key: Key) -> Authenticator {
    Authenticator::builder()
        .key(key)
        .audience("rooms")
        .build()
        .expect("a valid configuration")
}

fn bench(c: &mut Criterion) {
    let grant = Grant::new("ada")
        .subscribe(["rooms/a", "rooms/b", "users/ada/*"])
        .publish(["rooms/a"]);
    let keys = [
        ("hs256", Key::hmac("k1", &[7; 32]).expect("hmac")),
        (
            "es256",
            Key::es256("k1", ES_PRIVATE, ES_PUBLIC).expect("es256"),
        ),
        (
            "eddsa",
            Key::ed25519("k1", ED_PRIVATE, ED_PUBLIC).expect("ed25519"),
        ),
    ];
    let mut group = c.benchmark_group("new_stream_auth");
    for (name, key) in keys {
        let auth = authenticator(key);
        let token = auth.issue(&grant).expect("issue");
        let req = http::Request::get("/rooms/a/events")
            .header(
                "cookie",
                format!("theme=dark; nest_token={}", token.as_str()),
            )
            .body(())
            .expect("a request");
        let (parts, ()) = req.into_parts();
        group.bench_function(format!("authenticate/{name}"), |b| {
            b.iter(|| black_box(auth.authenticate(black_box(&parts)).expect("valid")))
        });
        group.bench_function(format!("issue/{name}"), |b| {
            b.iter(|| black_box(auth.issue(black_box(&grant)).expect("issued")))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
