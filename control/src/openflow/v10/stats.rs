//! STATS_REQUEST / STATS_REPLY in 1.0: OpenFlow's (DESC, FLOW, AGGREGATE,
//! TABLE, PORT, QUEUE, and OVS's PORT_DESC) and Nicira's NXST_FLOW and
//! NXST_AGGREGATE, whose rules are described by `nx_match`.

use super::matches::{decode_match10, decode_nx_match, encode_match10, encode_nx_match};
use super::messages::{put_duration, put_phy_port, start};
use super::{msg_type as t10, OFPP10_NONE};
use crate::group::GROUP_ALL;
use crate::openflow::actions::{encode_actions, Ctx};
use crate::openflow::error::OfpError;
use crate::openflow::group;
use crate::openflow::multipart::{mp_type as mt, FlowFilter, FlowStats, MpReply, MpRequest};
use crate::openflow::wire::{finish, Put, Reader, NX_VENDOR, OFPG_ANY};

/// OFPST_VENDOR.
const ST_VENDOR: u16 = 0xffff;
/// NXST_FLOW.
const NXST_FLOW: u32 = 0;
/// NXST_AGGREGATE.
const NXST_AGGREGATE: u32 = 1;
/// NXST_GROUP (1.3's bodies).
const NXST_GROUP: u32 = 7;
/// NXST_GROUP_DESC (1.5's bodies).
const NXST_GROUP_DESC: u32 = 8;
/// NXST_GROUP_FEATURES (1.3's bodies).
const NXST_GROUP_FEATURES: u32 = 9;

/// A 1.0 stats request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsRequest {
    /// What it asks (FLOW, AGGREGATE, ... in version-neutral terms).
    pub body: MpRequest,
    /// Nicira's NXST_* subtype: the reply takes its form (rules described
    /// by `nx_match`, groups by 1.5's bodies).
    pub nx: Option<u32>,
    /// NXST_GROUP_DESC: one group, or GROUP_ALL.
    pub group: u32,
}

/// Decode a STATS_REQUEST body (after the common header).
pub fn decode_stats_request(r: &mut Reader<'_>) -> Result<StatsRequest, OfpError> {
    let typ = r.u16()?;
    let _flags = r.u16()?;
    let body = match typ {
        mt::DESC | mt::TABLE | mt::PORT_DESC => {
            r.expect_len(0)?;
            match typ {
                mt::DESC => MpRequest::Desc,
                mt::TABLE => MpRequest::Table,
                _ => MpRequest::PortDesc,
            }
        }
        mt::FLOW | mt::AGGREGATE => {
            let matches = decode_match10(r)?;
            let table = r.u8()?;
            r.skip(1)?;
            let out_port = r.u16()?;
            r.expect_len(0)?;
            let f = filter(table, out_port, matches, None);
            if typ == mt::FLOW {
                MpRequest::Flow(f)
            } else {
                MpRequest::Aggregate(f)
            }
        }
        mt::PORT_STATS => {
            let p = r.u16()?;
            r.skip(6)?;
            MpRequest::PortStats((p != OFPP10_NONE).then_some(p as u32))
        }
        mt::QUEUE => {
            // Port and queue: rvs has no queues, the reply is empty.
            r.skip(8)?;
            MpRequest::Empty(mt::QUEUE)
        }
        ST_VENDOR => return decode_nxst(r),
        _ => return Err(OfpError::BAD_MULTIPART),
    };
    Ok(StatsRequest {
        body,
        nx: None,
        group: GROUP_ALL,
    })
}

fn filter(
    table: u8,
    out_port: u16,
    matches: crate::ofp::Match,
    cookie: Option<super::matches::CookieFilter>,
) -> FlowFilter {
    let (cookie, cookie_mask) = cookie.unwrap_or((0, 0));
    FlowFilter {
        table: (table != 0xff).then_some(table),
        out_port: (out_port != OFPP10_NONE).then_some(out_port as u32),
        out_group: OFPG_ANY,
        cookie,
        cookie_mask,
        matches,
    }
}

fn decode_nxst(r: &mut Reader<'_>) -> Result<StatsRequest, OfpError> {
    if r.u32()? != NX_VENDOR {
        return Err(OfpError::BAD_REQUEST_EXPERIMENTER);
    }
    let subtype = r.u32()?;
    r.skip(4)?;
    let group_req = |r: &mut Reader<'_>, body: fn(u32) -> MpRequest| -> Result<StatsRequest, OfpError> {
        let group = r.u32()?;
        r.skip(4)?;
        Ok(StatsRequest {
            body: body(group),
            nx: Some(subtype),
            group,
        })
    };
    match subtype {
        NXST_FLOW | NXST_AGGREGATE => {}
        NXST_GROUP => return group_req(r, MpRequest::GroupStats),
        NXST_GROUP_DESC => return group_req(r, |_| MpRequest::GroupDesc),
        NXST_GROUP_FEATURES => {
            return Ok(StatsRequest {
                body: MpRequest::GroupFeatures,
                nx: Some(subtype),
                group: GROUP_ALL,
            })
        }
        _ => return Err(OfpError::BAD_REQUEST_EXP_TYPE),
    }
    let out_port = r.u16()?;
    let match_len = r.u16()? as usize;
    let table = r.u8()?;
    r.skip(3)?;
    let (matches, cookie) = decode_nx_match(r, match_len)?;
    if !r.is_empty() {
        return Err(OfpError::BAD_REQUEST_LEN);
    }
    let f = filter(table, out_port, matches, cookie);
    Ok(StatsRequest {
        body: if subtype == NXST_FLOW {
            MpRequest::Flow(f)
        } else {
            MpRequest::Aggregate(f)
        },
        nx: Some(subtype),
        group: GROUP_ALL,
    })
}

