//! [`Message`]: the OpenFlow 1.3 messages rvs speaks, each decoded from and
//! encoded to its wire form (one message = one buffer of `length` bytes).

use super::actions::Ctx;
use super::error::OfpError;
use super::instructions::{decode_instructions, encode_instructions};
use super::multipart::{get_port, put_port, MpReply, MpRequest, PortDesc};
use super::oxm::{decode_match, encode_match};
use super::packet::{PacketInMsg, PacketOutMsg, PortModMsg};
use super::wire::{
    finish, msg_type as t, port_from13, port_to13, start, Header, Put, Reader, HEADER_LEN, NO_BUFFER, OFP13,
    OFPG_ANY, OFPP13_ANY, OFPTT_ALL,
};
use crate::flow_mod::{Command, FlowMod, RemovalReason};
use crate::ofp::Rule;

/// OFPFF_SEND_FLOW_REM.
pub const FF_SEND_FLOW_REM: u16 = 1;
/// OFPFF_CHECK_OVERLAP.
pub const FF_CHECK_OVERLAP: u16 = 2;
/// OFPFF_RESET_COUNTS.
pub const FF_RESET_COUNTS: u16 = 4;
/// OFPFF_NO_PKT_COUNTS | OFPFF_NO_BYT_COUNTS (accepted; rvs counts anyway).
pub const FF_NO_COUNTS: u16 = 8 | 16;

/// A FLOW_MOD as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowModMsg {
    /// What it does to the tables.
    pub fm: FlowMod,
    /// A buffered packet to run through the new rule (rvs buffers none).
    pub buffer_id: u32,
    /// OFPFF_* flags as sent.
    pub flags: u16,
}

/// The switch's features (FEATURES_REPLY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// Datapath id.
    pub datapath_id: u64,
    /// Packets the switch can buffer.
    pub n_buffers: u32,
    /// Tables.
    pub n_tables: u8,
    /// OFPC_* bits.
    pub capabilities: u32,
}

/// SET_CONFIG / GET_CONFIG_REPLY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchConfig {
    /// OFPC_FRAG_* handling.
    pub flags: u16,
    /// Bytes of a table-miss packet sent to the controller.
    pub miss_send_len: u16,
}

/// ROLE_REQUEST / ROLE_REPLY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Role {
    /// OFPCR_ROLE_* (0 no change, 1 equal, 2 master, 3 slave).
    pub role: u32,
    /// Master election generation.
    pub generation_id: u64,
}

/// SET_ASYNC / GET_ASYNC_REPLY: which asynchronous messages a connection
/// gets, [master/equal, slave].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AsyncConfig {
    /// PACKET_IN reasons.
    pub packet_in: [u32; 2],
    /// PORT_STATUS reasons.
    pub port_status: [u32; 2],
    /// FLOW_REMOVED reasons.
    pub flow_removed: [u32; 2],
}

