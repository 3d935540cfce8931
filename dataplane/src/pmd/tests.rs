use super::*;
use crate::flow::FlowMask;
use crate::packet::PacketBuf;
use crate::port::{MemoryPort, MemoryPortHandle};
use crate::testing::*;
use crate::tunnel::{GeneveEncap, TunnelHeader};
use crate::DropReason;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;

/// A static L2 switch as the slow path: eth_dst -> port, per the table; tunnel
/// port 9 pops Geneve on port 2 traffic to UDP 6081; the mask says what it read.
#[derive(Clone, Default)]
struct StaticL2 {
    fdb: Arc<Mutex<HashMap<[u8; 6], Vec<Action>>>>,
    calls: Arc<Mutex<usize>>,
}

impl Upcall for StaticL2 {
    fn upcall(&mut self, key: &FlowKey, _pkt: &PacketBuf) -> Result<UpcallReply, UpcallError> {
        *self.calls.lock().unwrap() += 1;
        let mut mask = FlowMask::default();
        mask.set_exact(Field::EthDst);
        let actions = self
            .fdb
            .lock()
            .unwrap()
            .get(&key.eth_dst())
            .cloned()
            .ok_or_else(|| UpcallError(format!("unknown {:?}", key.eth_dst())))?;
        Ok(UpcallReply::new(actions, mask))
    }
}

fn setup() -> (Pmd<StaticL2>, StaticL2, Vec<MemoryPortHandle>) {
    let up = StaticL2::default();
    let config = PmdConfig {
        emc_entries: 64,
        max_flows: 64,
        batch_size: 8,
        emc_insert_inv_prob: 1,
        ..PmdConfig::default()
    };
    let (pmd, hs) = three_ports(up.clone(), config);
    (pmd, up, hs)
}

/// A PMD over `up` with memory ports p0, p1, p2 as ports 0, 1, 2.
fn three_ports<U: Upcall>(up: U, config: PmdConfig) -> (Pmd<U>, Vec<MemoryPortHandle>) {
    let mut pmd = Pmd::new(up, config);
    let mut hs = Vec::new();
    for i in 0..3 {
        let (p, h) = MemoryPort::new(&format!("p{i}"));
        pmd.add_port(i, Box::new(p));
        hs.push(h);
    }
    (pmd, hs)
}

#[test]
fn miss_then_emc_then_megaflow() {
    let (mut pmd, up, hs) = setup();
    up.fdb.lock().unwrap().insert(MAC_B, vec![Action::Output(1)]);
    let f = udp4_min();
    hs[0].inject(&f);
    assert_eq!(pmd.poll_once(), 1);
    assert_eq!(pmd.stats().upcalls, 1);
    hs[0].inject(&f);
    pmd.poll_once();
    assert_eq!(pmd.stats().emc_hits, 1);
    // Another source, same destination: the megaflow (eth_dst only) covers it.
    hs[0].inject(&udp4(MAC_A, MAC_B, IP_B, IP_A, 7, 7, 20));
    pmd.poll_once();
    assert_eq!(pmd.stats().megaflow_hits, 1);
    assert_eq!(*up.calls.lock().unwrap(), 1);
    let sent = hs[1].take_sent();
    assert_eq!(sent.len(), 3);
    assert_eq!(&sent[0][..], &f[..]);
    assert_eq!(pmd.port_stats(1).unwrap().tx_packets, 3);
    // The megaflow mask includes in_port: the same frame from port 2 is a miss.
    hs[2].inject(&f);
    pmd.poll_once();
    assert_eq!(pmd.stats().upcalls, 2);
    let flow = pmd.megaflow().iter().next().unwrap().clone();
    assert_eq!(flow.mask.get(Field::InPort), Field::InPort.max());
}

#[test]
fn a_flush_makes_the_next_packet_see_new_rules() {
    let (mut pmd, up, hs) = setup();
    up.fdb.lock().unwrap().insert(MAC_B, vec![Action::Output(1)]);
    hs[0].inject(&udp4_min());
    pmd.poll_once();
    up.fdb.lock().unwrap().insert(MAC_B, vec![Action::Output(2)]);
    pmd.flush_caches();
    hs[0].inject(&udp4_min());
    pmd.poll_once();
    assert_eq!(hs[1].take_sent().len(), 1);
    assert_eq!(
        hs[2].take_sent().len(),
        1,
        "the packet after the change follows the new rule"
    );
    assert_eq!(pmd.stats().upcalls, 2);
}

