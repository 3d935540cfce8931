//! A security group in flows (`fixtures/neutron-sg.flows`, neutron's OVS
//! firewall driver for one port) run by a real PMD: both passes of every
//! `ct(table=...)` go through the megaflow cache, the tracker keeps the
//! connections. And a cached flow never skips a connection-state check: a
//! PMD with caches gives every packet of a random exchange the same fate as
//! one whose caches are emptied before each packet.

use proptest::prelude::*;
mod common;
use common::pmd::FlowsPmd;
use rvs_control::security_group::{firewall_flows, Direction, Port, Proto, Rule};
use rvs_control::switch::Switch;
use rvs_control::upcall::{trace_flow, trace_flow_ct};
use rvs_dataplane::conntrack::state::{EST, NEW, RPL, TRK};
use rvs_dataplane::DropReason;

const SG: &str = include_str!("../fixtures/neutron-sg.flows");
const VM_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];
const VM_IP: [u8; 4] = [198, 18, 0, 10];
const PEER_IP: [u8; 4] = [198, 18, 0, 11];

struct Sg {
    net: FlowsPmd,
}

fn switch() -> Switch {
    common::pmd::switch_with(SG, &["vm1", "uplink"])
}

fn sg() -> Sg {
    Sg {
        net: FlowsPmd::new(SG, &["vm1", "uplink"]),
    }
}

/// A TCP segment between the VM and its peer (`from_vm`: VM -> peer).
fn tcp(from_vm: bool, sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, len: usize) -> Vec<u8> {
    let (sm, dm, si, di) = if from_vm {
        (VM_MAC, PEER_MAC, VM_IP, PEER_IP)
    } else {
        (PEER_MAC, VM_MAC, PEER_IP, VM_IP)
    };
    let b = etherparse::PacketBuilder::ethernet2(sm, dm)
        .ipv4(si, di, 64)
        .tcp(sport, dport, seq, 64000);
    let b = if flags & 0x02 != 0 { b.syn() } else { b };
    let b = if flags & 0x10 != 0 { b.ack(ack) } else { b };
    let b = if flags & 0x01 != 0 { b.fin() } else { b };
    let b = if flags & 0x04 != 0 { b.rst() } else { b };
    let mut out = Vec::new();
    b.write(&mut out, &vec![0u8; len]).unwrap();
    out
}

fn icmp_echo(from_vm: bool, reply: bool, id: u16) -> Vec<u8> {
    let (sm, dm, si, di) = if from_vm {
        (VM_MAC, PEER_MAC, VM_IP, PEER_IP)
    } else {
        (PEER_MAC, VM_MAC, PEER_IP, VM_IP)
    };
    let b = etherparse::PacketBuilder::ethernet2(sm, dm).ipv4(si, di, 64);
    let b = if reply {
        b.icmpv4_echo_reply(id, 1)
    } else {
        b.icmpv4_echo_request(id, 1)
    };
    let mut out = Vec::new();
    b.write(&mut out, &[0u8; 8]).unwrap();
    out
}

impl Sg {
    /// Send `frame` (from the VM or from the uplink); true when it arrived
    /// on the other side, unchanged.
    fn passes(&mut self, from_vm: bool, frame: &[u8]) -> bool {
        let (src, dst) = if from_vm {
            ("vm1", "uplink")
        } else {
            ("uplink", "vm1")
        };
        let out = self.net.send(src, frame);
        assert!(!out.contains_key(src), "nothing goes back where it came from");
        let Some(sent) = out.get(dst) else {
            return false;
        };
        assert_eq!(sent.len(), 1, "one copy");
        assert_eq!(&sent[0][..], frame, "forwarded unchanged");
        true
    }
}