/// Largest body of one reply part.
const PART_LIMIT: usize = 65535 - 32;

/// The body of one reply entry, or `None` when 1.0 cannot describe it
/// (logged; the rest of the reply goes).
fn flow_entry(f: &FlowStats, nx: bool) -> Option<Vec<u8>> {
    let mut b = Vec::new();
    let ok = if nx {
        nx_flow_entry(&mut b, f)
    } else {
        std_flow_entry(&mut b, f)
    };
    match ok {
        Ok(()) => Some(b),
        Err(e) => {
            tracing::warn!(
                "openflow 1.0: a rule of table {} (priority {}) has no {} form ({e}): left out of the dump",
                f.table,
                f.priority,
                if nx { "nx_match" } else { "OpenFlow 1.0" }
            );
            None
        }
    }
}

fn std_flow_entry(b: &mut Vec<u8>, f: &FlowStats) -> Result<(), OfpError> {
    b.put_u16(0);
    b.put_u8(f.table);
    b.put_u8(0);
    encode_match10(b, &f.matches)?;
    put_duration(b, f.duration_ms);
    b.put_u16(f.priority);
    b.put_u16(f.idle_timeout);
    b.put_u16(f.hard_timeout);
    b.put_zeros(6);
    b.put_u64(f.cookie);
    b.put_u64(f.packets);
    b.put_u64(f.bytes);
    encode_actions(b, &f.actions, &Ctx::of10(&f.matches))?;
    let n = b.len() as u16;
    b.set_u16(0, n);
    Ok(())
}

fn nx_flow_entry(b: &mut Vec<u8>, f: &FlowStats) -> Result<(), OfpError> {
    b.put_u16(0);
    b.put_u8(f.table);
    b.put_u8(0);
    put_duration(b, f.duration_ms);
    b.put_u16(f.priority);
    b.put_u16(f.idle_timeout);
    b.put_u16(f.hard_timeout);
    let len_at = b.len();
    b.put_u16(0);
    // idle_age: seconds since last used, plus one (0 is "not known");
    // hard_age (since the last modify): not kept, 0.
    b.put_u16((f.idle_ms / 1000 + 1).min(u16::MAX as u64) as u16);
    b.put_u16(0);
    b.put_u64(f.cookie);
    b.put_u64(f.packets);
    b.put_u64(f.bytes);
    let n = encode_nx_match(b, &f.matches)?;
    b.set_u16(len_at, n);
    encode_actions(b, &f.actions, &Ctx::of10(&f.matches))?;
    let n = b.len() as u16;
    b.set_u16(0, n);
    Ok(())
}

/// The entries of a reply body, each encoded alone (so parts split
/// between entries).
fn entries(reply: &MpReply, req: &StatsRequest) -> Vec<Vec<u8>> {
    let nx = req.nx.is_some();
    let one = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = Vec::new();
        f(&mut b);
        b
    };
    match reply {
        MpReply::Desc(d) => vec![one(&|b| {
            b.put_str(&d.mfr, 256);
            b.put_str(&d.hw, 256);
            b.put_str(&d.sw, 256);
            b.put_str(&d.serial, 32);
            b.put_str(&d.dp, 256);
        })],
        MpReply::Flow(v) => v.iter().filter_map(|f| flow_entry(f, nx)).collect(),
        MpReply::Aggregate {
            packets,
            bytes,
            flows,
        } => vec![one(&|b| {
            b.put_u64(*packets);
            b.put_u64(*bytes);
            b.put_u32(*flows);
            b.put_zeros(4);
        })],
        MpReply::Table(v) => v
            .iter()
            .map(|s| {
                one(&|b| {
                    b.put_u8(s.table);
                    b.put_zeros(3);
                    // OVS's names.
                    let name = if s.table == 0 {
                        "classifier".to_string()
                    } else {
                        format!("table{}", s.table)
                    };
                    b.put_str(&name, 32);
                    b.put_u32((1 << 22) - 1);
                    b.put_u32(1_000_000);
                    b.put_u32(s.active);
                    b.put_u64(s.lookups);
                    b.put_u64(s.matched);
                })
            })
            .collect(),
        MpReply::PortStats(v) => v
            .iter()
            .map(|s| {
                one(&|b| {
                    b.put_u16(s.port_no as u16);
                    b.put_zeros(6);
                    for c in s.counters {
                        b.put_u64(c);
                    }
                    // frame, overrun, CRC errors and collisions: not kept.
                    b.put_zeros(32);
                })
            })
            .collect(),
        MpReply::PortDesc(v) => v.iter().map(|p| one(&|b| put_phy_port(b, p))).collect(),
        MpReply::GroupDesc(v) => v
            .iter()
            .filter(|g| req.group == GROUP_ALL || g.id == req.group)
            .filter_map(|g| {
                let mut b = Vec::new();
                match super::groups::encode_desc15(&mut b, g) {
                    Ok(()) => Some(b),
                    Err(e) => {
                        tracing::warn!("openflow 1.0: group {} has no 1.0 form ({e}): left out", g.id);
                        None
                    }
                }
            })
            .collect(),
        MpReply::GroupStats(v) => v
            .iter()
            .map(|s| one(&|b| group::encode_stats(b, std::slice::from_ref(s))))
            .collect(),
        MpReply::GroupFeatures => vec![one(&|b| group::encode_features(b))],
        _ => Vec::new(),
    }
}

