//! [`Lab`]: one lab brought up from a topology: the namespaces, the underlay,
//! the VMs, and the switch of each node (rvs daemons or Linux bridges). Its
//! state file records everything as it is created; [`teardown`] removes just
//! that, and runs when `up` fails half-way.

use crate::shell::{in_ns, Shell};
use crate::state::{live_pid, runs, LabProcess, LabState};
use crate::topology::{Node, SwitchKind, Topology, Vm};
use crate::{linux_node, ovs_node, rvs_node};
use anyhow::{bail, Context, Result};
use rvs_control::neutron::{br_tun_flows, TenantNet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The underlay's own namespace (its bridge, and the controller if any),
/// when the nodes do not meet on one veth.
pub const UNDERLAY: &str = "ul";

/// Where state files and run directories go unless `--state-dir` says otherwise.
pub const DEFAULT_STATE_DIR: &str = "/run/rvs-lab";

/// Longest per-run prefix: names are prefix + one letter + a topology name (<= 8).
pub const MAX_PREFIX: usize = 6;

// prefix + one letter + the longest name part fit an interface name (IFNAMSIZ - 1).
const _: () = assert!(MAX_PREFIX + 1 + crate::topology::MAX_NAME <= 15);

/// How a lab is run.
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// Per-run prefix of every namespace and interface.
    pub prefix: String,
    /// State files and run directories.
    pub state_dir: PathBuf,
    /// The `rvs` binary.
    pub rvs: PathBuf,
}

/// The default prefix: `rl` and the runner's PID (mod 10000).
pub fn default_prefix() -> String {
    format!("rl{}", std::process::id() % 10_000)
}

/// Check a `--prefix`.
pub fn check_prefix(p: &str) -> Result<()> {
    if p.is_empty() || p.len() > MAX_PREFIX || !p.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("--prefix {p:?}: use 1..={MAX_PREFIX} letters or digits");
    }
    Ok(())
}

/// Unix time in ms.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A lab that is up (or being brought up).
pub struct Lab {
    /// Its topology.
    pub topo: Topology,
    /// Runs its commands.
    pub sh: Shell,
    /// What it created.
    pub state: LabState,
    state_path: PathBuf,
    /// The `rvs` binary.
    pub rvs: PathBuf,
}

