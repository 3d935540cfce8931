//! [`Session`]: one OpenFlow connection without its socket. Bytes in,
//! bytes out (as quinn-proto does it): framing, version negotiation, and
//! the answer to every request, against an [`OfSwitch`].

use super::bridge_ops;
use super::error::OfpError;
use super::group::{GroupModMsg, GroupStats};
use super::message::{decode, error_for, AsyncConfig, Features, FlowRemoved, Message, Role, SwitchConfig};
use super::multipart::{Desc, FlowFilter, FlowStats, MpReply, MpRequest, PortDesc, PortStats, TableStats};
use super::packet::{PacketOutMsg, PortModMsg};
use super::v10::{self, In10, OFP10};
use super::wire::{Header, HEADER_LEN, NO_BUFFER, OFP13};
use crate::flow_mod::FlowMod;
use crate::group::{Group, GROUP_ALL};
use crate::packet_in::PacketIn;

/// OFPCR_ROLE_NOCHANGE.
pub const ROLE_NOCHANGE: u32 = 0;
/// OFPCR_ROLE_EQUAL.
pub const ROLE_EQUAL: u32 = 1;
/// OFPCR_ROLE_MASTER.
pub const ROLE_MASTER: u32 = 2;
/// OFPCR_ROLE_SLAVE.
pub const ROLE_SLAVE: u32 = 3;

/// What a session needs of the switch behind it (one bridge).
pub trait OfSwitch {
    /// FEATURES_REPLY's content.
    fn features(&self) -> Features;
    /// DESC's strings.
    fn desc(&self) -> Desc;
    /// The bridge's ports.
    fn ports(&self) -> Vec<PortDesc>;
    /// Port counters (`None`: all ports); an unknown port is an error.
    fn port_stats(&self, port: Option<u32>) -> Result<Vec<PortStats>, OfpError>;
    /// Apply a flow modification (all or nothing).
    fn flow_mod(&mut self, fm: &FlowMod) -> Result<(), OfpError>;
    /// The rules a filter selects, with counters.
    fn flows(&self, filter: &FlowFilter) -> Vec<FlowStats>;
    /// Per-table counters.
    fn tables(&self) -> Vec<TableStats>;
    /// This connection's role.
    fn role(&self, conn: u64) -> u32;
    /// A ROLE_REQUEST of connection `conn`.
    fn role_request(&mut self, conn: u64, req: Role) -> Result<Role, OfpError>;
    /// Run a PACKET_OUT (its buffer, packet and in_port checked here).
    fn packet_out(&mut self, po: &PacketOutMsg) -> Result<(), OfpError>;
    /// Apply a PORT_MOD (all or nothing).
    fn port_mod(&mut self, pm: &PortModMsg) -> Result<(), OfpError>;
    /// Apply a GROUP_MOD (all or nothing).
    fn group_mod(&mut self, gm: &GroupModMsg) -> Result<(), OfpError>;
    /// The bridge's groups, each with its counters and how many rules send
    /// to it.
    fn groups(&self) -> Vec<(Group, GroupStats)>;
}

/// Version bitmap rvs offers: OpenFlow 1.0 and 1.3.
const OUR_VERSIONS: u32 = 1 << OFP10 | 1 << OFP13;
/// Output held before input processing pauses.
pub const OUT_HIGH_WATER: usize = 1 << 20;
/// Largest body of one multipart reply part.
const PART_LIMIT: usize = 65535 - 16;

/// One connection's protocol state.
pub struct Session {
    conn: u64,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    hello_seen: bool,
    /// The negotiated version (1.3 until a HELLO says otherwise).
    version: u8,
    /// Nicira flow and packet-in formats a 1.0 peer chose.
    formats: v10::Formats,
    closing: bool,
    config: SwitchConfig,
    async_cfg: AsyncConfig,
    /// A connection to a listener (`ptcp:`): OVS's "service" connection,
    /// which gets no asynchronous message until it sets a nonzero
    /// miss_send_len (as `ovs-ofctl monitor` does).
    service: bool,
}

impl Session {
    /// A new session for connection `conn` to a controller the bridge
    /// dialed (`tcp:`): our HELLO is already queued.
    pub fn new(conn: u64) -> Session {
        Session::with_kind(conn, false)
    }

