use super::*;
use crate::testing::*;
use proptest::prelude::*;

fn ex(f: &[u8]) -> Result<(FlowKey, Layers), ExtractError> {
    FlowKey::extract(
        f,
        &PacketMeta {
            in_port: 7,
            ..Default::default()
        },
    )
}

#[test]
fn udp4_fields() {
    let (k, l) = ex(&udp4_min()).unwrap();
    assert_eq!(k.get(Field::InPort), 7);
    assert_eq!(k.eth_src(), MAC_A);
    assert_eq!(k.eth_dst(), MAC_B);
    assert_eq!(k.get(Field::EthType), 0x0800);
    assert_eq!(k.nw_src().octets(), IP_A);
    assert_eq!(k.nw_dst().octets(), IP_B);
    assert_eq!(k.get(Field::NwProto), 17);
    assert_eq!(k.get(Field::NwTtl), 64);
    assert_eq!(k.get(Field::TpSrc), 1000);
    assert_eq!(k.get(Field::TpDst), 2000);
    assert_eq!(k.get(Field::NwFrag), 0);
    assert_eq!(l, Layers { l3: 14, l4: 34 });
}

#[test]
fn tcp_flags() {
    let (k, _) = ex(&tcp4(5, 80, true, 0)).unwrap();
    assert_eq!(k.get(Field::NwProto), 6);
    assert_eq!(k.get(Field::TpDst), 80);
    assert_eq!(k.get(Field::TcpFlags), 0x012); // SYN|ACK
}

#[test]
fn icmp_type_code() {
    let (k, _) = ex(&icmp4_echo(1, 2)).unwrap();
    assert_eq!(k.get(Field::NwProto), 1);
    assert_eq!(k.get(Field::TpSrc), 8);
    assert_eq!(k.get(Field::TpDst), 0);
}

#[test]
fn arp_fields() {
    let (k, l) = ex(&arp_request()).unwrap();
    assert_eq!(k.get(Field::EthType), 0x0806);
    assert_eq!(k.get(Field::ArpOp), 1);
    assert_eq!(k.nw_src().octets(), IP_A);
    assert_eq!(k.nw_dst().octets(), IP_B);
    assert_eq!(l.l4, 0);
}

#[test]
fn single_and_double_vlan() {
    let (k, l) = ex(&with_vlan(&udp4_min(), 0x8100, 0x2064)).unwrap();
    assert_eq!(k.get(Field::VlanTci), (0x2064 | VLAN_CFI) as u64);
    assert_eq!(k.get(Field::VlanTci2), 0);
    assert_eq!(k.get(Field::EthType), 0x0800);
    assert_eq!(k.get(Field::TpDst), 2000);
    assert_eq!(l.l3, 18);

    let inner = with_vlan(&udp4_min(), 0x8100, 20);
    let (k, l) = ex(&with_vlan(&inner, 0x88a8, 300)).unwrap();
    assert_eq!(k.get(Field::VlanTci), (300 | VLAN_CFI) as u64);
    assert_eq!(k.get(Field::VlanTci2), (20 | VLAN_CFI) as u64);
    assert_eq!(l.l3, 22);
    assert_eq!(k.get(Field::TpDst), 2000);
}

#[test]
fn three_vlan_tags_are_refused() {
    let f = with_vlan(
        &with_vlan(&with_vlan(&udp4_min(), 0x8100, 1), 0x8100, 2),
        0x88a8,
        3,
    );
    assert_eq!(ex(&f).unwrap_err(), ExtractError::VlanTooManyTags);
    assert_eq!(
        ExtractError::VlanTooManyTags.drop_reason(),
        DropReason::VlanTooManyTags
    );
}

#[test]
fn ipv4_fragments_first_vs_later() {
    let (k, _) = ex(&udp4_fragment(0, true)).unwrap();
    assert_eq!(k.get(Field::NwFrag), FRAG_ANY as u64);
    assert_eq!(k.get(Field::TpSrc), 1, "first fragment carries ports");
    let (k, l) = ex(&udp4_fragment(4, false)).unwrap();
    assert_eq!(k.get(Field::NwFrag), (FRAG_ANY | FRAG_LATER) as u64);
    assert_eq!(k.get(Field::TpSrc), 0, "later fragments have no L4");
    assert_eq!(l.l4, 0);
}

