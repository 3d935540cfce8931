//! OpenFlow 1.0's own actions (OFPAT10_*): output with 16-bit ports, the
//! `set_*` family, strip_vlan. Nicira's actions are the same in every
//! version and stay in [`crate::openflow::actions`]; this module holds only
//! what 1.0 does differently, as OVS encodes it: `push_vlan` is implied by
//! the `set_vlan_*` after it, `set_field`s without a 1.0 action become
//! `reg_load`s, `goto_table` becomes `resubmit(,T)`, `write_metadata` is
//! NXAST_WRITE_METADATA, `group` NXAST_GROUP, and dec_ttl is Nicira's.

use crate::ofp::{OfAction, OfField, PinReason, SubField, OFPP_ALL, OFPP_CONTROLLER, OFPP_FLOOD};
use crate::ofp::{OFPP_IN_PORT, OFPP_LOCAL, OFPP_NORMAL};
use crate::openflow::actions::{
    nx, nx_end, output_action, Ctx, NXAST_DEC_TTL, NXAST_GROUP, NXAST_RESUBMIT_TABLE, NXAST_WRITE_METADATA,
};
use crate::openflow::error::OfpError;
use crate::openflow::wire::{Put, Reader};
use std::net::Ipv4Addr;

const OUTPUT: u16 = 0;
const SET_VLAN_VID: u16 = 1;
const SET_VLAN_PCP: u16 = 2;
const STRIP_VLAN: u16 = 3;
const SET_DL_SRC: u16 = 4;
const SET_DL_DST: u16 = 5;
const SET_NW_SRC: u16 = 6;
const SET_NW_DST: u16 = 7;
const SET_NW_TOS: u16 = 8;
const SET_TP_SRC: u16 = 9;
const SET_TP_DST: u16 = 10;
const ENQUEUE: u16 = 11;

fn mac(a: &mut Reader<'_>) -> Result<u64, OfpError> {
    let b = a.array::<6>()?;
    Ok(b.iter().fold(0u64, |x, y| x << 8 | *y as u64))
}

/// Decode one 1.0 action of type `typ` (not a vendor one) from its body.
pub fn decode_std(typ: u16, a: &mut Reader<'_>, out: &mut Vec<OfAction>) -> Result<(), OfpError> {
    let act = match typ {
        OUTPUT => {
            let port = a.u16()? as u32;
            output_action(port, a.u16()?)?
        }
        SET_VLAN_VID => {
            let vid = a.u16()?;
            if vid > 0xfff {
                return Err(OfpError::BAD_ACTION_ARGUMENT);
            }
            OfAction::ModVlanVid(vid)
        }
        SET_VLAN_PCP => {
            let pcp = a.u8()?;
            if pcp > 7 {
                return Err(OfpError::BAD_ACTION_ARGUMENT);
            }
            OfAction::ModVlanPcp(pcp)
        }
        STRIP_VLAN => OfAction::StripVlan,
        SET_DL_SRC => OfAction::ModDlSrc(mac(a)?),
        SET_DL_DST => OfAction::ModDlDst(mac(a)?),
        SET_NW_SRC => OfAction::ModNwSrc(Ipv4Addr::from(a.u32()?)),
        SET_NW_DST => OfAction::ModNwDst(Ipv4Addr::from(a.u32()?)),
        SET_NW_TOS => {
            let tos = a.u8()?;
            if tos & 3 != 0 {
                return Err(OfpError::BAD_ACTION_ARGUMENT);
            }
            OfAction::ModNwTos(tos)
        }
        SET_TP_SRC => OfAction::ModTpSrc(a.u16()?),
        SET_TP_DST => OfAction::ModTpDst(a.u16()?),
        // rvs has no queues.
        ENQUEUE => return Err(OfpError { typ: 2, code: 8 }),
        _ => return Err(OfpError::BAD_ACTION_TYPE),
    };
    out.push(act);
    Ok(())
}

fn output(buf: &mut Vec<u8>, port: u32, max_len: u16) {
    buf.put_u16(OUTPUT);
    buf.put_u16(8);
    buf.put_u16(port as u16);
    buf.put_u16(max_len);
}

fn put_u16_action(buf: &mut Vec<u8>, typ: u16, v: u16) {
    buf.put_u16(typ);
    buf.put_u16(8);
    buf.put_u16(v);
    buf.put_zeros(2);
}

fn put_u8_action(buf: &mut Vec<u8>, typ: u16, v: u8) {
    buf.put_u16(typ);
    buf.put_u16(8);
    buf.put_u8(v);
    buf.put_zeros(3);
}

