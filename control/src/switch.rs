//! [`Switch`]: all bridges of one datapath, their ports' datapath numbers,
//! tunnel routes, the Geneve option map, and the change counters
//! ([`Invalidations`]) that tell PMD threads which cached flows went stale.

use crate::bridge::{Bridge, BridgePort, GeneveOptions, PortType, RuleEntry};
use crate::ofp::{parse_flows, FlowsParseError, Match, PortNames, Rule, OFPP_LOCAL};
use crate::xlate::RuleRef;
use rvs_dataplane::cache::{Invalidations, Seen};
use rvs_dataplane::port::PortNo;
use rvs_dataplane::tunnel::{GeneveOptMap, OptMapError};
use rvs_dataplane::vtep::Vtep;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;
use thiserror::Error;

/// Most remembered flow attributions before they are forgotten.
const MAX_XCACHE: usize = 1 << 17;

/// Datapath port that tunnel-popped packets re-enter on; the switch then finds
/// the Geneve port from the tunnel metadata.
pub const TUNNEL_VPORT: PortNo = 0;

/// How to reach a remote tunnel endpoint (given by the VTEP's ARP resolution,
/// or set by hand).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelRoute {
    /// Datapath port on the underlay.
    pub underlay_port: PortNo,
    /// Our tunnel address on that underlay.
    pub local_ip: Ipv4Addr,
    /// Our MAC on the underlay.
    pub local_mac: [u8; 6],
    /// Next hop's MAC; `None`: ask the VTEP on the underlay port (ARP).
    pub remote_mac: Option<[u8; 6]>,
    /// The address whose MAC that is: the remote endpoint itself when it is
    /// on the underlay's link, else the gateway of a static route.
    pub next_hop: Ipv4Addr,
}

/// What a cached flow's translation went through, kept under the flow's tag:
/// its packet counts are credited to these rules, and its traffic keeps these
/// MAC-table entries young (OVS's xlate cache does both for its revalidators).
#[derive(Clone, Debug, Default)]
pub struct FlowOrigin {
    /// The rules that matched.
    pub rules: Vec<RuleRef>,
    /// The groups it went through.
    pub groups: Vec<crate::xlate::GroupRef>,
    /// (bridge, VLAN, MAC, port) that NORMAL learned or refreshed.
    pub macs: Vec<(String, u16, u64, u32)>,
}

/// FLOW_REMOVED notices kept for the controllers (the oldest go first).
pub const MAX_REMOVED: usize = 4096;

