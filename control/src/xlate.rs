//! Translation: run a packet's key through the bridges' rule tables (resubmit,
//! goto_table, patch ports, NORMAL, learn) and produce datapath actions plus the
//! megaflow mask: every key bit any decision looked at, so a cached flow never
//! covers a packet the rules would treat differently.
//!
//! Like OVS's xlate, it keeps two views of the packet: `flow`, what the rules
//! have made of it so far, and `base`, what the datapath packet looks like after
//! the actions emitted so far. Before every output the difference is
//! "committed" as set/push/pop actions.

use crate::bridge::{Bridge, BridgePort, GeneveOptions, PortType, TunnelKey};
use crate::group::{select_bucket, GroupType};
use crate::normal::Learned;
use crate::ofp::{
    action_set, fmt_actions, ControllerSpec, CtSpec, CtZone, LearnSpec, LearnSpecItem, Match, OfAction,
    OfField, PinReason, Rule, SubField, XKey, XMask, MAX_LEN_ALL, OFPP_IN_PORT, OFPP_LOCAL, OFPP_TABLE,
    OFPP_UNSET,
};
use crate::openflow::bridge_ops::{PC_NO_FWD, PC_NO_PACKET_IN, PC_NO_RECV, PC_PORT_DOWN};
use crate::packet_in::PinState;
use crate::recirc::Frozen;
use crate::switch::{Switch, TUNNEL_VPORT};
use rvs_dataplane::action::{Action, SetArp, SetIpv4, SetIpv6, SetNd, SetTransport};
use rvs_dataplane::conntrack::{CtAction, NatAction, NatKind, NatRange};
use rvs_dataplane::flow::{Field, FlowKey, FlowMask, NdFields, ARP_SHA, ARP_THA, VLAN_CFI};
use rvs_dataplane::tunnel::{GeneveEncap, TunnelHeader, GENEVE_PORT};
use rvs_dataplane::DropReason;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Most resubmits and patch-port crossings in one translation.
pub const MAX_DEPTH: u32 = 64;

/// The result of translating one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    /// Datapath actions (empty: drop).
    pub actions: Vec<Action>,
    /// Key bits the result depends on.
    pub mask: FlowMask,
    /// The walk through bridges and tables, when asked for (`trace`).
    pub trace: Vec<String>,
    /// True when the translation changed switch state (MAC learned, rule learned).
    pub changed: bool,
    /// False when the result must not be cached (it waits for a neighbour, or
    /// the packet is for the VTEP itself).
    pub cacheable: bool,
    /// Tunnel next hops to resolve by ARP: (underlay port, remote IP).
    pub resolve: Vec<(u32, Ipv4Addr)>,
    /// The rules that matched, in order (their counters grow with the flow's).
    pub rules: Vec<RuleRef>,
    /// The groups it went through (their counters grow with the flow's).
    pub groups: Vec<GroupRef>,
    /// Tags of the MAC-table entries the result depended on ([`mac_tag`]):
    /// when one of them is learned, moves or is forgotten, the cached flow
    /// goes (and only those flows).
    pub deps: Vec<u64>,
    /// (bridge, VLAN, MAC, port) NORMAL learned from this packet: the cached
    /// flow's traffic keeps them young.
    pub learned: Vec<(String, u16, u64, u32)>,
    /// Packets recirculated after `ct(table=...)`, in order.
    pub recircs: Vec<Recirc>,
    /// The passes after this one (`trace` only: each recirculation,
    /// translated with the `ct_state` the trace assumes).
    pub then: Vec<Translation>,
}

/// The dependency tag of (bridge, VLAN, MAC) in NORMAL's MAC table. A cached
/// flow whose translation looked a MAC up (as destination) or learned it (as
/// source) carries its tag; learning, moving or forgetting that MAC
/// invalidates the tag, and with it exactly those flows.
pub fn mac_tag(bridge: &str, vlan: u16, mac: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same tag in every thread and run.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (bridge, vlan, mac).hash(&mut h);
    h.finish()
}

/// The dependency tag of one rule table: every cached flow whose translation
/// looked the table up carries it, and a rule added to, changed in or removed
/// from the table invalidates it (so flows that never consulted the table
/// stay cached).
pub fn table_tag(bridge: &str, table: u8) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ("table", bridge, table).hash(&mut h);
    h.finish()
}

/// The dependency tag of one group: every cached flow that went through
/// it carries it, and a change of the group invalidates it.
pub fn group_tag(bridge: &str, group: u32) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ("group", bridge, group).hash(&mut h);
    h.finish()
}

/// A group a translation went through, and the buckets that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    /// Bridge.
    pub bridge: String,
    /// Group id.
    pub group: u32,
    /// Indexes of the buckets that ran.
    pub buckets: Vec<usize>,
}

/// Which rule a translation went through: enough to find it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    /// Bridge.
    pub bridge: String,
    /// Table.
    pub table: u8,
    /// Match.
    pub matches: Match,
    /// Priority.
    pub priority: u16,
}

struct Xlate<'s> {
    sw: &'s mut Switch,
    /// False for `trace`: NORMAL does not learn and learn() installs nothing.
    may_learn: bool,
    now: u64,
    flow: XKey,
    base: FlowKey,
    /// The ND fields of the packet as the actions emitted so far left them.
    base_nd: NdFields,
    wc: XMask,
    actions: Vec<Action>,
    depth: u32,
    trace: Option<Vec<String>>,
    indent: usize,
    changed: bool,
    /// A rule was learned (its table's flows were invalidated).
    learned_rule: bool,
    halted: bool,
    /// The current rule's remaining actions are skipped (dec_ttl expired).
    stop_list: bool,
    /// Copies counted under a reason rather than sent (dec_ttl's expiry,
    /// controller): one drop is appended at the end of the actions.
    punt: Option<DropReason>,
    /// The cookie of the rule whose actions run (all ones: none, as for a
    /// packet-out's own actions), and whether it is a table-miss rule.
    rule_cookie: u64,
    rule_is_miss: bool,
    /// Where the actions running come from, when not a rule: a packet-out
    /// or the action set (packet-in reasons say so).
    action_source: Option<PinReason>,
    /// The in_port of the next table lookup only (resubmit's port).
    lookup_in_port: Option<u32>,
    /// The OpenFlow 1.1+ action set (`write_actions`), run when the
    /// bridge's pipeline ends.
    action_set: Vec<OfAction>,
    /// The table the pipeline was last in (a `resubmit(,)` in the action
    /// set means it).
    last_table: u8,
    cacheable: bool,
    resolve: Vec<(u32, Ipv4Addr)>,
    rules: Vec<RuleRef>,
    groups: Vec<GroupRef>,
    deps: Vec<u64>,
    learned: Vec<(String, u16, u64, u32)>,
    recircs: Vec<Recirc>,
    /// The datapath port the packet came in on (the key's, which `flow`
    /// replaces with OpenFlow port numbers).
    dp_in_port: u64,
}

/// A packet the translated actions recirculate after `ct(table=...)`: its
/// key as the datapath will look it up again (before the tracker's say),
/// and what the `ct()` set. `trace` follows it into the next pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recirc {
    /// The key, with its recirculation id.
    pub key: FlowKey,
    /// `ct_zone` it gets.
    pub zone: u16,
    /// `ct_mark` a commit gave it.
    pub mark: u32,
    /// `ct_label` (bits 0..31) a commit gave it.
    pub label: u32,
}

