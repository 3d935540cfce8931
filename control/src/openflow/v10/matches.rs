//! OpenFlow 1.0's fixed `ofp10_match` (40 bytes, wildcard bits) and OVS's
//! `nx_match` (NXM TLVs with a length beside them), to and from a rule's
//! [`Match`]. A match the fixed form cannot hold (registers, tunnel ids,
//! IPv6, masks on MACs or ports, ...) needs the `nx_match` flow format.

use crate::ofp::{Match, OfField};
use crate::openflow::error::OfpError;
use crate::openflow::oxm::{decode_fields, encode_fields, Names};
use crate::openflow::wire::{Put, Reader};

/// Size of an `ofp10_match`.
pub const MATCH10_LEN: usize = 40;

const FW_IN_PORT: u32 = 1 << 0;
const FW_DL_VLAN: u32 = 1 << 1;
const FW_DL_SRC: u32 = 1 << 2;
const FW_DL_DST: u32 = 1 << 3;
const FW_DL_TYPE: u32 = 1 << 4;
const FW_NW_PROTO: u32 = 1 << 5;
const FW_TP_SRC: u32 = 1 << 6;
const FW_TP_DST: u32 = 1 << 7;
const FW_NW_SRC_SHIFT: u32 = 8;
const FW_NW_DST_SHIFT: u32 = 14;
const FW_DL_VLAN_PCP: u32 = 1 << 20;
const FW_NW_TOS: u32 = 1 << 21;
const FW_ALL: u32 = (1 << 22) - 1;
/// `dl_vlan` of "no 802.1Q header".
const VLAN_NONE: u16 = 0xffff;
const CFI: u128 = 0x1000;

fn mac(b: [u8; 6]) -> u128 {
    b.iter().fold(0u128, |a, x| a << 8 | *x as u128)
}

