//! OVS conformance: rule sets, packets and the result OVS documents for them
//! (ovs-actions(7), ovs-fields(7) and the expectations of OVS's
//! `tests/ofproto-dpif.at`), each case in our own words. A packet is a real
//! frame: its key is extracted, translated through the rules, and the datapath
//! actions are executed on the frame, so each case checks what leaves which
//! port, byte for byte where it matters, and which drop reason counts it.

use rvs_control::bridge::PortType;
use rvs_control::ofp::{OfField, PinReason};
use rvs_control::packet_in::PacketIn;
use rvs_control::switch::Switch;
use rvs_control::xlate::translate_packet;
use rvs_dataplane::action::{execute, ActionSink};
use rvs_dataplane::flow::FlowKey;
use rvs_dataplane::packet::{PacketBuf, PacketMeta};
use rvs_dataplane::testing::{arp_request, nd, tcp4, udp4, udp6, with_vlan, IP_A, IP_B, MAC_A, MAC_B};
use rvs_dataplane::tunnel::GeneveOptMap;
use rvs_dataplane::DropReason;

/// A bridge `br0` with memory ports p1..p4 (OpenFlow ports 1..4) and `flows`.
fn switch(flows: &str) -> Switch {
    let mut sw = Switch::new();
    sw.add_bridge("br0").unwrap();
    for i in 1..=4 {
        let ty = PortType::System {
            kind: "memory".into(),
        };
        assert_eq!(sw.add_port("br0", &format!("p{i}"), ty, None).unwrap(), i);
    }
    sw.add_flows("br0", flows).unwrap();
    sw
}

#[derive(Default)]
struct Sink {
    out: Vec<(u32, Vec<u8>)>,
    drops: Vec<DropReason>,
    /// (cookie, frame) of each copy for the slow path.
    userspace: Vec<(u32, Vec<u8>)>,
}

impl ActionSink for Sink {
    fn output(&mut self, port: u32, pkt: &mut PacketBuf, _movable: bool) {
        self.out.push((port, pkt.data().to_vec()));
    }
    fn recirculate(&mut self, _pkt: &mut PacketBuf, _movable: bool) {
        panic!("no recirculation in these cases");
    }
    fn userspace(&mut self, _key: &FlowKey, pkt: &PacketBuf, cookie: u32) -> Result<(), DropReason> {
        self.userspace.push((cookie, pkt.data().to_vec()));
        Ok(())
    }
    fn drop_packet(&mut self, reason: DropReason) {
        self.drops.push(reason);
    }
    fn conntrack(
        &mut self,
        _pkt: &mut PacketBuf,
        _act: &rvs_dataplane::conntrack::CtAction,
    ) -> Result<(), DropReason> {
        panic!("no conntrack in these cases");
    }
}

/// What a frame arriving on OpenFlow port `in_port` turns into: (OpenFlow
/// port, frame) per copy sent, and the drops counted.
struct Outcome {
    out: Vec<(u32, Vec<u8>)>,
    drops: Vec<DropReason>,
    /// The packet-ins the copies for the slow path make.
    pins: Vec<PacketIn>,
}

impl Outcome {
    fn ports(&self) -> Vec<u32> {
        self.out.iter().map(|o| o.0).collect()
    }
    fn only(&self, port: u32) -> &[u8] {
        assert_eq!(self.ports(), [port], "drops: {:?}", self.drops);
        &self.out[0].1
    }
}

