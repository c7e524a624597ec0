//! One writer per client, in memory: 32 events written with `write_encoded` to each of 1,000
//! streams, against tokio's broadcast channel (one send per event, each of 1,000 receivers
//! copying its 32 events into a buffer: what the raw socket writer of the load benchmarks does
//! before its `write`), in the same run. No sockets and no scheduler: what a write and a drain
//! cost, without the kernel's share that dominates the load benchmarks.
//!
//! - `nest, read`: the writes, then each stream's body polled once (its 32 events copied into
//!   one frame) and once more (nothing left: the body leaves its waker, as under a connection).
//! - `nest, never read`: the writes to streams whose client never reads (their queues full at
//!   1,024 events, `Overflow::DropOldest`): each write drops the oldest event. What a hostile
//!   client that connects and never reads costs the app's writer loop.
//! - `nest, never read, Prometheus recorder`: the same with a metrics recorder installed, as in
//!   production (the losses are counted in `nest_sse_events_lost_total`, once per 64 per
//!   stream).
//!
//! Run with: `cargo bench -p nest-bench --bench writes` (smoke: append `-- --test`).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::FutureExt;
use http_body_util::BodyExt;
use nest_core::sse::{encode, get_sse_stream, Overflow, SseBody, SseEvent, SseOptions, SseWriter};
use tokio::sync::broadcast;

/// Streams (receivers) written to.
const STREAMS: usize = 1000;
/// Events per iteration.
const EVENTS: usize = 32;
/// Each stream's queue (and the broadcast channel's capacity), as in the load benchmarks.
const CAPACITY: usize = 1024;

fn event(seq: usize) -> String {
    format!(r#"{{"t":1700000000000000000,"seq":{seq},"pad":"nest-bench-nest-bench-nest-bench"}}"#)
}

fn streams() -> (Vec<SseWriter>, Vec<SseBody>) {
    (0..STREAMS)
        .map(|_| {
            get_sse_stream(
                SseOptions::new()
                    .keep_alive(None)
                    .buffer(CAPACITY, usize::MAX / 2)
                    .overflow(Overflow::DropOldest),
            )
        })
        .unzip()
}

/// Writes `EVENTS` events, each encoded once, to every writer.
fn write_all(writers: &[SseWriter], seq: &mut usize) {
    for _ in 0..EVENTS {
        let encoded = encode(&SseEvent::data(event(*seq))).expect("valid event");
        *seq += 1;
        for writer in writers {
            writer.write_encoded(&encoded).expect("an open stream");
        }
    }
}

/// Polls each body for its frame (all its queued events), then once more to leave its waker.
/// Returns the bytes handed on.
fn drain(bodies: &mut [SseBody]) -> usize {
    let mut bytes = 0;
    for body in bodies {
        let frame = body.frame().now_or_never().flatten().expect("a frame");
        bytes += frame.expect("no error").into_data().map_or(0, |d| d.len());
        assert!(body.frame().now_or_never().is_none(), "nothing left");
    }
    bytes
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("write 32 events to 1000 streams");
    group.throughput(Throughput::Elements((EVENTS * STREAMS) as u64));

    let (writers, mut bodies) = streams();
    let mut seq = 0;
    group.bench_function("nest, read", |b| {
        b.iter(|| {
            write_all(&writers, &mut seq);
            black_box(drain(&mut bodies))
        });
    });

    let (never_read, _bodies) = streams();
    let mut seq = 0;
    while seq < CAPACITY {
        write_all(&never_read, &mut seq);
    }
    assert!(never_read.iter().all(|w| w.queued() == CAPACITY), "full");
    group.bench_function("nest, never read", |b| {
        b.iter(|| write_all(&never_read, &mut seq));
    });
    assert!(never_read.iter().all(|w| w.lost_events() > 0), "dropping");
    // The same with a Prometheus recorder, as a production server has.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        group.bench_function("nest, never read, Prometheus recorder", |b| {
            b.iter(|| write_all(&never_read, &mut seq));
        });
    });
    assert!(
        metrics.render().contains("nest_sse_events_lost_total"),
        "recorded"
    );

    let (sender, _) = broadcast::channel::<Bytes>(CAPACITY);
    let mut receivers: Vec<_> = (0..STREAMS).map(|_| sender.subscribe()).collect();
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut seq = 0;
    group.bench_function("tokio broadcast", |b| {
        b.iter(|| {
            for _ in 0..EVENTS {
                let encoded = encode(&SseEvent::data(event(seq))).expect("valid event");
                seq += 1;
                sender.send(encoded.bytes()).expect("receivers");
            }
            let mut bytes = 0;
            for receiver in &mut receivers {
                buf.clear();
                while let Ok(event) = receiver.try_recv() {
                    buf.extend_from_slice(&event);
                }
                bytes += buf.len();
            }
            black_box(bytes)
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
