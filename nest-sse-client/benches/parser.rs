//! Parser throughput against eventsource-stream 0.2.3, in the same run.
//!
//! Run with: `cargo bench -p nest-sse-client --bench parser`
//! (smoke mode, each benchmark once: append `-- --test`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use nest_sse_client::parser::Parser;

/// Many small events, delivered in 16 KiB chunks.
fn small_events() -> Vec<Vec<u8>> {
    let mut wire = Vec::new();
    let mut n = 0u32;
    while wire.len() < 4 << 20 {
        wire.extend_from_slice(format!("id: {n}\nevent: tick\ndata: {{\"n\":{n}}}\n\n").as_bytes());
        n += 1;
    }
    wire.chunks(16 << 10).map(<[u8]>::to_vec).collect()
}

/// One 8 MiB data line in 1,024 chunks.
fn long_line() -> Vec<Vec<u8>> {
    let mut wire = b"data: ".to_vec();
    wire.resize(8 << 20, b'x');
    wire.extend_from_slice(b"\n\n");
    let size = wire.len().div_ceil(1024);
    wire.chunks(size).map(<[u8]>::to_vec).collect()
}

fn nest(chunks: &[Vec<u8>]) -> usize {
    let mut parser = Parser::new();
    let mut items = Vec::new();
    let mut count = 0;
    for chunk in chunks {
        parser.push(chunk, &mut items);
        count += items.len();
        items.clear();
    }
    count
}

fn eventsource_stream(runtime: &tokio::runtime::Runtime, chunks: &[Vec<u8>]) -> usize {
    let stream = futures_util::stream::iter(
        chunks
            .iter()
            .map(|c| Ok::<_, std::convert::Infallible>(c.as_slice())),
    );
    runtime.block_on(stream.eventsource().count())
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    for (name, chunks) in [
        ("small events", small_events()),
        ("8 MiB line in 1024 chunks", long_line()),
    ] {
        let bytes: usize = chunks.iter().map(Vec::len).sum();
        let expected = nest(&chunks);
        assert_eq!(eventsource_stream(&runtime, &chunks), expected);
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(bytes as u64));
        group.sample_size(10);
        group.bench_function(BenchmarkId::new("nest", bytes), |b| {
            b.iter(|| nest(black_box(&chunks)));
        });
        group.bench_function(BenchmarkId::new("eventsource-stream", bytes), |b| {
            b.iter(|| eventsource_stream(&runtime, black_box(&chunks)));
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
