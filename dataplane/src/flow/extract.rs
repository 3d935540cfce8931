//! One-pass extraction of a [`FlowKey`] from a frame, using etherparse's
//! zero-copy header slices layer by layer (no allocation, bounds-checked).

use super::field::{Field, ARP_SHA, ARP_THA};
use super::key::{mac_to_u64, FlowKey, FRAG_ANY, FRAG_LATER, VLAN_CFI};
use crate::drop::DropReason;
use crate::packet::PacketMeta;
use etherparse::{
    ArpPacketSlice, Ethernet2HeaderSlice, Icmpv4Slice, Icmpv6Slice, Ipv4HeaderSlice, Ipv6ExtensionSlice,
    Ipv6ExtensionsSlice, Ipv6HeaderSlice, SingleVlanHeaderSlice, TcpHeaderSlice, UdpHeaderSlice,
};
use thiserror::Error;

const ETH_TYPE_VLAN: u16 = 0x8100;
const ETH_TYPE_QINQ: u16 = 0x88a8;
const ETH_TYPE_QINQ_OLD: u16 = 0x9100;
const ETH_TYPE_ARP: u16 = 0x0806;
const ETH_TYPE_IPV4: u16 = 0x0800;
const ETH_TYPE_IPV6: u16 = 0x86dd;
/// OVS's `FLOW_DL_TYPE_NONE`: an 802.3 frame with a length instead of a type.
const ETH_TYPE_NONE: u16 = 0x05ff;

/// Where the layers of an extracted frame start (byte offsets; 0 = absent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layers {
    /// Start of the L3 header (after Ethernet and VLAN tags).
    pub l3: u16,
    /// Start of the L4 header.
    pub l4: u16,
}

/// Why a frame could not be parsed. Each maps to a [`DropReason`]; together
/// they are the header-consistency half of the hostile-input policy (README).
#[derive(Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractError {
    /// Shorter than an Ethernet header.
    #[error("frame of {0} bytes is shorter than an Ethernet header")]
    TruncatedEth(usize),
    /// Source MAC all-zero or multicast (incl. broadcast): no station sends
    /// from it, and learning it would misdirect traffic (the Linux bridge
    /// drops these too).
    #[error("source MAC is zero or multicast")]
    InvalidSrcMac,
    /// A VLAN tag cut short by the end of the frame.
    #[error("truncated VLAN tag")]
    VlanTruncated,
    /// Three or more VLAN tags.
    #[error("more than two VLAN tags")]
    VlanTooManyTags,
    /// ARP too short, or not Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4).
    #[error("malformed ARP packet")]
    Arp,
    /// Bad or truncated IPv4 header, or a total length that does not fit.
    #[error("malformed IPv4 header")]
    Ipv4,
    /// Bad or truncated IPv6 header, payload length, extension header or option.
    #[error("malformed IPv6 header")]
    Ipv6,
    /// TCP header truncated, or a data offset outside the segment.
    #[error("malformed TCP header")]
    Tcp,
    /// UDP header truncated, or a length that disagrees with the IP packet.
    #[error("malformed UDP header")]
    Udp,
    /// ICMP/ICMPv6 header truncated.
    #[error("truncated ICMP header")]
    Icmp,
}

impl ExtractError {
    /// The drop counter this error is counted under.
    pub fn drop_reason(self) -> DropReason {
        match self {
            ExtractError::TruncatedEth(_) => DropReason::TruncatedEth,
            ExtractError::InvalidSrcMac => DropReason::InvalidSrcMac,
            ExtractError::VlanTruncated => DropReason::VlanTruncated,
            ExtractError::VlanTooManyTags => DropReason::VlanTooManyTags,
            ExtractError::Arp => DropReason::MalformedArp,
            ExtractError::Ipv4 => DropReason::MalformedIpv4,
            ExtractError::Ipv6 => DropReason::MalformedIpv6,
            ExtractError::Tcp => DropReason::MalformedTcp,
            ExtractError::Udp => DropReason::MalformedUdp,
            ExtractError::Icmp => DropReason::MalformedIcmp,
        }
    }
}

impl FlowKey {
    /// Extract the key of `frame` that arrived with `meta`. One pass over the
    /// headers, no allocation. Malformed frames give an error (count and drop them).
    #[inline]
    pub fn extract(frame: &[u8], meta: &PacketMeta) -> Result<(FlowKey, Layers), ExtractError> {
        let mut k = FlowKey::default();
        let layers = fill(&mut k, frame, meta)?;
        Ok((k, layers))
    }

    /// [`extract`](Self::extract) into an existing key (overwritten), which spares
    /// the hot path a copy of the 136-byte key.
    #[inline]
    pub fn extract_into(&mut self, frame: &[u8], meta: &PacketMeta) -> Result<Layers, ExtractError> {
        *self = FlowKey::default();
        fill(self, frame, meta)
    }
}