#[test]
fn ipv6_with_fragment_header() {
    let (k, l) = ex(&udp6(53, 54)).unwrap();
    assert_eq!(k.get(Field::EthType), 0x86dd);
    assert_eq!(k.get(Field::NwProto), 17);
    assert_eq!(k.get(Field::TpSrc), 53);
    assert_eq!(k.ipv6_dst().segments()[7], 2);
    assert_eq!(l.l4, 54);

    let (k, l) = ex(&udp6_fragment(0, true)).unwrap();
    assert_eq!(k.get(Field::NwFrag), FRAG_ANY as u64);
    assert_eq!(k.get(Field::NwProto), 17);
    assert_eq!(k.get(Field::TpSrc), 1);
    assert_eq!(l.l4, 62);
    let (k, _) = ex(&udp6_fragment(3, false)).unwrap();
    assert_eq!(k.get(Field::NwFrag), (FRAG_ANY | FRAG_LATER) as u64);
    assert_eq!(k.get(Field::TpSrc), 0);
}

#[test]
fn truncations_are_errors_with_reasons() {
    let f = udp4_min();
    assert_eq!(ex(&f[..10]).unwrap_err(), ExtractError::TruncatedEth(10));
    assert_eq!(ex(&f[..20]).unwrap_err(), ExtractError::Ipv4);
    // Cut frames: the IPv4 total length now lies.
    assert_eq!(ex(&f[..38]).unwrap_err(), ExtractError::Ipv4);
    let t = tcp4(1, 2, false, 0);
    assert_eq!(ex(&t[..40]).unwrap_err(), ExtractError::Ipv4);
    let v = with_vlan(&f, 0x8100, 1);
    assert_eq!(ex(&v[..15]).unwrap_err(), ExtractError::VlanTruncated);
    let a = arp_request();
    assert_eq!(ex(&a[..30]).unwrap_err(), ExtractError::Arp);
    // Bad IHL.
    let mut bad = f.clone();
    bad[14] = 0x43;
    assert_eq!(ex(&bad).unwrap_err(), ExtractError::Ipv4);
}