#[test]
fn revalidation_keeps_emc_entries_of_kept_flows() {
    let (mut pmd, up, hs) = setup();
    up.fdb.lock().unwrap().insert(MAC_B, vec![Action::Output(1)]);
    hs[0].inject(&udp4_min());
    pmd.poll_once();
    assert_eq!(pmd.revalidate(|_| Revalidate::Keep), (1, 0, 0));
    hs[0].inject(&udp4_min());
    pmd.poll_once();
    assert_eq!(pmd.stats().emc_hits, 1);
    assert_eq!(
        pmd.revalidate(|_| Revalidate::Replace(vec![Action::Output(2)].into())),
        (0, 1, 0)
    );
    hs[0].inject(&udp4_min());
    pmd.poll_once();
    assert_eq!(pmd.stats().megaflow_hits, 1);
    assert_eq!(hs[2].take_sent().len(), 1);
}

#[test]
fn malformed_and_failed_packets_are_counted_by_reason() {
    let (mut pmd, up, hs) = setup();
    up.fdb.lock().unwrap().insert(MAC_B, vec![Action::Output(7)]);
    hs[0].inject(&[1, 2, 3]);
    hs[0].inject(&udp4_min()[..30]);
    hs[0].inject(&udp4(MAC_A, MAC_A, IP_A, IP_B, 1, 2, 0)); // unknown dst: upcall fails
    hs[0].inject(&udp4_min()); // to a port that does not exist
                               // A jumbo frame larger than the buffers: dropped whole, counted.
    hs[0].inject(&udp4(MAC_A, MAC_B, IP_A, IP_B, 1, 2, 8000));
    pmd.poll_once();
    let d = &pmd.stats().drops;
    assert_eq!(d.get(DropReason::TruncatedEth), 1);
    assert_eq!(d.get(DropReason::MalformedIpv4), 1);
    assert_eq!(d.get(DropReason::UpcallFailed), 1);
    assert_eq!(d.get(DropReason::NoPort), 1);
    assert_eq!(d.get(DropReason::Oversize), 1);
    assert_eq!(d.total(), 5);
    assert!(hs[1].take_sent().is_empty() && hs[2].take_sent().is_empty());
}

#[test]
fn flood_copies_and_the_last_output_moves() {
    let (mut pmd, up, hs) = setup();
    up.fdb
        .lock()
        .unwrap()
        .insert([0xff; 6], vec![Action::Output(1), Action::Output(2)]);
    let mut f = udp4_min();
    f[..6].copy_from_slice(&[0xff; 6]);
    for _ in 0..20 {
        hs[0].inject(&f);
    }
    while pmd.poll_once() > 0 {}
    assert_eq!(hs[1].take_sent().len(), 20);
    let sent2 = hs[2].take_sent();
    assert_eq!(sent2.len(), 20);
    assert!(sent2.iter().all(|s| s[..] == f[..]));
}