    /// A new session for connection `conn` accepted on a `ptcp:` listener
    /// (a "service" connection, as OVS calls it).
    pub fn service(conn: u64) -> Session {
        Session::with_kind(conn, true)
    }

    fn with_kind(conn: u64, service: bool) -> Session {
        let mut out = Vec::new();
        Message::Hello {
            bitmap: Some(OUR_VERSIONS),
        }
        .encode(0, &mut out)
        .expect("HELLO always encodes");
        Session {
            conn,
            inbuf: Vec::new(),
            out,
            hello_seen: false,
            version: OFP13,
            formats: v10::Formats::default(),
            closing: false,
            config: SwitchConfig {
                flags: 0,
                miss_send_len: if service { 0 } else { 128 },
            },
            async_cfg: AsyncConfig {
                // OpenFlow 1.3's defaults: no-match and action packet-ins,
                // all port status, flow-removed except by delete for slaves.
                packet_in: [0b11, 0],
                port_status: [0b111, 0b111],
                flow_removed: [0b1111, 0],
            },
            service,
        }
    }

    /// True when asynchronous messages may go to this peer.
    fn wants_async(&self) -> bool {
        self.hello_seen && !(self.service && self.config.miss_send_len == 0)
    }

    /// True when whole messages wait for the output to be taken (call
    /// [`Session::receive`] with no new bytes after sending it).
    pub fn backlog(&self) -> bool {
        !self.closing
            && Header::peek(&self.inbuf)
                .is_some_and(|h| self.inbuf.len() >= (h.length as usize).max(HEADER_LEN))
    }

    /// True when the output holds as much as it may ([`OUT_HIGH_WATER`]):
    /// send it before giving the session more.
    pub fn pending_output(&self) -> bool {
        self.out.len() >= OUT_HIGH_WATER
    }

    /// Bytes to send (taken).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Queue an ECHO_REQUEST (the inactivity probe: a peer that answers
    /// nothing for a while is gone).
    pub fn probe(&mut self) {
        self.send(0, &Message::EchoRequest(Vec::new()));
    }

    /// Tell the peer a port came, went or changed (PORT_STATUS), when its
    /// role's asynchronous configuration asks for that reason.
    pub fn port_status(&mut self, reason: u8, desc: PortDesc, sw: &dyn OfSwitch) {
        let slave = usize::from(sw.role(self.conn) == ROLE_SLAVE);
        if !self.wants_async() || self.async_cfg.port_status[slave] & (1 << reason) == 0 {
            return;
        }
        self.send(0, &Message::PortStatus { reason, desc });
    }

    /// Tell the peer a rule went (FLOW_REMOVED), when its role's
    /// asynchronous configuration asks for that reason.
    pub fn flow_removed(&mut self, fr: FlowRemoved, sw: &dyn OfSwitch) {
        let slave = usize::from(sw.role(self.conn) == ROLE_SLAVE);
        if !self.wants_async() || self.async_cfg.flow_removed[slave] & (1 << fr.reason as u32) == 0 {
            return;
        }
        self.send(0, &Message::FlowRemoved(fr));
    }

    /// Give the peer a packet for the controller (PACKET_IN), when its
    /// role's asynchronous configuration asks for that reason and it is
    /// for this connection's controller id (0, the only one rvs has).
    /// Returns whether it was queued.
    pub fn packet_in(&mut self, pin: &PacketIn, sw: &dyn OfSwitch) -> bool {
        let slave = usize::from(sw.role(self.conn) == ROLE_SLAVE);
        let reason = pin.reason.wire13();
        if !self.wants_async()
            || pin.controller_id != 0
            || self.async_cfg.packet_in[slave] & (1 << reason) == 0
        {
            return false;
        }
        self.send(0, &Message::PacketIn(bridge_ops::packet_in(pin)));
        true
    }

    /// True once the session wants the connection closed (after its last
    /// ERROR is sent).
    pub fn closing(&self) -> bool {
        self.closing
    }

