//! A floating IP in flows (`fixtures/ovn-floating-ip.flows`, OVN's
//! dnat_and_snat on a logical router) run by a real PMD: connections in to
//! the floating address reach the VM, the VM's connections out leave from
//! it, replies both ways and ICMP errors are translated back, every packet
//! of a flow the caches hold as well as the first; `trace` shows the
//! translation between the passes.

mod common;
use common::pmd::FlowsPmd;
use etherparse::{icmpv4::DestUnreachableHeader, Icmpv4Type, PacketBuilder};
use rvs_control::upcall::{trace_flow, trace_flow_ct};
use rvs_dataplane::conntrack::state::{DNAT, EST, INV, RPL, TRK};

const FLOWS: &str = include_str!("../fixtures/ovn-floating-ip.flows");
const VMA: [u8; 6] = [2, 0, 0, 0, 1, 0x0a];
const VMB: [u8; 6] = [2, 0, 0, 0, 2, 0x0a];
const GW_A: [u8; 6] = [2, 0, 0, 0, 1, 1];
const GW_B: [u8; 6] = [2, 0, 0, 0, 2, 1];
const VM_IP: [u8; 4] = [198, 18, 1, 10];
const EXT_IP: [u8; 4] = [198, 18, 2, 10];
const FIP: [u8; 4] = [198, 18, 2, 111];

fn udp(src_mac: [u8; 6], dst_mac: [u8; 6], src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src, dst, 64)
        .udp(sp, dp);
    let mut out = Vec::new();
    b.write(&mut out, b"floating").unwrap();
    out
}

/// Addresses, ports and TTL of an IPv4/UDP frame, and whether its IPv4 and
/// UDP checksums hold (etherparse recomputes them).
fn read(f: &[u8]) -> ([u8; 4], [u8; 4], u16, u16, u8, bool) {
    let s = etherparse::SlicedPacket::from_ethernet(f).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &s.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    let mut ok = h.calc_header_checksum() == h.header_checksum;
    let (sp, dp) = match &s.transport {
        Some(etherparse::TransportSlice::Udp(u)) => {
            ok &= u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap() == u.checksum();
            (u.source_port(), u.destination_port())
        }
        _ => (0, 0),
    };
    (h.source, h.destination, sp, dp, h.time_to_live, ok)
}

#[test]
fn the_floating_address_leads_to_the_vm_and_its_replies_leave_from_it() {
    let mut n = FlowsPmd::new(FLOWS, &["vma", "vmb"]);
    for round in 0..3 {
        // In: to the floating address, delivered to the VM's own.
        let sp = 5000 + round;
        let out = n.send("vmb", &udp(VMB, GW_B, EXT_IP, FIP, sp, 53));
        let got = &out["vma"][0];
        assert_eq!((&got[..6], &got[6..12]), (&VMA[..], &GW_A[..]));
        assert_eq!(read(got), (EXT_IP, VM_IP, sp, 53, 63, true), "round {round}");
        // Its reply leaves from the floating address.
        let out = n.send("vma", &udp(VMA, GW_A, VM_IP, EXT_IP, 53, sp));
        let got = &out["vmb"][0];
        assert_eq!((&got[..6], &got[6..12]), (&VMB[..], &GW_B[..]));
        assert_eq!(read(got), (FIP, EXT_IP, 53, sp, 63, true));
        // The next packet of the same connection, from the caches.
        let again = &n.send("vmb", &udp(VMB, GW_B, EXT_IP, FIP, sp, 53))["vma"][0];
        assert_eq!(read(again).1, VM_IP);
    }
    let st = n.pmd.stats();
    assert!(st.megaflow_hits + st.emc_hits > 0, "cached flows translated too");
    let ct = n.pmd.conntrack().lock().unwrap();
    let dump: Vec<String> = ct.dump(0).iter().map(|c| c.to_string()).collect();
    assert_eq!(dump.len(), 3, "{dump:?}");
    assert!(
        dump.contains(
            &"udp,orig=(src=198.18.2.10,dst=198.18.2.111,sport=5000,dport=53),reply=(src=198.18.1.10,dst=198.18.2.10,sport=53,dport=5000),zone=10"
                .to_string()
        ),
        "{dump:?}"
    );
}

