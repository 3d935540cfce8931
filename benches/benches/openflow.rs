//! OpenFlow: FLOW_MODs through a session into a bridge's tables (decode,
//! validate, classifier insert, cache invalidation by table), with a
//! BARRIER every 1000 as controllers send them; no socket.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rvs_benches::openflow::{flow_mod_batch, session, BenchBridge};

fn flow_mods(c: &mut Criterion) {
    let batch = flow_mod_batch(10_000, 1000);
    let mut g = c.benchmark_group("openflow");
    g.throughput(Throughput::Elements(10_000));
    g.sample_size(20);
    g.bench_function("flow_mod_add_10k_barrier_1k", |b| {
        b.iter_batched(
            || {
                let mut sw = BenchBridge::new();
                let s = session(&mut sw);
                (sw, s)
            },
            |(mut sw, mut s)| {
                for chunk in batch.chunks(65536) {
                    s.receive(chunk, &mut sw);
                }
                (sw, s.take_output())
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, flow_mods);
criterion_main!(benches);
