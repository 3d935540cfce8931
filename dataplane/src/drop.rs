//! Why a packet was dropped. Every drop on the packet path is counted under one of these.

use std::fmt;

macro_rules! drop_reasons {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// The reason a packet was dropped; counted per PMD thread.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $(#[doc = $doc] $variant,)*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons (size of a counter array).
            pub const COUNT: usize = Self::ALL.len();

            /// Stable snake_case name, used in stats output and metrics labels.
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }
        }
    };
}

drop_reasons! {
    TruncatedEth => "truncated_eth", "Frame shorter than an Ethernet header.";
    InvalidSrcMac => "invalid_src_mac", "Source MAC all-zero or multicast/broadcast (never learned).";
    VlanTruncated => "vlan_truncated", "A VLAN tag cut short by the end of the frame.";
    VlanTooManyTags => "vlan_too_many_tags", "More than two VLAN tags.";
    MalformedArp => "malformed_arp", "ARP packet too short, or not Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4).";
    MalformedIpv4 => "malformed_ipv4", "IPv4 header invalid or truncated (version, IHL), or total length shorter than the header or beyond the frame.";
    MalformedIpv6 => "malformed_ipv6", "IPv6 header, payload length (0 or beyond the frame), extension header or option TLV invalid or truncated.";
    MalformedTcp => "malformed_tcp", "TCP header truncated, or data offset below 5 or beyond the segment.";
    MalformedUdp => "malformed_udp", "UDP header truncated, or its length differs from the IP payload's.";
    MalformedIcmp => "malformed_icmp", "ICMP or ICMPv6 header truncated.";
    MalformedL4 => "malformed_l4", "An L4 rewrite found no room for the header it rewrites.";
    GeneveMalformed => "geneve_malformed", "Geneve outer headers or header invalid.";
    GeneveVersion => "geneve_version", "Geneve version is not 0.";
    GeneveOptLen => "geneve_opt_len", "Geneve option lengths run past the header or packet.";
    GeneveCritOpt => "geneve_crit_opt", "Geneve option with the critical bit that the option map does not know (RFC 8926 3.5).";
    GeneveProtocol => "geneve_protocol", "Geneve payload is not Ethernet (0x6558).";
    GeneveOam => "geneve_oam", "Geneve OAM frame (O bit): for the tunnel endpoint, never a tenant; counted and consumed (rvs runs no OAM protocol).";
    NoTunnelPort => "no_tunnel_port", "Geneve to our address from a remote (or with a VNI) no tunnel port is configured for.";
    NoHeadroom => "no_headroom", "Not enough headroom to push a header.";
    ActionMismatch => "action_mismatch", "An action does not fit the frame (pop VLAN on an untagged frame, IPv4 rewrite of a non-IPv4 frame).";
    Action => "action", "A flow's actions said drop.";
    UpcallFailed => "upcall_failed", "The upcall handler could not translate the packet.";
    RecircDepth => "recirc_depth", "Too many recirculations of one packet.";
    TtlExceeded => "ttl_exceeded", "dec_ttl found a TTL (hop limit) of 0 or 1: the packet went no further in that action list (OVS sends it to the controller as invalid_ttl).";
    Controller => "controller", "A rule sent a copy of the packet to the controller (PACKET_IN), and no OpenFlow connection of the bridge could take it: none connected, or each one's queue of packet-ins full (the packet itself goes on).";
    XlateDepth => "xlate_depth", "Translation went through too many resubmits or patch ports (a loop).";
    NoTunnelRoute => "no_tunnel_route", "No route or neighbour for a tunnel's remote IP.";
    NoPort => "no_port", "Output to a port that does not exist.";
    TxError => "tx_error", "The port could not send the frame.";
    Oversize => "oversize", "Frame larger than the port's receive buffer: dropped whole, never truncated.";
    HeadOnly => "upcall_head_only", "A packet too big for the slow path (a GSO super-frame, a jumbo frame) missed the kernel's flows: its headers were translated and its flow installed, the packet itself dropped (the next one takes the kernel flow).";
    UpcallLost => "upcall_lost", "The kernel datapath could not hand a miss to userspace (no daemon listening, or its event ring full): dropped in the kernel.";
    CtRefused => "ct_refused", "A ct(commit) found the packet's zone at its limit, or the connection table full of answered connections (an unanswered one is dropped to make room first, as the kernel's early drop): the new connection was refused and its packet dropped. Established connections are not affected.";
    UpcallLimit => "upcall_limit", "A miss from a port that had used up its share of its PMD's time for upcalls (a flood of new flows or MACs): dropped without a translation, so the PMD keeps forwarding the flows it has cached (OVS's kernel datapath counts these as lost).";
    PortConfig => "port_config", "The input port's OpenFlow configuration (PORT_MOD: port_down or no_recv) refuses what it receives.";
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A plain counter array indexed by [`DropReason`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropCounters(pub [u64; DropReason::COUNT]);

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters([0; DropReason::COUNT])
    }
}

impl DropCounters {
    /// Count one drop.
    #[inline]
    pub fn inc(&mut self, r: DropReason) {
        self.0[r as usize] += 1;
    }
    /// Count `n` drops.
    #[inline]
    pub fn add(&mut self, r: DropReason, n: u64) {
        self.0[r as usize] += n;
    }
    /// Count of one reason.
    pub fn get(&self, r: DropReason) -> u64 {
        self.0[r as usize]
    }
    /// Sum of all reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    /// Non-zero counters with their names.
    pub fn nonzero(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|r| (*r, self.get(*r)))
            .filter(|(_, n)| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert!(names.iter().all(|n| n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn counters_index_by_reason() {
        let mut c = DropCounters::default();
        c.inc(DropReason::GeneveCritOpt);
        c.inc(DropReason::GeneveCritOpt);
        c.inc(DropReason::TruncatedEth);
        assert_eq!(c.get(DropReason::GeneveCritOpt), 2);
        assert_eq!(c.total(), 3);
        assert_eq!(c.nonzero().count(), 2);
    }
}