#[test]
fn the_vms_own_connections_leave_from_the_floating_address() {
    let mut n = FlowsPmd::new(FLOWS, &["vma", "vmb"]);
    let out = n.send("vma", &udp(VMA, GW_A, VM_IP, EXT_IP, 40000, 9999));
    let sent = out["vmb"][0].clone();
    assert_eq!(read(&sent), (FIP, EXT_IP, 40000, 9999, 63, true));
    let back = &n.send("vmb", &udp(VMB, GW_B, EXT_IP, FIP, 9999, 40000))["vma"][0];
    assert_eq!(read(back), (EXT_IP, VM_IP, 9999, 40000, 63, true));
    // The external host refuses the port: its error about the translated
    // datagram reaches the VM about the VM's own.
    let b = PacketBuilder::ethernet2(VMB, GW_B)
        .ipv4(EXT_IP, FIP, 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port));
    let mut err = Vec::new();
    b.write(&mut err, &sent[14..14 + 28]).unwrap();
    let got = &n.send("vmb", &err)["vma"][0];
    let (src, dst, ..) = read(got);
    assert_eq!((src, dst), (EXT_IP, VM_IP));
    let quoted = &got[14 + 20 + 8..];
    assert_eq!((&quoted[12..16], &quoted[16..20]), (&VM_IP[..], &EXT_IP[..]));
}

#[test]
fn the_router_answers_arp_for_the_floating_address() {
    let mut n = FlowsPmd::new(FLOWS, &["vma", "vmb"]);
    let b = PacketBuilder::ethernet2(VMB, [0xff; 6]).arp(
        etherparse::ArpPacket::new(
            etherparse::ArpHardwareId::ETHERNET,
            etherparse::EtherType::IPV4,
            etherparse::ArpOperation::REQUEST,
            &VMB,
            &EXT_IP,
            &[0; 6],
            &FIP,
        )
        .unwrap(),
    );
    let mut req = Vec::new();
    b.write(&mut req).unwrap();
    let reply = &n.send("vmb", &req)["vmb"][0];
    assert_eq!((&reply[22..28], &reply[28..32]), (&GW_B[..], &FIP[..]));
}

#[test]
fn trace_shows_the_translation_between_the_passes() {
    let n = FlowsPmd::new(FLOWS, &["vma", "vmb"]);
    let mut sw = n.sw.lock().unwrap();
    let flow = "in_port=vmb,dl_src=02:00:00:00:02:0a,dl_dst=02:00:00:00:02:01,udp,nw_src=198.18.2.10,nw_dst=198.18.2.111,nw_ttl=64,tp_src=5000,tp_dst=53";
    let t = trace_flow(&mut sw, "br-int", flow).unwrap();
    assert!(
        t.contains("ct(commit,table=31,zone=10,nat(dst=198.18.1.10))"),
        "{t}"
    );
    assert!(
        t.contains("ct(commit,zone=10,nat(dst=198.18.1.10)),recirc("),
        "{t}"
    );
    assert!(
        t.contains("A new connection is translated: nat(dst=198.18.1.10)"),
        "{t}"
    );
    // The second pass routes the translated destination to the VM.
    assert!(
        t.contains("set(eth(src=02:00:00:00:01:01)),set(eth(dst=02:00:00:00:01:0a))"),
        "{t}"
    );
    assert!(t.contains("set(ipv4(ttl=63))"), "{t}");
    // An invalid packet goes no further.
    let inv = trace_flow_ct(&mut sw, "br-int", flow, false, &[TRK | INV]).unwrap();
    assert!(inv.then.last().unwrap().actions.is_empty());
    // A reply of an outbound connection (+est+rpl+dnat) routes the same way.
    let rpl = trace_flow_ct(&mut sw, "br-int", flow, false, &[TRK | EST | RPL | DNAT]).unwrap();
    assert!(!rpl.then.last().unwrap().actions.is_empty());
}