/// Fill a zeroed key from `frame`.
#[inline(always)]
fn fill(k: &mut FlowKey, frame: &[u8], meta: &PacketMeta) -> Result<Layers, ExtractError> {
    {
        let mut layers = Layers::default();
        k.set(Field::InPort, meta.in_port as u64);
        k.set(Field::RecircId, meta.recirc_id as u64);
        k.set(Field::PktMark, meta.mark as u64);
        if meta.ct.state != 0 {
            k.set(Field::CtState, meta.ct.state as u64);
            k.set(Field::CtZone, meta.ct.zone as u64);
            k.set(Field::CtMark, meta.ct.mark as u64);
            k.set(Field::CtLabel, meta.ct.label as u64);
        }
        if meta.tunnel.is_set() {
            set_tunnel(k, meta);
        }

        let eth =
            Ethernet2HeaderSlice::from_slice(frame).map_err(|_| ExtractError::TruncatedEth(frame.len()))?;
        let src = eth.source();
        if src[0] & 1 != 0 || src == [0; 6] {
            return Err(ExtractError::InvalidSrcMac);
        }
        k.set(Field::EthDst, mac_to_u64(eth.destination()));
        k.set(Field::EthSrc, mac_to_u64(src));
        let mut ty = eth.ether_type().0;
        let mut off = eth.slice().len();

        // Up to two VLAN tags (802.1Q, or 802.1ad outer + 802.1Q inner).
        let mut tags = 0;
        while matches!(ty, ETH_TYPE_VLAN | ETH_TYPE_QINQ | ETH_TYPE_QINQ_OLD) {
            if tags == 2 {
                return Err(ExtractError::VlanTooManyTags);
            }
            let tag =
                SingleVlanHeaderSlice::from_slice(&frame[off..]).map_err(|_| ExtractError::VlanTruncated)?;
            let raw = u16::from_be_bytes([tag.slice()[0], tag.slice()[1]]);
            // The DEI bit is replaced by "tag present", as OVS does.
            let tci = raw | VLAN_CFI;
            k.set(
                if tags == 0 {
                    Field::VlanTci
                } else {
                    Field::VlanTci2
                },
                tci as u64,
            );
            ty = tag.ether_type().0;
            off += 4;
            tags += 1;
        }
        if ty < 0x0600 {
            ty = ETH_TYPE_NONE;
        }
        k.set(Field::EthType, ty as u64);
        layers.l3 = off as u16;
        let l3 = &frame[off..];

        match ty {
            ETH_TYPE_IPV4 => extract_ipv4(k, &mut layers, l3, off)?,
            ETH_TYPE_IPV6 => extract_ipv6(k, &mut layers, l3, off)?,
            ETH_TYPE_ARP => extract_arp(k, l3)?,
            _ => {}
        }
        Ok(layers)
    }
}

fn set_tunnel(k: &mut FlowKey, meta: &PacketMeta) {
    let t = &meta.tunnel;
    k.set(Field::TunId, t.tun_id);
    k.set(Field::TunSrc, t.src as u64);
    k.set(Field::TunDst, t.dst as u64);
    k.set(Field::TunFlags, t.flags as u64);
    k.set(Field::TunTos, t.tos as u64);
    k.set(Field::TunTtl, t.ttl as u64);
    k.set(Field::TunMdPresent, t.md_present as u64);
    for (i, v) in t.md.iter().enumerate() {
        k.set(Field::TunMd(i as u8), *v as u64);
    }
}

#[inline]
fn extract_ipv4(k: &mut FlowKey, layers: &mut Layers, l3: &[u8], off: usize) -> Result<(), ExtractError> {
    let ip = Ipv4HeaderSlice::from_slice(l3).map_err(|_| ExtractError::Ipv4)?;
    let s = ip.slice();
    k.set(Field::NwSrc, u32::from_be_bytes(ip.source()) as u64);
    k.set(Field::NwDst, u32::from_be_bytes(ip.destination()) as u64);
    let proto = ip.protocol().0;
    k.set(Field::NwProto, proto as u64);
    k.set(Field::NwTos, s[1] as u64);
    k.set(Field::NwTtl, ip.ttl() as u64);
    let frag_off = ip.fragments_offset().value();
    let mut frag = 0;
    if frag_off != 0 {
        frag = FRAG_ANY | FRAG_LATER;
    } else if ip.more_fragments() {
        frag = FRAG_ANY;
    }
    k.set(Field::NwFrag, frag as u64);
    if frag & FRAG_LATER != 0 {
        return Ok(());
    }
    let hlen = s.len();
    // L4 ends where the IP packet says it ends (trailing Ethernet padding is
    // not L4); a total length shorter than the header or longer than the
    // frame is a lie.
    let end = ip.total_len() as usize;
    if end < hlen || end > l3.len() {
        return Err(ExtractError::Ipv4);
    }
    layers.l4 = (off + hlen) as u16;
    extract_l4(k, proto, &l3[hlen..end], false, frag != 0)
}

