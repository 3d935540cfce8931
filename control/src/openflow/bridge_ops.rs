//! What an OpenFlow session asks of one bridge's rule tables, over a
//! [`Switch`]: apply a FLOW_MOD, select rules for FLOW/AGGREGATE, count
//! per table, translate a PACKET_OUT, make a PACKET_IN. The daemon's
//! connections and the benchmarks share these.

use super::group::GroupStats;
use super::message::{encodable, FlowRemoved, FF_SEND_FLOW_REM};
use super::multipart::{FlowFilter, FlowStats, TableStats};
use super::packet::{PacketInMsg, PacketOutMsg, PortModMsg};
use super::wire::{NO_BUFFER, OFPG_ANY};
use super::OfpError;
use crate::flow_mod::{covers, outputs_to, outputs_to_group, FlowMod, FlowModError, Outcome, Removed};
use crate::ofp::{OFPP_CONTROLLER, OFPP_NONE};
use crate::packet_in::PacketIn;
use crate::switch::{Switch, SwitchError};
use rvs_dataplane::action::Action;
use rvs_dataplane::flow::{Field, FlowKey};
use rvs_dataplane::packet::PacketMeta;
use rvs_dataplane::port::{PortNo, NO_PORT};

/// Tables a bridge offers over OpenFlow (0..253, as OVS).
pub const N_TABLES: u8 = 254;

/// Apply a controller's FLOW_MOD to `bridge` (all or nothing).
pub fn flow_mod(sw: &mut Switch, bridge: &str, fm: &FlowMod) -> Result<Outcome, OfpError> {
    sw.flow_mod(bridge, fm, true).map_err(|e| match e {
        SwitchError::FlowMod(FlowModError::Overlap) => OfpError::FLOW_MOD_OVERLAP,
        SwitchError::FlowMod(FlowModError::BadTable) => OfpError::FLOW_MOD_BAD_TABLE_ID,
        SwitchError::FlowMod(FlowModError::UnknownGroup(_)) => OfpError::BAD_OUT_GROUP,
        _ => OfpError::FLOW_MOD_UNKNOWN,
    })
}

/// The rules of `bridge` a FLOW/AGGREGATE filter selects, with counters.
/// A rule with no OpenFlow 1.3 form is left out (and logged).
pub fn flows(sw: &Switch, bridge: &str, f: &FlowFilter) -> Vec<FlowStats> {
    let Ok(br) = sw.bridge(bridge) else {
        return Vec::new();
    };
    let now = sw.now_ms();
    br.rules()
        .into_iter()
        .filter(|e| {
            let r = &e.rule;
            f.table.is_none_or(|t| t == r.table)
                && covers(&r.matches, &f.matches)
                && (r.cookie ^ f.cookie) & f.cookie_mask == 0
                && f.out_port.is_none_or(|p| outputs_to(&r.actions, p))
                && (f.out_group == OFPG_ANY || outputs_to_group(&r.actions, f.out_group))
        })
        .filter(|e| {
            let ok = encodable(&e.rule);
            if !ok {
                tracing::warn!(
                    "bridge {bridge}: rule {} has no OpenFlow 1.3 form: left out of the dump",
                    e.rule
                );
            }
            ok
        })
        .map(|e| FlowStats {
            table: e.rule.table,
            duration_ms: now.saturating_sub(e.added_ms),
            idle_ms: now.saturating_sub(e.used_ms),
            priority: e.rule.priority,
            idle_timeout: e.rule.idle_timeout,
            hard_timeout: e.rule.hard_timeout,
            flags: if e.send_flow_rem { FF_SEND_FLOW_REM } else { 0 },
            cookie: e.rule.cookie,
            packets: e.n_packets,
            bytes: e.n_bytes,
            matches: e.rule.matches,
            actions: e.rule.actions.clone(),
        })
        .collect()
}

/// Rules per table of `bridge` (lookups are not counted per table).
pub fn tables(sw: &Switch, bridge: &str) -> Vec<TableStats> {
    let Ok(br) = sw.bridge(bridge) else {
        return Vec::new();
    };
    (0..N_TABLES)
        .map(|t| TableStats {
            table: t,
            active: br.tables.get(&t).map_or(0, |c| c.len() as u32),
            lookups: 0,
            matched: 0,
        })
        .collect()
}

/// The FLOW_REMOVED of a rule that went.
pub fn flow_removed(r: &Removed) -> FlowRemoved {
    let e = &r.entry;
    FlowRemoved {
        reason: r.reason,
        table: e.rule.table,
        priority: e.rule.priority,
        cookie: e.rule.cookie,
        duration_ms: r.at_ms.saturating_sub(e.added_ms),
        idle_timeout: e.rule.idle_timeout,
        hard_timeout: e.rule.hard_timeout,
        packets: e.n_packets,
        bytes: e.n_bytes,
        matches: e.rule.matches,
    }
}

/// Shortest frame a PACKET_OUT may carry (an Ethernet header).
pub const MIN_PACKET_OUT: usize = 14;

/// A PACKET_OUT made datapath work: run `actions` on `frame` as from
/// datapath port `in_port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execute {
    /// Datapath port it comes from ([`NO_PORT`]: the controller).
    pub in_port: PortNo,
    /// The frame.
    pub frame: Vec<u8>,
    /// Datapath actions.
    pub actions: Vec<Action>,
}

