use super::*;
use crate::drop::DropReason;
use crate::testing::*;
use crate::tunnel::{GeneveEncap, TunnelHeader};
use etherparse::{Ipv4HeaderSlice, SlicedPacket, TransportSlice};
use proptest::prelude::*;
use std::net::Ipv4Addr;

const VTEP1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const VTEP2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn encap(vni: u32, opts: &[(u16, u8, &[u8])]) -> GeneveEncap {
    let mut e = GeneveEncap::new([2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 2, 2], VTEP1, VTEP2, vni);
    for (c, t, d) in opts {
        e.geneve.push_option(*c, *t, d).unwrap();
    }
    e
}

fn encapsulated(vni: u32, opts: &[(u16, u8, &[u8])], inner: &[u8]) -> PacketBuf {
    let mut p = PacketBuf::from_slice(inner);
    TunnelHeader::geneve(&encap(vni, opts))
        .push(&mut p, 0x1234_5678)
        .unwrap();
    p
}

#[test]
fn encap_builds_valid_outer_headers() {
    let inner = udp4_min();
    let p = encapsulated(5001, &[(0x0102, 0x80, &[1, 2, 3, 4])], &inner);
    let s = SlicedPacket::from_ethernet(p.data()).unwrap();
    let ip = Ipv4HeaderSlice::from_slice(&p.data()[14..]).unwrap();
    assert_eq!(
        ip.to_header().calc_header_checksum(),
        ip.header_checksum(),
        "outer IPv4 checksum"
    );
    assert!(ip.dont_fragment());
    assert_eq!(ip.ttl(), 64);
    assert_eq!(ip.source_addr(), VTEP1);
    assert_eq!(ip.destination_addr(), VTEP2);
    assert_eq!(ip.total_len() as usize, p.len() - 14);
    let Some(TransportSlice::Udp(udp)) = s.transport else {
        panic!("no UDP")
    };
    assert_eq!(udp.destination_port(), 6081);
    assert!(udp.source_port() >= 0xc000, "source port from the entropy range");
    assert_eq!(udp.length() as usize, p.len() - 34);
    let g = GenevePacket::new_checked(udp.payload()).unwrap();
    assert_eq!(g.vni(), 5001);
    assert_eq!(g.payload(), &inner[..]);
}

#[test]
fn oam_frames_are_never_decapsulated() {
    let mut e = encap(5001, &[]);
    e.geneve.oam = true;
    let mut p = PacketBuf::from_slice(&udp4_min());
    TunnelHeader::geneve(&e).push(&mut p, 1).unwrap();
    let before = p.data().to_vec();
    let err = decap(&mut p, &GeneveOptMap::default()).unwrap_err();
    assert_eq!(err, GeneveError::Oam);
    assert_eq!(err.drop_reason(), DropReason::GeneveOam);
    assert_eq!(p.data(), &before[..], "left as it came");
}

#[test]
fn source_port_follows_the_flow_hash() {
    let t = TunnelHeader::geneve(&encap(1, &[]));
    let port = |h| {
        let mut p = PacketBuf::from_slice(&udp4_min());
        t.push(&mut p, h).unwrap();
        u16::from_be_bytes([p.data()[34], p.data()[35]])
    };
    assert_eq!(port(7), port(7));
    assert_ne!(port(7), port(8));
}

#[test]
fn decap_round_trip_fills_metadata() {
    let inner = tcp4(1, 2, false, 30);
    let mut map = GeneveOptMap::default();
    map.insert(0x0102, 0x80, 4, 0).unwrap();
    let mut p = encapsulated(
        0xabcdef,
        &[(0x0102, 0x80, &[0, 0, 0x12, 0x34]), (0x0200, 0x01, &[9; 8])],
        &inner,
    );
    decap(&mut p, &map).unwrap();
    assert_eq!(p.data(), &inner[..]);
    let t = p.meta.tunnel;
    assert_eq!(t.tun_id, 0xabcdef);
    assert_eq!(t.src, u32::from(VTEP1));
    assert_eq!(t.dst, u32::from(VTEP2));
    assert_eq!(t.ttl, 64);
    assert_eq!(t.md_present, 1);
    assert_eq!(t.md[0], 0x1234);
    assert_eq!(t.flags & TUN_FLAG_KEY, TUN_FLAG_KEY);
}