fn set16(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[test]
fn lying_lengths_are_refused() {
    // IPv4 total length beyond the frame, or shorter than the header.
    let mut f = udp4_min();
    set16(&mut f, 16, 200);
    assert_eq!(ex(&f).unwrap_err(), ExtractError::Ipv4);
    set16(&mut f, 16, 12);
    assert_eq!(ex(&f).unwrap_err(), ExtractError::Ipv4);
    // Trailing Ethernet padding is fine: L4 ends where IP says.
    let mut f = udp4(MAC_A, MAC_B, IP_A, IP_B, 1, 2, 0);
    f.extend_from_slice(&[0; 18]);
    assert!(ex(&f).is_ok());
    // UDP length: different from the IP payload, or below 8.
    let mut f = udp4_min();
    set16(&mut f, 38, 20);
    assert_eq!(ex(&f).unwrap_err(), ExtractError::Udp);
    set16(&mut f, 38, 4);
    assert_eq!(ex(&f).unwrap_err(), ExtractError::Udp);
    assert_eq!(ExtractError::Udp.drop_reason(), DropReason::MalformedUdp);
    // ...but a first fragment's UDP length covers the whole datagram.
    let mut f = udp4_fragment(0, true);
    set16(&mut f, 38, 1000);
    assert!(ex(&f).is_ok());
    // IPv6 payload length 0 (jumbogram) or beyond the frame.
    let mut f = udp6(1, 2);
    set16(&mut f, 18, 0);
    assert_eq!(ex(&f).unwrap_err(), ExtractError::Ipv6);
    set16(&mut f, 18, 500);
    assert_eq!(ex(&f).unwrap_err(), ExtractError::Ipv6);
    // TCP data offset below 5, or past the segment.
    let mut f = tcp4(1, 2, false, 0);
    f[46] = 0x40;
    assert_eq!(ex(&f).unwrap_err(), ExtractError::Tcp);
    f[46] = 0xf0;
    assert_eq!(ex(&f).unwrap_err(), ExtractError::Tcp);
    // ICMP shorter than its header, inside a consistent IP packet.
    let mut f = icmp4_echo(1, 1);
    f.truncate(14 + 20 + 4);
    set16(&mut f, 16, 24);
    assert_eq!(ex(&f).unwrap_err(), ExtractError::Icmp);
}

/// IPv6/UDP with a hop-by-hop header (8 bytes) holding `opts` (6 bytes).
fn udp6_hbh(opts: [u8; 6]) -> Vec<u8> {
    let mut f = udp6(1, 2);
    f[14 + 6] = 0; // next header: hop-by-hop
    let plen = u16::from_be_bytes([f[18], f[19]]) + 8;
    set16(&mut f, 18, plen);
    let mut h = vec![17, 0];
    h.extend_from_slice(&opts);
    f.splice(54..54, h);
    f
}

#[test]
fn ipv6_option_tlvs_must_fit_their_header() {
    // PadN of 4 data bytes: exactly fills the header.
    assert_eq!(ex(&udp6_hbh([1, 4, 0, 0, 0, 0])).unwrap().0.get(Field::TpSrc), 1);
    // Pad1 x2 then PadN of 2.
    assert!(ex(&udp6_hbh([0, 0, 1, 2, 0, 0])).is_ok());
    // An option claiming 9 data bytes overruns the 6 left.
    assert_eq!(ex(&udp6_hbh([1, 9, 0, 0, 0, 0])).unwrap_err(), ExtractError::Ipv6);
    // A type byte with no room for its length.
    assert_eq!(ex(&udp6_hbh([1, 3, 0, 0, 0, 5])).unwrap_err(), ExtractError::Ipv6);
}

#[test]
fn arp_must_be_ethernet_ipv4() {
    for (at, v) in [(14, 6u8), (16, 0x86), (18, 8), (19, 16)] {
        let mut f = arp_request();
        f[at] = v;
        let e = ex(&f).unwrap_err();
        assert_eq!(e, ExtractError::Arp, "byte {at} = {v}");
    }
}

#[test]
fn invalid_source_macs_are_refused() {
    for src in [
        [0u8; 6],
        [0xff; 6],
        [0x01, 0, 0x5e, 0, 0, 1],
        [0x33, 0x33, 0, 0, 0, 1],
    ] {
        let f = udp4(src, MAC_B, IP_A, IP_B, 1, 2, 18);
        assert_eq!(ex(&f).unwrap_err(), ExtractError::InvalidSrcMac, "{src:x?}");
    }
    assert_eq!(
        ExtractError::InvalidSrcMac.drop_reason(),
        DropReason::InvalidSrcMac
    );
    // Multicast and broadcast destinations are of course fine.
    assert!(ex(&udp4(MAC_A, [0xff; 6], IP_A, IP_B, 1, 2, 18)).is_ok());
}

#[test]
fn tunnel_metadata_is_in_the_key() {
    let mut meta = PacketMeta {
        in_port: 3,
        recirc_id: 9,
        ..Default::default()
    };
    meta.tunnel.tun_id = 5001;
    meta.tunnel.dst = 0xc612_0001;
    meta.tunnel.md_present = 1;
    meta.tunnel.md[0] = 0xabcd;
    let (k, _) = FlowKey::extract(&udp4_min(), &meta).unwrap();
    assert_eq!(k.get(Field::TunId), 5001);
    assert_eq!(k.get(Field::TunDst), 0xc612_0001);
    assert_eq!(k.get(Field::RecircId), 9);
    assert_eq!(k.get(Field::TunMd(0)), 0xabcd);
    assert_eq!(k.get(Field::TunMdPresent), 1);
}

const ND_TARGET: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];

