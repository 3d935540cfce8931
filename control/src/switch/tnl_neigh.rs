//! Fixed tunnel neighbours, as `ovs-appctl tnl/arp/set BRIDGE IP MAC`: the
//! next-hop MAC of a remote tunnel endpoint given by hand, per bridge, so that
//! tunnel output works (and traces) without ARP. They are configuration:
//! saved, and given again to every VTEP the bridge serves, also one created
//! after them.

use super::{Switch, SwitchError};
use rvs_dataplane::port::PortNo;
use std::net::Ipv4Addr;

impl Switch {
    /// The VTEPs (by underlay datapath port) on ports of `bridge`.
    pub(super) fn vteps_of(&self, bridge: &str) -> Vec<PortNo> {
        self.vteps
            .keys()
            .copied()
            .filter(|dp| self.dp_ports.get(dp).is_some_and(|(b, _)| b == bridge))
            .collect()
    }

    /// Fix the MAC of tunnel endpoint `ip` for the VTEPs of `bridge`. Cached
    /// flows that used another MAC for it are redone.
    pub fn set_tunnel_neighbor(
        &mut self,
        bridge: &str,
        ip: Ipv4Addr,
        mac: [u8; 6],
    ) -> Result<(), SwitchError> {
        self.bridge(bridge)?;
        let vteps = self.vteps_of(bridge);
        if vteps.is_empty() {
            return Err(SwitchError::BadPort {
                port: bridge.into(),
                reason: "serves no tunnel endpoint (add a port with options:vtep_ip=IP first)".into(),
            });
        }
        self.fixed_neigh
            .entry(bridge.to_string())
            .or_default()
            .insert(ip, mac);
        let now = self.now_ms();
        let mut changed = false;
        for dp in vteps {
            if let Some(v) = self.vteps.get_mut(&dp) {
                changed |= v.set_fixed(ip, mac, now);
            }
        }
        if changed {
            self.bump();
        }
        Ok(())
    }

    /// Forget a fixed tunnel neighbour of `bridge` (ARP resolves it again).
    pub fn del_tunnel_neighbor(&mut self, bridge: &str, ip: Ipv4Addr) -> Result<(), SwitchError> {
        self.bridge(bridge)?;
        let gone = self.fixed_neigh.get_mut(bridge).and_then(|m| m.remove(&ip));
        if gone.is_none() {
            return Err(SwitchError::BadPort {
                port: bridge.into(),
                reason: format!("has no fixed tunnel neighbour {ip}"),
            });
        }
        for dp in self.vteps_of(bridge) {
            if let Some(v) = self.vteps.get_mut(&dp) {
                v.remove_fixed(ip);
            }
        }
        self.bump();
        Ok(())
    }

    /// Give a VTEP just created on datapath port `dp` its bridge's fixed
    /// neighbours.
    pub(super) fn seed_fixed_neighbors(&mut self, dp: PortNo) {
        let Some((bridge, _)) = self.dp_ports.get(&dp) else {
            return;
        };
        let Some(fixed) = self.fixed_neigh.get(bridge) else {
            return;
        };
        let now = self.now_ms();
        if let Some(v) = self.vteps.get_mut(&dp) {
            for (ip, mac) in fixed {
                v.set_fixed(*ip, *mac, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::bridge::PortType;
    use crate::switch::Switch;
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;

    const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const MAC: [u8; 6] = [2, 0xaa, 0, 0, 0, 2];

    fn with_vtep() -> Switch {
        let mut sw = Switch::new();
        sw.add_bridge("br-ex").unwrap();
        let ty = PortType::System {
            kind: "memory".into(),
        };
        sw.add_port("br-ex", "eth1", ty, None).unwrap();
        let opts = BTreeMap::from([
            ("vtep_ip".to_string(), "198.18.0.1".to_string()),
            ("vtep_mac".to_string(), "02:aa:00:00:00:01".to_string()),
        ]);
        sw.set_port_options("eth1", opts).unwrap();
        sw
    }

    #[test]
    fn fixed_neighbours_resolve_and_survive_a_new_vtep() {
        let mut sw = with_vtep();
        assert!(
            sw.set_tunnel_neighbor("br-int", PEER, MAC).is_err(),
            "no such bridge"
        );
        let dp = sw.find_port("eth1").unwrap().1.dp_port.unwrap();
        sw.set_tunnel_neighbor("br-ex", PEER, MAC).unwrap();
        assert_eq!(sw.vteps[&dp].lookup(PEER, u64::MAX), Some(MAC));
        // Options set again make a new VTEP: it gets the fixed entry too.
        let opts = BTreeMap::from([
            ("vtep_ip".to_string(), "198.18.0.1".to_string()),
            ("vtep_mac".to_string(), "02:aa:00:00:00:01".to_string()),
        ]);
        sw.set_port_options("eth1", opts).unwrap();
        assert_eq!(sw.vteps[&dp].lookup(PEER, 0), Some(MAC));
        assert!(sw.resolve_tunnels(|_| true).is_empty());
        sw.del_tunnel_neighbor("br-ex", PEER).unwrap();
        assert_eq!(sw.vteps[&dp].lookup(PEER, 0), None);
        assert!(sw.del_tunnel_neighbor("br-ex", PEER).is_err());
    }

    #[test]
    fn a_bridge_without_a_vtep_is_refused() {
        let mut sw = Switch::new();
        sw.add_bridge("br0").unwrap();
        let e = sw.set_tunnel_neighbor("br0", PEER, MAC).unwrap_err().to_string();
        assert!(e.contains("vtep_ip"), "{e}");
    }
}