fn send(sw: &mut Switch, in_port: u32, frame: &[u8]) -> Outcome {
    let dp = |sw: &Switch, of: u32| sw.find_port(&format!("p{of}")).unwrap().1.dp_port.unwrap();
    let meta = PacketMeta {
        in_port: dp(sw, in_port),
        ..Default::default()
    };
    let (key, _) = FlowKey::extract(frame, &meta).unwrap();
    let t = translate_packet(sw, &key, &rvs_dataplane::flow::nd_fields(frame, &key));
    let mut pkt = PacketBuf::from_slice(frame);
    pkt.meta = meta;
    let mut sink = Sink::default();
    execute(&t.actions, &mut pkt, &key, 0, &GeneveOptMap::default(), &mut sink);
    let of_of = |d: u32| {
        (1..=4)
            .find(|of| dp(sw, *of) == d)
            .unwrap_or_else(|| panic!("datapath port {d} is no bridge port: {:?}", t.actions))
    };
    let pins = sink
        .userspace
        .iter()
        .map(|(cookie, f)| PacketIn::new(sw.pins.thaw(*cookie).expect("a known cookie"), &key, f))
        .collect();
    Outcome {
        out: sink.out.into_iter().map(|(d, f)| (of_of(d), f)).collect(),
        drops: sink.drops,
        pins,
    }
}

fn udp() -> Vec<u8> {
    udp4(MAC_A, MAC_B, IP_A, IP_B, 1000, 2000, 10)
}

/// IPv4 with the TOS byte and TTL given (header checksum fixed).
fn ipv4_with(tos: u8, ttl: u8) -> Vec<u8> {
    let mut f = udp();
    f[15] = tos;
    f[22] = ttl;
    fix_ipv4_checksum(&mut f);
    f
}

