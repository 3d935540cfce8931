//! Exact-match cache hit: hash the key, probe, compare, check the generation.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rvs_dataplane::action::Action;
use rvs_dataplane::cache::{Emc, MegaflowCache};
use rvs_dataplane::flow::{FlowKey, FlowMask};
use std::hint::black_box;

fn emc_hit(c: &mut Criterion) {
    let mut keys = Vec::new();
    let mut mf = MegaflowCache::new(1024);
    let mut emc = Emc::new(8192);
    // 32 distinct flows, as in one batch of mixed traffic.
    for i in 0..32u16 {
        let f = rvs_dataplane::testing::udp4(
            rvs_dataplane::testing::MAC_A,
            rvs_dataplane::testing::MAC_B,
            rvs_dataplane::testing::IP_A,
            rvs_dataplane::testing::IP_B,
            1000 + i,
            2000,
            18,
        );
        let (k, _) = FlowKey::extract(&f, &Default::default()).unwrap();
        let flow = mf.insert(&k, FlowMask::exact(), vec![Action::Output(1)].into(), 0);
        emc.insert(k, k.hash(), flow, mf.generation());
        keys.push(k);
    }
    let gen = mf.generation();
    let mut g = c.benchmark_group("emc_hit");
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.bench_function("hash+lookup", |b| {
        b.iter(|| {
            for k in &keys {
                black_box(emc.lookup(black_box(k), k.hash(), gen).is_some());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, emc_hit);
criterion_main!(benches);
