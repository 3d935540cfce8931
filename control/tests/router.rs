//! A distributed router in flows (`fixtures/ovn-router.flows`, the way OVN
//! builds one) run by a real PMD: ARP for the router's addresses answered,
//! traffic between the tenants routed with the MACs rewritten and the TTL
//! one lower per hop, an expired TTL and unrouted destinations dropped.

mod common;
use common::pmd::FlowsPmd;
use etherparse::{NetSlice, PacketBuilder, SlicedPacket};
use rvs_dataplane::DropReason;

const ROUTER: &str = include_str!("../fixtures/ovn-router.flows");
const VMA: [u8; 6] = [2, 0, 0, 0, 1, 0x0a];
const VMB: [u8; 6] = [2, 0, 0, 0, 2, 0x0a];
const GW_A: [u8; 6] = [2, 0, 0, 0, 1, 1];
const GW_B: [u8; 6] = [2, 0, 0, 0, 2, 1];

fn udp(src_mac: [u8; 6], dst_mac: [u8; 6], src: [u8; 4], dst: [u8; 4], ttl: u8) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src, dst, ttl)
        .udp(5000, 53);
    let mut out = Vec::new();
    b.write(&mut out, &[1, 2, 3, 4]).unwrap();
    out
}

fn ttl_of(frame: &[u8]) -> u8 {
    match SlicedPacket::from_ethernet(frame).unwrap().net {
        Some(NetSlice::Ipv4(ip)) => ip.header().ttl(),
        _ => panic!("not IPv4"),
    }
}

#[test]
fn the_router_answers_arp_for_its_addresses() {
    let mut r = FlowsPmd::new(ROUTER, &["vma", "vmb"]);
    let b = PacketBuilder::ethernet2(VMA, [0xff; 6]).arp(
        etherparse::ArpPacket::new(
            etherparse::ArpHardwareId::ETHERNET,
            etherparse::EtherType::IPV4,
            etherparse::ArpOperation::REQUEST,
            &VMA,
            &[198, 18, 1, 10],
            &[0; 6],
            &[198, 18, 1, 1],
        )
        .unwrap(),
    );
    let mut req = Vec::new();
    b.write(&mut req).unwrap();
    let out = r.send("vma", &req);
    let reply = &out["vma"][0];
    assert_eq!(&reply[..6], &VMA, "to the asker");
    assert_eq!(&reply[6..12], &GW_A, "from the router port");
    assert_eq!(&reply[20..22], &[0, 2], "an ARP reply");
    assert_eq!(&reply[22..28], &GW_A, "sender hardware address: the router's");
    assert_eq!(&reply[28..32], &[198, 18, 1, 1]);
    assert!(!out.contains_key("vmb"), "nothing leaks to the other tenant");
}

#[test]
fn traffic_between_tenants_is_routed_one_hop() {
    let mut r = FlowsPmd::new(ROUTER, &["vma", "vmb"]);
    for _ in 0..3 {
        // Cached after the first: each copy still gets its own rewrite.
        let f = udp(VMA, GW_A, [198, 18, 1, 10], [198, 18, 2, 10], 64);
        let out = r.send("vma", &f);
        let got = &out["vmb"][0];
        assert_eq!(&got[..6], &VMB, "to the next hop's MAC");
        assert_eq!(&got[6..12], &GW_B, "from the router port on tenant-b");
        assert_eq!(ttl_of(got), 63, "one router hop: TTL one lower");
        assert_eq!(&got[14 + 20..], &f[14 + 20..], "L4 untouched");
        assert!(!out.contains_key("vma"));
    }
    let back = udp(VMB, GW_B, [198, 18, 2, 10], [198, 18, 1, 10], 10);
    let got = &r.send("vmb", &back)["vma"][0];
    assert_eq!((&got[..6], &got[6..12], ttl_of(got)), (&VMA[..], &GW_A[..], 9));
}

#[test]
fn expired_ttl_and_unrouted_destinations_are_dropped() {
    let mut r = FlowsPmd::new(ROUTER, &["vma", "vmb"]);
    let before = r.pmd.stats().drops.get(DropReason::TtlExceeded);
    let f = udp(VMA, GW_A, [198, 18, 1, 10], [198, 18, 2, 10], 1);
    assert!(r.send("vma", &f).is_empty(), "TTL 1 does not cross a router");
    assert_eq!(r.pmd.stats().drops.get(DropReason::TtlExceeded), before + 1);
    let f = udp(VMA, GW_A, [198, 18, 1, 10], [198, 18, 9, 9], 64);
    assert!(r.send("vma", &f).is_empty(), "no route to 198.18.9.0/24");
}
