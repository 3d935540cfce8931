//! The kernel's side of security groups and routing on a Linux-bridge node,
//! as neutron builds them with the linuxbridge agent: the security group of
//! every VM port as iptables rules on bridged traffic (br_netfilter hands
//! bridged IPv4 to the FORWARD chain; the physdev match picks the port; the
//! kernel's conntrack keeps the state), in the chain layout of neutron's
//! iptables firewall driver (`i<port>` ingress, `o<port>` egress, a drop
//! fallback); and the router as a namespace with a leg in each tenant bridge
//! and IPv4 forwarding, as the L3 agent's `qrouter` namespace.

use crate::br_int::{SG_TCP_IN, SG_UDP_IN};
use crate::lab::{mac_of, Lab};
use anyhow::{Context, Result};

/// The chain every port's rules end in when nothing allowed the packet.
const FALLBACK: &str = "rvs-sg-fallback";

/// `node`'s filter table in `iptables-restore` form: every VM port behind
/// the lab's security group (as `br_int::lab_group`: all egress; ingress
/// ICMP, TCP 22 and 5201, UDP 9; replies and related ICMP errors; the rest
/// dropped; egress from another address or MAC dropped).
pub fn security_group_rules(lab: &Lab, node: &str) -> String {
    let mut s = String::from("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    s.push_str(&format!(":{FALLBACK} - [0:0]\n-A {FALLBACK} -j DROP\n"));
    for vm in lab.topo.vms_on(node) {
        let port = lab.vm_if(&vm.name);
        let (i, o) = (format!("i{port}"), format!("o{port}"));
        s.push_str(&format!(":{i} - [0:0]\n:{o} - [0:0]\n"));
        s.push_str(&format!(
            "-A FORWARD -m physdev --physdev-out {port} --physdev-is-bridged -j {i}\n"
        ));
        s.push_str(&format!(
            "-A FORWARD -m physdev --physdev-in {port} --physdev-is-bridged -j {o}\n"
        ));
        // Ingress: what the group lets in, replies and related errors.
        s.push_str(&format!(
            "-A {i} -m state --state RELATED,ESTABLISHED -j RETURN\n"
        ));
        s.push_str(&format!("-A {i} -m state --state INVALID -j DROP\n"));
        s.push_str(&format!("-A {i} -p icmp -j RETURN\n"));
        for p in SG_TCP_IN {
            s.push_str(&format!("-A {i} -p tcp -m tcp --dport {p} -j RETURN\n"));
        }
        s.push_str(&format!("-A {i} -p udp -m udp --dport {SG_UDP_IN} -j RETURN\n"));
        s.push_str(&format!("-A {i} -j {FALLBACK}\n"));
        // Egress: anti-spoofing, then everything the VM starts.
        let mac = mac_of(vm.ip);
        s.push_str(&format!("-A {o} ! -s {}/32 -j DROP\n", vm.ip));
        s.push_str(&format!("-A {o} -m mac ! --mac-source {mac} -j DROP\n"));
        s.push_str(&format!(
            "-A {o} -m state --state RELATED,ESTABLISHED -j RETURN\n"
        ));
        s.push_str(&format!("-A {o} -m state --state INVALID -j DROP\n"));
        s.push_str(&format!("-A {o} -j RETURN\n"));
    }
    s.push_str("COMMIT\n");
    // One conntrack zone per network (neutron's CT --zone rules): a routed
    // packet crosses two of this node's bridges, and in one zone its second
    // pass would look like a duplicate (a RST reply after the first pass
    // closed the connection is INVALID).
    s.push_str("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for net in &lab.topo.networks {
        let zone = lab.topo.local_vlan(&net.name).unwrap_or(1);
        s.push_str(&format!(
            "-A PREROUTING -i {} -j CT --zone {zone}\n",
            crate::linux_node::bridge(lab, net.vni)
        ));
    }
    s.push_str("COMMIT\n");
    s
}

/// Put `node`'s VM ports behind their security group.
pub fn apply_security_groups(lab: &Lab, node: &str) -> Result<()> {
    let ns = lab.ns(node);
    let path = lab.node_dir(node).join("iptables.rules");
    std::fs::create_dir_all(lab.node_dir(node))?;
    std::fs::write(&path, security_group_rules(lab, node))
        .with_context(|| format!("writing {}", path.display()))?;
    lab.sh.note(&format!(
        "node {node}: security groups as iptables rules on bridged traffic (neutron's iptables firewall driver's chains), in {}",
        path.display()
    ));
    // Bridged IPv4 goes through iptables (br_netfilter); set, not assumed.
    lab.sh.run(&[
        "ip",
        "netns",
        "exec",
        &ns,
        "sysctl",
        "-qw",
        "net.bridge.bridge-nf-call-iptables=1",
    ])?;
    lab.sh.run(&[
        "ip",
        "netns",
        "exec",
        &ns,
        "iptables-restore",
        &path.display().to_string(),
    ])?;
    Ok(())
}

/// The router namespace's leg in network `vni` (both veth ends).
pub fn router_leg(lab: &Lab, vni: u32) -> String {
    format!("{}q{vni}", lab.state.prefix)
}

/// Build the lab's router on its node: a namespace with a leg (the
/// gateway address, a MAC made from it) in each joined network's bridge
/// (`bridge(vni)`), forwarding on.
pub fn build_router(lab: &mut Lab, bridge: impl Fn(&Lab, u32) -> String) -> Result<()> {
    let Some(r) = lab.topo.router.clone() else {
        return Ok(());
    };
    let node = r.node.clone().context("validated: a Linux router has a node")?;
    lab.sh.note(&format!(
        "router {}: a namespace on {node} with a leg in each tenant bridge, forwarding on (neutron's L3 agent)",
        r.name
    ));
    lab.add_ns(&r.name)?;
    let (rns, nns) = (lab.ns(&r.name), lab.ns(&node));
    let mtu = lab.topo.vm_mtu.to_string();
    for name in &r.networks {
        let net = lab.topo.network(name).context("validated")?.clone();
        let gw = net.gateway.context("validated: a joined network has a gateway")?;
        let leg = router_leg(lab, net.vni);
        lab.sh.run(&[
            "ip", "link", "add", &leg, "netns", &rns, "type", "veth", "peer", "name", &leg, "netns", &nns,
        ])?;
        let addr = format!("{gw}/{}", net.subnet.prefix);
        lab.sh.run(&[
            "ip",
            "-n",
            &rns,
            "link",
            "set",
            &leg,
            "address",
            &mac_of(gw),
            "mtu",
            &mtu,
            "up",
        ])?;
        lab.sh
            .run(&["ip", "-n", &rns, "addr", "add", &addr, "dev", &leg])?;
        let br = bridge(lab, net.vni);
        lab.sh.run(&[
            "ip", "-n", &nns, "link", "set", &leg, "mtu", &mtu, "master", &br, "up",
        ])?;
    }
    lab.sh.run(&[
        "ip",
        "netns",
        "exec",
        &rns,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
    ])?;
    Ok(())
}
