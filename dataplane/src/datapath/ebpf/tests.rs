//! The kernel path equals the userspace path, checked with BPF_PROG_TEST_RUN
//! (no namespaces): the kernel's parser gives the key userspace's gives (or
//! leaves the frame to userspace), and a flow's actions run by the kernel
//! send the bytes, to the ports, that userspace's executor sends.

use super::encode::{encode, kernel_flow, EncapSlots};
use crate::action::{execute, Action, ActionSink, SetArp, SetIpv4, SetIpv6, SetTransport};
use crate::flow::{Field, FlowKey, FlowMask};
use crate::packet::{PacketBuf, PacketMeta};
use crate::port::PortNo;
use crate::testing::*;
use crate::tunnel::{GeneveEncap, GeneveOptMap, TunnelHeader};
use crate::DropReason;
use proptest::prelude::*;
use rvs_bpf::dp::abi::{self, Config, Encap, LookupKey, OutEntry, PortEntry, CFG_TEST};
use rvs_bpf::dp::{EventReader, Prog, TcDatapath};
use std::net::{Ipv4Addr, Ipv6Addr};

fn root_or_skip() -> bool {
    crate::testing::netns::root_or_skip("eBPF datapath")
}

/// The in_port every test packet has: loopback (ifindex 1) is made port 1.
const IN_PORT: u32 = 1;

struct Harness {
    dp: std::sync::Arc<TcDatapath>,
    events: EventReader,
    encaps: Vec<Encap>,
    gen: u64,
    /// Packets the kernel sent up (misses, frames it leaves to userspace).
    upcalls: usize,
    /// The last one's event.
    last_upcall: Option<abi::Event>,
}

impl EncapSlots for Vec<Encap> {
    fn slot(&mut self, e: &Encap) -> Option<u16> {
        let i = self.iter().position(|x| x == e).unwrap_or_else(|| {
            self.push(*e);
            self.len() - 1
        });
        Some(i as u16)
    }
}

/// What a frame turned into: (port, bytes) per output, and whether it was
/// dropped (by an action or a failed action).
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    out: Vec<(PortNo, Vec<u8>)>,
    dropped: bool,
}

impl Harness {
    fn new() -> Harness {
        let dp = std::sync::Arc::new(TcDatapath::load(None, &[]).expect("load the datapath"));
        let events = dp.events(16).expect("perf buffer");
        for p in 0..8 {
            dp.set_out(p, &OutEntry { ifindex: 1, flags: 0 }).unwrap();
        }
        dp.set_port(
            1,
            &PortEntry {
                dp_port: IN_PORT,
                ..PortEntry::default()
            },
        )
        .unwrap();
        Harness {
            dp,
            events,
            encaps: Vec::new(),
            gen: 1,
            upcalls: 0,
            last_upcall: None,
        }
    }

    /// Make `actions` the one flow (mask: in_port only), as the datapath
    /// would install it.
    fn install(&mut self, actions: &[Action]) {
        let mut mask = FlowMask::default();
        mask.set_exact(Field::InPort);
        let mut key = FlowKey::default();
        key.set(Field::InPort, IN_PORT as u64);
        self.gen += 1;
        self.put_flow(0, &key, &mask, actions);
        self.set_config(1, &GeneveOptMap::default());
    }

    /// Flow `key`/`mask` -> `actions` in mask slot `slot`, at the current
    /// generation.
    fn put_flow(&mut self, slot: u32, key: &FlowKey, mask: &FlowMask, actions: &[Action]) {
        let acts = encode(actions, &mut self.encaps).expect("offloadable");
        for (i, e) in self.encaps.iter().enumerate() {
            self.dp.set_encap(i as u32, e).unwrap();
        }
        let flow = kernel_flow(self.gen, 0, &mask.w, &acts);
        self.dp.set_mask(slot, &mask.w).unwrap();
        let lk = LookupKey {
            mask: slot,
            pad: 0,
            w: key.masked(mask).w,
        };
        self.dp.insert_flow(&lk, &flow).unwrap();
    }

    fn set_config(&self, mask_used: u32, optmap: &GeneveOptMap) {
        let mut c = Config {
            gen: self.gen,
            mask_used,
            flags: CFG_TEST,
            ..Config::default()
        };
        for m in optmap.iter() {
            c.opt[m.slot as usize] = abi::OptMap {
                class: m.class,
                ty: m.typ,
                slot1: m.slot + 1,
            };
        }
        self.dp.set_config(&c).unwrap();
    }

    fn drops_total(&self) -> u64 {
        let c = self.dp.counters().unwrap();
        self.dp.drops().unwrap().iter().sum::<u64>()
            + c[abi::Counter::ActionFailed as usize]
            + c[abi::Counter::NoPort as usize]
            + c[abi::Counter::EncapFailed as usize]
    }

