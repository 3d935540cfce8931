//! The lab's distributed router (`router::router_flows`) behind security
//! groups (`security_group::firewall_flows`), one node's br-int run by a real
//! PMD: vm1 (tenant-a, VLAN 1) and vm2 (tenant-b, VLAN 2) are local, vm3 and
//! vm4 sit behind `patch-tun` on the other node. Routed connections pass
//! both groups (the source's egress in its zone, the destination's ingress in
//! its own), replies and ICMP errors come back, closed ports stay closed, the
//! TTL drops by one, remote destinations leave tagged with their network's
//! VLAN.

mod common;
use common::pmd::FlowsPmd;
use etherparse::{NetSlice, PacketBuilder, SlicedPacket};
use rvs_control::router::{router_flows, Attachment, Host, RouterPort};
use rvs_control::security_group::{allow_egress, firewall_flows_with, Direction, Port, Proto, Rule};
use rvs_dataplane::DropReason;
use std::net::Ipv4Addr;

const VM1: [u8; 6] = [2, 0, 0xc6, 0x13, 1, 11];
const VM2: [u8; 6] = [2, 0, 0xc6, 0x13, 2, 12];
const VM3: [u8; 6] = [2, 0, 0xc6, 0x13, 1, 13];
const VM4: [u8; 6] = [2, 0, 0xc6, 0x13, 2, 14];
const VM5: [u8; 6] = [2, 0, 0xc6, 0x13, 1, 15];
const GW_A: [u8; 6] = [2, 0, 0xc6, 0x13, 1, 1];
const GW_B: [u8; 6] = [2, 0, 0xc6, 0x13, 2, 1];
const IP1: [u8; 4] = [198, 19, 1, 11];
const IP2: [u8; 4] = [198, 19, 2, 12];
const IP3: [u8; 4] = [198, 19, 1, 13];
const IP4: [u8; 4] = [198, 19, 2, 14];
const IP5: [u8; 4] = [198, 19, 1, 15];

fn flows() -> String {
    let rules = || {
        let mut r = allow_egress();
        for proto in [Proto::Icmp, Proto::Tcp(Some((22, 22))), Proto::Udp(Some((9, 9)))] {
            r.push(Rule {
                direction: Direction::Ingress,
                proto,
                remote: None,
            });
        }
        r
    };
    let port = |name: &str, id, mac, ip: [u8; 4], vlan| Port {
        name: name.into(),
        id,
        mac,
        ip: ip.into(),
        zone: vlan,
        vlan: Some(vlan),
        rules: rules(),
    };
    let sg = firewall_flows_with(
        &[
            port("vm1", 1, VM1, IP1, 1),
            port("vm2", 2, VM2, IP2, 2),
            port("vm5", 3, VM5, IP5, 1),
        ],
        Some("patch-tun"),
    );
    let rport = |vlan, gw: [u8; 4], mac| RouterPort {
        vlan,
        gateway: gw.into(),
        prefix: 24,
        mac,
    };
    let local = |port: &str, id| Attachment::Local {
        port: port.into(),
        sg_id: Some(id),
    };
    let remote = || Attachment::Remote {
        via: "patch-tun".into(),
    };
    let host = |ip: [u8; 4], mac, vlan, at| Host {
        ip: Ipv4Addr::from(ip),
        mac,
        vlan,
        at,
    };
    let hosts = [
        host(IP1, VM1, 1, local("vm1", 1)),
        host(IP2, VM2, 2, local("vm2", 2)),
        host(IP3, VM3, 1, remote()),
        host(IP5, VM5, 1, local("vm5", 3)),
        host(IP4, VM4, 2, remote()),
    ];
    let router = router_flows(
        &[rport(1, [198, 19, 1, 1], GW_A), rport(2, [198, 19, 2, 1], GW_B)],
        &hosts,
        &[("vm1".into(), 1), ("vm2".into(), 2), ("vm5".into(), 1)],
        true,
    );
    format!("{sg}{router}")
}

fn node() -> FlowsPmd {
    FlowsPmd::tagged(
        &flows(),
        &[
            ("vm1", Some(1)),
            ("vm2", Some(2)),
            ("vm5", Some(1)),
            ("patch-tun", None),
        ],
    )
}

/// A TCP segment; `vlan`: tagged (as frames from patch-tun are).
fn tcp(
    m: ([u8; 6], [u8; 6]),
    ip: ([u8; 4], [u8; 4]),
    ports: (u16, u16),
    flags: &str,
    vlan: Option<u16>,
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(m.0, m.1);
    let l3 = match vlan {
        Some(v) => eth
            .single_vlan(etherparse::VlanId::try_new(v).unwrap())
            .ipv4(ip.0, ip.1, 64),
        None => eth.ipv4(ip.0, ip.1, 64),
    };
    let mut b = l3.tcp(ports.0, ports.1, 1000, 64000);
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('A') {
        b = b.ack(5000);
    }
    let mut out = Vec::new();
    b.write(&mut out, &[]).unwrap();
    out
}

