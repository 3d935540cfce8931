use super::*;
use crate::neutron::{build_node, NodeConfig, Remote, TenantNet};
use rvs_dataplane::packet::PacketMeta;
use rvs_dataplane::testing::{arp_request, udp4, with_vlan, IP_A, IP_B};

const VM1: [u8; 6] = [2, 0, 0, 0, 1, 1];
const VM1B: [u8; 6] = [2, 0, 0, 0, 1, 2];
const VM2: [u8; 6] = [2, 0, 0, 0, 2, 1];
const REMOTE_VM: [u8; 6] = [2, 0, 0, 0, 9, 9];
const NODE1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const NODE2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const NODE3: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);

fn node() -> Switch {
    let mut sw = Switch::new();
    let cfg = NodeConfig {
        underlay_port: "eth-ul".into(),
        underlay_kind: "memory".into(),
        local_ip: NODE1,
        local_mac: [2, 0xaa, 0, 0, 0, 1],
        remotes: vec![
            Remote {
                port: "gnv1".into(),
                ip: NODE2,
                mac: Some([2, 0xaa, 0, 0, 0, 2]),
            },
            Remote {
                port: "gnv2".into(),
                ip: NODE3,
                mac: Some([2, 0xaa, 0, 0, 0, 3]),
            },
        ],
        nets: vec![TenantNet { vni: 5001, vlan: 1 }, TenantNet { vni: 5002, vlan: 2 }],
    };
    build_node(&mut sw, &cfg).unwrap();
    let sys = || PortType::System {
        kind: "memory".into(),
    };
    sw.add_port("br-int", "vm1", sys(), Some(1)).unwrap();
    sw.add_port("br-int", "vm1b", sys(), Some(1)).unwrap();
    sw.add_port("br-int", "vm2", sys(), Some(2)).unwrap();
    sw
}

fn dp(sw: &Switch, port: &str) -> u32 {
    sw.find_port(port).unwrap().1.dp_port.unwrap()
}

fn key_of(frame: &[u8], in_port: u32) -> FlowKey {
    FlowKey::extract(
        frame,
        &PacketMeta {
            in_port,
            ..Default::default()
        },
    )
    .unwrap()
    .0
}

fn frame(src: [u8; 6], dst: [u8; 6]) -> Vec<u8> {
    udp4(src, dst, IP_A, IP_B, 1000, 2000, 10)
}

/// (remote IP, VNI, underlay port) of each TunnelOutput.
fn tunnels(t: &Translation) -> Vec<(Ipv4Addr, u32, u32)> {
    t.actions
        .iter()
        .filter_map(|a| match a {
            Action::TunnelOutput(h, p) => {
                let b = h.as_bytes();
                let ip = Ipv4Addr::new(b[30], b[31], b[32], b[33]);
                let vni = u32::from_be_bytes([0, b[46], b[47], b[48]]);
                Some((ip, vni, *p))
            }
            _ => None,
        })
        .collect()
}

fn outputs(t: &Translation) -> Vec<u32> {
    t.actions
        .iter()
        .filter_map(|a| if let Action::Output(p) = a { Some(*p) } else { None })
        .collect()
}