/// Translate a packet with datapath key `key` (an upcall): NORMAL learns and
/// `learn` actions install rules.
pub fn translate(sw: &mut Switch, key: &FlowKey) -> Translation {
    translate_packet(sw, key, &NdFields::default())
}

/// [`translate`] for a packet whose neighbour discovery fields (not in the
/// datapath key) are `nd` (see [`rvs_dataplane::flow::nd_fields`]).
pub fn translate_packet(sw: &mut Switch, key: &FlowKey, nd: &NdFields) -> Translation {
    translate_with(sw, key, nd, false, true, Entry::Datapath)
}

/// Translate and record the walk through bridges and tables as readable lines,
/// without learning anything (as `ovs-appctl ofproto/trace`).
pub fn trace(sw: &mut Switch, key: &FlowKey) -> Translation {
    translate_with(sw, key, &NdFields::default(), true, false, Entry::Datapath)
}

/// How a trace runs: `generate` applies the side effects (NORMAL learns,
/// `learn()` installs), as `ofproto/trace -generate`; `start` begins at a
/// (bridge, OpenFlow port) instead of the key's datapath port, so a packet can
/// be traced from a patch port, which has none.
#[derive(Debug, Clone, Default)]
pub struct TraceOptions {
    /// Apply side effects.
    pub generate: bool,
    /// Start at this bridge and port.
    pub start: Option<(String, u32)>,
    /// The packet's neighbour discovery fields.
    pub nd: NdFields,
}

/// [`trace`] with options.
pub fn trace_with(sw: &mut Switch, key: &FlowKey, opts: &TraceOptions) -> Translation {
    let entry = match &opts.start {
        Some((bridge, port)) => Entry::Port(bridge, *port),
        None => Entry::Datapath,
    };
    translate_with(sw, key, &opts.nd, true, opts.generate, entry)
}

/// Translate a controller's PACKET_OUT: `actions` run on the packet whose
/// datapath key is `key` (its in_port the datapath port it claims to come
/// from, or [`rvs_dataplane::port::NO_PORT`]), in `bridge`, with OpenFlow
/// in_port `in_port`. `output:TABLE` runs it through the tables from 0.
/// Learns as an upcall does; the result is for this packet only.
pub fn translate_packet_out(
    sw: &mut Switch,
    bridge: &str,
    in_port: u32,
    key: &FlowKey,
    actions: &[OfAction],
) -> Translation {
    let entry = Entry::PacketOut {
        bridge,
        in_port,
        actions,
    };
    translate_with(sw, key, &NdFields::default(), false, true, entry)
}

/// Where a translation starts.
enum Entry<'a> {
    /// At the key's datapath port (an upcall).
    Datapath,
    /// At table 0 of a bridge, from an OpenFlow port (a trace from a patch
    /// port, which has no datapath port).
    Port(&'a str, u32),
    /// With a packet-out's actions.
    PacketOut {
        bridge: &'a str,
        in_port: u32,
        actions: &'a [OfAction],
    },
}

fn translate_with(
    sw: &mut Switch,
    key: &FlowKey,
    nd: &NdFields,
    trace: bool,
    may_learn: bool,
    entry: Entry<'_>,
) -> Translation {
    let now = sw.now_ms();
    let mut x = Xlate {
        sw,
        may_learn,
        now,
        flow: XKey::from_packet(key, nd),
        base: *key,
        base_nd: *nd,
        wc: XMask::default(),
        actions: Vec::new(),
        depth: 0,
        trace: trace.then(Vec::new),
        indent: 0,
        changed: false,
        learned_rule: false,
        halted: false,
        stop_list: false,
        punt: None,
        rule_cookie: u64::MAX,
        rule_is_miss: false,
        action_source: None,
        lookup_in_port: None,
        action_set: Vec::new(),
        last_table: 0,
        cacheable: true,
        resolve: Vec::new(),
        rules: Vec::new(),
        groups: Vec::new(),
        deps: Vec::new(),
        learned: Vec::new(),
        recircs: Vec::new(),
        dp_in_port: key.get(Field::InPort),
    };
    OfField::ActsetOutput.set(&mut x.flow, OFPP_UNSET as u128);
    match entry {
        Entry::Port(bridge, ofport) => {
            x.note_flow(key);
            x.flow.set_bits(Field::InPort.place(), ofport as u64);
            x.run_bridge(bridge, 0);
        }
        Entry::PacketOut {
            bridge,
            in_port,
            actions,
        } => {
            x.note_flow(key);
            x.flow.set_bits(Field::InPort.place(), in_port as u64);
            x.action_source = Some(PinReason::PacketOut);
            for a in actions {
                if x.halted || x.stop_list {
                    break;
                }
                match a {
                    // An instruction, not an action: a packet-out has none.
                    OfAction::GotoTable(_) => {}
                    a => x.action(bridge, 0, a),
                }
            }
        }
        Entry::Datapath => x.run(key),
    }
    if let Some(r) = x.punt {
        x.actions.push(Action::Drop(r));
    }
    if x.wc.has_nd() && x.cacheable {
        // The datapath key has no room for ND fields: a flow cached without
        // them would cover NS/NA messages the rules tell apart.
        x.note(|| "neighbour discovery fields consulted: not cached".into());
        x.cacheable = false;
    }
    let mut mask = x.wc.flow_mask();
    mask.set_exact(Field::InPort);
    mask.set_exact(Field::RecircId);
    if x.learned_rule {
        // The rule learned here may change what the tables already visited
        // would say: let the next packet be translated with it in place.
        x.cacheable = false;
    }
    Translation {
        actions: x.actions,
        mask,
        trace: x.trace.unwrap_or_default(),
        changed: x.changed,
        cacheable: x.cacheable,
        resolve: x.resolve,
        rules: x.rules,
        groups: x.groups,
        deps: x.deps,
        learned: x.learned,
        recircs: x.recircs,
        then: Vec::new(),
    }
}

fn is_multicast(mac: u128) -> bool {
    mac & 0x0100_0000_0000 != 0
}

fn mac_str(m: u128) -> String {
    crate::ofp::OfField::DlSrc.fmt_value(m)
}

