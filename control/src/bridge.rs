//! Bridges and their ports and rule tables.

use crate::classifier::Classifier;
use crate::normal::MacTable;
use crate::ofp::{Match, Rule, OFPP_LOCAL, OFPP_MAX};
use rvs_dataplane::port::PortNo;
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

/// Which tunnel id a Geneve port uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelKey {
    /// `key=flow`: the rules set it (`set_tunnel`, `load:->NXM_NX_TUN_ID[]`).
    Flow,
    /// `key=N`: always N.
    Fixed(u64),
}

/// A Geneve port's options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneveOptions {
    /// The far tunnel endpoint.
    pub remote_ip: Ipv4Addr,
    /// Our endpoint (else the tunnel route's).
    pub local_ip: Option<Ipv4Addr>,
    /// Tunnel id.
    pub key: TunnelKey,
}

/// What a port is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortType {
    /// The bridge's own port (a tap device towards the host).
    Internal,
    /// A device the datapath sends to and receives from (afxdp, afpacket, memory).
    System {
        /// The device type, as given (`afxdp`, `afpacket`, `memory`, ...).
        kind: String,
    },
    /// One end of a patch cable to another bridge.
    Patch {
        /// The port at the other end.
        peer: String,
    },
    /// A Geneve tunnel.
    Geneve(GeneveOptions),
}

impl fmt::Display for PortType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortType::Internal => f.write_str("internal"),
            PortType::System { kind } => f.write_str(kind),
            PortType::Patch { .. } => f.write_str("patch"),
            PortType::Geneve(_) => f.write_str("geneve"),
        }
    }
}

/// A port of a bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgePort {
    /// Name (unique in the switch).
    pub name: String,
    /// OpenFlow port number in its bridge.
    pub ofport: u32,
    /// Type and options.
    pub ty: PortType,
    /// Access VLAN (`tag=N`); `None` makes it a trunk.
    pub tag: Option<u16>,
    /// VLANs a trunk carries (empty: all).
    pub trunks: Vec<u16>,
    /// Datapath port number, for ports that have a device.
    pub dp_port: Option<PortNo>,
    /// Device options (`queues`, `csum`, ...), kept for the daemon and the config.
    pub options: BTreeMap<String, String>,
    /// OpenFlow configuration a controller set (PORT_MOD's OFPPC_* bits:
    /// port_down, no_recv, no_fwd, no_packet_in); as in OVS, it lasts
    /// until a restart.
    pub of_config: u32,
}

impl BridgePort {
    /// True when NORMAL may send VLAN `vlan` here.
    pub fn carries(&self, vlan: u16) -> bool {
        match self.tag {
            Some(t) => t == vlan,
            None => self.trunks.is_empty() || self.trunks.contains(&vlan),
        }
    }
}

/// A rule with its bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleEntry {
    /// The rule.
    pub rule: Rule,
    /// When it was added (switch clock, ms).
    pub added_ms: u64,
    /// When a translation last used it.
    pub used_ms: u64,
    /// Packets credited to it (from the cached flows it produced).
    pub n_packets: u64,
    /// Bytes credited to it.
    pub n_bytes: u64,
    /// Installed by an OpenFlow controller: it lives while the switch runs
    /// and is not saved (OVS keeps no flows across a restart; rvs keeps the
    /// ones its own CLI added).
    pub from_controller: bool,
    /// Its controller asked for FLOW_REMOVED when it goes.
    pub send_flow_rem: bool,
}

/// A bridge: ports, 255 rule tables, a MAC table.
pub struct Bridge {
    /// Name.
    pub name: String,
    /// Ports by OpenFlow number.
    pub ports: BTreeMap<u32, BridgePort>,
    /// Rule tables (created when first used).
    pub tables: BTreeMap<u8, Classifier<RuleEntry>>,
    /// NORMAL's MAC table.
    pub macs: MacTable,
    /// Where the search for the next free OpenFlow port number starts. It only
    /// grows (and is saved), so a deleted port's number is not handed to the
    /// next port, not even after a restart: a rule left naming it cannot reach
    /// a port it was never meant for.
    pub next_ofport: u32,
    /// OpenFlow controller targets (`set-controller`).
    pub controllers: Vec<crate::openflow::Target>,
    /// What the bridge does while it has controllers but none is connected.
    pub fail_mode: FailMode,
    /// Fail-open in force (standalone, controllers, none connected): table 0
    /// acts as NORMAL. Run-time state, not configuration.
    pub fail_open: bool,
    /// OpenFlow groups (a controller's; not saved, as in OVS).
    pub groups: crate::group::GroupTable,
    /// Their traffic, by group id.
    pub group_counters: BTreeMap<u32, crate::group::GroupCounters>,
}

/// `set-fail-mode`, with OVS's meaning: what a bridge with controllers does
/// while none of them is connected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailMode {
    /// Forward as a learning switch (NORMAL) until a controller connects;
    /// the flow tables are kept but not used.
    #[default]
    Standalone,
    /// Keep using the flow tables as they are; nothing new is learned.
    Secure,
}

