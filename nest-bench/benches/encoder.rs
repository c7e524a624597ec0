//! Encoder throughput: nest's `encode` against axum's `Event`, in the same run.
//!
//! axum's `Event::finalize` is private: the bytes come out of an `axum::response::Sse` body,
//! so axum's figure is `Event` building plus what its body does per event (one frame each).
//! Both encode the same 1,000 events: an event type, an id and ~100 bytes of JSON.
//!
//! Run with: `cargo bench -p nest-bench --bench encoder` (smoke: append `-- --test`).

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;

use axum::response::sse::{Event, Sse};
use axum::response::IntoResponse;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::FutureExt;
use http_body_util::BodyExt;
use nest_core::sse::{encode, SseEvent};

const EVENTS: usize = 1000;

fn payloads() -> Vec<String> {
    (0..EVENTS)
        .map(|i| {
            format!(r#"{{"t":1700000000000000000,"seq":{i},"pad":"nest-bench-nest-bench-nest-bench-nest-bench-nest-ben"}}"#)
        })
        .collect()
}

fn nest(payloads: &[String]) -> usize {
    payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let event = SseEvent::data(p.as_str()).event("tick").id(i.to_string());
            encode(&event).map_or(0, |e| e.len())
        })
        .sum()
}

fn axum(payloads: &Arc<Vec<String>>) -> usize {
    // `Sse` wants a 'static stream: it shares the payloads instead of borrowing them.
    let payloads = Arc::clone(payloads);
    let events = (0..payloads.len()).map(move |i| {
        Ok::<_, Infallible>(
            Event::default()
                .event("tick")
                .id(i.to_string())
                .data(&payloads[i]),
        )
    });
    let body = Sse::new(futures_util::stream::iter(events))
        .into_response()
        .into_body();
    // The stream is always ready: the body completes without a runtime.
    body.collect()
        .now_or_never()
        .and_then(Result::ok)
        .map_or(0, |c| c.to_bytes().len())
}

fn bench(c: &mut Criterion) {
    let payloads = Arc::new(payloads());
    assert_eq!(
        nest(&payloads),
        axum(&payloads),
        "both encode the same bytes"
    );
    let mut group = c.benchmark_group("encode 1000 events");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("nest", |b| b.iter(|| nest(black_box(&payloads))));
    group.bench_function("axum", |b| b.iter(|| axum(black_box(&payloads))));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
