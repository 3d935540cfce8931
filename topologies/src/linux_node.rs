//! A Linux-bridge node, as neutron's linuxbridge agent builds one: a bridge
//! per tenant network holding the VMs' veths and a kernel overlay device
//! (Geneve where the kernel has it, VXLAN otherwise) towards the other node.
//! A stand-in for the agent (`ip monitor link`, the userspace process of this
//! role) runs per node, so the fault run has the same role to kill.

use crate::lab::Lab;
use crate::topology::Overlay;
use anyhow::{Context, Result};
use std::path::PathBuf;

/// Kernel VXLAN's IANA port.
pub const VXLAN_PORT: &str = "4789";

/// Build every node.
pub fn build(lab: &mut Lab) -> Result<()> {
    let nodes = lab.topo.nodes.clone();
    let overlay = match lab.topo.overlay {
        Overlay::Geneve => "geneve",
        Overlay::Vxlan => "vxlan",
        Overlay::Auto if kernel_has_geneve(lab, &nodes[0].name) => "geneve",
        Overlay::Auto => "vxlan",
    };
    lab.state.overlay = overlay.into();
    for node in &nodes {
        lab.sh.note(&format!(
            "node {}: Linux bridges with {overlay} devices",
            node.name
        ));
        let ns = lab.ns(&node.name);
        let remote = nodes.iter().find(|n| n.name != node.name);
        for net in &lab.topo.networks {
            let (br, dev) = (bridge(lab, net.vni), format!("{}x{}", lab.state.prefix, net.vni));
            lab.sh
                .run(&["ip", "-n", &ns, "link", "add", &br, "type", "bridge"])?;
            lab.sh.run(&["ip", "-n", &ns, "link", "set", &br, "up"])?;
            if let Some(r) = remote {
                let (vni, rip, lip) = (
                    net.vni.to_string(),
                    r.underlay_ip.to_string(),
                    node.underlay_ip.to_string(),
                );
                let uplink = lab.underlay_if(&node.name);
                if overlay == "geneve" {
                    lab.sh.run(&[
                        "ip", "-n", &ns, "link", "add", &dev, "type", "geneve", "id", &vni, "remote", &rip,
                    ])?;
                } else {
                    lab.sh.run(&[
                        "ip", "-n", &ns, "link", "add", &dev, "type", "vxlan", "id", &vni, "local", &lip,
                        "remote", &rip, "dstport", VXLAN_PORT, "dev", &uplink,
                    ])?;
                }
                lab.sh
                    .run(&["ip", "-n", &ns, "link", "set", &dev, "master", &br, "up"])?;
            }
        }
        for vm in lab.topo.vms_on(&node.name) {
            let net = lab.topo.network(&vm.network).context("validated")?;
            let br = bridge(lab, net.vni);
            lab.sh.run(&[
                "ip",
                "-n",
                &ns,
                "link",
                "set",
                &lab.vm_if(&vm.name),
                "master",
                &br,
            ])?;
        }
        if lab.topo.security_groups {
            crate::linux_l3::apply_security_groups(lab, &node.name)?;
        }
        start_agent(lab, &node.name)?;
    }
    crate::linux_l3::build_router(lab, bridge)
}

/// The Linux bridge of network `vni`.
pub fn bridge(lab: &Lab, vni: u32) -> String {
    format!("{}b{vni}", lab.state.prefix)
}

/// Name of the agent's pidfile (without `.pid`) in the node's run directory.
const PIDNAME: &str = "agent";

/// The agent stand-in's pidfile on `node` (as [`start_agent`] records it).
pub fn pidfile(lab: &Lab, node: &str) -> PathBuf {
    lab.node_dir(node).join(format!("{PIDNAME}.pid"))
}

/// Start (or restart) the agent stand-in of `node`.
pub fn start_agent(lab: &mut Lab, node: &str) -> Result<()> {
    let pidfile = lab.record_process(node, "agent (ip monitor)", PIDNAME, "ip")?;
    let dir = lab.node_dir(node);
    let ns = lab.ns(node);
    let mut child = lab.sh.start(
        &["ip", "netns", "exec", &ns, "ip", "monitor", "link"],
        &dir.join("agent.log"),
    )?;
    std::fs::write(&pidfile, format!("{}\n", child.id()))?;
    // Reap it whenever it ends, so a killed agent does not linger as a zombie.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// Can this kernel make Geneve devices? (Tried in a lab namespace.)
fn kernel_has_geneve(lab: &Lab, node: &str) -> bool {
    let (ns, dev) = (lab.ns(node), format!("{}probe", lab.state.prefix));
    let ok = lab.sh.succeeds(&[
        "ip",
        "-n",
        &ns,
        "link",
        "add",
        &dev,
        "type",
        "geneve",
        "id",
        "1",
        "remote",
        "198.18.0.254",
    ]);
    if ok {
        lab.sh.cleanup(&["ip", "-n", &ns, "link", "del", &dev]);
    }
    ok
}