#[inline]
fn extract_ipv6(k: &mut FlowKey, layers: &mut Layers, l3: &[u8], off: usize) -> Result<(), ExtractError> {
    let ip = Ipv6HeaderSlice::from_slice(l3).map_err(|_| ExtractError::Ipv6)?;
    k.set_ipv6_src(ip.source_addr());
    k.set_ipv6_dst(ip.destination_addr());
    k.set(Field::NwTos, ip.traffic_class() as u64);
    k.set(Field::NwTtl, ip.hop_limit() as u64);
    k.set(Field::Ipv6Label, ip.flow_label().value() as u64);
    let hlen = ip.slice().len();
    // A payload length of 0 would be a jumbogram (RFC 2675), which no port
    // here can carry; beyond the frame is a lie.
    let plen = ip.payload_length() as usize;
    if plen == 0 || hlen + plen > l3.len() {
        return Err(ExtractError::Ipv6);
    }
    let payload = &l3[hlen..hlen + plen];
    let (exts, next, rest) =
        Ipv6ExtensionsSlice::from_slice(ip.next_header(), payload).map_err(|_| ExtractError::Ipv6)?;
    k.set(Field::NwProto, next.0 as u64);
    let mut frag = 0;
    for e in exts.clone() {
        match e {
            Ipv6ExtensionSlice::Fragment(f) => {
                if f.fragment_offset().value() != 0 {
                    frag = FRAG_ANY | FRAG_LATER;
                } else if f.more_fragments() {
                    frag = FRAG_ANY;
                }
            }
            Ipv6ExtensionSlice::HopByHop(h) | Ipv6ExtensionSlice::DestinationOptions(h) => {
                check_ipv6_options(h.payload())?
            }
            _ => {}
        }
    }
    k.set(Field::NwFrag, frag as u64);
    if frag & FRAG_LATER != 0 {
        return Ok(());
    }
    layers.l4 = (off + hlen + (payload.len() - rest.len())) as u16;
    extract_l4(k, next.0, rest, true, frag != 0)
}

/// The option TLVs of a hop-by-hop or destination-options header (after its
/// two fixed bytes) must end exactly at the header's end (RFC 8200 4.2).
fn check_ipv6_options(mut opts: &[u8]) -> Result<(), ExtractError> {
    while let Some(&ty) = opts.first() {
        if ty == 0 {
            // Pad1: a single byte.
            opts = &opts[1..];
            continue;
        }
        let len = *opts.get(1).ok_or(ExtractError::Ipv6)? as usize;
        opts = opts.get(2 + len..).ok_or(ExtractError::Ipv6)?;
    }
    Ok(())
}

/// `l4` is the IP payload after the extension headers; `fragment` is true
/// for a first fragment (later ones never get here), whose L4 length covers
/// the whole datagram rather than this packet.
#[inline]
fn extract_l4(k: &mut FlowKey, proto: u8, l4: &[u8], v6: bool, fragment: bool) -> Result<(), ExtractError> {
    match proto {
        6 => {
            // etherparse refuses a data offset below 5 or beyond the slice.
            let t = TcpHeaderSlice::from_slice(l4).map_err(|_| ExtractError::Tcp)?;
            k.set(Field::TpSrc, t.source_port() as u64);
            k.set(Field::TpDst, t.destination_port() as u64);
            let s = t.slice();
            k.set(Field::TcpFlags, (((s[12] & 0x0f) as u64) << 8) | s[13] as u64);
        }
        17 => {
            let u = UdpHeaderSlice::from_slice(l4).map_err(|_| ExtractError::Udp)?;
            let ulen = u.length() as usize;
            if ulen < 8 || (!fragment && ulen != l4.len()) {
                return Err(ExtractError::Udp);
            }
            k.set(Field::TpSrc, u.source_port() as u64);
            k.set(Field::TpDst, u.destination_port() as u64);
        }
        1 if !v6 => {
            let i = Icmpv4Slice::from_slice(l4).map_err(|_| ExtractError::Icmp)?;
            k.set(Field::TpSrc, i.type_u8() as u64);
            k.set(Field::TpDst, i.code_u8() as u64);
        }
        58 if v6 => {
            let i = Icmpv6Slice::from_slice(l4).map_err(|_| ExtractError::Icmp)?;
            k.set(Field::TpSrc, i.type_u8() as u64);
            k.set(Field::TpDst, i.code_u8() as u64);
        }
        _ => {}
    }
    Ok(())
}

