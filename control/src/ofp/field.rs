//! [`OfField`]: the fields rules can match and actions can write, where each one
//! lives in an [`XKey`], and how its values are written.

use super::xkey::{XKey, ACTSET_WORD, METADATA_WORD, ND_WORD, REG_WORD};
use rvs_dataplane::flow::{Field, ARP_SHA, ARP_THA};
use rvs_dataplane::packet::TUN_MD_SLOTS;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A matchable/writable field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OfField {
    /// Ingress OpenFlow port.
    InPort,
    /// Ethernet source.
    DlSrc,
    /// Ethernet destination.
    DlDst,
    /// Ethernet type.
    DlType,
    /// VLAN TCI (PCP | CFI/present | VID).
    VlanTci,
    /// IPv4 source / ARP SPA.
    NwSrc,
    /// IPv4 destination / ARP TPA.
    NwDst,
    /// IP protocol.
    NwProto,
    /// IP TOS byte (DSCP in the top 6 bits).
    NwTos,
    /// IP TTL.
    NwTtl,
    /// Fragment bits.
    IpFrag,
    /// L4 source port / ICMP type.
    TpSrc,
    /// L4 destination port / ICMP code.
    TpDst,
    /// TCP flags.
    TcpFlags,
    /// ARP opcode.
    ArpOp,
    /// IPv6 source.
    Ipv6Src,
    /// IPv6 destination.
    Ipv6Dst,
    /// Tunnel id (VNI).
    TunId,
    /// Tunnel outer source.
    TunSrc,
    /// Tunnel outer destination.
    TunDst,
    /// Geneve option mapped to slot N.
    TunMetadata(u8),
    /// Register N (32 bits).
    Reg(u8),
    /// Pipeline metadata (64 bits).
    Metadata,
    /// ARP sender hardware address.
    ArpSha,
    /// ARP target hardware address.
    ArpTha,
    /// OpenFlow 1.3 VLAN id: VID with the OFPVID_PRESENT bit (0x1000), the
    /// low 13 bits of [`OfField::VlanTci`].
    VlanVid,
    /// OpenFlow 1.3 VLAN priority (the top 3 bits of the TCI).
    VlanPcp,
    /// IP ECN (the low 2 bits of the TOS byte).
    NwEcn,
    /// IP DSCP (the top 6 bits of the TOS byte, right-aligned).
    IpDscp,
    /// Packet mark (skb mark; pipeline metadata that rules may set).
    PktMark,
    /// IPv6 flow label.
    Ipv6Label,
    /// ND target address.
    NdTarget,
    /// ND source link-layer address.
    NdSll,
    /// ND target link-layer address.
    NdTll,
    /// The output port of the action set (`OFPP_UNSET` when it has none):
    /// pipeline metadata, set by `write_actions`/`clear_actions`.
    ActsetOutput,
    /// Connection tracking state after `ct()` (`+trk+est`...).
    CtState,
    /// Connection tracking zone after `ct()`.
    CtZone,
    /// The connection's mark.
    CtMark,
    /// The connection's label (bits 0..31: what rvs keeps).
    CtLabel,
}

/// `ct_state` flag names and bits (OVS's, in its printing order).
pub const CT_STATE_FLAGS: [(&str, u8); 8] = [
    ("new", 0x01),
    ("est", 0x02),
    ("rel", 0x04),
    ("rpl", 0x08),
    ("inv", 0x10),
    ("trk", 0x20),
    ("snat", 0x40),
    ("dnat", 0x80),
];

/// How a field's values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// Integer (decimal or 0x hex).
    Int,
    /// MAC address.
    Mac,
    /// IPv4 address.
    Ipv4,
    /// IPv6 address.
    Ipv6,
}