fn fix_ipv4_checksum(f: &mut [u8]) {
    f[24] = 0;
    f[25] = 0;
    let mut sum: u32 = (14..34)
        .step_by(2)
        .map(|i| u16::from_be_bytes([f[i], f[i + 1]]) as u32)
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    f[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

fn ipv4_checksum_ok(f: &[u8]) -> bool {
    let mut g = f.to_vec();
    fix_ipv4_checksum(&mut g);
    g[24..26] == f[24..26]
}

// ---- Behaviour that differed from OVS ----

/// ofproto-dpif.at "resubmit loop": a translation error (too many resubmits)
/// drops the whole packet; the outputs emitted before it never leave.
#[test]
fn a_translation_error_drops_the_whole_packet() {
    let mut sw = switch("in_port=1,actions=output:2,resubmit(,0)");
    let o = send(&mut sw, 1, &udp());
    assert!(o.out.is_empty(), "sent {:?}", o.ports());
    assert_eq!(o.drops, [DropReason::XlateDepth]);
}

/// ovs-actions(7): `output:in_port` is the reserved port IN_PORT; plain
/// `output:1` for a packet that came in on 1 is skipped.
#[test]
fn output_in_port_sends_back_and_output_to_the_input_port_is_skipped() {
    let mut sw = switch("in_port=1,actions=output:in_port\nin_port=2,actions=output:2,output:3");
    assert_eq!(send(&mut sw, 1, &udp()).ports(), [1]);
    assert_eq!(send(&mut sw, 2, &udp()).ports(), [3]);
    // Reading the field is spelled NXM_OF_IN_PORT[]; it names the input port,
    // which output skips.
    let mut sw = switch("in_port=1,actions=output:NXM_OF_IN_PORT[],output:4");
    assert_eq!(send(&mut sw, 1, &udp()).ports(), [4]);
}

/// ofproto-dpif.at "resubmit action": resubmit(PORT,TABLE) looks table TABLE
/// up as if the packet came from PORT, but the matched rule's actions see the
/// real in_port (IN_PORT goes back where the packet came from, and output to
/// PORT is not "the input port").
#[test]
fn resubmit_substitutes_in_port_for_the_lookup_only() {
    let mut sw = switch(
        "table=0,in_port=1,actions=resubmit(2,1)\n\
         table=1,in_port=2,actions=output:2,IN_PORT\n\
         table=1,in_port=1,actions=output:4",
    );
    assert_eq!(send(&mut sw, 1, &udp()).ports(), [2, 1]);
}

/// ovs-fields(7): nw_tos is the DSCP bits of the TOS byte in place (the ECN
/// bits are not part of it); nw_ecn is the low 2 bits, ip_dscp the DSCP value.
#[test]
fn nw_tos_is_dscp_only_and_ecn_is_its_own_field() {
    let mut sw = switch(
        "priority=10,ip,nw_tos=32,actions=mod_nw_tos:64,output:2\n\
         priority=5,ip,nw_ecn=3,actions=mod_nw_ecn:1,output:3\n\
         priority=1,ip,ip_dscp=2,actions=set_field:4->ip_dscp,output:4",
    );
    // TOS 0x21: DSCP 8 (nw_tos 32) with ECN 1; rewriting DSCP keeps ECN.
    let f = send(&mut sw, 1, &ipv4_with(0x21, 64)).only(2).to_vec();
    assert_eq!(f[15], 0x41);
    assert!(ipv4_checksum_ok(&f));
    let f = send(&mut sw, 1, &ipv4_with(0x0b, 64)).only(3).to_vec();
    assert_eq!(f[15], 0x09, "ECN 3 -> 1, DSCP 2 kept");
    let f = send(&mut sw, 1, &ipv4_with(0x08, 64)).only(4).to_vec();
    assert_eq!(f[15], 0x10);
    assert!(ipv4_checksum_ok(&f));
    let mut s = switch("");
    let e = s
        .add_flows("br0", "ip,nw_tos=33,actions=drop")
        .unwrap_err()
        .to_string();
    assert!(e.contains("multiple of 4"), "{e}");
    let e = s
        .add_flows("br0", "actions=mod_nw_tos:3")
        .unwrap_err()
        .to_string();
    assert!(e.contains("DSCP"), "{e}");
}

// ---- New fields and actions ----

/// ovs-actions(7) dec_ttl: TTL above 1 goes down by one (checksum kept
/// valid); at 1 the packet goes no further in that action list (OVS sends it
/// to the controller; rvs counts it under ttl_exceeded).
#[test]
fn dec_ttl_decrements_and_stops_the_action_list_at_expiry() {
    let mut sw = switch("in_port=1,actions=output:3,dec_ttl,output:2");
    let o = send(&mut sw, 1, &ipv4_with(0, 64));
    assert_eq!(o.ports(), [3, 2]);
    assert_eq!(o.out[0].1[22], 64, "the copy sent before dec_ttl keeps its TTL");
    assert_eq!(o.out[1].1[22], 63);
    assert!(ipv4_checksum_ok(&o.out[1].1));
    let o = send(&mut sw, 1, &ipv4_with(0, 1));
    assert_eq!(o.ports(), [3], "nothing after the expired dec_ttl");
    assert_eq!(o.drops, [DropReason::TtlExceeded]);
    // IPv6: the hop limit.
    let o = send(&mut sw, 1, &udp6(1, 2));
    assert_eq!(o.out[1].1[14 + 7], 63);
    // Not IP: nothing to decrement, nothing stops.
    assert_eq!(send(&mut sw, 1, &arp_request()).ports(), [3, 2]);
    // In a resubmitted table only that rule's list stops; the caller goes on.
    let mut sw = switch("table=0,actions=resubmit(,1),output:4\ntable=1,actions=dec_ttl,output:2");
    assert_eq!(send(&mut sw, 1, &ipv4_with(0, 1)).ports(), [4]);
}

#[test]
fn mod_nw_ttl_sets_the_ttl_and_nw_ttl_matches_it() {
    let mut sw = switch("ip,nw_ttl=64,actions=mod_nw_ttl:5,output:2\nip,nw_ttl=5,actions=output:3");
    let f = send(&mut sw, 1, &ipv4_with(0, 64)).only(2).to_vec();
    assert_eq!(f[22], 5);
    assert!(ipv4_checksum_ok(&f));
    assert_eq!(send(&mut sw, 1, &ipv4_with(0, 5)).ports(), [3]);
}

/// Neutron's ARP responder (br-tun table 21 / OVN's arp response): the request
/// is turned into the reply in place and sent back out of the input port.
#[test]
fn neutron_arp_responder_answers_from_the_rule_table() {
    let mut sw = switch(
        "priority=1,arp,arp_op=1,arp_tpa=198.18.0.11,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],\
         mod_dl_src:fa:16:3e:00:00:0b,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],\
         move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xfa163e00000b->NXM_NX_ARP_SHA[],\
         load:0xc612000b->NXM_OF_ARP_SPA[],in_port",
    );
    let f = send(&mut sw, 1, &arp_request()).only(1).to_vec();
    assert_eq!(f[0..6], MAC_A, "to the asker");
    assert_eq!(f[6..12], [0xfa, 0x16, 0x3e, 0, 0, 0x0b]);
    assert_eq!(f[20..22], [0, 2], "reply");
    assert_eq!(f[22..28], [0xfa, 0x16, 0x3e, 0, 0, 0x0b], "sha");
    assert_eq!(f[28..32], IP_B, "spa");
    assert_eq!(f[32..38], MAC_A, "tha");
    assert_eq!(f[38..42], IP_A, "tpa");
}

#[test]
fn arp_sha_and_arp_tha_match() {
    let mut sw = switch(
        "arp,arp_sha=02:00:00:00:00:0a,arp_tha=00:00:00:00:00:00,actions=output:2\narp,actions=output:3",
    );
    assert_eq!(send(&mut sw, 1, &arp_request()).ports(), [2]);
    let mut other = arp_request();
    other[22..28].copy_from_slice(&MAC_B);
    assert_eq!(send(&mut sw, 1, &other).ports(), [3]);
}

/// OpenFlow 1.3's vlan_vid carries OFPVID_PRESENT (0x1000): 0 is "no tag",
/// 0x1000/0x1000 "any tag"; push_vlan then set_field:4096|VID tags.
#[test]
fn openflow13_vlan_vid_and_pcp() {
    let mut sw = switch(
        "priority=10,vlan_vid=0x1000/0x1000,vlan_pcp=5,actions=output:4\n\
         priority=9,vlan_vid=4099,actions=output:3\n\
         priority=8,vlan_vid=0,actions=push_vlan:0x8100,set_field:4097->vlan_vid,set_field:3->vlan_pcp,output:2",
    );
    let f = send(&mut sw, 1, &udp()).only(2).to_vec();
    assert_eq!(f[12..16], [0x81, 0x00, 0x60, 0x01], "VID 1, PCP 3");
    assert_eq!(send(&mut sw, 1, &with_vlan(&udp(), 0x8100, 3)).ports(), [3]);
    assert_eq!(send(&mut sw, 1, &with_vlan(&udp(), 0x8100, 0xa007)).ports(), [4]);
}

#[test]
fn transport_port_spellings_of_ovs() {
    let mut sw = switch("tcp,tcp_dst=80,actions=output:2\nudp,udp_src=1000,actions=output:3");
    assert_eq!(send(&mut sw, 1, &tcp4(5, 80, false, 0)).ports(), [2]);
    assert_eq!(send(&mut sw, 1, &udp()).ports(), [3]);
}

#[test]
fn write_metadata_carries_between_tables() {
    let mut sw = switch(
        "table=0,actions=write_metadata:0x5/0xff,goto_table:1\n\
         table=1,metadata=0x5/0xff,actions=output:2\n\
         table=1,priority=0,actions=output:3",
    );
    assert_eq!(send(&mut sw, 1, &udp()).ports(), [2]);
}

/// OpenFlow 1.1+ action sets (ofproto-dpif.at "write actions"): the set
/// runs when the pipeline ends, after the rules' own actions; a later
/// `write_actions` output replaces an earlier one; its field writes apply
/// to its own copy only.
#[test]
fn write_actions_run_when_the_pipeline_ends() {
    let mut sw = switch(
        "table=0,in_port=1,ip,actions=output:2,write_actions(set_field:192.168.3.90->ip_src,output:3),goto_table:1\n\
         table=1,ip,actions=write_actions(output:4),goto_table:2\n\
         table=2,ip,actions=set_field:192.168.3.91->ip_src,output:3",
    );
    let o = send(&mut sw, 1, &udp());
    assert_eq!(o.ports(), [2, 3, 4], "{:?}", o.drops);
    let src = |i: usize| o.out[i].1[26..30].to_vec();
    assert_eq!(src(0), IP_A);
    assert_eq!(src(1), [192, 168, 3, 91]);
    assert_eq!(src(2), [192, 168, 3, 90]);
    assert!(o.out.iter().all(|(_, f)| ipv4_checksum_ok(f)));
}

/// `clear_actions` empties the action set (ofproto-dpif.at "clear actions").
#[test]
fn clear_actions_empties_the_action_set() {
    let mut sw = switch(
        "table=0,in_port=1,ip,actions=output:2,write_actions(set_field:192.168.3.90->ip_src,output:4),goto_table:1\n\
         table=1,udp,actions=set_field:91->udp_src,output:3,clear_actions",
    );
    let o = send(&mut sw, 1, &udp());
    assert_eq!(o.ports(), [2, 3]);
    assert_eq!(o.out[1].1[34..36], 91u16.to_be_bytes());
}

/// `actset_output` is the action set's output port, `UNSET` without one
/// (ofproto-dpif.at "actset_output", without groups): it is matched, read
/// by `move`, and goes back to UNSET on `clear_actions`.
#[test]
fn actset_output_follows_the_action_set() {
    let mut sw = switch(
        "table=0,actset_output=unset,actions=write_actions(output:2),goto_table:1\n\
         table=1,actions=move:ONFOXM_ET_ACTSET_OUTPUT[0..31]->NXM_NX_REG0[],goto_table:2\n\
         table=2,priority=20,reg0=2,actset_output=2,actions=output:3,goto_table:3\n\
         table=2,priority=10,actions=goto_table:3\n\
         table=3,actions=clear_actions,goto_table:4\n\
         table=4,priority=20,actset_output=UNSET,actions=write_actions(output:4)\n\
         table=4,priority=10,actions=drop",
    );
    assert_eq!(send(&mut sw, 1, &udp()).ports(), [3, 4]);
}

/// An action set with pop VLAN, field writes and an output runs them in the
/// OpenFlow order whatever order they were written in; without an output
/// it does nothing.
#[test]
fn an_action_set_runs_in_the_openflow_order() {
    let mut sw = switch(
        "table=0,actions=write_actions(output:3,mod_dl_dst:02:00:00:00:00:99,pop_vlan),goto_table:1\n\
         table=1,actions=write_actions(output:2)",
    );
    let o = send(&mut sw, 1, &with_vlan(&udp(), 0x8100, 7));
    assert_eq!(o.only(2), {
        let mut f = udp();
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0x99]);
        f
    });
    let mut sw = switch("table=0,actions=write_actions(mod_dl_dst:02:00:00:00:00:99)");
    let o = send(&mut sw, 1, &udp());
    assert!(
        o.out.is_empty() && o.drops == [DropReason::Action],
        "{:?}",
        o.drops
    );
}

