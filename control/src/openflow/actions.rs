//! OpenFlow 1.3 actions and OVS's Nicira extension actions (NXAST) to and
//! from rvs's [`OfAction`]s. What OVS sends in OpenFlow 1.3 for a flow
//! written in ovs-ofctl syntax is what is decoded here, and what is encoded
//! is what OVS would send for the same rule.

use super::error::OfpError;
use super::oxm::{self, field_of_header, nxm_header, WireField};
use super::wire::{port_from13, port_to13, Put, Reader, NX_VENDOR};
use crate::ofp::{
    ControllerSpec, CtSpec, CtZone, LearnSpec, LearnSpecItem, Match, OfAction, OfField, PinReason, SubField,
    OFPP_ALL, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_LOCAL, OFPP_MAX, OFPP_NORMAL, OFPP_TABLE,
};
use rvs_dataplane::conntrack::{nat_flags, NatAction, NatKind, NatRange};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const OUTPUT: u16 = 0;
const PUSH_VLAN: u16 = 17;
const POP_VLAN: u16 = 18;
const GROUP: u16 = 22;
const SET_NW_TTL: u16 = 23;
const DEC_NW_TTL: u16 = 24;
const SET_FIELD: u16 = 25;
const EXPERIMENTER: u16 = 0xffff;

const NXAST_RESUBMIT: u16 = 1;
const NXAST_SET_TUNNEL: u16 = 2;
const NXAST_REG_MOVE: u16 = 6;
const NXAST_REG_LOAD: u16 = 7;
const NXAST_NOTE: u16 = 8;
const NXAST_SET_TUNNEL64: u16 = 9;
pub(crate) const NXAST_RESUBMIT_TABLE: u16 = 14;
const NXAST_OUTPUT_REG: u16 = 15;
const NXAST_LEARN: u16 = 16;
pub(crate) const NXAST_DEC_TTL: u16 = 18;
const NXAST_CONTROLLER: u16 = 20;
const NXAST_CT: u16 = 35;
const NXAST_NAT: u16 = 36;
pub(crate) const NXAST_WRITE_METADATA: u16 = 22;
/// NXAST_GROUP: `group:N` in OpenFlow 1.0.
pub(crate) const NXAST_GROUP: u16 = 40;
const NXAST_CT_CLEAR: u16 = 43;

/// What an action's wire form depends on in the rule around it: OVS names
/// `mod_tp_src` by the rule's protocol, and pushes a tag for `mod_vlan_vid`
/// only when the rule does not already require one.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ctx {
    /// The rule's exact `nw_proto`.
    pub proto: Option<u8>,
    /// The rule matches ARP.
    pub is_arp: bool,
    /// The rule requires a VLAN tag.
    pub has_vlan: bool,
    /// OpenFlow 1.0's action forms (see [`super::v10::actions`]).
    pub v10: bool,
}

impl Ctx {
    /// The context of a rule with this match.
    pub fn of(m: &Match) -> Ctx {
        let (proto, is_arp) = oxm::context(m);
        let (v, mask) = m.get(OfField::VlanTci);
        Ctx {
            proto,
            is_arp,
            has_vlan: mask & 0x1000 != 0 && v & 0x1000 != 0,
            v10: false,
        }
    }

    /// The context of a rule with this match, in OpenFlow 1.0.
    pub fn of10(m: &Match) -> Ctx {
        Ctx {
            v10: true,
            ..Ctx::of(m)
        }
    }
}

fn bad_len() -> OfpError {
    OfpError::BAD_ACTION_LEN
}

/// Decode an action list (the rest of `r`).
pub fn decode_actions(r: &mut Reader<'_>) -> Result<Vec<OfAction>, OfpError> {
    decode_list(r, None, false)
}

/// Decode an OpenFlow 1.0 action list (the rest of `r`).
pub fn decode_actions10(r: &mut Reader<'_>) -> Result<Vec<OfAction>, OfpError> {
    decode_list(r, None, true)
}

