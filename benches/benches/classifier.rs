//! Rule-table lookup: 10,000 rules over 20 masks (tuple-space search, priority
//! ordered, with the consulted-bits mask that megaflows need).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rvs_benches::classifier_with;
use std::hint::black_box;

fn classifier(c: &mut Criterion) {
    let (cls, probes) = classifier_with(10_000, 20);
    let mut g = c.benchmark_group("classifier");
    g.throughput(Throughput::Elements(probes.len() as u64));
    g.bench_function("lookup_10k_rules_20_masks", |b| {
        b.iter(|| {
            for k in &probes {
                black_box(cls.lookup(black_box(k)).hit.is_some());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, classifier);
criterion_main!(benches);
