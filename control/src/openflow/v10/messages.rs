//! OpenFlow 1.0 messages and OVS's Nicira messages for 1.0: requests to
//! [`In10`], replies and asynchronous messages from the version-neutral
//! [`Message`]s, in the flow and packet-in formats the peer chose.

use super::errors::put_error;
use super::matches::{decode_match10, decode_nx_match, encode_match10, encode_nx_match};
use super::stats::{decode_stats_request, StatsRequest};
use super::{msg_type as t10, nxt, OFP10, OFPP10_NONE};
use crate::flow_mod::{Command, FlowMod, RemovalReason};
use crate::ofp::Rule;
use crate::openflow::actions::decode_actions10;
use crate::openflow::error::OfpError;
use crate::openflow::message::{
    decode_shared, AsyncConfig, FlowModMsg, Message, FF_CHECK_OVERLAP, FF_SEND_FLOW_REM,
};
use crate::openflow::multipart::PortDesc;
use crate::openflow::packet::{PacketInMsg, PacketOutMsg, PortModMsg};
use crate::openflow::wire::{
    finish, msg_type as t, start_version, Header, Put, Reader, HEADER_LEN, NX_VENDOR,
};

/// NXFF_NXM: flows described by `nx_match` (NXFF_OPENFLOW10 is 0).
pub const NXFF_NXM: u32 = 2;
/// NXPIF_NXT_PACKET_IN (NXPIF_STANDARD is 0; NXT_PACKET_IN2, 2, is not
/// supported).
pub const NXPIF_NXT: u32 = 1;

/// The formats a 1.0 peer chose with Nicira messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Formats {
    /// NXT_SET_FLOW_FORMAT to `nx_match`: FLOW_REMOVED goes as
    /// NXT_FLOW_REMOVED.
    pub nxm: bool,
    /// NXT_FLOW_MOD_TABLE_ID: the high byte of a flow mod's command is its
    /// table.
    pub table_id: bool,
    /// NXT_SET_PACKET_IN_FORMAT to NXT_PACKET_IN (with table, cookie and
    /// metadata).
    pub nxt_packet_in: bool,
}

/// A decoded 1.0 request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum In10 {
    /// One with a version-neutral meaning (FEATURES_REQUEST, FLOW_MOD, ...).
    Msg(Message),
    /// STATS_REQUEST: OpenFlow's or Nicira's (its reply takes its form).
    Stats(StatsRequest),
    /// NXT_SET_FLOW_FORMAT.
    SetFlowFormat(u32),
    /// NXT_FLOW_MOD_TABLE_ID.
    FlowModTableId(bool),
    /// NXT_SET_PACKET_IN_FORMAT.
    SetPacketInFormat(u32),
    /// QUEUE_GET_CONFIG_REQUEST for a port.
    QueueGetConfig(u16),
    /// NXT_ROLE_REQUEST: Nicira's role (0 other, 1 primary, 2 secondary),
    /// without a generation id.
    NxRole(u32),
}

const FF10_EMERG: u16 = 4;

/// Decode one 1.0 message (`buf` is exactly its `length` bytes).
pub fn decode(buf: &[u8], f: &Formats) -> Result<(Header, In10), (Header, OfpError)> {
    let h = Header::peek(buf).ok_or((
        Header {
            version: OFP10,
            msg_type: 0,
            length: 0,
            xid: 0,
        },
        OfpError::BAD_REQUEST_LEN,
    ))?;
    let body = buf.get(HEADER_LEN..).unwrap_or_default();
    decode_body(&h, body, f).map(|m| (h, m)).map_err(|e| (h, e))
}

