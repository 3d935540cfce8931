//! MULTIPART request and reply bodies: DESC, FLOW, AGGREGATE, TABLE,
//! PORT_STATS, PORT_DESC, TABLE_FEATURES, GROUP, GROUP_DESC,
//! GROUP_FEATURES (their entries in `group.rs`), and the meter and queue
//! ones rvs answers empty (it has no meters or queues).

use super::actions::Ctx;
use super::error::OfpError;
use super::instructions::{decode_instructions, encode_instructions};
use super::oxm::{decode_match, encode_match};
use super::table_features::{properties_len, put_properties};
use super::wire::{port_from13, port_to13, Put, Reader, OFPP13_ANY, OFPTT_ALL};
use crate::ofp::{Match, OfAction};

#[allow(missing_docs)]
pub mod mp_type {
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const TABLE: u16 = 3;
    pub const PORT_STATS: u16 = 4;
    pub const QUEUE: u16 = 5;
    pub const GROUP: u16 = 6;
    pub const GROUP_DESC: u16 = 7;
    pub const GROUP_FEATURES: u16 = 8;
    pub const METER: u16 = 9;
    pub const METER_CONFIG: u16 = 10;
    pub const METER_FEATURES: u16 = 11;
    pub const TABLE_FEATURES: u16 = 12;
    pub const PORT_DESC: u16 = 13;
}
use mp_type as mt;

/// The filter of a FLOW or AGGREGATE request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowFilter {
    /// One table, or all.
    pub table: Option<u8>,
    /// Only rules with an output to this port.
    pub out_port: Option<u32>,
    /// Group filter (OFPG_ANY: none).
    pub out_group: u32,
    /// Cookie and mask.
    pub cookie: u64,
    /// Cookie bits that count.
    pub cookie_mask: u64,
    /// Rules at least as specific as this.
    pub matches: Match,
}

/// A multipart request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MpRequest {
    /// Switch description.
    Desc,
    /// Rules and their counters.
    Flow(FlowFilter),
    /// Sums over rules.
    Aggregate(FlowFilter),
    /// Per-table counters.
    Table,
    /// Port counters (`None`: all ports).
    PortStats(Option<u32>),
    /// Port descriptions.
    PortDesc,
    /// Table features (rvs's are fixed: a request that sets them is refused).
    TableFeatures,
    /// Group counters (one group, or OFPG_ALL).
    GroupStats(u32),
    /// Group descriptions.
    GroupDesc,
    /// What groups rvs supports.
    GroupFeatures,
    /// Types rvs answers with an empty body (meters, queues).
    Empty(u16),
}

/// One rule in a FLOW reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowStats {
    /// Table.
    pub table: u8,
    /// Age in milliseconds.
    pub duration_ms: u64,
    /// Milliseconds since a packet last used it (only OVS's 1.0 NXST_FLOW
    /// carries it, as `idle_age`; 1.3 has no place for it).
    pub idle_ms: u64,
    /// Priority.
    pub priority: u16,
    /// Idle timeout (s).
    pub idle_timeout: u16,
    /// Hard timeout (s).
    pub hard_timeout: u16,
    /// OFPFF_* flags.
    pub flags: u16,
    /// Cookie.
    pub cookie: u64,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Match.
    pub matches: Match,
    /// Actions (instructions on the wire).
    pub actions: Vec<OfAction>,
}

/// A TABLE reply entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableStats {
    /// Table id.
    pub table: u8,
    /// Rules in it.
    pub active: u32,
    /// Packets looked up.
    pub lookups: u64,
    /// Packets that matched a rule.
    pub matched: u64,
}

/// A port as PORT_DESC (and PORT_STATUS) describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortDesc {
    /// OpenFlow port number (rvs numbering: LOCAL is 0xfffe).
    pub port_no: u32,
    /// MAC address.
    pub hw_addr: [u8; 6],
    /// Name (at most 15 bytes go on the wire).
    pub name: String,
    /// OFPPC_* bits.
    pub config: u32,
    /// OFPPS_* bits.
    pub state: u32,
    /// Current speed (kbit/s).
    pub curr_speed: u32,
}

