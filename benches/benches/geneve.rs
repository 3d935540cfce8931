//! Geneve encapsulation (TunnelHeader::push) and decapsulation (validate, fill
//! tunnel metadata, strip) of a 64-byte frame with one option.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rvs_benches::geneve_header;
use rvs_dataplane::packet::PacketBuf;
use rvs_dataplane::testing::udp4_min;
use rvs_dataplane::tunnel::{decap, GeneveOptMap};
use std::hint::black_box;

fn geneve(c: &mut Criterion) {
    let hdr = geneve_header(5001);
    let hlen = hdr.len();
    let mut g = c.benchmark_group("geneve");
    g.throughput(Throughput::Elements(1));

    let mut pkt = PacketBuf::from_slice(&udp4_min());
    g.bench_function("encap", |b| {
        b.iter(|| {
            hdr.push(black_box(&mut pkt), 0x1234).unwrap();
            // Undo (moves an offset) so every iteration encapsulates the same frame.
            pkt.pull_front(hlen);
        })
    });

    let mut map = GeneveOptMap::default();
    map.insert(0x0102, 0x80, 4, 0).unwrap();
    let mut pkt = PacketBuf::from_slice(&udp4_min());
    hdr.push(&mut pkt, 1).unwrap();
    g.bench_function("decap", |b| {
        b.iter(|| {
            decap(black_box(&mut pkt), &map).unwrap();
            // The outer bytes are still in the headroom: step back over them.
            pkt.push_front(hlen);
        })
    });
    g.finish();
}

criterion_group!(benches, geneve);
criterion_main!(benches);