/// `nat`: where a `ct`'s nested NXAST_NAT goes (`None`: not allowed here).
/// `v10`: OpenFlow 1.0's action types.
fn decode_list(
    r: &mut Reader<'_>,
    mut nat: Option<&mut Option<NatAction>>,
    v10: bool,
) -> Result<Vec<OfAction>, OfpError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        let typ = r.u16().map_err(|_| bad_len())?;
        let len = r.u16().map_err(|_| bad_len())? as usize;
        if len < 8 || !len.is_multiple_of(8) {
            return Err(bad_len());
        }
        let mut a = r.sub(len - 4).map_err(|_| bad_len())?;
        let mut a = Reader::new(a.rest(), bad_len());
        if v10 && typ != EXPERIMENTER {
            super::v10::actions::decode_std(typ, &mut a, &mut out)?;
        } else {
            decode_one(typ, &mut a, &mut out, nat.as_deref_mut(), v10)?;
        }
    }
    Ok(out)
}

fn decode_one(
    typ: u16,
    a: &mut Reader<'_>,
    out: &mut Vec<OfAction>,
    nat: Option<&mut Option<NatAction>>,
    v10: bool,
) -> Result<(), OfpError> {
    match typ {
        OUTPUT => {
            let port = port_from13(a.u32()?);
            out.push(output_action(port, a.u16()?)?);
        }
        PUSH_VLAN => {
            let tpid = a.u16()?;
            if tpid != 0x8100 && tpid != 0x88a8 {
                return Err(OfpError::BAD_ACTION_ARGUMENT);
            }
            out.push(OfAction::PushVlan(tpid));
        }
        POP_VLAN => out.push(OfAction::StripVlan),
        GROUP => out.push(OfAction::Group(a.u32()?)),
        SET_NW_TTL => out.push(OfAction::ModNwTtl(a.u8()?)),
        DEC_NW_TTL => out.push(OfAction::DecTtl),
        SET_FIELD => {
            let (_, w, v, m) = oxm::get_tlv(a, OfpError::BAD_SET_TYPE).map_err(set_err)?;
            if m != w.field.max() || w.field == OfField::InPort {
                return Err(OfpError::BAD_SET_ARGUMENT);
            }
            out.push(OfAction::SetField {
                field: w.field,
                value: v,
            });
        }
        EXPERIMENTER => {
            if a.u32()? != NX_VENDOR {
                return Err(OfpError::BAD_ACTION_EXPERIMENTER);
            }
            decode_nx(a.u16()?, a, out, nat, v10)?;
        }
        _ => return Err(OfpError::BAD_ACTION_TYPE),
    }
    Ok(())
}

/// The action an OUTPUT to `port` (rvs's numbering) is, in any version.
pub(crate) fn output_action(port: u32, max_len: u16) -> Result<OfAction, OfpError> {
    Ok(match port {
        OFPP_IN_PORT => OfAction::InPort,
        OFPP_NORMAL => OfAction::Normal,
        OFPP_FLOOD => OfAction::Flood,
        OFPP_ALL => OfAction::All,
        OFPP_LOCAL => OfAction::Local,
        OFPP_TABLE => OfAction::Output(OFPP_TABLE),
        OFPP_CONTROLLER => OfAction::Controller(ControllerSpec::output(max_len)),
        p if (1..OFPP_MAX).contains(&p) => OfAction::Output(p),
        _ => return Err(OfpError::BAD_OUT_PORT),
    })
}

fn set_err(e: OfpError) -> OfpError {
    match e {
        OfpError::BAD_MATCH_LEN => OfpError::BAD_SET_LEN,
        OfpError::BAD_MATCH_VALUE => OfpError::BAD_SET_ARGUMENT,
        OfpError::BAD_ACTION_LEN => OfpError::BAD_SET_LEN,
        e => e,
    }
}

/// A field range named by an NXM header and `ofs`/`n_bits`.
fn subfield(header: u32, ofs: u16, n_bits: u16) -> Result<SubField, OfpError> {
    let w: WireField = field_of_header(header).ok_or(OfpError::BAD_ACTION_ARGUMENT)?;
    let (ofs, n) = (ofs as u32, n_bits as u32);
    if n == 0 || ofs + n > (w.len * 8) as u32 || ofs + n > w.field.width() {
        return Err(OfpError::BAD_ACTION_ARGUMENT);
    }
    Ok(SubField {
        field: w.field,
        start: ofs,
        end: ofs + n - 1,
    })
}