/// A PORT_STATS reply entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Port number.
    pub port_no: u32,
    /// rx_packets, tx_packets, rx_bytes, tx_bytes, rx_dropped, tx_dropped,
    /// rx_errors, tx_errors (the rest of the spec's counters are not kept).
    pub counters: [u64; 8],
    /// Age in milliseconds.
    pub duration_ms: u64,
}

/// A TABLE_FEATURES entry (no properties: rvs's tables all take every
/// match field and action it knows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableFeature {
    /// Table id.
    pub table: u8,
    /// Name ("" unless set).
    pub name: String,
    /// Metadata bits matchable.
    pub metadata_match: u64,
    /// Metadata bits writable.
    pub metadata_write: u64,
    /// Most rules.
    pub max_entries: u32,
}

/// Strings of the DESC reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desc {
    /// Manufacturer.
    pub mfr: String,
    /// Hardware.
    pub hw: String,
    /// Software.
    pub sw: String,
    /// Serial number.
    pub serial: String,
    /// Datapath description.
    pub dp: String,
}

/// One part of a multipart reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MpReply {
    /// DESC.
    Desc(Desc),
    /// FLOW.
    Flow(Vec<FlowStats>),
    /// AGGREGATE: packets, bytes, rules.
    Aggregate {
        /// Packets.
        packets: u64,
        /// Bytes.
        bytes: u64,
        /// Rules.
        flows: u32,
    },
    /// TABLE.
    Table(Vec<TableStats>),
    /// PORT_STATS.
    PortStats(Vec<PortStats>),
    /// PORT_DESC.
    PortDesc(Vec<PortDesc>),
    /// TABLE_FEATURES.
    TableFeatures(Vec<TableFeature>),
    /// GROUP.
    GroupStats(Vec<super::group::GroupStats>),
    /// GROUP_DESC.
    GroupDesc(Vec<crate::group::Group>),
    /// GROUP_FEATURES (rvs's, fixed).
    GroupFeatures,
    /// METER_FEATURES: all zero (none supported).
    NoFeatures(u16),
    /// An empty reply of this type.
    Empty(u16),
}

fn decode_filter(r: &mut Reader<'_>) -> Result<FlowFilter, OfpError> {
    let table = r.u8()?;
    r.skip(3)?;
    let out_port = r.u32()?;
    let out_group = r.u32()?;
    r.skip(4)?;
    let cookie = r.u64()?;
    let cookie_mask = r.u64()?;
    let matches = decode_match(r)?;
    Ok(FlowFilter {
        table: (table != OFPTT_ALL).then_some(table),
        out_port: (out_port != OFPP13_ANY).then(|| port_from13(out_port)),
        out_group,
        cookie,
        cookie_mask,
        matches,
    })
}

fn encode_filter(b: &mut Vec<u8>, f: &FlowFilter) -> Result<(), OfpError> {
    b.put_u8(f.table.unwrap_or(OFPTT_ALL));
    b.put_zeros(3);
    b.put_u32(f.out_port.map_or(OFPP13_ANY, port_to13));
    b.put_u32(f.out_group);
    b.put_zeros(4);
    b.put_u64(f.cookie);
    b.put_u64(f.cookie_mask);
    encode_match(b, &f.matches)
}

fn string(r: &mut Reader<'_>, n: usize) -> Result<String, OfpError> {
    let b = r.bytes(n)?;
    let end = b.iter().position(|c| *c == 0).unwrap_or(n);
    Ok(String::from_utf8_lossy(&b[..end]).into_owned())
}

fn ms(sec: u32, nsec: u32) -> u64 {
    sec as u64 * 1000 + (nsec / 1_000_000) as u64
}

