//! The bridge between datapath and rule tables: the [`Upcall`] handler that
//! PMD threads call on a cache miss, and `trace` for a flow given as text.

use crate::bridge::PortType;
use crate::ofp::{parse_match, OfField};
use crate::packet_in::PacketIn;
use crate::switch::{BridgePortNames, Switch, SwitchError, TUNNEL_VPORT};
use crate::xlate::{trace_with, translate_packet, TraceOptions, Translation};
use rvs_dataplane::datapath::Revalidated;
use rvs_dataplane::drop::DropCounters;
use rvs_dataplane::flow::{nd_fields, Field, FlowKey};
use rvs_dataplane::packet::PacketBuf;
use rvs_dataplane::pmd::{Frames, Upcall, UpcallError, UpcallReply};
use rvs_dataplane::port::PortNo;
use rvs_dataplane::vtep::Handled;
use rvs_dataplane::DropReason;
use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard};

/// The switch, shared by the daemon and the PMD threads' upcall handlers. The
/// lock is taken on cache misses and configuration changes only.
pub type SharedSwitch = Arc<Mutex<Switch>>;

/// Lock the switch; a thread that panicked while holding it left it usable.
pub fn lock(sw: &SharedSwitch) -> MutexGuard<'_, Switch> {
    sw.lock().unwrap_or_else(|e| e.into_inner())
}

/// A PMD thread's slow path: translate the missed packet through the switch.
pub struct SwitchUpcall {
    sw: SharedSwitch,
    /// Packet-ins of the batch running, handed over at its end.
    pins: Vec<PacketIn>,
}

impl SwitchUpcall {
    /// A handler over `sw`.
    pub fn new(sw: SharedSwitch) -> Self {
        SwitchUpcall { sw, pins: Vec::new() }
    }
}

impl Upcall for SwitchUpcall {
    fn upcall(&mut self, key: &FlowKey, pkt: &PacketBuf) -> Result<UpcallReply, UpcallError> {
        let mut sw = lock(&self.sw);
        let t = translate_packet(&mut sw, key, &nd_fields(pkt.data(), key));
        let now = sw.now_ms();
        let mut reply = UpcallReply::new(t.actions, t.mask);
        reply.cacheable = t.cacheable;
        reply.deps = t.deps;
        // After the translation and its own changes, under the lock: the PMD
        // caches the reply only if nothing it used changed after this.
        reply.seen = Some(sw.seen());
        if t.cacheable {
            reply.tag = sw.remember(crate::switch::FlowOrigin {
                rules: t.rules,
                groups: t.groups,
                macs: t.learned,
            });
        } else {
            sw.credit_rules(&t.rules, 1, pkt.len() as u64);
            sw.credit_groups(&t.groups, 1, pkt.len() as u64);
        }
        for (port, ip) in t.resolve {
            let mut frame = Vec::new();
            if sw
                .vteps
                .get_mut(&port)
                .is_some_and(|v| v.request(ip, now, &mut frame))
            {
                reply.packets_out.push((port, frame));
            }
        }
        Ok(reply)
    }

    fn userspace(
        &mut self,
        key: &FlowKey,
        pkt: &PacketBuf,
        cookie: u32,
        frames: &mut Frames,
    ) -> Result<(), DropReason> {
        if cookie != 0 {
            let st = lock(&self.sw).pins.thaw(cookie).cloned();
            return match st {
                Some(st) => {
                    self.pins.push(PacketIn::new(&st, key, pkt.data()));
                    Ok(())
                }
                // A cookie the switch forgot (its table started over).
                None => Err(DropReason::Controller),
            };
        }
        let mut sw = lock(&self.sw);
        let port = key.get(Field::InPort) as PortNo;
        let now = sw.now_ms();
        let mut out = Vec::new();
        let handled = match sw.vteps.get_mut(&port) {
            Some(v) => v.handle(pkt.data(), now, &mut out),
            None => return Ok(()),
        };
        match handled {
            Handled::Replied { learned } => {
                if learned {
                    sw.bump();
                }
                frames.push((port, out));
            }
            Handled::Learned => {
                // A next hop appeared or moved: flows waiting for it must be redone.
                sw.bump();
            }
            Handled::Consumed | Handled::NotOurs => {}
        }
        Ok(())
    }