impl Xlate<'_> {
    fn note(&mut self, s: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(format!("{}{}", " ".repeat(self.indent), s()));
        }
    }

    fn consult(&mut self, f: OfField, bits: u128) {
        let mut m = XMask::default();
        f.set(&mut m, bits);
        self.wc.union(&m);
    }

    fn get(&self, f: OfField) -> u128 {
        f.get(&self.flow)
    }

    fn set(&mut self, f: OfField, v: u128) {
        // Writing a packet field makes the result depend on its old value
        // (whether a set/pop is needed at all), as OVS un-wildcards set fields.
        if matches!(
            f,
            OfField::DlSrc
                | OfField::DlDst
                | OfField::VlanTci
                | OfField::VlanVid
                | OfField::VlanPcp
                | OfField::NwSrc
                | OfField::NwDst
                | OfField::NwTos
                | OfField::NwEcn
                | OfField::IpDscp
                | OfField::NwTtl
                | OfField::ArpOp
                | OfField::ArpSha
                | OfField::ArpTha
                | OfField::TpSrc
                | OfField::TpDst
                | OfField::Ipv6Src
                | OfField::Ipv6Dst
                | OfField::Ipv6Label
                | OfField::NdTarget
                | OfField::NdSll
                | OfField::NdTll
        ) {
            self.consult(f, f.max());
        }
        f.set(&mut self.flow, v);
        if let OfField::TunMetadata(i) = f {
            let p = self.flow.bits(Field::TunMdPresent.place());
            self.flow.set_bits(Field::TunMdPresent.place(), p | 1 << i);
        }
    }

    /// A translation error: as in OVS the whole packet is dropped, including
    /// outputs emitted before the error.
    fn drop_with(&mut self, reason: DropReason, why: &str) {
        self.note(|| format!("-> drop: {why} (the whole packet: no earlier output goes either)"));
        self.actions.clear();
        self.actions.push(Action::Drop(reason));
        self.punt = None;
        self.halted = true;
    }

    /// A port's OpenFlow configuration (PORT_MOD's bits; 0 for none).
    fn port_config(&self, bridge: &str, ofport: u32) -> u32 {
        self.sw
            .bridges
            .get(bridge)
            .and_then(|b| b.ports.get(&ofport))
            .map_or(0, |p| p.of_config)
    }

    fn note_flow(&mut self, key: &FlowKey) {
        self.note(|| {
            let mut s = String::from("Flow: ");
            let _ = key.fmt_masked(None, &mut s);
            s
        });
    }

    fn run(&mut self, key: &FlowKey) {
        let dp_in = key.get(Field::InPort) as u32;
        self.note_flow(key);
        let recirc_id = key.get(Field::RecircId) as u32;
        if recirc_id != 0 {
            return self.thaw(recirc_id);
        }
        // Packets that a tunnel pop recirculated: find their Geneve port.
        let (bridge, ofport) =
            if dp_in == TUNNEL_VPORT && key.get(Field::RecircId) == 0 && key.get(Field::TunDst) != 0 {
                self.consult(OfField::TunSrc, u32::MAX as u128);
                self.consult(OfField::TunDst, u32::MAX as u128);
                self.consult(OfField::TunId, u64::MAX as u128);
                let src = Ipv4Addr::from(key.get(Field::TunSrc) as u32);
                let dst = Ipv4Addr::from(key.get(Field::TunDst) as u32);
                match self.sw.tunnel_port_for(src, dst, key.get(Field::TunId)) {
                    Some((b, p)) => (b.name.clone(), p.ofport),
                    None => {
                        let vni = key.get(Field::TunId);
                        return self.drop_with(
                            DropReason::NoTunnelPort,
                            &format!("no Geneve port for tunnel {src} -> {dst} vni {vni:#x}"),
                        );
                    }
                }
            } else {
                match self.sw.dp_ports.get(&dp_in) {
                    Some((b, p)) => (b.clone(), *p),
                    None => {
                        self.note(|| format!("datapath port {dp_in} belongs to no bridge"));
                        return;
                    }
                }
            };
        if self.for_vtep(dp_in, key) || self.terminate_tunnel(dp_in, key) {
            return;
        }
        if self.port_config(&bridge, ofport) & (PC_PORT_DOWN | PC_NO_RECV) != 0 {
            return self.drop_with(
                DropReason::PortConfig,
                &format!("port {ofport} is port_down or no_recv (PORT_MOD)"),
            );
        }
        self.flow.set_bits(Field::InPort.place(), ofport as u64);
        self.run_bridge(&bridge, 0);
    }

    /// A packet recirculated after `ct(table=...)`: resume where its id says.
    fn thaw(&mut self, id: u32) {
        let Some(f) = self.sw.recirc.thaw(id).cloned() else {
            return self.drop_with(
                DropReason::Action,
                &format!("recirc({id:#x}) names no frozen state (the switch forgot it)"),
            );
        };
        f.restore(&mut self.flow);
        self.flow.set_bits(Field::InPort.place(), f.in_port as u64);
        self.note(|| {
            format!(
                "thaw: resuming from table {} of bridge(\"{}\")",
                f.table, f.bridge
            )
        });
        self.run_bridge(&f.bridge, f.table);
    }

    /// ARP or ping for the tunnel endpoint address on its underlay port: hand
    /// it to the VTEP (userspace), uncached.
    fn for_vtep(&mut self, dp_in: u32, key: &FlowKey) -> bool {
        let Some(ip) = self.sw.vteps.get(&dp_in).map(|v| v.ip) else {
            return false;
        };
        self.consult(OfField::DlType, 0xffff);
        let ours = match key.get(Field::EthType) {
            0x0806 => {
                self.consult(OfField::NwDst, u32::MAX as u128);
                key.get(Field::NwDst) == u32::from(ip) as u64
            }
            0x0800 => {
                self.consult(OfField::NwProto, 0xff);
                self.consult(OfField::NwDst, u32::MAX as u128);
                key.get(Field::NwProto) == 1 && key.get(Field::NwDst) == u32::from(ip) as u64
            }
            _ => false,
        };
        if ours {
            self.note(|| format!("for the tunnel endpoint {ip}: to the VTEP (ARP / ping)"));
            self.actions.push(Action::Userspace(0));
            self.cacheable = false;
        }
        ours
    }

    /// Geneve to one of our tunnel addresses (a route's local address or the
    /// VTEP's), arriving on an underlay port: pop it and look the inner frame
    /// up again.
    fn terminate_tunnel(&mut self, dp_in: u32, key: &FlowKey) -> bool {
        let underlays: Vec<Ipv4Addr> = self
            .sw
            .routes
            .values()
            .filter(|r| r.underlay_port == dp_in)
            .map(|r| r.local_ip)
            .chain(self.sw.vteps.get(&dp_in).map(|v| v.ip))
            .collect();
        if underlays.is_empty() {
            return false;
        }
        self.consult(OfField::DlType, 0xffff);
        if key.get(Field::EthType) != 0x0800 {
            return false;
        }
        self.consult(OfField::NwProto, 0xff);
        self.consult(OfField::NwDst, u32::MAX as u128);
        self.consult(OfField::IpFrag, 0xff);
        self.consult(OfField::TpDst, 0xffff);
        let dst = Ipv4Addr::from(key.get(Field::NwDst) as u32);
        let geneve = key.get(Field::NwProto) == 17
            && key.get(Field::TpDst) == GENEVE_PORT as u64
            && key.get(Field::NwFrag) == 0;
        if geneve && underlays.contains(&dst) {
            self.note(|| format!("Geneve to our tunnel address {dst}: tnl_pop, then recirculate"));
            self.actions.push(Action::TunnelPop(TUNNEL_VPORT));
            return true;
        }
        false
    }

    fn run_bridge(&mut self, bridge: &str, table: u8) {
        self.note(|| format!("bridge(\"{bridge}\")"));
        self.indent += 1;
        self.run_table(bridge, table);
        self.run_action_set(bridge);
        self.indent -= 1;
    }

    /// The pipeline ended: run what `write_actions` left in the action set
    /// (OVS's `xlate_action_set`), in the OpenFlow order.
    fn run_action_set(&mut self, bridge: &str) {
        if self.action_set.is_empty() {
            return;
        }
        let set = std::mem::take(&mut self.action_set);
        let list = action_set::execution_list(&set);
        if list.is_empty() || self.halted {
            return;
        }
        self.note(|| format!("--. Executing action set: {}", fmt_actions(&list)));
        self.indent += 1;
        let table = self.last_table;
        let source = self.action_source.replace(PinReason::ActionSet);
        for a in &list {
            if self.halted || self.stop_list {
                break;
            }
            self.action(bridge, table, a);
        }
        self.action_source = source;
        self.stop_list = false;
        self.indent -= 1;
    }

    fn run_table(&mut self, bridge: &str, mut table: u8) {
        loop {
            self.last_table = table;
            // Whatever the table says (even "no rules"), the result depends on it.
            self.deps.push(table_tag(bridge, table));
            let Some(br) = self.sw.bridges.get_mut(bridge) else {
                return;
            };
            if table == 0 && br.fail_open {
                // OVS's fail-open rule: above every rule of table 0.
                self.note(|| " 0. fail-open (no controller connected): NORMAL".into());
                self.normal(bridge);
                return;
            }
            let Some(cls) = br.tables.get(&table) else {
                self.note(|| format!("{table:>2}. no rules: drop"));
                return;
            };
            // resubmit(PORT,..): that in_port for the lookup only; the rule's
            // actions run with the packet's own (OVS's xlate_table_action).
            let l = match self.lookup_in_port.take() {
                Some(p) => {
                    let mut k = self.flow;
                    OfField::InPort.set(&mut k, p as u128);
                    cls.lookup(&k)
                }
                None => cls.lookup(&self.flow),
            };
            self.wc.union(&l.consulted);
            let (Some((m, prio, _)), Some(slot)) = (l.hit, l.slot) else {
                self.note(|| format!("{table:>2}. no match: drop"));
                return;
            };
            let (m, prio) = (*m, prio);
            let entry = br
                .tables
                .get_mut(&table)
                .and_then(|c| c.slot_mut(slot))
                .expect("just found");
            entry.used_ms = self.now;
            let rule: Rule = entry.rule.clone();
            self.rules.push(RuleRef {
                bridge: bridge.to_string(),
                table,
                matches: m,
                priority: prio,
            });
            let pad = " ".repeat(self.indent + 4);
            self.note(|| {
                let ms = rule.matches.to_string();
                let ms = if ms.is_empty() {
                    String::new()
                } else {
                    format!("{ms}, ")
                };
                format!(
                    "{table:>2}. {ms}priority {}\n{pad}{}",
                    rule.priority,
                    fmt_actions(&rule.actions)
                )
            });
            self.indent += 1;
            let mut next = None;
            // OpenFlow's table-miss rule: priority 0, matching everything.
            let is_miss = rule.priority == 0 && rule.matches == Match::default();
            for a in &rule.actions {
                if self.halted || self.stop_list {
                    break;
                }
                if let OfAction::GotoTable(t) = a {
                    next = Some(*t);
                    break;
                }
                // A patch port's peer ran its own rules meanwhile.
                (self.rule_cookie, self.rule_is_miss) = (rule.cookie, is_miss);
                self.action(bridge, table, a);
            }
            self.indent -= 1;
            if std::mem::take(&mut self.stop_list) {
                return;
            }
            match next {
                Some(t) if !self.halted => {
                    if t <= table {
                        self.drop_with(DropReason::XlateDepth, "goto_table must go forward");
                        return;
                    }
                    table = t;
                }
                _ => return,
            }
        }
    }

    fn action(&mut self, bridge: &str, table: u8, a: &OfAction) {
        let in_port = self.get(OfField::InPort) as u32;
        match a {
            OfAction::Output(p) => self.output(bridge, *p, false),
            OfAction::OutputField(sf) => {
                let p = self.read(sf) as u32;
                self.output(bridge, p, false)
            }
            OfAction::Normal => self.normal(bridge),
            OfAction::Flood | OfAction::All => {
                let ports: Vec<u32> = self.sw.bridges[bridge]
                    .ports
                    .keys()
                    .copied()
                    .filter(|p| *p != in_port)
                    .collect();
                for p in ports {
                    self.output(bridge, p, false);
                }
            }
            OfAction::InPort => self.output(bridge, in_port, true),
            OfAction::Local => self.output(bridge, OFPP_LOCAL, false),
            OfAction::Drop => {}
            OfAction::Resubmit { port, table: t } => {
                if self.depth >= MAX_DEPTH {
                    return self.drop_with(DropReason::XlateDepth, "resubmit depth exceeded (loop?)");
                }
                self.depth += 1;
                self.lookup_in_port = port.filter(|p| *p != OFPP_IN_PORT);
                let t = t.unwrap_or(table);
                match self.lookup_in_port {
                    Some(p) => self.note(|| format!("resubmit to table {t}, looked up with in_port={p}")),
                    None => self.note(|| format!("resubmit to table {t}")),
                }
                self.run_table(bridge, t);
                self.lookup_in_port = None;
                self.depth -= 1;
            }
            OfAction::GotoTable(_) => unreachable!("handled by run_table"),
            OfAction::ModVlanVid(v) => {
                let tci = self.get(OfField::VlanTci) as u16;
                let pcp = if tci & VLAN_CFI != 0 { tci & 0xe000 } else { 0 };
                self.set(OfField::VlanTci, (pcp | VLAN_CFI | v) as u128);
            }
            OfAction::ModVlanPcp(p) => {
                let tci = self.get(OfField::VlanTci) as u16;
                let vid = if tci & VLAN_CFI != 0 { tci & 0x0fff } else { 0 };
                self.set(OfField::VlanTci, (((*p as u16) << 13) | VLAN_CFI | vid) as u128);
            }
            OfAction::StripVlan => self.set(OfField::VlanTci, 0),
            OfAction::PushVlan(_) => {
                let tci = self.get(OfField::VlanTci) as u16;
                self.set(OfField::VlanTci, (tci | VLAN_CFI) as u128);
            }
            OfAction::ModDlSrc(m) => self.set(OfField::DlSrc, *m as u128),
            OfAction::ModDlDst(m) => self.set(OfField::DlDst, *m as u128),
            OfAction::ModNwSrc(a) => self.set(OfField::NwSrc, u32::from(*a) as u128),
            OfAction::ModNwDst(a) => self.set(OfField::NwDst, u32::from(*a) as u128),
            OfAction::ModNwTos(t) => self.set(OfField::IpDscp, (*t >> 2) as u128),
            OfAction::ModNwEcn(e) => self.set(OfField::NwEcn, *e as u128),
            OfAction::ModNwTtl(t) => self.set(OfField::NwTtl, *t as u128),
            OfAction::DecTtl => self.dec_ttl(),
            OfAction::WriteMetadata { value, mask } => {
                let old = self.get(OfField::Metadata) as u64;
                self.set(OfField::Metadata, ((old & !mask) | (value & mask)) as u128);
            }
            OfAction::Controller(c) => self.controller(bridge, table, c),
            OfAction::Group(g) => self.group(bridge, table, *g),
            OfAction::ModTpSrc(p) => self.set(OfField::TpSrc, *p as u128),
            OfAction::ModTpDst(p) => self.set(OfField::TpDst, *p as u128),
            // OVS's nw_tos is the DSCP bits; the ECN bits stay.
            OfAction::SetField {
                field: OfField::NwTos,
                value,
            } => self.set(OfField::IpDscp, *value >> 2),
            // OF1.3: setting the VID tags the packet (OFPVID_PRESENT).
            OfAction::SetField {
                field: OfField::VlanVid,
                value,
            } => self.set(OfField::VlanVid, (*value & 0xfff) | VLAN_CFI as u128),
            OfAction::SetField { field, value } => self.set(*field, *value),
            OfAction::Load { value, dst } => self.write(dst, *value),
            OfAction::Move { src, dst } => {
                let v = self.read(src);
                self.write(dst, v);
            }
            OfAction::SetTunnel(id) => self.set(OfField::TunId, *id as u128),
            OfAction::Learn(spec) => self.learn(bridge, spec),
            OfAction::Note(_) => {}
            OfAction::WriteActions(acts) => {
                if let Some(p) = action_set::write(&mut self.action_set, acts) {
                    self.set(OfField::ActsetOutput, p as u128);
                }
            }
            OfAction::ClearActions => {
                self.action_set.clear();
                self.set(OfField::ActsetOutput, OFPP_UNSET as u128);
            }
            OfAction::Ct(spec) => self.ct(bridge, spec),
            OfAction::CtClear => {
                self.commit();
                self.actions.push(Action::CtClear);
                self.clear_ct();
            }
        }
    }

    /// The flow as untracked: no `ct_*` fields (what OVS's xlate does
    /// after `ct_clear`, and for the packet that goes on after `ct(table=)`).
    fn clear_ct(&mut self) {
        for f in [
            OfField::CtState,
            OfField::CtZone,
            OfField::CtMark,
            OfField::CtLabel,
        ] {
            f.set(&mut self.flow, 0);
        }
    }

    /// `ct(...)`: the datapath tracks the packet as it is now (pending
    /// rewrites are committed first); with `table=T` it then looks the
    /// packet up again under a recirculation id that resumes in this bridge
    /// at table T with the registers and metadata of this moment.
    fn ct(&mut self, bridge: &str, spec: &CtSpec) {
        let zone = match spec.zone {
            CtZone::Imm(z) => z,
            CtZone::Field(sf) => self.read(&sf) as u16,
        };
        let mut mark: Option<(u32, u32)> = None;
        let mut label: Option<(u128, u128)> = None;
        for a in &spec.exec {
            let (field, value, m) = match a {
                OfAction::SetField { field, value } => (*field, *value, OfField::max(*field)),
                OfAction::Load { value, dst } => (dst.field, *value << dst.start, dst.mask()),
                _ => continue,
            };
            if field == OfField::CtMark {
                let (v0, m0) = mark.unwrap_or((0, 0));
                mark = Some(((v0 & !(m as u32)) | (value as u32 & m as u32), m0 | m as u32));
            } else if field == OfField::CtLabel {
                let (v0, m0) = label.unwrap_or((0, 0));
                label = Some(((v0 & !m) | (value & m), m0 | m));
            }
        }
        self.commit();
        let act = CtAction {
            zone,
            commit: spec.commit,
            mark,
            label,
            nat: spec.nat,
        };
        self.note(|| format!("ct: {}", Action::Ct(Box::new(act))));
        self.actions.push(Action::Ct(Box::new(act)));
        let Some(table) = spec.table else {
            // What the tracker said is not visible to this pass (OVS's
            // xlate clears the fields after any ct()).
            self.clear_ct();
            return;
        };
        let in_port = self.get(OfField::InPort) as u32;
        let (id, restarted) = self
            .sw
            .recirc
            .freeze(Frozen::of(bridge, table, in_port, &self.flow));
        if restarted {
            // Flows may name ids that are gone.
            self.sw.bump();
        }
        self.actions.push(Action::Recirculate(id));
        self.note(|| {
            format!("-> A clone of the packet is forked to recirculate (recirc({id:#x})). The forked pipeline will be resumed at table {table}.")
        });
        self.note(|| "-> Sets the packet to an untracked state, and clears all the conntrack fields.".into());
        let mut key = self.base;
        key.set(Field::RecircId, id as u64);
        key.set(Field::InPort, self.dp_in_port);
        if let (true, Some(NatAction::Range(r))) = (spec.commit, spec.nat) {
            if let Some(what) = predict_nat(&mut key, &r) {
                self.note(|| {
                    format!("-> A new connection is translated: {what} (trace shows the next pass so).")
                });
            }
        }
        self.recircs.push(Recirc {
            key,
            zone,
            mark: mark.map_or(0, |m| m.0),
            label: label.map_or(0, |l| l.0 as u32),
        });
        self.clear_ct();
    }

    /// `group:N`: the group's bucket(s), each as a clone: what a bucket
    /// rewrites is undone for the next bucket and for the actions after the
    /// group (OVS's `xlate_group_action`).
    fn group(&mut self, bridge: &str, table: u8, id: u32) {
        self.deps.push(group_tag(bridge, id));
        let Some(g) = self
            .sw
            .bridges
            .get(bridge)
            .and_then(|b| b.groups.get(id))
            .cloned()
        else {
            return self.note(|| format!("group:{id}: no such group: nothing happens"));
        };
        if self.depth >= MAX_DEPTH {
            return self.drop_with(DropReason::XlateDepth, "group depth exceeded (loop?)");
        }
        let chosen: Vec<usize> = match g.ty {
            GroupType::All => (0..g.buckets.len()).collect(),
            GroupType::Indirect => vec![0],
            GroupType::Select => {
                let h = self.select_hash();
                select_bucket(&g.buckets, h).into_iter().collect()
            }
        };
        self.groups.push(GroupRef {
            bridge: bridge.to_string(),
            group: id,
            buckets: chosen.clone(),
        });
        self.depth += 1;
        for i in chosen {
            let Some(b) = g.buckets.get(i) else { continue };
            self.note(|| {
                format!(
                    "group:{id} ({}) bucket {i}: {}",
                    g.ty.name(),
                    fmt_actions(&b.actions)
                )
            });
            let saved = self.flow;
            self.indent += 1;
            for a in &b.actions {
                if self.halted || self.stop_list {
                    break;
                }
                self.action(bridge, table, a);
            }
            self.indent -= 1;
            self.stop_list = false;
            self.flow = saved;
            if self.halted {
                break;
            }
        }
        self.depth -= 1;
    }

    /// A SELECT group's hash: symmetric over the addresses and ports (OVS's
    /// default selection), every field it reads consulted.
    fn select_hash(&mut self) -> u64 {
        let pairs = [
            (OfField::DlSrc, OfField::DlDst),
            (OfField::NwSrc, OfField::NwDst),
            (OfField::Ipv6Src, OfField::Ipv6Dst),
            (OfField::TpSrc, OfField::TpDst),
        ];
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |v: u128| {
            for b in v.to_le_bytes() {
                h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
            }
        };
        for f in [OfField::DlType, OfField::NwProto] {
            self.consult(f, f.max());
            eat(self.get(f));
        }
        for (a, b) in pairs {
            self.consult(a, a.max());
            self.consult(b, b.max());
            // Both directions of a connection choose the same bucket.
            let (x, y) = (self.get(a), self.get(b));
            eat(x ^ y);
            eat(x.min(y));
        }
        h
    }

    /// `controller(...)`: the packet as the actions so far made it goes to
    /// the datapath's `userspace` action, whose cookie names what the
    /// PACKET_IN will say (OVS's `controller()` userdata); translation
    /// goes on.
    fn controller(&mut self, bridge: &str, table: u8, c: &ControllerSpec) {
        let in_port = self.get(OfField::InPort) as u32;
        if self.port_config(bridge, in_port) & PC_NO_PACKET_IN != 0 {
            return self
                .note(|| format!("controller: in_port {in_port} is no_packet_in (PORT_MOD): no packet-in"));
        }
        let mut spec = *c;
        if spec.reason == PinReason::Action {
            // OVS: an output to the controller from a table-miss rule says
            // no_match; from a packet-out or the action set, that.
            spec.reason = match self.action_source {
                Some(r) => r,
                None if self.rule_is_miss => PinReason::NoMatch,
                None => PinReason::Action,
            };
        }
        self.commit();
        let state = PinState::new(
            Frozen::of(bridge, table, in_port, &self.flow),
            self.rule_cookie,
            spec,
        );
        let (id, restarted) = self.sw.pins.freeze(state);
        if restarted {
            // Flows may name cookies that are gone.
            self.sw.bump();
        }
        self.note(|| {
            format!(
                "controller: packet-in (reason={}, {} bytes) to the controllers of bridge(\"{bridge}\")",
                spec.reason.name(),
                match spec.max_len {
                    MAX_LEN_ALL => "all".to_string(),
                    n => format!("at most {n}"),
                }
            )
        });
        self.actions.push(Action::Userspace(id));
    }

    /// `dec_ttl`, as OVS: not IP, nothing happens; TTL above 1 goes down by
    /// one; else this rule's remaining actions are skipped and the packet's
    /// copy for the controller is counted under `ttl_exceeded`.
    fn dec_ttl(&mut self) {
        self.consult(OfField::DlType, 0xffff);
        if !matches!(self.get(OfField::DlType), 0x0800 | 0x86dd) {
            return self.note(|| "dec_ttl: not IP, nothing to do".into());
        }
        self.consult(OfField::NwTtl, 0xff);
        let ttl = self.get(OfField::NwTtl);
        if ttl > 1 {
            self.set(OfField::NwTtl, ttl - 1);
            return;
        }
        self.note(|| format!("dec_ttl: TTL {ttl}: expired, the rest of this rule's actions are skipped"));
        self.punt.get_or_insert(DropReason::TtlExceeded);
        self.stop_list = true;
    }

    /// Read a subfield (right-aligned), marking its bits consulted.
    fn read(&mut self, sf: &SubField) -> u128 {
        self.consult(sf.field, sf.mask());
        (self.get(sf.field) & sf.mask()) >> sf.start
    }

    fn write(&mut self, sf: &SubField, v: u128) {
        let old = self.get(sf.field);
        self.set(sf.field, (old & !sf.mask()) | ((v << sf.start) & sf.mask()));
    }

    /// Emit the set/push/pop actions that turn the datapath packet into `flow`.
    fn commit(&mut self) {
        let f = self.flow.flow();
        let b = self.base;
        let (bt, ft) = (b.get(Field::VlanTci), f.get(Field::VlanTci));
        if bt != ft {
            // Whether a tag must be popped depends on the packet having one.
            self.consult(OfField::VlanTci, VLAN_CFI as u128);
            if bt & VLAN_CFI as u64 != 0 {
                self.actions.push(Action::PopVlan);
            }
            if ft & VLAN_CFI as u64 != 0 {
                self.actions.push(Action::PushVlan {
                    tpid: 0x8100,
                    tci: ft as u16,
                });
            }
        }
        if b.get(Field::EthSrc) != f.get(Field::EthSrc) {
            self.actions.push(Action::SetEthSrc(f.eth_src()));
        }
        if b.get(Field::EthDst) != f.get(Field::EthDst) {
            self.actions.push(Action::SetEthDst(f.eth_dst()));
        }
        let l3 = [
            Field::NwSrc,
            Field::NwDst,
            Field::NwTos,
            Field::NwTtl,
            Field::Ipv6SrcHi,
            Field::Ipv6SrcLo,
            Field::Ipv6DstHi,
            Field::Ipv6DstLo,
            Field::Ipv6Label,
        ];
        let arp = [Field::NwSrc, Field::NwDst, Field::ArpOp, ARP_SHA, ARP_THA];
        if arp.iter().any(|x| b.get(*x) != f.get(*x)) && f.get(Field::EthType) == 0x0806 {
            self.consult(OfField::DlType, 0xffff);
            let ch = |x: Field| (b.get(x) != f.get(x)).then(|| f.get(x));
            let mac = |v: u64| {
                let b = v.to_be_bytes();
                [b[2], b[3], b[4], b[5], b[6], b[7]]
            };
            self.actions.push(Action::SetArp(SetArp {
                op: ch(Field::ArpOp).map(|v| v as u16),
                sha: ch(ARP_SHA).map(mac),
                spa: ch(Field::NwSrc).map(|v| Ipv4Addr::from(v as u32)),
                tha: ch(ARP_THA).map(mac),
                tpa: ch(Field::NwDst).map(|v| Ipv4Addr::from(v as u32)),
            }));
        } else if l3.iter().any(|x| b.get(*x) != f.get(*x)) {
            self.consult(OfField::DlType, 0xffff);
            if f.get(Field::EthType) == 0x86dd {
                let ch = |x: Field| (b.get(x) != f.get(x)).then(|| f.get(x));
                let ch2 = |hi: Field, lo: Field| {
                    (b.get(hi) != f.get(hi) || b.get(lo) != f.get(lo))
                        .then(|| Ipv6Addr::from(((f.get(hi) as u128) << 64) | f.get(lo) as u128))
                };
                self.actions.push(Action::SetIpv6(SetIpv6 {
                    src: ch2(Field::Ipv6SrcHi, Field::Ipv6SrcLo),
                    dst: ch2(Field::Ipv6DstHi, Field::Ipv6DstLo),
                    label: ch(Field::Ipv6Label).map(|v| v as u32),
                    tclass: ch(Field::NwTos).map(|v| v as u8),
                    hlimit: ch(Field::NwTtl).map(|v| v as u8),
                }));
            }
            if f.get(Field::EthType) == 0x0800 {
                let ch = |x: Field| (b.get(x) != f.get(x)).then(|| f.get(x));
                self.actions.push(Action::SetIpv4(SetIpv4 {
                    src: ch(Field::NwSrc).map(|v| Ipv4Addr::from(v as u32)),
                    dst: ch(Field::NwDst).map(|v| Ipv4Addr::from(v as u32)),
                    tos: ch(Field::NwTos).map(|v| v as u8),
                    ttl: ch(Field::NwTtl).map(|v| v as u8),
                }));
            }
        }
        let (bn, fnd) = (self.base_nd, self.flow.nd());
        if bn != fnd {
            // The fields exist only in an NS/NA (the rule's prerequisites).
            self.consult(OfField::DlType, 0xffff);
            self.consult(OfField::NwProto, 0xff);
            self.consult(OfField::TpSrc, 0xffff);
            let mac = |v: u64| {
                let b = v.to_be_bytes();
                [b[2], b[3], b[4], b[5], b[6], b[7]]
            };
            self.actions.push(Action::SetNd(SetNd {
                target: (bn.target != fnd.target).then(|| Ipv6Addr::from(fnd.target)),
                sll: (bn.sll != fnd.sll).then(|| mac(fnd.sll)),
                tll: (bn.tll != fnd.tll).then(|| mac(fnd.tll)),
            }));
            self.base_nd = fnd;
        }
        if b.get(Field::TpSrc) != f.get(Field::TpSrc) || b.get(Field::TpDst) != f.get(Field::TpDst) {
            self.consult(OfField::DlType, 0xffff);
            self.consult(OfField::NwProto, 0xff);
            if matches!(f.get(Field::EthType), 0x0800 | 0x86dd) && matches!(f.get(Field::NwProto), 6 | 17) {
                let ch = |x: Field| (b.get(x) != f.get(x)).then(|| f.get(x) as u16);
                self.actions.push(Action::SetTransport(SetTransport {
                    src: ch(Field::TpSrc),
                    dst: ch(Field::TpDst),
                }));
            }
        }
        self.base = f;
    }

    fn output(&mut self, bridge: &str, p: u32, allow_in_port: bool) {
        if p == OFPP_TABLE {
            return self.output_table(bridge);
        }
        let in_port = self.get(OfField::InPort) as u32;
        if p == in_port && !allow_in_port {
            self.note(|| format!("output:{p} is the input port: skipped (use IN_PORT)"));
            return;
        }
        if self.port_config(bridge, p) & (PC_PORT_DOWN | PC_NO_FWD) != 0 {
            self.note(|| format!("output:{p}: port_down or no_fwd (PORT_MOD): skipped"));
            return;
        }
        let Some(port) = self.sw.bridges.get(bridge).and_then(|b| b.ports.get(&p)) else {
            self.note(|| format!("output:{p}: no such port"));
            return;
        };
        if let PortType::Internal | PortType::System { .. } = port.ty {
            // The common case clones nothing (an upcall's cost is mostly
            // allocation); the name is copied only for a trace.
            let Some(dp) = port.dp_port else { return };
            let name = self.trace.is_some().then(|| port.name.clone());
            self.commit();
            self.note(|| format!("output to {} (datapath port {dp})", name.unwrap_or_default()));
            self.actions.push(Action::Output(dp));
            return;
        }
        let port = port.clone();
        match &port.ty {
            PortType::Patch { peer } => self.patch(&port, peer),
            PortType::Geneve(opts) => self.tunnel_output(&port, opts),
            // Handled above.
            PortType::Internal | PortType::System { .. } => {}
        }
    }

    /// `output:TABLE` (a packet-out's): through the bridge's tables from
    /// table 0, as a packet from its in_port; the rules' own reasons apply.
    fn output_table(&mut self, bridge: &str) {
        if self.depth >= MAX_DEPTH {
            return self.drop_with(DropReason::XlateDepth, "output:TABLE depth exceeded (loop?)");
        }
        self.depth += 1;
        self.note(|| "output:TABLE: through the tables from table 0".into());
        let source = self.action_source.take();
        let cookie = (self.rule_cookie, self.rule_is_miss);
        self.run_bridge(bridge, 0);
        (self.rule_cookie, self.rule_is_miss) = cookie;
        self.action_source = source;
        self.depth -= 1;
    }

    fn patch(&mut self, port: &BridgePort, peer: &str) {
        let Some((peer_bridge, peer_port)) =
            self.sw.find_port(peer).map(|(b, p)| (b.name.clone(), p.clone()))
        else {
            self.note(|| format!("patch port {} has no peer {peer:?}", port.name));
            return;
        };
        if !matches!(&peer_port.ty, PortType::Patch { peer } if *peer == port.name) {
            self.note(|| format!("{peer} is not a patch port back to {}", port.name));
            return;
        }
        if self.depth >= MAX_DEPTH {
            return self.drop_with(DropReason::XlateDepth, "too many patch-port crossings (loop?)");
        }
        self.depth += 1;
        // As in OVS, the peer bridge starts with clear registers, metadata
        // and action set; this bridge's come back afterwards.
        let saved = self.flow;
        let saved_set = std::mem::take(&mut self.action_set);
        for i in 0..8 {
            self.set(OfField::Reg(i), 0);
        }
        self.set(OfField::Metadata, 0);
        self.set(OfField::ActsetOutput, OFPP_UNSET as u128);
        self.set(OfField::InPort, peer_port.ofport as u128);
        self.note(|| format!("output to patch port {} -> {peer}", port.name));
        self.run_bridge(&peer_bridge, 0);
        // What the peer did to the packet stays in `base` (it was committed); the
        // flow goes back to what this bridge had, so later outputs here commit
        // this bridge's view again.
        self.flow = saved;
        self.action_set = saved_set;
        self.depth -= 1;
    }

    fn tunnel_output(&mut self, port: &BridgePort, opts: &GeneveOptions) {
        let Some(route) = self.sw.route_to(opts.remote_ip, opts.local_ip) else {
            self.note(|| format!("no tunnel route to {}", opts.remote_ip));
            self.actions.push(Action::Drop(DropReason::NoTunnelRoute));
            return;
        };
        let now = self.now;
        let remote_mac = route.remote_mac.or_else(|| {
            self.sw
                .vteps
                .get(&route.underlay_port)
                .and_then(|v| v.lookup(route.next_hop, now))
        });
        let Some(remote_mac) = remote_mac else {
            self.note(|| {
                format!(
                    "output to {}: next hop {} not resolved yet, asking by ARP",
                    port.name, route.next_hop
                )
            });
            self.resolve.push((route.underlay_port, route.next_hop));
            self.cacheable = false;
            return;
        };
        self.commit();
        let vni = match opts.key {
            TunnelKey::Flow => self.get(OfField::TunId) as u64,
            TunnelKey::Fixed(k) => k,
        };
        let mut e = GeneveEncap::new(
            route.local_mac,
            remote_mac,
            opts.local_ip.unwrap_or(route.local_ip),
            opts.remote_ip,
            vni as u32,
        );
        let present = self.flow.bits(Field::TunMdPresent.place()) as u8;
        for m in self.sw.optmap.iter() {
            if present & (1 << m.slot) != 0 {
                let v = self.get(OfField::TunMetadata(m.slot)) as u32;
                let _ = e.geneve.push_option(m.class, m.typ, &v.to_be_bytes());
            }
        }
        self.note(|| {
            let via = if route.next_hop == opts.remote_ip {
                String::new()
            } else {
                format!(", gateway {}", route.next_hop)
            };
            format!(
                "output to {}: Geneve vni {vni:#x} to {} via datapath port {}{via}, next-hop MAC {}",
                port.name,
                opts.remote_ip,
                route.underlay_port,
                rvs_dataplane::flow::MacAddr(remote_mac)
            )
        });
        self.actions.push(Action::TunnelOutput(
            Box::new(TunnelHeader::geneve(&e)),
            route.underlay_port,
        ));
    }

    fn normal(&mut self, bridge: &str) {
        let in_port = self.get(OfField::InPort) as u32;
        self.consult(OfField::VlanTci, 0x1fff);
        self.consult(OfField::DlSrc, u64::MAX as u128 >> 16);
        self.consult(OfField::DlDst, u64::MAX as u128 >> 16);
        let tci = self.get(OfField::VlanTci) as u16;
        let tagged = tci & VLAN_CFI != 0;
        // Borrowed, not cloned: the port's name is copied only for a trace.
        let Some(inp) = self.sw.bridges[bridge].ports.get(&in_port) else {
            return self.note(|| "NORMAL: unknown input port".into());
        };
        let inp_name = if self.trace.is_some() {
            inp.name.clone()
        } else {
            String::new()
        };
        let vlan = match inp.tag {
            Some(_) if tagged => return self.note(|| "NORMAL: tagged frame on an access port: drop".into()),
            Some(t) => t,
            None if tagged => tci & 0x0fff,
            None => 0,
        };
        if !inp.carries(vlan) {
            return self.note(|| format!("NORMAL: {inp_name} does not carry VLAN {vlan}: drop"));
        }
        let src = self.get(OfField::DlSrc);
        let dst = self.get(OfField::DlDst);
        let now = self.now;
        if !is_multicast(src) {
            // The result depends on where src was learned: a move must send
            // this flow's packets through learning again.
            self.deps.push(mac_tag(bridge, vlan, src as u64));
        }
        if !is_multicast(dst) {
            // Known or flooded, the output depends on the entry for dst.
            self.deps.push(mac_tag(bridge, vlan, dst as u64));
        }
        if !is_multicast(src) && self.may_learn {
            let macs = &mut self.sw.bridges.get_mut(bridge).expect("bridge").macs;
            let learned = macs.learn(vlan, src as u64, in_port, now);
            self.learned.push((bridge.to_string(), vlan, src as u64, in_port));
            let forgotten = macs.take_forgotten();
            for (v, m) in forgotten {
                self.sw.invalidate(mac_tag(bridge, v, m));
            }
            if learned != Learned::Refreshed {
                // Only the flows that used this MAC change (they flooded to
                // it, or sent it to its old port): not a full flush.
                self.sw.invalidate(mac_tag(bridge, vlan, src as u64));
                self.changed = true;
                self.note(|| {
                    format!(
                        "NORMAL: learned {} on VLAN {vlan} port {}",
                        mac_str(src),
                        inp_name
                    )
                });
            }
        }
        let known = if is_multicast(dst) {
            None
        } else {
            self.sw.bridges[bridge].macs.lookup(vlan, dst as u64, now)
        };
        match known {
            Some(out) if out == in_port => {
                self.note(|| "NORMAL: destination is on the input port: drop".into())
            }
            Some(out) => {
                self.note(|| format!("NORMAL: {} is on port {out}", mac_str(dst)));
                self.normal_output(bridge, out, vlan, tci);
            }
            None => {
                self.note(|| format!("NORMAL: flood on VLAN {vlan}"));
                let ports: Vec<u32> = self.sw.bridges[bridge]
                    .ports
                    .values()
                    .filter(|p| p.ofport != in_port && p.carries(vlan))
                    .map(|p| p.ofport)
                    .collect();
                for p in ports {
                    self.normal_output(bridge, p, vlan, tci);
                }
            }
        }
    }

    fn normal_output(&mut self, bridge: &str, out: u32, vlan: u16, in_tci: u16) {
        let Some(port) = self.sw.bridges[bridge].ports.get(&out) else {
            return;
        };
        if !port.carries(vlan) {
            return;
        }
        let access = port.tag.is_some();
        let saved = self.get(OfField::VlanTci);
        let tci = if access || vlan == 0 {
            0
        } else {
            (in_tci & 0xe000) | VLAN_CFI | vlan
        };
        self.set(OfField::VlanTci, tci as u128);
        self.output(bridge, out, false);
        self.set(OfField::VlanTci, saved);
    }

    fn learn(&mut self, bridge: &str, spec: &LearnSpec) {
        let mut m = Match::any();
        let mut actions = Vec::new();
        let put = |m: &mut Match, dst: &SubField, v: u128| {
            let (ov, om) = m.get(dst.field);
            m.set(
                dst.field,
                (ov & !dst.mask()) | ((v << dst.start) & dst.mask()),
                om | dst.mask(),
            );
        };
        for item in &spec.items {
            match item {
                LearnSpecItem::MatchSame(sf) => {
                    let v = self.read(sf);
                    put(&mut m, sf, v);
                }
                LearnSpecItem::MatchField { dst, src } => {
                    let v = self.read(src);
                    put(&mut m, dst, v);
                }
                LearnSpecItem::MatchValue { dst, value } => put(&mut m, dst, *value),
                LearnSpecItem::LoadValue { value, dst } => actions.push(OfAction::Load {
                    value: *value,
                    dst: *dst,
                }),
                LearnSpecItem::LoadField { src, dst } => {
                    let v = self.read(src);
                    actions.push(OfAction::Load { value: v, dst: *dst });
                }
                LearnSpecItem::Output(sf) => {
                    let p = self.read(sf) as u32;
                    actions.push(OfAction::Output(p));
                }
            }
        }
        let rule = Rule {
            table: spec.table,
            priority: spec.priority,
            cookie: spec.cookie,
            idle_timeout: spec.idle_timeout,
            hard_timeout: spec.hard_timeout,
            matches: m,
            actions,
        };
        let now = self.now;
        if !self.may_learn {
            self.note(|| format!("learn (not applied while tracing): {rule}"));
            return;
        }
        let br: &mut Bridge = self.sw.bridges.get_mut(bridge).expect("bridge");
        if let Some(e) = br
            .tables
            .get_mut(&rule.table)
            .and_then(|c| c.get_mut(&m, rule.priority))
        {
            if e.rule == rule {
                // Re-learning refreshes the timeouts but changes no decision.
                e.added_ms = now;
                e.used_ms = now;
                return;
            }
        }
        let text = self.trace.is_some().then(|| rule.to_string());
        let table = rule.table;
        br.add_rule(rule, now);
        self.sw.invalidate(table_tag(bridge, table));
        self.changed = true;
        self.learned_rule = true;
        if let Some(t) = text {
            self.note(|| format!("learned: {t}"));
        }
    }
}

