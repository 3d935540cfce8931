use super::*;
use crate::neutron::{build_node, NodeConfig, Remote, TenantNet};
use crate::ofp::{parse_flow, Match, OfAction, OfField};
use crate::xlate::translate;
use rvs_dataplane::cache::{Emc, MegaflowCache};
use rvs_dataplane::packet::PacketMeta;
use rvs_dataplane::pmd::{Pmd, PmdConfig};
use rvs_dataplane::port::{MemoryPort, MemoryPortHandle};
use rvs_dataplane::testing::{arp_request, udp4};
use rvs_dataplane::DropReason;
use std::collections::HashMap;

const NETS: [TenantNet; 2] = [TenantNet { vni: 5001, vlan: 1 }, TenantNet { vni: 5002, vlan: 2 }];

struct Node {
    pmd: Pmd<SwitchUpcall>,
    sw: SharedSwitch,
    vms: HashMap<&'static str, MemoryPortHandle>,
}

fn node(ip: [u8; 4], peer: [u8; 4], underlay: MemoryPort, vms: &[(&'static str, u16)]) -> Node {
    let mac = |ip: [u8; 4]| [2, 0xee, 0, 0, 0, ip[3]];
    let mut sw = Switch::new();
    let cfg = NodeConfig {
        underlay_port: "eth-ul".into(),
        underlay_kind: "memory".into(),
        local_ip: ip.into(),
        local_mac: mac(ip),
        remotes: vec![Remote {
            port: "gnv1".into(),
            ip: peer.into(),
            // Resolved by the VTEPs over the wire (ARP), not configured.
            mac: None,
        }],
        nets: NETS.to_vec(),
    };
    build_node(&mut sw, &cfg).unwrap();
    let mut handles = HashMap::new();
    let mut ports: Vec<(u32, MemoryPort)> = Vec::new();
    for (name, vlan) in vms {
        sw.add_port(
            "br-int",
            name,
            PortType::System {
                kind: "memory".into(),
            },
            Some(*vlan),
        )
        .unwrap();
        let (p, h) = MemoryPort::new(name);
        ports.push((sw.find_port(name).unwrap().1.dp_port.unwrap(), p));
        handles.insert(*name, h);
    }
    ports.push((sw.find_port("eth-ul").unwrap().1.dp_port.unwrap(), underlay));
    let inv = sw.invalidations();
    let sw = Arc::new(Mutex::new(sw));
    let mut pmd = Pmd::new(
        SwitchUpcall::new(sw.clone()),
        PmdConfig {
            emc_insert_inv_prob: 1,
            ..PmdConfig::default()
        },
    );
    pmd.watch(inv);
    for (no, p) in ports {
        pmd.add_port(no, Box::new(p));
    }
    Node {
        pmd,
        sw,
        vms: handles,
    }
}

fn mac(last: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, last]
}

fn pump(a: &mut Node, b: &mut Node) {
    for _ in 0..8 {
        a.pmd.poll_once();
        b.pmd.poll_once();
    }
}

#[test]
fn two_nodes_talk_through_geneve_within_a_tenant_only() {
    let (ul1, ul2) = MemoryPort::pair("ul1", "ul2");
    let mut n1 = node([198, 18, 0, 1], [198, 18, 0, 2], ul1, &[("vm1", 1), ("vm2", 2)]);
    let mut n2 = node([198, 18, 0, 2], [198, 18, 0, 1], ul2, &[("vm3", 1), ("vm4", 2)]);
    let take = |n: &Node, vm: &str| n.vms[vm].take_sent();

    // vm1 broadcasts (ARP). The first copy waits for node 1's VTEP to resolve
    // node 2 by ARP over the underlay (and is dropped, as a kernel would drop
    // it without a neighbour entry); node 2's VTEP answers and learns node 1.
    let mut arp = arp_request();
    arp[6..12].copy_from_slice(&mac(1));
    n1.vms["vm1"].inject(&arp);
    pump(&mut n1, &mut n2);
    assert!(take(&n2, "vm3").is_empty());
    let neigh = lock(&n1.sw).vteps.values().next().unwrap().neighbors();
    assert_eq!(neigh.len(), 1, "node 1 resolved node 2: {neigh:?}");
    // Now only vm3, in the same tenant network, hears it.
    n1.vms["vm1"].inject(&arp);
    pump(&mut n1, &mut n2);
    let got = take(&n2, "vm3");
    assert_eq!(got.len(), 1, "vm3 got the broadcast");
    assert_eq!(&got[0][..], &arp[..], "unchanged, untagged, decapsulated");
    assert!(take(&n2, "vm4").is_empty(), "other tenant hears nothing");
    assert!(take(&n1, "vm2").is_empty());

    // vm3 answers unicast; node 2 learned vm1 behind its tunnel.
    let reply = udp4(mac(3), mac(1), [198, 19, 1, 13], [198, 19, 1, 11], 7, 7, 20);
    n2.vms["vm3"].inject(&reply);
    pump(&mut n1, &mut n2);
    assert_eq!(take(&n1, "vm1").len(), 1);
    let learned = lock(&n2.sw)
        .bridge("br-tun")
        .unwrap()
        .rules()
        .iter()
        .filter(|e| e.rule.table == 20 && e.rule.priority == 1)
        .count();
    assert_eq!(learned, 1, "table 20 learned vm1's MAC from tunnel traffic");

    // Now unicast both ways, many packets: cached after the first.
    let there = udp4(mac(1), mac(3), [198, 19, 1, 11], [198, 19, 1, 13], 5, 5, 20);
    for _ in 0..10 {
        n1.vms["vm1"].inject(&there);
    }
    pump(&mut n1, &mut n2);
    assert_eq!(take(&n2, "vm3").len(), 10);
    assert!(n1.pmd.stats().emc_hits > 0);
    // Rule counters: the cached flows' packets are credited to the rules that
    // produced them (br-int's NORMAL rule, br-tun's learned table 20 entry).
    let counters = n1.pmd.flow_counters();
    lock(&n1.sw).credit(0, &counters);
    lock(&n1.sw).credit(0, &counters); // crediting the same counts twice adds nothing
    let sw = lock(&n1.sw);
    let normal = sw
        .bridge("br-int")
        .unwrap()
        .rules()
        .into_iter()
        .find(|e| e.rule.priority == 0)
        .unwrap()
        .clone();
    assert!(
        normal.n_packets >= 10,
        "br-int NORMAL counted {} packets",
        normal.n_packets
    );
    assert!(normal.n_bytes >= 10 * there.len() as u64);
    let learned = sw
        .bridge("br-tun")
        .unwrap()
        .rules()
        .into_iter()
        .find(|e| e.rule.table == 20 && e.rule.priority == 1)
        .unwrap()
        .clone();
    assert!(
        learned.n_packets >= 10,
        "learned unicast entry counted {}",
        learned.n_packets
    );
    drop(sw);

    // Cross-tenant unicast to vm4's MAC never arrives.
    let cross = udp4(mac(1), mac(4), [198, 19, 1, 11], [198, 19, 2, 14], 5, 5, 20);
    n1.vms["vm1"].inject(&cross);
    pump(&mut n1, &mut n2);
    assert!(take(&n2, "vm4").is_empty());
}

/// A Geneve frame from `remote` to node 2's VTEP (198.18.0.2) carrying a
/// broadcast from mac(1) on VNI 5001.
fn geneve_to_node2(remote: [u8; 4], oam: bool) -> Vec<u8> {
    use rvs_dataplane::packet::PacketBuf;
    use rvs_dataplane::tunnel::{GeneveEncap, TunnelHeader};
    let mut e = GeneveEncap::new(
        [2, 0xee, 0, 0, 0, remote[3]],
        [2, 0xee, 0, 0, 0, 2],
        remote.into(),
        [198, 18, 0, 2].into(),
        5001,
    );
    e.geneve.oam = oam;
    let mut inner = arp_request();
    inner[6..12].copy_from_slice(&mac(1));
    let mut p = PacketBuf::from_slice(&inner);
    TunnelHeader::geneve(&e).push(&mut p, 7).unwrap();
    p.data().to_vec()
}

#[test]
fn oam_and_unknown_tunnels_never_reach_a_tenant() {
    let (ul, wire) = MemoryPort::new("ul");
    let mut n2 = node([198, 18, 0, 2], [198, 18, 0, 1], ul, &[("vm3", 1), ("vm4", 2)]);
    let run = |n: &mut Node| {
        for _ in 0..4 {
            n.pmd.poll_once();
        }
    };
    wire.inject(&geneve_to_node2([198, 18, 0, 1], true));
    wire.inject(&geneve_to_node2([198, 18, 0, 99], false));
    run(&mut n2);
    let d = &n2.pmd.stats().drops;
    assert_eq!(d.get(DropReason::GeneveOam), 1);
    assert_eq!(d.get(DropReason::NoTunnelPort), 1);
    assert!(n2.vms["vm3"].take_sent().is_empty() && n2.vms["vm4"].take_sent().is_empty());
    // The same frame without the O bit, from the configured remote, is delivered.
    wire.inject(&geneve_to_node2([198, 18, 0, 1], false));
    run(&mut n2);
    assert_eq!(n2.vms["vm3"].take_sent().len(), 1);
    assert!(n2.vms["vm4"].take_sent().is_empty());
}

#[test]
fn trace_flow_text() {
    let (ul1, _ul2) = MemoryPort::pair("ul1", "ul2");
    let n1 = node([198, 18, 0, 1], [198, 18, 0, 2], ul1, &[("vm1", 1)]);
    let mut sw = lock(&n1.sw);
    let out = trace_flow(
        &mut sw,
        "br-int",
        "in_port=vm1,dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,arp",
    )
    .unwrap();
    for want in [
        "bridge(\"br-int\")",
        "NORMAL: flood on VLAN 1",
        "bridge(\"br-tun\")",
        "22. dl_vlan=1, priority 1",
        "Megaflow matches on:",
        "next hop 198.18.0.2 not resolved yet, asking by ARP",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    let e = trace_flow(&mut sw, "br-int", "in_port=vm9,arp").unwrap_err();
    assert!(e.to_string().contains("no port named"), "{e}");
    assert!(trace_flow(&mut sw, "br-nope", "in_port=1").is_err());
}

// ---- "the cached result equals a fresh translation" ----

use proptest::prelude::*;

fn rule_text() -> impl Strategy<Value = String> {
    let table = 0u8..4;
    let m = prop_oneof![
        Just(String::new()),
        (1u32..4).prop_map(|p| format!("in_port={p},")),
        (0u8..4).prop_map(|d| format!("dl_dst=02:00:00:00:00:0{d},")),
        Just("dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,".to_string()),
        (0u8..4, prop_oneof![Just(8u8), Just(16), Just(24), Just(32)])
            .prop_map(|(n, l)| format!("ip,nw_dst=198.18.{n}.{n}/{l},")),
        (0u16..3, prop_oneof![Just(0xffffu16), Just(0xff00), Just(0x0f)])
            .prop_map(|(p, mk)| format!("tcp,tp_dst={:#x}/{mk:#x},", 80 + p)),
        (0u8..3).prop_map(|r| format!("reg0={r},")),
        (0u8..3).prop_map(|v| format!("dl_vlan={v},")),
        prop_oneof![Just("UNSET".to_string()), (1u32..4).prop_map(|p| p.to_string())]
            .prop_map(|p| format!("actset_output={p},")),
    ];
    let action = |t: u8| {
        prop_oneof![
            (1u32..4).prop_map(|p| format!("output:{p}")),
            (0u8..3).prop_map(|r| format!("load:{r}->NXM_NX_REG0[]")),
            (1u16..5).prop_map(|v| format!("mod_vlan_vid:{v}")),
            Just("strip_vlan".to_string()),
            Just("mod_nw_dst:198.18.9.9".to_string()),
            ((t + 1)..5u8).prop_map(|n| format!("resubmit(,{})", n.min(3))),
            Just("drop".to_string()),
            // Valid only last (instruction order); elsewhere the rule is refused.
            (1u32..4).prop_map(|p| format!("write_actions(mod_nw_dst:198.18.7.7,output:{p})")),
            (1u32..3).prop_map(|g| format!("group:{g}")),
            prop_oneof![Just("controller"), Just("controller(max_len=64)")].prop_map(String::from),
        ]
    };
    (table, any::<u16>(), m.clone(), m).prop_flat_map(move |(t, prio, m1, m2)| {
        proptest::collection::vec(action(t), 0..4).prop_map(move |acts| {
            let acts: Vec<String> = if acts.iter().any(|a| a == "drop") {
                vec!["drop".into()]
            } else {
                acts
            };
            let acts = if acts.is_empty() {
                "drop".to_string()
            } else {
                acts.join(",")
            };
            // Two match parts may repeat a field or disagree on ip/tcp: let the
            // parser decide, invalid ones are skipped.
            format!("table={t},priority={},{m1}{m2}actions={acts}", prio % 100)
        })
    })
}

/// (in port 1..=3, src MAC 1..4, dst 0 = broadcast or MAC 1..4, nw, tp, VLAN).
fn frame_of(spec: (u8, u8, u8, u8, u16, bool)) -> Vec<u8> {
    let (_, src, d, n, p, vlan) = spec;
    let mut f = udp4(
        mac(src),
        mac(d),
        [198, 18, 1, 1],
        [198, 18, n, n],
        1000,
        80 + p,
        4,
    );
    if d == 0 {
        f[..6].copy_from_slice(&[0xff; 6]);
    }
    if vlan {
        f = rvs_dataplane::testing::with_vlan(&f, 0x8100, 1);
    }
    f
}

fn packet() -> impl Strategy<Value = FlowKey> {
    (1u32..4, 0u8..4, 0u8..4, 0u16..3, any::<bool>(), 0u8..3).prop_map(|(inp, d, n, p, vlan, src)| {
        let f = frame_of((0, src, d, n, p, vlan));
        FlowKey::extract(
            &f,
            &PacketMeta {
                in_port: inp,
                ..Default::default()
            },
        )
        .unwrap()
        .0
    })
}

/// Groups the property test's rules may send to: 1 (ALL, one bucket
/// rewriting), 2 (SELECT over three ports); `flip` gives 1 other buckets.
fn set_groups(sw: &mut Switch, flip: bool) {
    use crate::group::{Bucket, Group, GroupCommand, GroupType, WATCH_NONE};
    let bucket = |text: &str| Bucket {
        weight: 1,
        watch_port: crate::ofp::OFPP_NONE,
        watch_group: WATCH_NONE,
        actions: crate::ofp::parse_actions(text, 1, &()).unwrap(),
    };
    let one = if flip {
        vec![bucket("output:3")]
    } else {
        vec![bucket("mod_nw_dst:198.18.8.8,output:2"), bucket("output:3")]
    };
    for (id, ty, buckets) in [
        (1, GroupType::All, one),
        (
            2,
            GroupType::Select,
            vec![bucket("output:1"), bucket("output:2"), bucket("output:3")],
        ),
    ] {
        let cmd = if sw.bridge("br").unwrap().groups.get(id).is_some() {
            GroupCommand::Modify
        } else {
            GroupCommand::Add
        };
        sw.group_mod("br", cmd, Group { id, ty, buckets }).unwrap();
    }
}

/// A switch as [`switch_with`] makes it with `flows`, which must parse.
fn switch_of(flows: &str) -> Switch {
    let mut sw = switch_with(&[]);
    sw.add_flows("br", flows).unwrap();
    sw
}

fn switch_with(rules: &[String]) -> Switch {
    let mut sw = Switch::new();
    sw.add_bridge("br").unwrap();
    for i in 1..4 {
        sw.add_port(
            "br",
            &format!("p{i}"),
            PortType::System {
                kind: "memory".into(),
            },
            None,
        )
        .unwrap();
    }
    sw.replace_flows("br", "").unwrap();
    for r in rules {
        let _ = sw.add_flows("br", r);
    }
    sw
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    /// For random rule sets (up to 200 rules, 4 tables, mixed masks, groups,
    /// packets to the controller) and random packets, a cache hit (EMC or
    /// megaflow) gives exactly the actions a fresh translation gives, also
    /// after rules are added and deleted and groups change between packets.
    #[test]
    fn cached_result_equals_fresh_translation(
        rules in proptest::collection::vec(rule_text(), 1..200),
        steps in proptest::collection::vec((packet(), 0u8..10, rule_text()), 1..60),
    ) {
        let mut sw = switch_with(&[]);
        set_groups(&mut sw, false);
        for r in &rules {
            let _ = sw.add_flows("br", r);
        }
        // The switch's dp ports are 1..=3 for p1..p3 (0 is the tunnel vport).
        let inv = sw.invalidations();
        let mut seen = inv.now();
        let mut mf = MegaflowCache::new(1 << 12);
        let mut emc = Emc::new(256);
        for (key, op, extra) in steps {
            match op {
                0 => { let _ = sw.add_flows("br", &extra); }
                1 => {
                    if let Ok(r) = parse_flow(&extra, &()) {
                        let _ = sw.del_flows("br", Some(r.table), &r.matches);
                    }
                }
                2 => { let _ = sw.del_flows("br", None, &Match::any()); }
                3 => set_groups(&mut sw, true),
                4 => set_groups(&mut sw, false),
                _ => {}
            }
            // What a PMD does between batches.
            let now = inv.now();
            if now != seen { seen = now; mf.bump_generation(); }
            let fresh = translate(&mut sw, &key);
            let gen = mf.generation();
            let h = key.hash();
            let cached = emc.lookup(&key, h, gen).or_else(|| mf.lookup(&key)).cloned();
            match cached {
                Some(flow) => {
                    prop_assert_eq!(&flow.actions[..], &fresh.actions[..], "cached flow for {:?} (mask {:?})", key, flow.mask);
                }
                None => {
                    let f = mf.insert(&key, fresh.mask, fresh.actions.clone().into(), 0);
                    emc.insert(key, h, f, gen);
                }
            }
        }
    }
}

// ---- a real PMD: MAC floods and racing changes ----

use crate::xlate::trace;
use rvs_dataplane::action::Action;

/// A slow path that, right after translating, applies the rule changes a
/// test queued: another thread changing the rules while an upcall is in
/// flight, deterministically.
struct Racing {
    inner: SwitchUpcall,
    sw: SharedSwitch,
    pending: Arc<Mutex<Vec<String>>>,
}

impl rvs_dataplane::pmd::Upcall for Racing {
    fn upcall(
        &mut self,
        key: &FlowKey,
        pkt: &rvs_dataplane::packet::PacketBuf,
    ) -> Result<rvs_dataplane::pmd::UpcallReply, rvs_dataplane::pmd::UpcallError> {
        let r = self.inner.upcall(key, pkt);
        for f in self.pending.lock().unwrap().drain(..) {
            let _ = lock(&self.sw).add_flows("br", &f);
        }
        r
    }

    fn userspace(
        &mut self,
        key: &FlowKey,
        pkt: &rvs_dataplane::packet::PacketBuf,
        cookie: u32,
        out: &mut rvs_dataplane::pmd::Frames,
    ) -> Result<(), DropReason> {
        self.inner.userspace(key, pkt, cookie, out)
    }

    fn end_batch(&mut self, drops: &mut rvs_dataplane::drop::DropCounters) {
        self.inner.end_batch(drops)
    }
}

/// A PMD over `sw` (bridge "br") with a memory port on every datapath port;
/// returns the PMD, the shared switch, the queue of racing rule changes and
/// the handles by datapath port.
/// What `real_pmd` builds.
type RealPmd = (
    Pmd<Racing>,
    SharedSwitch,
    Arc<Mutex<Vec<String>>>,
    Vec<(u32, MemoryPortHandle)>,
);

fn real_pmd(sw: Switch) -> RealPmd {
    let inv = sw.invalidations();
    let dps: Vec<u32> = sw.dp_ports.keys().copied().collect();
    let sw = Arc::new(Mutex::new(sw));
    let pending = Arc::new(Mutex::new(Vec::new()));
    let racing = Racing {
        inner: SwitchUpcall::new(sw.clone()),
        sw: sw.clone(),
        pending: pending.clone(),
    };
    let mut pmd = Pmd::new(racing, PmdConfig::default());
    pmd.watch(inv);
    let mut handles = Vec::new();
    for dp in dps {
        let (p, h) = MemoryPort::new(&format!("dp{dp}"));
        pmd.add_port(dp, Box::new(p));
        handles.push((dp, h));
    }
    (pmd, sw, pending, handles)
}

fn dp_of(sw: &SharedSwitch, port: &str) -> u32 {
    lock(sw).find_port(port).unwrap().1.dp_port.unwrap()
}

/// What `established_pair` builds.
type EstablishedPair = (
    Pmd<Racing>,
    SharedSwitch,
    Vec<(u32, MemoryPortHandle)>,
    [Vec<u8>; 2],
    [u32; 3],
);

/// A NORMAL bridge on a real PMD where p1 (mac 1) and p2 (mac 2) have talked
/// both ways: both MACs learned, both directions cached, sent frames taken.
/// Returns the PMD, the switch, the handles, the two frames and p1..p3's
/// datapath ports.
fn established_pair() -> EstablishedPair {
    let (mut pmd, sw, _, hs) = real_pmd(switch_with(&["actions=NORMAL".to_string()]));
    let ports = [dp_of(&sw, "p1"), dp_of(&sw, "p2"), dp_of(&sw, "p3")];
    let ab = udp4(mac(1), mac(2), [198, 18, 1, 1], [198, 18, 1, 2], 1, 2, 18);
    let ba = udp4(mac(2), mac(1), [198, 18, 1, 2], [198, 18, 1, 1], 2, 1, 18);
    let h = |dp: u32| &hs.iter().find(|(d, _)| *d == dp).unwrap().1;
    for _ in 0..3 {
        h(ports[0]).inject(&ab);
        h(ports[1]).inject(&ba);
        pmd.poll_once();
    }
    for (_, h) in &hs {
        h.take_sent();
    }
    (pmd, sw, hs, [ab, ba], ports)
}

#[test]
fn a_mac_flood_leaves_established_flows_cached() {
    let (mut pmd, _sw, hs, [ab, ba], [p1, p2, p3]) = established_pair();
    let h = |dp: u32| &hs.iter().find(|(d, _)| *d == dp).unwrap().1;
    let (u0, f0) = (pmd.stats().upcalls, pmd.stats().flushes);
    let n = 500;
    for i in 0..n {
        // p3 floods from a new MAC every time...
        let src = [2, 0, 0, 1, (i >> 8) as u8, i as u8];
        h(p3).inject(&udp4(src, [0xff; 6], [198, 18, 2, 1], [198, 18, 2, 2], 3, 3, 18));
        // ...while p1 and p2 keep talking.
        h(p1).inject(&ab);
        h(p2).inject(&ba);
        pmd.poll_once();
    }
    let s = pmd.stats();
    assert_eq!(
        s.upcalls - u0,
        n as u64,
        "one upcall per new MAC, none for p1<->p2"
    );
    assert_eq!(s.flushes, f0, "no full flush");
    let to = |dp: u32, f: &[u8]| h(dp).take_sent().iter().filter(|x| x[..] == f[..]).count();
    assert_eq!(to(p2, &ab), n);
    assert_eq!(to(p1, &ba), n);
    // And invalidation is not too lazy: when mac(2) moves to p3, the very
    // next p1 -> mac(2) packet goes to p3.
    h(p3).inject(&udp4(
        mac(2),
        [0xff; 6],
        [198, 18, 2, 1],
        [198, 18, 2, 2],
        3,
        3,
        18,
    ));
    pmd.poll_once();
    h(p1).inject(&ab);
    pmd.poll_once();
    assert_eq!(to(p3, &ab), 1, "followed the move");
    assert_eq!(to(p2, &ab), 0);
    assert!(pmd.stats().flows_invalidated > 0);
}

fn rule_or_normal_or_learn() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => rule_text(),
        1 => (0u8..3, any::<u16>()).prop_map(|(t, p)| format!("table={t},priority={},actions=NORMAL", p % 100)),
        1 => (0u8..3, any::<u16>(), 1u32..4).prop_map(|(t, p, o)| format!(
            "table={t},priority={},actions=learn(table=3,priority=50,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),output:{o}",
            p % 100
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Through a real PMD (EMC, megaflows, invalidation), with NORMAL learning,
    /// learn() actions, rule changes between packets and rule changes racing an
    /// upcall: every packet a cache answers gets exactly what a fresh
    /// translation of the current state gives.
    #[test]
    fn a_real_pmd_never_forwards_by_a_stale_flow(
        rules in proptest::collection::vec(rule_or_normal_or_learn(), 1..40),
        steps in proptest::collection::vec(
            ((1u8..4, 1u8..4, 0u8..4, 0u8..3, 0u16..2, any::<bool>()), 0u8..12, rule_or_normal_or_learn()),
            1..80,
        ),
    ) {
        let (mut pmd, sw, pending, hs) = real_pmd(switch_with(&rules));
        for (spec, op, extra) in steps {
            match op {
                0 => { let _ = lock(&sw).add_flows("br", &extra); }
                1 => {
                    if let Ok(r) = parse_flow(&extra, &()) {
                        let _ = lock(&sw).del_flows("br", Some(r.table), &r.matches);
                    }
                }
                2 => pending.lock().unwrap().push(extra),
                _ => {}
            }
            if spec.1 == spec.2 {
                continue; // from and to the same MAC: NORMAL's own corner
            }
            let frame = frame_of(spec);
            let dp = dp_of(&sw, &format!("p{}", spec.0));
            let key = FlowKey::extract(&frame, &PacketMeta { in_port: dp, ..Default::default() }).unwrap().0;
            let upcalls = pmd.stats().upcalls;
            hs.iter().find(|(d, _)| *d == dp).unwrap().1.inject(&frame);
            pmd.poll_once();
            let got: Vec<(u32, usize)> = hs.iter().map(|(d, h)| (*d, h.take_sent().len())).collect();
            if pmd.stats().upcalls != upcalls {
                continue; // translated afresh just now
            }
            let fresh = trace(&mut lock(&sw), &key);
            let want: Vec<(u32, usize)> = hs
                .iter()
                .map(|(d, _)| (*d, fresh.actions.iter().filter(|a| matches!(a, Action::Output(p) if p == d)).count()))
                .collect();
            prop_assert_eq!(got, want, "cached answer for {:?} differs from {:?}", key, fresh.actions);
        }
    }
}

#[test]
fn cached_traffic_keeps_its_mac_entries_and_rules_young() {
    let mut sw = switch_with(&["actions=NORMAL".to_string()]);
    sw.add_flows(
        "br",
        "table=0,priority=40000,idle_timeout=60,dl_dst=02:00:00:00:00:07,actions=NORMAL",
    )
    .unwrap();
    let sw: SharedSwitch = Arc::new(Mutex::new(sw));
    let mut up = SwitchUpcall::new(sw.clone());
    let dp = dp_of(&sw, "p1");
    let f = udp4(mac(1), mac(7), [198, 18, 1, 1], [198, 18, 1, 2], 1, 2, 18);
    let key = FlowKey::extract(
        &f,
        &PacketMeta {
            in_port: dp,
            ..Default::default()
        },
    )
    .unwrap()
    .0;
    let reply = up
        .upcall(&key, &rvs_dataplane::packet::PacketBuf::from_slice(&f))
        .unwrap();
    assert!(reply.cacheable && reply.tag != 0);
    let seen = |sw: &SharedSwitch| lock(sw).bridge("br").unwrap().macs.entries()[0].seen_ms;
    let used = |sw: &SharedSwitch| {
        lock(sw)
            .bridge("br")
            .unwrap()
            .rules()
            .iter()
            .find(|e| e.rule.idle_timeout == 60)
            .unwrap()
            .used_ms
    };
    let (s0, u0) = (seen(&sw), used(&sw));
    std::thread::sleep(std::time::Duration::from_millis(20));
    // The cached flow carried packets: as OVS's revalidators push stats.
    lock(&sw).credit(0, &[(reply.tag, 10, 1000)]);
    assert!(seen(&sw) >= s0 + 20, "MAC entry refreshed by the flow's traffic");
    assert!(used(&sw) >= u0 + 20, "idle_timeout rule refreshed too");
    // No new packets: nothing moves.
    let s1 = seen(&sw);
    std::thread::sleep(std::time::Duration::from_millis(5));
    lock(&sw).credit(0, &[(reply.tag, 10, 1000)]);
    assert_eq!(seen(&sw), s1);
}

#[test]
fn a_rule_change_removes_only_the_flows_that_consulted_its_table() {
    let (mut pmd, sw, hs, [ab, _], [p1, p2, _]) = established_pair();
    let h = |dp: u32| &hs.iter().find(|(d, _)| *d == dp).unwrap().1;
    let u0 = pmd.stats().upcalls;
    // Table 5 is never consulted: the cached flows stay.
    lock(&sw)
        .add_flows("br", "table=5,priority=1,actions=drop")
        .unwrap();
    h(p1).inject(&ab);
    pmd.poll_once();
    assert_eq!(pmd.stats().upcalls, u0, "still cached");
    assert_eq!(pmd.stats().flushes, 0);
    // A rule in table 0 does change the answer: the very next packet sees it.
    lock(&sw)
        .add_flows(
            "br",
            "table=0,priority=40000,dl_dst=02:00:00:00:00:02,actions=drop",
        )
        .unwrap();
    for (_, h) in &hs {
        h.take_sent();
    }
    h(p1).inject(&ab);
    pmd.poll_once();
    assert_eq!(pmd.stats().upcalls, u0 + 1);
    assert!(h(p2).take_sent().is_empty(), "dropped by the new rule");
    assert_eq!(pmd.stats().flushes, 0, "no full flush for a rule change");
}

/// Packet-ins a test collects; refuses them once `full`.
#[derive(Default)]
struct Collect {
    pins: Mutex<Vec<crate::packet_in::PacketIn>>,
    full: std::sync::atomic::AtomicBool,
}

impl crate::packet_in::PacketInSink for Collect {
    fn deliver(&self, pins: Vec<crate::packet_in::PacketIn>) -> usize {
        if self.full.load(std::sync::atomic::Ordering::Relaxed) {
            return pins.len();
        }
        self.pins.lock().unwrap().extend(pins);
        0
    }
}

/// A controller rule on a real PMD: with nobody to take them, the copies
/// are counted as `controller` drops; with a sink, every packet (cached
/// flow or not) reaches it as a PACKET_IN and the other output goes on.
#[test]
fn controller_copies_reach_the_sink_or_are_counted() {
    let (mut pmd, sw, _, hs) = real_pmd(switch_of(
        "cookie=0x3,priority=5,udp,actions=controller(max_len=20),output:p2",
    ));
    let (p1, p2) = (dp_of(&sw, "p1"), dp_of(&sw, "p2"));
    let h = |dp: u32| &hs.iter().find(|(d, _)| *d == dp).unwrap().1;
    let f = udp4(mac(1), mac(2), [198, 18, 1, 1], [198, 18, 1, 2], 1, 2, 18);
    h(p1).inject(&f);
    pmd.poll_once();
    assert_eq!(pmd.stats().drops.get(DropReason::Controller), 1);
    assert_eq!(h(p2).take_sent().len(), 1, "the packet itself goes on");
    let sink = Arc::new(Collect::default());
    lock(&sw).pin_sink = Some(sink.clone());
    for _ in 0..3 {
        h(p1).inject(&f);
        pmd.poll_once();
    }
    assert_eq!(pmd.stats().drops.get(DropReason::Controller), 1);
    assert!(pmd.stats().megaflow_hits + pmd.stats().emc_hits >= 2, "cached");
    let pins = sink.pins.lock().unwrap().clone();
    assert_eq!(pins.len(), 3);
    for p in &pins {
        assert_eq!((p.bridge.as_str(), p.cookie, p.table), ("br", 3, 0));
        assert_eq!(p.data, f[..20]);
        assert_eq!(p.total_len, f.len());
        assert!(p.matches.is_exact(OfField::InPort, 1));
    }
    sink.full.store(true, std::sync::atomic::Ordering::Relaxed);
    h(p1).inject(&f);
    pmd.poll_once();
    assert_eq!(
        pmd.stats().drops.get(DropReason::Controller),
        2,
        "a full sink counts"
    );
}

/// A controller's PACKET_OUT, translated and run by the PMD: `output:TABLE`
/// goes through the rules (as from the controller), an output to a port
/// leaves there.
#[test]
fn packet_outs_run_their_actions_in_the_pmd() {
    use crate::openflow::bridge_ops::packet_out;
    use crate::openflow::packet::PacketOutMsg;
    let (mut pmd, sw, _, hs) = real_pmd(switch_of(
        "in_port=CONTROLLER,actions=mod_dl_src:02:00:00:00:00:77,output:p3",
    ));
    let (p2, p3) = (dp_of(&sw, "p2"), dp_of(&sw, "p3"));
    let h = |dp: u32| &hs.iter().find(|(d, _)| *d == dp).unwrap().1;
    let f = udp4(mac(1), mac(2), [198, 18, 1, 1], [198, 18, 1, 2], 1, 2, 18);
    let po = |actions: Vec<OfAction>, in_port: u32| PacketOutMsg {
        buffer_id: crate::openflow::wire::NO_BUFFER,
        in_port,
        actions,
        data: f.clone(),
    };
    let run = |pmd: &mut Pmd<Racing>, m: PacketOutMsg| {
        let e = packet_out(&mut lock(&sw), "br", &m).unwrap();
        pmd.execute_packet(e.in_port, &e.frame, &e.actions);
    };
    run(
        &mut pmd,
        po(vec![OfAction::Output(2)], crate::ofp::OFPP_CONTROLLER),
    );
    let sent = h(p2).take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0][..], f[..]);
    run(
        &mut pmd,
        po(
            vec![OfAction::Output(crate::ofp::OFPP_TABLE)],
            crate::ofp::OFPP_CONTROLLER,
        ),
    );
    let sent = h(p3).take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0][6..12], [2, 0, 0, 0, 0, 0x77]);
    // From p2, the same rule does not match: nothing leaves.
    run(&mut pmd, po(vec![OfAction::Output(crate::ofp::OFPP_TABLE)], 2));
    assert!(h(p3).take_sent().is_empty());
    let bad = packet_out(&mut lock(&sw), "br", &po(vec![], 77)).unwrap_err();
    assert_eq!(bad, crate::openflow::OfpError::BAD_REQUEST_PORT);
    let mut short = po(vec![], 1);
    short.data.truncate(10);
    assert_eq!(
        packet_out(&mut lock(&sw), "br", &short).unwrap_err(),
        crate::openflow::OfpError::BAD_PACKET
    );
}

