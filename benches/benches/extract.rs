//! FlowKey::extract on 64-byte UDP, TCP, and Geneve-wrapped frames.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rvs_benches::sample_frames;
use rvs_dataplane::flow::FlowKey;
use rvs_dataplane::packet::PacketMeta;
use std::hint::black_box;

fn extract(c: &mut Criterion) {
    let mut g = c.benchmark_group("extract");
    g.throughput(Throughput::Elements(1));
    let meta = PacketMeta::default();
    for (name, frame) in sample_frames() {
        g.bench_function(name, |b| {
            b.iter(|| FlowKey::extract(black_box(&frame), black_box(&meta)))
        });
    }
    g.finish();
}

criterion_group!(benches, extract);
criterion_main!(benches);
