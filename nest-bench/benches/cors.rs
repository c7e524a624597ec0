//! CORS per-request overhead: nest-cors against tower-http's `CorsLayer`, preflight and actual
//! requests, each against the same trivial service without a layer.
//!
//! Both are configured alike: any origin, methods GET,HEAD,PUT,PATCH,POST,DELETE, request
//! headers mirrored, max-age 600 s (nest-cors's defaults).
//!
//! Run with: `cargo bench -p nest-bench --bench cors` (smoke: append `-- --test`).

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::FutureExt;
use http::{header, Method, Request, Response};
use tower::{service_fn, Layer, Service, ServiceExt};

fn preflight() -> Request<()> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri("/items")
        .header(header::ORIGIN, "https://app.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "content-type, x-request-id",
        )
        .body(())
        .unwrap_or_default()
}

fn actual() -> Request<()> {
    Request::builder()
        .method(Method::GET)
        .uri("/items")
        .header(header::ORIGIN, "https://app.example")
        .body(())
        .unwrap_or_default()
}

/// One request through a clone of `svc`, the way a server calls a service per request.
fn call<S>(svc: &S, req: Request<()>) -> usize
where
    S: Service<Request<()>, Response = Response<String>, Error = Infallible> + Clone,
{
    // The services are ready at once: no runtime needed.
    svc.clone()
        .oneshot(req)
        .now_or_never()
        .and_then(Result::ok)
        .map_or(0, |res| res.headers().len())
}

fn bench(c: &mut Criterion) {
    let inner =
        service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(String::new())) });
    let nest = nest_cors::CorsLayer::new().layer(inner);
    let tower = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::PATCH,
            Method::POST,
            Method::DELETE,
        ])
        .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
        .max_age(Duration::from_secs(600))
        .layer(inner);
    for (name, make) in [
        ("cors preflight", preflight as fn() -> Request<()>),
        ("cors actual request", actual),
    ] {
        assert!(call(&nest, make()) > 0 && call(&tower, make()) > 0);
        let mut group = c.benchmark_group(name);
        group.bench_function("no layer", |b| b.iter(|| call(&inner, black_box(make()))));
        group.bench_function("nest-cors", |b| b.iter(|| call(&nest, black_box(make()))));
        group.bench_function("tower-http", |b| b.iter(|| call(&tower, black_box(make()))));
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
