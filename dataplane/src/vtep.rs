//! The tunnel endpoint's own address on the underlay, served by rvs itself:
//! it answers ARP and ICMP echo for `local_ip`, and resolves the MAC of each
//! remote endpoint by ARP into a bounded, aging neighbour table. Tunnelled
//! traffic then needs no kernel IP stack and no tap on its path. Frames are
//! parsed and built with smoltcp's `wire` types.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr,
    Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr,
};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Default neighbour lifetime before it is re-resolved (ms).
pub const DEFAULT_NEIGH_AGING_MS: u64 = 300_000;
/// Default neighbour table bound.
pub const DEFAULT_MAX_NEIGH: usize = 1024;
/// Most time between two ARP requests for the same unanswered address (ms).
pub const ARP_RETRY_MS: u64 = 1000;
/// Time before the first re-ask of an unanswered address (ms); each further
/// re-ask waits twice as long, up to [`ARP_RETRY_MS`]. A lost first request
/// (as when a restarted daemon asks the moment its port opens, before the
/// reply path is steered to it) then costs tens of milliseconds, not a second.
pub const ARP_FIRST_RETRY_MS: u64 = 25;

/// A neighbour's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NeighState {
    /// Known MAC.
    Reachable([u8; 6]),
    /// Asked, no answer yet.
    Incomplete,
}

/// One entry of the neighbour table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbor {
    /// Its address.
    pub ip: Ipv4Addr,
    /// Known MAC or waiting.
    pub state: NeighState,
    /// When it was learned or last asked for (ms).
    pub updated_ms: u64,
    /// Requests sent since it was last answered.
    pub asked: u32,
    /// Set by hand (`tnl-arp-set`, as `ovs-appctl tnl/arp/set`): never ages,
    /// never replaced by what ARP says, never evicted.
    pub fixed: bool,
}

impl Neighbor {
    fn reachable(ip: Ipv4Addr, mac: [u8; 6], now_ms: u64, fixed: bool) -> Neighbor {
        Neighbor {
            ip,
            state: NeighState::Reachable(mac),
            updated_ms: now_ms,
            asked: 0,
            fixed,
        }
    }

    /// How long after the last request this (unanswered) neighbour is asked
    /// for again: [`ARP_FIRST_RETRY_MS`], doubling per request, at most
    /// [`ARP_RETRY_MS`].
    pub fn retry_ms(&self) -> u64 {
        let doublings = self.asked.saturating_sub(1).min(16);
        (ARP_FIRST_RETRY_MS << doublings).min(ARP_RETRY_MS)
    }
}

/// What [`Vtep::handle`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Not for us (send it on as usual).
    NotOurs,
    /// For us; an answer was written into `out`. `learned`: the asker's
    /// address was new or moved (as for [`Handled::Learned`]).
    Replied {
        /// The asker was learned or changed.
        learned: bool,
    },
    /// For us; a neighbour was learned or changed (cached flows that depend on
    /// it must be revalidated).
    Learned,
    /// For us; nothing to send, nothing changed.
    Consumed,
}

/// One tunnel endpoint address.
#[derive(Clone, Debug)]
pub struct Vtep {
    /// Our address.
    pub ip: Ipv4Addr,
    /// Our MAC on the underlay.
    pub mac: [u8; 6],
    neigh: HashMap<Ipv4Addr, Neighbor>,
    /// Lifetime of a learned neighbour.
    pub aging_ms: u64,
    /// Most neighbours kept.
    pub max_neigh: usize,
}

fn eth(m: [u8; 6]) -> EthernetAddress {
    EthernetAddress(m)
}

impl Vtep {
    /// A VTEP for `ip` with MAC `mac`.
    pub fn new(ip: Ipv4Addr, mac: [u8; 6]) -> Vtep {
        Vtep {
            ip,
            mac,
            neigh: HashMap::new(),
            aging_ms: DEFAULT_NEIGH_AGING_MS,
            max_neigh: DEFAULT_MAX_NEIGH,
        }
    }

    /// The MAC of `ip` if known and fresh.
    pub fn lookup(&self, ip: Ipv4Addr, now_ms: u64) -> Option<[u8; 6]> {
        match self.neigh.get(&ip) {
            Some(Neighbor {
                state: NeighState::Reachable(m),
                updated_ms,
                fixed,
                ..
            }) if *fixed || now_ms.saturating_sub(*updated_ms) < self.aging_ms => Some(*m),
            _ => None,
        }
    }