fn nd_of(f: &[u8]) -> NdFields {
    let (k, _) = ex(f).unwrap();
    nd_fields(f, &k)
}

#[test]
fn neighbour_discovery_fields_as_ovs_reads_them() {
    let sll = [2, 0, 0, 0, 0, 0x51];
    let tll = [2, 0, 0, 0, 0, 0x71];
    let target = u128::from_be_bytes(ND_TARGET);
    let (k, _) = ex(&nd(135, ND_TARGET, &[(1, sll)])).unwrap();
    assert_eq!((k.get(Field::TpSrc), k.get(Field::TpDst)), (135, 0));
    let n = nd_of(&nd(135, ND_TARGET, &[(1, sll)]));
    assert_eq!(
        n,
        NdFields {
            target,
            sll: 0x0200_0000_0051,
            tll: 0
        }
    );
    assert_eq!(nd_of(&nd(136, ND_TARGET, &[(2, tll)])).tll, 0x0200_0000_0071);
    // Both options: both kept (OVS reads each regardless of the message type).
    let n = nd_of(&nd(136, ND_TARGET, &[(2, tll), (1, sll)]));
    assert_eq!((n.sll, n.tll), (0x0200_0000_0051, 0x0200_0000_0071));
    // A repeated link-layer option is OVS's "invalid": all three are cleared,
    // the packet is not dropped.
    assert_eq!(
        nd_of(&nd(135, ND_TARGET, &[(1, sll), (1, sll)])),
        NdFields::default()
    );
    // A truncated option list keeps what came before it.
    let mut cut = nd(135, ND_TARGET, &[(1, sll), (2, tll)]);
    cut.truncate(cut.len() - 4);
    let plen = (cut.len() - 54) as u16;
    cut[18..20].copy_from_slice(&plen.to_be_bytes());
    assert_eq!(nd_of(&cut).sll, 0x0200_0000_0051);
    // Other ICMPv6 messages carry no ND fields.
    let mut echo = nd(135, ND_TARGET, &[(1, sll)]);
    echo[54] = 128;
    assert_eq!(nd_of(&echo), NdFields::default());
}

#[test]
fn flow_label_and_mark() {
    let mut f = udp6(1, 2);
    f[15] |= 0x0a; // label's top nibble
    f[16] = 0xbc;
    f[17] = 0xde;
    let (k, _) = ex(&f).unwrap();
    assert_eq!(k.get(Field::Ipv6Label), 0xabcde);
    let meta = PacketMeta {
        mark: 0xfeed,
        ..Default::default()
    };
    let (k, _) = FlowKey::extract(&udp4_min(), &meta).unwrap();
    assert_eq!(k.get(Field::PktMark), 0xfeed);
}

fn valid_frames() -> Vec<Vec<u8>> {
    vec![
        udp4_min(),
        tcp4(1, 2, true, 10),
        icmp4_echo(1, 1),
        arp_request(),
        udp6(1, 2),
        udp6_fragment(0, true),
        udp4_fragment(2, true),
        with_vlan(&with_vlan(&udp4_min(), 0x8100, 5), 0x88a8, 6),
        nd(136, ND_TARGET, &[(2, MAC_B), (1, MAC_A)]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Random bytes never panic; an error always maps to a drop reason.
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Err(e) = ex(&data) {
            let _ = e.drop_reason();
        }
    }

    /// Valid frames with bytes flipped and tails cut never panic, and the
    /// reported layer offsets stay inside the frame.
    #[test]
    fn mutated_frames_never_panic(
        which in 0usize..9,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
    ) {
        let mut f = valid_frames().swap_remove(which);
        for (pos, val) in flips {
            let n = f.len();
            f[pos % n] = val;
        }
        let len = cut % (f.len() + 1);
        f.truncate(len);
        if let Ok((_, l)) = ex(&f) {
            prop_assert!(l.l3 as usize <= f.len());
            prop_assert!(l.l4 as usize <= f.len());
        }
    }
}