#[test]
fn unknown_critical_option_is_dropped_noncritical_ignored() {
    let map = GeneveOptMap::default();
    let mut p = encapsulated(1, &[(0x0200, 0x01, &[1, 2, 3, 4])], &udp4_min());
    assert!(decap(&mut p, &map).is_ok());
    let mut p = encapsulated(1, &[(0x0200, 0x81, &[1, 2, 3, 4])], &udp4_min());
    let e = decap(&mut p, &map).unwrap_err();
    assert_eq!(
        e,
        GeneveError::CriticalOption {
            class: 0x0200,
            typ: 0x81
        }
    );
    assert_eq!(e.drop_reason(), DropReason::GeneveCritOpt);
}

#[test]
fn decap_rejects_bad_headers() {
    let map = GeneveOptMap::default();
    let base = encapsulated(1, &[(0x0102, 0x01, &[0; 4])], &udp4_min());
    let geneve_off = 14 + 20 + 8;
    let check = |edit: &dyn Fn(&mut Vec<u8>), want: DropReason| {
        let mut f = base.data().to_vec();
        edit(&mut f);
        let mut p = PacketBuf::from_slice(&f);
        assert_eq!(decap(&mut p, &map).unwrap_err().drop_reason(), want);
    };
    check(&|f| f[geneve_off] |= 0x40, DropReason::GeneveVersion);
    check(&|f| f[geneve_off + 2] = 0x08, DropReason::GeneveProtocol);
    // Option length past the packet end: claim 63 words of options.
    check(&|f| f[geneve_off] = 0x3f, DropReason::GeneveOptLen);
    // An option whose own length runs past the option area.
    check(&|f| f[geneve_off + 8 + 3] = 0x05, DropReason::GeneveOptLen);
    check(&|f| f.truncate(geneve_off + 4), DropReason::GeneveMalformed);
    check(&|f| f[14 + 9] = 6, DropReason::GeneveMalformed);
    check(&|f| f[14 + 20 + 3] = 0x99, DropReason::GeneveMalformed);
    check(&|f| f[14 + 6] = 0x20, DropReason::GeneveMalformed); // MF set
}

/// External check: tcpdump decodes what rvs encapsulates.
#[test]
fn tcpdump_decodes_our_geneve() {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let p = encapsulated(
        0x00_1389,
        &[(0x0102, 0x80, &[0xde, 0xad, 0xbe, 0xef])],
        &icmp4_echo(1, 1),
    );
    let dir = std::env::temp_dir().join(format!("rvs-geneve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("geneve.pcap");
    {
        let file = std::fs::File::create(&path).unwrap();
        let mut w = PcapWriter::with_header(file, PcapHeader::default()).unwrap();
        w.write_packet(&PcapPacket::new(
            std::time::Duration::ZERO,
            p.len() as u32,
            p.data(),
        ))
        .unwrap();
    }
    let out = std::process::Command::new("tcpdump")
        .args(["-n", "-v", "-r"])
        .arg(&path)
        .output()
        .expect("tcpdump is installed by scripts/install-deps.sh");
    std::fs::remove_dir_all(&dir).ok();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tcpdump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Geneve"), "no Geneve in: {text}");
    assert!(text.contains("vni 0x1389"), "VNI missing in: {text}");
    assert!(
        text.contains("class") && text.contains("(0x102)") && text.contains("type 0x80(C)"),
        "option missing in: {text}"
    );
    assert!(
        text.contains("198.18.0.10 > 198.18.0.11: ICMP echo request"),
        "inner frame not decoded: {text}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Mutated encapsulated frames never panic decap; when decap succeeds the
    /// inner frame lies inside the original frame.
    #[test]
    fn mutated_geneve_never_panics(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
        nopts in 0usize..4,
    ) {
        let opts: Vec<(u16, u8, &[u8])> = (0..nopts).map(|i| (0x0102, i as u8, &[1u8, 2, 3, 4][..])).collect();
        let mut f = encapsulated(77, &opts, &udp4_min()).data().to_vec();
        for (pos, val) in flips {
            let n = f.len();
            f[pos % n] = val;
        }
        f.truncate(cut % (f.len() + 1));
        let mut p = PacketBuf::from_slice(&f);
        let mut map = GeneveOptMap::default();
        map.insert(0x0102, 0x80, 4, 0).unwrap();
        if decap(&mut p, &map).is_ok() {
            prop_assert!(p.len() <= f.len());
        }
    }

    /// Random bytes never panic decap.
    #[test]
    fn random_bytes_never_panic_decap(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut p = PacketBuf::from_slice(&data);
        let _ = decap(&mut p, &GeneveOptMap::default());
    }
}
