//! Upcall translation through the neutron layout (br-int NORMAL, patch ports,
//! br-tun's fixture tables, Geneve tunnel outputs, learn).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rvs_benches::neutron_node;
use rvs_control::xlate::translate;
use std::hint::black_box;

fn xlate(c: &mut Criterion) {
    let (mut sw, keys) = neutron_node();
    let mut g = c.benchmark_group("xlate");
    g.throughput(Throughput::Elements(1));
    for (name, key) in keys {
        g.bench_function(name, |b| b.iter(|| translate(&mut sw, black_box(&key))));
    }
    g.finish();
}

criterion_group!(benches, xlate);
criterion_main!(benches);