    /// Run `frame` through the kernel path.
    fn kernel(&mut self, frame: &[u8]) -> Outcome {
        while self.events.pop().is_some() {}
        let before = self.drops_total();
        self.dp.test_run(Prog::Ingress, frame, 0, 0).expect("test run");
        // The run wrote its events synchronously: no waiting.
        self.events.consume().unwrap();
        let mut out = Vec::new();
        while let Some(e) = self.events.pop() {
            if e.ev.ty != abi::event::OUTPUT {
                self.upcalls += 1;
                self.last_upcall = Some(e.ev);
                continue;
            }
            let mut f = e.data.clone();
            if e.ev.vlan_present != 0 {
                // The kernel holds the outer tag in skb metadata; on the wire
                // it is in the frame.
                let mut tag = [0u8; 4];
                tag[..2].copy_from_slice(&e.ev.vlan_proto.to_ne_bytes());
                tag[2..].copy_from_slice(&e.ev.vlan_tci.to_be_bytes());
                f.splice(12..12, tag);
            }
            if e.ev.encap != 0 {
                let mark = abi::MARK_MAGIC | (e.ev.encap - 1);
                let (verdict, enc) = self.dp.test_run(Prog::Encap, &f, 0, mark).expect("encap run");
                assert_eq!(verdict, 0, "TC_ACT_OK from the encap program");
                f = enc;
            }
            out.push((e.ev.port, f));
        }
        Outcome {
            out,
            dropped: self.drops_total() > before,
        }
    }
}

/// Userspace's executor, collecting outputs.
#[derive(Default)]
struct Sink {
    out: Vec<(PortNo, Vec<u8>)>,
    dropped: bool,
}

impl ActionSink for Sink {
    fn output(&mut self, port: PortNo, pkt: &mut PacketBuf, _movable: bool) {
        self.out.push((port, pkt.data().to_vec()));
    }
    fn recirculate(&mut self, _pkt: &mut PacketBuf, _movable: bool) {}
    fn userspace(&mut self, _key: &FlowKey, _pkt: &PacketBuf, _cookie: u32) -> Result<(), DropReason> {
        Ok(())
    }
    fn drop_packet(&mut self, _reason: DropReason) {
        self.dropped = true;
    }
    fn conntrack(
        &mut self,
        _pkt: &mut PacketBuf,
        _act: &crate::conntrack::CtAction,
    ) -> Result<(), DropReason> {
        panic!("ct() is never offloaded, so never compared here");
    }
}

fn userspace(frame: &[u8], actions: &[Action]) -> Outcome {
    let meta = PacketMeta {
        in_port: IN_PORT,
        ..PacketMeta::default()
    };
    let (key, _) = FlowKey::extract(frame, &meta).expect("a valid frame");
    let mut pkt = PacketBuf::from_slice(frame);
    pkt.meta = meta;
    let mut sink = Sink::default();
    execute(actions, &mut pkt, &key, 0, &GeneveOptMap::default(), &mut sink);
    Outcome {
        out: sink.out,
        dropped: sink.dropped,
    }
}

/// The outer UDP source port of a Geneve frame comes from a flow hash, the
/// kernel's and rvs's own: equal up to that (both in 49152..65535).
fn normalise(o: &mut Outcome) {
    for (_, f) in &mut o.out {
        let geneve = f.len() > 42 && f[12..14] == [8, 0] && f[23] == 17 && f[36..38] == [0x17, 0xc1];
        if geneve {
            assert!(f[34] >= 0xc0, "source port in the dynamic range");
            f[34] = 0;
            f[35] = 0;
        }
    }
}

#[test]
fn root_kernel_key_extraction_equals_userspace() {
    if !root_or_skip() {
        return;
    }
    let dp = TcDatapath::load(None, &[]).unwrap();
    let check = |f: &[u8]| -> Result<(), TestCaseError> {
        if f.len() < 14 {
            // No Ethernet device hands the kernel a shorter skb; userspace
            // refuses it.
            prop_assert!(FlowKey::extract(f, &PacketMeta::default()).is_err());
            return Ok(());
        }
        let (upcall, words) = match dp.test_extract(f) {
            Ok(r) => r,
            // A test run refuses some truncated frames (EINVAL) that it
            // cannot set up an skb for; a device would not deliver them
            // either. Only short ones.
            Err(_) if f.len() < 64 => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("{e}: {} bytes {f:02x?}", f.len()))),
        };
        if upcall {
            return Ok(());
        }
        let (k, _) = FlowKey::extract(f, &PacketMeta::default()).map_err(|e| {
            TestCaseError::fail(format!("kernel took a frame userspace refuses ({e}): {f:02x?}"))
        })?;
        prop_assert_eq!(words, k.w, "{:02x?}", f);
        Ok(())
    };
    // The frames the kernel must handle itself, not upcall.
    for f in [
        udp4_min(),
        tcp4(1, 2, true, 10),
        icmp4_echo(1, 1),
        arp_request(),
        udp6(1, 2),
        udp4_fragment(0, true),
        udp4_fragment(2, false),
        with_vlan(&udp4_min(), 0x8100, 0x2005),
        with_vlan(&with_vlan(&tcp4(1, 2, false, 0), 0x8100, 5), 0x88a8, 6),
    ] {
        assert!(!dp.test_extract(&f).unwrap().0, "kernel parses {f:02x?}");
        check(&f).unwrap();
    }
    let frames = vec![
        udp4_min(),
        tcp4(1, 2, true, 10),
        icmp4_echo(1, 1),
        arp_request(),
        udp6(1, 2),
        udp6_fragment(0, true),
        udp4_fragment(2, true),
        with_vlan(&with_vlan(&udp4_min(), 0x8100, 5), 0x88a8, 6),
        nd(
            136,
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9],
            &[(2, MAC_B)],
        ),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(3000));
    let strategy = (
        0..frames.len(),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        any::<usize>(),
    );
    runner
        .run(&strategy, |(which, flips, cut)| {
            let mut f = frames[which].clone();
            for (pos, val) in flips {
                let n = f.len();
                f[pos % n] = val;
            }
            f.truncate(cut % (f.len() + 1));
            check(&f)
        })
        .unwrap();
}

