//! The topology model and its validation.

use serde::Deserialize;
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;
use thiserror::Error;

/// The lab address block (RFC 2544 benchmarking range, 198.18.0.0/15): every lab
/// address must be inside it, so lab traffic can never reach a real network.
pub const LAB_BLOCK: Ipv4Net = Ipv4Net {
    addr: Ipv4Addr::new(198, 18, 0, 0),
    prefix: 15,
};

/// Longest name part a topology may use: interface names are limited to 15
/// bytes, and the runner prepends a per-run prefix of up to 6 and one letter.
pub const MAX_NAME: usize = 8;

/// An IPv4 prefix, written `a.b.c.d/len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Net {
    /// Network address.
    pub addr: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl Ipv4Net {
    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix as u32)
        }
    }

    /// True when `ip` is inside the prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) & self.mask()) == (u32::from(self.addr) & self.mask())
    }

    /// True when the whole of `other` is inside `self`.
    pub fn covers(&self, other: &Ipv4Net) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }
}

impl std::str::FromStr for Ipv4Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a.b.c.d/len"))?;
        let addr = a.parse().map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let prefix: u8 = p.parse().map_err(|_| format!("{p:?} is not a prefix length"))?;
        if prefix > 32 {
            return Err(format!("prefix length {prefix} is over 32"));
        }
        Ok(Ipv4Net { addr, prefix })
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The link between nodes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Underlay {
    /// Subnet of the node underlay addresses.
    pub subnet: Ipv4Net,
    /// MTU of the underlay veth (room for the encapsulation).
    #[serde(default = "default_mtu")]
    pub mtu: u32,
}

fn default_mtu() -> u32 {
    1500
}

fn default_overlay() -> Overlay {
    Overlay::Geneve
}

/// Bytes an overlay adds to a VM's frame on the underlay: outer Ethernet is
/// not counted by the MTU, outer IPv4 (20) + UDP (8) + Geneve or VXLAN header
/// (8) + the inner Ethernet header (14) are.
pub const OVERLAY_OVERHEAD: u32 = 50;

/// A hypervisor node (a namespace running one switch).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Name (namespace suffix).
    pub name: String,
    /// The kernel's address on the underlay (management traffic; the Linux
    /// bridge's tunnel endpoint).
    pub underlay_ip: Ipv4Addr,
    /// rvs's tunnel endpoint address on the same underlay link, served by the
    /// rvs VTEP (the XDP program steers only its frames to rvs).
    #[serde(default)]
    pub vtep_ip: Option<Ipv4Addr>,
}

impl Node {
    /// The address tunnels of this node start and end at.
    pub fn tunnel_ip(&self) -> Ipv4Addr {
        self.vtep_ip.unwrap_or(self.underlay_ip)
    }
}

/// Which switch a lab's nodes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwitchKind {
    /// An rvs daemon per node: br-int, br-tun (Geneve), br-ex.
    Rvs,
    /// A Linux bridge per tenant network with a kernel overlay device.
    LinuxBridge,
    /// Open vSwitch (the distribution's), userspace datapath: br-int, br-tun,
    /// br-ex as neutron's OVS agent builds them.
    Ovs,
}

/// How an OVS lab's `ovs-vswitchd` reads its device ports (the VMs' veths
/// and the underlay). This kernel has no openvswitch module, so OVS runs its
/// userspace datapath (`datapath_type=netdev`) with one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OvsPortType {
    /// AF_XDP sockets polled by ovs-vswitchd's main thread: no CPU spent
    /// while idle, which a small machine needs (the default).
    #[default]
    AfxdpNonpmd,
    /// AF_XDP sockets polled by a busy-polling PMD thread, one pinned per
    /// node to its own CPU (`pmd-cpu-mask`): faster, but each spins a CPU.
    Afxdp,
    /// Linux netdevs (AF_PACKET sockets), served by the main thread.
    System,
}

impl OvsPortType {
    /// As `ovs-vsctl set interface ... type=` takes it.
    pub fn name(self) -> &'static str {
        match self {
            OvsPortType::AfxdpNonpmd => "afxdp-nonpmd",
            OvsPortType::Afxdp => "afxdp",
            OvsPortType::System => "system",
        }
    }
}