fn decode_body(h: &Header, body: &[u8], f: &Formats) -> Result<In10, OfpError> {
    if h.version != OFP10 {
        return Err(OfpError::BAD_REQUEST_VERSION);
    }
    let mut r = Reader::new(body, OfpError::BAD_REQUEST_LEN);
    if h.msg_type == t::HELLO {
        return Ok(In10::Msg(Message::Hello { bitmap: None }));
    }
    if h.msg_type != t::GET_CONFIG_REPLY {
        if let Some(m) = decode_shared(h.msg_type, &mut r) {
            return m.map(In10::Msg);
        }
    }
    let m = match h.msg_type {
        t10::FLOW_MOD => Message::FlowMod(decode_flow_mod(&mut r, f, false)?),
        t10::PACKET_OUT => Message::PacketOut(decode_packet_out(&mut r)?),
        t10::PORT_MOD => {
            r.expect_len(24)?;
            let port_no = r.u16()? as u32;
            let hw_addr = r.array::<6>()?;
            let config = r.u32()?;
            let mask = r.u32()?;
            let advertise = r.u32()?;
            Message::PortMod(PortModMsg {
                port_no,
                hw_addr,
                config,
                mask,
                advertise,
            })
        }
        t10::BARRIER_REQUEST => {
            r.expect_len(0)?;
            Message::BarrierRequest
        }
        t10::STATS_REQUEST => return Ok(In10::Stats(decode_stats_request(&mut r)?)),
        t10::QUEUE_GET_CONFIG_REQUEST => {
            r.expect_len(4)?;
            return Ok(In10::QueueGetConfig(r.u16()?));
        }
        t10::VENDOR => return decode_vendor(&mut r, f),
        // Replies and asynchronous messages only a switch sends, and types
        // 1.0 does not have.
        _ => return Err(OfpError::BAD_REQUEST_TYPE),
    };
    Ok(In10::Msg(m))
}

fn decode_vendor(r: &mut Reader<'_>, f: &Formats) -> Result<In10, OfpError> {
    if r.u32()? != NX_VENDOR {
        return Err(OfpError::BAD_REQUEST_EXPERIMENTER);
    }
    Ok(match r.u32()? {
        nxt::SET_FLOW_FORMAT => {
            r.expect_len(4)?;
            In10::SetFlowFormat(r.u32()?)
        }
        nxt::FLOW_MOD_TABLE_ID => {
            r.expect_len(8)?;
            In10::FlowModTableId(r.u8()? != 0)
        }
        nxt::SET_PACKET_IN_FORMAT => {
            r.expect_len(4)?;
            In10::SetPacketInFormat(r.u32()?)
        }
        nxt::ROLE_REQUEST => {
            r.expect_len(4)?;
            In10::NxRole(r.u32()?)
        }
        nxt::SET_ASYNC_CONFIG => {
            r.expect_len(24)?;
            let mut a = AsyncConfig::default();
            for pair in [&mut a.packet_in, &mut a.port_status, &mut a.flow_removed] {
                pair[0] = r.u32()?;
                pair[1] = r.u32()?;
            }
            In10::Msg(Message::SetAsync(a))
        }
        nxt::FLOW_MOD => In10::Msg(Message::FlowMod(decode_flow_mod(r, f, true)?)),
        nxt::GROUP_MOD => In10::Msg(Message::GroupMod(super::groups::decode_group_mod(r)?)),
        _ => return Err(OfpError::BAD_REQUEST_EXP_TYPE),
    })
}

/// A 16-bit port in a filter: OFPP_NONE is "any".
fn port_filter(p: u16) -> Option<u32> {
    (p != OFPP10_NONE).then_some(p as u32)
}