#[test]
fn vm_to_vm_on_the_same_node_via_normal() {
    let mut sw = node();
    let (vm1, vm1b) = (dp(&sw, "vm1"), dp(&sw, "vm1b"));
    // vm1b speaks first, so NORMAL learns where it is.
    let t = translate(&mut sw, &key_of(&frame(VM1B, VM1), vm1b));
    assert!(t.changed, "a new MAC was learned");
    // Unknown destination: flooded in VLAN 1 to vm1, the bridge's own (trunk)
    // port and the tunnels; not to vm2 (VLAN 2).
    let mut out = outputs(&t);
    out.sort();
    assert_eq!(out, vec![dp(&sw, "br-int"), vm1]);
    assert_eq!(tunnels(&t).len(), 2);
    let t = trace(&mut sw, &key_of(&frame(VM1, VM1B), vm1));
    assert_eq!(outputs(&t), vec![vm1b], "learned: unicast only to vm1b");
    assert!(tunnels(&t).is_empty());
    assert!(
        !t.actions
            .iter()
            .any(|a| matches!(a, Action::PushVlan { .. } | Action::PopVlan)),
        "access to access: untagged"
    );
    // The megaflow depends on what NORMAL read: in_port, VLAN, both MACs.
    assert_eq!(t.mask.get(Field::EthDst), Field::EthDst.max());
    assert_eq!(t.mask.get(Field::EthSrc), Field::EthSrc.max());
    assert_eq!(t.mask.get(Field::NwDst), 0, "L3 was never looked at");
    let trace = t.trace.join("\n");
    assert!(
        trace.contains("bridge(\"br-int\")") && trace.contains("NORMAL"),
        "{trace}"
    );
}

#[test]
fn broadcast_floods_to_every_tunnel_with_the_networks_vni() {
    let mut sw = node();
    let mut arp = arp_request();
    arp[6..12].copy_from_slice(&VM1);
    let k = key_of(&arp, dp(&sw, "vm1"));
    let t = trace(&mut sw, &k);
    let tun = tunnels(&t);
    assert_eq!(
        tun,
        vec![(NODE2, 5001, dp(&sw, "eth-ul")), (NODE3, 5001, dp(&sw, "eth-ul"))],
        "{:#?}",
        t.trace
    );
    assert!(outputs(&t).contains(&dp(&sw, "vm1b")));
    assert!(!outputs(&t).contains(&dp(&sw, "vm2")), "same VLAN only, not vm2");
    // br-tun strips the tag before tunnelling: no VLAN reaches the wire (the
    // only tag pushed is for the bridge's own trunk port, after the tunnels).
    let pushed = t
        .actions
        .iter()
        .position(|a| matches!(a, Action::PushVlan { .. }));
    let last_tunnel = t
        .actions
        .iter()
        .rposition(|a| matches!(a, Action::TunnelOutput(..)));
    assert!(pushed.is_none_or(|p| p > last_tunnel.unwrap()), "{:?}", t.actions);
    // VLAN 2 floods with VNI 5002.
    let mut arp2 = arp_request();
    arp2[6..12].copy_from_slice(&VM2);
    let k = key_of(&arp2, dp(&sw, "vm2"));
    let t = translate(&mut sw, &k);
    assert!(tunnels(&t).iter().all(|(_, vni, _)| *vni == 5002));
}

/// Geneve from node 2 to node 1 carrying a frame from REMOTE_VM to vm1.
fn from_node2(inner: &[u8]) -> FlowKey {
    let mut k = key_of(inner, TUNNEL_VPORT);
    k.set(Field::TunSrc, u32::from(NODE2) as u64);
    k.set(Field::TunDst, u32::from(NODE1) as u64);
    k.set(Field::TunId, 5001);
    k
}

#[test]
fn tunnel_traffic_is_learned_into_table_20_and_then_unicast() {
    let mut sw = node();
    let vm1 = dp(&sw, "vm1");
    // vm1 is known locally.
    translate(&mut sw, &key_of(&frame(VM1, VM1B), vm1));
    let k = from_node2(&frame(REMOTE_VM, VM1));
    let t = translate(&mut sw, &k);
    assert_eq!(outputs(&t), vec![vm1], "{}", t.trace.join("\n"));
    assert!(t.changed);
    let learned: Vec<_> = sw
        .bridge("br-tun")
        .unwrap()
        .rules()
        .into_iter()
        .filter(|e| e.rule.table == 20 && e.rule.priority == 1)
        .cloned()
        .collect();
    assert_eq!(learned.len(), 1);
    let r = &learned[0].rule;
    assert!(r.matches.is_exact(OfField::DlDst, 0x0200_0000_0909));
    assert_eq!(r.hard_timeout, 300);
    assert!(r.to_string().contains("load:0x1389->NXM_NX_TUN_ID[]"), "{r}");
    // Now vm1 -> REMOTE_VM goes to node 2 only, VNI 5001.
    let t = trace(&mut sw, &key_of(&frame(VM1, REMOTE_VM), vm1));
    assert_eq!(
        tunnels(&t),
        vec![(NODE2, 5001, dp(&sw, "eth-ul"))],
        "{}",
        t.trace.join("\n")
    );
    assert!(outputs(&t).is_empty());
    // Learning the same thing again changes nothing.
    let t = translate(&mut sw, &k);
    assert!(!t.changed);
}

