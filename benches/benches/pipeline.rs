//! The whole PMD loop on one core: memory port rx (batch 32) -> extract -> EMC
//! hit -> output -> tx, counted per packet.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rvs_benches::ForwardToPort1;
use rvs_dataplane::packet::BATCH_SIZE;
use rvs_dataplane::pmd::{Pmd, PmdConfig};
use rvs_dataplane::port::MemoryPort;
use rvs_dataplane::testing::{udp4, IP_A, IP_B, MAC_A, MAC_B};

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    for flows in [1u16, 32] {
        let frames: Vec<Vec<u8>> = (0..flows)
            .map(|i| udp4(MAC_A, MAC_B, IP_A, IP_B, 1000 + i, 2000, 18))
            .collect();
        let mut pmd = Pmd::new(ForwardToPort1, PmdConfig::default());
        pmd.add_port(0, Box::new(MemoryPort::generator("gen", frames)));
        pmd.add_port(1, Box::new(MemoryPort::sink("sink")));
        // Warm the caches: the first batch goes through the upcall.
        pmd.poll_once();
        g.throughput(Throughput::Elements(BATCH_SIZE as u64));
        g.bench_function(format!("emc_hit_{flows}_flows"), |b| b.iter(|| pmd.poll_once()));
        let s = pmd.stats();
        assert_eq!(s.upcalls, 1, "only the first packet misses");
        assert!(s.emc_hits > 0 && s.drops.total() == 0);
    }
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