fn udp(m: ([u8; 6], [u8; 6]), ip: ([u8; 4], [u8; 4]), ttl: u8) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(m.0, m.1)
        .ipv4(ip.0, ip.1, ttl)
        .udp(40000, 9);
    let mut out = Vec::new();
    b.write(&mut out, &[7; 8]).unwrap();
    out
}

fn ttl_of(frame: &[u8]) -> u8 {
    match SlicedPacket::from_ethernet(frame).unwrap().net {
        Some(NetSlice::Ipv4(ip)) => ip.header().ttl(),
        _ => panic!("not IPv4"),
    }
}

/// An ARP request (`request`) or reply between `macs` (sender, target; the
/// frame goes to the target, broadcast for a request) about `ips`.
fn arp(request: bool, macs: ([u8; 6], [u8; 6]), ips: ([u8; 4], [u8; 4])) -> Vec<u8> {
    let (op, tha) = if request {
        (etherparse::ArpOperation::REQUEST, [0; 6])
    } else {
        (etherparse::ArpOperation::REPLY, macs.1)
    };
    let b = PacketBuilder::ethernet2(macs.0, macs.1).arp(
        etherparse::ArpPacket::new(
            etherparse::ArpHardwareId::ETHERNET,
            etherparse::EtherType::IPV4,
            op,
            &macs.0,
            &ips.0,
            &tha,
            &ips.1,
        )
        .unwrap(),
    );
    let mut v = Vec::new();
    b.write(&mut v).unwrap();
    v
}

fn vlan_of(frame: &[u8]) -> Option<u16> {
    (frame[12..14] == [0x81, 0x00]).then(|| u16::from_be_bytes([frame[14], frame[15]]) & 0xfff)
}

#[test]
fn the_gateway_answers_arp_on_each_network_and_only_there() {
    let mut n = node();
    let arp = |mac: [u8; 6], spa: [u8; 4], tpa: [u8; 4]| arp(true, (mac, [0xff; 6]), (spa, tpa));
    let out = n.send("vm1", &arp(VM1, IP1, [198, 19, 1, 1]));
    assert_eq!(out.keys().collect::<Vec<_>>(), ["vm1"], "answered, not flooded");
    let reply = &out["vm1"][0];
    assert_eq!(
        (&reply[..6], &reply[22..28], &reply[28..32]),
        (&VM1[..], &GW_A[..], &[198, 19, 1, 1][..])
    );
    // tenant-b's gateway address is not on tenant-a: no answer from the router.
    let out = n.send("vm1", &arp(VM1, IP1, [198, 19, 2, 1]));
    assert!(!out.contains_key("vm1") && !out.contains_key("vm2"), "{out:?}");
}

#[test]
fn a_routed_connection_passes_both_groups_and_its_replies_come_back() {
    let mut n = node();
    for round in 0..3 {
        // Cached from the second round on.
        let sport = 40000 + round;
        let syn = tcp((VM1, GW_A), (IP1, IP2), (sport, 22), "S", None);
        let out = n.send("vm1", &syn);
        let got = &out.get("vm2").unwrap_or_else(|| panic!("round {round}: {out:?}"))[0];
        assert_eq!(
            (&got[..6], &got[6..12]),
            (&VM2[..], &GW_B[..]),
            "next hop's MAC, router port's MAC"
        );
        assert_eq!(ttl_of(got), 63, "one hop");
        assert_eq!(vlan_of(got), None, "the access port gets it untagged");
        let synack = tcp((VM2, GW_B), (IP2, IP1), (22, sport), "SA", None);
        let out = n.send("vm2", &synack);
        assert_eq!(
            out.keys().collect::<Vec<_>>(),
            ["vm1"],
            "round {round}: the reply is routed back"
        );
        assert_eq!(&out["vm1"][0][6..12], &GW_A);
        let ack = tcp((VM1, GW_A), (IP1, IP2), (sport, 22), "A", None);
        assert!(
            n.send("vm1", &ack).contains_key("vm2"),
            "round {round}: established"
        );
    }
    let ct = n.pmd.conntrack().lock().unwrap().dump(0);
    let zones: Vec<u16> = ct.iter().map(|c| c.zone).collect();
    assert!(
        zones.contains(&1) && zones.contains(&2),
        "tracked in each network's zone: {zones:?}"
    );
}