fn ofs_nbits(v: u16) -> (u16, u16) {
    (v >> 6, (v & 0x3f) + 1)
}

fn decode_nx(
    subtype: u16,
    a: &mut Reader<'_>,
    out: &mut Vec<OfAction>,
    nat: Option<&mut Option<NatAction>>,
    v10: bool,
) -> Result<(), OfpError> {
    match subtype {
        NXAST_NAT => match nat {
            Some(slot) if slot.is_none() => *slot = Some(decode_nat(a)?),
            _ => return Err(OfpError::BAD_ACTION_ARGUMENT),
        },
        NXAST_RESUBMIT | NXAST_RESUBMIT_TABLE => {
            let port = a.u16()? as u32;
            let table = if subtype == NXAST_RESUBMIT_TABLE {
                a.u8()?
            } else {
                0xff
            };
            out.push(OfAction::Resubmit {
                port: (port != OFPP_IN_PORT).then_some(port),
                table: (table != 0xff).then_some(table),
            });
        }
        NXAST_SET_TUNNEL => {
            a.skip(2)?;
            out.push(OfAction::SetTunnel(a.u32()? as u64));
        }
        NXAST_SET_TUNNEL64 => {
            a.skip(6)?;
            out.push(OfAction::SetTunnel(a.u64()?));
        }
        NXAST_REG_MOVE => {
            let n_bits = a.u16()?;
            let (src_ofs, dst_ofs) = (a.u16()?, a.u16()?);
            let src = subfield(a.u32()?, src_ofs, n_bits)?;
            let dst = subfield(a.u32()?, dst_ofs, n_bits)?;
            out.push(OfAction::Move { src, dst });
        }
        NXAST_REG_LOAD => {
            let (ofs, n) = ofs_nbits(a.u16()?);
            let dst = subfield(a.u32()?, ofs, n)?;
            let value = a.u64()? as u128;
            if n < 64 && value >> n != 0 {
                return Err(OfpError::BAD_ACTION_ARGUMENT);
            }
            out.push(OfAction::Load { value, dst });
        }
        NXAST_NOTE => out.push(OfAction::Note(a.rest().to_vec())),
        NXAST_DEC_TTL => out.push(OfAction::DecTtl),
        NXAST_OUTPUT_REG => {
            let (ofs, n) = ofs_nbits(a.u16()?);
            let src = subfield(a.u32()?, ofs, n)?;
            out.push(OfAction::OutputField(src));
        }
        NXAST_CONTROLLER => {
            let max_len = a.u16()?;
            let id = a.u16()?;
            let reason = PinReason::from_wire(a.u8()?).ok_or(OfpError::BAD_ACTION_ARGUMENT)?;
            out.push(OfAction::Controller(ControllerSpec { max_len, reason, id }));
        }
        NXAST_LEARN => out.push(OfAction::Learn(decode_learn(a)?)),
        NXAST_CT => out.push(OfAction::Ct(decode_ct(a, v10)?)),
        NXAST_GROUP => {
            a.skip(2)?;
            out.push(OfAction::Group(a.u32()?));
        }
        NXAST_WRITE_METADATA => {
            a.skip(6)?;
            let value = a.u64()?;
            let mask = a.u64()?;
            out.push(OfAction::WriteMetadata { value, mask });
        }
        NXAST_CT_CLEAR => out.push(OfAction::CtClear),
        _ => return Err(OfpError::BAD_ACTION_EXP_TYPE),
    }
    Ok(())
}

const LEARN_SRC_IMM: u16 = 1 << 13;
const LEARN_DST_LOAD: u16 = 1 << 11;
const LEARN_DST_OUTPUT: u16 = 2 << 11;