fn put_duration(b: &mut Vec<u8>, ms: u64) {
    b.put_u32((ms / 1000).min(u32::MAX as u64) as u32);
    b.put_u32((ms % 1000) as u32 * 1_000_000);
}

impl MpRequest {
    /// The OFPMP_* type.
    pub fn mp_type(&self) -> u16 {
        match self {
            MpRequest::Desc => mt::DESC,
            MpRequest::Flow(_) => mt::FLOW,
            MpRequest::Aggregate(_) => mt::AGGREGATE,
            MpRequest::Table => mt::TABLE,
            MpRequest::PortStats(_) => mt::PORT_STATS,
            MpRequest::PortDesc => mt::PORT_DESC,
            MpRequest::TableFeatures => mt::TABLE_FEATURES,
            MpRequest::GroupStats(_) => mt::GROUP,
            MpRequest::GroupDesc => mt::GROUP_DESC,
            MpRequest::GroupFeatures => mt::GROUP_FEATURES,
            MpRequest::Empty(t) => *t,
        }
    }

    /// Decode the body of a request of type `typ`.
    pub fn decode(typ: u16, r: &mut Reader<'_>) -> Result<MpRequest, OfpError> {
        let req = match typ {
            mt::DESC => {
                r.expect_len(0)?;
                MpRequest::Desc
            }
            mt::FLOW => MpRequest::Flow(decode_filter(r)?),
            mt::AGGREGATE => MpRequest::Aggregate(decode_filter(r)?),
            mt::TABLE => {
                r.expect_len(0)?;
                MpRequest::Table
            }
            mt::PORT_STATS => {
                let p = r.u32()?;
                r.skip(4)?;
                MpRequest::PortStats((p != OFPP13_ANY).then(|| port_from13(p)))
            }
            mt::PORT_DESC => {
                r.expect_len(0)?;
                MpRequest::PortDesc
            }
            mt::TABLE_FEATURES => {
                if !r.is_empty() {
                    // Setting table features: rvs's tables are fixed.
                    return Err(OfpError::TABLE_FEATURES_EPERM);
                }
                MpRequest::TableFeatures
            }
            mt::GROUP => {
                let g = r.u32()?;
                r.skip(4)?;
                MpRequest::GroupStats(g)
            }
            mt::GROUP_DESC => {
                r.expect_len(0)?;
                MpRequest::GroupDesc
            }
            mt::GROUP_FEATURES => {
                r.expect_len(0)?;
                MpRequest::GroupFeatures
            }
            mt::QUEUE | mt::METER | mt::METER_CONFIG => {
                // Bodies name a port/queue/meter; none exist.
                r.rest();
                MpRequest::Empty(typ)
            }
            mt::METER_FEATURES => {
                r.expect_len(0)?;
                MpRequest::Empty(typ)
            }
            0xffff => return Err(OfpError::BAD_REQUEST_EXPERIMENTER),
            _ => return Err(OfpError::BAD_MULTIPART),
        };
        Ok(req)
    }

    /// Encode the body.
    pub fn encode(&self, b: &mut Vec<u8>) -> Result<(), OfpError> {
        match self {
            MpRequest::Flow(f) | MpRequest::Aggregate(f) => encode_filter(b, f)?,
            MpRequest::PortStats(p) => {
                b.put_u32(p.map_or(OFPP13_ANY, port_to13));
                b.put_zeros(4);
            }
            MpRequest::Empty(mt::QUEUE) => {
                b.put_u32(OFPP13_ANY);
                b.put_u32(0xffff_ffff);
            }
            MpRequest::GroupStats(g) => {
                b.put_u32(*g);
                b.put_zeros(4);
            }
            MpRequest::Empty(mt::METER) | MpRequest::Empty(mt::METER_CONFIG) => {
                b.put_u32(0xffff_ffff);
                b.put_zeros(4);
            }
            _ => {}
        }
        Ok(())
    }
}