/// `controller` sends a copy of the packet, as the actions before it left
/// it, to the controller with the rule's table and cookie, the reason (a
/// table-miss rule's is no_match) and at most `max_len` bytes; the other
/// outputs go on (ovs-actions(7), "The controller action").
#[test]
fn controller_sends_a_packet_in_and_the_packet_goes_on() {
    let mut sw = switch(
        "cookie=0x7,in_port=1,actions=mod_dl_dst:02:00:00:00:00:99,controller\n\
         in_port=2,actions=controller(reason=invalid_ttl,max_len=20),output:3\n\
         table=0,priority=0,actions=controller:30",
    );
    let o = send(&mut sw, 1, &udp());
    assert!(o.out.is_empty() && o.drops.is_empty(), "{:?}", o.drops);
    let p = &o.pins[0];
    assert_eq!((p.reason, p.table, p.cookie), (PinReason::Action, 0, 7));
    assert_eq!(p.data[..6], [2, 0, 0, 0, 0, 0x99], "rewritten before the copy");
    assert_eq!(p.total_len, udp().len());
    assert!(p.matches.is_exact(OfField::InPort, 1));
    let o = send(&mut sw, 2, &udp());
    assert_eq!(o.ports(), [3]);
    assert_eq!(o.pins[0].reason, PinReason::InvalidTtl);
    assert_eq!(o.pins[0].data, udp()[..20]);
    // The table-miss rule: priority 0, no match.
    let o = send(&mut sw, 4, &udp());
    assert_eq!(o.pins.len(), 1);
    assert_eq!(o.pins[0].reason, PinReason::NoMatch);
    assert_eq!(o.pins[0].data.len(), 30);
    assert!(o.pins[0].matches.is_exact(OfField::InPort, 4));
}