    /// Hand the batch's packet-ins to the bridges' controllers (without
    /// the switch's lock held); what nobody takes is a `controller` drop.
    fn end_batch(&mut self, drops: &mut DropCounters) {
        if self.pins.is_empty() {
            return;
        }
        let pins = std::mem::take(&mut self.pins);
        let n = pins.len() as u64;
        let sink = lock(&self.sw).pin_sink.clone();
        let lost = match sink {
            Some(s) => s.deliver(pins) as u64,
            None => n,
        };
        if lost > 0 {
            drops.add(DropReason::Controller, lost);
        }
    }
}

/// Translate a kernel flow's masked key again (a restarted daemon checking
/// the flows its predecessor left): what would be installed now, or `None`
/// when it may not be cached. Learns as an upcall does.
pub fn retranslate(sw: &SharedSwitch, key: &FlowKey) -> Option<Revalidated> {
    let mut sw = lock(sw);
    let t = translate_packet(&mut sw, key, &Default::default());
    if !t.cacheable {
        return None;
    }
    let tag = sw.remember(crate::switch::FlowOrigin {
        rules: t.rules,
        groups: t.groups,
        macs: t.learned,
    });
    Some(Revalidated {
        actions: t.actions,
        mask: t.mask,
        deps: t.deps,
        tag,
    })
}

/// Trace a packet described as flow text on `bridge` (e.g.
/// `in_port=vm1,dl_src=..,dl_dst=..,ip,nw_dst=..`): the bridges and tables it
/// visits, the rules that match, and the datapath actions and megaflow that
/// would be cached. Nothing is learned.
pub fn trace_flow(sw: &mut Switch, bridge: &str, text: &str) -> Result<String, SwitchError> {
    trace_flow_with(sw, bridge, text, false).map(|t| render(&t))
}

/// [`trace_flow`], returning the translation; `generate` applies its side
/// effects (MAC learning, `learn()`), as `ofproto/trace -generate`.
pub fn trace_flow_with(
    sw: &mut Switch,
    bridge: &str,
    text: &str,
    generate: bool,
) -> Result<Translation, SwitchError> {
    trace_flow_ct(sw, bridge, text, generate, &[])
}

/// [`trace_flow_with`], following each `ct(table=...)` into the next pass
/// with the `ct_state` values of `ct_next` in turn (then `trk|new`).
pub fn trace_flow_ct(
    sw: &mut Switch,
    bridge: &str,
    text: &str,
    generate: bool,
    ct_next: &[u8],
) -> Result<Translation, SwitchError> {
    let br = sw.bridge(bridge)?;
    let m = parse_match(text, &BridgePortNames(br)).map_err(|e| SwitchError::Flow(e.to_string()))?;
    let mut key = m.value.flow();
    let in_port = m.get(OfField::InPort).0 as u32;
    let port = br
        .ports
        .get(&in_port)
        .ok_or_else(|| SwitchError::Flow("trace needs in_port=PORT".into()))?;
    let mut opts = crate::xlate::TraceOptions {
        generate,
        start: None,
        nd: m.value.nd(),
    };
    match (&port.ty, port.dp_port) {
        (_, Some(dp)) => key.set(Field::InPort, dp as u64),
        (PortType::Geneve(o), None) => {
            key.set(Field::InPort, TUNNEL_VPORT as u64);
            key.set(Field::TunSrc, u32::from(o.remote_ip) as u64);
            if let Some(l) = o.local_ip {
                key.set(Field::TunDst, u32::from(l) as u64);
            }
        }
        // A patch port has no datapath port: start in its bridge directly,
        // as if the peer had just sent the packet over.
        _ => opts.start = Some((bridge.to_string(), in_port)),
    }
    let mut t = trace_with(sw, &key, &opts);
    follow_recirculations(sw, &mut t, &opts, ct_next);
    Ok(t)
}

/// Most passes a trace follows (each `ct(table=)` is one more).
const MAX_TRACE_PASSES: usize = 16;