/// OFPT_FLOW_MOD (`nx`: NXT_FLOW_MOD, after its subtype).
fn decode_flow_mod(r: &mut Reader<'_>, f: &Formats, nx: bool) -> Result<FlowModMsg, OfpError> {
    let std_match = if nx { None } else { Some(decode_match10(r)?) };
    let cookie = r.u64()?;
    let command = r.u16()?;
    let idle_timeout = r.u16()?;
    let hard_timeout = r.u16()?;
    let priority = r.u16()?;
    let buffer_id = r.u32()?;
    let out_port = r.u16()?;
    let flags = r.u16()?;
    let (matches, cookie_filter) = match std_match {
        Some(m) => (m, None),
        None => {
            let match_len = r.u16()? as usize;
            r.skip(6)?;
            decode_nx_match(r, match_len)?
        }
    };
    let actions = decode_actions10(r)?;
    // OVS: without NXT_FLOW_MOD_TABLE_ID the table is "any": modify and
    // delete reach every table, an add goes to table 0.
    let table = if f.table_id { (command >> 8) as u8 } else { 0xff };
    let command = match command & 0xff {
        0 => Command::Add,
        1 => Command::Modify,
        2 => Command::ModifyStrict,
        3 => Command::Delete,
        4 => Command::DeleteStrict,
        _ => return Err(OfpError::FLOW_MOD_BAD_COMMAND),
    };
    if flags & !(FF_SEND_FLOW_REM | FF_CHECK_OVERLAP | FF10_EMERG) != 0 {
        return Err(OfpError::FLOW_MOD_BAD_FLAGS);
    }
    if flags & FF10_EMERG != 0 {
        // No emergency flow cache.
        return Err(OfpError { typ: 5, code: 5 });
    }
    if table == 254 {
        return Err(OfpError::FLOW_MOD_BAD_TABLE_ID);
    }
    let add = command == Command::Add;
    if add && cookie_filter.is_some_and(|(_, mask)| mask != 0) {
        return Err(OfpError::BAD_MATCH_FIELD);
    }
    // 1.0 has no cookie mask: a modify or delete selects by cookie only
    // through NXM_NX_COOKIE.
    let (rule_cookie, cookie_mask) = match (add, cookie_filter) {
        (true, _) => (cookie, 0),
        (false, Some((c, m))) => (c, m),
        (false, None) => (cookie, 0),
    };
    let all_tables = table == 0xff && !add;
    let is_modify = matches!(command, Command::Modify | Command::ModifyStrict);
    Ok(FlowModMsg {
        fm: FlowMod {
            command,
            rule: Rule {
                table: if table == 0xff { 0 } else { table },
                priority,
                cookie: rule_cookie,
                idle_timeout,
                hard_timeout,
                matches,
                actions,
            },
            cookie_mask,
            all_tables,
            out_port: port_filter(out_port),
            out_group: None,
            check_overlap: flags & FF_CHECK_OVERLAP != 0,
            send_flow_rem: flags & FF_SEND_FLOW_REM != 0,
            reset_counts: false,
            // OpenFlow 1.0's modify (OVS): a cookie given (ovs-ofctl sends
            // all ones for none) goes on the rules, and a modify that finds
            // nothing adds.
            new_cookie: (is_modify && cookie != u64::MAX && cookie_mask == 0).then_some(cookie),
        },
        buffer_id,
        flags,
    })
}

fn decode_packet_out(r: &mut Reader<'_>) -> Result<PacketOutMsg, OfpError> {
    let buffer_id = r.u32()?;
    let in_port = r.u16()? as u32;
    let actions_len = r.u16()? as usize;
    let mut acts = r.sub(actions_len)?;
    let actions = decode_actions10(&mut acts)?;
    Ok(PacketOutMsg {
        buffer_id,
        in_port,
        actions,
        data: r.rest().to_vec(),
    })
}

/// Start a 1.0 message.
pub(super) fn start(b: &mut Vec<u8>, typ: u8, xid: u32) -> usize {
    start_version(b, OFP10, typ, xid)
}

/// Start a Nicira vendor message of `subtype`.
fn start_nx(b: &mut Vec<u8>, subtype: u32, xid: u32) -> usize {
    let at = start(b, t10::VENDOR, xid);
    b.put_u32(NX_VENDOR);
    b.put_u32(subtype);
    at
}

/// Largest message.
const MAX_MSG: usize = u16::MAX as usize;

/// Append `m` (a reply or asynchronous message) in its 1.0 form. Fails,
/// with nothing appended, for a message 1.0 cannot carry (its match or
/// actions have no 1.0 form, or it has no 1.0 counterpart).
pub fn encode(m: &Message, xid: u32, f: &Formats, b: &mut Vec<u8>) -> Result<(), OfpError> {
    let before = b.len();
    let r = encode_inner(m, xid, f, b);
    if r.is_err() || b.len() - before > MAX_MSG {
        b.truncate(before);
        return r.and(Err(OfpError::BAD_REQUEST_LEN));
    }
    finish(b, before);
    Ok(())
}