/// Append the STATS_REPLY (one or more parts) answering `req` with
/// `reply`.
pub fn encode_stats_reply(xid: u32, req: &StatsRequest, reply: &MpReply, b: &mut Vec<u8>) {
    let typ = req.body.mp_type();
    let mut parts: Vec<Vec<u8>> = vec![Vec::new()];
    for e in entries(reply, req) {
        let last = parts.last_mut().expect("one part at least");
        if !last.is_empty() && last.len() + e.len() > PART_LIMIT {
            parts.push(e);
        } else {
            last.extend_from_slice(&e);
        }
    }
    let n = parts.len();
    for (i, p) in parts.into_iter().enumerate() {
        let at = start(b, t10::STATS_REPLY, xid);
        b.put_u16(if req.nx.is_some() { ST_VENDOR } else { typ });
        b.put_u16(if i + 1 < n { 1 } else { 0 });
        if let Some(subtype) = req.nx {
            b.put_u32(NX_VENDOR);
            b.put_u32(subtype);
            b.put_zeros(4);
        }
        b.extend_from_slice(&p);
        finish(b, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ofp::{parse_flow, parse_match};

    fn stats(rule: &str) -> FlowStats {
        let r = parse_flow(rule, &()).unwrap();
        FlowStats {
            table: r.table,
            duration_ms: 2500,
            idle_ms: 1200,
            priority: r.priority,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
            cookie: r.cookie,
            packets: 1,
            bytes: 60,
            matches: r.matches,
            actions: r.actions,
        }
    }

    #[test]
    fn nxst_flow_request_decodes_with_its_cookie() {
        let m = parse_match("tun_id=5", &()).unwrap();
        let mut b = Vec::new();
        b.put_u16(ST_VENDOR);
        b.put_u16(0);
        b.put_u32(NX_VENDOR);
        b.put_u32(NXST_FLOW);
        b.put_zeros(4);
        b.put_u16(OFPP10_NONE);
        let len_at = b.len();
        b.put_u16(0);
        b.put_u8(0xff);
        b.put_zeros(3);
        let n = encode_nx_match(&mut b, &m).unwrap();
        b.set_u16(len_at, n);
        let mut r = Reader::new(&b, OfpError::BAD_REQUEST_LEN);
        let req = decode_stats_request(&mut r).unwrap();
        assert_eq!(req.nx, Some(NXST_FLOW));
        let MpRequest::Flow(f) = req.body else { panic!() };
        assert_eq!(
            (f.table, f.out_port, f.matches, f.cookie_mask),
            (None, None, m, 0)
        );
    }

    #[test]
    fn flow_replies_split_and_skip_what_they_cannot_say() {
        let req = StatsRequest {
            body: MpRequest::Flow(filter(0xff, OFPP10_NONE, Default::default(), None)),
            nx: None,
            group: GROUP_ALL,
        };
        let mut v = vec![stats("reg0=1,actions=drop")];
        v.extend((0..1000).map(|i| stats(&format!("priority={i},in_port=1,actions=output:2"))));
        let mut b = Vec::new();
        encode_stats_reply(9, &req, &MpReply::Flow(v), &mut b);
        // 1000 entries of 96 bytes: two parts, the first with REPLY_MORE.
        let first = u16::from_be_bytes([b[2], b[3]]) as usize;
        assert_eq!((b[1], b[10], b[11]), (t10::STATS_REPLY, 0, 1));
        assert_eq!(b.len() - first, 12 + 96 * 1000 - (first - 12));
        assert_eq!((first - 12) % 96, 0);
    }
}
