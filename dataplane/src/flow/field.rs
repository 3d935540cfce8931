//! The fields of a flow key and where each one lives in the word array.

/// A field of the flow key. Each field has a fixed place (word, shift, width);
/// 128-bit IPv6 addresses are split into a high and a low half.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// Datapath port the packet arrived on.
    InPort,
    /// Recirculation id (0 for a fresh packet).
    RecircId,
    /// Tunnel id (Geneve VNI in the low 24 bits).
    TunId,
    /// Outer IPv4 source of the tunnel.
    TunSrc,
    /// Outer IPv4 destination of the tunnel.
    TunDst,
    /// Tunnel flags (`TUN_FLAG_*`).
    TunFlags,
    /// Outer TOS.
    TunTos,
    /// Outer TTL.
    TunTtl,
    /// Bitmap of the tunnel metadata slots that a packet carried.
    TunMdPresent,
    /// Tunnel metadata slot 0..7 (a Geneve option mapped by the option map).
    TunMd(u8),
    /// Ethernet destination.
    EthDst,
    /// Ethernet type after any VLAN tags.
    EthType,
    /// Ethernet source.
    EthSrc,
    /// Outer VLAN TCI (with `VLAN_CFI` set when a tag is present).
    VlanTci,
    /// Inner VLAN TCI of a double-tagged (802.1ad) frame.
    VlanTci2,
    /// IP protocol, or the low byte of the ARP opcode.
    NwProto,
    /// IP TOS / traffic class.
    NwTos,
    /// IP TTL / hop limit.
    NwTtl,
    /// Fragment bits (`FRAG_ANY`, `FRAG_LATER`).
    NwFrag,
    /// IPv4 source (or ARP sender protocol address).
    NwSrc,
    /// IPv4 destination (or ARP target protocol address).
    NwDst,
    /// IPv6 source, high 64 bits.
    Ipv6SrcHi,
    /// IPv6 source, low 64 bits.
    Ipv6SrcLo,
    /// IPv6 destination, high 64 bits.
    Ipv6DstHi,
    /// IPv6 destination, low 64 bits.
    Ipv6DstLo,
    /// TCP/UDP source port, ICMP type.
    TpSrc,
    /// TCP/UDP destination port, ICMP code.
    TpDst,
    /// TCP flags (12 bits).
    TcpFlags,
    /// ARP opcode.
    ArpOp,
    /// The packet's mark (the skb mark where the datapath has one, else 0;
    /// rules may set it for later tables).
    PktMark,
    /// IPv6 flow label (20 bits).
    Ipv6Label,
    /// Connection tracking state (`conntrack::state` bits), after `ct()`.
    CtState,
    /// Connection tracking zone, after `ct()`.
    CtZone,
    /// The connection's mark, after `ct()`.
    CtMark,
    /// The connection's label, bits 0..31 (the only ones rvs keeps: a
    /// key word is a cost to every packet, and neutron and OVN's ACLs use
    /// `ct_mark` and label bit 0).
    CtLabel,
}

/// Where an ARP packet's sender hardware address is kept: the high IPv6
/// source word (ARP and IPv6 never meet in one packet; OVS shares fields the
/// same way for ND's link-layer addresses). The low 48 bits hold the MAC.
pub const ARP_SHA: Field = Field::Ipv6SrcHi;
/// Where an ARP packet's target hardware address is kept (see [`ARP_SHA`]).
pub const ARP_THA: Field = Field::Ipv6DstHi;

impl Field {
    /// Every field, in key order.
    pub const ALL: [Field; 40] = [
        Field::InPort,
        Field::RecircId,
        Field::TunId,
        Field::TunSrc,
        Field::TunDst,
        Field::TunFlags,
        Field::TunTos,
        Field::TunTtl,
        Field::TunMdPresent,
        Field::TunMd(0),
        Field::TunMd(1),
        Field::TunMd(2),
        Field::TunMd(3),
        Field::TunMd(4),
        Field::TunMd(5),
        Field::EthDst,
        Field::EthType,
        Field::EthSrc,
        Field::VlanTci,
        Field::VlanTci2,
        Field::NwProto,
        Field::NwTos,
        Field::NwTtl,
        Field::NwFrag,
        Field::NwSrc,
        Field::NwDst,
        Field::Ipv6SrcHi,
        Field::Ipv6SrcLo,
        Field::Ipv6DstHi,
        Field::Ipv6DstLo,
        Field::TpSrc,
        Field::TpDst,
        Field::TcpFlags,
        Field::ArpOp,
        Field::PktMark,
        Field::Ipv6Label,
        Field::CtState,
        Field::CtZone,
        Field::CtMark,
        Field::CtLabel,
    ];

