//! What cache maintenance costs the packets that are already cached:
//! - `emc_thrash`: 100,000 parallel flows through one PMD (memory ports),
//!   EMC insertion on every megaflow hit (as before) vs. with probability
//!   1/100 (OVS's `emc-insert-inv-prob`, now the default);
//! - `mac_flood`: an established p1 -> p2 flow while p3 sends from a new source
//!   MAC every K batches: with tag invalidation and p3's upcall budget (now,
//!   `budget`), tag invalidation without a budget (`tags`), a flush of every
//!   cached flow per new MAC (what each learned MAC did before,
//!   `flush_all`), no flood (`none`). One element is one established packet.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rvs_benches::{l2_pmd_with, parallel_flows, ForwardToPort1};
use rvs_control::upcall::lock;
use rvs_dataplane::packet::BATCH_SIZE;
use rvs_dataplane::pmd::{Pmd, PmdConfig};
use rvs_dataplane::port::MemoryPort;
use rvs_dataplane::testing::udp4;
use std::collections::HashSet;

fn emc_thrash(c: &mut Criterion) {
    let mut g = c.benchmark_group("emc_thrash_100k_flows");
    g.throughput(Throughput::Elements(BATCH_SIZE as u64));
    let frames = parallel_flows(100_000);
    for (name, inv_prob) in [("insert_always", 1), ("insert_1_in_100", 100)] {
        let mut pmd = Pmd::new(
            ForwardToPort1,
            PmdConfig {
                emc_insert_inv_prob: inv_prob,
                ..PmdConfig::default()
            },
        );
        pmd.add_port(0, Box::new(MemoryPort::generator("gen", frames.clone())));
        pmd.add_port(1, Box::new(MemoryPort::sink("sink")));
        for _ in 0..frames.len() / BATCH_SIZE + 1 {
            pmd.poll_once();
        }
        g.bench_function(name, |b| b.iter(|| pmd.poll_once()));
        assert_eq!(pmd.stats().drops.total(), 0);
    }
    g.finish();
}

fn mac_flood(c: &mut Criterion) {
    let mut g = c.benchmark_group("mac_flood");
    for every in [1u64, 16, 64] {
        g.throughput(Throughput::Elements(every * BATCH_SIZE as u64));
        for mode in ["none", "budget", "tags", "flush_all"] {
            let budget = if mode == "budget" {
                PmdConfig::default().upcall_budget_pct
            } else {
                0
            };
            let (mut pmd, sw, p3) = l2_pmd_with(PmdConfig {
                upcall_budget_pct: budget,
                ..PmdConfig::default()
            });
            let mut n: u32 = 0;
            let mut credited = std::time::Instant::now();
            g.bench_function(format!("new_mac_every_{every}_batches/{mode}"), |b| {
                b.iter(|| {
                    if mode != "none" {
                        n = n.wrapping_add(1);
                        let b = n.to_be_bytes();
                        let src = [2, 1, b[0], b[1], b[2], b[3]];
                        p3.inject(&udp4(src, [0xff; 6], [198, 18, 2, 1], [198, 18, 2, 2], 3, 3, 18));
                        if mode == "flush_all" {
                            lock(&sw).bump();
                        }
                        if credited.elapsed() >= std::time::Duration::from_secs(1) {
                            // What the daemon's once-a-second credit does (on
                            // its own thread; counted here): forget the
                            // attributions of flows the cache no longer holds.
                            credited = std::time::Instant::now();
                            let since = lock(&sw).next_tag();
                            let live: HashSet<u64> = pmd.megaflow().iter().map(|f| f.tag()).collect();
                            lock(&sw).forget_flows(&live, since);
                        }
                    }
                    for _ in 0..every {
                        pmd.poll_once();
                    }
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, emc_thrash, mac_flood);
criterion_main!(benches);