fn decode_learn(a: &mut Reader<'_>) -> Result<LearnSpec, OfpError> {
    let idle_timeout = a.u16()?;
    let hard_timeout = a.u16()?;
    let priority = a.u16()?;
    let cookie = a.u64()?;
    let flags = a.u16()?;
    let table = a.u8()?;
    a.skip(1)?;
    let (fin_idle, fin_hard) = (a.u16()?, a.u16()?);
    // rvs's learn has no flags (send_flow_rem, delete_learned) nor FIN timeouts.
    if flags != 0 || fin_idle != 0 || fin_hard != 0 || table == 0xff {
        return Err(OfpError::BAD_ACTION_ARGUMENT);
    }
    let mut items = Vec::new();
    while a.len() >= 2 {
        let h = a.u16()?;
        if h == 0 {
            break;
        }
        let n = h & 0x7ff;
        if n == 0 || h & !(0x7ff | LEARN_SRC_IMM | (3 << 11)) != 0 {
            return Err(OfpError::BAD_ACTION_ARGUMENT);
        }
        enum Src {
            Imm(u128),
            Field(SubField),
        }
        let src = if h & LEARN_SRC_IMM != 0 {
            let bytes = (n as usize).div_ceil(16) * 2;
            if bytes > 16 {
                return Err(OfpError::BAD_ACTION_ARGUMENT);
            }
            let v = a.bytes(bytes)?.iter().fold(0u128, |x, b| x << 8 | *b as u128);
            Src::Imm(v)
        } else {
            let hdr = a.u32()?;
            Src::Field(subfield(hdr, a.u16()?, n)?)
        };
        let item = match (h >> 11) & 3 {
            0 | 1 => {
                let hdr = a.u32()?;
                let dst = subfield(hdr, a.u16()?, n)?;
                match (h & LEARN_DST_LOAD != 0, src) {
                    (false, Src::Field(s)) if s == dst => LearnSpecItem::MatchSame(s),
                    (false, Src::Field(s)) => LearnSpecItem::MatchField { dst, src: s },
                    (false, Src::Imm(value)) => LearnSpecItem::MatchValue { dst, value },
                    (true, Src::Field(s)) => LearnSpecItem::LoadField { src: s, dst },
                    (true, Src::Imm(value)) => LearnSpecItem::LoadValue { value, dst },
                }
            }
            2 => match src {
                Src::Field(s) => LearnSpecItem::Output(s),
                Src::Imm(_) => return Err(OfpError::BAD_ACTION_ARGUMENT),
            },
            _ => return Err(OfpError::BAD_ACTION_ARGUMENT),
        };
        items.push(item);
    }
    Ok(LearnSpec {
        table,
        priority,
        idle_timeout,
        hard_timeout,
        cookie,
        items,
    })
}

const CT_COMMIT: u16 = 1;
const NAT_SRC: u16 = 1;
const NAT_DST: u16 = 2;
const NAT_PERSISTENT: u16 = 4;
const NAT_HASH: u16 = 8;
const NAT_RANDOM: u16 = 16;

fn decode_ct(a: &mut Reader<'_>, v10: bool) -> Result<CtSpec, OfpError> {
    let flags = a.u16()?;
    let zone_src = a.u32()?;
    let zone_word = a.u16()?;
    let table = a.u8()?;
    a.skip(3)?;
    let alg = a.u16()?;
    if flags & !CT_COMMIT != 0 || alg != 0 {
        // force and ALG helpers are not in rvs's tracker.
        return Err(OfpError::BAD_ACTION_ARGUMENT);
    }
    let zone = if zone_src == 0 {
        CtZone::Imm(zone_word)
    } else {
        let (ofs, n) = ofs_nbits(zone_word);
        CtZone::Field(subfield(zone_src, ofs, n)?)
    };
    let mut exec = Vec::new();
    let mut nat = None;
    for act in decode_list(a, Some(&mut nat), v10)? {
        match act {
            OfAction::SetField {
                field: OfField::CtMark | OfField::CtLabel,
                ..
            } => exec.push(act),
            OfAction::Load { dst, .. } if matches!(dst.field, OfField::CtMark | OfField::CtLabel) => {
                exec.push(act)
            }
            _ => return Err(OfpError::BAD_ACTION_ARGUMENT),
        }
    }
    Ok(CtSpec {
        commit: flags & CT_COMMIT != 0,
        zone,
        table: (table != 0xff).then_some(table),
        exec,
        nat,
    })
}

