//! A distributed router on br-int, as OVN and neutron's DVR build one: every
//! node routes its own VMs' traffic in its own br-int, so a routed packet
//! crosses the overlay at most once, already in the destination network.
//!
//! It sits behind the security groups of [`crate::security_group`] (or in
//! front of plain NORMAL switching without them): a VM's packets reach table
//! 94 with its network in `reg6` (the network's local VLAN, also its
//! conntrack zone). There the router port answers ARP for its gateway address
//! and takes IPv4 sent to its MAC: table 60 routes by destination prefix
//! (longest first: TTL one lower, the outgoing router port's MAC as source,
//! the outgoing network in `reg6`), table 61 rewrites the destination MAC from
//! the static bindings (OVN's MAC_Binding) and delivers: to a local VM through
//! its ingress security group (after `ct_clear`: the packet was tracked in
//! the source network's zone), or out of `patch-tun` tagged with the
//! destination network's local VLAN. An expired TTL, an unrouted destination
//! and an unknown host are dropped.

use std::net::Ipv4Addr;

/// Table where routing starts.
pub const ROUTE_TABLE: u8 = 60;
/// Table of the next hops (static MAC bindings) and delivery.
pub const DELIVER_TABLE: u8 = 61;

/// One router port: a network the router joins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterPort {
    /// The network's local VLAN on br-int (its `reg6` and conntrack zone).
    pub vlan: u16,
    /// The gateway address (the router's on this network).
    pub gateway: Ipv4Addr,
    /// The network's prefix length.
    pub prefix: u8,
    /// The router port's MAC.
    pub mac: [u8; 6],
}

impl RouterPort {
    fn network(&self) -> Ipv4Addr {
        let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
        Ipv4Addr::from(u32::from(self.gateway) & mask)
    }
}

/// Where a host the router delivers to is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attachment {
    /// On this node's br-int: `port`, with its security-group id (`reg5`)
    /// when it has one.
    Local {
        /// br-int port name.
        port: String,
        /// Security-group port id; `None`: no group, straight out.
        sg_id: Option<u32>,
    },
    /// On another node: out of this br-int port (`patch-tun`), tagged.
    Remote {
        /// br-int port towards the tunnels.
        via: String,
    },
}

/// A host on one of the router's networks (a static MAC binding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its MAC.
    pub mac: [u8; 6],
    /// Its network's local VLAN.
    pub vlan: u16,
    /// Where it is.
    pub at: Attachment,
}

fn mac(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// The router's rules on one node's br-int. `local_ports` are the node's VM
/// ports with their network's VLAN: without security groups (`firewall`
/// false) table 0 marks their packets with the network and sends them to
/// table 94, and the rules include the bridge's NORMAL defaults; with them,
/// [`crate::security_group::firewall_flows`] supplies those.
pub fn router_flows(
    ports: &[RouterPort],
    hosts: &[Host],
    local_ports: &[(String, u16)],
    firewall: bool,
) -> String {
    let mut s = String::new();
    let mut w = |line: String| {
        s.push_str(&line);
        s.push('\n');
    };
    if !firewall {
        for (port, vlan) in local_ports {
            w(format!(
                "table=0,priority=100,in_port={port},actions=load:{vlan:#x}->NXM_NX_REG6[],resubmit(,94)"
            ));
        }
    }
    for p in ports {
        let (m, gw, v) = (mac(&p.mac), p.gateway, p.vlan);
        let mac_hex = p.mac.iter().fold(0u64, |a, b| a << 8 | *b as u64);
        // The ARP responder: the request turned into the reply, back out.
        w(format!(
            "table=94,priority=100,arp,reg6={v:#x},arp_op=1,arp_tpa={gw},actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:{m},load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],load:{mac_hex:#x}->NXM_NX_ARP_SHA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:{:#x}->NXM_OF_ARP_SPA[],in_port",
            u32::from(gw)
        ));
        w(format!(
            "table=94,priority=90,ip,reg6={v:#x},dl_dst={m},actions=resubmit(,{ROUTE_TABLE})"
        ));
        w(format!(
            "table={ROUTE_TABLE},priority={},ip,nw_dst={}/{},actions=dec_ttl,mod_dl_src:{m},load:{v:#x}->NXM_NX_REG6[],resubmit(,{DELIVER_TABLE})",
            p.prefix as u32 + 1,
            p.network(),
            p.prefix
        ));
    }
    w(format!("table={ROUTE_TABLE},priority=0,actions=drop"));
    for h in hosts {
        let deliver = match &h.at {
            Attachment::Local {
                port: _,
                sg_id: Some(id),
            } => format!("ct_clear,load:{id:#x}->NXM_NX_REG5[],resubmit(,81)"),
            Attachment::Local { port, sg_id: None } => format!("output:{port}"),
            Attachment::Remote { via } => format!("mod_vlan_vid:{},output:{via}", h.vlan),
        };
        w(format!(
            "table={DELIVER_TABLE},priority=100,ip,reg6={:#x},nw_dst={},actions=mod_dl_dst:{},{deliver}",
            h.vlan,
            h.ip,
            mac(&h.mac)
        ));
    }
    w(format!("table={DELIVER_TABLE},priority=0,actions=drop"));
    if !firewall {
        w("table=0,priority=0,actions=NORMAL".into());
        w("table=94,priority=0,actions=NORMAL".into());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_come_from_gateways_and_prefixes() {
        let p = RouterPort {
            vlan: 1,
            gateway: Ipv4Addr::new(198, 19, 1, 1),
            prefix: 24,
            mac: [2, 0, 0, 0, 0, 1],
        };
        assert_eq!(p.network(), Ipv4Addr::new(198, 19, 1, 0));
        let all = RouterPort { prefix: 0, ..p };
        assert_eq!(all.network(), Ipv4Addr::UNSPECIFIED);
    }
}