fn put_u32_action(buf: &mut Vec<u8>, typ: u16, v: u32) {
    buf.put_u16(typ);
    buf.put_u16(8);
    buf.put_u32(v);
}

fn put_mac_action(buf: &mut Vec<u8>, typ: u16, v: u64) {
    buf.put_u16(typ);
    buf.put_u16(16);
    buf.extend_from_slice(&v.to_be_bytes()[2..]);
    buf.put_zeros(6);
}

/// A field written as OVS writes a `set_field` 1.0 has no action for:
/// `reg_load`s of at most 64 bits each.
fn reg_loads(buf: &mut Vec<u8>, field: OfField, value: u128, ctx: &Ctx) -> Result<(), OfpError> {
    let width = field.width();
    let mut start = 0;
    while start < width {
        let end = (start + 64).min(width) - 1;
        let bits = end - start + 1;
        let v = (value >> start) & ((1u128 << bits) - 1);
        let load = OfAction::Load {
            value: v,
            dst: SubField { field, start, end },
        };
        crate::openflow::actions::encode_actions(buf, std::slice::from_ref(&load), ctx)?;
        start = end + 1;
    }
    Ok(())
}

/// The 1.0 form of `a` when it differs from the version-neutral one
/// (`None`: Nicira's encoding serves).
pub fn encode_std(buf: &mut Vec<u8>, a: &OfAction, ctx: &Ctx) -> Option<Result<(), OfpError>> {
    let tcp_udp = matches!(ctx.proto, Some(6) | Some(17));
    match a {
        OfAction::Output(p) => output(buf, *p, 0),
        OfAction::Normal => output(buf, OFPP_NORMAL, 0),
        OfAction::Flood => output(buf, OFPP_FLOOD, 0),
        OfAction::All => output(buf, OFPP_ALL, 0),
        OfAction::InPort => output(buf, OFPP_IN_PORT, 0),
        OfAction::Local => output(buf, OFPP_LOCAL, 0),
        OfAction::Controller(c) if c.id == 0 && c.reason == PinReason::Action => {
            output(buf, OFPP_CONTROLLER, c.max_len)
        }
        OfAction::ModVlanVid(v) => put_u16_action(buf, SET_VLAN_VID, *v & 0xfff),
        OfAction::ModVlanPcp(p) => put_u8_action(buf, SET_VLAN_PCP, *p),
        OfAction::StripVlan => {
            buf.put_u16(STRIP_VLAN);
            buf.put_u16(8);
            buf.put_zeros(4);
        }
        // The set_vlan_* that follows pushes the tag in 1.0.
        OfAction::PushVlan(0x8100) => {}
        OfAction::PushVlan(_) => return Some(Err(OfpError::BAD_ACTION_ARGUMENT)),
        OfAction::ModDlSrc(m) => put_mac_action(buf, SET_DL_SRC, *m),
        OfAction::ModDlDst(m) => put_mac_action(buf, SET_DL_DST, *m),
        OfAction::ModNwSrc(ip) => put_u32_action(buf, SET_NW_SRC, (*ip).into()),
        OfAction::ModNwDst(ip) => put_u32_action(buf, SET_NW_DST, (*ip).into()),
        OfAction::ModNwTos(t) => put_u8_action(buf, SET_NW_TOS, *t & 0xfc),
        OfAction::ModTpSrc(p) => put_u16_action(buf, SET_TP_SRC, *p),
        OfAction::ModTpDst(p) => put_u16_action(buf, SET_TP_DST, *p),
        OfAction::ModNwTtl(t) => return Some(reg_loads(buf, OfField::NwTtl, *t as u128, ctx)),
        OfAction::ModNwEcn(e) => return Some(reg_loads(buf, OfField::NwEcn, *e as u128, ctx)),
        OfAction::SetField { field, value } => {
            let v = *value;
            match field {
                OfField::VlanVid => put_u16_action(buf, SET_VLAN_VID, v as u16 & 0xfff),
                OfField::VlanPcp => put_u8_action(buf, SET_VLAN_PCP, v as u8),
                OfField::DlSrc => put_mac_action(buf, SET_DL_SRC, v as u64),
                OfField::DlDst => put_mac_action(buf, SET_DL_DST, v as u64),
                OfField::NwSrc if !ctx.is_arp => put_u32_action(buf, SET_NW_SRC, v as u32),
                OfField::NwDst if !ctx.is_arp => put_u32_action(buf, SET_NW_DST, v as u32),
                OfField::IpDscp => put_u8_action(buf, SET_NW_TOS, (v as u8) << 2),
                OfField::TpSrc if tcp_udp => put_u16_action(buf, SET_TP_SRC, v as u16),
                OfField::TpDst if tcp_udp => put_u16_action(buf, SET_TP_DST, v as u16),
                f => return Some(reg_loads(buf, *f, v, ctx)),
            }
        }
        OfAction::DecTtl => {
            let s = nx(buf, NXAST_DEC_TTL);
            nx_end(buf, s);
        }
        OfAction::GotoTable(t) => {
            let s = nx(buf, NXAST_RESUBMIT_TABLE);
            buf.put_u16(OFPP_IN_PORT as u16);
            buf.put_u8(*t);
            nx_end(buf, s);
        }
        OfAction::WriteMetadata { value, mask } => {
            let s = nx(buf, NXAST_WRITE_METADATA);
            buf.put_zeros(6);
            buf.put_u64(*value);
            buf.put_u64(*mask);
            nx_end(buf, s);
        }
        OfAction::Group(g) => {
            let s = nx(buf, NXAST_GROUP);
            buf.put_zeros(2);
            buf.put_u32(*g);
            nx_end(buf, s);
        }
        // No 1.0 form (OVS drops them silently; rvs says so instead).
        OfAction::WriteActions(_) | OfAction::ClearActions => return Some(Err(OfpError::UNSUP_INST)),
        _ => return None,
    }
    Some(Ok(()))
}