impl OfField {
    /// Every field in canonical (printing) order.
    pub fn all() -> impl Iterator<Item = OfField> {
        [OfField::InPort, OfField::TunId, OfField::TunSrc, OfField::TunDst]
            .into_iter()
            .chain((0..TUN_MD_SLOTS as u8).map(OfField::TunMetadata))
            .chain((0..8).map(OfField::Reg))
            .chain([
                OfField::Metadata,
                OfField::ActsetOutput,
                OfField::PktMark,
                OfField::CtState,
                OfField::CtZone,
                OfField::CtMark,
                OfField::CtLabel,
                OfField::DlSrc,
                OfField::DlDst,
                OfField::DlType,
                OfField::VlanTci,
                OfField::ArpOp,
                OfField::NwSrc,
                OfField::NwDst,
                OfField::ArpSha,
                OfField::ArpTha,
                OfField::Ipv6Src,
                OfField::Ipv6Dst,
                OfField::Ipv6Label,
                OfField::NwProto,
                OfField::NwTos,
                OfField::NwTtl,
                OfField::IpFrag,
                OfField::TpSrc,
                OfField::TpDst,
                OfField::TcpFlags,
                OfField::NdTarget,
                OfField::NdSll,
                OfField::NdTll,
            ])
    }

    /// Fields that are other views of bits [`OfField::all`] already covers
    /// (matches print them through the covering field).
    pub fn views() -> impl Iterator<Item = OfField> {
        [
            OfField::VlanVid,
            OfField::VlanPcp,
            OfField::NwEcn,
            OfField::IpDscp,
        ]
        .into_iter()
    }

    /// The ovs-ofctl match name.
    pub fn name(self) -> String {
        match self {
            OfField::TunMetadata(i) => format!("tun_metadata{i}"),
            OfField::Reg(i) => format!("reg{i}"),
            f => f.static_name().to_string(),
        }
    }

