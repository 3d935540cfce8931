//! OXM (OpenFlow 1.3 match fields) and NXM (Nicira's, which OVS also sends
//! inside OpenFlow 1.3 matches and actions): which header names which
//! [`OfField`], and a rule's [`Match`] to and from OXM TLVs.

use super::error::OfpError;
use super::wire::{port_from13, port_to13, Put, Reader};
use crate::ofp::{Match, OfField};

/// OXM class of OpenFlow's basic fields.
pub const OFPXMC_BASIC: u16 = 0x8000;
/// NXM class 0 (`NXM_OF_*`).
pub const NXM_0: u16 = 0x0000;
/// NXM class 1 (`NXM_NX_*`).
pub const NXM_1: u16 = 0x0001;

/// An OXM/NXM header without its has-mask bit and length: (class, field).
pub type FieldId = (u16, u8);

/// What a header names: a field of rvs's, and how its value is written on
/// the wire when that differs from the field's own bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireField {
    /// The field.
    pub field: OfField,
    /// Value bytes on the wire.
    pub len: usize,
    /// An OpenFlow 1.3 port number (32-bit, reserved ports at 0xffffff00).
    pub port: bool,
}

const fn wf(field: OfField, len: usize) -> WireField {
    WireField {
        field,
        len,
        port: false,
    }
}

/// The field a header names (ICMP type/code and TCP/UDP/SCTP ports all
/// land in `tp_src`/`tp_dst`; which protocol is the match's `nw_proto`).
pub fn field_of(id: FieldId) -> Option<WireField> {
    use OfField::*;
    Some(match id {
        (OFPXMC_BASIC, 0) => WireField {
            field: InPort,
            len: 4,
            port: true,
        },
        (OFPXMC_BASIC, 2) => wf(Metadata, 8),
        (OFPXMC_BASIC, 3) => wf(DlDst, 6),
        (OFPXMC_BASIC, 4) => wf(DlSrc, 6),
        (OFPXMC_BASIC, 5) => wf(DlType, 2),
        (OFPXMC_BASIC, 6) => wf(VlanVid, 2),
        (OFPXMC_BASIC, 7) => wf(VlanPcp, 1),
        (OFPXMC_BASIC, 8) => wf(IpDscp, 1),
        (OFPXMC_BASIC, 9) => wf(NwEcn, 1),
        (OFPXMC_BASIC, 10) => wf(NwProto, 1),
        (OFPXMC_BASIC, 11) | (OFPXMC_BASIC, 22) => wf(NwSrc, 4),
        (OFPXMC_BASIC, 12) | (OFPXMC_BASIC, 23) => wf(NwDst, 4),
        (OFPXMC_BASIC, 13) | (OFPXMC_BASIC, 15) | (OFPXMC_BASIC, 17) => wf(TpSrc, 2),
        (OFPXMC_BASIC, 14) | (OFPXMC_BASIC, 16) | (OFPXMC_BASIC, 18) => wf(TpDst, 2),
        (OFPXMC_BASIC, 19) | (OFPXMC_BASIC, 29) => wf(TpSrc, 1),
        (OFPXMC_BASIC, 20) | (OFPXMC_BASIC, 30) => wf(TpDst, 1),
        (OFPXMC_BASIC, 21) => wf(ArpOp, 2),
        (OFPXMC_BASIC, 24) => wf(ArpSha, 6),
        (OFPXMC_BASIC, 25) => wf(ArpTha, 6),
        (OFPXMC_BASIC, 26) => wf(Ipv6Src, 16),
        (OFPXMC_BASIC, 27) => wf(Ipv6Dst, 16),
        (OFPXMC_BASIC, 28) => wf(Ipv6Label, 4),
        (OFPXMC_BASIC, 31) => wf(NdTarget, 16),
        (OFPXMC_BASIC, 32) => wf(NdSll, 6),
        (OFPXMC_BASIC, 33) => wf(NdTll, 6),
        (OFPXMC_BASIC, 38) => wf(TunId, 8),
        (NXM_0, 0) => WireField {
            field: InPort,
            len: 2,
            port: false,
        },
        (NXM_0, 1) => wf(DlDst, 6),
        (NXM_0, 2) => wf(DlSrc, 6),
        (NXM_0, 3) => wf(DlType, 2),
        (NXM_0, 4) => wf(VlanTci, 2),
        (NXM_0, 5) => wf(NwTos, 1),
        (NXM_0, 6) => wf(NwProto, 1),
        (NXM_0, 7) | (NXM_0, 16) => wf(NwSrc, 4),
        (NXM_0, 8) | (NXM_0, 17) => wf(NwDst, 4),
        (NXM_0, 9) | (NXM_0, 11) => wf(TpSrc, 2),
        (NXM_0, 10) | (NXM_0, 12) => wf(TpDst, 2),
        (NXM_0, 13) | (NXM_1, 21) => wf(TpSrc, 1),
        (NXM_0, 14) | (NXM_1, 22) => wf(TpDst, 1),
        (NXM_0, 15) => wf(ArpOp, 2),
        (NXM_1, n @ 0..=7) => wf(Reg(n), 4),
        (NXM_1, 16) => wf(TunId, 8),
        (NXM_1, 17) => wf(ArpSha, 6),
        (NXM_1, 18) => wf(ArpTha, 6),
        (NXM_1, 19) => wf(Ipv6Src, 16),
        (NXM_1, 20) => wf(Ipv6Dst, 16),
        (NXM_1, 23) => wf(NdTarget, 16),
        (NXM_1, 24) => wf(NdSll, 6),
        (NXM_1, 25) => wf(NdTll, 6),
        (NXM_1, 26) => wf(IpFrag, 1),
        (NXM_1, 27) => wf(Ipv6Label, 4),
        (NXM_1, 28) => wf(NwEcn, 1),
        (NXM_1, 29) => wf(NwTtl, 1),
        (NXM_1, 31) => wf(TunSrc, 4),
        (NXM_1, 32) => wf(TunDst, 4),
        (NXM_1, 33) => wf(PktMark, 4),
        (NXM_1, 34) => wf(TcpFlags, 2),
        (NXM_1, 105) => wf(CtState, 4),
        (NXM_1, 106) => wf(CtZone, 2),
        (NXM_1, 107) => wf(CtMark, 4),
        (NXM_1, 108) => wf(CtLabel, 16),
        _ => return None,
    })
}

