//! Megaflow (tuple-space search) hit with 1, 8 and 32 subtables.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rvs_benches::megaflow_with_subtables;
use std::hint::black_box;

fn megaflow_hit(c: &mut Criterion) {
    let mut g = c.benchmark_group("megaflow_hit");
    for n in [1usize, 8, 32] {
        let (cache, probes) = megaflow_with_subtables(n);
        g.throughput(Throughput::Elements(probes.len() as u64));
        g.bench_with_input(BenchmarkId::new("subtables", n), &n, |b, _| {
            b.iter(|| {
                for k in &probes {
                    black_box(cache.lookup(black_box(k)).is_some());
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, megaflow_hit);
criterion_main!(benches);