    fn static_name(self) -> &'static str {
        match self {
            OfField::InPort => "in_port",
            OfField::DlSrc => "dl_src",
            OfField::DlDst => "dl_dst",
            OfField::DlType => "dl_type",
            OfField::VlanTci => "vlan_tci",
            OfField::NwSrc => "nw_src",
            OfField::NwDst => "nw_dst",
            OfField::NwProto => "nw_proto",
            OfField::NwTos => "nw_tos",
            OfField::NwTtl => "nw_ttl",
            OfField::IpFrag => "ip_frag",
            OfField::TpSrc => "tp_src",
            OfField::TpDst => "tp_dst",
            OfField::TcpFlags => "tcp_flags",
            OfField::ArpOp => "arp_op",
            OfField::Ipv6Src => "ipv6_src",
            OfField::Ipv6Dst => "ipv6_dst",
            OfField::TunId => "tun_id",
            OfField::TunSrc => "tun_src",
            OfField::TunDst => "tun_dst",
            OfField::Metadata => "metadata",
            OfField::ArpSha => "arp_sha",
            OfField::ArpTha => "arp_tha",
            OfField::VlanVid => "vlan_vid",
            OfField::VlanPcp => "vlan_pcp",
            OfField::NwEcn => "nw_ecn",
            OfField::IpDscp => "ip_dscp",
            OfField::PktMark => "pkt_mark",
            OfField::Ipv6Label => "ipv6_label",
            OfField::NdTarget => "nd_target",
            OfField::NdSll => "nd_sll",
            OfField::NdTll => "nd_tll",
            OfField::ActsetOutput => "actset_output",
            OfField::CtState => "ct_state",
            OfField::CtZone => "ct_zone",
            OfField::CtMark => "ct_mark",
            OfField::CtLabel => "ct_label",
            OfField::TunMetadata(_) | OfField::Reg(_) => "",
        }
    }

    /// Field by its ovs-ofctl match name or NXM/OXM name (as in `load:` and
    /// `move:`), e.g. `reg3`, `NXM_NX_REG3`, `NXM_OF_ETH_DST`, `tun_metadata0`.
    pub fn from_name(s: &str) -> Option<OfField> {
        let numbered = |prefix: &str, below: u8| {
            s.strip_prefix(prefix)
                .and_then(|n| n.parse::<u8>().ok())
                .filter(|n| *n < below)
        };
        if let Some(n) = numbered("reg", 8).or_else(|| numbered("NXM_NX_REG", 8)) {
            return Some(OfField::Reg(n));
        }
        let slots = TUN_MD_SLOTS as u8;
        if let Some(n) = numbered("tun_metadata", slots).or_else(|| numbered("NXM_NX_TUN_METADATA", slots)) {
            return Some(OfField::TunMetadata(n));
        }
        Some(match s {
            "in_port" | "NXM_OF_IN_PORT" | "OXM_OF_IN_PORT" => OfField::InPort,
            "dl_src" | "eth_src" | "NXM_OF_ETH_SRC" | "OXM_OF_ETH_SRC" => OfField::DlSrc,
            "dl_dst" | "eth_dst" | "NXM_OF_ETH_DST" | "OXM_OF_ETH_DST" => OfField::DlDst,
            "dl_type" | "eth_type" | "NXM_OF_ETH_TYPE" | "OXM_OF_ETH_TYPE" => OfField::DlType,
            "vlan_tci" | "NXM_OF_VLAN_TCI" => OfField::VlanTci,
            "nw_src" | "ip_src" | "NXM_OF_IP_SRC" | "OXM_OF_IPV4_SRC" | "arp_spa" | "NXM_OF_ARP_SPA"
            | "OXM_OF_ARP_SPA" => OfField::NwSrc,
            "nw_dst" | "ip_dst" | "NXM_OF_IP_DST" | "OXM_OF_IPV4_DST" | "arp_tpa" | "NXM_OF_ARP_TPA"
            | "OXM_OF_ARP_TPA" => OfField::NwDst,
            "arp_sha" | "NXM_NX_ARP_SHA" | "OXM_OF_ARP_SHA" => OfField::ArpSha,
            "arp_tha" | "NXM_NX_ARP_THA" | "OXM_OF_ARP_THA" => OfField::ArpTha,
            "vlan_vid" | "OXM_OF_VLAN_VID" => OfField::VlanVid,
            "vlan_pcp" | "OXM_OF_VLAN_PCP" => OfField::VlanPcp,
            "nw_ecn" | "ip_ecn" | "NXM_NX_IP_ECN" | "OXM_OF_IP_ECN" => OfField::NwEcn,
            "ip_dscp" | "OXM_OF_IP_DSCP" => OfField::IpDscp,
            "nw_proto" | "ip_proto" | "NXM_OF_IP_PROTO" | "OXM_OF_IP_PROTO" => OfField::NwProto,
            "nw_tos" | "NXM_OF_IP_TOS" => OfField::NwTos,
            "nw_ttl" | "NXM_NX_IP_TTL" => OfField::NwTtl,
            "ip_frag" | "nw_frag" | "NXM_NX_IP_FRAG" => OfField::IpFrag,
            "tp_src" | "tcp_src" | "udp_src" | "sctp_src" | "NXM_OF_TCP_SRC" | "NXM_OF_UDP_SRC"
            | "OXM_OF_TCP_SRC" | "OXM_OF_UDP_SRC" | "OXM_OF_SCTP_SRC" => OfField::TpSrc,
            "tp_dst" | "tcp_dst" | "udp_dst" | "sctp_dst" | "NXM_OF_TCP_DST" | "NXM_OF_UDP_DST"
            | "OXM_OF_TCP_DST" | "OXM_OF_UDP_DST" | "OXM_OF_SCTP_DST" => OfField::TpDst,
            "tcp_flags" | "NXM_NX_TCP_FLAGS" => OfField::TcpFlags,
            "arp_op" | "NXM_OF_ARP_OP" => OfField::ArpOp,
            "ipv6_src" | "NXM_NX_IPV6_SRC" => OfField::Ipv6Src,
            "ipv6_dst" | "NXM_NX_IPV6_DST" => OfField::Ipv6Dst,
            "tun_id" | "tunnel_id" | "NXM_NX_TUN_ID" | "OXM_OF_TUNNEL_ID" => OfField::TunId,
            "tun_src" | "NXM_NX_TUN_IPV4_SRC" => OfField::TunSrc,
            "tun_dst" | "NXM_NX_TUN_IPV4_DST" => OfField::TunDst,
            "metadata" | "OXM_OF_METADATA" => OfField::Metadata,
            "pkt_mark" | "NXM_NX_PKT_MARK" => OfField::PktMark,
            "ipv6_label" | "NXM_NX_IPV6_LABEL" | "OXM_OF_IPV6_FLABEL" => OfField::Ipv6Label,
            "nd_target" | "NXM_NX_ND_TARGET" | "OXM_OF_IPV6_ND_TARGET" => OfField::NdTarget,
            "nd_sll" | "NXM_NX_ND_SLL" | "OXM_OF_IPV6_ND_SLL" => OfField::NdSll,
            "nd_tll" | "NXM_NX_ND_TLL" | "OXM_OF_IPV6_ND_TLL" => OfField::NdTll,
            "actset_output" | "ONFOXM_ET_ACTSET_OUTPUT" | "OXM_OF_ACTSET_OUTPUT" => OfField::ActsetOutput,
            "ct_state" | "NXM_NX_CT_STATE" => OfField::CtState,
            "ct_zone" | "NXM_NX_CT_ZONE" => OfField::CtZone,
            "ct_mark" | "NXM_NX_CT_MARK" => OfField::CtMark,
            "ct_label" | "NXM_NX_CT_LABEL" => OfField::CtLabel,
            _ => return None,
        })
    }

    /// Names accepted by [`from_name`](Self::from_name), for "did you mean".
    pub fn known_names() -> Vec<String> {
        let mut v: Vec<String> = OfField::all().chain(OfField::views()).map(|f| f.name()).collect();
        v.extend(
            [
                "dl_vlan",
                "dl_vlan_pcp",
                "arp_spa",
                "arp_tpa",
                "icmp_type",
                "icmp_code",
                "icmpv6_type",
                "icmpv6_code",
                "tcp_src",
                "tcp_dst",
                "udp_src",
                "udp_dst",
                "sctp_src",
                "sctp_dst",
                "ip_ecn",
            ]
            .map(String::from),
        );
        v
    }

    /// Where the field lives: one or two (high, low) bit ranges of an [`XKey`].
    pub fn parts(self) -> &'static [(usize, u32, u32)] {
        const fn p(f: Field) -> (usize, u32, u32) {
            f.place()
        }
        macro_rules! one {
            ($($f:expr),+) => {{
                const P: &[(usize, u32, u32)] = &[$($f),+];
                P
            }};
        }
        match self {
            OfField::InPort => one!(p(Field::InPort)),
            OfField::DlSrc => one!(p(Field::EthSrc)),
            OfField::DlDst => one!(p(Field::EthDst)),
            OfField::DlType => one!(p(Field::EthType)),
            OfField::VlanTci => one!(p(Field::VlanTci)),
            OfField::NwSrc => one!(p(Field::NwSrc)),
            OfField::NwDst => one!(p(Field::NwDst)),
            OfField::NwProto => one!(p(Field::NwProto)),
            OfField::NwTos => one!(p(Field::NwTos)),
            OfField::NwTtl => one!(p(Field::NwTtl)),
            OfField::IpFrag => one!(p(Field::NwFrag)),
            OfField::TpSrc => one!(p(Field::TpSrc)),
            OfField::TpDst => one!(p(Field::TpDst)),
            OfField::TcpFlags => one!(p(Field::TcpFlags)),
            OfField::ArpOp => one!(p(Field::ArpOp)),
            OfField::Ipv6Src => one!(p(Field::Ipv6SrcHi), p(Field::Ipv6SrcLo)),
            OfField::Ipv6Dst => one!(p(Field::Ipv6DstHi), p(Field::Ipv6DstLo)),
            OfField::TunId => one!(p(Field::TunId)),
            OfField::TunSrc => one!(p(Field::TunSrc)),
            OfField::TunDst => one!(p(Field::TunDst)),
            OfField::TunMetadata(i) => match i {
                0 => one!(p(Field::TunMd(0))),
                1 => one!(p(Field::TunMd(1))),
                2 => one!(p(Field::TunMd(2))),
                3 => one!(p(Field::TunMd(3))),
                4 => one!(p(Field::TunMd(4))),
                _ => one!(p(Field::TunMd(5))),
            },
            OfField::Reg(i) => match i & 7 {
                0 => one!((REG_WORD, 0, 32)),
                1 => one!((REG_WORD, 32, 32)),
                2 => one!((REG_WORD + 1, 0, 32)),
                3 => one!((REG_WORD + 1, 32, 32)),
                4 => one!((REG_WORD + 2, 0, 32)),
                5 => one!((REG_WORD + 2, 32, 32)),
                6 => one!((REG_WORD + 3, 0, 32)),
                _ => one!((REG_WORD + 3, 32, 32)),
            },
            OfField::Metadata => one!((METADATA_WORD, 0, 64)),
            OfField::ArpSha => one!((p(ARP_SHA).0, 0, 48)),
            OfField::ArpTha => one!((p(ARP_THA).0, 0, 48)),
            OfField::VlanVid => one!((p(Field::VlanTci).0, p(Field::VlanTci).1, 13)),
            OfField::VlanPcp => one!((p(Field::VlanTci).0, p(Field::VlanTci).1 + 13, 3)),
            OfField::NwEcn => one!((p(Field::NwTos).0, p(Field::NwTos).1, 2)),
            OfField::IpDscp => one!((p(Field::NwTos).0, p(Field::NwTos).1 + 2, 6)),
            OfField::PktMark => one!(p(Field::PktMark)),
            OfField::Ipv6Label => one!(p(Field::Ipv6Label)),
            OfField::NdTarget => one!((ND_WORD, 0, 64), (ND_WORD + 1, 0, 64)),
            OfField::NdSll => one!((ND_WORD + 2, 0, 48)),
            OfField::NdTll => one!((ND_WORD + 3, 0, 48)),
            OfField::ActsetOutput => one!((ACTSET_WORD, 0, 32)),
            OfField::CtState => one!(p(Field::CtState)),
            OfField::CtZone => one!(p(Field::CtZone)),
            OfField::CtMark => one!(p(Field::CtMark)),
            OfField::CtLabel => one!(p(Field::CtLabel)),
        }
    }

    /// Width in bits.
    pub fn width(self) -> u32 {
        match self {
            // The 12 TCP flag bits; the VLAN TCI is 16.
            OfField::TcpFlags => 12,
            _ => self.parts().iter().map(|p| p.2).sum(),
        }
    }

    /// All-ones value of the field's width.
    pub fn max(self) -> u128 {
        let w = self.width();
        if w >= 128 {
            u128::MAX
        } else {
            (1u128 << w) - 1
        }
    }

    /// Read the field.
    pub fn get(self, k: &XKey) -> u128 {
        self.parts()
            .iter()
            .fold(0u128, |acc, &p| (acc << p.2) | k.bits(p) as u128)
            & self.max()
    }

    /// Write the field.
    pub fn set(self, k: &mut XKey, v: u128) {
        let mut shift = 0;
        for &p in self.parts().iter().rev() {
            k.set_bits(p, (v >> shift) as u64);
            shift += p.2;
        }
    }

    /// How values are written.
    pub fn kind(self) -> ValueKind {
        match self {
            OfField::DlSrc
            | OfField::DlDst
            | OfField::ArpSha
            | OfField::ArpTha
            | OfField::NdSll
            | OfField::NdTll => ValueKind::Mac,
            OfField::NwSrc | OfField::NwDst | OfField::TunSrc | OfField::TunDst => ValueKind::Ipv4,
            OfField::Ipv6Src | OfField::Ipv6Dst | OfField::NdTarget => ValueKind::Ipv6,
            _ => ValueKind::Int,
        }
    }

    /// Parse a value of this field.
    pub fn parse_value(self, s: &str) -> Result<u128, String> {
        let v = match self.kind() {
            ValueKind::Mac => parse_mac(s).map(|m| m as u128),
            ValueKind::Ipv4 => s
                .parse::<Ipv4Addr>()
                .map(|a| u32::from(a) as u128)
                .map_err(|_| ()),
            ValueKind::Ipv6 => s.parse::<Ipv6Addr>().map(u128::from).map_err(|_| ()),
            ValueKind::Int => parse_int(s).ok_or(()),
        }
        .map_err(|_| format!("{s:?} is not a valid {} value", self.name()))?;
        if self == OfField::CtLabel && v > self.max() {
            return Err(format!(
                "{s:?}: rvs keeps ct_label bits 0..31 only (the flow key has room for 32 of its 128 bits)"
            ));
        }
        if v > self.max() {
            return Err(format!(
                "{s:?} is too large for {} ({} bits)",
                self.name(),
                self.width()
            ));
        }
        Ok(v)
    }

    /// Write a value of this field.
    pub fn fmt_value(self, v: u128) -> String {
        match self.kind() {
            ValueKind::Mac => fmt_mac(v as u64),
            ValueKind::Ipv4 => Ipv4Addr::from(v as u32).to_string(),
            ValueKind::Ipv6 => Ipv6Addr::from(v).to_string(),
            ValueKind::Int => match self {
                OfField::InPort
                | OfField::ActsetOutput
                | OfField::NwProto
                | OfField::NwTos
                | OfField::NwTtl
                | OfField::NwEcn
                | OfField::IpDscp
                | OfField::VlanPcp
                | OfField::VlanVid
                | OfField::TpSrc
                | OfField::TpDst
                | OfField::CtZone
                | OfField::ArpOp => v.to_string(),
                _ => format!("{v:#x}"),
            },
        }
    }
}

