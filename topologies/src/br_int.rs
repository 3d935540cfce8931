//! br-int's OpenFlow rules of a lab node, the same text for rvs and OVS
//! nodes: the security groups (neutron's OVS firewall tables, from
//! `rvs_control::security_group`) and the distributed router (from
//! `rvs_control::router`). Without either, br-int is plain NORMAL and gets
//! no rules file.

use crate::lab::{mac_of, Lab};
use anyhow::{Context, Result};
use rvs_control::router::{router_flows, Attachment, Host, RouterPort};
use rvs_control::security_group::{allow_egress, firewall_flows_with, Direction, Port, Proto, Rule};
use rvs_control::switch::parse_mac;
use std::path::PathBuf;

/// The TCP ports a lab VM's group lets in: SSH, and iperf3's.
pub const SG_TCP_IN: [u16; 2] = [22, 5201];

/// The UDP port a lab VM's group lets in: discard, where the small-packet
/// runs (`rvs blast`) send.
pub const SG_UDP_IN: u16 = 9;

/// br-int's port towards br-tun (the other nodes).
pub const PATCH_TUN: &str = "patch-tun";

fn mac(s: &str) -> Result<[u8; 6]> {
    parse_mac(s).with_context(|| format!("{s} is not a MAC"))
}

/// The lab's security group: all egress; ingress ICMP, [`SG_TCP_IN`] and
/// [`SG_UDP_IN`]; the rest dropped.
pub fn lab_group() -> Vec<Rule> {
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
    rules.push(inbound(Proto::Udp(Some((SG_UDP_IN, SG_UDP_IN)))));
    rules
}

/// The security-group port id (`reg5`) of the `i`-th VM of a node.
fn sg_id(i: usize) -> u32 {
    i as u32 + 1
}

fn firewall(lab: &Lab, node: &str) -> Result<String> {
    let mut ports = Vec::new();
    for (i, vm) in lab.topo.vms_on(node).enumerate() {
        let vlan = lab.topo.local_vlan(&vm.network).unwrap_or(1);
        ports.push(Port {
            name: lab.vm_if(&vm.name),
            id: sg_id(i),
            mac: mac(&mac_of(vm.ip))?,
            ip: vm.ip,
            zone: vlan,
            vlan: Some(vlan),
            rules: lab_group(),
        });
    }
    Ok(firewall_flows_with(&ports, Some(PATCH_TUN)))
}

fn router(lab: &Lab, node: &str) -> Result<String> {
    let t = &lab.topo;
    let Some(r) = &t.router else {
        return Ok(String::new());
    };
    let mut ports = Vec::new();
    for net in t.networks.iter().filter(|n| r.networks.contains(&n.name)) {
        let gateway = net.gateway.context("validated: a joined network has a gateway")?;
        ports.push(RouterPort {
            vlan: t.local_vlan(&net.name).unwrap_or(1),
            gateway,
            prefix: net.subnet.prefix,
            mac: mac(&mac_of(gateway))?,
        });
    }
    let local: Vec<_> = t.vms_on(node).map(|v| v.name.clone()).collect();
    let mut hosts = Vec::new();
    for vm in t.vms.iter().filter(|v| r.networks.contains(&v.network)) {
        let at = match local.iter().position(|n| *n == vm.name) {
            Some(i) => Attachment::Local {
                port: lab.vm_if(&vm.name),
                sg_id: t.security_groups.then(|| sg_id(i)),
            },
            None => Attachment::Remote {
                via: PATCH_TUN.into(),
            },
        };
        hosts.push(Host {
            ip: vm.ip,
            mac: mac(&mac_of(vm.ip))?,
            vlan: t.local_vlan(&vm.network).unwrap_or(1),
            at,
        });
    }
    let local_ports: Vec<(String, u16)> = t
        .vms_on(node)
        .map(|v| (lab.vm_if(&v.name), t.local_vlan(&v.network).unwrap_or(1)))
        .collect();
    Ok(router_flows(&ports, &hosts, &local_ports, t.security_groups))
}

/// Write `node`'s br-int rules, if the lab has security groups or a router,
/// and return their file (`NODE_DIR/br-int.flows`).
pub fn write(lab: &Lab, node: &str) -> Result<Option<PathBuf>> {
    let t = &lab.topo;
    if !t.security_groups && t.router.is_none() {
        return Ok(None);
    }
    let mut text = String::new();
    if t.security_groups {
        text.push_str(&firewall(lab, node)?);
    }
    text.push_str(&router(lab, node)?);
    let path = file(lab, node);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    let what = match (t.security_groups, t.router.is_some()) {
        (true, true) => "security groups (neutron's OVS firewall tables 71-94) and the distributed router (tables 94, 60, 61)",
        (true, false) => "security groups (neutron's OVS firewall tables 71-94)",
        _ => "the distributed router (tables 94, 60, 61)",
    };
    lab.sh
        .note(&format!("br-int's rules, {what}, are in {}", path.display()));
    Ok(Some(path))
}

/// Where `node`'s br-int rules are kept.
pub fn file(lab: &Lab, node: &str) -> PathBuf {
    lab.node_dir(node).join("br-int.flows")
}