fn encode_inner(m: &Message, xid: u32, f: &Formats, b: &mut Vec<u8>) -> Result<(), OfpError> {
    match m {
        Message::Hello { .. } => {
            start(b, t::HELLO, xid);
        }
        Message::Error { err, data } => {
            start(b, t::ERROR, xid);
            put_error(b, *err, data);
        }
        Message::EchoRequest(d) | Message::EchoReply(d) => {
            start(b, m.msg_type(), xid);
            b.extend_from_slice(d);
        }
        Message::GetConfigReply(c) => {
            start(b, t::GET_CONFIG_REPLY, xid);
            b.put_u16(c.flags);
            b.put_u16(c.miss_send_len);
        }
        Message::BarrierReply => {
            start(b, t10::BARRIER_REPLY, xid);
        }
        Message::PortStatus { reason, desc } => {
            start(b, t10::PORT_STATUS, xid);
            b.put_u8(*reason);
            b.put_zeros(7);
            put_phy_port(b, desc);
        }
        Message::FlowRemoved(fr) if f.nxm => {
            start_nx(b, nxt::FLOW_REMOVED, xid);
            b.put_u64(fr.cookie);
            b.put_u16(fr.priority);
            b.put_u8(reason10(fr.reason));
            b.put_u8(fr.table.wrapping_add(1));
            put_duration(b, fr.duration_ms);
            b.put_u16(fr.idle_timeout);
            let len_at = b.len();
            b.put_u16(0);
            b.put_u64(fr.packets);
            b.put_u64(fr.bytes);
            let n = encode_nx_match(b, &fr.matches)?;
            b.set_u16(len_at, n);
        }
        Message::FlowRemoved(fr) => {
            start(b, t10::FLOW_REMOVED, xid);
            encode_match10(b, &fr.matches)?;
            b.put_u64(fr.cookie);
            b.put_u16(fr.priority);
            b.put_u8(reason10(fr.reason));
            b.put_u8(0);
            put_duration(b, fr.duration_ms);
            b.put_u16(fr.idle_timeout);
            b.put_zeros(2);
            b.put_u64(fr.packets);
            b.put_u64(fr.bytes);
        }
        Message::PacketIn(p) if f.nxt_packet_in => {
            let at = start_nx(b, nxt::PACKET_IN, xid);
            b.put_u32(p.buffer_id);
            b.put_u16(p.total_len);
            b.put_u8(p.reason);
            b.put_u8(p.table);
            b.put_u64(p.cookie);
            let len_at = b.len();
            b.put_u16(0);
            b.put_zeros(6);
            let n = encode_nx_match(b, &p.matches)?;
            b.set_u16(len_at, n);
            b.put_zeros(2);
            put_data(b, at, p);
        }
        Message::PacketIn(p) => {
            let at = start(b, t10::PACKET_IN, xid);
            b.put_u32(p.buffer_id);
            b.put_u16(p.total_len);
            b.put_u16(p.matches.get(crate::ofp::OfField::InPort).0 as u16);
            b.put_u8(p.reason);
            b.put_u8(0);
            put_data(b, at, p);
        }
        // Everything else is a request (a switch does not send it) or has
        // its own 1.0 encoder (FEATURES and STATS replies).
        _ => return Err(OfpError::BAD_REQUEST_TYPE),
    }
    Ok(())
}

/// 1.0 has no OFPRR_GROUP_DELETE: OVS says "delete".
fn reason10(r: RemovalReason) -> u8 {
    match r {
        RemovalReason::GroupDelete => RemovalReason::Delete as u8,
        r => r as u8,
    }
}

fn put_data(b: &mut Vec<u8>, at: usize, p: &PacketInMsg) {
    let room = MAX_MSG.saturating_sub(b.len() - at);
    b.extend_from_slice(&p.data[..p.data.len().min(room)]);
}

pub(super) fn put_duration(b: &mut Vec<u8>, ms: u64) {
    b.put_u32((ms / 1000).min(u32::MAX as u64) as u32);
    b.put_u32((ms % 1000) as u32 * 1_000_000);
}

/// An `ofp10_phy_port` (48 bytes): 1.0 has no speed field, and of the
/// state bits only LINK_DOWN means the same.
pub(super) fn put_phy_port(b: &mut Vec<u8>, p: &PortDesc) {
    b.put_u16(p.port_no as u16);
    b.extend_from_slice(&p.hw_addr);
    b.put_str(&p.name, 16);
    b.put_u32(p.config);
    b.put_u32(p.state & 1);
    b.put_zeros(16);
}

/// OFPC_* bits 1.0 shares with 1.3 (flow, table, port stats, IP
/// reassembly, queue stats), and ARP_MATCH_IP.
const CAPS10: u32 = 1 | 2 | 4 | 32 | 64;
const ARP_MATCH_IP: u32 = 128;
/// OFPAT10_OUTPUT .. OFPAT10_SET_TP_DST (no ENQUEUE: no queues).
const ACTIONS10: u32 = (1 << 11) - 1;