    /// Feed received bytes; answers go to the output. Never panics on any
    /// input. Once the output holds [`OUT_HIGH_WATER`] bytes the rest of
    /// the input waits (see [`Session::backlog`]): a flood of small requests
    /// with big replies cannot grow the output without bound.
    pub fn receive(&mut self, data: &[u8], sw: &mut dyn OfSwitch) {
        self.inbuf.extend_from_slice(data);
        let mut used = 0;
        while !self.closing && self.out.len() < OUT_HIGH_WATER {
            let rest = &self.inbuf[used..];
            let Some(h) = Header::peek(rest) else { break };
            let len = h.length as usize;
            if len < HEADER_LEN {
                // No way to find the next message: say why and close.
                let head = rest[..rest.len().min(64)].to_vec();
                self.send_error(h.xid, OfpError::BAD_REQUEST_LEN, &head);
                self.closing = true;
                break;
            }
            if rest.len() < len {
                break;
            }
            let msg = rest[..len].to_vec();
            used += len;
            self.handle(&msg, sw);
        }
        self.inbuf.drain(..used);
    }

    /// The version negotiated with the peer.
    pub fn version(&self) -> u8 {
        self.version
    }

    fn send(&mut self, xid: u32, m: &Message) {
        if self.version == OFP10 {
            if let Err(e) = v10::encode(m, xid, &self.formats, &mut self.out) {
                // A rule or match 1.0 cannot describe (an asynchronous
                // message, or a reply): say so in the log, and to the peer
                // when it asked.
                tracing::warn!("openflow 1.0: cannot encode a {} message: {e}", m.msg_type());
                if xid != 0 && !matches!(m, Message::Error { .. }) {
                    self.send_error(xid, e, &[]);
                }
            }
            return;
        }
        if let Err(e) = m.encode(xid, &mut self.out) {
            // A reply rvs cannot express: tell the peer rather than go silent.
            tracing::warn!("openflow: cannot encode a {} reply: {e}", m.msg_type());
            self.send_error(xid, e, &[]);
        }
    }

    fn send_error(&mut self, xid: u32, err: OfpError, request: &[u8]) {
        let m = error_for(err, request);
        // An ERROR always encodes (its data is at most 64 bytes).
        let _ = if self.version == OFP10 {
            v10::encode(&m, xid, &self.formats, &mut self.out)
        } else {
            m.encode(xid, &mut self.out)
        };
    }

    fn handle(&mut self, bytes: &[u8], sw: &mut dyn OfSwitch) {
        if !self.hello_seen {
            self.negotiate(bytes);
            return;
        }
        if self.version == OFP10 {
            match v10::decode(bytes, &self.formats) {
                Ok((h, m)) => self.handle10(h, m, bytes, sw),
                Err((h, e)) => self.send_error(h.xid, e, bytes),
            }
            return;
        }
        match decode(bytes) {
            Ok((h, m)) => self.dispatch(h, m, bytes, sw),
            Err((h, e)) => self.send_error(h.xid, e, bytes),
        }
    }

    /// The first message must be a HELLO offering a version rvs speaks:
    /// the highest both bitmaps have, or (without a bitmap) the lower of
    /// the two highest versions, as the spec asks.
    fn negotiate(&mut self, bytes: &[u8]) {
        self.hello_seen = true;
        let (h, version) = match decode(bytes) {
            Ok((h, Message::Hello { bitmap: Some(b) })) => {
                let common = b & OUR_VERSIONS;
                (h, (common != 0).then(|| 31 - common.leading_zeros() as u8))
            }
            Ok((h, Message::Hello { bitmap: None })) => {
                let v = h.version.min(OFP13);
                (h, (OUR_VERSIONS & 1 << v != 0).then_some(v))
            }
            Ok((h, _)) => (h, None),
            Err((h, e)) => {
                self.send_error(h.xid, e, bytes);
                self.closing = true;
                return;
            }
        };
        match version {
            Some(v) => self.version = v,
            None => {
                self.send_error(h.xid, OfpError::HELLO_INCOMPATIBLE, bytes);
                self.closing = true;
            }
        }
    }