fn mac() -> impl Strategy<Value = [u8; 6]> {
    any::<[u8; 6]>().prop_map(|mut m| {
        m[0] &= 0xfe;
        m[0] |= 2;
        m
    })
}

fn tunnel_header() -> impl Strategy<Value = Box<TunnelHeader>> {
    (
        mac(),
        mac(),
        any::<u32>(),
        any::<u32>(),
        0u32..1 << 24,
        any::<bool>(),
    )
        .prop_map(|(a, b, s, d, vni, opt)| {
            let mut e = GeneveEncap::new(a, b, Ipv4Addr::from(s), Ipv4Addr::from(d), vni);
            if opt {
                let _ = e.geneve.push_option(0x0102, 0x80, &[0, 0, 0, 7]);
            }
            Box::new(TunnelHeader::geneve(&e))
        })
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0u32..4).prop_map(Action::Output),
        (any::<u16>(), any::<bool>()).prop_map(|(tci, ad)| Action::PushVlan {
            tpid: if ad { 0x88a8 } else { 0x8100 },
            tci: tci | crate::flow::VLAN_CFI,
        }),
        Just(Action::PopVlan),
        mac().prop_map(Action::SetEthSrc),
        mac().prop_map(Action::SetEthDst),
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u8>())
        )
            .prop_map(|(s, d, tos, ttl)| Action::SetIpv4(SetIpv4 {
                src: s.map(Ipv4Addr::from),
                dst: d.map(Ipv4Addr::from),
                tos,
                ttl
            })),
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u16>())
        )
            .prop_map(|(src, dst)| Action::SetTransport(SetTransport { src, dst })),
        (
            proptest::option::of(any::<u128>()),
            proptest::option::of(any::<u128>()),
            proptest::option::of(0u32..1 << 20),
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u8>())
        )
            .prop_map(|(s, d, label, tclass, hlimit)| Action::SetIpv6(SetIpv6 {
                src: s.map(Ipv6Addr::from),
                dst: d.map(Ipv6Addr::from),
                label,
                tclass,
                hlimit
            })),
        (
            proptest::option::of(1u16..3),
            proptest::option::of(mac()),
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(op, sha, tpa)| Action::SetArp(SetArp {
                op,
                sha,
                spa: None,
                tha: None,
                tpa: tpa.map(Ipv4Addr::from)
            })),
        (tunnel_header(), 0u32..4).prop_map(|(h, p)| Action::TunnelOutput(h, p)),
        Just(Action::Drop(DropReason::TtlExceeded)),
    ]
}

fn frame() -> impl Strategy<Value = Vec<u8>> {
    (0usize..8, any::<u16>(), any::<u16>(), 0u16..4096, 0usize..40).prop_map(|(which, a, b, vid, len)| {
        match which {
            0 => udp4(MAC_A, MAC_B, IP_A, IP_B, a, b, len),
            1 => tcp4(a, b, true, len),
            2 => icmp4_echo(a, b),
            3 => arp_request(),
            4 => udp6(a, b),
            5 => with_vlan(&udp4(MAC_A, MAC_B, IP_A, IP_B, a, b, len), 0x8100, vid),
            6 => with_vlan(&with_vlan(&tcp4(a, b, false, len), 0x8100, vid), 0x88a8, 7),
            _ => udp4(MAC_A, MAC_B, IP_A, IP_B, a, b, 0),
        }
    })
}

#[test]
fn root_kernel_actions_equal_the_userspace_executor() {
    if !root_or_skip() {
        return;
    }
    let h = std::cell::RefCell::new(Harness::new());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(1500));
    runner
        .run(
            &(frame(), proptest::collection::vec(action(), 1..6)),
            |(f, actions)| {
                let mut h = h.borrow_mut();
                h.install(&actions);
                let mut k = h.kernel(&f);
                let mut u = userspace(&f, &actions);
                normalise(&mut k);
                normalise(&mut u);
                prop_assert_eq!(&k, &u, "frame {:02x?}\nactions {:?}", f, actions);
                Ok(())
            },
        )
        .unwrap();
}

