//! OpenFlow: FLOW_MODs through a session into a bridge's tables (decode,
//! validate, classifier insert, cache invalidation by table), with a
//! BARRIER every 1000 as controllers send them; and packets of a cached
//! `controller` flow made PACKET_IN messages (the slow path's handler under
//! the switch's lock, the frozen state, the copy, the session's encoding).
//! No socket.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rvs_benches::openflow::{flow_mod_batch, session, BenchBridge, PinBridge};

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

fn packet_ins(c: &mut Criterion) {
    let mut pb = PinBridge::new();
    let sw = BenchBridge::new();
    let mut s = session(&mut BenchBridge::new());
    let mut g = c.benchmark_group("openflow");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("packet_in_1k", |b| b.iter(|| pb.packet_ins(1000, &mut s, &sw)));
    g.finish();
}

criterion_group!(benches, flow_mods, packet_ins);
criterion_main!(benches);