    /// A 1.0 request: the Nicira format messages here, the rest as 1.3's.
    fn handle10(&mut self, h: Header, m: In10, bytes: &[u8], sw: &mut dyn OfSwitch) {
        let eperm = OfpError { typ: 1, code: 5 };
        match m {
            In10::Msg(Message::FeaturesRequest) => {
                let _ = v10::messages::features_reply(h.xid, &sw.features(), &sw.ports(), &mut self.out);
            }
            In10::Msg(m) => self.dispatch(h, m, bytes, sw),
            In10::Stats(req) => match self.multipart(&req.body, sw) {
                Ok(reply) => v10::stats::encode_stats_reply(h.xid, &req, &reply, &mut self.out),
                Err(e) => self.send_error(h.xid, e, bytes),
            },
            In10::SetFlowFormat(0) => self.formats.nxm = false,
            In10::SetFlowFormat(v10::messages::NXFF_NXM) => self.formats.nxm = true,
            In10::SetPacketInFormat(0) => self.formats.nxt_packet_in = false,
            In10::SetPacketInFormat(v10::messages::NXPIF_NXT) => self.formats.nxt_packet_in = true,
            In10::SetFlowFormat(_) | In10::SetPacketInFormat(_) => self.send_error(h.xid, eperm, bytes),
            In10::FlowModTableId(on) => self.formats.table_id = on,
            In10::NxRole(nx) => {
                // Nicira's roles carry no generation id: the request goes
                // with the current one (OVS does not check it for them).
                let role = match nx {
                    0 => ROLE_EQUAL,
                    1 => ROLE_MASTER,
                    2 => ROLE_SLAVE,
                    _ => return self.send_error(h.xid, OfpError::ROLE_BAD_ROLE, bytes),
                };
                let current = Role {
                    role: ROLE_NOCHANGE,
                    generation_id: 0,
                };
                let generation_id = sw.role_request(self.conn, current).map_or(0, |r| r.generation_id);
                match sw.role_request(self.conn, Role { role, generation_id }) {
                    Ok(r) => v10::messages::nx_role_reply(h.xid, r.role.saturating_sub(1), &mut self.out),
                    Err(e) => self.send_error(h.xid, e, bytes),
                }
            }
            In10::QueueGetConfig(port) => {
                if sw.ports().iter().any(|p| p.port_no == port as u32) {
                    v10::messages::queue_config_reply(h.xid, port, &mut self.out);
                } else {
                    // QUEUE_OP_FAILED, BAD_PORT.
                    self.send_error(h.xid, OfpError { typ: 9, code: 0 }, bytes);
                }
            }
        }
    }

    fn dispatch(&mut self, h: Header, m: Message, bytes: &[u8], sw: &mut dyn OfSwitch) {
        let slave = sw.role(self.conn) == ROLE_SLAVE;
        match m {
            Message::Hello { .. } | Message::EchoReply(_) | Message::Error { .. } => {}
            Message::EchoRequest(d) => self.send(h.xid, &Message::EchoReply(d)),
            Message::FeaturesRequest => self.send(h.xid, &Message::FeaturesReply(sw.features())),
            Message::GetConfigRequest => self.send(h.xid, &Message::GetConfigReply(self.config)),
            Message::SetConfig(c) => {
                if c.flags & !3 != 0 {
                    self.send_error(h.xid, OfpError::SWITCH_CONFIG_BAD_FLAGS, bytes);
                } else {
                    self.config = c;
                }
            }
            Message::FlowMod(_) if slave => self.send_error(h.xid, OfpError::IS_SLAVE, bytes),
            Message::FlowMod(fm) => {
                if let Err(e) = sw.flow_mod(&fm.fm) {
                    self.send_error(h.xid, e, bytes);
                    return;
                }
                if fm.buffer_id != NO_BUFFER {
                    // Nothing is buffered (n_buffers is 0); the rule stands.
                    self.send_error(h.xid, OfpError::BUFFER_UNKNOWN, bytes);
                }
            }
            Message::PacketOut(_) if slave => self.send_error(h.xid, OfpError::IS_SLAVE, bytes),
            Message::PacketOut(po) => {
                if let Err(e) = sw.packet_out(&po) {
                    self.send_error(h.xid, e, bytes);
                }
            }
            Message::GroupMod(_) if slave => self.send_error(h.xid, OfpError::IS_SLAVE, bytes),
            Message::GroupMod(gm) => {
                if let Err(e) = sw.group_mod(&gm) {
                    self.send_error(h.xid, e, bytes);
                }
            }
            Message::PortMod(_) if slave => self.send_error(h.xid, OfpError::IS_SLAVE, bytes),
            Message::PortMod(pm) => {
                if let Err(e) = sw.port_mod(&pm) {
                    self.send_error(h.xid, e, bytes);
                }
            }
            Message::BarrierRequest => self.send(h.xid, &Message::BarrierReply),
            Message::MultipartRequest { flags, body } => {
                if flags & 1 != 0 {
                    // REQ_MORE: only TABLE_FEATURES sets take several parts,
                    // and rvs's features are fixed.
                    self.send_error(h.xid, OfpError::BAD_MULTIPART, bytes);
                    return;
                }
                match self.multipart(&body, sw) {
                    Ok(reply) => {
                        let parts = reply.split(PART_LIMIT);
                        let n = parts.len();
                        for (i, p) in parts.into_iter().enumerate() {
                            let flags = if i + 1 < n { 1 } else { 0 };
                            self.send(h.xid, &Message::MultipartReply { flags, body: p });
                        }
                    }
                    Err(e) => self.send_error(h.xid, e, bytes),
                }
            }
            Message::RoleRequest(r) => match sw.role_request(self.conn, r) {
                Ok(reply) => self.send(h.xid, &Message::RoleReply(reply)),
                Err(e) => self.send_error(h.xid, e, bytes),
            },
            Message::GetAsyncRequest => self.send(h.xid, &Message::GetAsyncReply(self.async_cfg)),
            Message::SetAsync(a) => self.async_cfg = a,
            // Messages only a switch sends.
            Message::FeaturesReply(_)
            | Message::GetConfigReply(_)
            | Message::BarrierReply
            | Message::MultipartReply { .. }
            | Message::RoleReply(_)
            | Message::GetAsyncReply(_)
            | Message::FlowRemoved(_)
            | Message::PacketIn(_)
            | Message::PortStatus { .. } => self.send_error(h.xid, OfpError::BAD_REQUEST_TYPE, bytes),
        }
    }