fn decode_nat(a: &mut Reader<'_>) -> Result<NatAction, OfpError> {
    a.skip(2)?;
    let flags = a.u16()?;
    let present = a.u16()?;
    let kind = match flags & (NAT_SRC | NAT_DST) {
        0 if present == 0 && flags == 0 => return Ok(NatAction::Existing),
        NAT_SRC => NatKind::Src,
        NAT_DST => NatKind::Dst,
        _ => return Err(OfpError::BAD_ACTION_ARGUMENT),
    };
    if flags & !(NAT_SRC | NAT_DST | NAT_PERSISTENT | NAT_HASH | NAT_RANDOM) != 0 || present & !0x3f != 0 {
        return Err(OfpError::BAD_ACTION_ARGUMENT);
    }
    let v4 = |a: &mut Reader<'_>| a.u32().map(|x| IpAddr::V4(Ipv4Addr::from(x)));
    let v6 = |a: &mut Reader<'_>| a.array::<16>().map(|x| IpAddr::V6(Ipv6Addr::from(x)));
    let (min, max) = match present & 0x0f {
        0x1 => {
            let m = v4(a)?;
            (m, m)
        }
        0x3 => (v4(a)?, v4(a)?),
        0x4 => {
            let m = v6(a)?;
            (m, m)
        }
        0xc => (v6(a)?, v6(a)?),
        _ => return Err(OfpError::BAD_ACTION_ARGUMENT),
    };
    let ports = match present & 0x30 {
        0 => None,
        0x10 => {
            let p = a.u16()?;
            Some((p, p))
        }
        0x30 => Some((a.u16()?, a.u16()?)),
        _ => return Err(OfpError::BAD_ACTION_ARGUMENT),
    };
    let mut f = 0;
    for (wire, ours) in [
        (NAT_PERSISTENT, nat_flags::PERSISTENT),
        (NAT_HASH, nat_flags::HASH),
        (NAT_RANDOM, nat_flags::RANDOM),
    ] {
        if flags & wire != 0 {
            f |= ours;
        }
    }
    Ok(NatAction::Range(NatRange {
        kind,
        min,
        max,
        ports,
        flags: f,
    }))
}

/// Encode an action list for a rule with context `ctx`. Fails for actions
/// that are instructions in OpenFlow 1.3 (`goto_table`, `write_metadata`,
/// ...): [`super::instructions`] places those.
pub fn encode_actions(buf: &mut Vec<u8>, actions: &[OfAction], ctx: &Ctx) -> Result<(), OfpError> {
    for a in actions {
        encode_one(buf, a, ctx)?;
    }
    Ok(())
}

fn output(buf: &mut Vec<u8>, port: u32, max_len: u16) {
    buf.put_u16(OUTPUT);
    buf.put_u16(16);
    buf.put_u32(port_to13(port));
    buf.put_u16(max_len);
    buf.put_zeros(6);
}

fn set_field(buf: &mut Vec<u8>, field: OfField, value: u128, ctx: &Ctx) -> Result<(), OfpError> {
    let (id, w) = oxm::id_of(field, ctx.proto, ctx.is_arp).ok_or(OfpError::BAD_SET_TYPE)?;
    let start = buf.len();
    buf.put_u16(SET_FIELD);
    buf.put_u16(0);
    oxm::put_tlv(buf, id, w, value, None);
    buf.pad8_from(start);
    let len = buf.len() - start;
    buf.set_u16(start + 2, len as u16);
    Ok(())
}

/// Start an NX action; returns where its length goes.
pub(crate) fn nx(buf: &mut Vec<u8>, subtype: u16) -> usize {
    let start = buf.len();
    buf.put_u16(EXPERIMENTER);
    buf.put_u16(0);
    buf.put_u32(NX_VENDOR);
    buf.put_u16(subtype);
    start
}