#[test]
fn geneve_to_our_address_on_the_underlay_is_popped() {
    let mut sw = node();
    let ul = dp(&sw, "eth-ul");
    let g = udp4(
        [2, 0xaa, 0, 0, 0, 2],
        [2, 0xaa, 0, 0, 0, 1],
        NODE2.octets(),
        NODE1.octets(),
        50000,
        6081,
        60,
    );
    let t = translate(&mut sw, &key_of(&g, ul));
    assert_eq!(t.actions, vec![Action::TunnelPop(TUNNEL_VPORT)]);
    assert_eq!(t.mask.get(Field::TpDst), 0xffff);
    // Other UDP on the underlay is not ours: br-ex's NORMAL handles it.
    let other = udp4(
        [2, 0xaa, 0, 0, 0, 2],
        [2, 0xaa, 0, 0, 0, 1],
        NODE2.octets(),
        NODE1.octets(),
        5,
        53,
        10,
    );
    let t = translate(&mut sw, &key_of(&other, ul));
    assert!(!t.actions.contains(&Action::TunnelPop(TUNNEL_VPORT)));
    assert!(
        !t.actions.iter().any(|a| matches!(a, Action::TunnelOutput(..))),
        "never into the overlay"
    );
}

#[test]
fn rewrites_are_committed_before_output() {
    let mut sw = Switch::new();
    sw.add_bridge("br").unwrap();
    let sys = || PortType::System {
        kind: "memory".into(),
    };
    sw.add_port("br", "a", sys(), None).unwrap();
    sw.add_port("br", "b", sys(), None).unwrap();
    sw.replace_flows(
        "br",
        "in_port=a,ip,actions=mod_nw_dst:198.18.5.5,mod_vlan_vid:7,output:b,strip_vlan,output:a\n",
    )
    .unwrap();
    let a = dp(&sw, "a");
    let t = translate(&mut sw, &key_of(&frame(VM1, VM1B), a));
    assert_eq!(t.actions.len(), 3, "{:?}", t.actions);
    assert!(matches!(t.actions[0], Action::PushVlan { tpid: 0x8100, tci } if tci & 0xfff == 7));
    assert!(
        matches!(&t.actions[1], Action::SetIpv4(s) if s.dst == Some(Ipv4Addr::new(198, 18, 5, 5)))
            || matches!(&t.actions[0], Action::SetIpv4(_))
    );
    // output:a to the input port is skipped (OpenFlow semantics).
    assert_eq!(outputs(&t), vec![dp(&sw, "b")]);
    // A tagged packet: mod_vlan_vid rewrites (pop + push), and the mask knows a tag was there.
    let tagged = with_vlan(&frame(VM1, VM1B), 0x8100, 3);
    let t = translate(&mut sw, &key_of(&tagged, a));
    assert!(t.actions.contains(&Action::PopVlan));
    assert_ne!(t.mask.get(Field::VlanTci) & VLAN_CFI as u64, 0);
}

#[test]
fn resubmit_loops_are_cut() {
    let mut sw = Switch::new();
    sw.add_bridge("br").unwrap();
    sw.replace_flows(
        "br",
        "table=0,actions=resubmit(,1)\ntable=1,actions=resubmit(,0)\n",
    )
    .unwrap();
    sw.add_port(
        "br",
        "a",
        PortType::System {
            kind: "memory".into(),
        },
        None,
    )
    .unwrap();
    let k = key_of(&frame(VM1, VM1B), dp(&sw, "a"));
    let t = translate(&mut sw, &k);
    assert_eq!(t.actions.last(), Some(&Action::Drop(DropReason::XlateDepth)));
}