impl MpReply {
    /// The OFPMP_* type.
    pub fn mp_type(&self) -> u16 {
        match self {
            MpReply::Desc(_) => mt::DESC,
            MpReply::Flow(_) => mt::FLOW,
            MpReply::Aggregate { .. } => mt::AGGREGATE,
            MpReply::Table(_) => mt::TABLE,
            MpReply::PortStats(_) => mt::PORT_STATS,
            MpReply::PortDesc(_) => mt::PORT_DESC,
            MpReply::TableFeatures(_) => mt::TABLE_FEATURES,
            MpReply::GroupStats(_) => mt::GROUP,
            MpReply::GroupDesc(_) => mt::GROUP_DESC,
            MpReply::GroupFeatures => mt::GROUP_FEATURES,
            MpReply::NoFeatures(t) | MpReply::Empty(t) => *t,
        }
    }

    /// Encode the body.
    pub fn encode(&self, b: &mut Vec<u8>) -> Result<(), OfpError> {
        match self {
            MpReply::Desc(d) => {
                b.put_str(&d.mfr, 256);
                b.put_str(&d.hw, 256);
                b.put_str(&d.sw, 256);
                b.put_str(&d.serial, 32);
                b.put_str(&d.dp, 256);
            }
            MpReply::Flow(v) => {
                for f in v {
                    encode_flow_stats(b, f)?;
                }
            }
            MpReply::Aggregate {
                packets,
                bytes,
                flows,
            } => {
                b.put_u64(*packets);
                b.put_u64(*bytes);
                b.put_u32(*flows);
                b.put_zeros(4);
            }
            MpReply::Table(v) => {
                for s in v {
                    b.put_u8(s.table);
                    b.put_zeros(3);
                    b.put_u32(s.active);
                    b.put_u64(s.lookups);
                    b.put_u64(s.matched);
                }
            }
            MpReply::PortStats(v) => {
                for s in v {
                    b.put_u32(port_to13(s.port_no));
                    b.put_zeros(4);
                    for c in s.counters {
                        b.put_u64(c);
                    }
                    b.put_zeros(32);
                    put_duration(b, s.duration_ms);
                }
            }
            MpReply::PortDesc(v) => {
                for p in v {
                    encode_port(b, p);
                }
            }
            MpReply::TableFeatures(v) => {
                for f in v {
                    b.put_u16((64 + properties_len(f.table)) as u16);
                    b.put_u8(f.table);
                    b.put_zeros(5);
                    b.put_str(&f.name, 32);
                    b.put_u64(f.metadata_match);
                    b.put_u64(f.metadata_write);
                    b.put_u32(0);
                    b.put_u32(f.max_entries);
                    put_properties(b, f.table);
                }
            }
            MpReply::GroupStats(v) => super::group::encode_stats(b, v),
            MpReply::GroupDesc(v) => super::group::encode_desc(b, v)?,
            MpReply::GroupFeatures => super::group::encode_features(b),
            MpReply::NoFeatures(_) => b.put_zeros(16),
            MpReply::Empty(_) => {}
        }
        Ok(())
    }