#[test]
fn action_is_an_alias_of_actions() {
    let mut sw = switch("in_port=1,action=output:2");
    assert_eq!(send(&mut sw, 1, &udp()).ports(), [2]);
}

#[test]
fn bad_text_is_refused_with_the_reason() {
    let mut sw = switch("");
    for (text, says) in [
        ("actions=dec_tl", "did you mean \"dec_ttl\""),
        ("actions=mod_nw_ecn:4", "0..3"),
        ("actions=write_metadata:zz", "write_metadata"),
        ("arp_sha=02:00:00:00:00:01,actions=drop", "needs arp"),
        ("vlan_vid=0x2000,actions=drop", "too large"),
        ("nd_target=2001:db8::1,actions=drop", "needs icmp6"),
        (
            "icmp6,icmp_type=136,nd_sll=02:00:00:00:00:01,actions=drop",
            "icmp_type=135",
        ),
        (
            "icmp6,icmp_type=135,icmp_code=1,nd_target=::1,actions=drop",
            "needs icmp6",
        ),
        ("ip,ipv6_label=5,actions=drop", "needs ipv6"),
        ("ipv6,ipv6_label=0x100000,actions=drop", "too large"),
    ] {
        let e = sw.add_flows("br0", text).unwrap_err().to_string();
        assert!(e.contains(says), "{text}: {e}");
    }
}