/// The header OVS puts on a field in OpenFlow 1.3 (OXM where 1.3 has one,
/// else NXM). `proto`/`is_arp` choose among the aliases of `tp_*`/`nw_*`;
/// `None` when the field has no name on the wire here (tunnel metadata,
/// `actset_output`) or `tp_*` without a known protocol.
pub fn id_of(field: OfField, proto: Option<u8>, is_arp: bool) -> Option<(FieldId, WireField)> {
    use OfField::*;
    let id = match field {
        InPort => (OFPXMC_BASIC, 0),
        Metadata => (OFPXMC_BASIC, 2),
        DlDst => (OFPXMC_BASIC, 3),
        DlSrc => (OFPXMC_BASIC, 4),
        DlType => (OFPXMC_BASIC, 5),
        VlanVid => (OFPXMC_BASIC, 6),
        VlanPcp => (OFPXMC_BASIC, 7),
        IpDscp => (OFPXMC_BASIC, 8),
        NwEcn => (OFPXMC_BASIC, 9),
        NwProto => (OFPXMC_BASIC, 10),
        NwSrc if is_arp => (OFPXMC_BASIC, 22),
        NwDst if is_arp => (OFPXMC_BASIC, 23),
        NwSrc => (OFPXMC_BASIC, 11),
        NwDst => (OFPXMC_BASIC, 12),
        TpSrc | TpDst => {
            let src = field == TpSrc;
            let n = match proto? {
                6 => 13,
                17 => 15,
                132 => 17,
                1 => 19,
                58 => 29,
                _ => return None,
            };
            (OFPXMC_BASIC, if src { n } else { n + 1 })
        }
        ArpOp => (OFPXMC_BASIC, 21),
        ArpSha => (OFPXMC_BASIC, 24),
        ArpTha => (OFPXMC_BASIC, 25),
        Ipv6Src => (OFPXMC_BASIC, 26),
        Ipv6Dst => (OFPXMC_BASIC, 27),
        Ipv6Label => (OFPXMC_BASIC, 28),
        NdTarget => (OFPXMC_BASIC, 31),
        NdSll => (OFPXMC_BASIC, 32),
        NdTll => (OFPXMC_BASIC, 33),
        TunId => (OFPXMC_BASIC, 38),
        VlanTci => (NXM_0, 4),
        NwTos => (NXM_0, 5),
        Reg(n) => (NXM_1, n),
        IpFrag => (NXM_1, 26),
        NwTtl => (NXM_1, 29),
        TunSrc => (NXM_1, 31),
        TunDst => (NXM_1, 32),
        PktMark => (NXM_1, 33),
        TcpFlags => (NXM_1, 34),
        CtState => (NXM_1, 105),
        CtZone => (NXM_1, 106),
        CtMark => (NXM_1, 107),
        CtLabel => (NXM_1, 108),
        TunMetadata(_) | ActsetOutput => return None,
    };
    field_of(id).map(|w| (id, w))
}

