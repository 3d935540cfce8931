//! Static tunnel routes, as OVS's `ovs-appctl ovs/route/add IP/LEN BRIDGE
//! [GW]`: tunnel endpoints inside a prefix are reached through the VTEP on a
//! bridge's underlay port, directly or through a gateway whose MAC is then the
//! one asked for (ARP) or fixed (`tnl-arp-set`). They are configuration:
//! saved, shown by `tnl-route-show`, and the longest prefix wins.

use super::{Switch, SwitchError, TunnelRoute};
use std::net::Ipv4Addr;

/// Where a static route sends tunnel traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    /// The bridge whose VTEP sends it.
    pub bridge: String,
    /// Gateway (next hop); `None`: the endpoints are on the underlay's link.
    pub gw: Option<Ipv4Addr>,
}

/// The network address of `ip/len`.
fn network(ip: Ipv4Addr, len: u8) -> Ipv4Addr {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    Ipv4Addr::from(u32::from(ip) & mask)
}

/// Parse `IP/LEN` (or a bare `IP`, a /32), as `ovs/route/add` takes it.
pub fn parse_prefix(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, len) = s.split_once('/').unwrap_or((s, "32"));
    let ip: Ipv4Addr = ip.parse().map_err(|_| format!("{s:?}: not IPv4ADDR/LEN"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| format!("{s:?}: the prefix length must be 0..32"))?;
    Ok((network(ip, len), len))
}

impl Switch {
    /// Route tunnel endpoints in `prefix/len` through the VTEP of `bridge`,
    /// via gateway `gw` when given. Replaces a route of the same prefix;
    /// cached flows are redone.
    pub fn add_tunnel_route(
        &mut self,
        prefix: Ipv4Addr,
        len: u8,
        bridge: &str,
        gw: Option<Ipv4Addr>,
    ) -> Result<(), SwitchError> {
        self.bridge(bridge)?;
        if len > 32 {
            return Err(SwitchError::Route(format!(
                "{prefix}/{len}: prefix length over 32"
            )));
        }
        let route = StaticRoute {
            bridge: bridge.to_string(),
            gw,
        };
        self.static_routes.insert((network(prefix, len), len), route);
        self.bump();
        Ok(())
    }

    /// Remove the static route of exactly `prefix/len`.
    pub fn del_tunnel_route(&mut self, prefix: Ipv4Addr, len: u8) -> Result<(), SwitchError> {
        let key = (network(prefix, len), len);
        if self.static_routes.remove(&key).is_none() {
            return Err(SwitchError::Route(format!("no static route {}/{}", key.0, key.1)));
        }
        self.bump();
        Ok(())
    }

    /// The route the longest static prefix holding `remote` gives: `None`
    /// when no static route holds it; `Some(None)` when one does but its
    /// bridge serves no VTEP (for `local`, when given), so there is no route
    /// (a static route is never silently bypassed).
    pub(super) fn static_route_to(
        &self,
        remote: Ipv4Addr,
        local: Option<Ipv4Addr>,
    ) -> Option<Option<TunnelRoute>> {
        let ((_, _), r) = self
            .static_routes
            .iter()
            .filter(|((p, l), _)| network(remote, *l) == *p)
            .max_by_key(|((_, l), _)| *l)?;
        let found = self.vteps_of(&r.bridge).into_iter().find_map(|dp| {
            let v = self.vteps.get(&dp)?;
            local.is_none_or(|l| l == v.ip).then_some(TunnelRoute {
                underlay_port: dp,
                local_ip: v.ip,
                local_mac: v.mac,
                remote_mac: None,
                next_hop: r.gw.unwrap_or(remote),
            })
        });
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::PortType;
    use std::collections::BTreeMap;

    fn with_vtep() -> (Switch, u32) {
        let mut sw = Switch::new();
        sw.add_bridge("br-ex").unwrap();
        sw.add_bridge("br-int").unwrap();
        let ty = PortType::System {
            kind: "memory".into(),
        };
        sw.add_port("br-ex", "eth1", ty, None).unwrap();
        let opts = BTreeMap::from([
            ("vtep_ip".to_string(), "198.18.0.1".to_string()),
            ("vtep_mac".to_string(), "02:aa:00:00:00:01".to_string()),
        ]);
        sw.set_port_options("eth1", opts).unwrap();
        let dp = sw.find_port("eth1").unwrap().1.dp_port.unwrap();
        (sw, dp)
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_the_gateway_is_the_next_hop() {
        let (mut sw, dp) = with_vtep();
        // Without routes: the VTEP's link, the endpoint itself is asked for.
        assert_eq!(
            sw.route_to(ip("198.19.9.9"), None).unwrap().next_hop,
            ip("198.19.9.9")
        );
        sw.add_tunnel_route(ip("198.19.0.0"), 16, "br-ex", Some(ip("198.18.0.254")))
            .unwrap();
        sw.add_tunnel_route(ip("198.19.9.0"), 24, "br-ex", None).unwrap();
        let r = sw.route_to(ip("198.19.1.1"), None).unwrap();
        assert_eq!((r.underlay_port, r.next_hop), (dp, ip("198.18.0.254")));
        assert_eq!(
            sw.route_to(ip("198.19.9.9"), None).unwrap().next_hop,
            ip("198.19.9.9")
        );
        // ARP asks for the gateway, not the endpoint.
        sw.add_port(
            "br-int",
            "gnv0",
            PortType::Geneve(crate::bridge::GeneveOptions {
                remote_ip: ip("198.19.1.1"),
                local_ip: None,
                key: crate::bridge::TunnelKey::Flow,
            }),
            None,
        )
        .unwrap();
        let asks = sw.resolve_tunnels(|_| true);
        assert_eq!(asks.len(), 1);
        assert_eq!(
            &asks[0].1[38..42],
            &[198, 18, 0, 254],
            "ARP target is the gateway"
        );
        // A route through a bridge without a VTEP: no route, not the default.
        sw.add_tunnel_route(ip("198.19.1.0"), 24, "br-int", None).unwrap();
        assert_eq!(sw.route_to(ip("198.19.1.1"), None), None);
        sw.del_tunnel_route(ip("198.19.1.7"), 24).unwrap();
        assert!(sw.route_to(ip("198.19.1.1"), None).is_some());
        assert!(sw.del_tunnel_route(ip("198.19.1.0"), 24).is_err());
        assert!(sw
            .add_tunnel_route(ip("198.19.1.0"), 24, "br-nope", None)
            .is_err());
    }

    #[test]
    fn prefixes_parse_as_ovs_writes_them() {
        assert_eq!(parse_prefix("198.19.1.7/24"), Ok((ip("198.19.1.0"), 24)));
        assert_eq!(parse_prefix("198.19.1.7"), Ok((ip("198.19.1.7"), 32)));
        assert!(parse_prefix("198.19.1.7/33").is_err());
        assert!(parse_prefix("fe80::1/64").is_err());
    }
}