/// Translate a PACKET_OUT on `bridge`: its in_port must be a port of the
/// bridge, CONTROLLER or ANY; the packet nothing buffered. Its actions
/// (`output:TABLE` through the rules, which count it) become datapath
/// actions.
pub fn packet_out(sw: &mut Switch, bridge: &str, po: &PacketOutMsg) -> Result<Execute, OfpError> {
    if po.buffer_id != NO_BUFFER {
        return Err(OfpError::BUFFER_UNKNOWN);
    }
    if po.data.len() < MIN_PACKET_OUT {
        return Err(OfpError::BAD_PACKET);
    }
    let br = sw.bridge(bridge).map_err(|_| OfpError::BAD_REQUEST_PORT)?;
    let dp_in = match po.in_port {
        OFPP_CONTROLLER | OFPP_NONE => NO_PORT,
        p => br
            .ports
            .get(&p)
            .ok_or(OfpError::BAD_REQUEST_PORT)?
            .dp_port
            .unwrap_or(NO_PORT),
    };
    let meta = PacketMeta {
        in_port: dp_in,
        ..Default::default()
    };
    // Bytes no key describes still go where the actions say.
    let mut key = FlowKey::extract(&po.data, &meta)
        .map(|(k, _)| k)
        .unwrap_or_default();
    key.set(Field::InPort, dp_in as u64);
    let t = crate::xlate::translate_packet_out(sw, bridge, po.in_port, &key, &po.actions);
    sw.credit_rules(&t.rules, 1, po.data.len() as u64);
    sw.credit_groups(&t.groups, 1, po.data.len() as u64);
    Ok(Execute {
        in_port: dp_in,
        frame: po.data.clone(),
        actions: t.actions,
    })
}

/// Apply a controller's GROUP_MOD to `bridge` (all or nothing); returns
/// the rules a deleted group took with it.
pub fn group_mod(
    sw: &mut Switch,
    bridge: &str,
    gm: &super::group::GroupModMsg,
) -> Result<Vec<crate::bridge::RuleEntry>, OfpError> {
    sw.group_mod(bridge, gm.command, gm.group.clone())
        .map_err(|e| match e {
            SwitchError::Group(g) => super::group::error_of(&g),
            _ => OfpError { typ: 6, code: 1 },
        })
}

/// The groups of `bridge`, each with its counters and how many rules send
/// to it.
pub fn groups(sw: &Switch, bridge: &str) -> Vec<(crate::group::Group, GroupStats)> {
    let Ok(br) = sw.bridge(bridge) else {
        return Vec::new();
    };
    let now = sw.now_ms();
    let rules = br.rules();
    br.groups
        .iter()
        .map(|g| {
            let refs = rules
                .iter()
                .filter(|e| outputs_to_group(&e.rule.actions, g.id))
                .count();
            let c = br.group_counters.get(&g.id).cloned().unwrap_or_default();
            let mut buckets = c.buckets;
            buckets.resize(g.buckets.len(), (0, 0));
            let stats = GroupStats {
                id: g.id,
                ref_count: refs as u32,
                packets: c.packets,
                bytes: c.bytes,
                duration_ms: now.saturating_sub(c.added_ms),
                buckets,
            };
            (g.clone(), stats)
        })
        .collect()
}

/// OFPPC_PORT_DOWN.
pub const PC_PORT_DOWN: u32 = 1;
/// OFPPC_NO_RECV.
pub const PC_NO_RECV: u32 = 4;
/// OFPPC_NO_FWD.
pub const PC_NO_FWD: u32 = 32;
/// OFPPC_NO_PACKET_IN.
pub const PC_NO_PACKET_IN: u32 = 64;
/// The configuration bits a PORT_MOD may change (all OpenFlow 1.3 has).
pub const PC_ALL: u32 = PC_PORT_DOWN | PC_NO_RECV | PC_NO_FWD | PC_NO_PACKET_IN;

/// Apply a PORT_MOD to `bridge`: the port must exist, `hw_addr` (the
/// port's MAC when it has a device, else `None`) must be what the
/// controller names, and only OpenFlow 1.3's bits may be asked for.
/// Returns whether the configuration changed.
pub fn port_mod(
    sw: &mut Switch,
    bridge: &str,
    pm: &PortModMsg,
    hw_addr: Option<[u8; 6]>,
) -> Result<bool, OfpError> {
    let br = sw.bridge(bridge).map_err(|_| OfpError::PORT_MOD_BAD_PORT)?;
    let port = br.ports.get(&pm.port_no).ok_or(OfpError::PORT_MOD_BAD_PORT)?;
    if hw_addr.is_some_and(|m| m != pm.hw_addr) {
        return Err(OfpError::PORT_MOD_BAD_HW_ADDR);
    }
    if pm.mask & !PC_ALL != 0 {
        return Err(OfpError::PORT_MOD_BAD_CONFIG);
    }
    let config = (port.of_config & !pm.mask) | (pm.config & pm.mask);
    Ok(sw.set_port_config(bridge, pm.port_no, config))
}

/// The PACKET_IN message of a packet for the controllers.
pub fn packet_in(p: &PacketIn) -> PacketInMsg {
    PacketInMsg {
        buffer_id: NO_BUFFER,
        total_len: p.total_len.min(u16::MAX as usize) as u16,
        reason: p.reason.wire13(),
        table: p.table,
        cookie: p.cookie,
        matches: p.matches,
        data: p.data.clone(),
    }
}