/// The NXM header (the has-mask bit clear, length of the value) of a field
/// as actions name it (`reg_move`, `reg_load`, `learn`): class 0/1 where
/// the field has one, OXM otherwise.
pub fn nxm_header(field: OfField, proto: Option<u8>, is_arp: bool) -> Option<u32> {
    use OfField::*;
    let nx: Option<FieldId> = match field {
        InPort => Some((NXM_0, 0)),
        DlDst => Some((NXM_0, 1)),
        DlSrc => Some((NXM_0, 2)),
        DlType => Some((NXM_0, 3)),
        NwProto => Some((NXM_0, 6)),
        NwSrc if is_arp => Some((NXM_0, 16)),
        NwDst if is_arp => Some((NXM_0, 17)),
        NwSrc => Some((NXM_0, 7)),
        NwDst => Some((NXM_0, 8)),
        ArpOp => Some((NXM_0, 15)),
        TunId => Some((NXM_1, 16)),
        ArpSha => Some((NXM_1, 17)),
        ArpTha => Some((NXM_1, 18)),
        Ipv6Src => Some((NXM_1, 19)),
        Ipv6Dst => Some((NXM_1, 20)),
        _ => None,
    };
    let (id, w) = match nx {
        Some(id) => (id, field_of(id)?),
        None => id_of(field, proto, is_arp)?,
    };
    Some(header(id, false, w.len))
}

/// The field an action's header names, with the width it has there.
pub fn field_of_header(h: u32) -> Option<WireField> {
    let id = ((h >> 16) as u16, ((h >> 9) & 0x7f) as u8);
    let w = field_of(id)?;
    // A has-mask header is not a field name in an action.
    (h & 0x100 == 0 && (h & 0xff) as usize == w.len).then_some(w)
}

fn header(id: FieldId, masked: bool, len: usize) -> u32 {
    let l = if masked { len * 2 } else { len };
    (id.0 as u32) << 16 | (id.1 as u32) << 9 | (masked as u32) << 8 | l as u32
}

fn put_value(buf: &mut Vec<u8>, v: u128, len: usize) {
    buf.extend_from_slice(&v.to_be_bytes()[16 - len..]);
}

fn get_value(r: &mut Reader<'_>, len: usize) -> Result<u128, OfpError> {
    Ok(r.bytes(len)?.iter().fold(0u128, |a, b| a << 8 | *b as u128))
}

/// Write one TLV. `value`/`mask` are in the field's own bits.
pub fn put_tlv(buf: &mut Vec<u8>, id: FieldId, w: WireField, value: u128, mask: Option<u128>) {
    let full = w.field.max();
    let mask = mask.filter(|m| *m != full);
    buf.put_u32(header(id, mask.is_some(), w.len));
    let v = if w.port {
        port_to13(value as u32) as u128
    } else {
        value
    };
    put_value(buf, v, w.len);
    if let Some(m) = mask {
        put_value(buf, m, w.len);
    }
}

/// One TLV: the field, its value and its mask (all ones when unmasked), in
/// the field's own bits.
pub fn get_tlv(
    r: &mut Reader<'_>,
    bad_field: OfpError,
) -> Result<(FieldId, WireField, u128, u128), OfpError> {
    let h = r.u32()?;
    let id = ((h >> 16) as u16, ((h >> 9) & 0x7f) as u8);
    let masked = h & 0x100 != 0;
    let len = (h & 0xff) as usize;
    if id.0 == 0xffff {
        // Experimenter OXM: its 4-byte id follows; rvs knows none.
        r.skip(len)?;
        return Err(bad_field);
    }
    let Some(w) = field_of(id) else {
        r.skip(len)?;
        return Err(bad_field);
    };
    if len != if masked { w.len * 2 } else { w.len } {
        return Err(OfpError::BAD_MATCH_LEN);
    }
    let mut v = get_value(r, w.len)?;
    let m = if masked {
        get_value(r, w.len)?
    } else {
        w.field.max()
    };
    if w.port {
        v = port_from13(v as u32) as u128;
    }
    if v > w.field.max() || m > w.field.max() {
        return Err(OfpError::BAD_MATCH_VALUE);
    }
    Ok((id, w, v, m))
}

