//! The connection tracker (issue 12): what `ct()` costs a packet of an
//! established connection, and how fast connections are created.
//! - `lookup_established/udp`: 10,000 answered UDP connections, one packet
//!   each in turn (both directions);
//! - `lookup_established/tcp`: one established TCP connection, in-window data
//!   segments (the window tracker's full check on every packet);
//! - `setup/udp` and `setup/tcp_syn`: a commit creating a connection in a
//!   table that grows (from empty, as many as criterion asks for).
//!
//! One element is one `ct()` execution.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rvs_dataplane::conntrack::{Conntrack, CtAction, CtConfig, CtPacket, TcpSegment, Tuple, L4};
use std::hint::black_box;
use std::time::Instant;

const COMMIT: CtAction = CtAction {
    zone: 1,
    commit: true,
    mark: None,
    label: None,
    nat: None,
};
const LOOKUP: CtAction = CtAction {
    commit: false,
    ..COMMIT
};

/// The `i`th of 2^16 * 64,000 distinct UDP tuples.
fn udp(i: u32) -> CtPacket {
    let b = i.to_be_bytes();
    CtPacket {
        tuple: Tuple::v4(
            [198, 18, b[2], b[3]],
            [198, 19, 0, 1],
            17,
            1024 + (i >> 16) as u16,
            53,
        ),
        l4: L4::Other,
    }
}

fn tcp(reply: bool, seq: u32, ack: u32, flags: u16, len: u32) -> CtPacket {
    let t = Tuple::v4([198, 18, 0, 10], [198, 18, 0, 11], 6, 40000, 22);
    CtPacket {
        tuple: if reply { t.reverse() } else { t },
        l4: L4::Tcp(TcpSegment {
            seq,
            ack,
            flags,
            win: 65535,
            wscale: None,
            len,
        }),
    }
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack/lookup_established");
    g.throughput(Throughput::Elements(1));
    let n = 10_000u32;
    let mut ct = Conntrack::new(CtConfig::default());
    let pkts: Vec<CtPacket> = (0..n).map(udp).collect();
    for p in &pkts {
        ct.execute(Ok(p), &COMMIT, 0).expect("room");
        let mut r = *p;
        r.tuple = p.tuple.reverse();
        ct.execute(Ok(&r), &LOOKUP, 0).expect("lookup");
    }
    let mut i = 0usize;
    g.bench_function("udp", |b| {
        b.iter(|| {
            i = (i + 1) % pkts.len();
            black_box(ct.execute(Ok(&pkts[i]), &LOOKUP, 1).expect("lookup").state)
        })
    });
    let mut ct = Conntrack::new(CtConfig::default());
    ct.execute(Ok(&tcp(false, 1000, 0, 0x02, 0)), &COMMIT, 0)
        .expect("syn");
    ct.execute(Ok(&tcp(true, 5000, 1001, 0x12, 0)), &LOOKUP, 0)
        .expect("syn-ack");
    let mut seq = 1001u32;
    g.bench_function("tcp", |b| {
        b.iter(|| {
            let s = ct
                .execute(Ok(&tcp(false, seq, 5001, 0x10, 100)), &LOOKUP, 1)
                .expect("data");
            seq = seq.wrapping_add(100);
            black_box(s.state)
        })
    });
    g.finish();
}

fn setup(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack/setup");
    g.throughput(Throughput::Elements(1));
    g.bench_function("udp", |b| {
        b.iter_custom(|iters| {
            let mut ct = Conntrack::new(CtConfig::default());
            let t = Instant::now();
            for i in 0..iters {
                black_box(ct.execute(Ok(&udp(i as u32)), &COMMIT, 0).ok());
            }
            t.elapsed()
        })
    });
    g.bench_function("tcp_syn", |b| {
        b.iter_custom(|iters| {
            let mut ct = Conntrack::new(CtConfig::default());
            let t = Instant::now();
            for i in 0..iters {
                let mut p = tcp(false, i as u32, 0, 0x02, 0);
                p.tuple = udp(i as u32).tuple;
                p.tuple.proto = 6;
                black_box(ct.execute(Ok(&p), &COMMIT, 0).ok());
            }
            t.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, lookup, setup);
criterion_main!(benches);