fn mac_bytes(v: u128) -> [u8; 6] {
    let b = (v as u64).to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// The mask of an address whose `n` low bits are wildcarded (32+: all).
fn prefix_mask(n: u32) -> u128 {
    if n >= 32 {
        0
    } else {
        (u32::MAX << n) as u128
    }
}

/// Decode an `ofp10_match`. As OVS, fields whose protocol the match does
/// not name are ignored (1.0 had no prerequisite errors).
pub fn decode_match10(r: &mut Reader<'_>) -> Result<Match, OfpError> {
    let wc = r.u32()? & FW_ALL;
    let in_port = r.u16()?;
    let dl_src = r.array::<6>()?;
    let dl_dst = r.array::<6>()?;
    let dl_vlan = r.u16()?;
    let pcp = r.u8()?;
    r.skip(1)?;
    let dl_type = r.u16()?;
    let nw_tos = r.u8()?;
    let nw_proto = r.u8()?;
    r.skip(2)?;
    let nw_src = r.u32()?;
    let nw_dst = r.u32()?;
    let tp_src = r.u16()?;
    let tp_dst = r.u16()?;
    let on = |bit: u32| wc & bit == 0;
    let mut m = Match::any();
    if on(FW_IN_PORT) {
        m.set_exact(OfField::InPort, in_port as u128);
    }
    if on(FW_DL_SRC) {
        m.set_exact(OfField::DlSrc, mac(dl_src));
    }
    if on(FW_DL_DST) {
        m.set_exact(OfField::DlDst, mac(dl_dst));
    }
    if on(FW_DL_VLAN) && dl_vlan == VLAN_NONE {
        m.set_exact(OfField::VlanTci, 0);
    } else {
        let mut mask = 0u128;
        if on(FW_DL_VLAN_PCP) {
            mask |= 0xe000 | CFI;
        }
        if on(FW_DL_VLAN) {
            mask |= 0x0fff | CFI;
        }
        let tci = (dl_vlan as u128 & 0xfff) | ((pcp as u128) << 13 & 0xe000) | CFI;
        if mask != 0 {
            m.set(OfField::VlanTci, tci, mask);
        }
    }
    let ty = on(FW_DL_TYPE).then_some(dl_type);
    if let Some(t) = ty {
        m.set_exact(OfField::DlType, t as u128);
    }
    let (ip4, ip6, arp) = (ty == Some(0x0800), ty == Some(0x86dd), ty == Some(0x0806));
    if ip4 || arp {
        let src = prefix_mask(wc >> FW_NW_SRC_SHIFT & 0x3f);
        let dst = prefix_mask(wc >> FW_NW_DST_SHIFT & 0x3f);
        if src != 0 {
            m.set(OfField::NwSrc, nw_src as u128, src);
        }
        if dst != 0 {
            m.set(OfField::NwDst, nw_dst as u128, dst);
        }
    }
    if arp && on(FW_NW_PROTO) {
        m.set_exact(OfField::ArpOp, nw_proto as u128);
    }
    if ip4 || ip6 {
        if on(FW_NW_TOS) {
            m.set(OfField::NwTos, nw_tos as u128, 0xfc);
        }
        if on(FW_NW_PROTO) {
            m.set_exact(OfField::NwProto, nw_proto as u128);
            if matches!(nw_proto, 1 | 6 | 17 | 132 | 58) {
                if on(FW_TP_SRC) {
                    m.set_exact(OfField::TpSrc, tp_src as u128);
                }
                if on(FW_TP_DST) {
                    m.set_exact(OfField::TpDst, tp_dst as u128);
                }
            }
        }
    }
    Ok(m)
}

/// Append `m` as an `ofp10_match`; fails (with nothing appended) when 1.0's
/// fixed match cannot say it.
pub fn encode_match10(b: &mut Vec<u8>, m: &Match) -> Result<(), OfpError> {
    let bad = Err(OfpError::BAD_MATCH_FIELD);
    let exact = |f: OfField| -> Result<Option<u128>, OfpError> {
        match m.get(f) {
            (_, 0) => Ok(None),
            (v, mask) if mask == f.max() => Ok(Some(v)),
            _ => Err(OfpError::BAD_MATCH_MASK),
        }
    };
    let mut wc = FW_ALL;
    for f in OfField::all() {
        let allowed = matches!(
            f,
            OfField::InPort
                | OfField::DlSrc
                | OfField::DlDst
                | OfField::VlanTci
                | OfField::DlType
                | OfField::NwTos
                | OfField::NwProto
                | OfField::ArpOp
                | OfField::NwSrc
                | OfField::NwDst
                | OfField::TpSrc
                | OfField::TpDst
        );
        if m.has(f) && !allowed {
            return bad;
        }
    }
    let in_port = exact(OfField::InPort)?;
    let dl_src = exact(OfField::DlSrc)?;
    let dl_dst = exact(OfField::DlDst)?;
    let dl_type = exact(OfField::DlType)?;
    let proto = exact(OfField::NwProto)?;
    let arp_op = exact(OfField::ArpOp)?;
    let tp_src = exact(OfField::TpSrc)?;
    let tp_dst = exact(OfField::TpDst)?;
    if arp_op.is_some_and(|o| o > 0xff) || (arp_op.is_some() && proto.is_some()) {
        return bad;
    }
    clear(&mut wc, FW_IN_PORT, in_port.is_some());
    clear(&mut wc, FW_DL_SRC, dl_src.is_some());
    clear(&mut wc, FW_DL_DST, dl_dst.is_some());
    clear(&mut wc, FW_DL_TYPE, dl_type.is_some());
    clear(&mut wc, FW_NW_PROTO, proto.is_some() || arp_op.is_some());
    clear(&mut wc, FW_TP_SRC, tp_src.is_some());
    clear(&mut wc, FW_TP_DST, tp_dst.is_some());
    let (tos, tos_mask) = m.get(OfField::NwTos);
    match tos_mask {
        0 => {}
        0xfc => clear(&mut wc, FW_NW_TOS, true),
        _ => return Err(OfpError::BAD_MATCH_MASK),
    }
    let (vlan, pcp) = match m.get(OfField::VlanTci) {
        (_, 0) => (0, 0),
        (0, 0xffff) => {
            clear(&mut wc, FW_DL_VLAN | FW_DL_VLAN_PCP, true);
            (VLAN_NONE, 0)
        }
        (v, mask) if v & CFI != 0 && matches!(mask & !CFI, 0x0fff | 0xe000 | 0xefff) && mask & CFI != 0 => {
            clear(&mut wc, FW_DL_VLAN, mask & 0x0fff != 0);
            clear(&mut wc, FW_DL_VLAN_PCP, mask & 0xe000 != 0);
            ((v & 0xfff) as u16, (v >> 13) as u8 & 7)
        }
        _ => return Err(OfpError::BAD_MATCH_MASK),
    };
    let mut nw = [0u32; 2];
    for (i, (f, shift)) in [
        (OfField::NwSrc, FW_NW_SRC_SHIFT),
        (OfField::NwDst, FW_NW_DST_SHIFT),
    ]
    .into_iter()
    .enumerate()
    {
        let (v, mask) = m.get(f);
        let mask = mask as u32;
        // Only prefixes: the wildcard bits count the low bits left out.
        if mask.leading_ones() + mask.trailing_zeros() != 32 {
            return Err(OfpError::BAD_MATCH_MASK);
        }
        wc = (wc & !(0x3f << shift)) | (mask.trailing_zeros().min(32) << shift);
        nw[i] = v as u32;
    }
    b.put_u32(wc);
    b.put_u16(in_port.unwrap_or(0) as u16);
    b.extend_from_slice(&mac_bytes(dl_src.unwrap_or(0)));
    b.extend_from_slice(&mac_bytes(dl_dst.unwrap_or(0)));
    b.put_u16(vlan);
    b.put_u8(pcp);
    b.put_u8(0);
    b.put_u16(dl_type.unwrap_or(0) as u16);
    b.put_u8(tos as u8 & 0xfc);
    b.put_u8(proto.or(arp_op).unwrap_or(0) as u8);
    b.put_zeros(2);
    b.put_u32(nw[0]);
    b.put_u32(nw[1]);
    b.put_u16(tp_src.unwrap_or(0) as u16);
    b.put_u16(tp_dst.unwrap_or(0) as u16);
    Ok(())
}

fn clear(wc: &mut u32, bit: u32, on: bool) {
    if on {
        *wc &= !bit;
    }
}

/// NXM_NX_COOKIE (class 1, field 30): not a packet field but a filter on
/// the rules' cookies, in flow mods and flow stats requests.
const NXM_COOKIE: (u16, u8) = (1, 30);

/// A cookie and the bits of it that count.
pub type CookieFilter = (u64, u64);

/// Decode an `nx_match` of `len` bytes and the zeros padding it to 8: the
/// match, and the cookie filter when NXM_NX_COOKIE is in it.
pub fn decode_nx_match(r: &mut Reader<'_>, len: usize) -> Result<(Match, Option<CookieFilter>), OfpError> {
    let tlvs = r.bytes(len).map_err(|_| OfpError::BAD_MATCH_LEN)?;
    r.skip((8 - len % 8) % 8).map_err(|_| OfpError::BAD_MATCH_LEN)?;
    let mut fields = Vec::with_capacity(tlvs.len());
    let mut cookie = None;
    let mut t = Reader::new(tlvs, OfpError::BAD_MATCH_LEN);
    while !t.is_empty() {
        let h = t.u32()?;
        let id = ((h >> 16) as u16, ((h >> 9) & 0x7f) as u8);
        let masked = h & 0x100 != 0;
        let n = (h & 0xff) as usize;
        let value = t.bytes(n)?;
        if id != NXM_COOKIE {
            fields.extend_from_slice(&h.to_be_bytes());
            fields.extend_from_slice(value);
            continue;
        }
        if cookie.is_some() {
            return Err(OfpError::DUP_FIELD);
        }
        let mut v = Reader::new(value, OfpError::BAD_MATCH_LEN);
        if n != if masked { 16 } else { 8 } {
            return Err(OfpError::BAD_MATCH_LEN);
        }
        let c = v.u64()?;
        let m = if masked { v.u64()? } else { u64::MAX };
        cookie = Some((c & m, m));
    }
    Ok((decode_fields(&fields)?, cookie))
}

/// Append `m` as an `nx_match` padded to 8 bytes; returns its unpadded
/// length (what `match_len` says).
pub fn encode_nx_match(b: &mut Vec<u8>, m: &Match) -> Result<u16, OfpError> {
    let start = b.len();
    if let Err(e) = encode_fields(b, m, Names::Nxm) {
        b.truncate(start);
        return Err(e);
    }
    let len = b.len() - start;
    b.pad8_from(start);
    u16::try_from(len).map_err(|_| OfpError::BAD_MATCH_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ofp::parse_match;

    fn std_round_trip(text: &str) {
        let m = parse_match(text, &()).unwrap();
        let mut b = Vec::new();
        encode_match10(&mut b, &m).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(b.len(), MATCH10_LEN);
        let mut r = Reader::new(&b, OfpError::BAD_REQUEST_LEN);
        assert_eq!(decode_match10(&mut r).unwrap(), m, "{text}");
    }

    fn nx_round_trip(text: &str) {
        let m = parse_match(text, &()).unwrap();
        let mut b = Vec::new();
        let len = encode_nx_match(&mut b, &m).unwrap();
        assert_eq!(b.len() % 8, 0);
        let mut r = Reader::new(&b, OfpError::BAD_REQUEST_LEN);
        assert_eq!(decode_nx_match(&mut r, len as usize), Ok((m, None)), "{text}");
        assert!(r.is_empty());
    }

    #[test]
    fn the_fixed_match_holds_what_one_zero_can_say() {
        for t in [
            "",
            "in_port=3",
            "in_port=LOCAL",
            "dl_src=00:11:22:33:44:55,dl_dst=ff:ff:ff:ff:ff:ff",
            "dl_vlan=5",
            "dl_vlan=5,dl_vlan_pcp=3",
            "dl_vlan_pcp=3",
            "vlan_tci=0",
            "ip,nw_src=198.18.0.0/15,nw_dst=198.18.1.1",
            "ip,nw_tos=16",
            "tcp,tp_dst=22",
            "udp,tp_src=53",
            "icmp,icmp_type=8,icmp_code=0",
            "arp,arp_op=2,arp_tpa=198.18.0.1",
            "ipv6,nw_proto=17",
        ] {
            std_round_trip(t);
        }
    }

    #[test]
    fn what_one_zero_cannot_say_needs_nxm() {
        for t in [
            "reg0=1",
            "tun_id=5",
            "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00",
            "tcp,tp_dst=0x100/0xff00",
            "ip,nw_src=198.18.0.1/255.0.255.0",
            "ipv6,ipv6_src=2001:db8::1",
            "metadata=1",
        ] {
            let m = parse_match(t, &()).unwrap();
            let mut b = Vec::new();
            assert!(encode_match10(&mut b, &m).is_err(), "{t}");
            assert!(b.is_empty());
            nx_round_trip(t);
        }
    }

    #[test]
    fn nxm_matches_survive_the_wire() {
        for t in [
            "",
            "in_port=3",
            "in_port=LOCAL",
            "dl_vlan=1",
            "vlan_tci=0x1000/0x1000",
            "ip,nw_tos=0x10,nw_ttl=3",
            "ip,nw_ecn=2",
            "arp,arp_spa=198.18.0.1,arp_sha=00:11:22:33:44:55",
            "sctp,tp_dst=9",
            "icmp6,icmp_type=135,nd_target=2001:db8::1",
            "reg0=5,reg7=0x10/0xf0,metadata=0x1/0x1",
            "ct_state=+trk+est-rel,ct_zone=5,ct_mark=0x1/0x1",
            "tcp,tcp_flags=+syn-ack",
            "pkt_mark=7,tun_id=0x1389,tun_src=198.18.0.1",
        ] {
            nx_round_trip(t);
        }
    }

    #[test]
    fn fields_without_their_protocol_are_ignored_as_ovs_does() {
        // tp_dst=22 with nw_proto wildcarded, nw_src without dl_type.
        let mut b = vec![0u8; 40];
        let wc = FW_ALL & !(FW_TP_DST | FW_IN_PORT) & !(0x3f << FW_NW_SRC_SHIFT);
        b[..4].copy_from_slice(&wc.to_be_bytes());
        b[5] = 7;
        b[38..40].copy_from_slice(&22u16.to_be_bytes());
        let mut r = Reader::new(&b, OfpError::BAD_REQUEST_LEN);
        assert_eq!(
            decode_match10(&mut r).unwrap(),
            parse_match("in_port=7", &()).unwrap()
        );
    }
}