/// One OpenFlow message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// HELLO; `bitmap`: the versions offered (bit N = version N), when the
    /// sender includes a version bitmap.
    Hello {
        /// Versions offered.
        bitmap: Option<u32>,
    },
    /// ERROR with the start of the offending message.
    Error {
        /// Type and code.
        err: OfpError,
        /// At least 64 bytes of the request (or all of it).
        data: Vec<u8>,
    },
    /// ECHO_REQUEST.
    EchoRequest(Vec<u8>),
    /// ECHO_REPLY.
    EchoReply(Vec<u8>),
    /// FEATURES_REQUEST.
    FeaturesRequest,
    /// FEATURES_REPLY.
    FeaturesReply(Features),
    /// GET_CONFIG_REQUEST.
    GetConfigRequest,
    /// GET_CONFIG_REPLY.
    GetConfigReply(SwitchConfig),
    /// SET_CONFIG.
    SetConfig(SwitchConfig),
    /// FLOW_MOD.
    FlowMod(FlowModMsg),
    /// BARRIER_REQUEST.
    BarrierRequest,
    /// BARRIER_REPLY.
    BarrierReply,
    /// MULTIPART_REQUEST.
    MultipartRequest {
        /// OFPMPF_REQ_MORE.
        flags: u16,
        /// The request.
        body: MpRequest,
    },
    /// MULTIPART_REPLY (one part; OFPMPF_REPLY_MORE when more follow).
    MultipartReply {
        /// OFPMPF_REPLY_MORE.
        flags: u16,
        /// The part.
        body: MpReply,
    },
    /// ROLE_REQUEST.
    RoleRequest(Role),
    /// ROLE_REPLY.
    RoleReply(Role),
    /// GET_ASYNC_REQUEST.
    GetAsyncRequest,
    /// GET_ASYNC_REPLY.
    GetAsyncReply(AsyncConfig),
    /// SET_ASYNC.
    SetAsync(AsyncConfig),
    /// FLOW_REMOVED: a rule that asked for it went.
    FlowRemoved(FlowRemoved),
    /// PACKET_IN: a packet for the controller.
    PacketIn(PacketInMsg),
    /// PACKET_OUT: a packet from the controller, with actions.
    PacketOut(PacketOutMsg),
    /// GROUP_MOD: add, change or delete a group.
    GroupMod(super::group::GroupModMsg),
    /// PORT_MOD: change a port's configuration.
    PortMod(PortModMsg),
    /// PORT_STATUS: a port was added, deleted or changed.
    PortStatus {
        /// OFPPR_ADD (0), OFPPR_DELETE (1), OFPPR_MODIFY (2).
        reason: u8,
        /// The port (as it was, for a delete).
        desc: PortDesc,
    },
}

/// A FLOW_REMOVED's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRemoved {
    /// Why.
    pub reason: RemovalReason,
    /// Table.
    pub table: u8,
    /// Priority.
    pub priority: u16,
    /// Cookie.
    pub cookie: u64,
    /// How long it lived (ms).
    pub duration_ms: u64,
    /// Idle timeout (s).
    pub idle_timeout: u16,
    /// Hard timeout (s).
    pub hard_timeout: u16,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Match.
    pub matches: crate::ofp::Match,
}

/// OFPPR_ADD.
pub const PPR_ADD: u8 = 0;
/// OFPPR_DELETE.
pub const PPR_DELETE: u8 = 1;
/// OFPPR_MODIFY.
pub const PPR_MODIFY: u8 = 2;

/// Decode one message; `buf` is exactly its `length` bytes. The header is
/// returned with the error, so the ERROR reply can carry its xid.
pub fn decode(buf: &[u8]) -> Result<(Header, Message), (Header, OfpError)> {
    let h = Header::peek(buf).ok_or((
        Header {
            version: OFP13,
            msg_type: 0,
            length: 0,
            xid: 0,
        },
        OfpError::BAD_REQUEST_LEN,
    ))?;
    decode_body(&h, buf.get(HEADER_LEN..).unwrap_or_default())
        .map(|m| (h, m))
        .map_err(|e| (h, e))
}