/// PORT_MOD's bits on a real PMD: no_recv drops what the port receives
/// (counted), no_fwd keeps floods and outputs off the port, no_packet_in
/// keeps its packets from the controller; clearing them restores all, and
/// no cached flow outlives a change.
#[test]
fn port_config_bits_take_effect_at_once() {
    use crate::openflow::bridge_ops::{PC_NO_FWD, PC_NO_PACKET_IN, PC_NO_RECV};
    let mut sw = switch_of("priority=5,udp,actions=controller,FLOOD");
    let sink = Arc::new(Collect::default());
    sw.pin_sink = Some(sink.clone());
    let (mut pmd, sw, _, hs) = real_pmd(sw);
    let (p1, p2, p3) = (dp_of(&sw, "p1"), dp_of(&sw, "p2"), dp_of(&sw, "p3"));
    let h = |dp: u32| &hs.iter().find(|(d, _)| *d == dp).unwrap().1;
    let f = udp4(mac(1), mac(2), [198, 18, 1, 1], [198, 18, 1, 2], 1, 2, 18);
    let send = |pmd: &mut Pmd<Racing>| {
        h(p1).inject(&f);
        pmd.poll_once();
        (h(p2).take_sent().len(), h(p3).take_sent().len())
    };
    let pins = || sink.pins.lock().unwrap().len();
    assert_eq!(send(&mut pmd), (1, 1));
    assert_eq!(pins(), 1);
    // Cached now; the change must still apply to the next packet.
    lock(&sw).set_port_config("br", 3, PC_NO_FWD);
    assert_eq!(send(&mut pmd), (1, 0));
    lock(&sw).set_port_config("br", 1, PC_NO_PACKET_IN);
    assert_eq!(send(&mut pmd), (1, 0));
    assert_eq!(pins(), 2, "no packet-in from a no_packet_in port");
    lock(&sw).set_port_config("br", 1, PC_NO_RECV);
    assert_eq!(send(&mut pmd), (0, 0));
    assert_eq!(pmd.stats().drops.get(DropReason::PortConfig), 1);
    lock(&sw).set_port_config("br", 1, 0);
    lock(&sw).set_port_config("br", 3, 0);
    assert_eq!(send(&mut pmd), (1, 1));
    assert_eq!(pins(), 3);
}

