//! The eBPF datapath's per-packet cost, measured by the kernel itself
//! (BPF_PROG_TEST_RUN with repeat: no namespaces, no devices): the hit paths
//! of `rvs_ingress` (key extraction, megaflow lookup over 3 masks, actions:
//! L2 output, VLAN push + output, Geneve tunnel output; Geneve decap with the
//! inner flow), `rvs_encap` (the underlay's egress encapsulation), and the
//! slow path: a miss translated by rvs's NORMAL switch and installed in the
//! kernel (the upcall rate). Needs root (loading BPF programs); without it,
//! it says so and measures nothing.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rvs_benches::ebpf::{KernelBench, Path};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn hit_paths(c: &mut Criterion) {
    if !is_root() {
        eprintln!("ebpf benchmarks skipped: loading BPF programs needs root");
        return;
    }
    let kb = KernelBench::new();
    let mut g = c.benchmark_group("ebpf_hit");
    g.throughput(Throughput::Elements(1));
    for path in Path::ALL {
        let (prog, frame, mark) = kb.case(path);
        kb.check(path).expect("the case takes its path");
        g.bench_function(path.name(), |b| {
            b.iter_custom(|iters| {
                // One run per call: a run changes its skb (a pushed tag, an
                // outer header), and the kernel's repeat would run the next
                // on that. The kernel times the program alone; the sum of
                // its times is what criterion gets.
                (0..iters)
                    .map(|_| {
                        kb.dp
                            .test_run_repeat(prog, &frame, 0, mark, 1)
                            .expect("test run")
                            .2
                    })
                    .sum::<Duration>()
            })
        });
    }
    g.finish();
}

fn upcall(c: &mut Criterion) {
    if !is_root() {
        return;
    }
    let mut kb = KernelBench::new();
    let mut g = c.benchmark_group("ebpf_upcall");
    g.throughput(Throughput::Elements(1));
    g.bench_function("translate_and_install", |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                if kb.slow_flows() > 30_000 {
                    kb.reset_slow();
                }
                let t0 = Instant::now();
                kb.upcall_new_flow();
                t += t0.elapsed();
            }
            t
        })
    });
    g.finish();
}

criterion_group!(benches, hit_paths, upcall);
criterion_main!(benches);
