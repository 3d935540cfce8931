//! Security groups as neutron's OVS firewall driver writes them on br-int:
//! each port gets an id (`reg5`) and its network's conntrack zone (`reg6`);
//! egress goes through tables 71 (anti-spoofing, ARP) -> `ct(table=72)` ->
//! 72 (the group's egress rules) -> 73 (commit, or hand to a local port's
//! ingress) -> 94 (NORMAL); ingress through 81 -> `ct(table=82)` -> 82 (the
//! group's ingress rules) -> 92 (commit, deliver); 93 drops. Replies and the
//! ICMP errors of allowed connections pass; what no rule allows is dropped.
//! `fixtures/neutron-sg.flows` is this generator's output for one port.

use std::net::Ipv4Addr;

/// Traffic direction, seen from the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Into the port's VM.
    Ingress,
    /// Out of it.
    Egress,
}

/// The protocol a rule allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// Any IPv4.
    Any,
    /// TCP, optionally to a destination port range.
    Tcp(Option<(u16, u16)>),
    /// UDP, optionally to a destination port range.
    Udp(Option<(u16, u16)>),
    /// ICMP.
    Icmp,
}

/// One rule of a security group (neutron's `security_group_rule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Which way.
    pub direction: Direction,
    /// What.
    pub proto: Proto,
    /// From (ingress) or to (egress) this prefix only.
    pub remote: Option<(Ipv4Addr, u8)>,
}

/// A port with its security group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Port name on br-int.
    pub name: String,
    /// Its id in `reg5` (neutron uses the OpenFlow port number).
    pub id: u32,
    /// Its MAC.
    pub mac: [u8; 6],
    /// Its fixed IP.
    pub ip: Ipv4Addr,
    /// Its network's conntrack zone (`reg6`).
    pub zone: u16,
    /// Its network's local VLAN on br-int, if tagged (ingress strips it).
    pub vlan: Option<u16>,
    /// The group's rules.
    pub rules: Vec<Rule>,
}

/// The default group: all egress, nothing in (neutron's `default` group
/// without its same-group rule).
pub fn allow_egress() -> Vec<Rule> {
    vec![Rule {
        direction: Direction::Egress,
        proto: Proto::Any,
        remote: None,
    }]
}