/// A tunnel pop in the kernel: the outer flow pops, the inner frame's key
/// (tunnel metadata, mapped options, the inner headers) must be the one
/// userspace's decapsulation and extraction give, exactly (the inner flow is
/// installed under an exact mask of that key), and the frame that leaves is
/// the one userspace sends.
#[test]
fn root_kernel_tunnel_pop_equals_userspace_decap() {
    if !root_or_skip() {
        return;
    }
    let h = std::cell::RefCell::new(Harness::new());
    let mut optmap = GeneveOptMap::default();
    optmap.insert(0x0102, 0x80, 4, 0).unwrap();
    let opt = prop_oneof![
        Just(None),
        Just(Some((0x0102u16, 0x80u8))), // mapped, critical
        Just(Some((0x0102, 0x05))),      // unknown, not critical: ignored
        Just(Some((0x0109, 0x81))),      // unknown, critical: userspace drops it
    ];
    let strategy = (
        frame(),
        0u32..1 << 24,
        opt,
        any::<u32>(),
        proptest::collection::vec(action(), 1..4).prop_filter("transit", |a| {
            // Re-encapsulating what was decapsulated stays in userspace.
            !a.iter().any(|a| matches!(a, Action::TunnelOutput(..)))
        }),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(400));
    runner
        .run(&strategy, |(inner, vni, opt, val, actions)| {
            let mut h = h.borrow_mut();
            let mut e = GeneveEncap::new(
                MAC_B,
                MAC_A,
                Ipv4Addr::new(198, 18, 0, 2),
                Ipv4Addr::new(198, 18, 0, 1),
                vni,
            );
            if let Some((class, ty)) = opt {
                e.geneve.push_option(class, ty, &val.to_be_bytes()).unwrap();
            }
            let hdr = TunnelHeader::geneve(&e);
            let mut p = PacketBuf::from_slice(&inner);
            hdr.push(&mut p, 7).unwrap();
            let outer = p.data().to_vec();

            // Userspace: decapsulate, then the inner key.
            let mut u = PacketBuf::from_slice(&outer);
            u.meta.in_port = IN_PORT;
            let decapped = crate::tunnel::decap(&mut u, &optmap);
            h.gen += 1;
            let mut okey = FlowKey::default();
            okey.set(Field::InPort, IN_PORT as u64);
            let mut omask = FlowMask::default();
            omask.set_exact(Field::InPort);
            h.put_flow(0, &okey, &omask, &[Action::TunnelPop(0)]);
            let ikey = decapped.ok().map(|_| {
                u.meta.in_port = 0;
                FlowKey::extract(u.data(), &u.meta).expect("inner frame").0
            });
            if let Some(k) = &ikey {
                h.put_flow(1, k, &FlowMask::exact(), &actions);
            }
            h.set_config(0b11, &optmap);
            let upcalls = h.upcalls;
            let mut k = h.kernel(&outer);
            let upcalled = h.upcalls > upcalls;
            match ikey {
                // Userspace refuses the frame: the kernel must not forward it.
                None => {
                    prop_assert!(k.out.is_empty() && upcalled, "{:?}", k);
                }
                // A tagged inner frame is left to userspace (see rvs_dp.bpf.c).
                Some(_) if upcalled => {
                    prop_assert!(
                        inner.len() > 14
                            && matches!(u16::from_be_bytes([inner[12], inner[13]]), 0x8100 | 0x88a8)
                    );
                    prop_assert!(k.out.is_empty());
                }
                Some(_) => {
                    let mut sink = Sink::default();
                    let key = FlowKey::extract(u.data(), &u.meta).unwrap().0;
                    execute(&actions, &mut u, &key, 0, &optmap, &mut sink);
                    let mut us = Outcome {
                        out: sink.out,
                        dropped: sink.dropped,
                    };
                    normalise(&mut k);
                    normalise(&mut us);
                    prop_assert_eq!(&k, &us, "inner {:02x?}\nactions {:?}", inner, actions);
                }
            }
            Ok(())
        })
        .unwrap();
}

/// One step of [`root_kernel_lookup_hits_only_current_matching_flows`].
#[derive(Clone, Debug)]
enum LookupOp {
    /// Flow for frame `frame`'s key under mask `mask`, in mask slot `slot`
    /// (whatever the slot held before: the table reuses slots).
    Install {
        slot: u32,
        mask: usize,
        frame: usize,
    },
    Delete(usize),
    /// A generation bump: every flow is stale at once.
    Flush,
    /// A mask slot taken out of (or put back into) use.
    Toggle(u32),
    Send(usize),
}