#[test]
fn trace_explains_and_learns_nothing() {
    let mut sw = node();
    let k = from_node2(&frame(REMOTE_VM, VM1));
    let t = trace(&mut sw, &k);
    assert!(!t.changed);
    assert_eq!(
        sw.bridge("br-tun")
            .unwrap()
            .rules()
            .iter()
            .filter(|e| e.rule.table == 20)
            .count(),
        1,
        "only the default"
    );
    assert!(sw.bridge("br-int").unwrap().macs.is_empty());
    let text = t.trace.join("\n");
    for want in [
        "bridge(\"br-tun\")",
        " 0. in_port=",
        " 4. tun_id=0x1389",
        "10. priority 1",
        "learn (not applied while tracing)",
        "bridge(\"br-int\")",
        "NORMAL: flood on VLAN 1",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

/// Each bridge has its own action set (ofproto-dpif.at "patch ports" with
/// `write_actions`): the peer's runs when the peer's pipeline ends, the
/// packet's first bridge gets its own back and runs it at its end.
#[test]
fn action_sets_are_per_bridge_across_patch_ports() {
    let mut sw = Switch::new();
    let sys = || PortType::System {
        kind: "memory".into(),
    };
    for (br, patch, peer, port) in [
        ("br0", "patch10", "patch20", "a"),
        ("br1", "patch20", "patch10", "b"),
    ] {
        sw.add_bridge(br).unwrap();
        sw.add_port(br, port, sys(), None).unwrap();
        sw.add_port(br, patch, PortType::Patch { peer: peer.into() }, None)
            .unwrap();
    }
    // c (br0) and d (br1) have the same OpenFlow number: a set that leaked
    // from br0 into br1 would send to d.
    assert_eq!(sw.add_port("br0", "c", sys(), None).unwrap(), 3);
    assert_eq!(sw.add_port("br1", "d", sys(), None).unwrap(), 3);
    sw.replace_flows("br1", "ip,actions=write_actions(pop_vlan,output:b)\n")
        .unwrap();
    // br0's set is written before the crossing: it must survive br1's.
    sw.replace_flows(
        "br0",
        "table=0,ip,actions=write_actions(output:c),goto_table:1\ntable=1,actions=output:patch10\n",
    )
    .unwrap();
    let tagged = with_vlan(&frame(VM1, VM1B), 0x8100, 100);
    let key = key_of(&tagged, dp(&sw, "a"));
    let t = translate(&mut sw, &key);
    assert_eq!(outputs(&t), vec![dp(&sw, "b"), dp(&sw, "c")], "{:?}", t.actions);
    // br1's set popped the tag for b; br0's copy to c keeps it (push back).
    let pop = t.actions.iter().position(|a| *a == Action::PopVlan).unwrap();
    let out_b = t
        .actions
        .iter()
        .position(|a| *a == Action::Output(dp(&sw, "b")))
        .unwrap();
    assert!(pop < out_b);
    assert!(t.actions[out_b..]
        .iter()
        .any(|a| matches!(a, Action::PushVlan { tci, .. } if tci & 0xfff == 100)));
    // The trace says when each set runs.
    let t = trace(&mut sw, &key);
    let text = t.trace.join("\n");
    assert_eq!(text.matches("Executing action set").count(), 2, "{text}");
    // br1's set without an output does nothing, and br0's output:c is not
    // in it: c gets one copy, still tagged.
    sw.replace_flows("br1", "ip,actions=output:b,write_actions(pop_vlan)\n")
        .unwrap();
    let t = translate(&mut sw, &key);
    assert_eq!(outputs(&t), vec![dp(&sw, "b"), dp(&sw, "c")], "{:?}", t.actions);
    assert!(!t.actions.contains(&Action::PopVlan), "{:?}", t.actions);
}