/// A configuration change that was refused (nothing was changed).
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum SwitchError {
    /// No such bridge.
    #[error("no bridge named {0:?}")]
    NoBridge(String),
    /// The bridge exists.
    #[error("bridge {0:?} already exists")]
    BridgeExists(String),
    /// No such port.
    #[error("no port named {0:?}")]
    NoPort(String),
    /// A port (or bridge) has that name.
    #[error("a port named {0:?} already exists")]
    PortExists(String),
    /// Bad port options.
    #[error("port {port:?}: {reason}")]
    BadPort {
        /// Port.
        port: String,
        /// Why.
        reason: String,
    },
    /// Flow text that does not parse.
    #[error("{0}")]
    Flow(String),
    /// A tunnel route that cannot be added or removed.
    #[error("tunnel route: {0}")]
    Route(String),
    /// Bad TLV mapping.
    #[error("tlv map: {0}")]
    Tlv(#[from] OptMapError),
    /// A controller target that does not parse.
    #[error("{0}")]
    Target(#[from] crate::openflow::target::TargetError),
    /// Not a fail mode.
    #[error("fail mode {0:?}: standalone or secure")]
    FailMode(String),
    /// A flow modification that was refused.
    #[error("flow_mod: {0}")]
    FlowMod(#[from] crate::flow_mod::FlowModError),
    /// A group change refused.
    #[error("group_mod: {0}")]
    Group(#[from] crate::group::GroupError),
}

impl From<FlowsParseError> for SwitchError {
    fn from(e: FlowsParseError) -> Self {
        SwitchError::Flow(e.to_string())
    }
}

/// The switch's configuration and slow-path state.
pub struct Switch {
    /// Bridges by name.
    pub bridges: BTreeMap<String, Bridge>,
    /// Datapath port -> (bridge, OpenFlow port).
    pub dp_ports: BTreeMap<PortNo, (String, u32)>,
    /// Tunnel routes by remote endpoint.
    pub routes: BTreeMap<Ipv4Addr, TunnelRoute>,
    /// Geneve options <-> tun_metadata slots.
    pub optmap: GeneveOptMap,
    /// Tunnel endpoint addresses served by rvs, by underlay datapath port.
    pub vteps: BTreeMap<PortNo, Vtep>,
    /// Fixed tunnel neighbours (`tnl-arp-set`) by bridge: remote IP -> MAC.
    pub fixed_neigh: BTreeMap<String, BTreeMap<Ipv4Addr, [u8; 6]>>,
    /// Static tunnel routes (`tnl-route-add`, OVS's `ovs/route/add`).
    pub static_routes: BTreeMap<(Ipv4Addr, u8), StaticRoute>,
    /// Where translation resumes after `ct(table=...)`.
    pub recirc: crate::recirc::RecircTable,
    /// What each packet-in cookie of a `controller` action stands for.
    pub pins: crate::packet_in::PinTable,
    /// Where packet-ins go (the daemon's OpenFlow side); none: nowhere.
    pub pin_sink: Option<Arc<dyn crate::packet_in::PacketInSink>>,
    /// Cached flow tag -> the rules its translation went through.
    xcache: HashMap<u64, FlowOrigin>,
    /// (PMD, tag) -> (packets, bytes) already credited.
    credited: HashMap<(usize, u64), (u64, u64)>,
    next_tag: u64,
    /// Rules gone that asked for FLOW_REMOVED, for the controllers.
    removed: std::collections::VecDeque<crate::flow_mod::Removed>,
    inv: Arc<Invalidations>,
    clock: Instant,
    next_dp: PortNo,
}

impl Default for Switch {
    fn default() -> Self {
        Switch {
            bridges: BTreeMap::new(),
            dp_ports: BTreeMap::new(),
            routes: BTreeMap::new(),
            optmap: GeneveOptMap::default(),
            vteps: BTreeMap::new(),
            fixed_neigh: BTreeMap::new(),
            static_routes: BTreeMap::new(),
            recirc: Default::default(),
            pins: Default::default(),
            pin_sink: None,
            xcache: HashMap::new(),
            credited: HashMap::new(),
            next_tag: 1,
            removed: std::collections::VecDeque::new(),
            inv: Arc::new(Invalidations::new()),
            clock: Instant::now(),
            next_dp: TUNNEL_VPORT + 1,
        }
    }
}

/// `aa:bb:cc:dd:ee:ff` as written in this file's device options and
/// tunnel neighbours.
pub fn format_mac(m: &[u8; 6]) -> String {
    rvs_dataplane::flow::MacAddr(*m).to_string()
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The MAC of network device `name` in this namespace, from sysfs.
pub fn device_mac(name: &str) -> Option<[u8; 6]> {
    parse_mac(&std::fs::read_to_string(format!("/sys/class/net/{name}/address")).ok()?)
}

/// Port names of one bridge, for parsing flows.
pub struct BridgePortNames<'a>(pub &'a Bridge);

impl PortNames for BridgePortNames<'_> {
    fn port_no(&self, name: &str) -> Option<u32> {
        self.0.port_named(name).map(|p| p.ofport)
    }
}

impl Switch {
    /// An empty switch.
    pub fn new() -> Self {
        Self::default()
    }

    /// The change counters PMDs watch ([`rvs_dataplane::pmd::Pmd::watch`]).
    pub fn invalidations(&self) -> Arc<Invalidations> {
        self.inv.clone()
    }

    /// Note a change that can alter any translation: PMDs drop their cached
    /// flows before their next lookup.
    pub fn bump(&self) {
        self.inv.flush_all();
    }

    /// Set a port's OpenFlow configuration (PORT_MOD's OFPPC_* bits);
    /// returns whether it changed. Every cached flow goes (it is rare, and
    /// any translation may have sent to or come from the port).
    pub fn set_port_config(&mut self, bridge: &str, ofport: u32, config: u32) -> bool {
        let Some(p) = self
            .bridges
            .get_mut(bridge)
            .and_then(|b| b.ports.get_mut(&ofport))
        else {
            return false;
        };
        if p.of_config == config {
            return false;
        }
        p.of_config = config;
        self.bump();
        true
    }

    /// Note a change that alters only the translations that depended on `tag`
    /// (see [`crate::xlate::mac_tag`]): PMDs drop just those flows.
    pub fn invalidate(&self, tag: u64) {
        self.inv.invalidate(tag);
    }

    /// Where the changes stand (for an upcall reply: see `UpcallReply::seen`).
    pub fn seen(&self) -> Seen {
        self.inv.now()
    }

    /// Milliseconds since the switch started (rule and MAC timestamps).
    pub fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    fn name_taken(&self, name: &str) -> bool {
        self.bridges.contains_key(name) || self.bridges.values().any(|b| b.port_named(name).is_some())
    }

    /// Create a bridge with its LOCAL internal port and the default rule
    /// `priority=0,actions=NORMAL`, as `ovs-vsctl add-br` does.
    pub fn add_bridge(&mut self, name: &str) -> Result<(), SwitchError> {
        self.add_bridge_with(name, None)
    }

    /// [`add_bridge`](Self::add_bridge) whose LOCAL port asks for datapath
    /// port `local_dp` (a saved configuration's, see
    /// [`add_port_with`](Self::add_port_with)).
    pub fn add_bridge_with(&mut self, name: &str, local_dp: Option<PortNo>) -> Result<(), SwitchError> {
        if self.bridges.contains_key(name) {
            return Err(SwitchError::BridgeExists(name.into()));
        }
        if self.name_taken(name) {
            return Err(SwitchError::PortExists(name.into()));
        }
        let mut br = Bridge::new(name);
        let now = self.now_ms();
        br.add_rule(normal_rule(), now);
        self.bridges.insert(name.into(), br);
        self.add_port_with(name, name, PortType::Internal, None, None, local_dp)?;
        Ok(())
    }

    /// Delete a bridge and its ports.
    pub fn del_bridge(&mut self, name: &str) -> Result<(), SwitchError> {
        self.bridges
            .remove(name)
            .ok_or_else(|| SwitchError::NoBridge(name.into()))?;
        self.dp_ports.retain(|_, (b, _)| b != name);
        let dp_ports = &self.dp_ports;
        self.vteps.retain(|dp, _| dp_ports.contains_key(dp));
        self.fixed_neigh.remove(name);
        self.bump();
        Ok(())
    }

    /// Add a port to a bridge; returns its OpenFlow number.
    pub fn add_port(
        &mut self,
        bridge: &str,
        name: &str,
        ty: PortType,
        tag: Option<u16>,
    ) -> Result<u32, SwitchError> {
        self.add_port_numbered(bridge, name, ty, tag, None)
    }

    /// [`add_port`](Self::add_port) with OVS's `ofport_request=N`: the port gets
    /// number N, or the call fails (N taken or out of range) and nothing changes.
    pub fn add_port_numbered(
        &mut self,
        bridge: &str,
        name: &str,
        ty: PortType,
        tag: Option<u16>,
        ofport_request: Option<u32>,
    ) -> Result<u32, SwitchError> {
        self.add_port_with(bridge, name, ty, tag, ofport_request, None)
    }

    /// [`add_port_numbered`](Self::add_port_numbered) that also asks for
    /// datapath port `dp_request` (a saved configuration's): a restarted
    /// daemon must give each device the number it had, since the kernel
    /// flows its predecessor left behind name them. A number already in use
    /// is not taken (the port gets a new one).
    pub fn add_port_with(
        &mut self,
        bridge: &str,
        name: &str,
        ty: PortType,
        tag: Option<u16>,
        ofport_request: Option<u32>,
        dp_request: Option<PortNo>,
    ) -> Result<u32, SwitchError> {
        if !self.bridges.contains_key(bridge) {
            return Err(SwitchError::NoBridge(bridge.into()));
        }
        if name != bridge && self.name_taken(name) {
            return Err(SwitchError::PortExists(name.into()));
        }
        if let Some(t) = tag {
            if t == 0 || t > 4094 {
                return Err(SwitchError::BadPort {
                    port: name.into(),
                    reason: format!("tag {t} is not in 1..=4094"),
                });
            }
        }
        if let PortType::Patch { peer } = &ty {
            if peer == name || peer.is_empty() {
                return Err(SwitchError::BadPort {
                    port: name.into(),
                    reason: "a patch port needs options:peer=OTHER".into(),
                });
            }
        }
        let br = self.bridges.get_mut(bridge).expect("checked above");
        let ofport = br
            .alloc_ofport(name, ofport_request)
            .map_err(|reason| SwitchError::BadPort {
                port: name.into(),
                reason,
            })?;
        let dp_port = match ty {
            PortType::Internal | PortType::System { .. } => {
                let n = match dp_request {
                    Some(n) if n != TUNNEL_VPORT && !self.dp_ports.contains_key(&n) => n,
                    _ => {
                        while self.dp_ports.contains_key(&self.next_dp) {
                            self.next_dp += 1;
                        }
                        self.next_dp
                    }
                };
                self.next_dp = self.next_dp.max(n + 1);
                Some(n)
            }
            PortType::Patch { .. } | PortType::Geneve(_) => None,
        };
        br.ports.insert(
            ofport,
            BridgePort {
                name: name.into(),
                ofport,
                ty,
                tag,
                trunks: Vec::new(),
                dp_port,
                options: BTreeMap::new(),
                of_config: 0,
            },
        );
        if let Some(n) = dp_port {
            self.dp_ports.insert(n, (bridge.into(), ofport));
        }
        self.bump();
        Ok(ofport)
    }

    /// Remove a port (and what NORMAL learned on it).
    pub fn del_port(&mut self, name: &str) -> Result<(), SwitchError> {
        let (bname, ofport) = self
            .bridges
            .values()
            .find_map(|b| b.port_named(name).map(|p| (b.name.clone(), p.ofport)))
            .ok_or_else(|| SwitchError::NoPort(name.into()))?;
        if ofport == OFPP_LOCAL {
            return Err(SwitchError::BadPort {
                port: name.into(),
                reason: "the bridge's own port goes with del-br".into(),
            });
        }
        let br = self.bridges.get_mut(&bname).expect("found above");
        let p = br.ports.remove(&ofport).expect("found above");
        br.macs.forget_port(ofport);
        br.macs.take_forgotten(); // the full flush below covers them
        if let Some(n) = p.dp_port {
            self.dp_ports.remove(&n);
            self.vteps.remove(&n);
        }
        self.bump();
        Ok(())
    }

    /// Set a port's device options (`queues`, `csum`, `vtep_ip`, `vtep_mac`).
    /// `vtep_ip=IP` makes rvs serve that tunnel endpoint address on the port
    /// (ARP, ping, Geneve), with the device's own MAC unless `vtep_mac` is given;
    /// the XDP program then steers only that address's frames to rvs.
    pub fn set_port_options(
        &mut self,
        port: &str,
        options: BTreeMap<String, String>,
    ) -> Result<(), SwitchError> {
        let bad = |reason: String| SwitchError::BadPort {
            port: port.into(),
            reason,
        };
        let dp = self.port_mut(port)?.dp_port;
        let vtep = match options.get("vtep_ip") {
            None => None,
            Some(v) => {
                let ip: Ipv4Addr = v
                    .parse()
                    .map_err(|_| bad(format!("options:vtep_ip={v:?} is not an IPv4 address")))?;
                let mac = match options.get("vtep_mac") {
                    Some(m) => parse_mac(m).ok_or_else(|| bad(format!("options:vtep_mac={m:?} is not a MAC")))?,
                    None => device_mac(port).ok_or_else(|| {
                        bad(format!(
                            "options:vtep_ip needs the device's MAC: no /sys/class/net/{port} here; give options:vtep_mac=MAC"
                        ))
                    })?,
                };
                let dp = dp.ok_or_else(|| bad("a VTEP needs a device port".into()))?;
                Some((dp, ip, mac))
            }
        };
        if let Some(dp) = dp {
            self.vteps.remove(&dp);
        }
        if let Some((dp, ip, mac)) = vtep {
            self.vteps.insert(dp, Vtep::new(ip, mac));
            self.seed_fixed_neighbors(dp);
        }
        self.port_mut(port)?.options = options;
        self.bump();
        Ok(())
    }

    /// ARP requests for the next hop of every tunnel port whose route has no
    /// fixed MAC and whose neighbour is unknown or aged out (each asked at most
    /// once per retry interval): resolving before the first packet needs it
    /// keeps the first packets of a flow (and of a restart) from waiting.
    ///
    /// Only underlay ports for which `can_send` holds are asked on (a port
    /// whose device is not open yet, as during a restart, is asked on once it
    /// is, not rate-limited by a request that never left).
    pub fn resolve_tunnels(&mut self, can_send: impl Fn(PortNo) -> bool) -> Vec<(PortNo, Vec<u8>)> {
        let now = self.now_ms();
        let wanted: Vec<(PortNo, Ipv4Addr)> = self
            .bridges
            .values()
            .flat_map(|b| b.ports.values())
            .filter_map(|p| match &p.ty {
                PortType::Geneve(o) => self
                    .route_to(o.remote_ip, o.local_ip)
                    .filter(|r| r.remote_mac.is_none() && can_send(r.underlay_port))
                    .map(|r| (r.underlay_port, r.next_hop)),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for (port, ip) in wanted {
            let mut frame = Vec::new();
            if self
                .vteps
                .get_mut(&port)
                .is_some_and(|v| v.request(ip, now, &mut frame))
            {
                out.push((port, frame));
            }
        }
        out
    }

    /// How to reach tunnel endpoint `remote` from local address `local` (when a
    /// tunnel port names one): a route set with [`Switch::set_route`], else the
    /// longest static route (`tnl-route-add`) that holds it, else through the
    /// VTEP serving `local` (or the only VTEP), next hop by ARP.
    pub fn route_to(&self, remote: Ipv4Addr, local: Option<Ipv4Addr>) -> Option<TunnelRoute> {
        if let Some(r) = self.routes.get(&remote) {
            return Some(*r);
        }
        if let Some(r) = self.static_route_to(remote, local) {
            return r;
        }
        let mut vteps = self.vteps.iter().filter(|(_, v)| local.is_none_or(|l| l == v.ip));
        let (port, v) = vteps.next()?;
        if local.is_none() && vteps.next().is_some() {
            return None;
        }
        Some(TunnelRoute {
            underlay_port: *port,
            local_ip: v.ip,
            local_mac: v.mac,
            remote_mac: None,
            next_hop: remote,
        })
    }

    /// Set the VLANs a trunk port carries.
    pub fn set_trunks(&mut self, port: &str, trunks: Vec<u16>) -> Result<(), SwitchError> {
        let p = self.port_mut(port)?;
        p.trunks = trunks;
        self.bump();
        Ok(())
    }

    fn port_mut(&mut self, name: &str) -> Result<&mut BridgePort, SwitchError> {
        self.bridges
            .values_mut()
            .flat_map(|b| b.ports.values_mut())
            .find(|p| p.name == name)
            .ok_or_else(|| SwitchError::NoPort(name.into()))
    }

    /// The bridge called `name`.
    pub fn bridge(&self, name: &str) -> Result<&Bridge, SwitchError> {
        self.bridges
            .get(name)
            .ok_or_else(|| SwitchError::NoBridge(name.into()))
    }

    /// (bridge, port) of a port name.
    pub fn find_port(&self, name: &str) -> Option<(&Bridge, &BridgePort)> {
        self.bridges
            .values()
            .find_map(|b| b.port_named(name).map(|p| (b, p)))
    }

    /// Parse flow text (one flow per line) against a bridge's port names and add
    /// them all, or none if any line is wrong.
    /// A rule naming a group the bridge lacks is refused.
    pub fn add_flows(&mut self, bridge: &str, text: &str) -> Result<usize, SwitchError> {
        self.apply_flows(bridge, text, false, true)
    }

    /// Replace all rules of a bridge with the flows in `text`, atomically.
    pub fn replace_flows(&mut self, bridge: &str, text: &str) -> Result<usize, SwitchError> {
        self.apply_flows(bridge, text, true, true)
    }

    /// [`Switch::replace_flows`] for the saved configuration: its rules
    /// stand even when they name a group a controller made before the
    /// restart (groups are not saved; such a group drops until it is back).
    pub fn load_flows(&mut self, bridge: &str, text: &str) -> Result<usize, SwitchError> {
        self.apply_flows(bridge, text, true, false)
    }

    /// Parse everything first, then change the bridge: all or nothing.
    fn apply_flows(
        &mut self,
        bridge: &str,
        text: &str,
        replace: bool,
        check_groups: bool,
    ) -> Result<usize, SwitchError> {
        let br = self
            .bridges
            .get(bridge)
            .ok_or_else(|| SwitchError::NoBridge(bridge.into()))?;
        let rules = parse_flows(text, &BridgePortNames(br))?;
        if let Some(g) = rules
            .iter()
            .filter(|_| check_groups)
            .find_map(|r| br.missing_group(&r.actions))
        {
            return Err(SwitchError::Flow(format!(
                "group {g} does not exist on bridge {bridge} (OFPBAC_BAD_OUT_GROUP)"
            )));
        }
        let now = self.now_ms();
        let br = self.bridges.get_mut(bridge).expect("checked above");
        let mut touched: std::collections::BTreeSet<u8> = rules.iter().map(|r| r.table).collect();
        if replace {
            touched.extend(br.tables.keys());
            br.tables.clear();
        }
        let n = rules.len();
        for r in rules {
            br.add_rule(r, now);
        }
        self.invalidate_tables(bridge, touched);
        Ok(n)
    }

    /// Delete the rules of a bridge that a match (`del-flows` syntax, may be
    /// empty) covers, in one table or all.
    pub fn del_flows(
        &mut self,
        bridge: &str,
        table: Option<u8>,
        filter: &Match,
    ) -> Result<usize, SwitchError> {
        let br = self
            .bridges
            .get_mut(bridge)
            .ok_or_else(|| SwitchError::NoBridge(bridge.into()))?;
        let before: BTreeMap<u8, usize> = br.tables.iter().map(|(t, c)| (*t, c.len())).collect();
        let gone = br.del_rules(table, filter);
        let n = gone.len();
        let touched: Vec<u8> = before
            .into_iter()
            .filter(|(t, len)| br.tables.get(t).map_or(0, |c| c.len()) != *len)
            .map(|(t, _)| t)
            .collect();
        self.invalidate_tables(bridge, touched);
        // As `ovs-ofctl del-flows` (a FLOW_MOD delete) would: the
        // controllers hear of the rules that asked.
        let now = self.now_ms();
        for e in gone.into_iter().filter(|e| e.send_flow_rem) {
            self.note_removed(bridge, e, crate::flow_mod::RemovalReason::Delete, now);
        }
        Ok(n)
    }

    /// Set (replace) the controller targets of `bridge` (`set-controller`;
    /// none: `del-controller`).
    /// As in OVS, a bridge that gets its first dialed (`tcp:`) controller or
    /// loses its last one starts over: see [`Switch::flush`].
    pub fn set_controllers(&mut self, bridge: &str, targets: &[String]) -> Result<(), SwitchError> {
        let parsed = targets
            .iter()
            .map(|t| t.parse())
            .collect::<Result<Vec<crate::openflow::Target>, _>>()?;
        let br = self
            .bridges
            .get_mut(bridge)
            .ok_or_else(|| SwitchError::NoBridge(bridge.into()))?;
        let had = br.has_dialed_controllers();
        br.controllers = parsed;
        br.controllers.dedup();
        if had != br.has_dialed_controllers() {
            self.flush(bridge);
        }
        self.bump();
        Ok(())
    }

    /// `set-fail-mode BRIDGE standalone|secure`. As in OVS, a change on a
    /// bridge without dialed controllers starts it over ([`Switch::flush`]).
    pub fn set_fail_mode(&mut self, bridge: &str, mode: &str) -> Result<(), SwitchError> {
        let m = crate::bridge::FailMode::from_name(mode).ok_or_else(|| SwitchError::FailMode(mode.into()))?;
        let br = self
            .bridges
            .get_mut(bridge)
            .ok_or_else(|| SwitchError::NoBridge(bridge.into()))?;
        let changed = br.fail_mode != m;
        br.fail_mode = m;
        if changed && !br.has_dialed_controllers() {
            self.flush(bridge);
        }
        self.bump();
        Ok(())
    }

    /// OVS's flush of a bridge's flow table (`connmgr_set_controllers`,
    /// `connmgr_set_fail_mode`, `connmgr_flushed`): every rule and group
    /// goes (controllers hear of the rules that asked), and a standalone
    /// bridge without dialed controllers gets `priority=0,actions=NORMAL`
    /// back; otherwise nothing passes until a controller says so.
    fn flush(&mut self, bridge: &str) {
        let now = self.now_ms();
        let Some(br) = self.bridges.get_mut(bridge) else {
            return;
        };
        let mut tables: std::collections::BTreeSet<u8> = br.tables.keys().copied().collect();
        let gone = br.del_rules(None, &Match::any());
        let groups: Vec<u32> = br.groups.iter().map(|g| g.id).collect();
        br.groups = Default::default();
        br.group_counters.clear();
        if !br.has_dialed_controllers() && br.fail_mode == crate::bridge::FailMode::Standalone {
            br.add_rule(normal_rule(), now);
            tables.insert(0);
        }
        tracing::info!(
            "bridge {bridge}: controllers or fail mode changed: {} rules and {} groups flushed, as OVS does",
            gone.len(),
            groups.len()
        );
        for g in groups {
            self.inv.invalidate(crate::xlate::group_tag(bridge, g));
        }
        self.invalidate_tables(bridge, tables);
        for e in gone.into_iter().filter(|e| e.send_flow_rem) {
            self.note_removed(bridge, e, crate::flow_mod::RemovalReason::Delete, now);
        }
    }

    /// Enter or leave fail-open on `bridge`; the cached flows that went
    /// through its table 0 go when that changes.
    pub fn set_fail_open(&mut self, bridge: &str, on: bool) {
        if let Some(br) = self.bridges.get_mut(bridge) {
            if br.fail_open != on {
                br.fail_open = on;
                tracing::info!(
                    "bridge {bridge}: {} fail-open",
                    if on { "entering" } else { "leaving" }
                );
                self.invalidate_tables(bridge, [0]);
            }
        }
    }

    /// Apply an OpenFlow flow modification to `bridge` (all or nothing);
    /// the cached flows of the tables it changed go.
    pub fn flow_mod(
        &mut self,
        bridge: &str,
        fm: &crate::flow_mod::FlowMod,
        from_controller: bool,
    ) -> Result<crate::flow_mod::Outcome, SwitchError> {
        let now = self.now_ms();
        let br = self
            .bridges
            .get_mut(bridge)
            .ok_or_else(|| SwitchError::NoBridge(bridge.into()))?;
        if !matches!(
            fm.command,
            crate::flow_mod::Command::Delete | crate::flow_mod::Command::DeleteStrict
        ) {
            if let Some(g) = br.missing_group(&fm.rule.actions) {
                return Err(crate::flow_mod::FlowModError::UnknownGroup(g).into());
            }
        }
        let out = br.flow_mod(fm, now, from_controller)?;
        self.invalidate_tables(bridge, out.tables.iter().copied());
        for e in out.removed.iter().filter(|e| e.send_flow_rem) {
            self.note_removed(bridge, e.clone(), crate::flow_mod::RemovalReason::Delete, now);
        }
        Ok(out)
    }

    /// Apply a group change to `bridge` (all or nothing). Flows that went
    /// through a changed group go; deleting a group deletes the rules that
    /// send to it (OpenFlow's rule), which are returned.
    pub fn group_mod(
        &mut self,
        bridge: &str,
        cmd: crate::group::GroupCommand,
        group: crate::group::Group,
    ) -> Result<Vec<RuleEntry>, SwitchError> {
        let now = self.now_ms();
        let br = self
            .bridges
            .get_mut(bridge)
            .ok_or_else(|| SwitchError::NoBridge(bridge.into()))?;
        let n_buckets = group.buckets.len();
        let changed = br.groups.apply(cmd, group)?;
        // Counters as OVS keeps them: a modify starts them over (its
        // buckets are new) but keeps the group's age.
        for id in &changed {
            match cmd {
                crate::group::GroupCommand::Delete => {
                    br.group_counters.remove(id);
                }
                _ => {
                    let added = br.group_counters.get(id).map_or(now, |c| c.added_ms);
                    br.group_counters
                        .insert(*id, crate::group::GroupCounters::new(added, n_buckets));
                }
            }
        }
        let gone = if cmd == crate::group::GroupCommand::Delete {
            br.del_rules_to_groups(&changed)
        } else {
            Vec::new()
        };
        let tables: std::collections::BTreeSet<u8> = gone.iter().map(|e| e.rule.table).collect();
        for g in &changed {
            self.inv.invalidate(crate::xlate::group_tag(bridge, *g));
        }
        self.invalidate_tables(bridge, tables);
        for e in gone.iter().filter(|e| e.send_flow_rem) {
            self.note_removed(
                bridge,
                e.clone(),
                crate::flow_mod::RemovalReason::GroupDelete,
                now,
            );
        }
        Ok(gone)
    }

    /// Queue a FLOW_REMOVED; the oldest go past [`MAX_REMOVED`] (nobody is
    /// reading them).
    fn note_removed(
        &mut self,
        bridge: &str,
        entry: RuleEntry,
        reason: crate::flow_mod::RemovalReason,
        at_ms: u64,
    ) {
        if self.removed.len() >= MAX_REMOVED {
            self.removed.pop_front();
        }
        self.removed.push_back(crate::flow_mod::Removed {
            bridge: bridge.into(),
            entry,
            reason,
            at_ms,
        });
    }

    /// The rules gone since the last call that asked for FLOW_REMOVED.
    pub fn take_removed(&mut self) -> Vec<crate::flow_mod::Removed> {
        self.removed.drain(..).collect()
    }

    /// The rules of these tables of `bridge` changed: the cached flows that
    /// consulted them go ([`crate::xlate::table_tag`]), the others stay.
    fn invalidate_tables(&self, bridge: &str, tables: impl IntoIterator<Item = u8>) {
        for t in tables {
            self.inv.invalidate(crate::xlate::table_tag(bridge, t));
        }
    }

    /// Add a mapping given as text (`{class=0x0102,type=0x80,len=4}->tun_metadata0`).
    pub fn add_tlv_map_text(&mut self, text: &str) -> Result<(), SwitchError> {
        let m = crate::ofp::parse_tlv_map(text).map_err(|e| SwitchError::Flow(e.to_string()))?;
        self.add_tlv_map(m.class, m.typ, m.len, m.slot)
    }

    /// Map Geneve option (class, type, len) to `tun_metadata{slot}`.
    pub fn add_tlv_map(&mut self, class: u16, typ: u8, len: u8, slot: u8) -> Result<(), SwitchError> {
        self.optmap.insert(class, typ, len, slot)?;
        self.bump();
        Ok(())
    }

    /// Serve tunnel endpoint address `ip` (ARP, ping, neighbour resolution)
    /// on underlay port `port`, with MAC `mac`.
    pub fn add_vtep(&mut self, port: &str, ip: Ipv4Addr, mac: [u8; 6]) -> Result<(), SwitchError> {
        let dp = self
            .find_port(port)
            .and_then(|(_, p)| p.dp_port)
            .ok_or_else(|| SwitchError::BadPort {
                port: port.into(),
                reason: "a VTEP needs a device port".into(),
            })?;
        self.vteps.insert(dp, Vtep::new(ip, mac));
        self.seed_fixed_neighbors(dp);
        self.bump();
        Ok(())
    }

    /// Set how to reach a remote tunnel endpoint.
    pub fn set_route(&mut self, remote: Ipv4Addr, route: TunnelRoute) {
        self.routes.insert(remote, route);
        self.bump();
    }

    /// The Geneve port for a tunnelled packet, if any: remote_ip is the packet's
    /// tunnel source, local_ip (when set) its destination, a fixed key its VNI.
    pub fn tunnel_port_for(
        &self,
        tun_src: Ipv4Addr,
        tun_dst: Ipv4Addr,
        tun_id: u64,
    ) -> Option<(&Bridge, &BridgePort)> {
        self.bridges.values().find_map(|b| {
            b.ports
                .values()
                .find(|p| match &p.ty {
                    PortType::Geneve(GeneveOptions {
                        remote_ip,
                        local_ip,
                        key,
                    }) => {
                        *remote_ip == tun_src
                            && local_ip.is_none_or(|l| l == tun_dst)
                            && match key {
                                crate::bridge::TunnelKey::Flow => true,
                                crate::bridge::TunnelKey::Fixed(k) => *k == tun_id,
                            }
                    }
                    _ => false,
                })
                .map(|p| (b, p))
        })
    }

    /// Remember what a cached flow's translation went through; returns the
    /// flow's tag.
    pub fn remember(&mut self, origin: FlowOrigin) -> u64 {
        if self.xcache.len() >= MAX_XCACHE {
            // Bounded: forget old attributions (their flows' later packets go
            // uncredited until re-translated).
            self.xcache.clear();
            self.credited.clear();
        }
        let tag = self.next_tag;
        self.next_tag += 1;
        self.xcache.insert(tag, origin);
        tag
    }

    /// The tag the next remembered flow gets: read it before taking datapath
    /// snapshots, then [`Switch::forget_flows`] keeps what was remembered since.
    pub fn next_tag(&self) -> u64 {
        self.next_tag
    }

    /// Forget the attributions of cached flows no datapath holds any more:
    /// `live` is every tag in snapshots taken after `since` was read from
    /// [`Switch::next_tag`] (flows remembered later are not in them and stay).
    /// Without this the table only shrank by clearing it when full, which
    /// also dropped the attributions of live flows.
    pub fn forget_flows(&mut self, live: &std::collections::HashSet<u64>, since: u64) {
        self.xcache.retain(|t, _| *t >= since || live.contains(t));
        self.credited.retain(|(_, t), _| *t >= since || live.contains(t));
    }

    /// How many cached flows' attributions are remembered.
    pub fn remembered(&self) -> usize {
        self.xcache.len()
    }

    /// Credit packets and bytes to the rules in `rules` directly (a packet
    /// that was translated but not cached).
    pub fn credit_rules(&mut self, rules: &[RuleRef], packets: u64, bytes: u64) {
        let now = self.now_ms();
        for r in rules {
            let entry = self
                .bridges
                .get_mut(&r.bridge)
                .and_then(|b| b.tables.get_mut(&r.table))
                .and_then(|c| c.get_mut(&r.matches, r.priority));
            if let Some(e) = entry {
                e.n_packets += packets;
                e.n_bytes += bytes;
                if packets > 0 {
                    // Used: an idle_timeout counts from here.
                    e.used_ms = e.used_ms.max(now);
                }
            }
        }
    }

    /// Count packets that went through groups (a cached flow's, or one
    /// translated packet's).
    pub fn credit_groups(&mut self, groups: &[crate::xlate::GroupRef], packets: u64, bytes: u64) {
        for g in groups {
            if let Some(c) = self
                .bridges
                .get_mut(&g.bridge)
                .and_then(|b| b.group_counters.get_mut(&g.group))
            {
                c.credit(&g.buckets, packets, bytes);
            }
        }
    }

    /// Credit a PMD's cached-flow counters `(tag, packets, bytes)` to the rules
    /// the flows came from, and keep the MACs they learned young (only what
    /// grew since the last call counts).
    pub fn credit(&mut self, pmd: usize, counters: &[(u64, u64, u64)]) {
        let now = self.now_ms();
        for &(tag, packets, bytes) in counters {
            let Some(origin) = self.xcache.get(&tag).cloned() else {
                continue;
            };
            let last = self.credited.entry((pmd, tag)).or_insert((0, 0));
            let (dp, db) = (packets.saturating_sub(last.0), bytes.saturating_sub(last.1));
            *last = (packets, bytes);
            if dp > 0 {
                self.credit_rules(&origin.rules, dp, db);
                self.credit_groups(&origin.groups, dp, db);
                for (b, vlan, mac, port) in &origin.macs {
                    if let Some(br) = self.bridges.get_mut(b) {
                        br.macs.refresh(*vlan, *mac, *port, now);
                    }
                }
            }
        }
    }

    /// Remove rules whose hard or idle timeout passed; returns how many.
    pub fn expire(&mut self) -> usize {
        let now = self.now_ms();
        let mut n = 0;
        let mut notes = Vec::new();
        for br in self.bridges.values_mut() {
            for (t, cls) in br.tables.iter_mut() {
                let hard = |e: &RuleEntry| {
                    e.rule.hard_timeout != 0 && now >= e.added_ms + e.rule.hard_timeout as u64 * 1000
                };
                let idle = |e: &RuleEntry| {
                    e.rule.idle_timeout != 0 && now >= e.used_ms + e.rule.idle_timeout as u64 * 1000
                };
                let gone = cls.retain(|_, _, e| !(hard(e) || idle(e)));
                if !gone.is_empty() {
                    self.inv.invalidate(crate::xlate::table_tag(&br.name, *t));
                }
                n += gone.len();
                for e in gone.into_iter().filter(|e| e.send_flow_rem) {
                    let why = if hard(&e) {
                        crate::flow_mod::RemovalReason::Hard
                    } else {
                        crate::flow_mod::RemovalReason::Idle
                    };
                    notes.push((br.name.clone(), e, why));
                }
            }
            br.tables.retain(|_, c| !c.is_empty());
            br.macs.expire(now);
            for (v, m) in br.macs.take_forgotten() {
                self.inv.invalidate(crate::xlate::mac_tag(&br.name, v, m));
            }
        }
        for (b, e, why) in notes {
            self.note_removed(&b, e, why, now);
        }
        n
    }
}

mod tnl_neigh;
mod tnl_route;
pub use tnl_route::{parse_prefix, StaticRoute};

/// `priority=0,actions=NORMAL`: a new bridge's rule, as `ovs-vsctl add-br`
/// gives, and a standalone bridge's after a flush.
fn normal_rule() -> Rule {
    Rule {
        priority: 0,
        actions: vec![crate::ofp::OfAction::Normal],
        ..Rule::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributions_of_removed_flows_are_forgotten_and_live_ones_kept() {
        let mut sw = Switch::new();
        let origin = || FlowOrigin {
            rules: Vec::new(),
            groups: Vec::new(),
            macs: Vec::new(),
        };
        let (t1, t2) = (sw.remember(origin()), sw.remember(origin()));
        let since = sw.next_tag();
        // Installed while the snapshots were taken: in none of them.
        let t3 = sw.remember(origin());
        sw.credit(0, &[(t1, 5, 500), (t2, 1, 100)]);
        sw.forget_flows(&[t1].into_iter().collect(), since);
        assert_eq!(sw.remembered(), 2, "t2 is gone from every datapath");
        assert!(sw.xcache.contains_key(&t1) && sw.xcache.contains_key(&t3));
        assert!(sw.credited.contains_key(&(0, t1)) && !sw.credited.contains_key(&(0, t2)));
    }

    #[test]
    fn controllers_and_fail_mode_flush_the_tables_as_ovs_does() {
        let mut sw = Switch::new();
        sw.add_bridge("br0").unwrap();
        let rules = |sw: &Switch| -> Vec<String> {
            sw.bridge("br0")
                .unwrap()
                .rules()
                .iter()
                .map(|e| e.rule.to_string())
                .collect()
        };
        let normal = vec!["table=0,priority=0,actions=NORMAL".to_string()];
        assert_eq!(rules(&sw), normal);
        let rule = crate::ofp::parse_flow("priority=5,ip,actions=drop", &()).unwrap();
        let mut fm = crate::flow_mod::FlowMod::new(crate::flow_mod::Command::Add, rule);
        fm.send_flow_rem = true;
        sw.flow_mod("br0", &fm, true).unwrap();
        // A listener is no controller of OVS's kind: nothing changes.
        sw.set_controllers("br0", &["ptcp:6653".into()]).unwrap();
        assert_eq!(rules(&sw).len(), 2);
        // Secure without dialed controllers: flushed, nothing passes.
        sw.set_fail_mode("br0", "secure").unwrap();
        assert!(rules(&sw).is_empty());
        assert_eq!(sw.take_removed().len(), 1, "the rule that asked is reported");
        sw.set_fail_mode("br0", "secure").unwrap();
        // Back to standalone: flushed, NORMAL again.
        sw.replace_flows("br0", "priority=5,actions=drop").unwrap();
        sw.set_fail_mode("br0", "standalone").unwrap();
        assert_eq!(rules(&sw), normal);
        // The first dialed controller flushes (no NORMAL: it is in charge),
        // so do groups; more controllers or a fail mode change then do not.
        sw.group_mod(
            "br0",
            crate::group::GroupCommand::Add,
            crate::group::Group {
                id: 1,
                ty: crate::group::GroupType::All,
                buckets: Vec::new(),
            },
        )
        .unwrap();
        sw.set_controllers("br0", &["tcp:127.0.0.1:6653".into()]).unwrap();
        assert!(rules(&sw).is_empty() && sw.bridge("br0").unwrap().groups.is_empty());
        sw.replace_flows("br0", "priority=5,actions=drop").unwrap();
        sw.set_controllers("br0", &["tcp:127.0.0.1:6653".into(), "ptcp:6653".into()])
            .unwrap();
        sw.set_fail_mode("br0", "secure").unwrap();
        assert_eq!(rules(&sw).len(), 1);
        // The last one goes: flushed; secure, so no NORMAL.
        sw.set_controllers("br0", &[]).unwrap();
        assert!(rules(&sw).is_empty());
    }

    #[test]
    fn bridges_ports_and_numbers() {
        let mut sw = Switch::new();
        let e0 = sw.seen().epoch;
        sw.add_bridge("br-int").unwrap();
        assert!(sw.seen().epoch > e0);
        let vm1 = sw
            .add_port(
                "br-int",
                "vm1",
                PortType::System {
                    kind: "memory".into(),
                },
                Some(1),
            )
            .unwrap();
        assert_eq!(vm1, 1);
        assert_eq!(
            sw.add_port("br-int", "vm1", PortType::Internal, None),
            Err(SwitchError::PortExists("vm1".into()))
        );
        assert!(matches!(
            sw.add_port("br-int", "x", PortType::Internal, Some(5000)),
            Err(SwitchError::BadPort { .. })
        ));
        assert_eq!(
            sw.add_bridge("br-int"),
            Err(SwitchError::BridgeExists("br-int".into()))
        );
        let br = sw.bridge("br-int").unwrap();
        assert_eq!(br.ports[&OFPP_LOCAL].name, "br-int");
        assert_eq!(br.n_rules(), 1, "the default NORMAL rule");
        let dp = br.ports[&1].dp_port.unwrap();
        assert_eq!(sw.dp_ports[&dp], ("br-int".to_string(), 1));
        sw.del_port("vm1").unwrap();
        assert!(!sw.dp_ports.contains_key(&dp));
        assert_eq!(sw.del_port("vm1"), Err(SwitchError::NoPort("vm1".into())));
    }

    #[test]
    fn flows_by_port_name_all_or_nothing() {
        let mut sw = Switch::new();
        sw.add_bridge("br").unwrap();
        sw.add_port(
            "br",
            "vm1",
            PortType::System {
                kind: "memory".into(),
            },
            None,
        )
        .unwrap();
        assert_eq!(
            sw.add_flows(
                "br",
                "table=1,in_port=vm1,actions=drop\ntable=2,actions=output:vm1\n"
            )
            .unwrap(),
            2
        );
        let e = sw
            .add_flows("br", "table=3,actions=drop\ntable=4,in_port=nosuch,actions=drop")
            .unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert_eq!(
            sw.bridge("br").unwrap().n_rules(),
            3,
            "nothing of the bad batch was applied"
        );
        assert_eq!(sw.del_flows("br", Some(1), &Match::any()).unwrap(), 1);
        assert_eq!(sw.replace_flows("br", "actions=NORMAL").unwrap(), 1);
        assert_eq!(sw.bridge("br").unwrap().n_rules(), 1);
    }

    #[test]
    fn vtep_from_port_options_gives_tunnel_routes() {
        let mut sw = Switch::new();
        sw.add_bridge("br-ex").unwrap();
        let sys = || PortType::System {
            kind: "memory".into(),
        };
        sw.add_port("br-ex", "up0", sys(), None).unwrap();
        let opts = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
            kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        // A bad value changes nothing.
        let e = sw
            .set_port_options("up0", opts(&[("vtep_ip", "198.18.0.300")]))
            .unwrap_err();
        assert!(e.to_string().contains("vtep_ip"), "{e}");
        let e = sw
            .set_port_options("up0", opts(&[("vtep_ip", "198.18.0.11"), ("vtep_mac", "02:00")]))
            .unwrap_err();
        assert!(e.to_string().contains("vtep_mac"), "{e}");
        assert!(sw.vteps.is_empty());
        assert_eq!(sw.route_to("198.18.0.12".parse().unwrap(), None), None);

        let mac = [2, 0, 0, 0, 0, 0x11];
        sw.set_port_options(
            "up0",
            opts(&[("vtep_ip", "198.18.0.11"), ("vtep_mac", "02:00:00:00:00:11")]),
        )
        .unwrap();
        let dp = sw.find_port("up0").unwrap().1.dp_port.unwrap();
        let r = sw.route_to("198.18.0.12".parse().unwrap(), None).unwrap();
        assert_eq!((r.underlay_port, r.local_mac, r.remote_mac), (dp, mac, None));
        assert_eq!(r.local_ip, "198.18.0.11".parse::<Ipv4Addr>().unwrap());
        // A tunnel naming another local address has no route.
        assert_eq!(
            sw.route_to(
                "198.18.0.12".parse().unwrap(),
                Some("198.18.0.99".parse().unwrap())
            ),
            None
        );
        // A Geneve port through this VTEP gets its next hop asked for, once
        // per retry interval.
        sw.add_bridge("br-tun").unwrap();
        let mut g = BTreeMap::new();
        g.insert("remote_ip".to_string(), "198.18.0.12".to_string());
        sw.add_port(
            "br-tun",
            "gnv",
            crate::config::port_type("geneve", &g).unwrap(),
            None,
        )
        .unwrap();
        // Not while its underlay has no device (a restart opening it), and
        // that costs no retry interval.
        assert!(sw.resolve_tunnels(|_| false).is_empty());
        let asks = sw.resolve_tunnels(|_| true);
        assert_eq!(asks.len(), 1);
        assert_eq!(asks[0].0, dp);
        assert_eq!(&asks[0].1[..6], &[0xff; 6], "an ARP broadcast");
        assert!(
            sw.resolve_tunnels(|_| true).is_empty(),
            "not again before the retry interval"
        );
        // An explicit route wins.
        let fixed = TunnelRoute {
            remote_mac: Some([2, 0, 0, 0, 0, 0x12]),
            ..r
        };
        sw.set_route("198.18.0.12".parse().unwrap(), fixed);
        assert_eq!(sw.route_to("198.18.0.12".parse().unwrap(), None), Some(fixed));
        // Dropping the option (or the port) removes the VTEP.
        sw.set_port_options("up0", BTreeMap::new()).unwrap();
        assert!(sw.vteps.is_empty());
        sw.set_port_options(
            "up0",
            opts(&[("vtep_ip", "198.18.0.11"), ("vtep_mac", "02:00:00:00:00:11")]),
        )
        .unwrap();
        sw.del_port("up0").unwrap();
        assert!(sw.vteps.is_empty());
    }
}
