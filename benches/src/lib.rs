//! Fixtures shared by the criterion benchmarks in `benches/` (and tested here, so
//! a benchmark never measures a setup that silently does something else).

pub mod ebpf;
pub mod openflow;

use rvs_control::bridge::PortType;
use rvs_control::classifier::Classifier;
use rvs_control::neutron::{build_node, NodeConfig, Remote, TenantNet};
use rvs_control::ofp::{Match, OfField, XKey};
use rvs_control::switch::{Switch, TUNNEL_VPORT};
use rvs_control::upcall::{SharedSwitch, SwitchUpcall};
use rvs_control::xlate::translate;
use rvs_dataplane::action::Action;
use rvs_dataplane::cache::MegaflowCache;
use rvs_dataplane::flow::{Field, FlowKey, FlowMask};
use rvs_dataplane::packet::PacketBuf;
use rvs_dataplane::packet::PacketMeta;
use rvs_dataplane::pmd::{Pmd, PmdConfig, Upcall, UpcallError, UpcallReply};
use rvs_dataplane::port::{MemoryPort, MemoryPortHandle};
use rvs_dataplane::testing::{self, MAC_A, MAC_B};
use rvs_dataplane::tunnel::{GeneveEncap, TunnelHeader};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

/// The three frames the extract benchmark parses: 64-byte UDP, TCP, and a
/// Geneve-wrapped 64-byte UDP frame (with one 4-byte option).
pub fn sample_frames() -> [(&'static str, Vec<u8>); 3] {
    let udp = testing::udp4_min();
    let tcp = testing::tcp4(1000, 80, true, 6);
    let mut g = PacketBuf::from_slice(&udp);
    geneve_header(1).push(&mut g, 7).expect("headroom");
    [
        ("udp64", udp),
        ("tcp64", tcp),
        ("geneve_udp64", g.data().to_vec()),
    ]
}

/// A Geneve header between two lab VTEPs, VNI `vni`, one OVN-style option.
pub fn geneve_header(vni: u32) -> TunnelHeader {
    let mut e = GeneveEncap::new(
        MAC_A,
        MAC_B,
        Ipv4Addr::new(198, 18, 0, 1),
        Ipv4Addr::new(198, 18, 0, 2),
        vni,
    );
    e.geneve
        .push_option(0x0102, 0x80, &[0, 0, 0, 1])
        .expect("option fits");
    TunnelHeader::geneve(&e)
}

/// A megaflow cache with `n_subtables` distinct masks (each with 16 flows) and
/// one probe key per subtable that hits a flow there. Probing the keys in turn
/// visits on average half of the subtables, the usual tuple-space-search cost.
pub fn megaflow_with_subtables(n_subtables: usize) -> (MegaflowCache, Vec<FlowKey>) {
    let mut cache = MegaflowCache::new(1 << 16);
    let mut probes = Vec::new();
    for s in 0..n_subtables {
        let mut mask = FlowMask::default();
        mask.set_exact(Field::InPort);
        mask.set_exact(Field::EthType);
        // A different prefix length (and port mask) per subtable: distinct masks.
        let plen = 8 + (s % 25) as u32;
        mask.set(Field::NwDst, (u32::MAX << (32 - plen)) as u64);
        mask.set(Field::TpDst, 0xffff >> (s / 25));
        for f in 0..16u64 {
            let mut k = FlowKey::default();
            k.set(Field::EthType, 0x0800);
            k.set(Field::NwDst, ((s as u64) << 24) | (f << 8));
            k.set(Field::TpDst, 1000 + s as u64);
            cache.insert(&k, mask, vec![Action::Output(1)].into(), 0);
            if f == 0 {
                probes.push(k);
            }
        }
    }
    (cache, probes)
}

/// The slow path of the pipeline benchmark: everything from port 0 goes to
/// port 1, decided on in_port alone.
pub struct ForwardToPort1;

impl Upcall for ForwardToPort1 {
    fn upcall(&mut self, _key: &FlowKey, _pkt: &PacketBuf) -> Result<UpcallReply, UpcallError> {
        let mut m = FlowMask::default();
        m.set_exact(Field::InPort);
        Ok(UpcallReply::new(vec![Action::Output(1)], m))
    }
}

/// A classifier with `n_rules` rules spread evenly over `n_masks` distinct
/// masks (IPv4 destination prefixes /12../31, half of them with a TCP port),
/// and probe keys that hit rules of every mask. Priorities grow with the mask
/// index, so a lookup probes subtables until the first hit, as in a real table.
pub fn classifier_with(n_rules: usize, n_masks: usize) -> (Classifier<u32>, Vec<XKey>) {
    let mut c = Classifier::new();
    let mut probes = Vec::new();
    let per = n_rules / n_masks;
    for mi in 0..n_masks {
        let plen = 12 + (mi % 20) as u32;
        let mask = (u32::MAX << (32 - plen)) as u128;
        for r in 0..per {
            let mut m = Match::any();
            m.set_exact(OfField::DlType, 0x0800);
            let ip = ((r as u32) << (32 - plen)) as u128;
            m.set(OfField::NwDst, ip, mask);
            if mi >= 10 {
                m.set_exact(OfField::NwProto, 6);
                m.set_exact(OfField::TpDst, 80);
            }
            c.insert(m, (1000 + mi * 10) as u16, (mi * per + r) as u32);
            if r % (per / 4).max(1) == 0 {
                let mut k = m.value;
                OfField::TpDst.set(&mut k, 80);
                OfField::NwProto.set(&mut k, 6);
                probes.push(k);
            }
        }
    }
    (c, probes)
}

/// A node with the neutron layout (br-int/br-tun/br-ex, the br-tun fixture
/// rules, two tunnels) and VMs vm1 (VLAN 1) and vm1b (VLAN 1), and three keys to
/// translate: a broadcast from vm1 (flooded to the tunnels), a unicast vm1 ->
/// vm1b (NORMAL, learned), and a Geneve packet from a remote node (br-tun
/// tables 0, 4, 10 with learn, then br-int).
pub fn neutron_node() -> (Switch, Vec<(&'static str, FlowKey)>) {
    let mut sw = Switch::new();
    let cfg = NodeConfig {
        underlay_port: "eth-ul".into(),
        underlay_kind: "memory".into(),
        local_ip: Ipv4Addr::new(198, 18, 0, 1),
        local_mac: [2, 0xee, 0, 0, 0, 1],
        remotes: vec![
            Remote {
                port: "gnv1".into(),
                ip: Ipv4Addr::new(198, 18, 0, 2),
                mac: Some([2, 0xee, 0, 0, 0, 2]),
            },
            Remote {
                port: "gnv2".into(),
                ip: Ipv4Addr::new(198, 18, 0, 3),
                mac: Some([2, 0xee, 0, 0, 0, 3]),
            },
        ],
        nets: vec![TenantNet { vni: 5001, vlan: 1 }, TenantNet { vni: 5002, vlan: 2 }],
    };
    build_node(&mut sw, &cfg).expect("neutron layout");
    let sys = || PortType::System {
        kind: "memory".into(),
    };
    sw.add_port("br-int", "vm1", sys(), Some(1)).expect("vm1");
    sw.add_port("br-int", "vm1b", sys(), Some(1)).expect("vm1b");
    let dp = |sw: &Switch, n: &str| sw.find_port(n).and_then(|(_, p)| p.dp_port).expect("dp port");
    let key = |f: &[u8], inp: u32| {
        FlowKey::extract(
            f,
            &PacketMeta {
                in_port: inp,
                ..Default::default()
            },
        )
        .expect("key")
        .0
    };
    let vm1 = [2, 0, 0, 0, 1, 1];
    let vm1b = [2, 0, 0, 0, 1, 2];
    let bcast = key(
        &testing::udp4(vm1, [0xff; 6], testing::IP_A, testing::IP_B, 1, 2, 10),
        dp(&sw, "vm1"),
    );
    let uni = key(
        &testing::udp4(vm1, vm1b, testing::IP_A, testing::IP_B, 1, 2, 10),
        dp(&sw, "vm1"),
    );
    let back = key(
        &testing::udp4(vm1b, vm1, testing::IP_B, testing::IP_A, 2, 1, 10),
        dp(&sw, "vm1b"),
    );
    let mut remote = key(
        &testing::udp4([2, 0, 0, 0, 9, 9], vm1, testing::IP_B, testing::IP_A, 2, 1, 10),
        TUNNEL_VPORT,
    );
    remote.set(Field::TunSrc, u32::from(Ipv4Addr::new(198, 18, 0, 2)) as u64);
    remote.set(Field::TunDst, u32::from(Ipv4Addr::new(198, 18, 0, 1)) as u64);
    remote.set(Field::TunId, 5001);
    // Let NORMAL learn both VMs first, so the unicast is a learned forward.
    translate(&mut sw, &back);
    translate(&mut sw, &uni);
    translate(&mut sw, &remote);
    (
        sw,
        vec![
            ("broadcast_to_tunnels", bcast),
            ("unicast_normal", uni),
            ("from_tunnel_learn", remote),
        ],
    )
}

/// `n` UDP frames between A and B that differ in source address and port:
/// `n` distinct exact keys, as many parallel connections would give.
pub fn parallel_flows(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let src = [198, 18, 1 + (i >> 16) as u8, (i >> 8) as u8];
            testing::udp4(MAC_A, MAC_B, src, [198, 18, 0, 11], i as u16, 2000, 18)
        })
        .collect()
}