    fn multipart(&self, req: &MpRequest, sw: &dyn OfSwitch) -> Result<MpReply, OfpError> {
        Ok(match req {
            MpRequest::Desc => MpReply::Desc(sw.desc()),
            MpRequest::Flow(f) => MpReply::Flow(sw.flows(f)),
            MpRequest::Aggregate(f) => {
                let flows = sw.flows(f);
                MpReply::Aggregate {
                    packets: flows.iter().map(|f| f.packets).sum(),
                    bytes: flows.iter().map(|f| f.bytes).sum(),
                    flows: flows.len() as u32,
                }
            }
            MpRequest::Table => MpReply::Table(sw.tables()),
            MpRequest::PortStats(p) => MpReply::PortStats(sw.port_stats(*p)?),
            MpRequest::PortDesc => MpReply::PortDesc(sw.ports()),
            MpRequest::TableFeatures => MpReply::TableFeatures(
                (0..=253u8)
                    .map(|table| super::multipart::TableFeature {
                        table,
                        name: String::new(),
                        metadata_match: u64::MAX,
                        metadata_write: u64::MAX,
                        max_entries: 1_000_000,
                    })
                    .collect(),
            ),
            MpRequest::GroupDesc => MpReply::GroupDesc(sw.groups().into_iter().map(|(g, _)| g).collect()),
            MpRequest::GroupStats(id) => MpReply::GroupStats(
                sw.groups()
                    .into_iter()
                    .filter(|(g, _)| *id == GROUP_ALL || g.id == *id)
                    .map(|(_, s)| s)
                    .collect(),
            ),
            MpRequest::GroupFeatures => MpReply::GroupFeatures,
            MpRequest::Empty(typ @ 11) => MpReply::NoFeatures(*typ),
            MpRequest::Empty(typ) => MpReply::Empty(*typ),
        })
    }
}

/// Controller roles of one bridge's connections, with OpenFlow's master
/// election: one master at a time, generation ids that only move forward.
#[derive(Debug, Default)]
pub struct Roles {
    roles: std::collections::BTreeMap<u64, u32>,
    generation: Option<u64>,
}

impl Roles {
    /// A new connection starts EQUAL.
    pub fn connect(&mut self, conn: u64) {
        self.roles.insert(conn, ROLE_EQUAL);
    }

    /// A connection went away.
    pub fn disconnect(&mut self, conn: u64) {
        self.roles.remove(&conn);
    }

    /// Connections known.
    pub fn len(&self) -> usize {
        self.roles.len()
    }