/// Which datapath an rvs lab's daemons run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatapathType {
    /// AF_XDP sockets and userspace PMD threads.
    Afxdp,
    /// rvs's TC programs run the flows in the kernel (`rvs daemon`'s default).
    #[default]
    Ebpf,
}

impl DatapathType {
    /// As `rvs daemon --datapath` takes it.
    pub fn name(self) -> &'static str {
        match self {
            DatapathType::Afxdp => "afxdp",
            DatapathType::Ebpf => "ebpf",
        }
    }
}

/// The overlay of a Linux-bridge lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overlay {
    /// Geneve (rvs always; the kernel when it has the module).
    Geneve,
    /// Kernel VXLAN.
    Vxlan,
    /// Geneve if the kernel has it, else VXLAN.
    Auto,
}

/// A tenant network (one VNI).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Name.
    pub name: String,
    /// Geneve VNI (24 bits).
    pub vni: u32,
    /// The tenant subnet.
    pub subnet: Ipv4Net,
    /// The router's address on it (the VMs' default gateway), when the
    /// lab's `[router]` joins it.
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
}

/// A router joining tenant networks: on rvs and OVS nodes a distributed one
/// in br-int's rules (every node routes its own VMs' traffic, as OVN and
/// neutron's DVR do); on Linux-bridge nodes a router namespace with kernel
/// forwarding on one node, as neutron's L3 agent builds one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Router {
    /// Name (the Linux router namespace's suffix).
    pub name: String,
    /// The networks it joins (each needs a `gateway`).
    pub networks: Vec<String>,
    /// Linux bridge: the node whose namespace holds the router (the
    /// "network node"); distributed routers have none.
    #[serde(default)]
    pub node: Option<String>,
}

/// Which OpenFlow controller programs an rvs lab's bridges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControllerKind {
    /// `topologies/controllers/neutron_agent.py` under os-ken (from the venv
    /// `scripts/install-deps.sh` makes): br-int NORMAL, br-tun neutron's
    /// tunnel tables, as neutron's OVS agent with its native driver.
    OsKen,
}

/// A controller on the underlay: every node's br-int and br-tun dial it
/// (fail mode secure) and take their rules from it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Controller {
    /// Which one.
    pub kind: ControllerKind,
    /// Its address on the underlay (the underlay bridge's, in a namespace of
    /// its own).
    pub ip: Ipv4Addr,
    /// Its OpenFlow port.
    #[serde(default = "default_of_port")]
    pub port: u16,
}

fn default_of_port() -> u16 {
    6653
}

/// A "VM": a namespace attached to a node's integration bridge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vm {
    /// Name.
    pub name: String,
    /// Node it runs on.
    pub node: String,
    /// Tenant network.
    pub network: String,
    /// Its address in the network.
    pub ip: Ipv4Addr,
}

/// A whole lab.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Name.
    pub name: String,
    /// One line for humans.
    #[serde(default)]
    pub description: String,
    /// The switch each node runs.
    pub switch: SwitchKind,
    /// The overlay (rvs: Geneve only).
    #[serde(default = "default_overlay")]
    pub overlay: Overlay,
    /// MTU inside the VMs.
    #[serde(default = "default_mtu")]
    pub vm_mtu: u32,
    /// rvs: which datapath the daemons run.
    #[serde(default)]
    pub datapath: Option<DatapathType>,
    /// OVS: how ovs-vswitchd reads its device ports.
    #[serde(default)]
    pub ovs_port_type: Option<OvsPortType>,
    /// Leave the VMs' veth offloads (TSO/GSO, tx checksum) as the kernel
    /// sets them; `false` turns tx offload off in the VMs (AF_XDP cannot
    /// carry partial checksums, and the like-for-like comparison needs it).
    #[serde(default)]
    pub vm_offloads: bool,
    /// Put every VM port behind a security group (neutron's OVS firewall
    /// rules on br-int, connection tracking): all egress, ingress ICMP, SSH
    /// and iperf3's port 5201; the rest dropped.
    #[serde(default)]
    pub security_groups: bool,
    /// A router between tenant networks.
    #[serde(default)]
    pub router: Option<Router>,
    /// An OpenFlow controller that programs the bridges (rvs labs).
    #[serde(default)]
    pub controller: Option<Controller>,
    /// Underlay.
    pub underlay: Underlay,
    /// Nodes.
    #[serde(rename = "node")]
    pub nodes: Vec<Node>,
    /// Tenant networks.
    #[serde(rename = "network", default)]
    pub networks: Vec<Network>,
    /// VMs.
    #[serde(rename = "vm", default)]
    pub vms: Vec<Vm>,
}