impl FailMode {
    /// Its name in `set-fail-mode`.
    pub fn name(self) -> &'static str {
        match self {
            FailMode::Standalone => "standalone",
            FailMode::Secure => "secure",
        }
    }

    /// Parse a `set-fail-mode` argument.
    pub fn from_name(s: &str) -> Option<FailMode> {
        match s {
            "standalone" => Some(FailMode::Standalone),
            "secure" => Some(FailMode::Secure),
            _ => None,
        }
    }
}

impl Bridge {
    /// An empty bridge (no ports, no rules).
    pub fn new(name: &str) -> Bridge {
        Bridge {
            name: name.to_string(),
            ports: BTreeMap::new(),
            tables: BTreeMap::new(),
            macs: MacTable::default(),
            next_ofport: 1,
            controllers: Vec::new(),
            fail_mode: FailMode::default(),
            fail_open: false,
            groups: Default::default(),
            group_counters: BTreeMap::new(),
        }
    }

    /// The port called `name`.
    pub fn port_named(&self, name: &str) -> Option<&BridgePort> {
        self.ports.values().find(|p| p.name == name)
    }

    /// The OpenFlow port number for a new port: `request` when given and free
    /// (`ofport_request=N`, as OVS honours it), else the next free number.
    pub(crate) fn alloc_ofport(&mut self, name: &str, request: Option<u32>) -> Result<u32, String> {
        if name == self.name {
            return Ok(OFPP_LOCAL);
        }
        if let Some(n) = request {
            if !(1..OFPP_MAX).contains(&n) {
                return Err(format!("ofport_request={n} is not in 1..={}", OFPP_MAX - 1));
            }
            if let Some(p) = self.ports.get(&n) {
                return Err(format!(
                    "ofport_request={n}: port {} already has that number",
                    p.name
                ));
            }
            return Ok(n);
        }
        while self.ports.contains_key(&self.next_ofport) {
            self.next_ofport += 1;
        }
        if self.next_ofport >= OFPP_MAX {
            return Err(format!("bridge {} has no free OpenFlow port number", self.name));
        }
        let n = self.next_ofport;
        self.next_ofport += 1;
        Ok(n)
    }

    /// Add or replace a rule (same table, match and priority).
    pub fn add_rule(&mut self, rule: Rule, now_ms: u64) {
        self.add_rule_from(rule, now_ms, false)
    }

    /// Add or replace a rule; `from_controller`: an OpenFlow controller's
    /// (kept while the switch runs, not saved).
    pub fn add_rule_from(&mut self, rule: Rule, now_ms: u64, from_controller: bool) {
        let t = self.tables.entry(rule.table).or_default();
        t.insert(
            rule.matches,
            rule.priority,
            RuleEntry {
                rule,
                added_ms: now_ms,
                used_ms: now_ms,
                n_packets: 0,
                n_bytes: 0,
                from_controller,
                send_flow_rem: false,
            },
        );
    }

    /// Delete rules, as `ovs-ofctl del-flows`: in `table` (or all), those whose
    /// match is at least as specific as `filter`. Returns them.
    pub fn del_rules(&mut self, table: Option<u8>, filter: &Match) -> Vec<RuleEntry> {
        let mut gone = Vec::new();
        for (t, cls) in self.tables.iter_mut() {
            if table.is_some_and(|x| x != *t) {
                continue;
            }
            gone.extend(cls.retain(|m, _, _| !crate::flow_mod::covers(m, filter)));
        }
        self.tables.retain(|_, c| !c.is_empty());
        gone
    }

    /// True when a controller target is one the bridge dials (`tcp:`): OVS's
    /// "primary" connections. Listeners (`ptcp:`) serve "service"
    /// connections and do not count.
    pub fn has_dialed_controllers(&self) -> bool {
        self.controllers
            .iter()
            .any(|t| matches!(t, crate::openflow::Target::Tcp(_)))
    }

    /// Delete the rules that send to one of `groups` (a group went).
    pub fn del_rules_to_groups(&mut self, groups: &[u32]) -> Vec<RuleEntry> {
        let mut gone = Vec::new();
        for cls in self.tables.values_mut() {
            gone.extend(cls.retain(|_, _, e| {
                !groups
                    .iter()
                    .any(|g| crate::flow_mod::outputs_to_group(&e.rule.actions, *g))
            }));
        }
        self.tables.retain(|_, c| !c.is_empty());
        gone
    }

    /// The first group a rule's actions name that the bridge lacks.
    pub fn missing_group(&self, actions: &[crate::ofp::OfAction]) -> Option<u32> {
        actions.iter().find_map(|a| match a {
            crate::ofp::OfAction::Group(g) if self.groups.get(*g).is_none() => Some(*g),
            crate::ofp::OfAction::WriteActions(w) => self.missing_group(w),
            _ => None,
        })
    }

    /// Every rule, by table then priority (highest first).
    pub fn rules(&self) -> Vec<&RuleEntry> {
        let mut v: Vec<&RuleEntry> = self
            .tables
            .values()
            .flat_map(|c| c.iter().map(|(_, _, e)| e))
            .collect();
        v.sort_by(|a, b| {
            (a.rule.table, std::cmp::Reverse(a.rule.priority))
                .cmp(&(b.rule.table, std::cmp::Reverse(b.rule.priority)))
        });
        v
    }

    /// Number of rules.
    pub fn n_rules(&self) -> usize {
        self.tables.values().map(|c| c.len()).sum()
    }
}