fn mac(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// `tp_dst` matches covering `lo..=hi` (neutron's port-range masks).
fn port_masks(lo: u16, hi: u16) -> Vec<String> {
    let (mut lo, hi) = (lo as u32, hi as u32);
    let mut out = Vec::new();
    while lo <= hi {
        // The largest aligned block starting at lo that fits.
        let mut size = if lo == 0 { 1 << 16 } else { lo & lo.wrapping_neg() };
        while lo + size - 1 > hi {
            size /= 2;
        }
        if size == 1 {
            out.push(format!("tp_dst={lo}"));
        } else {
            out.push(format!("tp_dst={lo:#x}/{:#x}", 0xffff & !(size - 1)));
        }
        lo += size;
    }
    out
}

/// The match parts of a rule (`tcp,tp_dst=22`, `icmp`, `ip,nw_src=...`),
/// one per port-range block.
fn rule_matches(r: &Rule) -> Vec<String> {
    let (name, range) = match r.proto {
        Proto::Any => ("ip", None),
        Proto::Tcp(p) => ("tcp", p),
        Proto::Udp(p) => ("udp", p),
        Proto::Icmp => ("icmp", None),
    };
    let remote = r.remote.map(|(a, len)| {
        let f = match r.direction {
            Direction::Ingress => "nw_src",
            Direction::Egress => "nw_dst",
        };
        format!(",{f}={a}/{len}")
    });
    let remote = remote.unwrap_or_default();
    match range {
        None | Some((0, 65535)) => vec![format!("{name}{remote}")],
        Some((lo, hi)) => port_masks(lo, hi)
            .into_iter()
            .map(|p| format!("{name}{remote},{p}"))
            .collect(),
    }
}

/// br-int's rules for `ports` (the whole bridge: table 0 ends in NORMAL for
/// traffic of no firewalled port).
pub fn firewall_flows(ports: &[Port]) -> String {
    firewall_flows_with(ports, None)
}

/// [`firewall_flows`], and with `egress_direct = Some(uplink)` neutron's
/// `explicitly_egress_direct`: accepted unicast egress to a MAC that is not
/// one of `ports` goes straight out of `uplink` (`patch-tun`) tagged with
/// the port's VLAN instead of through NORMAL. NORMAL never learns the remote
/// MACs (their traffic enters the ports through the ingress tables, not
/// NORMAL), so without it every packet to another node is flooded to the
/// network's local ports as unknown unicast. `ports` must then hold every
/// VM port of the bridge.
pub fn firewall_flows_with(ports: &[Port], egress_direct: Option<&str>) -> String {
    let mut s = String::new();
    let mut w = |line: String| {
        s.push_str(&line);
        s.push('\n');
    };
    for p in ports {
        let regs = format!(
            "load:{:#x}->NXM_NX_REG5[],load:{:#x}->NXM_NX_REG6[]",
            p.id, p.zone
        );
        let (m, ip, id, name) = (mac(&p.mac), p.ip, p.id, &p.name);
        w(format!(
            "table=0,priority=100,in_port={name},actions={regs},resubmit(,71)"
        ));
        match p.vlan {
            Some(v) => w(format!(
                "table=0,priority=90,dl_vlan={v},dl_dst={m},actions={regs},strip_vlan,resubmit(,81)"
            )),
            None => w(format!(
                "table=0,priority=90,dl_dst={m},actions={regs},resubmit(,81)"
            )),
        }
        // Egress: anti-spoofing, then conntrack.
        w(format!(
            "table=71,priority=95,arp,reg5={id:#x},in_port={name},dl_src={m},arp_spa={ip},actions=resubmit(,94)"
        ));
        w(format!("table=71,priority=65,ct_state=-trk,ip,reg5={id:#x},in_port={name},dl_src={m},nw_src={ip},actions=ct(table=72,zone=NXM_NX_REG6[0..15])"));
        w(format!(
            "table=71,priority=10,reg5={id:#x},in_port={name},actions=resubmit(,93)"
        ));
        w(format!(
            "table=72,priority=77,ct_state=+est-rel-rpl,ip,reg5={id:#x},actions=resubmit(,73)"
        ));
        for r in p.rules.iter().filter(|r| r.direction == Direction::Egress) {
            for m in rule_matches(r) {
                w(format!(
                    "table=72,priority=77,ct_state=+new-est,{m},reg5={id:#x},actions=resubmit(,73)"
                ));
            }
        }
        common_state_rules(&mut w, 72, p, "resubmit(,94)");
        w(format!(
            "table=73,priority=90,ct_state=+new-est,ip,reg5={id:#x},actions=ct(commit,zone=NXM_NX_REG6[0..15]),resubmit(,94)"
        ));
        w(format!("table=73,priority=80,reg5={id:#x},actions=resubmit(,94)"));
        // Ingress: ARP straight in, the rest through conntrack.
        w(format!(
            "table=81,priority=100,arp,reg5={id:#x},actions=output:{name}"
        ));
        w(format!(
            "table=81,priority=90,ct_state=-trk,ip,reg5={id:#x},actions=ct(table=82,zone=NXM_NX_REG6[0..15])"
        ));
        w(format!(
            "table=81,priority=80,ct_state=+trk,reg5={id:#x},actions=resubmit(,82)"
        ));
        w(format!("table=81,priority=10,reg5={id:#x},actions=resubmit(,93)"));
        for r in p.rules.iter().filter(|r| r.direction == Direction::Ingress) {
            for m in rule_matches(r) {
                w(format!(
                    "table=82,priority=77,ct_state=+new-est,{m},reg5={id:#x},actions=resubmit(,92)"
                ));
            }
        }
        common_state_rules(&mut w, 82, p, &format!("output:{name}"));
        w(format!(
            "table=82,priority=45,ct_state=+est-rel-rpl,ct_zone={},ct_mark=0,reg5={id:#x},actions=output:{name}",
            p.zone
        ));
        w(format!(
            "table=82,priority=40,ct_state=-est,reg5={id:#x},actions=resubmit(,93)"
        ));
        w(format!(
            "table=92,priority=10,ip,reg5={id:#x},actions=ct(commit,zone=NXM_NX_REG6[0..15]),output:{name}"
        ));
    }
    // Traffic between two firewalled ports of one network goes through the
    // destination's ingress rules too (as neutron's table 73 does).
    for dst in ports {
        w(format!(
            "table=73,priority=100,reg6={:#x},dl_dst={},actions=load:{:#x}->NXM_NX_REG5[],resubmit(,81)",
            dst.zone,
            mac(&dst.mac),
            dst.id
        ));
    }
    if let Some(uplink) = egress_direct {
        let mut zones: Vec<(u16, u16)> = ports.iter().filter_map(|p| p.vlan.map(|v| (p.zone, v))).collect();
        zones.sort_unstable();
        zones.dedup();
        // Local ports first (ARP replies and other non-IP unicast; IP to
        // them went through table 73 into their ingress rules).
        for p in ports {
            w(format!(
                "table=94,priority=12,reg6={:#x},dl_dst={},actions=output:{}",
                p.zone,
                mac(&p.mac),
                p.name
            ));
        }
        for (zone, vlan) in zones {
            w(format!(
                "table=94,priority=10,reg6={zone:#x},dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=mod_vlan_vid:{vlan},output:{uplink}"
            ));
        }
    }
    w("table=0,priority=0,actions=NORMAL".into());
    w("table=93,priority=0,actions=drop".into());
    w("table=94,priority=0,actions=NORMAL".into());
    s
}

/// What both directions share: invalid and marked connections drop,
/// replies and related traffic of accepted connections pass (`pass`), the
/// rest that is not established drops.
fn common_state_rules(w: &mut impl FnMut(String), table: u8, p: &Port, pass: &str) {
    let (id, zone) = (p.id, p.zone);
    w(format!(
        "table={table},priority=50,ct_state=+inv+trk,reg5={id:#x},actions=resubmit(,93)"
    ));
    w(format!(
        "table={table},priority=50,ct_mark=0x1,reg5={id:#x},actions=resubmit(,93)"
    ));
    w(format!(
        "table={table},priority=50,ct_state=+est-rel+rpl,ct_zone={zone},ct_mark=0,reg5={id:#x},actions={pass}"
    ));
    w(format!(
        "table={table},priority=50,ct_state=-new-est+rel-inv,ct_zone={zone},ct_mark=0,reg5={id:#x},actions={pass}"
    ));
    if table == 72 {
        w(format!(
            "table=72,priority=40,ct_state=-est,ip,reg5={id:#x},actions=resubmit(,93)"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_become_aligned_masks() {
        assert_eq!(port_masks(22, 22), ["tp_dst=22"]);
        assert_eq!(port_masks(8000, 8003), ["tp_dst=0x1f40/0xfffc"]);
        assert_eq!(port_masks(1, 3), ["tp_dst=1", "tp_dst=0x2/0xfffe"]);
        let all = Rule {
            direction: Direction::Ingress,
            proto: Proto::Tcp(Some((0, 65535))),
            remote: Some(([198, 18, 0, 0].into(), 15)),
        };
        assert_eq!(rule_matches(&all), ["tcp,nw_src=198.18.0.0/15"]);
    }
}