    /// Decode a reply body of type `typ`.
    pub fn decode(typ: u16, r: &mut Reader<'_>) -> Result<MpReply, OfpError> {
        let reply = match typ {
            mt::DESC => MpReply::Desc(Desc {
                mfr: string(r, 256)?,
                hw: string(r, 256)?,
                sw: string(r, 256)?,
                serial: string(r, 32)?,
                dp: string(r, 256)?,
            }),
            mt::FLOW => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    v.push(decode_flow_stats(r)?);
                }
                MpReply::Flow(v)
            }
            mt::AGGREGATE => {
                let packets = r.u64()?;
                let bytes = r.u64()?;
                let flows = r.u32()?;
                r.skip(4)?;
                MpReply::Aggregate {
                    packets,
                    bytes,
                    flows,
                }
            }
            mt::TABLE => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    let table = r.u8()?;
                    r.skip(3)?;
                    v.push(TableStats {
                        table,
                        active: r.u32()?,
                        lookups: r.u64()?,
                        matched: r.u64()?,
                    });
                }
                MpReply::Table(v)
            }
            mt::PORT_STATS => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    let port_no = port_from13(r.u32()?);
                    r.skip(4)?;
                    let mut counters = [0u64; 8];
                    for c in counters.iter_mut() {
                        *c = r.u64()?;
                    }
                    r.skip(32)?;
                    let (s, ns) = (r.u32()?, r.u32()?);
                    v.push(PortStats {
                        port_no,
                        counters,
                        duration_ms: ms(s, ns),
                    });
                }
                MpReply::PortStats(v)
            }
            mt::PORT_DESC => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    v.push(get_port(r)?);
                }
                MpReply::PortDesc(v)
            }
            mt::TABLE_FEATURES => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    let len = r.u16()? as usize;
                    if len < 64 {
                        return Err(OfpError::BAD_REQUEST_LEN);
                    }
                    let table = r.u8()?;
                    r.skip(5)?;
                    let name = string(r, 32)?;
                    let metadata_match = r.u64()?;
                    let metadata_write = r.u64()?;
                    r.skip(4)?;
                    let max_entries = r.u32()?;
                    // Properties: rvs's clients do not ask what a switch's
                    // tables take.
                    r.skip(len - 64)?;
                    v.push(TableFeature {
                        table,
                        name,
                        metadata_match,
                        metadata_write,
                        max_entries,
                    });
                }
                MpReply::TableFeatures(v)
            }
            mt::GROUP => MpReply::GroupStats(super::group::decode_stats(r)?),
            mt::GROUP_DESC => MpReply::GroupDesc(super::group::decode_desc(r)?),
            mt::GROUP_FEATURES => {
                r.bytes(40)?;
                MpReply::GroupFeatures
            }
            mt::METER_FEATURES => {
                r.rest();
                MpReply::NoFeatures(typ)
            }
            mt::QUEUE | mt::METER | mt::METER_CONFIG => {
                if !r.is_empty() {
                    return Err(OfpError::BAD_REQUEST_LEN);
                }
                MpReply::Empty(typ)
            }
            _ => return Err(OfpError::BAD_MULTIPART),
        };
        Ok(reply)
    }

    /// Split into parts that each fit one message (`limit` bytes of body):
    /// the entries of a long FLOW/PORT reply go out in several messages.
    pub fn split(self, limit: usize) -> Vec<MpReply> {
        fn chunks<T: Clone>(v: Vec<T>, size: impl Fn(&T) -> usize, limit: usize) -> Vec<Vec<T>> {
            let mut out: Vec<Vec<T>> = vec![Vec::new()];
            let mut used = 0;
            for e in v {
                let n = size(&e);
                if used + n > limit && !out.last().is_none_or(|c| c.is_empty()) {
                    out.push(Vec::new());
                    used = 0;
                }
                used += n;
                out.last_mut().expect("non-empty").push(e);
            }
            out
        }
        match self {
            MpReply::Flow(v) => chunks(v, flow_stats_len, limit)
                .into_iter()
                .map(MpReply::Flow)
                .collect(),
            MpReply::PortStats(v) => chunks(v, |_| 112, limit)
                .into_iter()
                .map(MpReply::PortStats)
                .collect(),
            MpReply::PortDesc(v) => chunks(v, |_| 64, limit)
                .into_iter()
                .map(MpReply::PortDesc)
                .collect(),
            MpReply::Table(v) => chunks(v, |_| 24, limit).into_iter().map(MpReply::Table).collect(),
            MpReply::TableFeatures(v) => chunks(v, |f| 64 + properties_len(f.table), limit)
                .into_iter()
                .map(MpReply::TableFeatures)
                .collect(),
            MpReply::GroupDesc(v) => chunks(v, super::group::desc_len, limit)
                .into_iter()
                .map(MpReply::GroupDesc)
                .collect(),
            MpReply::GroupStats(v) => chunks(v, |s| 40 + 16 * s.buckets.len(), limit)
                .into_iter()
                .map(MpReply::GroupStats)
                .collect(),
            other => vec![other],
        }
    }
}