/// A topology file that cannot be used, and why.
#[derive(Error, Debug)]
pub enum TopologyError {
    /// Unreadable file.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Not valid TOML for the model.
    #[error("{path}: {message}")]
    Parse {
        /// File.
        path: String,
        /// toml's message (with line and column).
        message: String,
    },
    /// Valid TOML that describes an unusable lab.
    #[error("{0}")]
    Invalid(String),
}

impl Topology {
    /// The datapath of an rvs lab (eBPF, as `rvs daemon`'s default, unless it
    /// says otherwise).
    pub fn datapath(&self) -> DatapathType {
        self.datapath.unwrap_or_default()
    }

    /// The port type of an OVS lab (`afxdp-nonpmd` unless it says otherwise).
    pub fn ovs_port_type(&self) -> OvsPortType {
        self.ovs_port_type.unwrap_or_default()
    }

    /// Read, parse and validate a topology file.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Io {
            path: p.clone(),
            source,
        })?;
        Topology::parse(&text).map_err(|e| match e {
            TopologyError::Parse { message, .. } => TopologyError::Parse { path: p, message },
            TopologyError::Invalid(m) => TopologyError::Invalid(format!("{p}: {m}")),
            other => other,
        })
    }

    /// Parse and validate topology text.
    pub fn parse(text: &str) -> Result<Topology, TopologyError> {
        let t: Topology = toml::from_str(text).map_err(|e| TopologyError::Parse {
            path: "<text>".into(),
            message: e.to_string(),
        })?;
        t.validate().map_err(TopologyError::Invalid)?;
        Ok(t)
    }

    /// Check names, references and that every address is in the lab block.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = HashSet::new();
        let all_names = self
            .nodes
            .iter()
            .map(|n| &n.name)
            .chain(self.networks.iter().map(|n| &n.name))
            .chain(self.vms.iter().map(|v| &v.name))
            .chain(self.router.iter().map(|r| &r.name));
        for n in all_names {
            if n.is_empty() || n.len() > MAX_NAME || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(format!("name {n:?}: use 1..={MAX_NAME} letters, digits or '-'"));
            }
            if !names.insert(n.as_str()) {
                return Err(format!("name {n:?} is used twice"));
            }
            if n == crate::lab::UNDERLAY {
                return Err(format!(
                    "name {n:?} is the underlay's own namespace: pick another"
                ));
            }
        }
        if !LAB_BLOCK.covers(&self.underlay.subnet) {
            return Err(format!(
                "underlay subnet {} is outside the lab block {LAB_BLOCK}",
                self.underlay.subnet
            ));
        }
        if !(1280..=9000).contains(&self.underlay.mtu) {
            return Err(format!(
                "underlay mtu {} is not in 1280..=9000",
                self.underlay.mtu
            ));
        }
        if self.vm_mtu + OVERLAY_OVERHEAD > self.underlay.mtu {
            return Err(format!(
                "vm_mtu {} + {OVERLAY_OVERHEAD} bytes of overlay do not fit the underlay mtu {}: lower vm_mtu or raise the underlay's",
                self.vm_mtu, self.underlay.mtu
            ));
        }
        if self.switch != SwitchKind::Rvs && self.datapath.is_some() {
            return Err("datapath = ... is for rvs labs".into());
        }
        if self.switch == SwitchKind::Rvs && self.overlay != Overlay::Geneve {
            return Err("an rvs lab tunnels with Geneve: overlay = \"geneve\"".into());
        }
        if self.switch != SwitchKind::Ovs && self.ovs_port_type.is_some() {
            return Err("ovs_port_type = ... is for OVS labs".into());
        }
        if self.switch == SwitchKind::Ovs {
            if self.overlay != Overlay::Geneve {
                return Err("an OVS lab tunnels with Geneve: overlay = \"geneve\"".into());
            }
            // OVS 3.1's userspace datapath refuses to tunnel TSO or
            // partial-checksum packets ("Tunneling packets with HW offload
            // flags is not supported"): TCP across nodes would not pass.
            if self.vm_offloads {
                return Err(
                    "vm_offloads = true: OVS's userspace datapath cannot tunnel TSO/partial-checksum packets; use vm_offloads = false"
                        .into(),
                );
            }
        }
        if self.nodes.is_empty() {
            return Err("a topology needs at least one [[node]]".into());
        }
        if let Some(c) = &self.controller {
            if self.switch != SwitchKind::Rvs {
                return Err("[controller] is for rvs labs".into());
            }
            if self.router.is_some() || self.security_groups {
                return Err(
                    "[controller]: its agent programs plain L2 networks (no router, no security groups)"
                        .into(),
                );
            }
            if !self.underlay.subnet.contains(c.ip) {
                return Err(format!(
                    "controller: {} is outside the underlay {}",
                    c.ip, self.underlay.subnet
                ));
            }
        }
        let mut ips: HashSet<Ipv4Addr> = self.controller.iter().map(|c| c.ip).collect();
        for n in &self.nodes {
            if !self.underlay.subnet.contains(n.underlay_ip) {
                return Err(format!(
                    "node {}: {} is outside the underlay {}",
                    n.name, n.underlay_ip, self.underlay.subnet
                ));
            }
            if !ips.insert(n.underlay_ip) {
                return Err(format!(
                    "node {}: address {} is used twice",
                    n.name, n.underlay_ip
                ));
            }
            match n.vtep_ip {
                Some(_) if self.switch == SwitchKind::Ovs => {
                    return Err(format!(
                        "node {}: an OVS node's tunnel endpoint is its underlay_ip, on br-ex (as OVS deployments put it): no vtep_ip",
                        n.name
                    ))
                }
                None if self.switch == SwitchKind::Rvs => {
                    return Err(format!(
                        "node {}: an rvs node needs vtep_ip (its tunnel endpoint, beside the kernel's underlay_ip)",
                        n.name
                    ))
                }
                None => {}
                Some(v) if !self.underlay.subnet.contains(v) => {
                    return Err(format!(
                        "node {}: vtep_ip {v} is outside the underlay {}",
                        n.name, self.underlay.subnet
                    ))
                }
                Some(v) if !ips.insert(v) => {
                    return Err(format!("node {}: address {v} is used twice", n.name))
                }
                Some(_) => {}
            }
        }
        let mut vnis = HashSet::new();
        for net in &self.networks {
            if !LAB_BLOCK.covers(&net.subnet) {
                return Err(format!(
                    "network {}: {} is outside the lab block {LAB_BLOCK}",
                    net.name, net.subnet
                ));
            }
            if net.vni == 0 || net.vni >= 1 << 24 {
                return Err(format!("network {}: VNI {} is not in 1..2^24", net.name, net.vni));
            }
            if !vnis.insert(net.vni) {
                return Err(format!("network {}: VNI {} is used twice", net.name, net.vni));
            }
        }
        for vm in &self.vms {
            if !self.nodes.iter().any(|n| n.name == vm.node) {
                return Err(format!("vm {}: no node named {:?}", vm.name, vm.node));
            }
            let net = self
                .networks
                .iter()
                .find(|n| n.name == vm.network)
                .ok_or_else(|| format!("vm {}: no network named {:?}", vm.name, vm.network))?;
            if !net.subnet.contains(vm.ip) {
                return Err(format!(
                    "vm {}: {} is outside {} ({})",
                    vm.name, vm.ip, net.name, net.subnet
                ));
            }
            if !ips.insert(vm.ip) {
                return Err(format!("vm {}: address {} is used twice", vm.name, vm.ip));
            }
        }
        self.validate_router(&mut ips)
    }

    fn validate_router(&self, ips: &mut HashSet<Ipv4Addr>) -> Result<(), String> {
        if let Some(r) = &self.router {
            self.validate_router_joins(r)?;
        }
        for net in &self.networks {
            let joined = self
                .router
                .as_ref()
                .is_some_and(|r| r.networks.contains(&net.name));
            match net.gateway {
                None if joined => {
                    return Err(format!(
                        "network {}: the router joins it, so it needs gateway = \"a.b.c.d\" (the router's address on it)",
                        net.name
                    ))
                }
                Some(_) if !joined => {
                    return Err(format!(
                        "network {}: gateway without a [router] that joins it",
                        net.name
                    ))
                }
                Some(g) if !net.subnet.contains(g) => {
                    return Err(format!(
                        "network {}: gateway {g} is outside {}",
                        net.name, net.subnet
                    ))
                }
                Some(g) if !ips.insert(g) => {
                    return Err(format!("network {}: gateway {g} is used twice", net.name))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn validate_router_joins(&self, r: &Router) -> Result<(), String> {
        if r.networks.len() < 2 {
            return Err(format!("router {}: join at least two networks", r.name));
        }
        for (i, n) in r.networks.iter().enumerate() {
            if self.network(n).is_none() {
                return Err(format!("router {}: no network named {n:?}", r.name));
            }
            if r.networks[..i].contains(n) {
                return Err(format!("router {}: network {n} is joined twice", r.name));
            }
        }
        match (&r.node, self.switch) {
            (None, SwitchKind::LinuxBridge) => Err(format!(
                "router {}: a Linux router lives in a namespace on one node: node = \"...\"",
                r.name
            )),
            (Some(n), SwitchKind::LinuxBridge) if self.node(n).is_none() => {
                Err(format!("router {}: no node named {n:?}", r.name))
            }
            (Some(_), SwitchKind::Rvs | SwitchKind::Ovs) => Err(format!(
                "router {}: rvs and OVS labs route on every node (a distributed router in br-int's rules): no node",
                r.name
            )),
            _ => Ok(()),
        }
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The network called `name`.
    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name == name)
    }

    /// The VM called `name`.
    pub fn vm(&self, name: &str) -> Option<&Vm> {
        self.vms.iter().find(|v| v.name == name)
    }

    /// Two VMs of one network on different nodes (traffic crosses the tunnel).
    pub fn cross_node_pair(&self) -> Option<(&Vm, &Vm)> {
        self.pair(|a, b| a.network == b.network && a.node != b.node)
    }

    /// Every pair (each once) of VMs of one network on different nodes.
    pub fn cross_node_pairs(&self) -> Vec<(&Vm, &Vm)> {
        let mut v = Vec::new();
        for (i, a) in self.vms.iter().enumerate() {
            for b in &self.vms[i + 1..] {
                if a.network == b.network && a.node != b.node {
                    v.push((a, b));
                }
            }
        }
        v
    }

    /// Two VMs of one network on the same node (no tunnel on the way).
    pub fn same_node_pair(&self) -> Option<(&Vm, &Vm)> {
        self.pair(|a, b| a.network == b.network && a.node == b.node)
    }

    /// Two VMs of different networks on different nodes (must not talk).
    pub fn cross_tenant_pair(&self) -> Option<(&Vm, &Vm)> {
        self.pair(|a, b| a.network != b.network && a.node != b.node)
    }

    fn pair(&self, ok: impl Fn(&Vm, &Vm) -> bool) -> Option<(&Vm, &Vm)> {
        self.vms
            .iter()
            .flat_map(|a| self.vms.iter().map(move |b| (a, b)))
            .find(|(a, b)| a.name != b.name && ok(a, b))
    }

    /// The local VLAN br-int uses for network `name` (its position, from 1).
    pub fn local_vlan(&self, name: &str) -> Option<u16> {
        self.networks
            .iter()
            .position(|n| n.name == name)
            .map(|i| i as u16 + 1)
    }

    /// Two VMs of different networks the router joins, on different nodes
    /// (their traffic is routed).
    pub fn routed_pair(&self) -> Option<(&Vm, &Vm)> {
        let r = self.router.as_ref()?;
        let joined = |v: &Vm| r.networks.contains(&v.network);
        self.pair(|a, b| a.network != b.network && a.node != b.node && joined(a) && joined(b))
    }

    /// The gateway of `vm`'s network, when a router joins it.
    pub fn gateway_of(&self, vm: &Vm) -> Option<Ipv4Addr> {
        self.network(&vm.network)?.gateway
    }

    /// VMs of one node.
    pub fn vms_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Vm> + 'a {
        self.vms.iter().filter(move |v| v.node == node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/two-node-geneve.toml")).unwrap()
    }

    #[test]
    fn the_shipped_topologies_are_valid_and_have_the_same_shape() {
        let t = Topology::parse(&shipped()).unwrap();
        assert_eq!(t.switch, SwitchKind::Rvs);
        assert_eq!(t.nodes.len(), 2);
        assert_eq!(t.networks.len(), 2);
        assert_eq!(t.vms_on("n1").count(), 3);
        assert!(t.underlay.mtu >= t.vm_mtu + 50, "room for the Geneve overhead");
        let (a, b) = t.cross_node_pair().unwrap();
        assert_eq!((a.name.as_str(), b.name.as_str()), ("vm1", "vm3"));
        let (a, b) = t.same_node_pair().unwrap();
        assert_eq!((a.name.as_str(), b.name.as_str()), ("vm1", "vm5"));
        let (a, b) = t.cross_tenant_pair().unwrap();
        assert_eq!((a.name.as_str(), b.name.as_str()), ("vm1", "vm4"));
        assert_eq!(t.local_vlan("tenant-b"), Some(2));

        let lb = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/linux-bridge.toml")).unwrap();
        let lb = Topology::parse(&lb).unwrap();
        assert_eq!(lb.switch, SwitchKind::LinuxBridge);
        let shape = |t: &Topology| {
            (
                t.underlay.subnet,
                t.underlay.mtu,
                t.vm_mtu,
                t.nodes
                    .iter()
                    .map(|n| (n.name.clone(), n.underlay_ip))
                    .collect::<Vec<_>>(),
                t.vms
                    .iter()
                    .map(|v| (v.name.clone(), v.node.clone(), v.ip))
                    .collect::<Vec<_>>(),
                t.networks.iter().map(|n| (n.vni, n.subnet)).collect::<Vec<_>>(),
            )
        };
        assert_eq!(shape(&t), shape(&lb));

        for f in [
            "ovs-userspace.toml",
            "ovs-userspace-pmd.toml",
            "two-node-geneve-ebpf.toml",
            "linux-bridge-offloads.toml",
            "two-node-geneve-sg.toml",
            "two-node-router-sg.toml",
            "two-node-router-sg-ebpf.toml",
            "ovs-router-sg.toml",
            "linux-router-sg.toml",
        ] {
            let other = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap();
            let other = Topology::parse(&other).unwrap();
            assert_eq!(shape(&t), shape(&other), "{f}");
        }
        let ovs =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ovs-userspace.toml")).unwrap();
        let ovs_t = Topology::parse(&ovs).unwrap();
        assert_eq!(
            (ovs_t.switch, ovs_t.ovs_port_type()),
            (SwitchKind::Ovs, OvsPortType::AfxdpNonpmd)
        );
        let e = Topology::parse(&ovs.replace("vm_offloads = false", "vm_offloads = true")).unwrap_err();
        assert!(e.to_string().contains("cannot tunnel TSO"), "{e}");
        let vtep = ovs.replace(
            "underlay_ip = \"198.18.0.2\"",
            "underlay_ip = \"198.18.0.2\"\nvtep_ip = \"198.18.0.12\"",
        );
        let e = Topology::parse(&vtep).unwrap_err();
        assert!(e.to_string().contains("no vtep_ip"), "{e}");
    }

    #[test]
    fn routers_join_networks_with_gateways() {
        let text = |f: &str| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap();
        let rvs = text("two-node-router-sg.toml");
        let t = Topology::parse(&rvs).unwrap();
        let (a, b) = t.routed_pair().unwrap();
        assert_eq!((a.name.as_str(), b.name.as_str()), ("vm1", "vm4"));
        assert_eq!(t.gateway_of(a), Some(Ipv4Addr::new(198, 19, 1, 1)));
        assert!(Topology::parse(&shipped()).unwrap().routed_pair().is_none());
        let e = |from: &str, to: &str, src: &str| {
            Topology::parse(&src.replacen(from, to, 1))
                .unwrap_err()
                .to_string()
        };
        assert!(e("gateway = \"198.19.1.1\"", "", &rvs).contains("needs gateway"));
        assert!(e("gateway = \"198.19.1.1\"", "gateway = \"198.19.2.1\"", &rvs).contains("outside"));
        assert!(e("gateway = \"198.19.1.1\"", "gateway = \"198.19.1.11\"", &rvs).contains("used twice"));
        assert!(e("[\"tenant-a\", \"tenant-b\"]", "[\"tenant-a\"]", &rvs).contains("at least two"));
        assert!(e(
            "[\"tenant-a\", \"tenant-b\"]",
            "[\"tenant-a\", \"tenant-c\"]",
            &rvs
        )
        .contains("no network"));
        assert!(e("name = \"r1\"", "name = \"vm1\"", &rvs).contains("used twice"));
        assert!(e("name = \"r1\"", "name = \"r1\"\nnode = \"n1\"", &rvs).contains("distributed"));
        let linux = text("linux-router-sg.toml");
        assert!(e("node = \"n1\"\nnetworks", "networks", &linux).contains("node = "));
        assert!(e("node = \"n1\"\nnetworks", "node = \"n7\"\nnetworks", &linux).contains("no node"));
        // A gateway with no router joining its network is a mistake.
        let stray = shipped().replace(
            "subnet = \"198.19.1.0/24\"",
            "subnet = \"198.19.1.0/24\"\ngateway = \"198.19.1.1\"",
        );
        assert!(Topology::parse(&stray)
            .unwrap_err()
            .to_string()
            .contains("without a [router]"));
    }

    #[test]
    fn addresses_outside_the_lab_block_are_refused() {
        let bad = shipped().replace("198.19.1.0/24", "10.0.0.0/24");
        let e = Topology::parse(&bad).unwrap_err().to_string();
        assert!(e.contains("outside the lab block"), "{e}");
        let bad = shipped().replace("underlay_ip = \"198.18.0.2\"", "underlay_ip = \"192.168.1.2\"");
        assert!(Topology::parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("outside the underlay"));
    }

    #[test]
    fn references_names_and_vnis_are_checked() {
        let e = |from: &str, to: &str| {
            Topology::parse(&shipped().replacen(from, to, 1))
                .unwrap_err()
                .to_string()
        };
        assert!(e("node = \"n2\"", "node = \"n9\"").contains("no node named"));
        assert!(e("vni = 5002", "vni = 5001").contains("used twice"));
        assert!(e("name = \"vm4\"", "name = \"vm3\"").contains("used twice"));
        assert!(e("name = \"vm4\"", "name = \"a-very-long-name\"").contains("letters, digits"));
        assert!(e("ip = \"198.19.1.13\"", "ip = \"198.19.2.13\"").contains("outside tenant-a"));
        assert!(e("mtu = 1600", "mtu = 100").contains("mtu"));
        assert!(e("mtu = 1600", "mtu = 1540").contains("overlay"));
        assert!(e("vtep_ip = \"198.18.0.11\"", "").contains("needs vtep_ip"));
        assert!(e("vtep_ip = \"198.18.0.11\"", "vtep_ip = \"198.18.0.2\"").contains("used twice"));
        assert!(e("switch = \"rvs\"", "switch = \"ovs-dpdk\"").contains("switch"));
        assert!(e("datapath = \"afxdp\"", "ovs_port_type = \"afxdp\"").contains("for OVS labs"));
        let p = e("vni = 5001", "vni = \"x\"");
        assert!(p.contains("line"), "parse errors say where: {p}");
    }

    #[test]
    fn a_controller_lab_is_checked() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/three-node-controller.toml"))
                .unwrap();
        let t = Topology::parse(&text).unwrap();
        assert_eq!(t.nodes.len(), 3);
        let c = t.controller.as_ref().unwrap();
        assert_eq!((c.kind, c.port), (ControllerKind::OsKen, 6653));
        assert_eq!(t.cross_node_pairs().len(), 4);
        let e = |from: &str, to: &str| {
            Topology::parse(&text.replacen(from, to, 1))
                .unwrap_err()
                .to_string()
        };
        assert!(e("ip = \"198.18.0.254\"", "ip = \"198.18.5.254\"").contains("outside the underlay"));
        assert!(e("ip = \"198.18.0.254\"", "ip = \"198.18.0.3\"").contains("used twice"));
        assert!(e("name = \"n3\"", "name = \"ul\"").contains("underlay's own namespace"));
        assert!(e("switch = \"rvs\"", "switch = \"linux-bridge\"").contains("for rvs labs"));
        assert!(e("vm_mtu = 1500", "vm_mtu = 1500\nsecurity_groups = true").contains("plain L2"));
    }
}