/// The kernel's megaflow lookup (the mask cache first, then every mask in
/// use) returns a flow of the current generation that matches the packet
/// under the flow's own mask, or misses when there is none, whatever the
/// order of installs, deletions, flushes, slot reuse and packets. Each flow
/// outputs to its own port, so the port says which flow answered.
#[test]
fn root_kernel_lookup_hits_only_current_matching_flows() {
    if !root_or_skip() {
        return;
    }
    const SLOTS: u32 = 6;
    let mut masks = Vec::new();
    for fields in [
        &[Field::InPort][..],
        &[Field::InPort, Field::EthDst],
        &[Field::InPort, Field::EthSrc, Field::EthDst],
        &[Field::InPort, Field::EthType, Field::NwSrc],
        &[Field::InPort, Field::EthType, Field::NwProto, Field::TpDst],
        &[Field::EthSrc, Field::EthDst, Field::NwSrc, Field::TpDst],
        // Two masks neither of which covers the other, and ports that can
        // be 0: a flow filed under one, found through a slot reused for the
        // other, has the same lookup key as packets it does not match.
        &[Field::InPort, Field::TpSrc],
        &[Field::InPort, Field::TpDst],
    ] {
        let mut m = FlowMask::default();
        for f in fields {
            m.set_exact(*f);
        }
        masks.push(m);
    }
    let mut frames = Vec::new();
    for (src, dst) in [(MAC_A, MAC_B), (MAC_B, MAC_A)] {
        for sip in [IP_A, IP_B] {
            for (sport, dport) in [(1000, 53), (0, 80), (1000, 0), (0, 443)] {
                frames.push(udp4(src, dst, sip, IP_B, sport, dport, 0));
            }
        }
    }
    let meta = PacketMeta {
        in_port: IN_PORT,
        ..PacketMeta::default()
    };
    let keys: Vec<FlowKey> = frames
        .iter()
        .map(|f| FlowKey::extract(f, &meta).unwrap().0)
        .collect();
    let op = prop_oneof![
        4 => (0..SLOTS, 0..masks.len(), 0..frames.len())
            .prop_map(|(slot, mask, frame)| LookupOp::Install { slot, mask, frame }),
        1 => any::<usize>().prop_map(LookupOp::Delete),
        1 => Just(LookupOp::Flush),
        1 => (0..SLOTS).prop_map(LookupOp::Toggle),
        6 => (0..frames.len()).prop_map(LookupOp::Send),
    ];
    let h = std::cell::RefCell::new(Harness::new());
    for p in 0..64 {
        h.borrow()
            .dp
            .set_out(p, &OutEntry { ifindex: 1, flags: 0 })
            .unwrap();
    }
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(300));
    runner
        .run(&proptest::collection::vec(op, 1..80), |ops| {
            let mut h = h.borrow_mut();
            // A clean table (the per-CPU mask cache keeps its hints from
            // the last case: stale hints are part of the test).
            for lk in h.dp.flow_keys() {
                h.dp.delete_flow(&lk).unwrap();
            }
            let mut slot_mask = vec![FlowMask::default(); SLOTS as usize];
            for (i, m) in slot_mask.iter().enumerate() {
                h.dp.set_mask(i as u32, &m.w).unwrap();
            }
            // the model: lookup key -> (generation, mask, port)
            let mut flows: std::collections::BTreeMap<(u32, [u64; abi::KEY_WORDS]), (u64, FlowMask, u32)> =
                Default::default();
            let mut used = 0u32;
            let mut next_port = 1u32;
            h.gen += 1;
            h.set_config(used, &GeneveOptMap::default());
            for op in &ops {
                match *op {
                    LookupOp::Install { slot, mask, frame } => {
                        let m = masks[mask];
                        let port = next_port;
                        next_port = next_port % 63 + 1;
                        h.put_flow(slot, &keys[frame], &m, &[Action::Output(port)]);
                        slot_mask[slot as usize] = m;
                        flows.insert((slot, keys[frame].masked(&m).w), (h.gen, m, port));
                        used |= 1 << slot;
                        h.set_config(used, &GeneveOptMap::default());
                    }
                    LookupOp::Delete(n) => {
                        if let Some(k) = flows.keys().nth(n % flows.len().max(1)).copied() {
                            flows.remove(&k);
                            let lk = LookupKey {
                                mask: k.0,
                                pad: 0,
                                w: k.1,
                            };
                            prop_assert!(h.dp.delete_flow(&lk).unwrap());
                        }
                    }
                    LookupOp::Flush => {
                        h.gen += 1;
                        h.set_config(used, &GeneveOptMap::default());
                    }
                    LookupOp::Toggle(slot) => {
                        used ^= 1 << slot;
                        h.set_config(used, &GeneveOptMap::default());
                    }
                    LookupOp::Send(frame) => {
                        let k = &keys[frame];
                        let right: Vec<u32> = (0..SLOTS)
                            .filter(|i| used & (1 << i) != 0)
                            .filter_map(|i| {
                                let m = &slot_mask[i as usize];
                                let (gen, fm, port) = flows.get(&(i, k.masked(m).w))?;
                                (*gen == h.gen && k.masked(fm) == k.masked(m)).then_some(*port)
                            })
                            .collect();
                        let upcalls = h.upcalls;
                        let o = h.kernel(&frames[frame]);
                        match o.out.as_slice() {
                            [] => {
                                prop_assert!(right.is_empty(), "missed, but flows {:?} match", right);
                                prop_assert_eq!(h.upcalls, upcalls + 1, "a miss goes up");
                            }
                            [(port, _)] => prop_assert!(
                                right.contains(port),
                                "port {} answered; the flows that match: {:?}",
                                port,
                                right
                            ),
                            more => prop_assert!(false, "one flow, one output: {:?}", more),
                        }
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

/// A TCP segment of the connection 198.18.0.1:40000 -> 198.18.0.2:22, from
/// the client (`from_a`) or the server.
fn segment(from_a: bool, syn: bool, ack: Option<u32>, fin: bool, seq: u32, payload: usize) -> Vec<u8> {
    segment_rst(from_a, syn, ack, fin, false, seq, payload)
}

fn segment_rst(
    from_a: bool,
    syn: bool,
    ack: Option<u32>,
    fin: bool,
    rst: bool,
    seq: u32,
    payload: usize,
) -> Vec<u8> {
    use etherparse::PacketBuilder;
    let (ms, md, s, d, sp, dp) = if from_a {
        (MAC_A, MAC_B, IP_A, IP_B, 40000, 22)
    } else {
        (MAC_B, MAC_A, IP_B, IP_A, 22, 40000)
    };
    let mut b = PacketBuilder::ethernet2(ms, md)
        .ipv4(s, d, 64)
        .tcp(sp, dp, seq, 64000);
    if syn {
        b = b.syn();
    }
    if let Some(a) = ack {
        b = b.ack(a);
    }
    if fin {
        b = b.fin();
    }
    if rst {
        b = b.rst();
    }
    let mut out = Vec::new();
    b.write(&mut out, &vec![7u8; payload]).unwrap();
    out
}

/// The userspace tracker's answer for `frame` (zone 5, commit).
fn track(ct: &mut crate::conntrack::Conntrack, frame: &[u8]) -> u8 {
    let (k, layers) = FlowKey::extract(frame, &PacketMeta::default()).unwrap();
    let p = crate::conntrack::CtPacket::parse(frame, &k, layers).unwrap();
    let act = crate::conntrack::CtAction {
        zone: 5,
        commit: true,
        ..Default::default()
    };
    ct.execute(Ok(&p), &act, crate::pmd::clock_ms()).unwrap().state
}

/// Security-group shaped flows: pass 0 `ct(zone=5),recirc(7)`; pass 1
/// `+trk+est` -> port 2, `+trk+est+rpl` -> port 3 (and with `rpl_flow`
/// false, no flow for replies: their second pass misses), with `new_flow`
/// `+trk+new` -> port 4.
fn ct_flows(h: &mut Harness, rpl_flow: bool, new_flow: bool) {
    use crate::conntrack::{state, CtAction};
    let mut m0 = FlowMask::default();
    m0.set_exact(Field::InPort);
    m0.set_exact(Field::RecircId);
    let mut k0 = FlowKey::default();
    k0.set(Field::InPort, IN_PORT as u64);
    let ct = Action::Ct(Box::new(CtAction {
        zone: 5,
        commit: true,
        ..Default::default()
    }));
    h.gen += 1;
    h.put_flow(0, &k0, &m0, &[ct, Action::Recirculate(7)]);
    let mut m1 = m0;
    m1.set_exact(Field::CtState);
    let mut k1 = k0;
    k1.set(Field::RecircId, 7);
    k1.set(Field::CtState, (state::TRK | state::EST) as u64);
    h.put_flow(1, &k1, &m1, &[Action::Output(2)]);
    if rpl_flow {
        k1.set(Field::CtState, (state::TRK | state::EST | state::RPL) as u64);
        h.put_flow(1, &k1, &m1, &[Action::Output(3)]);
    }
    if new_flow {
        k1.set(Field::CtState, (state::TRK | state::NEW) as u64);
        h.put_flow(1, &k1, &m1, &[Action::Output(4)]);
    }
    h.set_config(0b11, &GeneveOptMap::default());
}

/// ct() in the kernel answers exactly where the tracker handed the
/// connection over (established TCP, answered UDP), with the tracker's
/// answer; everything else (the handshake, a FIN, a withdrawn or flushed
/// connection, an entry unused past its timeout) goes up untouched.
#[test]
fn root_kernel_ct_answers_as_the_tracker_for_established_connections_only() {
    use crate::conntrack::{state, Conntrack};
    if !root_or_skip() {
        return;
    }
    let mut h = Harness::new();
    ct_flows(&mut h, true, false);
    let mut ct = Conntrack::default();
    ct.set_offload(Some(Box::new(super::conntrack::KernelCt::new(h.dp.clone()))));
    // The same packets through a tracker with no kernel: the reference.
    let mut reference = Conntrack::default();
    let up = |h: &mut Harness, f: &[u8]| {
        let n = h.upcalls;
        let o = h.kernel(f);
        assert!(o.out.is_empty() && h.upcalls == n + 1, "went up: {o:?}");
    };
    let handshake = [
        segment(true, true, None, false, 100, 0),
        segment(false, true, Some(101), false, 500, 0),
        segment(true, false, Some(501), false, 101, 0),
    ];
    for f in &handshake {
        up(&mut h, f);
        let s = track(&mut ct, f);
        assert_eq!(s, track(&mut reference, f));
    }
    assert_eq!(ct.offloaded(), 1, "established: handed over");
    let a_data = segment(true, false, Some(501), false, 101, 100);
    let b_data = segment(false, false, Some(201), false, 501, 50);
    // The kernel's answers, and the reference's for the same packets.
    assert_eq!(h.kernel(&a_data).out, vec![(2, a_data.clone())]);
    assert_eq!(track(&mut reference, &a_data), state::TRK | state::EST);
    assert_eq!(h.kernel(&b_data).out, vec![(3, b_data.clone())]);
    assert_eq!(
        track(&mut reference, &b_data),
        state::TRK | state::EST | state::RPL
    );
    // A FIN can change the state: up; the tracker takes the connection back.
    let fin = segment(true, false, Some(551), true, 201, 0);
    up(&mut h, &fin);
    assert_eq!(track(&mut ct, &fin), track(&mut reference, &fin));
    assert_eq!(ct.offloaded(), 0);
    up(&mut h, &b_data);

    // UDP: its first direction handed over as +new once committed (this
    // lab's pass 1 has no flow for +new: the second pass goes up, with the
    // kernel's answer), both once answered; a flush takes it back at once.
    let req = udp4(MAC_A, MAC_B, IP_A, IP_B, 5000, 53, 20);
    let rsp = udp4(MAC_B, MAC_A, IP_B, IP_A, 53, 5000, 20);
    up(&mut h, &req);
    assert_eq!(track(&mut ct, &req), track(&mut reference, &req));
    up(&mut h, &req);
    let ev = h.last_upcall.expect("an upcall");
    let meta = super::upcall::pass_meta(&ev.meta, ev.depth, ev.mark);
    assert_eq!(
        (ev.ty, meta.ct.state),
        (abi::event::PASS, state::TRK | state::NEW)
    );
    assert_eq!(track(&mut reference, &req), state::TRK | state::NEW);
    up(&mut h, &rsp);
    track(&mut ct, &rsp);
    assert_eq!(h.kernel(&req).out, vec![(2, req.clone())]);
    assert_eq!(h.kernel(&rsp).out, vec![(3, rsp.clone())]);
    // An entry unused past its timeout is the tracker's question again.
    let key = super::conntrack::ct_key(5, &crate::conntrack::Tuple::v4(IP_A, IP_B, 17, 5000, 53));
    let mut e = h.dp.ct(&key).unwrap().expect("the kernel's entry");
    e.used_ns = 1;
    e.timeout_ns = 1_000_000;
    h.dp.set_ct(&key, &e).unwrap();
    up(&mut h, &req);
    assert_eq!(
        h.kernel(&rsp).out,
        vec![(3, rsp.clone())],
        "the other direction's entry is fresh"
    );
    ct.flush(None);
    up(&mut h, &rsp);
    assert!(h.dp.cts().is_empty(), "a flush leaves no kernel entry");
    let c = h.dp.counters().unwrap();
    assert!(c[abi::Counter::CtUpcall as usize] >= 6);
}

/// A recirculated packet whose next pass the kernel has no flow for goes up
/// with that pass's state (in_port, recirc_id, ct_*) and depth, which
/// userspace reads back as the metadata it continues with.
#[test]
fn root_kernel_pass_miss_goes_up_with_its_state() {
    use crate::conntrack::{state, Conntrack};
    if !root_or_skip() {
        return;
    }
    let mut h = Harness::new();
    ct_flows(&mut h, false, false);
    let mut ct = Conntrack::default();
    ct.set_offload(Some(Box::new(super::conntrack::KernelCt::new(h.dp.clone()))));
    let req = udp4(MAC_A, MAC_B, IP_A, IP_B, 5000, 53, 20);
    let rsp = udp4(MAC_B, MAC_A, IP_B, IP_A, 53, 5000, 20);
    track(&mut ct, &req);
    track(&mut ct, &rsp);
    let n = h.upcalls;
    assert!(h.kernel(&rsp).out.is_empty());
    assert_eq!(h.upcalls, n + 1);
    let ev = h.last_upcall.expect("an upcall");
    assert_eq!(ev.ty, abi::event::PASS);
    let meta = super::upcall::pass_meta(&ev.meta, ev.depth, ev.mark);
    assert_eq!((meta.in_port, meta.recirc_id, meta.recirc_depth), (IN_PORT, 7, 1));
    assert_eq!(
        (meta.ct.state, meta.ct.zone),
        (state::TRK | state::EST | state::RPL, 5)
    );
    assert!(!meta.tunnel.is_set());
}

/// Recirculation in the kernel stops where userspace's does: the seventh
/// recirculation of a packet is dropped as `recirc_depth`.
#[test]
fn root_kernel_recirculation_depth_is_userspaces() {
    if !root_or_skip() {
        return;
    }
    let mut h = Harness::new();
    let mut m = FlowMask::default();
    m.set_exact(Field::InPort);
    m.set_exact(Field::RecircId);
    h.gen += 1;
    for r in 0..10u32 {
        let mut k = FlowKey::default();
        k.set(Field::InPort, IN_PORT as u64);
        k.set(Field::RecircId, r as u64);
        h.put_flow(0, &k, &m, &[Action::Recirculate(r + 1)]);
    }
    h.set_config(1, &GeneveOptMap::default());
    let o = h.kernel(&udp4_min());
    assert!(o.dropped && o.out.is_empty());
    let d = h.dp.drops().unwrap();
    assert_eq!(d[DropReason::RecircDepth as usize], 1);
    assert_eq!(
        h.dp.counters().unwrap()[abi::Counter::Recirc as usize],
        crate::action::MAX_RECIRC_DEPTH as u64
    );
}

/// What a packet of random exchanges does.
#[derive(Clone, Debug)]
enum CtOp {
    /// A TCP segment of the one conversation (its handshake first): data
    /// of `len` bytes (acknowledging all it has received), or a FIN, or a RST.
    Tcp { from_a: bool, kind: u8, len: usize },
    /// A datagram of UDP flow `flow`, either way.
    Udp { flow: u16, reply: bool },
    /// Both trackers flushed.
    Flush,
}

fn ct_op() -> impl Strategy<Value = CtOp> {
    prop_oneof![
        4 => (any::<bool>(), 0u8..12, 0usize..600).prop_map(|(from_a, kind, len)| CtOp::Tcp { from_a, kind, len }),
        3 => (0u16..2, any::<bool>()).prop_map(|(flow, reply)| CtOp::Udp { flow, reply }),
        1 => Just(CtOp::Flush),
    ]
}

/// The port a `ct_state` leads to in [`ct_flows`] (0: none, dropped).
fn port_of(st: u8) -> u32 {
    use crate::conntrack::state::*;
    match st {
        s if s == TRK | EST => 2,
        s if s == TRK | EST | RPL => 3,
        s if s == TRK | NEW => 4,
        _ => 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// "Cached result == fresh translation" for the kernel's `ct()`: random
    /// exchanges (a well-behaved TCP conversation that may close or reset,
    /// two UDP flows, flushes) through the kernel, whose packets that go up
    /// are tracked in userspace, take every packet where a tracker that
    /// sees every packet sends it.
    #[test]
    fn root_kernel_ct_fates_equal_a_tracker_that_sees_every_packet(
        ops in proptest::collection::vec(ct_op(), 1..60)
    ) {
        use crate::conntrack::Conntrack;
        if !root_or_skip() {
            return Ok(());
        }
        let mut h = Harness::new();
        ct_flows(&mut h, true, true);
        let mut ct = Conntrack::default();
        ct.set_offload(Some(Box::new(super::conntrack::KernelCt::new(h.dp.clone()))));
        let reference = Conntrack::default();
        let mut t = (ct, reference);
        fn check(
            h: &mut Harness,
            (ct, reference): &mut (Conntrack, Conntrack),
            f: &[u8],
        ) -> Result<(), TestCaseError> {
            let want = port_of(track(reference, f));
            let n = h.upcalls;
            let o = h.kernel(f);
            let got = if h.upcalls > n {
                prop_assert!(o.out.is_empty());
                port_of(track(ct, f))
            } else {
                prop_assert_eq!(o.out.len(), 1);
                o.out[0].0
            };
            prop_assert_eq!(got, want, "{:?}", f);
            Ok(())
        }
        // The conversation: next sequence numbers, FINs sent, over.
        let (mut sa, mut sb) = (100u32, 500u32);
        let (mut opened, mut fin_a, mut fin_b, mut over) = (false, false, false, false);
        for op in ops {
            match op {
                CtOp::Tcp { from_a, kind, len } => {
                    if over || (from_a && fin_a) || (!from_a && fin_b) {
                        continue;
                    }
                    if !opened {
                        check(&mut h, &mut t, &segment(true, true, None, false, sa, 0))?;
                        check(&mut h, &mut t, &segment(false, true, Some(sa + 1), false, sb, 0))?;
                        sa += 1;
                        sb += 1;
                        check(&mut h, &mut t, &segment(true, false, Some(sb), false, sa, 0))?;
                        opened = true;
                    }
                    let (seq, ack) = if from_a { (sa, sb) } else { (sb, sa) };
                    match kind {
                        0 => {
                            // A reset ends it (in window: at the next sequence).
                            check(&mut h, &mut t, &segment_rst(from_a, false, Some(ack), false, true, seq, 0))?;
                            over = true;
                        }
                        1 => {
                            check(&mut h, &mut t, &segment(from_a, false, Some(ack), true, seq, 0))?;
                            if from_a {
                                sa += 1;
                                fin_a = true;
                            } else {
                                sb += 1;
                                fin_b = true;
                            }
                        }
                        _ => {
                            check(&mut h, &mut t, &segment(from_a, false, Some(ack), false, seq, len))?;
                            if from_a {
                                sa += len as u32;
                            } else {
                                sb += len as u32;
                            }
                        }
                    }
                    over |= fin_a && fin_b;
                }
                CtOp::Udp { flow, reply } => {
                    let (sp, dp) = (6000 + flow, 53);
                    let f = if reply {
                        udp4(MAC_B, MAC_A, IP_B, IP_A, dp, sp, 20)
                    } else {
                        udp4(MAC_A, MAC_B, IP_A, IP_B, sp, dp, 20)
                    };
                    check(&mut h, &mut t, &f)?;
                }
                CtOp::Flush => {
                    t.0.flush(None);
                    t.1.flush(None);
                    prop_assert!(h.dp.cts().is_empty());
                }
            }
        }
    }
}