#[test]
fn geneve_encap_on_one_node_decaps_on_the_other() {
    let (mut pmd, up, hs) = setup();
    let vtep1 = Ipv4Addr::new(198, 18, 0, 1);
    let vtep2 = Ipv4Addr::new(198, 18, 0, 2);
    let hdr = TunnelHeader::geneve(&GeneveEncap::new(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        vtep1,
        vtep2,
        5001,
    ));
    up.fdb
        .lock()
        .unwrap()
        .insert(MAC_B, vec![Action::TunnelPush(Box::new(hdr)), Action::Output(2)]);
    let inner = udp4_min();
    hs[0].inject(&inner);
    pmd.poll_once();
    let outer = hs[2].take_sent().pop().unwrap();
    assert_eq!(outer.len(), inner.len() + 50, "Geneve over IPv4 adds 50 bytes");

    // Second PMD as the remote node: port 0 is the underlay, tunnel vport 9.
    #[derive(Clone)]
    struct Remote;
    impl Upcall for Remote {
        fn upcall(&mut self, key: &FlowKey, _pkt: &PacketBuf) -> Result<UpcallReply, UpcallError> {
            let mut m = FlowMask::default();
            m.set_exact(Field::InPort);
            let a = match key.get(Field::InPort) {
                0 => vec![Action::TunnelPop(9)],
                9 if key.get(Field::TunId) == 5001 => {
                    m.set_exact(Field::TunId);
                    vec![Action::Output(1)]
                }
                _ => vec![Action::Drop(DropReason::Action)],
            };
            Ok(UpcallReply::new(a, m))
        }
    }
    let mut remote = Pmd::new(
        Remote,
        PmdConfig {
            emc_insert_inv_prob: 1,
            ..PmdConfig::default()
        },
    );
    let (u, uh) = MemoryPort::new("underlay");
    let (vm, vmh) = MemoryPort::new("vm");
    remote.add_port(0, Box::new(u));
    remote.add_port(1, Box::new(vm));
    uh.inject(&outer);
    remote.poll_once();
    let got = vmh.take_sent();
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0][..], &inner[..]);
    assert_eq!(remote.stats().recirculations, 1);
    assert_eq!(remote.stats().upcalls, 2);
    // The next tunnelled packet hits the caches twice (outer, then inner).
    uh.inject(&outer);
    remote.poll_once();
    assert_eq!(remote.stats().emc_hits, 2);
    assert_eq!(vmh.take_sent().len(), 1);
}

#[test]
fn full_tx_queue_is_backpressure_not_loss() {
    let up = StaticL2::default();
    up.fdb.lock().unwrap().insert(MAC_B, vec![Action::Output(1)]);
    let mut pmd = Pmd::new(
        up,
        PmdConfig {
            batch_size: 8,
            ..Default::default()
        },
    );
    let (p0, h0) = MemoryPort::new("in");
    let (mut p1, h1) = MemoryPort::new("out");
    p1.set_tx_limit(4);
    pmd.add_port(0, Box::new(p0));
    pmd.add_port(1, Box::new(p1));
    for _ in 0..40 {
        h0.inject(&udp4_min());
    }
    let mut got = 0;
    for _ in 0..200 {
        pmd.poll_once();
        got += h1.take_sent().len();
    }
    assert_eq!(got, 40);
    assert_eq!(pmd.stats().drops.total(), 0);
}

#[test]
fn an_epoch_change_flushes_before_the_next_packet() {
    let (mut pmd, up, hs) = setup();
    let inv = Arc::new(crate::cache::Invalidations::new());
    pmd.watch(inv.clone());
    up.fdb.lock().unwrap().insert(MAC_B, vec![Action::Output(1)]);
    hs[0].inject(&udp4_min());
    pmd.poll_once();
    up.fdb.lock().unwrap().insert(MAC_B, vec![Action::Output(2)]);
    inv.flush_all();
    hs[0].inject(&udp4_min());
    pmd.poll_once();
    assert_eq!(hs[2].take_sent().len(), 1);
    assert_eq!(pmd.stats().upcalls, 2);
}

#[test]
fn two_pmds_share_ports_one_polls_each() {
    use crate::port::share;
    let up = StaticL2::default();
    up.fdb.lock().unwrap().insert(MAC_B, vec![Action::Output(1)]);
    up.fdb.lock().unwrap().insert(MAC_A, vec![Action::Output(0)]);
    let (p0, h0) = MemoryPort::new("p0");
    let (p1, h1) = MemoryPort::new("p1");
    let (s0, s1) = (share(Box::new(p0)), share(Box::new(p1)));
    let mut a = Pmd::new(up.clone(), PmdConfig::default());
    let mut b = Pmd::new(up, PmdConfig::default());
    a.attach_port(0, s0.clone(), true);
    a.attach_port(1, s1.clone(), false);
    b.attach_port(0, s0, false);
    b.attach_port(1, s1, true);
    h0.inject(&udp4_min());
    h1.inject(&udp4(MAC_B, MAC_A, IP_B, IP_A, 1, 2, 10));
    a.poll_once();
    b.poll_once();
    assert_eq!(
        h1.take_sent().len(),
        1,
        "PMD a received on port 0 and sent on b's port 1"
    );
    assert_eq!(h0.take_sent().len(), 1, "and the other way round");
    assert_eq!(
        (a.stats().rx_packets, b.stats().rx_packets),
        (1, 1),
        "each polled only its own port"
    );
    assert_eq!(a.port_info().iter().filter(|p| p.polled).count(), 1);
}