#[test]
fn the_group_allows_egress_and_its_replies_ssh_and_ping_in_and_drops_the_rest() {
    let mut s = sg();
    // Learn where the peer is (NORMAL floods the first egress packet).
    assert!(
        s.passes(false, &tcp(false, 5555, 22, 1, 0, 0x02, 0)),
        "SSH in: allowed"
    );
    // Its handshake completes: the VM's SYN+ACK goes out as a reply.
    assert!(s.passes(true, &tcp(true, 22, 5555, 900, 2, 0x12, 0)));
    assert!(s.passes(false, &tcp(false, 5555, 22, 2, 901, 0x10, 10)));
    // Egress: a new connection out, and its reply back in.
    assert!(s.passes(true, &tcp(true, 40000, 80, 100, 0, 0x02, 0)));
    assert!(s.passes(false, &tcp(false, 80, 40000, 7000, 101, 0x12, 0)));
    assert!(s.passes(true, &tcp(true, 40000, 80, 101, 7001, 0x10, 0)));
    assert!(s.passes(false, &tcp(false, 80, 40000, 7001, 101, 0x10, 1000)));
    // Unsolicited inbound to a closed port: dropped, every time (the
    // cached flows of both passes must not let the second one through).
    for _ in 0..3 {
        assert!(!s.passes(false, &tcp(false, 6000, 80, 1, 0, 0x02, 0)));
    }
    // A bare ACK for no connection is picked up as new: to port 80, dropped.
    assert!(!s.passes(false, &tcp(false, 6001, 80, 1, 1, 0x10, 0)));
    // Ping in is allowed, and its reply out.
    assert!(s.passes(false, &icmp_echo(false, false, 9)));
    assert!(s.passes(true, &icmp_echo(true, true, 9)));
    // An echo reply nobody asked for is not let in.
    assert!(!s.passes(false, &icmp_echo(false, true, 77)));
    let st = s.net.pmd.stats();
    assert!(st.recirculations > 0, "both passes ran in the datapath");
    assert!(st.megaflow_hits + st.emc_hits > 0, "and were cached");
    let ct = s.net.pmd.conntrack().lock().unwrap();
    assert_eq!(ct.len(), 3, "SSH, HTTP out, ping: {:?}", ct.dump(0));
}

/// [`sg`] whose connection table holds one connection.
fn sg_with_room_for_one() -> Sg {
    let s = sg();
    s.net
        .pmd
        .conntrack()
        .lock()
        .unwrap()
        .set_config(rvs_dataplane::conntrack::CtConfig {
            max_conns: 1,
            ..Default::default()
        });
    s
}

#[test]
fn a_full_table_refuses_new_connections_and_counts_them() {
    let mut s = sg_with_room_for_one();
    assert!(s.passes(true, &tcp(true, 40000, 80, 100, 0, 0x02, 0)));
    assert!(s.passes(false, &tcp(false, 80, 40000, 7000, 101, 0x12, 0)));
    // The table holds one answered connection: nothing may make room.
    assert!(!s.passes(true, &tcp(true, 40001, 80, 100, 0, 0x02, 0)), "refused");
    assert_eq!(s.net.pmd.stats().drops.get(DropReason::CtRefused), 1);
    // The established one is untouched.
    assert!(s.passes(true, &tcp(true, 40000, 80, 101, 7001, 0x10, 0)));
}

#[test]
fn a_full_table_makes_room_by_dropping_an_unanswered_connection() {
    let mut s = sg_with_room_for_one();
    // A SYN nobody answered fills the table; the next connection takes its
    // place (the kernel's early drop), as a SYN flood's would.
    assert!(s.passes(true, &tcp(true, 40000, 80, 100, 0, 0x02, 0)));
    assert!(s.passes(true, &tcp(true, 40001, 80, 100, 0, 0x02, 0)));
    assert_eq!(s.net.pmd.stats().drops.get(DropReason::CtRefused), 0);
    assert_eq!(s.net.pmd.conntrack().lock().unwrap().counters().evicted, 1);
    assert!(
        s.passes(false, &tcp(false, 80, 40001, 7000, 101, 0x12, 0)),
        "the new one is tracked"
    );
}

#[test]
fn trace_follows_both_passes() {
    let mut sw = switch();
    let flow = "in_port=vm1,dl_src=02:00:00:00:00:0a,dl_dst=02:00:00:00:00:0b,tcp,nw_src=198.18.0.10,nw_dst=198.18.0.11,tp_src=40000,tp_dst=80";
    let t = trace_flow(&mut sw, "br-int", flow).unwrap();
    assert!(t.contains("ct(table=72"), "{t}");
    assert!(
        t.contains("resume conntrack with default ct_state=trk|new"),
        "{t}"
    );
    assert!(t.contains("thaw: resuming from table 72"), "{t}");
    // The second pass commits (table 73) and switches (NORMAL floods).
    assert!(t.contains("ct(commit,zone=1)"), "{t}");
    // Inbound to a closed port, as an established packet would be: dropped
    // only when new.
    let inbound = "in_port=uplink,dl_src=02:00:00:00:00:0b,dl_dst=02:00:00:00:00:0a,tcp,nw_src=198.18.0.11,nw_dst=198.18.0.10,tp_src=6000,tp_dst=80";
    let t = trace_flow_ct(&mut sw, "br-int", inbound, false, &[TRK | NEW]).unwrap();
    let last = t.then.last().expect("a second pass");
    assert!(
        last.actions.is_empty(),
        "new to port 80: dropped: {:?}",
        last.actions
    );
    let t = trace_flow_ct(&mut sw, "br-int", inbound, false, &[TRK | EST | RPL]).unwrap();
    let last = t.then.last().unwrap();
    assert_eq!(last.actions.len(), 1, "a reply: delivered: {:?}", last.actions);
}