/// Decode an `ofp_match` (type OXM) from the reader, padding included.
pub fn decode_match(r: &mut Reader<'_>) -> Result<Match, OfpError> {
    let typ = r.u16()?;
    let len = r.u16()? as usize;
    if typ != 1 {
        return Err(OfpError::BAD_MATCH_TYPE);
    }
    if len < 4 {
        return Err(OfpError::BAD_MATCH_LEN);
    }
    let mut body = r.sub(len - 4).map_err(|_| OfpError::BAD_MATCH_LEN)?;
    r.skip((8 - len % 8) % 8).map_err(|_| OfpError::BAD_MATCH_LEN)?;
    decode_fields(body.rest())
}

/// Decode a list of OXM/NXM TLVs (the body of an `ofp_match`, or an
/// `nx_match` of OpenFlow 1.0's Nicira messages), prerequisites checked.
pub fn decode_fields(tlvs: &[u8]) -> Result<Match, OfpError> {
    let mut body = Reader::new(tlvs, OfpError::BAD_MATCH_LEN);
    let mut m = Match::any();
    let mut seen: Vec<FieldId> = Vec::new();
    while !body.is_empty() {
        let (id, w, v, mask) = get_tlv(&mut body, OfpError::BAD_MATCH_FIELD)?;
        if seen.contains(&id) {
            return Err(OfpError::DUP_FIELD);
        }
        seen.push(id);
        if v & !mask != 0 {
            // OpenFlow: a value bit outside the mask is an error.
            return Err(OfpError::BAD_MATCH_VALUE);
        }
        // NXM_OF_IP_TOS carries the DSCP bits of the TOS byte only.
        let mask = if id == NXM_IP_TOS { mask & 0xfc } else { mask };
        m.set(w.field, v, mask);
    }
    let named: Vec<OfField> = seen
        .iter()
        .filter_map(|id| field_of(*id))
        .map(|w| w.field)
        .collect();
    check_prereqs(&m, &named)?;
    Ok(m)
}

/// OpenFlow's prerequisites: a field of a protocol only with that protocol.
/// `named`: the fields the TLVs named (ARP's hardware addresses and IPv6's
/// addresses share key words, so the match alone cannot tell them apart).
fn check_prereqs(m: &Match, named: &[OfField]) -> Result<(), OfpError> {
    use OfField::*;
    let exact = |f: OfField| -> Option<u128> {
        let (v, mask) = m.get(f);
        (mask == f.max()).then_some(v)
    };
    let has = |fs: &[OfField]| fs.iter().any(|f| named.contains(f));
    let dl_type = exact(DlType);
    let ip = matches!(dl_type, Some(0x0800) | Some(0x86dd));
    let arp = dl_type == Some(0x0806);
    let need = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(OfpError::BAD_MATCH_PREREQ)
        }
    };
    if has(&[NwSrc, NwDst]) {
        need(dl_type == Some(0x0800) || arp)?;
    }
    if has(&[ArpOp, ArpSha, ArpTha]) {
        need(arp)?;
    }
    if has(&[NwProto, NwTos, IpDscp, NwEcn, NwTtl, IpFrag]) {
        need(ip)?;
    }
    if has(&[Ipv6Src, Ipv6Dst, Ipv6Label]) {
        need(dl_type == Some(0x86dd))?;
    }
    if has(&[TpSrc, TpDst]) {
        need(ip && exact(NwProto).is_some())?;
    }
    if has(&[TcpFlags]) {
        need(ip && exact(NwProto) == Some(6))?;
    }
    Ok(())
}

/// NXM_OF_IP_TOS (the DSCP bits, in place).
const NXM_IP_TOS: FieldId = (NXM_0, 5);