impl fmt::Display for OfField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Parse decimal or `0x` hex.
pub fn parse_int(s: &str) -> Option<u128> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) if !h.is_empty() => u128::from_str_radix(h, 16).ok(),
        _ => s.parse().ok(),
    }
}

/// Parse `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<u64, ()> {
    let mut v = 0u64;
    let mut n = 0;
    for part in s.split(':') {
        if part.is_empty() || part.len() > 2 {
            return Err(());
        }
        v = (v << 8) | u64::from_str_radix(part, 16).map_err(|_| ())?;
        n += 1;
    }
    if n == 6 {
        Ok(v)
    } else {
        Err(())
    }
}

/// Write a MAC held in the low 48 bits.
pub fn fmt_mac(v: u64) -> String {
    let b = v.to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[2], b[3], b[4], b[5], b[6], b[7]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ARP's hardware addresses share the IPv6 address words (an ARP packet
    /// has no IPv6 addresses).
    fn shared(f: OfField, g: OfField) -> bool {
        let pair = |a, b| (f == a && g == b) || (f == b && g == a);
        pair(OfField::ArpSha, OfField::Ipv6Src) || pair(OfField::ArpTha, OfField::Ipv6Dst)
    }

    #[test]
    fn every_field_round_trips_its_max_value_without_leaking() {
        for f in OfField::all().chain(OfField::views()) {
            let mut k = XKey::default();
            f.set(&mut k, u128::MAX);
            assert_eq!(f.get(&k), f.max(), "{f}");
            assert_eq!(OfField::from_name(&f.name()), Some(f));
            let s = f.fmt_value(f.max());
            assert_eq!(f.parse_value(&s), Ok(f.max()), "{f}: {s}");
        }
        for f in OfField::all() {
            let mut k = XKey::default();
            f.set(&mut k, u128::MAX);
            for g in OfField::all().filter(|g| *g != f && !shared(f, *g)) {
                assert_eq!(g.get(&k), 0, "{f} leaked into {g}");
            }
            assert_eq!(OfField::from_name(&f.name()), Some(f));
            let s = f.fmt_value(f.max());
            assert_eq!(f.parse_value(&s), Ok(f.max()), "{f}: {s}");
        }
    }

    #[test]
    fn values() {
        assert_eq!(
            OfField::DlDst.parse_value("02:00:00:00:00:ff"),
            Ok(0x0200_0000_00ff)
        );
        assert!(OfField::DlDst.parse_value("02:00:00:00:00").is_err());
        assert_eq!(OfField::NwSrc.parse_value("198.18.0.1"), Ok(0xc612_0001));
        assert!(OfField::TpDst
            .parse_value("70000")
            .unwrap_err()
            .contains("too large"));
        assert_eq!(OfField::from_name("NXM_NX_REG5"), Some(OfField::Reg(5)));
        assert_eq!(OfField::from_name("reg8"), None);
    }
}