fn decode_body(h: &Header, body: &[u8]) -> Result<Message, OfpError> {
    let mut r = Reader::new(body, OfpError::BAD_REQUEST_LEN);
    if h.msg_type == t::HELLO {
        return decode_hello(h, &mut r);
    }
    if h.version != OFP13 {
        return Err(OfpError::BAD_REQUEST_VERSION);
    }
    if let Some(m) = decode_shared(h.msg_type, &mut r) {
        return m;
    }
    let m = match h.msg_type {
        t::FEATURES_REPLY => {
            r.expect_len(24)?;
            let datapath_id = r.u64()?;
            let n_buffers = r.u32()?;
            let n_tables = r.u8()?;
            r.skip(3)?;
            let capabilities = r.u32()?;
            Message::FeaturesReply(Features {
                datapath_id,
                n_buffers,
                n_tables,
                capabilities,
            })
        }
        t::FLOW_MOD => Message::FlowMod(decode_flow_mod(&mut r)?),
        t::BARRIER_REQUEST => {
            r.expect_len(0)?;
            Message::BarrierRequest
        }
        t::BARRIER_REPLY => {
            r.expect_len(0)?;
            Message::BarrierReply
        }
        t::MULTIPART_REQUEST | t::MULTIPART_REPLY => {
            let typ = r.u16()?;
            let flags = r.u16()?;
            r.skip(4)?;
            if h.msg_type == t::MULTIPART_REQUEST {
                Message::MultipartRequest {
                    flags,
                    body: MpRequest::decode(typ, &mut r)?,
                }
            } else {
                Message::MultipartReply {
                    flags,
                    body: MpReply::decode(typ, &mut r)?,
                }
            }
        }
        t::ROLE_REQUEST | t::ROLE_REPLY => {
            r.expect_len(16)?;
            let role = r.u32()?;
            r.skip(4)?;
            let role = Role {
                role,
                generation_id: r.u64()?,
            };
            if h.msg_type == t::ROLE_REQUEST {
                Message::RoleRequest(role)
            } else {
                Message::RoleReply(role)
            }
        }
        t::GET_ASYNC_REQUEST => {
            r.expect_len(0)?;
            Message::GetAsyncRequest
        }
        t::GET_ASYNC_REPLY | t::SET_ASYNC => {
            r.expect_len(24)?;
            let mut a = AsyncConfig::default();
            for pair in [&mut a.packet_in, &mut a.port_status, &mut a.flow_removed] {
                pair[0] = r.u32()?;
                pair[1] = r.u32()?;
            }
            if h.msg_type == t::SET_ASYNC {
                Message::SetAsync(a)
            } else {
                Message::GetAsyncReply(a)
            }
        }
        t::FLOW_REMOVED => {
            let cookie = r.u64()?;
            let priority = r.u16()?;
            let reason = match r.u8()? {
                0 => RemovalReason::Idle,
                1 => RemovalReason::Hard,
                2 => RemovalReason::Delete,
                3 => RemovalReason::GroupDelete,
                _ => return Err(OfpError::BAD_REQUEST_LEN),
            };
            let table = r.u8()?;
            let (secs, nsecs) = (r.u32()?, r.u32()?);
            let idle_timeout = r.u16()?;
            let hard_timeout = r.u16()?;
            let packets = r.u64()?;
            let bytes = r.u64()?;
            let matches = decode_match(&mut r)?;
            r.expect_len(0)?;
            Message::FlowRemoved(FlowRemoved {
                reason,
                table,
                priority,
                cookie,
                duration_ms: secs as u64 * 1000 + nsecs as u64 / 1_000_000,
                idle_timeout,
                hard_timeout,
                packets,
                bytes,
                matches,
            })
        }
        t::PACKET_IN => Message::PacketIn(PacketInMsg::decode(&mut r)?),
        t::PACKET_OUT => Message::PacketOut(PacketOutMsg::decode(&mut r)?),
        t::PORT_MOD => Message::PortMod(PortModMsg::decode(&mut r)?),
        t::GROUP_MOD => Message::GroupMod(super::group::GroupModMsg::decode(&mut r)?),
        t::PORT_STATUS => {
            r.expect_len(72)?;
            let reason = r.u8()?;
            r.skip(7)?;
            Message::PortStatus {
                reason,
                desc: get_port(&mut r)?,
            }
        }
        t::EXPERIMENTER => return Err(OfpError::BAD_REQUEST_EXPERIMENTER),
        _ => return Err(OfpError::BAD_REQUEST_TYPE),
    };
    Ok(m)
}