pub(crate) fn nx_end(buf: &mut Vec<u8>, start: usize) {
    buf.pad8_from(start);
    let len = buf.len() - start;
    buf.set_u16(start + 2, len as u16);
}

/// The NXM header naming `sf`'s field, for `ctx`.
fn sf_header(sf: &SubField, ctx: &Ctx) -> Result<u32, OfpError> {
    if sf.field == OfField::InPort && sf.end >= 16 {
        // OXM_OF_IN_PORT[] (32 bits); NXM_OF_IN_PORT is 16.
        return Ok(0x8000_0004);
    }
    nxm_header(sf.field, ctx.proto, ctx.is_arp).ok_or(OfpError::BAD_ACTION_ARGUMENT)
}

fn put_ofs_nbits(buf: &mut Vec<u8>, sf: &SubField) {
    buf.put_u16(((sf.start as u16) << 6) | ((sf.width() - 1) as u16 & 0x3f));
}

fn encode_one(buf: &mut Vec<u8>, a: &OfAction, ctx: &Ctx) -> Result<(), OfpError> {
    if ctx.v10 {
        if let Some(r) = super::v10::actions::encode_std(buf, a, ctx) {
            return r;
        }
    }
    match a {
        OfAction::Output(p) => output(buf, *p, 0),
        OfAction::Normal => output(buf, OFPP_NORMAL, 0),
        OfAction::Flood => output(buf, OFPP_FLOOD, 0),
        OfAction::All => output(buf, OFPP_ALL, 0),
        OfAction::InPort => output(buf, OFPP_IN_PORT, 0),
        OfAction::Local => output(buf, OFPP_LOCAL, 0),
        OfAction::Controller(c) => {
            if c.id == 0 && c.reason == PinReason::Action {
                output(buf, OFPP_CONTROLLER, c.max_len);
            } else {
                let s = nx(buf, NXAST_CONTROLLER);
                buf.put_u16(c.max_len);
                buf.put_u16(c.id);
                buf.put_u8(c.reason as u8);
                nx_end(buf, s);
            }
        }
        OfAction::Drop => {}
        OfAction::Group(g) => {
            buf.put_u16(GROUP);
            buf.put_u16(8);
            buf.put_u32(*g);
        }
        OfAction::Resubmit { port, table } => {
            let p = port.unwrap_or(OFPP_IN_PORT) as u16;
            match table {
                None => {
                    let s = nx(buf, NXAST_RESUBMIT);
                    buf.put_u16(p);
                    nx_end(buf, s);
                }
                Some(t) => {
                    let s = nx(buf, NXAST_RESUBMIT_TABLE);
                    buf.put_u16(p);
                    buf.put_u8(*t);
                    nx_end(buf, s);
                }
            }
        }
        OfAction::ModVlanVid(vid) => {
            if !ctx.has_vlan {
                encode_one(buf, &OfAction::PushVlan(0x8100), ctx)?;
            }
            set_field(buf, OfField::VlanVid, (*vid as u128 & 0xfff) | 0x1000, ctx)?;
        }
        OfAction::ModVlanPcp(pcp) => {
            if !ctx.has_vlan {
                encode_one(buf, &OfAction::PushVlan(0x8100), ctx)?;
            }
            set_field(buf, OfField::VlanPcp, *pcp as u128, ctx)?;
        }
        OfAction::StripVlan => {
            buf.put_u16(POP_VLAN);
            buf.put_u16(8);
            buf.put_zeros(4);
        }
        OfAction::PushVlan(tpid) => {
            buf.put_u16(PUSH_VLAN);
            buf.put_u16(8);
            buf.put_u16(*tpid);
            buf.put_zeros(2);
        }
        OfAction::ModDlSrc(m) => set_field(buf, OfField::DlSrc, *m as u128, ctx)?,
        OfAction::ModDlDst(m) => set_field(buf, OfField::DlDst, *m as u128, ctx)?,
        OfAction::ModNwSrc(ip) => set_field(buf, OfField::NwSrc, u32::from(*ip) as u128, ctx)?,
        OfAction::ModNwDst(ip) => set_field(buf, OfField::NwDst, u32::from(*ip) as u128, ctx)?,
        OfAction::ModNwTos(t) => set_field(buf, OfField::IpDscp, (*t >> 2) as u128, ctx)?,
        OfAction::ModNwEcn(e) => set_field(buf, OfField::NwEcn, *e as u128, ctx)?,
        OfAction::ModTpSrc(p) => set_field(buf, OfField::TpSrc, *p as u128, ctx)?,
        OfAction::ModTpDst(p) => set_field(buf, OfField::TpDst, *p as u128, ctx)?,
        OfAction::SetField { field, value } => set_field(buf, *field, *value, ctx)?,
        OfAction::ModNwTtl(t) => {
            buf.put_u16(SET_NW_TTL);
            buf.put_u16(8);
            buf.put_u8(*t);
            buf.put_zeros(3);
        }
        OfAction::DecTtl => {
            buf.put_u16(DEC_NW_TTL);
            buf.put_u16(8);
            buf.put_zeros(4);
        }
        OfAction::Load { value, dst } => {
            // As OVS: a load came as NXAST_REG_LOAD and goes back as one.
            if dst.width() > 64 {
                return Err(OfpError::BAD_ACTION_ARGUMENT);
            }
            let s = nx(buf, NXAST_REG_LOAD);
            put_ofs_nbits(buf, dst);
            buf.put_u32(sf_header(dst, ctx)?);
            buf.put_u64(*value as u64);
            nx_end(buf, s);
        }
        OfAction::Move { src, dst } => {
            let s = nx(buf, NXAST_REG_MOVE);
            buf.put_u16(src.width() as u16);
            buf.put_u16(src.start as u16);
            buf.put_u16(dst.start as u16);
            buf.put_u32(sf_header(src, ctx)?);
            buf.put_u32(sf_header(dst, ctx)?);
            nx_end(buf, s);
        }
        OfAction::OutputField(src) => {
            let s = nx(buf, NXAST_OUTPUT_REG);
            put_ofs_nbits(buf, src);
            buf.put_u32(sf_header(src, ctx)?);
            buf.put_u16(0);
            nx_end(buf, s);
        }
        OfAction::SetTunnel(id) => {
            if *id > u32::MAX as u64 {
                let s = nx(buf, NXAST_SET_TUNNEL64);
                buf.put_zeros(6);
                buf.put_u64(*id);
                nx_end(buf, s);
            } else {
                let s = nx(buf, NXAST_SET_TUNNEL);
                buf.put_zeros(2);
                buf.put_u32(*id as u32);
                nx_end(buf, s);
            }
        }
        OfAction::Note(bytes) => {
            let s = nx(buf, NXAST_NOTE);
            buf.extend_from_slice(bytes);
            nx_end(buf, s);
        }
        OfAction::Learn(spec) => encode_learn(buf, spec, ctx)?,
        OfAction::Ct(spec) => encode_ct(buf, spec, ctx)?,
        OfAction::CtClear => {
            let s = nx(buf, NXAST_CT_CLEAR);
            nx_end(buf, s);
        }
        OfAction::GotoTable(_)
        | OfAction::WriteMetadata { .. }
        | OfAction::WriteActions(_)
        | OfAction::ClearActions => return Err(OfpError::UNSUP_INST),
    }
    Ok(())
}