#[test]
fn closed_ports_stay_closed_across_the_router() {
    let mut n = node();
    for _ in 0..3 {
        let syn = tcp((VM1, GW_A), (IP1, IP2), (40000, 81), "S", None);
        assert!(
            n.send("vm1", &syn).is_empty(),
            "vm2's group does not open port 81"
        );
        // Unsolicited from the other node, routed there, into vm1: dropped.
        let syn = tcp((GW_A, VM1), (IP4, IP1), (40000, 81), "S", Some(1));
        assert!(n.send("patch-tun", &syn).is_empty());
        // A reply-looking segment of no connection is not let in either.
        let ack = tcp((VM2, GW_B), (IP2, IP1), (22, 40001), "A", None);
        assert!(!n.send("vm2", &ack).contains_key("vm1"));
    }
}

#[test]
fn remote_destinations_leave_in_their_network_and_replies_return() {
    let mut n = node();
    let syn = tcp((VM1, GW_A), (IP1, IP4), (40000, 22), "S", None);
    let out = n.send("vm1", &syn);
    let got = &out["patch-tun"][0];
    assert_eq!(
        vlan_of(got),
        Some(2),
        "tenant-b's local VLAN: br-tun picks its VNI"
    );
    assert_eq!((&got[..6], &got[6..12]), (&VM4[..], &GW_B[..]));
    // The other node routed the reply: it arrives in tenant-a, to vm1.
    let synack = tcp((GW_A, VM1), (IP4, IP1), (22, 40000), "SA", Some(1));
    let out = n.send("patch-tun", &synack);
    assert_eq!(out.keys().collect::<Vec<_>>(), ["vm1"]);
    assert_eq!(vlan_of(&out["vm1"][0]), None);
}

#[test]
fn icmp_errors_of_a_routed_flow_are_related_and_pass() {
    let mut n = node();
    let probe = udp((VM1, GW_A), (IP1, IP2), 64);
    let got = n.send("vm1", &probe)["vm2"][0].clone();
    // vm2's kernel: port 9 unreachable, quoting what it got.
    let quoted = &got[14..14 + 28];
    let b = PacketBuilder::ethernet2(VM2, GW_B).ipv4(IP2, IP1, 64).icmpv4(
        etherparse::Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port),
    );
    let mut err = Vec::new();
    b.write(&mut err, quoted).unwrap();
    let out = n.send("vm2", &err);
    assert_eq!(out.keys().collect::<Vec<_>>(), ["vm1"], "related: routed back");
    // The same error with nothing it relates to is dropped.
    let mut other = quoted.to_vec();
    other[20..22].copy_from_slice(&41000u16.to_be_bytes());
    let b = PacketBuilder::ethernet2(VM2, GW_B).ipv4(IP2, IP1, 64).icmpv4(
        etherparse::Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port),
    );
    let mut stray = Vec::new();
    b.write(&mut stray, &other).unwrap();
    assert!(
        n.send("vm2", &stray).is_empty(),
        "an error about no connection is not related"
    );
}

#[test]
fn the_ttl_drops_by_one_and_expired_packets_stop_at_the_router() {
    let mut n = node();
    let got = &n.send("vm1", &udp((VM1, GW_A), (IP1, IP2), 2))["vm2"][0];
    assert_eq!(ttl_of(got), 1);
    let before = n.pmd.stats().drops.get(DropReason::TtlExceeded);
    assert!(n.send("vm1", &udp((VM1, GW_A), (IP1, IP2), 1)).is_empty());
    assert_eq!(n.pmd.stats().drops.get(DropReason::TtlExceeded), before + 1);
    // Unrouted: no network of the router has it.
    assert!(n
        .send("vm1", &udp((VM1, GW_A), (IP1, [198, 19, 9, 9]), 64))
        .is_empty());
}

/// Neutron's `explicitly_egress_direct`: NORMAL never sees the remote VMs'
/// frames (they enter through the ingress tables), so unicast to them would
/// be flooded as unknown; it goes straight to patch-tun instead, and
/// unicast to a local port straight to that port.
#[test]
fn egress_unicast_goes_where_its_mac_is_never_flooded() {
    let mut n = node();
    for _ in 0..3 {
        let syn = tcp((VM1, VM3), (IP1, IP3), (40000, 22), "S", None);
        let out = n.send("vm1", &syn);
        assert_eq!(
            out.keys().collect::<Vec<_>>(),
            ["patch-tun"],
            "not flooded to vm5"
        );
        assert_eq!(vlan_of(&out["patch-tun"][0]), Some(1));
        // Same network, this node: through vm5's ingress rules, to vm5 only.
        let syn = tcp((VM1, VM5), (IP1, IP5), (40000, 22), "S", None);
        assert_eq!(n.send("vm1", &syn).keys().collect::<Vec<_>>(), ["vm5"]);
    }
    // An ARP reply to a local neighbour: to it, not up the tunnel.
    let reply = arp(false, (VM1, VM5), (IP1, IP5));
    assert_eq!(n.send("vm1", &reply).keys().collect::<Vec<_>>(), ["vm5"]);
}