/// FEATURES_REPLY in 1.0: the features and the ports.
pub fn features_reply(
    xid: u32,
    feat: &crate::openflow::message::Features,
    ports: &[PortDesc],
    b: &mut Vec<u8>,
) -> Result<(), OfpError> {
    let at = start(b, t::FEATURES_REPLY, xid);
    b.put_u64(feat.datapath_id);
    b.put_u32(feat.n_buffers);
    b.put_u8(feat.n_tables);
    b.put_zeros(3);
    b.put_u32(feat.capabilities & CAPS10 | ARP_MATCH_IP);
    b.put_u32(ACTIONS10);
    // As many ports as fit (OVS does the same past 64 KiB).
    for p in ports.iter().take((MAX_MSG - 32) / 48) {
        put_phy_port(b, p);
    }
    finish(b, at);
    Ok(())
}

/// NXT_ROLE_REPLY with Nicira's role.
pub fn nx_role_reply(xid: u32, role: u32, b: &mut Vec<u8>) {
    let at = start_nx(b, nxt::ROLE_REPLY, xid);
    b.put_u32(role);
    finish(b, at);
}

/// QUEUE_GET_CONFIG_REPLY: rvs's ports have no queues.
pub fn queue_config_reply(xid: u32, port: u16, b: &mut Vec<u8>) {
    let at = start(b, t10::QUEUE_GET_CONFIG_REPLY, xid);
    b.put_u16(port);
    b.put_zeros(6);
    finish(b, at);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ofp::{parse_flow, parse_match};
    use crate::openflow::message::FlowRemoved;

    fn msg(typ: u8, body: &[u8]) -> Vec<u8> {
        let mut b = vec![OFP10, typ, 0, 0, 0, 0, 0, 7];
        b.extend_from_slice(body);
        let n = b.len() as u16;
        b[2..4].copy_from_slice(&n.to_be_bytes());
        b
    }

    fn nx(subtype: u32, body: &[u8]) -> Vec<u8> {
        let mut v = NX_VENDOR.to_be_bytes().to_vec();
        v.extend_from_slice(&subtype.to_be_bytes());
        v.extend_from_slice(body);
        msg(t10::VENDOR, &v)
    }

    #[test]
    fn a_one_zero_flow_mod_adds_to_table_zero_and_deletes_everywhere() {
        let rule = parse_flow("priority=5,tcp,tp_dst=22,actions=output:2", &()).unwrap();
        let mut body = Vec::new();
        encode_match10(&mut body, &rule.matches).unwrap();
        body.put_u64(0x77);
        body.put_u16(0); // add
        body.put_zeros(4);
        body.put_u16(5);
        body.put_u32(u32::MAX);
        body.put_u16(OFPP10_NONE);
        body.put_u16(FF_SEND_FLOW_REM);
        body.extend_from_slice(&[0, 0, 0, 8, 0, 2, 0, 0]);
        let (_, m) = decode(&msg(t10::FLOW_MOD, &body), &Formats::default()).unwrap();
        let In10::Msg(Message::FlowMod(fm)) = m else {
            panic!("{m:?}")
        };
        assert_eq!(
            fm.fm.rule.to_string(),
            "table=0,priority=5,cookie=0x77,tcp,tp_dst=22,actions=output:2"
        );
        assert!(fm.fm.send_flow_rem && !fm.fm.all_tables);
        // The same as a delete: every table.
        body[48..50].copy_from_slice(&3u16.to_be_bytes());
        let (_, m) = decode(&msg(t10::FLOW_MOD, &body), &Formats::default()).unwrap();
        let In10::Msg(Message::FlowMod(fm)) = m else {
            panic!()
        };
        assert!(fm.fm.all_tables && fm.fm.cookie_mask == 0);
        // With NXT_FLOW_MOD_TABLE_ID the high byte is the table.
        body[48..50].copy_from_slice(&0x0300u16.to_be_bytes());
        let f = Formats {
            table_id: true,
            ..Formats::default()
        };
        let (_, m) = decode(&msg(t10::FLOW_MOD, &body), &f).unwrap();
        let In10::Msg(Message::FlowMod(fm)) = m else {
            panic!()
        };
        assert_eq!((fm.fm.rule.table, fm.fm.all_tables), (3, false));
    }

    #[test]
    fn nxt_flow_mod_carries_nxm_and_a_cookie_filter() {
        let m = parse_match("reg0=5,tun_id=0x1389", &()).unwrap();
        let mut nxm = Vec::new();
        // NXM_NX_COOKIE_W: cookie 0x10/0xf0.
        nxm.extend_from_slice(&[0x00, 0x01, 0x3d, 0x10]);
        nxm.put_u64(0x10);
        nxm.put_u64(0xf0);
        let n = encode_nx_match(&mut nxm, &m).unwrap() + 20;
        nxm.truncate(n as usize);
        let mut body = Vec::new();
        body.put_u64(0);
        body.put_u16(3); // delete
        body.put_zeros(6);
        body.put_u32(u32::MAX);
        body.put_u16(OFPP10_NONE);
        body.put_u16(0);
        body.put_u16(n);
        body.put_zeros(6);
        body.extend_from_slice(&nxm);
        body.pad8_from(0);
        let (_, msg) = decode(&nx(nxt::FLOW_MOD, &body), &Formats::default()).unwrap();
        let In10::Msg(Message::FlowMod(fm)) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(fm.fm.rule.matches, m);
        assert_eq!((fm.fm.rule.cookie, fm.fm.cookie_mask), (0x10, 0xf0));
    }

    #[test]
    fn unknown_vendors_subtypes_and_types_get_their_errors() {
        let f = Formats::default();
        let mut v = msg(t10::VENDOR, &[0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(decode(&v, &f).unwrap_err().1, OfpError::BAD_REQUEST_EXPERIMENTER);
        v = nx(99, &[]);
        assert_eq!(decode(&v, &f).unwrap_err().1, OfpError::BAD_REQUEST_EXP_TYPE);
        assert_eq!(
            decode(&msg(30, &[]), &f).unwrap_err().1,
            OfpError::BAD_REQUEST_TYPE
        );
        let mut v13 = msg(t::FEATURES_REQUEST, &[]);
        v13[0] = 4;
        assert_eq!(decode(&v13, &f).unwrap_err().1, OfpError::BAD_REQUEST_VERSION);
    }

    #[test]
    fn packet_in_takes_the_chosen_format() {
        let p = PacketInMsg {
            buffer_id: u32::MAX,
            total_len: 60,
            reason: 0,
            table: 2,
            cookie: 9,
            matches: parse_match("in_port=3,reg1=7", &()).unwrap(),
            data: vec![0xab; 60],
        };
        let m = Message::PacketIn(p);
        let mut b = Vec::new();
        encode(&m, 0, &Formats::default(), &mut b).unwrap();
        // ofp10_packet_in: buffer, total_len, in_port 3, reason, pad, data.
        assert_eq!(
            (b[1], &b[12..16], b.len()),
            (t10::PACKET_IN, &[0, 60, 0, 3][..], 18 + 60)
        );
        let f = Formats {
            nxt_packet_in: true,
            ..Formats::default()
        };
        let mut b = Vec::new();
        encode(&m, 0, &f, &mut b).unwrap();
        assert_eq!(&b[12..16], &nxt::PACKET_IN.to_be_bytes());
        let match_len = u16::from_be_bytes([b[32], b[33]]) as usize;
        let mut r = Reader::new(&b[40..], OfpError::BAD_REQUEST_LEN);
        let (meta, _) = decode_nx_match(&mut r, match_len).unwrap();
        assert_eq!(meta, parse_match("in_port=3,reg1=7", &()).unwrap());
        assert_eq!(&r.rest()[..3], &[0, 0, 0xab]);
    }

    #[test]
    fn flow_removed_takes_the_chosen_flow_format() {
        let fr = FlowRemoved {
            reason: RemovalReason::GroupDelete,
            table: 3,
            priority: 9,
            cookie: 5,
            duration_ms: 1500,
            idle_timeout: 10,
            hard_timeout: 0,
            packets: 2,
            bytes: 100,
            matches: parse_match("reg0=1", &()).unwrap(),
        };
        let m = Message::FlowRemoved(fr.clone());
        let mut b = Vec::new();
        // The fixed match cannot say reg0: nothing goes.
        assert!(encode(&m, 1, &Formats::default(), &mut b).is_err());
        assert!(b.is_empty());
        let f = Formats {
            nxm: true,
            ..Formats::default()
        };
        encode(&m, 1, &f, &mut b).unwrap();
        assert_eq!(b[1], t10::VENDOR);
        assert_eq!(&b[12..16], &nxt::FLOW_REMOVED.to_be_bytes());
        assert_eq!(b[26], 2, "group delete is a delete in 1.0");
        assert_eq!(b[27], 4, "table plus one");
        assert_eq!(b.len() % 8, 0);
    }
}