fn put_imm(buf: &mut Vec<u8>, value: u128, n_bits: u32) {
    let bytes = (n_bits as usize).div_ceil(16) * 2;
    buf.extend_from_slice(&value.to_be_bytes()[16 - bytes.min(16)..]);
}

fn encode_learn(buf: &mut Vec<u8>, l: &LearnSpec, ctx: &Ctx) -> Result<(), OfpError> {
    // Fields in a learned rule are named without the rule's protocol context.
    let lctx = Ctx::default();
    let _ = ctx;
    let s = nx(buf, NXAST_LEARN);
    buf.put_u16(l.idle_timeout);
    buf.put_u16(l.hard_timeout);
    buf.put_u16(l.priority);
    buf.put_u64(l.cookie);
    buf.put_u16(0);
    buf.put_u8(l.table);
    buf.put_u8(0);
    buf.put_u32(0);
    let field = |buf: &mut Vec<u8>, sf: &SubField| -> Result<(), OfpError> {
        buf.put_u32(sf_header(sf, &lctx)?);
        buf.put_u16(sf.start as u16);
        Ok(())
    };
    for item in &l.items {
        match item {
            LearnSpecItem::MatchSame(sf) => {
                buf.put_u16(sf.width() as u16);
                field(buf, sf)?;
                field(buf, sf)?;
            }
            LearnSpecItem::MatchField { dst, src } => {
                buf.put_u16(dst.width() as u16);
                field(buf, src)?;
                field(buf, dst)?;
            }
            LearnSpecItem::MatchValue { dst, value } => {
                buf.put_u16(LEARN_SRC_IMM | dst.width() as u16);
                put_imm(buf, *value, dst.width());
                field(buf, dst)?;
            }
            LearnSpecItem::LoadValue { value, dst } => {
                buf.put_u16(LEARN_SRC_IMM | LEARN_DST_LOAD | dst.width() as u16);
                put_imm(buf, *value, dst.width());
                field(buf, dst)?;
            }
            LearnSpecItem::LoadField { src, dst } => {
                buf.put_u16(LEARN_DST_LOAD | dst.width() as u16);
                field(buf, src)?;
                field(buf, dst)?;
            }
            LearnSpecItem::Output(src) => {
                buf.put_u16(LEARN_DST_OUTPUT | src.width() as u16);
                field(buf, src)?;
            }
        }
    }
    nx_end(buf, s);
    Ok(())
}