    /// (word index, bit shift, width in bits) of the field in the key.
    #[inline]
    pub const fn place(self) -> (usize, u32, u32) {
        match self {
            Field::InPort => (0, 0, 32),
            Field::RecircId => (0, 32, 32),
            Field::TunId => (1, 0, 64),
            Field::TunSrc => (2, 0, 32),
            Field::TunDst => (2, 32, 32),
            Field::TunFlags => (3, 0, 16),
            Field::TunTos => (3, 16, 8),
            Field::TunTtl => (3, 24, 8),
            Field::TunMdPresent => (3, 32, 8),
            // Six slots (words 4..6); word 7 is the connection tracker's.
            Field::TunMd(i) => (4 + (i as usize % 6) / 2, (i as u32 & 1) * 32, 32),
            Field::EthDst => (8, 0, 48),
            Field::EthType => (8, 48, 16),
            Field::EthSrc => (9, 0, 48),
            Field::VlanTci => (10, 0, 16),
            Field::VlanTci2 => (10, 16, 16),
            Field::NwProto => (10, 32, 8),
            Field::NwTos => (10, 40, 8),
            Field::NwTtl => (10, 48, 8),
            Field::NwFrag => (10, 56, 8),
            Field::NwSrc => (11, 0, 32),
            Field::NwDst => (11, 32, 32),
            Field::Ipv6SrcHi => (12, 0, 64),
            Field::Ipv6SrcLo => (13, 0, 64),
            Field::Ipv6DstHi => (14, 0, 64),
            Field::Ipv6DstLo => (15, 0, 64),
            Field::TpSrc => (16, 0, 16),
            Field::TpDst => (16, 16, 16),
            Field::TcpFlags => (16, 32, 16),
            Field::ArpOp => (16, 48, 16),
            Field::PktMark => (17, 0, 32),
            Field::Ipv6Label => (17, 32, 20),
            Field::CtState => (3, 40, 8),
            Field::CtZone => (3, 48, 16),
            Field::CtMark => (7, 0, 32),
            Field::CtLabel => (7, 32, 32),
        }
    }

    /// All-ones value of the field's width.
    #[inline]
    pub const fn max(self) -> u64 {
        let (_, _, bits) = self.place();
        if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        }
    }

    /// Short name, as shown in datapath flow dumps.
    pub fn name(self) -> &'static str {
        match self {
            Field::InPort => "in_port",
            Field::RecircId => "recirc_id",
            Field::TunId => "tun_id",
            Field::TunSrc => "tun_src",
            Field::TunDst => "tun_dst",
            Field::TunFlags => "tun_flags",
            Field::TunTos => "tun_tos",
            Field::TunTtl => "tun_ttl",
            Field::TunMdPresent => "tun_md_present",
            Field::TunMd(0) => "tun_md0",
            Field::TunMd(1) => "tun_md1",
            Field::TunMd(2) => "tun_md2",
            Field::TunMd(3) => "tun_md3",
            Field::TunMd(4) => "tun_md4",
            Field::TunMd(_) => "tun_md5",
            Field::EthDst => "eth_dst",
            Field::EthType => "eth_type",
            Field::EthSrc => "eth_src",
            Field::VlanTci => "vlan_tci",
            Field::VlanTci2 => "vlan_tci2",
            Field::NwProto => "nw_proto",
            Field::NwTos => "nw_tos",
            Field::NwTtl => "nw_ttl",
            Field::NwFrag => "nw_frag",
            Field::NwSrc => "nw_src",
            Field::NwDst => "nw_dst",
            Field::Ipv6SrcHi => "ipv6_src_hi",
            Field::Ipv6SrcLo => "ipv6_src_lo",
            Field::Ipv6DstHi => "ipv6_dst_hi",
            Field::Ipv6DstLo => "ipv6_dst_lo",
            Field::TpSrc => "tp_src",
            Field::TpDst => "tp_dst",
            Field::TcpFlags => "tcp_flags",
            Field::ArpOp => "arp_op",
            Field::PktMark => "pkt_mark",
            Field::Ipv6Label => "ipv6_label",
            Field::CtState => "ct_state",
            Field::CtZone => "ct_zone",
            Field::CtMark => "ct_mark",
            Field::CtLabel => "ct_label",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_do_not_overlap() {
        let mut used = [0u64; super::super::KEY_WORDS];
        for f in Field::ALL {
            let (w, shift, bits) = f.place();
            let m = f.max() << shift;
            assert_eq!(used[w] & m, 0, "{f:?} overlaps another field");
            assert!(shift + bits <= 64);
            used[w] |= m;
        }
    }
}