/// IPv6 rewrites: mod_nw_tos sets the traffic class's DSCP bits, mod_tp_dst
/// the UDP port (checksum kept valid); neither is silently skipped.
#[test]
fn ipv6_rewrites_reach_the_frame() {
    let mut sw = switch("udp6,actions=mod_nw_tos:32,mod_tp_dst:53,output:2");
    let f = send(&mut sw, 1, &udp6(5, 6)).only(2).to_vec();
    let s = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
    let Some(etherparse::NetSlice::Ipv6(ip)) = &s.net else {
        panic!()
    };
    assert_eq!(ip.header().traffic_class(), 32);
    let Some(etherparse::TransportSlice::Udp(u)) = &s.transport else {
        panic!()
    };
    assert_eq!(u.destination_port(), 53);
    let h = ip.header().to_header();
    assert_eq!(
        u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap(),
        u.checksum()
    );
}

fn icmp6_checksum_ok(f: &[u8]) -> bool {
    let s = etherparse::SlicedPacket::from_ethernet(f).unwrap();
    let Some(etherparse::NetSlice::Ipv6(ip)) = &s.net else {
        return false;
    };
    let Some(etherparse::TransportSlice::Icmpv6(i)) = &s.transport else {
        return false;
    };
    let h = ip.header();
    i.header()
        .icmp_type
        .calc_checksum(h.source(), h.destination(), i.payload())
        .unwrap()
        == i.checksum()
}

const TARGET: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];