impl Lab {
    /// Namespace of node or VM `name`.
    pub fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.state.prefix)
    }

    /// The underlay veth end in `node`.
    pub fn underlay_if(&self, node: &str) -> String {
        format!("{}u{node}", self.state.prefix)
    }

    /// The veth of `vm` (both ends have this name, one in the VM, one in its node).
    pub fn vm_if(&self, vm: &str) -> String {
        format!("{}{vm}", self.state.prefix)
    }

    /// Run directory of `node` (socket, configuration, pidfiles, logs).
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.state.run_dir.join(node)
    }

    /// Where `node`'s br-tun rules are kept (both the rvs and the OVS lab
    /// load them from there, and OVS's agent step loads them again).
    pub fn br_tun_flows_file(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("br-tun.flows")
    }

    /// Write `node`'s br-tun rules (neutron's tables, one Geneve port per
    /// entry of `tunnels`, a local VLAN per network) and return their file.
    pub fn write_br_tun_flows(&self, node: &str, tunnels: &[String]) -> Result<PathBuf> {
        let nets: Vec<TenantNet> = self
            .topo
            .networks
            .iter()
            .map(|n| TenantNet {
                vni: n.vni,
                vlan: self.topo.local_vlan(&n.name).unwrap_or(1),
            })
            .collect();
        let tunnels: Vec<&str> = tunnels.iter().map(String::as_str).collect();
        let flows = self.br_tun_flows_file(node);
        std::fs::write(&flows, br_tun_flows(&tunnels, &nets))
            .with_context(|| format!("writing {}", flows.display()))?;
        self.sh.note(&format!(
            "br-tun's rules (neutron's tables 0/2/4/10/20/22) are in {}",
            flows.display()
        ));
        Ok(flows)
    }

    /// Run `argv` inside the namespace of node or VM `name`.
    pub fn exec(&self, name: &str, argv: &[&str]) -> Result<String> {
        self.sh.run_in(&self.ns(name), argv)
    }

    /// True when `argv` exits 0 inside the namespace of `name`.
    pub fn probe(&self, name: &str, argv: &[&str]) -> bool {
        self.sh.succeeds(&in_ns(&self.ns(name), argv))
    }

    /// The VM called `name`.
    pub fn vm(&self, name: &str) -> Result<&Vm> {
        self.topo
            .vm(name)
            .with_context(|| format!("{}: no VM {name}", self.topo.name))
    }

    fn save(&self) -> Result<()> {
        self.state.save(&self.state_path)
    }

    /// Record a namespace, then create it (so a crash in between leaves
    /// nothing unrecorded).
    pub(crate) fn add_ns(&mut self, name: &str) -> Result<()> {
        let ns = self.ns(name);
        self.state.namespaces.push(ns.clone());
        self.save()?;
        self.sh.run(&["ip", "netns", "add", &ns])?;
        self.sh.run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Record a process the lab is about to start on `node` (its pidfile is
    /// `NODE_DIR/PIDNAME.pid`; `comm` is its program's name); returns the
    /// pidfile. The node's run directory is created if needed.
    pub fn record_process(&mut self, node: &str, role: &str, pidname: &str, comm: &str) -> Result<PathBuf> {
        let dir = self.node_dir(node);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let p = LabProcess {
            role: role.into(),
            on: node.into(),
            pidfile: dir.join(format!("{pidname}.pid")),
            comm: comm.into(),
        };
        let pidfile = p.pidfile.clone();
        if !self.state.processes.contains(&p) {
            self.state.processes.push(p);
        }
        self.save()?;
        Ok(pidfile)
    }

    /// Mount a bpffs on `dir` (recorded first, so teardown unmounts it): an
    /// rvs node's kernel datapath pins its maps there, and this mount, made
    /// outside the daemon's `ip netns exec` mount namespace, outlives a
    /// killed daemon for its successor to adopt.
    pub fn mount_bpffs(&mut self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if !self.state.mounts.iter().any(|m| m == dir) {
            self.state.mounts.push(dir.to_path_buf());
        }
        self.save()?;
        let d = dir.display().to_string();
        self.sh.run(&["mount", "-t", "bpf", "bpf", &d])?;
        Ok(())
    }

    /// Bring `topo` up. On failure or interrupt, everything created so far is
    /// removed before the error is returned.
    pub fn up(topo: &Topology, opts: &LabOptions, sh: Shell) -> Result<Lab> {
        check_prefix(&opts.prefix)?;
        let state_path = LabState::path(&opts.state_dir, &topo.name);
        if let Some(s) = LabState::load(&state_path)? {
            bail!(
                "{} is already up (prefix {}); run `rvs-lab down` on it first",
                topo.name,
                s.prefix
            );
        }
        let taken = sh.run(&["ip", "netns", "list"])?;
        if taken
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .any(|n| n.starts_with(&opts.prefix))
        {
            bail!(
                "namespaces named {}* exist already: pick another --prefix",
                opts.prefix
            );
        }
        let mut lab = Lab {
            topo: topo.clone(),
            sh,
            state: LabState {
                topology: topo.name.clone(),
                prefix: opts.prefix.clone(),
                run_dir: opts.state_dir.join(&opts.prefix),
                started_ms: now_ms(),
                ..Default::default()
            },
            state_path,
            rvs: opts.rvs.clone(),
        };
        match lab.build() {
            Ok(()) => {
                lab.state.ready_ms = now_ms();
                lab.save()?;
                Ok(lab)
            }
            Err(e) => {
                eprintln!("rvs-lab: up failed, removing what was created: {e:#}");
                teardown(&lab.sh, &lab.state, &lab.state_path);
                Err(e)
            }
        }
    }

    /// Open the lab recorded in `state_dir` for `topo`.
    pub fn open(topo: &Topology, state_dir: &Path, rvs: &Path, sh: Shell) -> Result<Option<Lab>> {
        let state_path = LabState::path(state_dir, &topo.name);
        Ok(LabState::load(&state_path)?.map(|state| Lab {
            topo: topo.clone(),
            sh,
            state,
            state_path,
            rvs: rvs.to_path_buf(),
        }))
    }

    /// Remove the lab (processes, namespaces, run directory, state file).
    pub fn down(self) {
        teardown(&self.sh, &self.state, &self.state_path);
    }

    fn build(&mut self) -> Result<()> {
        std::fs::create_dir_all(&self.state.run_dir)
            .with_context(|| format!("creating {}", self.state.run_dir.display()))?;
        self.save()?;
        let topo = self.topo.clone();
        self.sh
            .note("the nodes (\"hypervisors\") and the underlay link between them");
        for n in &topo.nodes {
            self.add_ns(&n.name)?;
        }
        self.underlay(&topo)?;
        crate::controller::start(self)?;
        self.sh
            .note("the VMs: one namespace each, a veth into their node");
        for vm in &topo.vms {
            self.add_ns(&vm.name)?;
            self.vm_link(vm)?;
        }
        match topo.switch {
            SwitchKind::Rvs => rvs_node::build(self),
            SwitchKind::LinuxBridge => linux_node::build(self),
            SwitchKind::Ovs => ovs_node::build(self),
        }
    }

    fn underlay(&mut self, topo: &Topology) -> Result<()> {
        let prefix = topo.underlay.subnet.prefix.to_string();
        let mtu = topo.underlay.mtu.to_string();
        if topo.nodes.len() > 2 || topo.controller.is_some() {
            self.underlay_bridge(topo)?;
        } else if let [a, b] = &topo.nodes[..] {
            let (ia, ib) = (self.underlay_if(&a.name), self.underlay_if(&b.name));
            let (na, nb) = (self.ns(&a.name), self.ns(&b.name));
            self.sh.run(&[
                "ip", "link", "add", &ia, "netns", &na, "mtu", &mtu, "type", "veth", "peer", "name", &ib,
                "netns", &nb, "mtu", &mtu,
            ])?;
        } else {
            let n = &topo.nodes[0];
            // One node: the underlay is a dummy link (tunnels have nowhere to go).
            let i = self.underlay_if(&n.name);
            self.sh.run(&[
                "ip",
                "-n",
                &self.ns(&n.name),
                "link",
                "add",
                &i,
                "mtu",
                &mtu,
                "type",
                "dummy",
            ])?;
        }
        for n in &topo.nodes {
            let (ns, i) = (self.ns(&n.name), self.underlay_if(&n.name));
            let addr = format!("{}/{prefix}", n.underlay_ip);
            // An OVS node's address goes on br-ex (ovs_node), as OVS
            // deployments with one NIC have it: the veth becomes a port.
            if topo.switch != SwitchKind::Ovs {
                self.sh.run(&["ip", "-n", &ns, "addr", "add", &addr, "dev", &i])?;
            }
            self.sh.run(&["ip", "-n", &ns, "link", "set", &i, "up"])?;
        }
        Ok(())
    }

    /// More than two nodes (or a controller): the underlay is a Linux
    /// bridge in a namespace of its own, a veth from each node into it, as
    /// a top-of-rack switch; the controller gets the bridge's address.
    fn underlay_bridge(&mut self, topo: &Topology) -> Result<()> {
        self.add_ns(UNDERLAY)?;
        let (ns, br, mtu) = (
            self.ns(UNDERLAY),
            self.ns(UNDERLAY),
            topo.underlay.mtu.to_string(),
        );
        // Quiet: no IPv6 chatter of the bridge's own on the underlay.
        self.sh.run(&in_ns(
            &ns,
            &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
        ))?;
        self.sh.run(&[
            "ip",
            "-n",
            &ns,
            "link",
            "add",
            &br,
            "mtu",
            &mtu,
            "type",
            "bridge",
            "stp_state",
            "0",
        ])?;
        for n in &topo.nodes {
            let (nns, i, b) = (
                self.ns(&n.name),
                self.underlay_if(&n.name),
                format!("{}b{}", self.state.prefix, n.name),
            );
            self.sh.run(&[
                "ip", "link", "add", &i, "netns", &nns, "mtu", &mtu, "type", "veth", "peer", "name", &b,
                "netns", &ns, "mtu", &mtu,
            ])?;
            self.sh
                .run(&["ip", "-n", &ns, "link", "set", &b, "master", &br, "up"])?;
        }
        self.sh.run(&["ip", "-n", &ns, "link", "set", &br, "up"])?;
        if let Some(c) = &topo.controller {
            let addr = format!("{}/{}", c.ip, topo.underlay.subnet.prefix);
            self.sh
                .run(&["ip", "-n", &ns, "addr", "add", &addr, "dev", &br])?;
        }
        Ok(())
    }

    fn vm_link(&mut self, vm: &Vm) -> Result<()> {
        let net = self.topo.network(&vm.network).context("validated")?;
        let (vns, nns, i) = (self.ns(&vm.name), self.ns(&vm.node), self.vm_if(&vm.name));
        self.sh.run(&[
            "ip", "link", "add", &i, "netns", &vns, "type", "veth", "peer", "name", &i, "netns", &nns,
        ])?;
        let mac = vm_mac(vm);
        let addr = format!("{}/{}", vm.ip, net.subnet.prefix);
        let mtu = self.topo.vm_mtu.to_string();
        self.sh
            .run(&["ip", "-n", &vns, "link", "set", &i, "address", &mac, "mtu", &mtu])?;
        self.sh
            .run(&["ip", "-n", &vns, "addr", "add", &addr, "dev", &i])?;
        self.sh.run(&["ip", "-n", &vns, "link", "set", &i, "up"])?;
        if let Some(gw) = self.topo.gateway_of(vm) {
            let gw = gw.to_string();
            self.sh
                .run(&["ip", "-n", &vns, "route", "add", "default", "via", &gw])?;
        }
        // The node side carries the VM's frames plus nothing: same MTU.
        self.sh
            .run(&["ip", "-n", &nns, "link", "set", &i, "mtu", &mtu, "up"])?;
        // Like for like unless the topology keeps the VMs' offloads: the VM
        // hands over whole checksummed frames (a veth with tx offload sends
        // partial checksums, which AF_XDP cannot carry).
        if !self.topo.vm_offloads {
            self.exec(&vm.name, &["ethtool", "-K", &i, "tx", "off"])?;
        }
        Ok(())
    }

    /// The switch's userspace process on `node`: what it is, its pidfile and
    /// program name (the rvs daemon, whose PMD threads are the dataplane; for
    /// the Linux bridge, the agent stand-in, which forwards nothing).
    pub fn switch_process(&self, node: &str) -> (&'static str, PathBuf, &'static str) {
        match self.topo.switch {
            SwitchKind::Rvs if self.topo.datapath() == crate::topology::DatapathType::Ebpf => (
                "rvs daemon (the kernel datapath it programs keeps running)",
                rvs_node::pidfile(self, node),
                "rvs",
            ),
            SwitchKind::Rvs => (
                "rvs daemon (its PMD threads are the dataplane)",
                rvs_node::pidfile(self, node),
                "rvs",
            ),
            SwitchKind::LinuxBridge => (
                "agent stand-in (ip monitor)",
                linux_node::pidfile(self, node),
                "ip",
            ),
            SwitchKind::Ovs => (
                "ovs-vswitchd (its userspace datapath is in the process)",
                ovs_node::vswitchd_pidfile(self, node),
                "ovs-vswitchd",
            ),
        }
    }

    /// `kill -9` the switch's process on `node` and wait until a successor
    /// can start: for rvs, until the daemon's run-directory lock is free (the
    /// first thing its exit releases; the new daemon takes each device as the
    /// old exit lets go of it, as a supervisor that restarts on the lock, like
    /// `flock`, would); otherwise until the process is gone. Returns when the
    /// kill was sent (Unix ms).
    pub fn kill_switch(&self, node: &str) -> Result<u64> {
        let (role, pidfile, comm) = self.switch_process(node);
        let pid = live_pid(&pidfile, comm).with_context(|| format!("the {role} on {node} is not running"))?;
        let killed = now_ms();
        self.sh.run(&["kill", "-KILL", &pid.to_string()])?;
        let released = || match self.topo.switch {
            SwitchKind::Rvs => rvs_node::lock_free(self, node),
            SwitchKind::LinuxBridge | SwitchKind::Ovs => !runs(pid, comm),
        };
        while !released() && now_ms() < killed + 5000 {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(killed)
    }

    /// Start the switch's process on `node` again; returns once it serves.
    /// rvs re-applies its saved configuration, rules included; ovs-vswitchd
    /// gets bridges and ports back from ovsdb-server but no OpenFlow rules
    /// (see [`Lab::resync_switch`]).
    pub fn restart_switch(&mut self, node: &str) -> Result<()> {
        match self.topo.switch {
            SwitchKind::Rvs => rvs_node::start_daemon(self, node),
            SwitchKind::LinuxBridge => linux_node::start_agent(self, node),
            SwitchKind::Ovs => ovs_node::start_vswitchd(self, node),
        }
    }

    /// What an operator's agent does after a restart: for OVS, load the
    /// OpenFlow rules again (neutron's agent re-pushes them); rvs and the
    /// kernel need nothing.
    pub fn resync_switch(&self, node: &str) -> Result<()> {
        match self.topo.switch {
            SwitchKind::Ovs => ovs_node::resync(self, node),
            SwitchKind::Rvs | SwitchKind::LinuxBridge => Ok(()),
        }
    }

    /// How the switch of this lab gets its rules back after a restart.
    pub fn restored_by(&self) -> &'static str {
        match self.topo.switch {
            SwitchKind::Rvs => "the daemon's saved configuration",
            SwitchKind::Ovs => "the agent re-adding its rules (ovs-ofctl)",
            SwitchKind::LinuxBridge => "nothing to restore: the kernel kept it",
        }
    }

    /// Node `name`.
    pub fn node(&self, name: &str) -> Result<&Node> {
        self.topo.node(name).with_context(|| format!("no node {name}"))
    }
}

/// A VM's MAC, made from its address (02:00 + the four octets), so traces are
/// easy to read.
pub fn vm_mac(vm: &Vm) -> String {
    mac_of(vm.ip)
}

/// A locally administered MAC made from a lab address (02:00 + the four
/// octets): VMs' MACs, and an OVS node's br-ex.
pub fn mac_of(ip: std::net::Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// Stop a recorded process: SIGTERM, then SIGKILL after 3 s, and wait until
/// it is gone (a killed process still closes its sockets for a while). Only a
/// process whose pidfile names a live process of the recorded program is
/// signalled.
pub fn stop_process(sh: &Shell, p: &LabProcess) {
    let Some(pid) = live_pid(&p.pidfile, &p.comm) else {
        return;
    };
    // Watched by PID: OVS's daemons remove their pidfiles before they are gone.
    let gone_within = |secs: u64| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while runs(pid, &p.comm) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        !runs(pid, &p.comm)
    };
    let pid_s = pid.to_string();
    sh.cleanup(&["kill", "-TERM", &pid_s]);
    if !gone_within(3) {
        sh.cleanup(&["kill", "-KILL", &pid_s]);
        gone_within(5);
    }
}

/// Remove what `state` records: stop its processes, delete its namespaces
/// (their veths, bridges and tunnels go with them), its run directory and the
/// state file. Runs to the end even after an interrupt.
pub fn teardown(sh: &Shell, state: &LabState, state_path: &Path) {
    sh.note(&format!("tear down {} (prefix {})", state.topology, state.prefix));
    for p in state.processes.iter().rev() {
        stop_process(sh, p);
    }
    for ns in state.namespaces.iter().rev() {
        sh.cleanup(&["ip", "netns", "del", ns]);
    }
    for m in state.mounts.iter().rev() {
        // Unmounting a bpffs drops whatever is still pinned in it.
        sh.cleanup(&["umount", "-l", &m.display().to_string()]);
    }
    if !state.run_dir.as_os_str().is_empty() {
        let _ = std::fs::remove_dir_all(&state.run_dir);
    }
    let _ = std::fs::remove_file(state_path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_fit_interface_names() {
        assert!(check_prefix(&default_prefix()).is_ok());
        assert!(check_prefix("rl1234").is_ok());
        assert!(check_prefix("rl12345").is_err());
        assert!(check_prefix("a-b").is_err());
        assert!(check_prefix("").is_err());
    }

    #[test]
    fn vm_macs_come_from_addresses() {
        let vm = Vm {
            name: "vm1".into(),
            node: "n1".into(),
            network: "a".into(),
            ip: "198.19.1.11".parse().unwrap(),
        };
        assert_eq!(vm_mac(&vm), "02:00:c6:13:01:0b");
        assert_eq!(mac_of("198.18.0.1".parse().unwrap()), "02:00:c6:12:00:01");
    }
}