/// One step of a random exchange: who sends, which connection, which flags.
fn step() -> impl Strategy<Value = (bool, u8, u8, u8)> {
    (
        any::<bool>(),
        0u8..4,
        prop_oneof![
            Just(0x02u8),
            Just(0x12),
            Just(0x10),
            Just(0x11),
            Just(0x04),
            Just(0x14)
        ],
        0u8..3,
    )
}

fn frame_of(from_vm: bool, conn: u8, flags: u8, kind: u8) -> Vec<u8> {
    let (a, b) = (40000 + conn as u16, [22u16, 80, 22, 443][conn as usize]);
    match kind {
        0 | 1 => {
            let (sport, dport) = if from_vm { (a, b) } else { (b, a) };
            // Sequence numbers small and shared: some in window, some not.
            tcp(
                from_vm,
                sport,
                dport,
                1 + conn as u32,
                1,
                flags,
                (kind as usize) * 10,
            )
        }
        _ => icmp_echo(from_vm, flags & 0x10 != 0, conn as u16),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The house rule extended to conntrack: whatever the caches hold, each
    /// packet's fate is what a translation of it right now would give.
    #[test]
    fn cached_result_equals_fresh_translation_with_conntrack(steps in proptest::collection::vec(step(), 1..40)) {
        let mut cached = sg();
        let mut fresh = sg();
        for (from_vm, conn, flags, kind) in steps {
            let f = frame_of(from_vm, conn, flags, kind);
            fresh.net.pmd.flush_caches();
            let a = cached.passes(from_vm, &f);
            let b = fresh.passes(from_vm, &f);
            prop_assert_eq!(a, b, "from_vm={} conn={} flags={:#x} kind={}", from_vm, conn, flags, kind);
        }
        let (x, y) = (cached.net.pmd.conntrack().lock().unwrap().len(), fresh.net.pmd.conntrack().lock().unwrap().len());
        prop_assert_eq!(x, y);
    }
}

fn vm1_port() -> Port {
    Port {
        name: "vm1".into(),
        id: 1,
        mac: VM_MAC,
        ip: VM_IP.into(),
        zone: 1,
        vlan: None,
        rules: vec![
            Rule {
                direction: Direction::Egress,
                proto: Proto::Any,
                remote: None,
            },
            Rule {
                direction: Direction::Ingress,
                proto: Proto::Tcp(Some((22, 22))),
                remote: None,
            },
            Rule {
                direction: Direction::Ingress,
                proto: Proto::Icmp,
                remote: None,
            },
        ],
    }
}

/// The rules of `flows` on a bridge with `ports`, printed, sorted.
fn rules_of(flows: &str, ports: &[&str]) -> Vec<String> {
    let sw = common::pmd::switch_with(flows, ports);
    let mut v: Vec<String> = sw
        .bridge("br-int")
        .unwrap()
        .rules()
        .iter()
        .map(|e| e.rule.to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn the_fixture_is_what_the_generator_writes() {
    let generated = firewall_flows(&[vm1_port()]);
    assert_eq!(
        rules_of(&generated, &["vm1", "uplink"]),
        rules_of(SG, &["vm1", "uplink"])
    );
}

/// Two firewalled ports of one network: traffic between them goes through
/// the destination's ingress rules as well.
#[test]
fn between_two_local_ports_the_destinations_group_decides() {
    let vm2 = Port {
        name: "vm2".into(),
        id: 2,
        mac: PEER_MAC,
        ip: PEER_IP.into(),
        zone: 1,
        vlan: None,
        rules: rvs_control::security_group::allow_egress(),
    };
    let flows = firewall_flows(&[vm1_port(), vm2]);
    let mut net = FlowsPmd::new(&flows, &["vm1", "vm2", "uplink"]);
    // vm2 (egress only) to vm1's SSH: vm1's group allows it.
    let syn = tcp(false, 5555, 22, 1, 0, 0x02, 0);
    assert_eq!(
        net.send("vm2", &syn).keys().collect::<Vec<_>>(),
        ["vm1"],
        "SSH in"
    );
    let synack = tcp(true, 22, 5555, 900, 2, 0x12, 0);
    // (NORMAL has not learned vm2, whose SYN was delivered by the ingress
    // rules: the reply floods.)
    assert!(net.send("vm1", &synack).contains_key("vm2"), "its reply");
    // vm1 to vm2's port 80: vm2's group allows no ingress.
    let http = tcp(true, 40000, 80, 1, 0, 0x02, 0);
    assert!(!net.send("vm1", &http).contains_key("vm2"), "nothing in to vm2");
}
