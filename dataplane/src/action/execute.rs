//! Running a flow's actions on one packet. Where packets go (port tx queues, the
//! recirculation batch, the upcall handler) is the caller's [`ActionSink`], so
//! this module knows nothing of ports or threads.

use super::arp::set_arp;
use super::ipv6::set_ipv6;
use super::l2::{pop_vlan, push_vlan, set_eth_dst, set_eth_src};
use super::l3::set_ipv4;
use super::l4::set_transport;
use super::nd::set_nd;
use super::Action;
use crate::conntrack::CtAction;
use crate::drop::DropReason;
use crate::flow::FlowKey;
use crate::packet::PacketBuf;
use crate::port::PortNo;
use crate::tunnel::{decap, GeneveOptMap};

/// Most recirculations of one packet before it is dropped (loop guard).
pub const MAX_RECIRC_DEPTH: u8 = 6;

/// Where the executor sends packets. `movable` is true when the executor will not
/// touch the packet again, so the sink may take its buffer (swap) instead of copying.
pub trait ActionSink {
    /// Queue `pkt` for transmission on `port`.
    fn output(&mut self, port: PortNo, pkt: &mut PacketBuf, movable: bool);
    /// Queue `pkt` for another lookup (its metadata already updated).
    fn recirculate(&mut self, pkt: &mut PacketBuf, movable: bool);
    /// Give the upcall handler a copy of the packet with a cookie; an
    /// error counts the copy as dropped (the packet itself goes on).
    fn userspace(&mut self, key: &FlowKey, pkt: &PacketBuf, cookie: u32) -> Result<(), DropReason>;
    /// Count a drop.
    fn drop_packet(&mut self, reason: DropReason);
    /// Run the packet through the connection tracker (`ct()`): set its
    /// `ct_*` metadata, or refuse it (a drop under the returned reason).
    fn conntrack(&mut self, pkt: &mut PacketBuf, act: &CtAction) -> Result<(), DropReason>;
}

/// Execute `actions` on `pkt`. `key` is the packet's flow key and `hash` its hash
/// (used for the tunnel source port). An empty action list drops the packet.
#[inline]
pub fn execute(
    actions: &[Action],
    pkt: &mut PacketBuf,
    key: &FlowKey,
    hash: u64,
    optmap: &GeneveOptMap,
    sink: &mut impl ActionSink,
) {
    if actions.is_empty() {
        sink.drop_packet(DropReason::Action);
        return;
    }
    let last = actions.len() - 1;
    for (i, a) in actions.iter().enumerate() {
        let movable = i == last;
        let r = match a {
            Action::Output(p) => {
                sink.output(*p, pkt, movable);
                Ok(())
            }
            Action::PushVlan { tpid, tci } => push_vlan(pkt, *tpid, *tci),
            Action::PopVlan => pop_vlan(pkt),
            Action::SetEthSrc(m) => set_eth_src(pkt, m),
            Action::SetEthDst(m) => set_eth_dst(pkt, m),
            Action::SetIpv4(s) => set_ipv4(pkt, s),
            Action::SetIpv6(s) => set_ipv6(pkt, s),
            Action::SetNd(s) => set_nd(pkt, s),
            Action::SetArp(s) => set_arp(pkt, s),
            Action::TunnelPush(h) => h.push(pkt, hash as u32).map_err(|e| e.drop_reason()),
            Action::TunnelOutput(h, port) => match h.push(pkt, hash as u32) {
                Ok(()) => {
                    sink.output(*port, pkt, movable);
                    if !movable {
                        // The outer header only overwrote headroom: step back over it.
                        pkt.pull_front(h.len());
                    }
                    Ok(())
                }
                Err(e) => Err(e.drop_reason()),
            },
            Action::SetTransport(t) => set_transport(pkt, t),
            Action::TunnelPop(port) => match decap(pkt, optmap) {
                Ok(()) => {
                    pkt.meta.in_port = *port;
                    pkt.meta.recirc_id = 0;
                    // The inner packet is another packet to conntrack.
                    pkt.meta.ct = Default::default();
                    recirculate(pkt, movable, sink)
                }
                Err(e) => Err(e.drop_reason()),
            },
            Action::Recirculate(id) => {
                pkt.meta.recirc_id = *id;
                recirculate(pkt, movable, sink)
            }
            Action::Ct(c) => sink.conntrack(pkt, c),
            Action::CtClear => {
                pkt.meta.ct = Default::default();
                Ok(())
            }
            Action::Drop(r) => Err(*r),
            Action::Userspace(cookie) => {
                if let Err(r) = sink.userspace(key, pkt, *cookie) {
                    sink.drop_packet(r);
                }
                Ok(())
            }
        };
        if let Err(reason) = r {
            sink.drop_packet(reason);
            return;
        }
    }
}