/// ICMPv6 neighbour solicitation and advertisement.
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;
/// ND options carrying an Ethernet address (RFC 4861 4.6.1).
const ND_OPT_SOURCE_LINKADDR: u8 = 1;
const ND_OPT_TARGET_LINKADDR: u8 = 2;

/// The neighbour discovery fields of an NS/NA (OVS's `nd_target`, `nd_sll`,
/// `nd_tll`). They are not in [`FlowKey`] (too rare to cost every packet a
/// key word): translation reads them from the frame with [`nd_fields`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NdFields {
    /// Target address.
    pub target: u128,
    /// Source link-layer address option (low 48 bits; 0: absent).
    pub sll: u64,
    /// Target link-layer address option (low 48 bits; 0: absent).
    pub tll: u64,
}

/// The ND fields of `frame`, whose key [`FlowKey::extract`] gave; all zero
/// unless it is an NS or NA (ICMPv6 135/136, code 0). Read as OVS's
/// `parse_icmpv6` reads them: a short message or a malformed option ends the
/// walk with what was found so far; a repeated link-layer option clears all
/// three (OVS's "invalid"). Cheap for every other frame (the key says no).
pub fn nd_fields(frame: &[u8], key: &FlowKey) -> NdFields {
    let nd = key.get(Field::EthType) == ETH_TYPE_IPV6 as u64
        && key.get(Field::NwProto) == 58
        && matches!(
            key.get(Field::TpSrc) as u8,
            ND_NEIGHBOR_SOLICIT | ND_NEIGHBOR_ADVERT
        )
        && key.get(Field::TpDst) == 0;
    if !nd {
        return NdFields::default();
    }
    // Where the layers are (the key does not keep offsets).
    let layers = match FlowKey::extract(frame, &PacketMeta::default()) {
        Ok((_, l)) if l.l4 != 0 => l,
        _ => return NdFields::default(),
    };
    // The ICMPv6 message ends where the IPv6 payload does.
    let (l3, l4) = (layers.l3 as usize, layers.l4 as usize);
    let plen = frame
        .get(l3 + 4..l3 + 6)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) as usize);
    let end = (l3 + 40 + plen).min(frame.len());
    let body = frame.get(l4 + 8..end).unwrap_or_default();
    let Some(target) = body.get(..16) else {
        return NdFields::default();
    };
    let mut out = NdFields {
        target: u128::from_be_bytes(target.try_into().unwrap_or([0; 16])),
        ..NdFields::default()
    };
    let mut opts = &body[16..];
    while opts.len() >= 8 {
        let len = opts[1] as usize * 8;
        if len == 0 || len > opts.len() {
            break;
        }
        let mac = mac_to_u64([opts[2], opts[3], opts[4], opts[5], opts[6], opts[7]]);
        let slot = match (opts[0], len) {
            (ND_OPT_SOURCE_LINKADDR, 8) => Some(&mut out.sll),
            (ND_OPT_TARGET_LINKADDR, 8) => Some(&mut out.tll),
            _ => None,
        };
        if let Some(slot) = slot {
            if *slot != 0 {
                return NdFields::default();
            }
            *slot = mac;
        }
        opts = &opts[len..];
    }
    out
}

fn extract_arp(k: &mut FlowKey, l3: &[u8]) -> Result<(), ExtractError> {
    let a = ArpPacketSlice::from_slice(l3).map_err(|_| ExtractError::Arp)?;
    // Only Ethernet/IPv4 ARP exists on these links: anything else is a forgery.
    let s = a.slice();
    if s[0..2] != [0, 1] || s[2..4] != [0x08, 0x00] || a.hw_addr_size() != 6 || a.proto_addr_size() != 4 {
        return Err(ExtractError::Arp);
    }
    let op = a.operation().0;
    k.set(Field::ArpOp, op as u64);
    // OVS keeps the low byte of the opcode in nw_proto for ARP.
    k.set(Field::NwProto, (op & 0xff) as u64);
    let spa = a.sender_protocol_addr();
    let tpa = a.target_protocol_addr();
    k.set(
        Field::NwSrc,
        u32::from_be_bytes([spa[0], spa[1], spa[2], spa[3]]) as u64,
    );
    k.set(
        Field::NwDst,
        u32::from_be_bytes([tpa[0], tpa[1], tpa[2], tpa[3]]) as u64,
    );
    // An ARP packet has no IPv6 addresses: its hardware addresses live in
    // those words (see `ARP_SHA`), so the key does not grow for them.
    let mac = |m: &[u8]| m.try_into().map_or(0, mac_to_u64);
    k.set(ARP_SHA, mac(a.sender_hw_addr()));
    k.set(ARP_THA, mac(a.target_hw_addr()));
    Ok(())
}

#[cfg(test)]
mod tests;