/// Groups on a real PMD: ALL runs every bucket on its own copy (a bucket's
/// rewrite reaches only its output), a group change reaches the next packet
/// of a cached flow, SELECT keeps a flow on one bucket and spreads flows,
/// and deleting a group deletes the rules that send to it.
#[test]
fn groups_clone_select_and_follow_changes() {
    use crate::group::{Bucket, Group, GroupCommand, GroupType, WATCH_NONE};
    use crate::ofp::OFPP_NONE;
    let bucket = |text: &str| Bucket {
        weight: 1,
        watch_port: OFPP_NONE,
        watch_group: WATCH_NONE,
        actions: crate::ofp::parse_actions(text, 1, &()).unwrap(),
    };
    let mut sw = switch_with(&[]);
    // A rule naming a group that does not exist is refused.
    assert!(sw.add_flows("br", "udp,actions=group:1").is_err());
    let all = Group {
        id: 1,
        ty: GroupType::All,
        buckets: vec![
            bucket("mod_dl_src:02:00:00:00:00:77,output:2"),
            bucket("output:3"),
        ],
    };
    sw.group_mod("br", GroupCommand::Add, all).unwrap();
    sw.add_flows("br", "priority=5,udp,actions=group:1").unwrap();
    let (mut pmd, sw, _, hs) = real_pmd(sw);
    let (p1, p2, p3) = (dp_of(&sw, "p1"), dp_of(&sw, "p2"), dp_of(&sw, "p3"));
    let h = |dp: u32| &hs.iter().find(|(d, _)| *d == dp).unwrap().1;
    let udp_from = |port: u16| udp4(mac(1), mac(2), [198, 18, 1, 1], [198, 18, 1, 2], port, 2, 18);
    let send = |pmd: &mut Pmd<Racing>, f: &[u8]| {
        h(p1).inject(f);
        pmd.poll_once();
        (h(p2).take_sent(), h(p3).take_sent())
    };
    for _ in 0..2 {
        let (to2, to3) = send(&mut pmd, &udp_from(1));
        assert_eq!(to2.len(), 1);
        assert_eq!(to2[0][6..12], [2, 0, 0, 0, 0, 0x77]);
        assert_eq!(
            to3[0][..],
            udp_from(1)[..],
            "the other bucket's copy is untouched"
        );
    }
    // The group counts what its cached flow carried, each bucket too.
    let counters = pmd.flow_counters();
    lock(&sw).credit(0, &counters);
    let c = lock(&sw).bridge("br").unwrap().group_counters[&1].clone();
    assert_eq!(c.packets, 2, "{c:?}");
    assert_eq!((c.buckets[0].0, c.buckets[1].0), (2, 2));
    assert_eq!(c.bytes, 2 * udp_from(1).len() as u64);
    // INDIRECT now: the cached flow must not send to p2 any more.
    let one = Group {
        id: 1,
        ty: GroupType::Indirect,
        buckets: vec![bucket("output:3")],
    };
    lock(&sw).group_mod("br", GroupCommand::Modify, one).unwrap();
    let (to2, to3) = send(&mut pmd, &udp_from(1));
    assert_eq!((to2.len(), to3.len()), (0, 1));
    // SELECT: each flow sticks to one bucket; flows use both.
    let sel = Group {
        id: 1,
        ty: GroupType::Select,
        buckets: vec![bucket("output:2"), bucket("output:3")],
    };
    lock(&sw).group_mod("br", GroupCommand::Modify, sel).unwrap();
    let mut used = [0; 2];
    for port in 1000..1040 {
        let first = send(&mut pmd, &udp_from(port));
        let again = send(&mut pmd, &udp_from(port));
        assert_eq!(
            (first.0.len(), first.1.len()),
            (again.0.len(), again.1.len()),
            "flow {port} moved"
        );
        assert_eq!(first.0.len() + first.1.len(), 1, "one bucket per packet");
        used[usize::from(first.1.len() == 1)] += 1;
    }
    assert!(used[0] > 0 && used[1] > 0, "both buckets used: {used:?}");
    // A modify started the counters over; SELECT's buckets count the flows
    // they took.
    lock(&sw).credit(0, &pmd.flow_counters());
    let c = lock(&sw).bridge("br").unwrap().group_counters[&1].clone();
    assert_eq!(c.packets, 80, "{c:?}");
    assert_eq!(c.buckets.iter().map(|b| b.0).sum::<u64>(), 80);
    assert_eq!((c.buckets[0].0 / 2, c.buckets[1].0 / 2), (used[0], used[1]));
    // Deleting the group deletes its rule; the packets are dropped.
    let gone = lock(&sw)
        .group_mod(
            "br",
            GroupCommand::Delete,
            Group {
                id: 1,
                ty: GroupType::All,
                buckets: vec![],
            },
        )
        .unwrap();
    assert_eq!(gone.len(), 1);
    let (to2, to3) = send(&mut pmd, &udp_from(1));
    assert_eq!((to2.len(), to3.len()), (0, 0));
    assert!(lock(&sw).bridge("br").unwrap().rules().is_empty());
}