/// A slow path that takes a millisecond per miss (a flood's translations).
#[derive(Clone, Default)]
struct SlowL2 {
    calls: Arc<Mutex<Vec<PortNo>>>,
}

impl Upcall for SlowL2 {
    fn upcall(&mut self, key: &FlowKey, pkt: &PacketBuf) -> Result<UpcallReply, UpcallError> {
        std::thread::sleep(std::time::Duration::from_millis(1));
        self.calls.lock().unwrap().push(pkt.meta.in_port);
        let mut mask = FlowMask::default();
        mask.set_exact(Field::EthDst);
        let _ = key;
        Ok(UpcallReply::new(vec![Action::Output(2)], mask))
    }
}

#[test]
fn a_port_flooding_misses_spends_its_own_upcall_budget_only() {
    let up = SlowL2::default();
    let config = PmdConfig {
        upcall_budget_pct: 10,
        ..PmdConfig::default()
    };
    let (mut pmd, hs) = three_ports(up.clone(), config);
    // Port 1's established flow.
    let est = udp4(MAC_A, MAC_B, IP_A, IP_B, 1, 2, 18);
    hs[1].inject(&est);
    pmd.poll_once();
    // Port 0: 200 new destinations, each a miss taking 1 ms.
    for i in 0..200u32 {
        let b = i.to_be_bytes();
        hs[0].inject(&udp4(MAC_A, [2, 9, b[0], b[1], b[2], b[3]], IP_A, IP_B, 1, 2, 18));
    }
    for _ in 0..10 {
        pmd.poll_once();
        hs[1].inject(&est);
    }
    let limited = pmd.stats().drops.get(DropReason::UpcallLimit);
    let from0 = up.calls.lock().unwrap().iter().filter(|p| **p == 0).count();
    // A 20 ms burst plus a tenth of the time spent: far fewer than 200.
    assert!(from0 < 60 && limited > 100, "{from0} upcalls, {limited} limited");
    assert_eq!(
        from0 as u64 + limited,
        200,
        "every flood frame translated or counted"
    );
    // Port 1 still has its budget: a new flow of its own goes up.
    hs[1].inject(&udp4(MAC_B, [2, 7, 0, 0, 0, 1], IP_A, IP_B, 1, 2, 18));
    pmd.poll_once();
    assert_eq!(up.calls.lock().unwrap().last(), Some(&1));
    assert!(
        pmd.stats().emc_hits + pmd.stats().megaflow_hits >= 10,
        "the established flow stayed cached"
    );
    // Time refills the budget: the flood port is served again later.
    std::thread::sleep(std::time::Duration::from_millis(50));
    pmd.poll_once();
    hs[0].inject(&udp4(MAC_A, [2, 8, 0, 0, 0, 1], IP_A, IP_B, 1, 2, 18));
    pmd.poll_once();
    assert_eq!(up.calls.lock().unwrap().last(), Some(&0));
    // Without a budget nothing is limited.
    let mut free = Pmd::new(
        SlowL2::default(),
        PmdConfig {
            upcall_budget_pct: 0,
            ..PmdConfig::default()
        },
    );
    let (p, h) = MemoryPort::new("p0");
    free.add_port(0, Box::new(p));
    free.add_port(2, Box::new(MemoryPort::sink("p2")));
    for i in 0..40u32 {
        let b = i.to_be_bytes();
        h.inject(&udp4(MAC_A, [2, 9, b[0], b[1], b[2], b[3]], IP_A, IP_B, 1, 2, 18));
    }
    for _ in 0..5 {
        free.poll_once();
    }
    assert_eq!(free.stats().drops.get(DropReason::UpcallLimit), 0);
    assert_eq!(free.stats().upcalls, 40);
}
