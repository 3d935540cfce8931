//! An rvs node: its own `rvs daemon` inside the node namespace, configured
//! with the rvs command line as an operator would: br-int (VM ports, one local
//! VLAN per tenant network), br-tun (a Geneve port per other node, neutron's
//! table layout), br-ex (the underlay veth as an AF_XDP port that also serves
//! the node's tunnel endpoint address).

use crate::lab::Lab;
use crate::topology::DatapathType;
use anyhow::{Context, Result};
use std::path::PathBuf;

/// Build every node.
pub fn build(lab: &mut Lab) -> Result<()> {
    lab.state.overlay = "geneve".into();
    let nodes: Vec<String> = lab.topo.nodes.iter().map(|n| n.name.clone()).collect();
    for n in &nodes {
        lab.sh
            .note(&format!("node {n}: an rvs daemon and its three bridges"));
        start_daemon(lab, n)?;
        configure(lab, n)?;
    }
    Ok(())
}

/// Name of the daemon's pidfile (without `.pid`) in the node's run directory.
const PIDNAME: &str = "rvs";

/// The daemon's pidfile on `node` (as [`start_daemon`] records it).
pub fn pidfile(lab: &Lab, node: &str) -> PathBuf {
    lab.node_dir(node).join(format!("{PIDNAME}.pid"))
}

/// Start (or restart) the daemon of `node`; returns once its socket answers.
/// It re-applies the configuration saved in its run directory, if any.
pub fn start_daemon(lab: &mut Lab, node: &str) -> Result<()> {
    let pidfile = lab.record_process(node, "rvs daemon", PIDNAME, "rvs")?;
    let dir = lab.node_dir(node);
    let datapath = lab.topo.datapath();
    if datapath == DatapathType::Ebpf && !lab.state.mounts.contains(&dir.join("bpf")) {
        lab.mount_bpffs(&dir.join("bpf"))?;
    }
    let (ns, rvs) = (lab.ns(node), lab.rvs.display().to_string());
    let (d, db, pf) = (
        dir.display().to_string(),
        dir.join("conf.json").display().to_string(),
        pidfile.display().to_string(),
    );
    // Metrics stay on 127.0.0.1:9477 of the node's own namespace.
    lab.sh.run_logged(
        &[
            "ip",
            "netns",
            "exec",
            &ns,
            &rvs,
            "--run-dir",
            &d,
            "daemon",
            "--db",
            &db,
            "--datapath",
            datapath.name(),
            "--detach",
            "--pidfile",
            &pf,
        ],
        &dir.join("rvs.log"),
    )
}

/// True when no daemon holds `node`'s run-directory lock (`rvs.lock`, taken
/// by `rvs daemon` for its life): a new one can start.
pub fn lock_free(lab: &Lab, node: &str) -> bool {
    let Ok(f) = std::fs::File::open(lab.node_dir(node).join("rvs.lock")) else {
        return true;
    };
    // Dropping the file releases the probe's own lock at once.
    f.try_lock().is_ok()
}

/// Run an `rvs` command against the daemon of `node`.
pub fn rvs(lab: &Lab, node: &str, args: &[&str]) -> Result<String> {
    let (rvs, dir) = (
        lab.rvs.display().to_string(),
        lab.node_dir(node).display().to_string(),
    );
    let mut argv = vec![rvs.as_str(), "--run-dir", dir.as_str()];
    argv.extend_from_slice(args);
    lab.sh.run(&argv)
}

fn configure(lab: &mut Lab, name: &str) -> Result<()> {
    let node = lab.node(name)?.clone();
    let vtep = node.tunnel_ip().to_string();
    for br in ["br-int", "br-tun", "br-ex"] {
        rvs(lab, name, &["add-br", br])?;
    }
    rvs(
        lab,
        name,
        &[
            "add-port",
            "br-int",
            "patch-tun",
            "type=patch",
            "options:peer=patch-int",
        ],
    )?;
    rvs(
        lab,
        name,
        &[
            "add-port",
            "br-tun",
            "patch-int",
            "type=patch",
            "options:peer=patch-tun",
        ],
    )?;
    let uplink = lab.underlay_if(name);
    let vtep_opt = format!("options:vtep_ip={vtep}");
    // A device port: AF_XDP sockets, or the kernel datapath's TC programs.
    let dev_type = match lab.topo.datapath() {
        DatapathType::Afxdp => "type=afxdp",
        DatapathType::Ebpf => "type=system",
    };
    rvs(lab, name, &["add-port", "br-ex", &uplink, dev_type, &vtep_opt])?;
    let mut tunnels = Vec::new();
    for other in lab.topo.nodes.iter().filter(|n| n.name != name) {
        let port = format!("gnv-{}", other.name);
        let remote = format!("options:remote_ip={}", other.tunnel_ip());
        let local = format!("options:local_ip={vtep}");
        rvs(
            lab,
            name,
            &["add-port", "br-tun", &port, "type=geneve", &remote, &local],
        )?;
        tunnels.push(port);
    }
    for vm in lab.topo.vms_on(name) {
        let tag = format!("tag={}", lab.topo.local_vlan(&vm.network).unwrap_or(1));
        rvs(
            lab,
            name,
            &["add-port", "br-int", &lab.vm_if(&vm.name), dev_type, &tag],
        )?;
    }
    let flows = lab.write_br_tun_flows(name, &tunnels)?;
    rvs(
        lab,
        name,
        &["replace-flows", "br-tun", &flows.display().to_string()],
    )?;
    if lab.topo.security_groups {
        let flows = write_security_groups(lab, name)?;
        rvs(
            lab,
            name,
            &["replace-flows", "br-int", &flows.display().to_string()],
        )?;
    }
    Ok(())
}

/// The TCP ports a lab VM's group lets in: SSH, and iperf3's.
pub const SG_TCP_IN: [u16; 2] = [22, 5201];

/// br-int's rules with every VM of `node` behind the lab's security group
/// (neutron's OVS firewall layout; zone = the network's local VLAN).
fn write_security_groups(lab: &Lab, node: &str) -> Result<PathBuf> {
    use rvs_control::security_group::{allow_egress, firewall_flows, Direction, Port, Proto, Rule};
    let mut ports = Vec::new();
    for (i, vm) in lab.topo.vms_on(node).enumerate() {
        let vlan = lab.topo.local_vlan(&vm.network).unwrap_or(1);
        let mut rules = allow_egress();
        let inbound = |proto| Rule {
            direction: Direction::Ingress,
            proto,
            remote: None,
        };
        rules.push(inbound(Proto::Icmp));
        for p in SG_TCP_IN {
            rules.push(inbound(Proto::Tcp(Some((p, p)))));
        }
        let mac = crate::lab::mac_of(vm.ip);
        let mac = rvs_control::switch::parse_mac(&mac).context("a lab MAC")?;
        ports.push(Port {
            name: lab.vm_if(&vm.name),
            id: i as u32 + 1,
            mac,
            ip: vm.ip,
            zone: vlan,
            vlan: Some(vlan),
            rules,
        });
    }
    let path = lab.node_dir(node).join("br-int-security-groups.flows");
    std::fs::write(&path, firewall_flows(&ports)).with_context(|| format!("writing {}", path.display()))?;
    lab.sh.note(&format!(
        "br-int's security-group rules (neutron's OVS firewall tables 71-94) are in {}",
        path.display()
    ));
    Ok(path)
}