    /// The neighbour table, sorted by address.
    pub fn neighbors(&self) -> Vec<Neighbor> {
        let mut v: Vec<_> = self.neigh.values().copied().collect();
        v.sort_by_key(|n| n.ip);
        v
    }

    /// Set a neighbour as if ARP had answered (it ages as learned ones do).
    pub fn set_neighbor(&mut self, ip: Ipv4Addr, mac: [u8; 6], now_ms: u64) -> bool {
        self.learn(ip, mac, now_ms)
    }

    /// Fix a neighbour's MAC (`ovs-appctl tnl/arp/set`): it never ages, ARP
    /// does not change it, and it does not count against the table bound.
    /// True when the MAC used for `ip` changed.
    pub fn set_fixed(&mut self, ip: Ipv4Addr, mac: [u8; 6], now_ms: u64) -> bool {
        let changed = self.lookup(ip, now_ms) != Some(mac);
        self.neigh.insert(ip, Neighbor::reachable(ip, mac, now_ms, true));
        changed
    }

    /// Forget a fixed neighbour (it is resolved by ARP again); false if
    /// `ip` had none.
    pub fn remove_fixed(&mut self, ip: Ipv4Addr) -> bool {
        if self.neigh.get(&ip).is_some_and(|n| n.fixed) {
            self.neigh.remove(&ip);
            return true;
        }
        false
    }

    fn learn(&mut self, ip: Ipv4Addr, mac: [u8; 6], now_ms: u64) -> bool {
        if self.neigh.get(&ip).is_some_and(|n| n.fixed) {
            return false;
        }
        let changed = self.lookup(ip, now_ms) != Some(mac);
        let learned = self.neigh.values().filter(|n| !n.fixed).count();
        if !self.neigh.contains_key(&ip) && learned >= self.max_neigh {
            if let Some(oldest) = self
                .neigh
                .values()
                .filter(|n| !n.fixed)
                .min_by_key(|n| n.updated_ms)
                .map(|n| n.ip)
            {
                self.neigh.remove(&oldest);
            }
        }
        self.neigh.insert(ip, Neighbor::reachable(ip, mac, now_ms, false));
        changed
    }