#[cfg(test)]
mod tests {
    use crate::ofp::{parse_flow, Rule};
    use crate::openflow::actions::{decode_actions10, encode_actions, Ctx};
    use crate::openflow::error::OfpError;
    use crate::openflow::wire::Reader;

    fn wire(text: &str) -> (Rule, Vec<u8>) {
        let r = parse_flow(text, &()).unwrap();
        let mut b = Vec::new();
        encode_actions(&mut b, &r.actions, &Ctx::of10(&r.matches)).unwrap();
        (r, b)
    }

    #[test]
    fn one_zero_actions_survive_the_wire() {
        for t in [
            "actions=output:3,NORMAL,FLOOD,ALL,IN_PORT,LOCAL,CONTROLLER:128",
            "actions=mod_vlan_vid:5,mod_vlan_pcp:3,strip_vlan",
            "actions=mod_dl_src:00:11:22:33:44:55,mod_dl_dst:66:77:88:99:aa:bb",
            "ip,actions=mod_nw_src:198.18.0.1,mod_nw_dst:198.18.0.2,mod_nw_tos:16",
            "tcp,actions=mod_tp_src:1,mod_tp_dst:2",
            "actions=resubmit(,3),load:0x5->NXM_NX_REG0[],move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]",
            "actions=set_tunnel:0x1389,note:ab.cd.ef.01.02.03,dec_ttl,controller(reason=no_match)",
            "actions=learn(table=10,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[])",
            "actions=write_metadata:0x5/0xff",
            "actions=group:7",
            "ip,actions=ct(commit,zone=5,exec(load:0x1->NXM_NX_CT_MARK[])),ct_clear",
        ] {
            let (r, b) = wire(t);
            let mut rd = Reader::new(&b, OfpError::BAD_ACTION_LEN);
            assert_eq!(decode_actions10(&mut rd).unwrap(), r.actions, "{t}");
        }
    }

    #[test]
    fn fields_without_a_one_zero_action_become_loads() {
        let (_, b) = wire("ipv6,actions=set_field:5->reg3,set_field:2001:db8::1->ipv6_dst,mod_nw_ttl:9");
        let mut rd = Reader::new(&b, OfpError::BAD_ACTION_LEN);
        let text: Vec<String> = decode_actions10(&mut rd)
            .unwrap()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            text,
            [
                "load:0x5->NXM_NX_REG3[]",
                "load:0x1->NXM_NX_IPV6_DST[0..63]",
                "load:0x20010db800000000->NXM_NX_IPV6_DST[64..127]",
                "load:0x9->NXM_NX_IP_TTL[]",
            ]
        );
        // goto_table goes as OVS sends it in 1.0: resubmit(,T).
        let (_, b) = wire("actions=goto_table:4");
        let mut rd = Reader::new(&b, OfpError::BAD_ACTION_LEN);
        assert_eq!(decode_actions10(&mut rd).unwrap()[0].to_string(), "resubmit(,4)");
        let r = parse_flow("actions=write_actions(output:1)", &()).unwrap();
        assert!(encode_actions(&mut Vec::new(), &r.actions, &Ctx::of10(&r.matches)).is_err());
    }
}