/// The protocol context fields need for their wire names.
pub fn context(m: &Match) -> (Option<u8>, bool) {
    let (p, pm) = m.get(OfField::NwProto);
    let (t, tm) = m.get(OfField::DlType);
    ((pm == 0xff).then_some(p as u8), tm == 0xffff && t == 0x0806)
}

/// Encode `m` as an `ofp_match` (type OXM), padded to 8 bytes. Fails when
/// a matched field has no wire name in OpenFlow 1.3.
pub fn encode_match(buf: &mut Vec<u8>, m: &Match) -> Result<(), OfpError> {
    let start = buf.len();
    buf.put_u16(1);
    buf.put_u16(0);
    encode_fields(buf, m, Names::Oxm)?;
    let len = buf.len() - start;
    buf.set_u16(start + 2, len as u16);
    buf.pad8_from(start);
    Ok(())
}

/// Which headers name the fields of a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Names {
    /// OpenFlow 1.3: OXM where 1.3 has a name, NXM otherwise.
    Oxm,
    /// OVS's `nx_match` (OpenFlow 1.0's NXT_FLOW_MOD and friends): NXM
    /// where it has a name, OXM otherwise, as OVS writes them.
    Nxm,
}

/// Append `m`'s fields as TLVs (no `ofp_match` header, no padding).
/// Fails when a matched field has no wire name.
pub fn encode_fields(buf: &mut Vec<u8>, m: &Match, names: Names) -> Result<(), OfpError> {
    let (proto, is_arp) = context(m);
    for f in OfField::all() {
        if !m.has(f) {
            continue;
        }
        // ARP's hardware addresses share their key words with IPv6's
        // addresses: which ones a match means is its dl_type's.
        match f {
            OfField::Ipv6Src | OfField::Ipv6Dst if is_arp => continue,
            OfField::ArpSha | OfField::ArpTha if !is_arp => continue,
            _ => {}
        }
        let (v, mask) = m.get(f);
        if names == Names::Nxm {
            put_nxm_field(buf, f, v, mask, proto, is_arp)?;
            continue;
        }
        match f {
            // OpenFlow 1.3 names the VID (with its present bit) and the PCP;
            // any other mask of the TCI goes as NXM_OF_VLAN_TCI.
            OfField::VlanTci if mask & 0xe000 == 0 || mask & 0xe000 == 0xe000 => {
                put_view(buf, m, OfField::VlanVid)?;
                put_view(buf, m, OfField::VlanPcp)?;
            }
            // The TOS byte as DSCP and ECN when each is whole or absent.
            OfField::NwTos if matches!(mask & 0xfc, 0 | 0xfc) && matches!(mask & 3, 0 | 3) => {
                put_view(buf, m, OfField::IpDscp)?;
                put_view(buf, m, OfField::NwEcn)?;
            }
            _ => {
                let (id, w) = id_of(f, proto, is_arp).ok_or(OfpError::BAD_MATCH_FIELD)?;
                put_tlv(buf, id, w, v, Some(mask));
            }
        }
    }
    Ok(())
}

/// One field as OVS names it in an `nx_match`.
fn put_nxm_field(
    buf: &mut Vec<u8>,
    f: OfField,
    v: u128,
    mask: u128,
    proto: Option<u8>,
    is_arp: bool,
) -> Result<(), OfpError> {
    use OfField::*;
    if f == NwTos {
        // NXM_OF_IP_TOS (DSCP, unmaskable) and NXM_NX_IP_ECN, each whole.
        let (dscp, ecn) = (mask & 0xfc, mask & 3);
        if !matches!(dscp, 0 | 0xfc) || !matches!(ecn, 0 | 3) {
            return Err(OfpError::BAD_MATCH_MASK);
        }
        if dscp != 0 {
            put_tlv(buf, NXM_IP_TOS, wf(NwTos, 1), v & 0xfc, None);
        }
        if ecn != 0 {
            put_tlv(buf, (NXM_1, 28), wf(NwEcn, 1), v & 3, None);
        }
        return Ok(());
    }
    let nx: Option<FieldId> = match f {
        InPort => Some((NXM_0, 0)),
        DlDst => Some((NXM_0, 1)),
        DlSrc => Some((NXM_0, 2)),
        DlType => Some((NXM_0, 3)),
        VlanTci => Some((NXM_0, 4)),
        NwProto => Some((NXM_0, 6)),
        NwSrc => Some((NXM_0, if is_arp { 16 } else { 7 })),
        NwDst => Some((NXM_0, if is_arp { 17 } else { 8 })),
        TpSrc | TpDst => {
            let n = match proto {
                Some(6) => Some((NXM_0, 9)),
                Some(17) => Some((NXM_0, 11)),
                Some(1) => Some((NXM_0, 13)),
                Some(58) => Some((NXM_1, 21)),
                _ => None,
            };
            n.map(|(c, n)| (c, if f == TpSrc { n } else { n + 1 }))
        }
        ArpOp => Some((NXM_0, 15)),
        ArpSha => Some((NXM_1, 17)),
        ArpTha => Some((NXM_1, 18)),
        Ipv6Src => Some((NXM_1, 19)),
        Ipv6Dst => Some((NXM_1, 20)),
        NdTarget => Some((NXM_1, 23)),
        NdSll => Some((NXM_1, 24)),
        NdTll => Some((NXM_1, 25)),
        Ipv6Label => Some((NXM_1, 27)),
        TunId => Some((NXM_1, 16)),
        _ => None,
    };
    let (id, w) = match nx {
        Some(id) => (id, field_of(id).ok_or(OfpError::BAD_MATCH_FIELD)?),
        None => id_of(f, proto, is_arp).ok_or(OfpError::BAD_MATCH_FIELD)?,
    };
    put_tlv(buf, id, w, v, Some(mask));
    Ok(())
}