    /// True when no connection is known.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// The role of `conn`.
    pub fn role(&self, conn: u64) -> u32 {
        self.roles.get(&conn).copied().unwrap_or(ROLE_EQUAL)
    }

    /// Handle a ROLE_REQUEST.
    pub fn request(&mut self, conn: u64, req: Role) -> Result<Role, OfpError> {
        match req.role {
            ROLE_NOCHANGE => {}
            ROLE_EQUAL => {
                self.roles.insert(conn, ROLE_EQUAL);
            }
            ROLE_MASTER | ROLE_SLAVE => {
                if let Some(g) = self.generation {
                    // Serial-number comparison, as the spec asks.
                    if (req.generation_id.wrapping_sub(g) as i64) < 0 {
                        return Err(OfpError::ROLE_STALE);
                    }
                }
                self.generation = Some(req.generation_id);
                if req.role == ROLE_MASTER {
                    for (c, r) in self.roles.iter_mut() {
                        if *c != conn && *r == ROLE_MASTER {
                            *r = ROLE_SLAVE;
                        }
                    }
                }
                self.roles.insert(conn, req.role);
            }
            _ => return Err(OfpError::ROLE_BAD_ROLE),
        }
        Ok(Role {
            role: self.role(conn),
            generation_id: self.generation.unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::wire::Put;

    /// The version a HELLO with this header version and bitmap gets.
    fn negotiated(version: u8, bitmap: Option<u32>) -> Option<u8> {
        let mut b = vec![version, 0, 0, 8, 0, 0, 0, 1];
        if let Some(bits) = bitmap {
            b.put_u16(1);
            b.put_u16(8);
            b.put_u32(bits);
            b[3] = 16;
        }
        let mut s = Session::new(1);
        s.negotiate(&b);
        (!s.closing).then_some(s.version)
    }

    #[test]
    fn nicira_roles_and_async_config_in_one_zero() {
        use crate::openflow::proptests::Fake;
        use crate::openflow::wire::NX_VENDOR;
        let mut s = Session::new(1);
        let mut sw = Fake { rules: 0 };
        s.receive(&[OFP10, 0, 0, 8, 0, 0, 0, 1], &mut sw);
        s.take_output();
        let nx = |subtype: u32, body: &[u8]| {
            let mut m = vec![OFP10, 4, 0, 0, 0, 0, 0, 9];
            m.put_u32(NX_VENDOR);
            m.put_u32(subtype);
            m.extend_from_slice(body);
            let n = m.len() as u16;
            m.set_u16(2, n);
            m
        };
        // NXT_ROLE_REQUEST primary: NXT_ROLE_REPLY primary.
        s.receive(&nx(10, &[0, 0, 0, 1]), &mut sw);
        assert_eq!(s.take_output(), nx(11, &[0, 0, 0, 1]));
        // An unknown role: OVS's vendor error for BAD_ROLE.
        s.receive(&nx(10, &[0, 0, 0, 7]), &mut sw);
        let e = s.take_output();
        assert_eq!(&e[8..16], &[0xb0, 0xc2, 0, 0, 0, 0, 0x23, 0x20]);
        assert_eq!(&e[16..20], &[0, 1, 2, 1]);
        // NXT_SET_ASYNC_CONFIG: no packet-ins for this connection.
        let mut cfg = Vec::new();
        for v in [0u32, 0, 7, 7, 15, 0] {
            cfg.put_u32(v);
        }
        s.receive(&nx(19, &cfg), &mut sw);
        assert!(s.take_output().is_empty());
        assert_eq!(s.async_cfg.packet_in, [0, 0]);
    }

    #[test]
    fn hello_negotiates_one_zero_or_one_three() {
        assert_eq!(negotiated(1, None), Some(OFP10));
        assert_eq!(negotiated(4, None), Some(OFP13));
        assert_eq!(negotiated(6, None), Some(OFP13));
        assert_eq!(
            negotiated(2, None),
            None,
            "1.1: the lower of the two, which rvs lacks"
        );
        assert_eq!(negotiated(6, Some(0b111_1110)), Some(OFP13));
        assert_eq!(negotiated(6, Some(0b10)), Some(OFP10));
        assert_eq!(negotiated(6, Some(0b110_0100)), None);
    }
}
