//! The standard neutron layout: `br-int` (VM ports with local VLAN tags,
//! NORMAL), `br-tun` (Geneve tunnels, neutron's table layout) and `br-ex` (the
//! underlay), joined by patch ports `patch-tun`/`patch-int` and
//! `int-br-ex`/`phy-br-ex`.

use crate::bridge::{GeneveOptions, PortType, TunnelKey};
use crate::switch::{Switch, SwitchError, TunnelRoute};
use std::fmt::Write;
use std::net::Ipv4Addr;

/// br-tun's rules as shipped (`fixtures/neutron-br-tun.flows`): two tunnels
/// `gnv1`, `gnv2`; VNI 5001 <-> VLAN 1, VNI 5002 <-> VLAN 2.
pub const BR_TUN_FIXTURE: &str = include_str!("../fixtures/neutron-br-tun.flows");

/// A tenant network: its VNI on the wire and its VLAN inside br-int.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantNet {
    /// Geneve VNI.
    pub vni: u32,
    /// Local VLAN on br-int.
    pub vlan: u16,
}

/// A remote node reached through a tunnel port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// Tunnel port name on br-tun.
    pub port: String,
    /// The remote endpoint.
    pub ip: Ipv4Addr,
    /// Its MAC on the underlay if fixed; `None`: the VTEP resolves it by ARP.
    pub mac: Option<[u8; 6]>,
}

/// What a node needs to know about itself.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Name of the underlay port on br-ex.
    pub underlay_port: String,
    /// Its device type (`afxdp`, `afpacket`, `memory`).
    pub underlay_kind: String,
    /// Our tunnel endpoint address.
    pub local_ip: Ipv4Addr,
    /// Our MAC on the underlay.
    pub local_mac: [u8; 6],
    /// Other nodes.
    pub remotes: Vec<Remote>,
    /// Tenant networks.
    pub nets: Vec<TenantNet>,
}

/// br-tun's rules for these tunnels and networks, in the fixture's layout.
pub fn br_tun_flows(tunnels: &[&str], nets: &[TenantNet]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "table=0,priority=1,in_port=patch-int,actions=resubmit(,2)");
    for t in tunnels {
        let _ = writeln!(s, "table=0,priority=1,in_port={t},actions=resubmit(,4)");
    }
    let _ = writeln!(s, "table=0,priority=0,actions=drop");
    let _ = writeln!(
        s,
        "table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,20)"
    );
    let _ = writeln!(
        s,
        "table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,22)"
    );
    for n in nets {
        let _ = writeln!(
            s,
            "table=4,priority=1,tun_id={:#x},actions=mod_vlan_vid:{},resubmit(,10)",
            n.vni, n.vlan
        );
    }
    let _ = writeln!(s, "table=4,priority=0,actions=drop");
    let _ = writeln!(s, "table=10,priority=1,actions=learn(cookie=0x1,table=20,priority=1,hard_timeout=300,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:patch-int");
    let _ = writeln!(s, "table=20,priority=0,actions=resubmit(,22)");
    let outs: String = tunnels.iter().map(|t| format!(",output:{t}")).collect();
    for n in nets {
        let _ = writeln!(
            s,
            "table=22,priority=1,dl_vlan={},actions=strip_vlan,load:{:#x}->NXM_NX_TUN_ID[]{outs}",
            n.vlan, n.vni
        );
    }
    let _ = writeln!(s, "table=22,priority=0,actions=drop");
    s
}

/// Build br-int, br-tun and br-ex for a node. VM ports are added afterwards on
/// br-int with `tag` = the network's local VLAN.
pub fn build_node(sw: &mut Switch, cfg: &NodeConfig) -> Result<(), SwitchError> {
    for br in ["br-int", "br-tun", "br-ex"] {
        sw.add_bridge(br)?;
    }
    let patch = |peer: &str| PortType::Patch { peer: peer.into() };
    sw.add_port("br-int", "patch-tun", patch("patch-int"), None)?;
    sw.add_port("br-tun", "patch-int", patch("patch-tun"), None)?;
    sw.add_port("br-int", "int-br-ex", patch("phy-br-ex"), None)?;
    sw.add_port("br-ex", "phy-br-ex", patch("int-br-ex"), None)?;
    sw.add_port(
        "br-ex",
        &cfg.underlay_port,
        PortType::System {
            kind: cfg.underlay_kind.clone(),
        },
        None,
    )?;
    for r in &cfg.remotes {
        let opts = GeneveOptions {
            remote_ip: r.ip,
            local_ip: Some(cfg.local_ip),
            key: TunnelKey::Flow,
        };
        sw.add_port("br-tun", &r.port, PortType::Geneve(opts), None)?;
    }
    let underlay_dp = sw
        .find_port(&cfg.underlay_port)
        .and_then(|(_, p)| p.dp_port)
        .expect("just added");
    sw.add_vtep(&cfg.underlay_port, cfg.local_ip, cfg.local_mac)?;
    for r in &cfg.remotes {
        sw.set_route(
            r.ip,
            TunnelRoute {
                underlay_port: underlay_dp,
                local_ip: cfg.local_ip,
                local_mac: cfg.local_mac,
                remote_mac: r.mac,
                next_hop: r.ip,
            },
        );
    }
    // As neutron does until provider networks are mapped: nothing crosses the
    // br-int <-> br-ex patch.
    sw.add_flows("br-int", "priority=2,in_port=int-br-ex,actions=drop")?;
    sw.add_flows("br-ex", "priority=2,in_port=phy-br-ex,actions=drop")?;
    let tunnels: Vec<&str> = cfg.remotes.iter().map(|r| r.port.as_str()).collect();
    sw.replace_flows("br-tun", &br_tun_flows(&tunnels, &cfg.nets))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ofp::parse_flows;

    #[test]
    fn generated_rules_equal_the_shipped_fixture() {
        let nets = [TenantNet { vni: 5001, vlan: 1 }, TenantNet { vni: 5002, vlan: 2 }];
        let ports: std::collections::BTreeMap<String, u32> = [("patch-int", 1), ("gnv1", 2), ("gnv2", 3)]
            .into_iter()
            .map(|(n, p)| (n.to_string(), p))
            .collect();
        let fixture = parse_flows(BR_TUN_FIXTURE, &ports).unwrap();
        let generated = parse_flows(&br_tun_flows(&["gnv1", "gnv2"], &nets), &ports).unwrap();
        assert_eq!(fixture, generated);
        assert_eq!(fixture.len(), 14);
    }
}