#[inline]
fn recirculate(pkt: &mut PacketBuf, movable: bool, sink: &mut impl ActionSink) -> Result<(), DropReason> {
    if pkt.meta.recirc_depth >= MAX_RECIRC_DEPTH {
        return Err(DropReason::RecircDepth);
    }
    pkt.meta.recirc_depth += 1;
    sink.recirculate(pkt, movable);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::tunnel::{GeneveEncap, TunnelHeader};
    use std::net::Ipv4Addr;

    #[derive(Default)]
    struct Collect {
        out: Vec<(PortNo, Vec<u8>, bool)>,
        recirc: Vec<(Vec<u8>, crate::packet::PacketMeta)>,
        drops: Vec<DropReason>,
        userspace: usize,
        ct: crate::conntrack::Conntrack,
    }

    impl ActionSink for Collect {
        fn output(&mut self, port: PortNo, pkt: &mut PacketBuf, movable: bool) {
            self.out.push((port, pkt.data().to_vec(), movable));
        }
        fn recirculate(&mut self, pkt: &mut PacketBuf, _movable: bool) {
            self.recirc.push((pkt.data().to_vec(), pkt.meta));
        }
        fn userspace(&mut self, _key: &FlowKey, _pkt: &PacketBuf, cookie: u32) -> Result<(), DropReason> {
            self.userspace += 1;
            match cookie {
                0 => Ok(()),
                _ => Err(DropReason::Controller),
            }
        }
        fn drop_packet(&mut self, reason: DropReason) {
            self.drops.push(reason);
        }
        fn conntrack(&mut self, pkt: &mut PacketBuf, act: &CtAction) -> Result<(), DropReason> {
            crate::conntrack::track(&mut self.ct, pkt, act, 0)
        }
    }

    fn run(actions: &[Action], frame: &[u8]) -> Collect {
        let mut sink = Collect::default();
        let mut p = PacketBuf::from_slice(frame);
        execute(
            actions,
            &mut p,
            &FlowKey::default(),
            1,
            &GeneveOptMap::default(),
            &mut sink,
        );
        sink
    }

    #[test]
    fn outputs_see_the_packet_as_modified_so_far() {
        let f = udp4_min();
        let s = run(
            &[
                Action::Output(1),
                Action::PushVlan { tpid: 0x8100, tci: 5 },
                Action::Output(2),
            ],
            &f,
        );
        assert_eq!(s.out.len(), 2);
        assert_eq!(s.out[0], (1, f.clone(), false));
        assert_eq!(s.out[1].1.len(), f.len() + 4);
        assert!(s.out[1].2, "last output may move the buffer");
    }

    #[test]
    fn empty_actions_and_failures_drop_with_reason() {
        assert_eq!(run(&[], &udp4_min()).drops, vec![DropReason::Action]);
        let s = run(&[Action::PopVlan, Action::Output(1)], &udp4_min());
        assert_eq!(s.drops, vec![DropReason::ActionMismatch]);
        assert!(s.out.is_empty());
        assert_eq!(
            run(&[Action::Drop(DropReason::Action)], &udp4_min()).drops,
            vec![DropReason::Action]
        );
    }

    #[test]
    fn tunnel_push_then_pop_recirculates_the_inner_frame() {
        let inner = udp4_min();
        let e = GeneveEncap::new(
            MAC_A,
            MAC_B,
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
            42,
        );
        let s = run(
            &[
                Action::TunnelPush(Box::new(TunnelHeader::geneve(&e))),
                Action::Output(3),
            ],
            &inner,
        );
        let (_, outer, _) = &s.out[0];
        let s = run(&[Action::TunnelPop(9)], outer);
        assert_eq!(s.recirc.len(), 1);
        let (frame, meta) = &s.recirc[0];
        assert_eq!(frame, &inner);
        assert_eq!(meta.in_port, 9);
        assert_eq!(meta.tunnel.tun_id, 42);
        assert_eq!(meta.recirc_depth, 1);
    }

    #[test]
    fn tunnel_output_sends_an_encapsulated_copy_and_keeps_the_packet() {
        let inner = udp4_min();
        let h = |ip| {
            let e = GeneveEncap::new(
                MAC_A,
                MAC_B,
                Ipv4Addr::new(198, 18, 0, 1),
                Ipv4Addr::new(198, 18, 0, ip),
                7,
            );
            Box::new(TunnelHeader::geneve(&e))
        };
        let s = run(
            &[
                Action::TunnelOutput(h(2), 1),
                Action::TunnelOutput(h(3), 1),
                Action::Output(2),
            ],
            &inner,
        );
        assert_eq!(s.out.len(), 3);
        assert_eq!(s.out[0].1.len(), inner.len() + 50);
        assert_eq!(s.out[0].1[14 + 19], 2, "first copy to 198.18.0.2");
        assert_eq!(s.out[1].1[14 + 19], 3, "second copy to 198.18.0.3");
        assert_eq!(s.out[2].1, inner, "the packet itself is unchanged");
    }

    #[test]
    fn recirculation_depth_is_bounded() {
        let mut sink = Collect::default();
        let mut p = PacketBuf::from_slice(&udp4_min());
        p.meta.recirc_depth = MAX_RECIRC_DEPTH;
        execute(
            &[Action::Recirculate(1)],
            &mut p,
            &FlowKey::default(),
            0,
            &GeneveOptMap::default(),
            &mut sink,
        );
        assert_eq!(sink.drops, vec![DropReason::RecircDepth]);
        let s = run(&[Action::Userspace(0), Action::Recirculate(7)], &udp4_min());
        assert_eq!(s.userspace, 1);
        assert_eq!(s.recirc[0].1.recirc_id, 7);
        // A copy the handler refuses is counted; the packet goes on.
        let s = run(&[Action::Userspace(9), Action::Recirculate(7)], &udp4_min());
        assert_eq!(s.drops, vec![DropReason::Controller]);
        assert_eq!(s.recirc[0].1.recirc_id, 7);
    }

    #[test]
    fn ct_sets_the_metadata_the_recirculated_lookup_sees() {
        use crate::conntrack::state::{NEW, TRK};
        let commit = CtAction {
            zone: 7,
            commit: true,
            mark: Some((5, u32::MAX)),
            label: None,
            nat: None,
        };
        let s = run(
            &[Action::Ct(Box::new(commit)), Action::Recirculate(3)],
            &udp4_min(),
        );
        let m = s.recirc[0].1;
        assert_eq!(
            (m.ct.state, m.ct.zone, m.ct.mark, m.recirc_id),
            (TRK | NEW, 7, 5, 3)
        );
        assert_eq!(s.ct.len(), 1);
        let (k, _) = FlowKey::extract(&s.recirc[0].0, &m).unwrap();
        assert_eq!(k.get(crate::flow::Field::CtState), (TRK | NEW) as u64);
        assert_eq!(k.get(crate::flow::Field::CtMark), 5);
        let s = run(
            &[
                Action::Ct(Box::new(commit)),
                Action::CtClear,
                Action::Recirculate(3),
            ],
            &udp4_min(),
        );
        assert_eq!(s.recirc[0].1.ct, Default::default());
    }
}