/// The requests whose bodies are the same in OpenFlow 1.0 and 1.3 (ERROR,
/// ECHO, FEATURES_REQUEST, GET_CONFIG_REQUEST, SET_CONFIG and
/// GET_CONFIG_REPLY); `None` for any other type.
pub(crate) fn decode_shared(msg_type: u8, r: &mut Reader<'_>) -> Option<Result<Message, OfpError>> {
    let config = |r: &mut Reader<'_>| -> Result<SwitchConfig, OfpError> {
        r.expect_len(4)?;
        Ok(SwitchConfig {
            flags: r.u16()?,
            miss_send_len: r.u16()?,
        })
    };
    Some(match msg_type {
        t::ERROR => (|| {
            let typ = r.u16()?;
            let code = r.u16()?;
            Ok(Message::Error {
                err: OfpError { typ, code },
                data: r.rest().to_vec(),
            })
        })(),
        t::ECHO_REQUEST => Ok(Message::EchoRequest(r.rest().to_vec())),
        t::ECHO_REPLY => Ok(Message::EchoReply(r.rest().to_vec())),
        t::FEATURES_REQUEST => r.expect_len(0).map(|_| Message::FeaturesRequest),
        t::GET_CONFIG_REQUEST => r.expect_len(0).map(|_| Message::GetConfigRequest),
        t::SET_CONFIG => config(r).map(Message::SetConfig),
        t::GET_CONFIG_REPLY => config(r).map(Message::GetConfigReply),
        _ => return None,
    })
}

fn decode_hello(h: &Header, r: &mut Reader<'_>) -> Result<Message, OfpError> {
    let mut bitmap = None;
    // Elements; a malformed tail is ignored, as the spec asks of unknown ones.
    while r.len() >= 4 {
        let typ = r.u16()?;
        let len = r.u16()? as usize;
        if len < 4 {
            break;
        }
        let Ok(mut body) = r.sub(len - 4) else { break };
        r.skip((8 - len % 8) % 8).ok();
        if typ == 1 {
            let mut bits = 0u32;
            // Bitmap word 0 covers versions 0..31: all rvs cares about.
            if let Ok(w) = body.u32() {
                bits = w;
            }
            bitmap = Some(bits);
        }
    }
    let _ = h;
    Ok(Message::Hello { bitmap })
}

fn decode_flow_mod(r: &mut Reader<'_>) -> Result<FlowModMsg, OfpError> {
    let cookie = r.u64()?;
    let cookie_mask = r.u64()?;
    let table = r.u8()?;
    let command = match r.u8()? {
        0 => Command::Add,
        1 => Command::Modify,
        2 => Command::ModifyStrict,
        3 => Command::Delete,
        4 => Command::DeleteStrict,
        _ => return Err(OfpError::FLOW_MOD_BAD_COMMAND),
    };
    let idle_timeout = r.u16()?;
    let hard_timeout = r.u16()?;
    let priority = r.u16()?;
    let buffer_id = r.u32()?;
    let out_port = r.u32()?;
    let out_group = r.u32()?;
    let flags = r.u16()?;
    r.skip(2)?;
    if flags & !(FF_SEND_FLOW_REM | FF_CHECK_OVERLAP | FF_RESET_COUNTS | FF_NO_COUNTS) != 0 {
        return Err(OfpError::FLOW_MOD_BAD_FLAGS);
    }
    let all_tables = table == OFPTT_ALL;
    // Tables 0..253, as OVS (254 is reserved).
    if (all_tables && command == Command::Add) || table == 254 {
        return Err(OfpError::FLOW_MOD_BAD_TABLE_ID);
    }
    let matches = decode_match(r)?;
    let actions = decode_instructions(r, table)?;
    Ok(FlowModMsg {
        fm: FlowMod {
            command,
            rule: Rule {
                table: if all_tables { 0 } else { table },
                priority,
                cookie,
                idle_timeout,
                hard_timeout,
                matches,
                actions,
            },
            cookie_mask,
            all_tables,
            out_port: (out_port != OFPP13_ANY).then(|| port_from13(out_port)),
            // The spec filters deletes only; a modify ignores it.
            out_group: (out_group != OFPG_ANY && matches!(command, Command::Delete | Command::DeleteStrict))
                .then_some(out_group),
            check_overlap: flags & FF_CHECK_OVERLAP != 0,
            send_flow_rem: flags & FF_SEND_FLOW_REM != 0,
            reset_counts: flags & FF_RESET_COUNTS != 0,
            new_cookie: None,
        },
        buffer_id,
        flags,
    })
}