fn put_view(buf: &mut Vec<u8>, m: &Match, f: OfField) -> Result<(), OfpError> {
    if !m.has(f) {
        return Ok(());
    }
    let (v, mask) = m.get(f);
    let (id, w) = id_of(f, None, false).ok_or(OfpError::BAD_MATCH_FIELD)?;
    put_tlv(buf, id, w, v, Some(mask));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ofp::parse_match;

    fn round_trip(text: &str) {
        let m = parse_match(text, &()).unwrap();
        let mut buf = Vec::new();
        encode_match(&mut buf, &m).unwrap();
        assert_eq!(buf.len() % 8, 0, "{text}");
        let mut r = Reader::new(&buf, OfpError::BAD_MATCH_LEN);
        assert_eq!(decode_match(&mut r), Ok(m), "{text}");
        assert!(r.is_empty());
    }

    #[test]
    fn matches_survive_the_wire() {
        for t in [
            "",
            "in_port=3",
            "in_port=LOCAL",
            "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00",
            "dl_vlan=1",
            "vlan_tci=0x1000/0x1000",
            "vlan_tci=0x0123/0x0fff",
            "tun_id=0x1389",
            "ip,nw_src=198.18.0.0/15,nw_dst=198.18.1.1",
            "tcp,tp_dst=22",
            "udp,tp_src=53,tp_dst=0x100/0xff00",
            "icmp,icmp_type=8,icmp_code=0",
            "arp,arp_tpa=198.18.0.1,arp_op=1",
            "arp,arp_sha=00:11:22:33:44:55,arp_tha=00:00:00:00:00:01",
            "ipv6,ipv6_src=2001:db8::/32",
            "reg0=5,reg7=0x10/0xf0,metadata=0x1/0x1",
            "ip,nw_tos=0x10,nw_ttl=3",
            "ct_state=+trk+est-rel,ct_zone=5,ct_mark=0x1/0x1",
            "tcp,tcp_flags=+syn-ack",
            "pkt_mark=7",
        ] {
            round_trip(t);
        }
    }

    #[test]
    fn a_field_twice_or_without_its_protocol_is_refused() {
        // OXM ETH_TYPE twice.
        let tlv = [0x80, 0x00, 0x0a, 0x02, 0x08, 0x00];
        let mut buf = vec![0, 1, 0, 16];
        buf.extend_from_slice(&tlv);
        buf.extend_from_slice(&tlv);
        let mut r = Reader::new(&buf, OfpError::BAD_MATCH_LEN);
        assert_eq!(decode_match(&mut r), Err(OfpError::DUP_FIELD));
        // TCP_DST without ip/tcp.
        let buf = [0, 1, 0, 10, 0x80, 0x00, 0x1c, 0x02, 0x00, 0x16, 0, 0, 0, 0, 0, 0];
        let mut r = Reader::new(&buf, OfpError::BAD_MATCH_LEN);
        assert_eq!(decode_match(&mut r), Err(OfpError::BAD_MATCH_PREREQ));
    }
}