/// What `ct(commit,nat(...))` does to a new connection when the range leaves
/// no choice (one address, at most one port): `key` (the next pass's, for
/// `trace`) gets it, and the translation comes back for the trace's words. A range with a
/// choice depends on the table's other connections: the key stays.
fn predict_nat(key: &mut FlowKey, r: &NatRange) -> Option<String> {
    if r.min != r.max || r.ports.is_some_and(|(lo, hi)| lo != hi) {
        return None;
    }
    let (v4, v6, port) = match r.kind {
        NatKind::Src => (Field::NwSrc, (Field::Ipv6SrcHi, Field::Ipv6SrcLo), Field::TpSrc),
        NatKind::Dst => (Field::NwDst, (Field::Ipv6DstHi, Field::Ipv6DstLo), Field::TpDst),
    };
    match (r.min, key.get(Field::EthType)) {
        (std::net::IpAddr::V4(a), 0x0800) => key.set(v4, u32::from(a) as u64),
        (std::net::IpAddr::V6(a), 0x86dd) => {
            let b = u128::from(a);
            key.set(v6.0, (b >> 64) as u64);
            key.set(v6.1, b as u64);
        }
        _ => return None,
    }
    if let (Some((p, _)), 6 | 17) = (r.ports, key.get(Field::NwProto)) {
        key.set(port, p as u64);
    }
    Some(NatAction::Range(*r).to_string())
}

#[cfg(test)]
mod tests;