/// A bridge with NORMAL and three memory ports: p1 sends established traffic
/// to p2 (a generator cycling one frame, already learned both ways and
/// cached), p2 is a sink, p3 is a queue the caller injects into (say, a flood
/// of new source MACs). The PMD runs the real slow path (`SwitchUpcall`) and
/// watches the switch's invalidations.
pub fn l2_pmd() -> (Pmd<SwitchUpcall>, SharedSwitch, MemoryPortHandle) {
    l2_pmd_with(PmdConfig::default())
}

/// [`l2_pmd`] with its PMD configured by `config`.
pub fn l2_pmd_with(config: PmdConfig) -> (Pmd<SwitchUpcall>, SharedSwitch, MemoryPortHandle) {
    let mut sw = Switch::new();
    sw.add_bridge("br").expect("bridge");
    for p in ["p1", "p2", "p3"] {
        sw.add_port(
            "br",
            p,
            PortType::System {
                kind: "memory".into(),
            },
            None,
        )
        .expect("port");
    }
    let dp = |sw: &Switch, p: &str| sw.find_port(p).and_then(|(_, p)| p.dp_port).expect("dp port");
    let (p1, p2, p3) = (dp(&sw, "p1"), dp(&sw, "p2"), dp(&sw, "p3"));
    let inv = sw.invalidations();
    let sw: SharedSwitch = Arc::new(Mutex::new(sw));
    let mut pmd = Pmd::new(SwitchUpcall::new(sw.clone()), config);
    pmd.watch(inv);
    let ab = testing::udp4(MAC_A, MAC_B, [198, 18, 0, 10], [198, 18, 0, 11], 1, 2, 18);
    let ba = testing::udp4(MAC_B, MAC_A, [198, 18, 0, 11], [198, 18, 0, 10], 2, 1, 18);
    // Learn B on p2 first (through a queue port standing in for p2 for one
    // poll: the real p2 is a sink), then attach the real ports.
    let (teach, th) = MemoryPort::new("teach");
    pmd.add_port(p2, Box::new(teach));
    th.inject(&ba);
    pmd.poll_once();
    pmd.add_port(p1, Box::new(MemoryPort::generator("p1", vec![ab])));
    pmd.add_port(p2, Box::new(MemoryPort::sink("p2")));
    let (q, h) = MemoryPort::new("p3");
    pmd.add_port(p3, Box::new(q));
    for _ in 0..200 {
        pmd.poll_once();
    }
    (pmd, sw, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_probe_hits_its_own_subtable() {
        for n in [1, 8, 32] {
            let (cache, probes) = megaflow_with_subtables(n);
            assert_eq!(cache.n_subtables(), n);
            assert_eq!(probes.len(), n);
            for k in &probes {
                assert!(cache.lookup(k).is_some());
            }
        }
    }

    #[test]
    fn classifier_fixture_has_the_promised_shape() {
        let (c, probes) = classifier_with(10_000, 20);
        assert_eq!(c.len(), 10_000);
        assert_eq!(c.n_subtables(), 20);
        assert!(probes.len() >= 80);
        for k in &probes {
            assert!(c.lookup(k).hit.is_some());
        }
    }

    #[test]
    fn neutron_keys_translate_to_real_actions() {
        let (mut sw, keys) = neutron_node();
        for (name, k) in keys {
            let t = translate(&mut sw, &k);
            assert!(!t.actions.is_empty(), "{name}");
            assert!(!t.changed, "{name}: a repeated translation changes nothing");
        }
    }

    #[test]
    fn l2_pmd_forwards_established_traffic_from_the_caches() {
        let (mut pmd, _sw, _h) = l2_pmd();
        let before = pmd.stats().clone();
        pmd.poll_once();
        let s = pmd.stats();
        assert_eq!(s.upcalls, before.upcalls, "established: no upcall");
        assert_eq!(s.tx_packets - before.tx_packets, 32, "a batch from p1 to p2 only");
        assert_eq!(s.drops.total(), before.drops.total());
    }

    #[test]
    fn parallel_flows_are_distinct() {
        let f = parallel_flows(100_000);
        let keys: std::collections::HashSet<_> = f
            .iter()
            .map(|f| FlowKey::extract(f, &PacketMeta::default()).unwrap().0.hash())
            .collect();
        assert!(keys.len() > 99_900);
    }

    #[test]
    fn sample_frames_parse() {
        for (name, f) in sample_frames() {
            let meta = Default::default();
            assert!(FlowKey::extract(&f, &meta).is_ok(), "{name}");
        }
    }
}