fn encode_ct(buf: &mut Vec<u8>, c: &CtSpec, ctx: &Ctx) -> Result<(), OfpError> {
    let s = nx(buf, NXAST_CT);
    buf.put_u16(if c.commit { CT_COMMIT } else { 0 });
    match c.zone {
        CtZone::Imm(z) => {
            buf.put_u32(0);
            buf.put_u16(z);
        }
        CtZone::Field(sf) => {
            buf.put_u32(sf_header(&sf, ctx)?);
            put_ofs_nbits(buf, &sf);
        }
    }
    buf.put_u8(c.table.unwrap_or(0xff));
    buf.put_zeros(3);
    buf.put_u16(0);
    if let Some(nat) = &c.nat {
        encode_nat(buf, nat);
    }
    encode_actions(buf, &c.exec, ctx)?;
    nx_end(buf, s);
    Ok(())
}

fn encode_nat(buf: &mut Vec<u8>, nat: &NatAction) {
    let s = nx(buf, NXAST_NAT);
    buf.put_u16(0);
    let NatAction::Range(r) = nat else {
        buf.put_u16(0);
        buf.put_u16(0);
        nx_end(buf, s);
        return;
    };
    let mut flags = match r.kind {
        NatKind::Src => NAT_SRC,
        NatKind::Dst => NAT_DST,
    };
    for (wire, ours) in [
        (NAT_PERSISTENT, nat_flags::PERSISTENT),
        (NAT_HASH, nat_flags::HASH),
        (NAT_RANDOM, nat_flags::RANDOM),
    ] {
        if r.flags & ours != 0 {
            flags |= wire;
        }
    }
    let one = r.min == r.max;
    let mut present: u16 = match r.min {
        IpAddr::V4(_) if one => 0x1,
        IpAddr::V4(_) => 0x3,
        IpAddr::V6(_) if one => 0x4,
        IpAddr::V6(_) => 0xc,
    };
    if let Some((lo, hi)) = r.ports {
        present |= if lo == hi { 0x10 } else { 0x30 };
    }
    buf.put_u16(flags);
    buf.put_u16(present);
    for a in if one { vec![r.min] } else { vec![r.min, r.max] } {
        match a {
            IpAddr::V4(a) => buf.put_u32(a.into()),
            IpAddr::V6(a) => buf.extend_from_slice(&a.octets()),
        }
    }
    if let Some((lo, hi)) = r.ports {
        buf.put_u16(lo);
        if lo != hi {
            buf.put_u16(hi);
        }
    }
    nx_end(buf, s);
}