fn flow_stats_len(f: &FlowStats) -> usize {
    let mut b = Vec::new();
    // A rule that cannot be encoded is left out of the reply by the caller.
    let _ = encode_flow_stats(&mut b, f);
    b.len()
}

fn encode_port(b: &mut Vec<u8>, p: &PortDesc) {
    b.put_u32(port_to13(p.port_no));
    b.put_zeros(4);
    b.extend_from_slice(&p.hw_addr);
    b.put_zeros(2);
    b.put_str(&p.name, 16);
    b.put_u32(p.config);
    b.put_u32(p.state);
    // curr, advertised, supported, peer: OFPPF_* bits rvs does not know.
    b.put_zeros(16);
    b.put_u32(p.curr_speed);
    b.put_u32(p.curr_speed);
}

/// Append a port description (also the body of PORT_STATUS).
pub fn put_port(b: &mut Vec<u8>, p: &PortDesc) {
    encode_port(b, p)
}

/// Read a port description (also the body of PORT_STATUS).
pub fn get_port(r: &mut Reader<'_>) -> Result<PortDesc, OfpError> {
    let port_no = port_from13(r.u32()?);
    r.skip(4)?;
    let hw_addr = r.array::<6>()?;
    r.skip(2)?;
    let name = string(r, 16)?;
    let config = r.u32()?;
    let state = r.u32()?;
    r.skip(16)?;
    let curr_speed = r.u32()?;
    r.skip(4)?;
    Ok(PortDesc {
        port_no,
        hw_addr,
        name,
        config,
        state,
        curr_speed,
    })
}

fn encode_flow_stats(b: &mut Vec<u8>, f: &FlowStats) -> Result<(), OfpError> {
    let start = b.len();
    b.put_u16(0);
    b.put_u8(f.table);
    b.put_u8(0);
    put_duration(b, f.duration_ms);
    b.put_u16(f.priority);
    b.put_u16(f.idle_timeout);
    b.put_u16(f.hard_timeout);
    b.put_u16(f.flags);
    b.put_zeros(4);
    b.put_u64(f.cookie);
    b.put_u64(f.packets);
    b.put_u64(f.bytes);
    let r =
        encode_match(b, &f.matches).and_then(|()| encode_instructions(b, &f.actions, &Ctx::of(&f.matches)));
    if let Err(e) = r {
        b.truncate(start);
        return Err(e);
    }
    let len = b.len() - start;
    b.set_u16(start, len as u16);
    Ok(())
}

fn decode_flow_stats(r: &mut Reader<'_>) -> Result<FlowStats, OfpError> {
    let len = r.u16()? as usize;
    if len < 56 {
        return Err(OfpError::BAD_REQUEST_LEN);
    }
    let mut e = r.sub(len - 2)?;
    let table = e.u8()?;
    e.skip(1)?;
    let (s, ns) = (e.u32()?, e.u32()?);
    let priority = e.u16()?;
    let idle_timeout = e.u16()?;
    let hard_timeout = e.u16()?;
    let flags = e.u16()?;
    e.skip(4)?;
    let cookie = e.u64()?;
    let packets = e.u64()?;
    let bytes = e.u64()?;
    let matches = decode_match(&mut e)?;
    let actions = decode_instructions(&mut e, table)?;
    Ok(FlowStats {
        table,
        duration_ms: ms(s, ns),
        idle_ms: 0,
        priority,
        idle_timeout,
        hard_timeout,
        flags,
        cookie,
        packets,
        bytes,
        matches,
        actions,
    })
}
