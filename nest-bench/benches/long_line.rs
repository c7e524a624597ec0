//! nest's parser on one 8 MiB line: in one chunk and in 1,024 chunks (the chunked time must
//! stay within 2× of the one-chunk time: no rescanning of the buffer per chunk).
//!
//! The comparison with eventsource-stream lives in `nest-sse-client/benches/parser.rs`; this
//! adds only the one-chunk baseline it lacks.
//!
//! Run with: `cargo bench -p nest-bench --bench long_line` (smoke: append `-- --test`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nest_sse_client::parser::Parser;

fn wire() -> Vec<u8> {
    let mut wire = b"data: ".to_vec();
    wire.resize(8 << 20, b'x');
    wire.extend_from_slice(b"\n\n");
    wire
}

fn parse(chunks: &[&[u8]]) -> usize {
    let mut parser = Parser::new();
    let mut items = Vec::new();
    for chunk in chunks {
        parser.push(chunk, &mut items);
    }
    items.len()
}

fn bench(c: &mut Criterion) {
    let wire = wire();
    let one: Vec<&[u8]> = vec![&wire];
    let many: Vec<&[u8]> = wire.chunks(wire.len().div_ceil(1024)).collect();
    assert_eq!(parse(&one), parse(&many));
    let mut group = c.benchmark_group("nest parser, 8 MiB line");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.sample_size(10);
    group.bench_function("1 chunk", |b| b.iter(|| parse(black_box(&one))));
    group.bench_function("1024 chunks", |b| b.iter(|| parse(black_box(&many))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