/// Translate the packets `t` recirculates, as the datapath would look them
/// up after the tracker: with the `ct_state` of `ct_next` in turn (OVS's
/// `ofproto/trace --ct-next`; default `trk|new`), the zone and the mark the
/// `ct()` gave.
fn follow_recirculations(sw: &mut Switch, t: &mut Translation, opts: &TraceOptions, ct_next: &[u8]) {
    use rvs_dataplane::conntrack::state::{NEW, TRK};
    let mut next = ct_next.iter();
    let mut pending: std::collections::VecDeque<_> = t.recircs.iter().copied().collect();
    while let Some(r) = pending.pop_front() {
        if t.then.len() >= MAX_TRACE_PASSES {
            break;
        }
        let (state, default) = match next.next() {
            Some(s) => (*s, ""),
            None => (TRK | NEW, "default "),
        };
        let mut key = r.key;
        key.set(Field::CtState, state as u64);
        key.set(Field::CtZone, r.zone as u64);
        key.set(Field::CtMark, r.mark as u64);
        key.set(Field::CtLabel, r.label as u64);
        let o = TraceOptions {
            start: None,
            ..opts.clone()
        };
        let mut pass = trace_with(sw, &key, &o);
        let id = key.get(Field::RecircId);
        let flags = ct_state_names(state);
        pass.trace.insert(
            0,
            format!(
                "{}\nrecirc({id:#x}) - resume conntrack with {default}ct_state={flags}{}\n{}",
                "=".repeat(79),
                if default.is_empty() {
                    ""
                } else {
                    " (use --ct-next to customize)"
                },
                "=".repeat(79)
            ),
        );
        pending.extend(pass.recircs.iter().copied());
        t.then.push(pass);
    }
}

/// `trk|new` (OVS's trace header form).
fn ct_state_names(state: u8) -> String {
    let names: Vec<&str> = crate::ofp::CT_STATE_FLAGS
        .iter()
        .rev()
        .filter(|(_, b)| state & b != 0)
        .map(|(n, _)| *n)
        .collect();
    names.join("|")
}

/// `--ct-next` flags: `trk,est` or `trk|est` (OVS's syntax).
pub fn parse_ct_next(s: &str) -> Result<u8, String> {
    let mut v = 0u8;
    for name in s.split([',', '|']).map(str::trim).filter(|n| !n.is_empty()) {
        let bit = crate::ofp::CT_STATE_FLAGS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
            .ok_or_else(|| {
                format!("--ct-next: unknown ct_state flag {name:?} (new, est, rel, rpl, inv, trk)")
            })?;
        v |= bit;
    }
    Ok(v)
}

/// The trace as JSON (`rvs --format json trace`): its lines, the megaflow's
/// fields and the datapath actions, and each recirculated pass after it.
pub fn render_json(t: &Translation) -> serde_json::Value {
    serde_json::json!({
        "trace": t.trace,
        "megaflow": megaflow_fields(t),
        "datapath_actions": t.actions.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "cacheable": t.cacheable,
        "recirculations": t.then.iter().map(render_json).collect::<Vec<_>>(),
    })
}

fn megaflow_fields(t: &Translation) -> Vec<String> {
    Field::ALL
        .iter()
        .filter_map(|f| match t.mask.get(*f) {
            0 => None,
            m if m == Field::max(*f) => Some(f.name().to_string()),
            m => Some(format!("{}/{m:#x}", f.name())),
        })
        .collect()
}

/// The trace as `rvs trace` prints it.
pub fn render(t: &Translation) -> String {
    let mut s = t.trace.join("\n");
    // The fields the cached flow will match on (all bits, or the mask shown).
    let _ = write!(s, "\n\nMegaflow matches on: {}", megaflow_fields(t).join(","));
    let acts = if t.actions.is_empty() {
        "drop".to_string()
    } else {
        t.actions
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let _ = write!(s, "\nDatapath actions: {acts}");
    for pass in &t.then {
        let _ = write!(s, "\n\n{}", render(pass));
    }
    s
}

#[cfg(test)]
mod tests;