impl Message {
    /// The wire type of this message.
    pub fn msg_type(&self) -> u8 {
        match self {
            Message::Hello { .. } => t::HELLO,
            Message::Error { .. } => t::ERROR,
            Message::EchoRequest(_) => t::ECHO_REQUEST,
            Message::EchoReply(_) => t::ECHO_REPLY,
            Message::FeaturesRequest => t::FEATURES_REQUEST,
            Message::FeaturesReply(_) => t::FEATURES_REPLY,
            Message::GetConfigRequest => t::GET_CONFIG_REQUEST,
            Message::GetConfigReply(_) => t::GET_CONFIG_REPLY,
            Message::SetConfig(_) => t::SET_CONFIG,
            Message::FlowMod(_) => t::FLOW_MOD,
            Message::BarrierRequest => t::BARRIER_REQUEST,
            Message::BarrierReply => t::BARRIER_REPLY,
            Message::MultipartRequest { .. } => t::MULTIPART_REQUEST,
            Message::MultipartReply { .. } => t::MULTIPART_REPLY,
            Message::RoleRequest(_) => t::ROLE_REQUEST,
            Message::RoleReply(_) => t::ROLE_REPLY,
            Message::GetAsyncRequest => t::GET_ASYNC_REQUEST,
            Message::GetAsyncReply(_) => t::GET_ASYNC_REPLY,
            Message::SetAsync(_) => t::SET_ASYNC,
            Message::PortStatus { .. } => t::PORT_STATUS,
            Message::FlowRemoved(_) => t::FLOW_REMOVED,
            Message::PacketIn(_) => t::PACKET_IN,
            Message::PacketOut(_) => t::PACKET_OUT,
            Message::PortMod(_) => t::PORT_MOD,
            Message::GroupMod(_) => t::GROUP_MOD,
        }
    }

    /// Append the message with transaction id `xid` to `buf`. Fails (with
    /// nothing appended) when a rule in it has no OpenFlow 1.3 form.
    pub fn encode(&self, xid: u32, buf: &mut Vec<u8>) -> Result<(), OfpError> {
        let at = start(buf, self.msg_type(), xid);
        let mut r = self.encode_body(buf, at);
        if r.is_ok() && buf.len() - at > u16::MAX as usize {
            // Its length field could not say so.
            r = Err(OfpError::BAD_REQUEST_LEN);
        }
        if r.is_err() {
            buf.truncate(at);
            return r;
        }
        finish(buf, at);
        Ok(())
    }

