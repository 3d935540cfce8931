//! An rvs node: its own `rvs daemon` inside the node namespace, configured
//! with the rvs command line as an operator would: br-int (VM ports, one local
//! VLAN per tenant network), br-tun (a Geneve port per other node, neutron's
//! table layout), br-ex (the underlay veth as an AF_XDP port that also serves
//! the node's tunnel endpoint address).

use crate::lab::Lab;
use crate::topology::DatapathType;
use anyhow::Result;
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
    crate::controller::wait_programmed(lab)
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
    if lab.topo.controller.is_some() {
        // The controller programs both bridges (neutron's agent over
        // OpenFlow), not the command line.
        return crate::controller::attach(lab, name);
    }
    let flows = lab.write_br_tun_flows(name, &tunnels)?;
    rvs(
        lab,
        name,
        &["replace-flows", "br-tun", &flows.display().to_string()],
    )?;
    if let Some(flows) = crate::br_int::write(lab, name)? {
        rvs(
            lab,
            name,
            &["replace-flows", "br-int", &flows.display().to_string()],
        )?;
    }
    Ok(())
}