    /// If `ip` needs resolving (unknown, aged out, and not asked for within
    /// its [`Neighbor::retry_ms`]), write an ARP request into `out` and return
    /// true.
    pub fn request(&mut self, ip: Ipv4Addr, now_ms: u64, out: &mut Vec<u8>) -> bool {
        if self.lookup(ip, now_ms).is_some() {
            return false;
        }
        let asked = match self.neigh.get(&ip) {
            Some(n) if n.state == NeighState::Incomplete => {
                if now_ms.saturating_sub(n.updated_ms) < n.retry_ms() {
                    return false;
                }
                n.asked
            }
            Some(_) => 0,
            None if self.neigh.len() >= self.max_neigh => return false,
            None => 0,
        };
        self.neigh.insert(
            ip,
            Neighbor {
                ip,
                state: NeighState::Incomplete,
                updated_ms: now_ms,
                asked: asked.saturating_add(1),
                fixed: false,
            },
        );
        let arp = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: eth(self.mac),
            source_protocol_addr: self.ip,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: ip,
        };
        self.emit_arp(&arp, [0xff; 6], out);
        true
    }

    fn emit_arp(&self, arp: &ArpRepr, dst: [u8; 6], out: &mut Vec<u8>) {
        let er = EthernetRepr {
            src_addr: eth(self.mac),
            dst_addr: eth(dst),
            ethertype: EthernetProtocol::Arp,
        };
        out.clear();
        out.resize(er.buffer_len() + arp.buffer_len(), 0);
        let mut f = EthernetFrame::new_unchecked(&mut out[..]);
        er.emit(&mut f);
        arp.emit(&mut ArpPacket::new_unchecked(f.payload_mut()));
    }

    /// Look at a frame from the underlay. ARP for our address is answered (and
    /// its sender learned), ARP replies to us are learned, ICMP echo to our
    /// address is answered; anything else is [`Handled::NotOurs`].
    pub fn handle(&mut self, frame: &[u8], now_ms: u64, out: &mut Vec<u8>) -> Handled {
        let Ok(f) = EthernetFrame::new_checked(frame) else {
            return Handled::NotOurs;
        };
        match f.ethertype() {
            EthernetProtocol::Arp => self.handle_arp(f.payload(), now_ms, out),
            EthernetProtocol::Ipv4 => self.handle_ipv4(&f, out),
            _ => Handled::NotOurs,
        }
    }

    fn handle_arp(&mut self, payload: &[u8], now_ms: u64, out: &mut Vec<u8>) -> Handled {
        let Ok(p) = ArpPacket::new_checked(payload) else {
            return Handled::NotOurs;
        };
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) = ArpRepr::parse(&p)
        else {
            return Handled::NotOurs;
        };
        if target_protocol_addr != self.ip {
            return Handled::NotOurs;
        }
        let sender_ip = source_protocol_addr;
        let changed = self.learn(sender_ip, source_hardware_addr.0, now_ms);
        if operation == ArpOperation::Request {
            let reply = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: eth(self.mac),
                source_protocol_addr: self.ip,
                target_hardware_addr: source_hardware_addr,
                target_protocol_addr: source_protocol_addr,
            };
            self.emit_arp(&reply, source_hardware_addr.0, out);
            return Handled::Replied { learned: changed };
        }
        if changed {
            Handled::Learned
        } else {
            Handled::Consumed
        }
    }

    fn handle_ipv4(&self, f: &EthernetFrame<&[u8]>, out: &mut Vec<u8>) -> Handled {
        let caps = ChecksumCapabilities::default();
        let Ok(p) = Ipv4Packet::new_checked(f.payload()) else {
            return Handled::NotOurs;
        };
        let Ok(ip) = Ipv4Repr::parse(&p, &caps) else {
            return Handled::NotOurs;
        };
        if ip.dst_addr != self.ip || ip.next_header != IpProtocol::Icmp {
            return Handled::NotOurs;
        }
        let Ok(icmp) = Icmpv4Packet::new_checked(p.payload()) else {
            return Handled::Consumed;
        };
        let Ok(Icmpv4Repr::EchoRequest { ident, seq_no, data }) = Icmpv4Repr::parse(&icmp, &caps) else {
            return Handled::Consumed;
        };
        let reply = Icmpv4Repr::EchoReply { ident, seq_no, data };
        let ipr = Ipv4Repr {
            src_addr: ip.dst_addr,
            dst_addr: ip.src_addr,
            next_header: IpProtocol::Icmp,
            payload_len: reply.buffer_len(),
            hop_limit: 64,
        };
        let er = EthernetRepr {
            src_addr: eth(self.mac),
            dst_addr: f.src_addr(),
            ethertype: EthernetProtocol::Ipv4,
        };
        out.clear();
        out.resize(er.buffer_len() + ipr.buffer_len() + reply.buffer_len(), 0);
        let mut ef = EthernetFrame::new_unchecked(&mut out[..]);
        er.emit(&mut ef);
        let mut ipp = Ipv4Packet::new_unchecked(ef.payload_mut());
        ipr.emit(&mut ipp, &caps);
        reply.emit(&mut Icmpv4Packet::new_unchecked(ipp.payload_mut()), &caps);
        Handled::Replied { learned: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{icmp4_echo, MAC_A, MAC_B};
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    const ME: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const MY_MAC: [u8; 6] = [2, 0xee, 0, 0, 0, 1];

    fn arp(op: u16, smac: [u8; 6], sip: Ipv4Addr, tip: Ipv4Addr) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&if op == 1 { [0xff; 6] } else { MY_MAC });
        f.extend_from_slice(&smac);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, op as u8]);
        f.extend_from_slice(&smac);
        f.extend_from_slice(&sip.octets());
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&tip.octets());
        f
    }

    #[test]
    fn answers_arp_for_its_address_and_learns_the_asker() {
        let mut v = Vtep::new(ME, MY_MAC);
        let mut out = Vec::new();
        assert_eq!(
            v.handle(&arp(1, MAC_B, PEER, ME), 0, &mut out),
            Handled::Replied { learned: true }
        );
        let p = ArpPacket::new_checked(&out[14..]).unwrap();
        assert_eq!(p.operation(), ArpOperation::Reply);
        assert_eq!(p.source_hardware_addr(), &MY_MAC);
        assert_eq!(&out[..6], &MAC_B);
        assert_eq!(v.lookup(PEER, 10), Some(MAC_B));
        assert_eq!(
            v.handle(&arp(1, MAC_B, PEER, ME), 20, &mut out),
            Handled::Replied { learned: false },
            "asked again by the same MAC: nothing to revalidate"
        );
        // ARP for someone else is not ours.
        assert_eq!(
            v.handle(&arp(1, MAC_B, PEER, Ipv4Addr::new(198, 18, 0, 9)), 0, &mut out),
            Handled::NotOurs
        );
    }

    #[test]
    fn resolves_neighbours_with_retry_aging_and_moves() {
        let mut v = Vtep::new(ME, MY_MAC);
        v.aging_ms = 1000;
        let mut out = Vec::new();
        assert!(v.request(PEER, 0, &mut out));
        let p = ArpPacket::new_checked(&out[14..]).unwrap();
        assert_eq!(p.operation(), ArpOperation::Request);
        assert_eq!(p.target_protocol_addr(), &PEER.octets());
        // Re-asked after 25, 50, 100, ... ms, then once a second.
        let mut t = 0;
        let mut gaps = Vec::new();
        for now in 1..=4000 {
            if v.request(PEER, now, &mut out) {
                gaps.push(now - t);
                t = now;
            }
        }
        assert_eq!(gaps, [25, 50, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(v.neighbors()[0].asked, 9);
        assert!(!v.request(PEER, 4574, &mut out), "not before its interval");
        assert!(v.request(PEER, 4575, &mut out), "retried");
        assert_eq!(
            v.handle(&arp(2, MAC_A, PEER, ME), 5100, &mut out),
            Handled::Learned
        );
        assert_eq!(v.lookup(PEER, 5200), Some(MAC_A));
        assert_eq!(v.neighbors()[0].asked, 0, "answered");
        assert!(!v.request(PEER, 5200, &mut out));
        assert_eq!(
            v.handle(&arp(2, MAC_A, PEER, ME), 5300, &mut out),
            Handled::Consumed,
            "same MAC: no change"
        );
        assert_eq!(
            v.handle(&arp(2, MAC_B, PEER, ME), 5400, &mut out),
            Handled::Learned,
            "moved"
        );
        assert_eq!(v.lookup(PEER, 6500), None, "aged out");
        assert!(v.request(PEER, 6500, &mut out), "re-resolved");
    }

    #[test]
    fn answers_ping_and_bounds_the_table() {
        let mut v = Vtep::new(ME, MY_MAC);
        let mut req = icmp4_echo(7, 9);
        req[30..34].copy_from_slice(&ME.octets());
        // Fix the IPv4 header checksum after changing the destination.
        req[24] = 0;
        req[25] = 0;
        let mut sum = 0u32;
        for i in (14..34).step_by(2) {
            sum += u16::from_be_bytes([req[i], req[i + 1]]) as u32;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        req[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        let mut out = Vec::new();
        assert_eq!(v.handle(&req, 0, &mut out), Handled::Replied { learned: false });
        let s = SlicedPacket::from_ethernet(&out).unwrap();
        let Some(NetSlice::Ipv4(ip)) = s.net else { panic!() };
        assert_eq!(ip.header().source_addr(), ME);
        let Some(TransportSlice::Icmpv4(icmp)) = s.transport else {
            panic!()
        };
        assert_eq!(icmp.type_u8(), 0, "echo reply");
        v.max_neigh = 2;
        for i in 0..5u8 {
            v.set_neighbor(Ipv4Addr::new(198, 18, 1, i), [2, 0, 0, 0, 0, i], i as u64);
        }
        assert_eq!(v.neighbors().len(), 2);
    }

    #[test]
    fn a_fixed_neighbour_never_ages_and_arp_does_not_move_it() {
        let mut v = Vtep::new(ME, MY_MAC);
        v.aging_ms = 1000;
        v.max_neigh = 1;
        let mut out = Vec::new();
        assert!(v.set_fixed(PEER, MAC_A, 0));
        assert_eq!(v.lookup(PEER, 1_000_000), Some(MAC_A), "never ages");
        assert!(!v.request(PEER, 1_000_000, &mut out), "never asked for");
        assert_eq!(
            v.handle(&arp(2, MAC_B, PEER, ME), 10, &mut out),
            Handled::Consumed
        );
        assert_eq!(v.lookup(PEER, 20), Some(MAC_A), "ARP does not move it");
        // Learned entries fill the table without evicting it.
        v.set_neighbor(Ipv4Addr::new(198, 18, 1, 1), MAC_B, 30);
        v.set_neighbor(Ipv4Addr::new(198, 18, 1, 2), MAC_B, 40);
        assert_eq!(v.lookup(PEER, 50), Some(MAC_A));
        assert_eq!(v.neighbors().len(), 2);
        assert!(v.remove_fixed(PEER));
        assert!(!v.remove_fixed(PEER));
        assert_eq!(v.lookup(PEER, 60), None);
    }
}