    fn encode_body(&self, b: &mut Vec<u8>, at: usize) -> Result<(), OfpError> {
        match self {
            Message::Hello { bitmap } => {
                if let Some(bits) = bitmap {
                    b.put_u16(1);
                    b.put_u16(8);
                    b.put_u32(*bits);
                }
            }
            Message::Error { err, data } => {
                b.put_u16(err.typ);
                b.put_u16(err.code);
                b.extend_from_slice(data);
            }
            Message::EchoRequest(d) | Message::EchoReply(d) => b.extend_from_slice(d),
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply
            | Message::GetAsyncRequest => {}
            Message::FeaturesReply(f) => {
                b.put_u64(f.datapath_id);
                b.put_u32(f.n_buffers);
                b.put_u8(f.n_tables);
                b.put_zeros(3);
                b.put_u32(f.capabilities);
                b.put_u32(0);
            }
            Message::GetConfigReply(c) | Message::SetConfig(c) => {
                b.put_u16(c.flags);
                b.put_u16(c.miss_send_len);
            }
            Message::FlowMod(m) => encode_flow_mod(b, m)?,
            Message::MultipartRequest { flags, body } => {
                b.put_u16(body.mp_type());
                b.put_u16(*flags);
                b.put_zeros(4);
                body.encode(b)?;
            }
            Message::MultipartReply { flags, body } => {
                b.put_u16(body.mp_type());
                b.put_u16(*flags);
                b.put_zeros(4);
                body.encode(b)?;
            }
            Message::RoleRequest(r) | Message::RoleReply(r) => {
                b.put_u32(r.role);
                b.put_zeros(4);
                b.put_u64(r.generation_id);
            }
            Message::GetAsyncReply(a) | Message::SetAsync(a) => {
                for pair in [a.packet_in, a.port_status, a.flow_removed] {
                    b.put_u32(pair[0]);
                    b.put_u32(pair[1]);
                }
            }
            Message::FlowRemoved(f) => {
                b.put_u64(f.cookie);
                b.put_u16(f.priority);
                b.put_u8(f.reason as u8);
                b.put_u8(f.table);
                b.put_u32((f.duration_ms / 1000) as u32);
                b.put_u32((f.duration_ms % 1000) as u32 * 1_000_000);
                b.put_u16(f.idle_timeout);
                b.put_u16(f.hard_timeout);
                b.put_u64(f.packets);
                b.put_u64(f.bytes);
                encode_match(b, &f.matches)?;
            }
            Message::PortStatus { reason, desc } => {
                b.put_u8(*reason);
                b.put_zeros(7);
                put_port(b, desc);
            }
            Message::PacketIn(p) => p.encode(b, at)?,
            Message::PacketOut(p) => p.encode(b)?,
            Message::PortMod(p) => p.encode(b),
            Message::GroupMod(g) => g.encode(b)?,
        }
        Ok(())
    }
}

fn encode_flow_mod(b: &mut Vec<u8>, m: &FlowModMsg) -> Result<(), OfpError> {
    let fm = &m.fm;
    let r = &fm.rule;
    b.put_u64(r.cookie);
    b.put_u64(fm.cookie_mask);
    b.put_u8(if fm.all_tables { OFPTT_ALL } else { r.table });
    b.put_u8(match fm.command {
        Command::Add => 0,
        Command::Modify => 1,
        Command::ModifyStrict => 2,
        Command::Delete => 3,
        Command::DeleteStrict => 4,
    });
    b.put_u16(r.idle_timeout);
    b.put_u16(r.hard_timeout);
    b.put_u16(r.priority);
    b.put_u32(m.buffer_id);
    b.put_u32(fm.out_port.map_or(OFPP13_ANY, port_to13));
    b.put_u32(fm.out_group.unwrap_or(OFPG_ANY));
    b.put_u16(m.flags);
    b.put_zeros(2);
    encode_match(b, &r.matches)?;
    encode_instructions(b, &r.actions, &Ctx::of(&r.matches))
}

/// A FLOW_MOD adding `rule` (what a controller sends for `add-flow`).
pub fn add_flow(rule: Rule) -> Message {
    Message::FlowMod(FlowModMsg {
        fm: FlowMod::new(Command::Add, rule),
        buffer_id: NO_BUFFER,
        flags: 0,
    })
}

/// The ERROR for a refused message: its type/code and the message's first
/// 64 bytes, as the spec asks.
pub fn error_for(err: OfpError, request: &[u8]) -> Message {
    Message::Error {
        err,
        data: request[..request.len().min(64)].to_vec(),
    }
}

/// Whether a rule has an OpenFlow 1.3 form.
pub fn encodable(rule: &Rule) -> bool {
    let mut b = Vec::new();
    encode_match(&mut b, &rule.matches).is_ok()
        && encode_instructions(&mut b, &rule.actions, &Ctx::of(&rule.matches)).is_ok()
}