/// ovs-fields(7): nd_target / nd_sll / nd_tll match the target and the
/// link-layer address options of neighbour solicitations (135) and
/// advertisements (136); set_field rewrites them with a valid checksum
/// (OVN's ND responder rewrites the target and TLL this way).
#[test]
fn neighbour_discovery_fields_match_and_rewrite() {
    let sll = [2, 0, 0, 0, 0, 0x51];
    let mut sw = switch(
        "icmp6,icmp_type=135,nd_target=2001:db8::9,nd_sll=02:00:00:00:00:51,actions=output:2
         icmp6,icmp_type=135,nd_target=2001:db8::8,actions=output:3
         icmp6,icmp_type=136,nd_target=2001:db8::9,actions=set_field:2001:db8::77->nd_target,set_field:02:00:00:00:00:99->nd_tll,output:4
         priority=0,actions=drop",
    );
    assert_eq!(send(&mut sw, 1, &nd(135, TARGET, &[(1, sll)])).ports(), [2]);
    // Another SLL: only the priority-0 drop matches.
    assert!(send(&mut sw, 1, &nd(135, TARGET, &[(1, [2, 0, 0, 0, 0, 0x52])]))
        .ports()
        .is_empty());
    let mut t8 = TARGET;
    t8[15] = 8;
    assert_eq!(send(&mut sw, 1, &nd(135, t8, &[])).ports(), [3]);
    // The datapath key has no ND words: a translation that consulted them is
    // not cached; one that did not (UDP here, although the table has ND rules
    // of higher priority) is.
    let cacheable = |sw: &mut Switch, frame: &[u8]| {
        let meta = PacketMeta {
            in_port: sw.find_port("p1").unwrap().1.dp_port.unwrap(),
            ..Default::default()
        };
        let (key, _) = FlowKey::extract(frame, &meta).unwrap();
        translate_packet(sw, &key, &rvs_dataplane::flow::nd_fields(frame, &key)).cacheable
    };
    assert!(!cacheable(&mut sw, &nd(135, TARGET, &[(1, sll)])));
    assert!(cacheable(&mut sw, &udp6(1, 2)));
    let out = send(&mut sw, 1, &nd(136, TARGET, &[(2, sll)])).only(4).to_vec();
    let want: std::net::Ipv6Addr = "2001:db8::77".parse().unwrap();
    assert_eq!(out, nd(136, want.octets(), &[(2, [2, 0, 0, 0, 0, 0x99])]));
    assert!(icmp6_checksum_ok(&out));
}

/// set_field on ipv6_src / ipv6_dst rewrites the addresses and keeps the
/// UDP checksum valid (it covers them); ipv6_label matches and sets the
/// 20-bit flow label.
#[test]
fn ipv6_addresses_and_flow_label() {
    let mut sw = switch(
        "ipv6,ipv6_label=0,actions=set_field:2001:db8::a->ipv6_src,set_field:2001:db8::b->ipv6_dst,set_field:0x12345->ipv6_label,output:2
         ipv6,ipv6_label=0x12345,actions=output:3",
    );
    let f = send(&mut sw, 1, &udp6(5, 6)).only(2).to_vec();
    let s = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
    let Some(etherparse::NetSlice::Ipv6(ip)) = &s.net else {
        panic!()
    };
    let h = ip.header().to_header();
    assert_eq!(std::net::Ipv6Addr::from(h.source).to_string(), "2001:db8::a");
    assert_eq!(std::net::Ipv6Addr::from(h.destination).to_string(), "2001:db8::b");
    assert_eq!(h.flow_label.value(), 0x12345);
    let Some(etherparse::TransportSlice::Udp(u)) = &s.transport else {
        panic!()
    };
    assert_eq!(
        u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap(),
        u.checksum()
    );
    assert_eq!(send(&mut sw, 1, &f).ports(), [3]);
}

/// pkt_mark is metadata the pipeline can set and match (set_field and
/// load:..->NXM_NX_PKT_MARK[]); the frame itself is not changed by it.
#[test]
fn pkt_mark_is_set_and_matched_in_the_pipeline() {
    let mut sw = switch(
        "in_port=1,actions=set_field:0x5->pkt_mark,resubmit(,1)
         in_port=2,actions=load:0x7->NXM_NX_PKT_MARK[],resubmit(,1)
         table=1,pkt_mark=0x5,actions=output:3
         table=1,pkt_mark=0x7/0xf,actions=output:4
         table=1,priority=0,actions=drop",
    );
    let f = udp();
    assert_eq!(send(&mut sw, 1, &f).only(3), &f[..]);
    assert_eq!(send(&mut sw, 2, &f).only(4), &f[..]);
}
