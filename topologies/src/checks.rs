//! `rvs-lab test`: what a lab must do, checked with ping and iperf3: the
//! underlay's kernel side answers, VMs of one tenant talk (across nodes and on
//! one node), VMs of different tenants do not, full-size frames cross the
//! overlay, and TCP passes; behind security groups, a closed port drops.

use crate::lab::Lab;
use crate::probe::{iperf, ping};
use crate::topology::SwitchKind;
use anyhow::Result;

/// One check and its outcome.
#[derive(Clone, Debug)]
pub struct Check {
    /// What was checked.
    pub what: String,
    /// Did the lab do what it should?
    pub passed: bool,
    /// What was seen.
    pub seen: String,
}

fn reach(lab: &Lab, from: &str, to: &str, extra: &[&str]) -> Result<(bool, String)> {
    lab.sh.check()?;
    let mut argv = vec!["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2"];
    argv.extend_from_slice(extra);
    argv.push(to);
    let ok = lab.probe(from, &argv);
    Ok((ok, if ok { "replies".into() } else { "no reply".into() }))
}

/// Run every check; `iperf_secs` long TCP test. On an rvs lab one check kills
/// and restarts a daemon, on an OVS lab one kills ovs-vswitchd and restarts
/// it as an operator would (the lab is as before afterwards).
pub fn run(lab: &mut Lab, iperf_secs: u32) -> Result<Vec<Check>> {
    let t = lab.topo.clone();
    let mut checks = Vec::new();
    let mut add = |what: String, passed: bool, seen: String| {
        println!("{} {what}: {seen}", if passed { "ok  " } else { "FAIL" });
        checks.push(Check { what, passed, seen });
    };
    if let [a, b, ..] = &t.nodes[..] {
        let (ok, seen) = reach(lab, &a.name, &b.underlay_ip.to_string(), &[])?;
        add(
            format!(
                "management: {} pings {} ({}'s kernel)",
                a.name, b.underlay_ip, b.name
            ),
            ok,
            seen,
        );
        if let (SwitchKind::Rvs, Some(v)) = (t.switch, b.vtep_ip) {
            let (ok, seen) = reach(lab, &a.name, &v.to_string(), &[])?;
            add(
                format!(
                    "{} pings {v}, {}'s tunnel endpoint (answered by rvs)",
                    a.name, b.name
                ),
                ok,
                seen,
            );
            // Whatever rvs does: with its daemon dead, the kernel still has
            // the link (the XDP program went with the process).
            lab.kill_switch(&b.name)?;
            let r = reach(lab, &a.name, &b.underlay_ip.to_string(), &[]);
            lab.restart_switch(&b.name)?;
            let (ok, seen) = r?;
            add(
                format!(
                    "management with {}'s rvs daemon killed: {} pings {}",
                    b.name, a.name, b.underlay_ip
                ),
                ok,
                seen,
            );
        }
    }
    if let Some((a, b)) = t.cross_node_pair() {
        let (ok, seen) = reach(lab, &a.name, &b.ip.to_string(), &[])?;
        add(
            format!("{} -> {} ({}, across nodes)", a.name, b.name, a.network),
            ok,
            seen,
        );
        let size = (t.vm_mtu - 28).to_string();
        let (ok, seen) = reach(lab, &a.name, &b.ip.to_string(), &["-M", "do", "-s", &size])?;
        add(
            format!(
                "{} -> {} with {}-byte packets, don't fragment",
                a.name, b.name, t.vm_mtu
            ),
            ok,
            seen,
        );
        let r = iperf(lab, &a.name, &b.name, iperf_secs);
        lab.sh.check()?;
        let (ok, seen) = match r {
            Ok(r) => (
                r.gbps > 0.0,
                format!("{:.2} Gbit/s, {} retransmits", r.gbps, r.retransmits),
            ),
            Err(e) => (false, format!("{e:#}")),
        };
        add(
            format!("iperf3 TCP {} -> {} for {iperf_secs} s", a.name, b.name),
            ok,
            seen,
        );
        if t.security_groups {
            // A port the group does not open: its SYN is dropped, so the
            // connect times out (without the group, b's kernel answers
            // with a RST at once).
            let script = format!(
                "timeout 2 bash -c 'exec 3<>/dev/tcp/{}/81'; test $? -eq 124",
                b.ip
            );
            let ok = lab.probe(&a.name, &["bash", "-c", &script]);
            lab.sh.check()?;
            add(
                format!(
                    "{} -> {} TCP port 81, closed by the security group: dropped",
                    a.name, b.name
                ),
                ok,
                if ok {
                    "the connect timed out (no RST came back)".into()
                } else {
                    "answered or refused".into()
                },
            );
        }
    }
    if let (SwitchKind::Ovs, Some((a, b))) = (t.switch, t.cross_node_pair()) {
        // OVS keeps bridges and ports in ovsdb-server but its OpenFlow rules
        // only in ovs-vswitchd: a restart needs the agent to load them again.
        let node = b.node.clone();
        lab.kill_switch(&node)?;
        lab.restart_switch(&node)?;
        let kept = crate::fault::rules_of(lab, &node)?.unwrap_or_default().len();
        lab.resync_switch(&node)?;
        let (ok, seen) = reach(lab, &a.name, &b.ip.to_string(), &[])?;
        add(
            format!(
                "ovs-vswitchd on {node} killed and restarted ({kept} rules left), its rules re-added: {} -> {}",
                a.name, b.name
            ),
            ok,
            seen,
        );
    }
    if let Some((a, b)) = t.same_node_pair() {
        let (ok, seen) = reach(lab, &a.name, &b.ip.to_string(), &[])?;
        add(
            format!("{} -> {} ({}, same node)", a.name, b.name, a.network),
            ok,
            seen,
        );
    }
    if let Some((a, b)) = t.cross_tenant_pair() {
        // Give `a` an on-link route to `b`, so the ping really asks the switch
        // (ARP on a's tenant network) instead of failing for want of a route.
        let dev = lab.vm_if(&a.name);
        let host = format!("{}/32", b.ip);
        lab.exec(&a.name, &["ip", "route", "add", &host, "dev", &dev])?;
        let s = ping(lab, &a.name, &b.ip.to_string(), 3, 0.2, 1)?;
        lab.exec(&a.name, &["ip", "route", "del", &host, "dev", &dev])?;
        add(
            format!(
                "{} -> {} must fail ({} vs {}: different tenants)",
                a.name, b.name, a.network, b.network
            ),
            s.received == 0 && s.sent > 0,
            format!("{} of {} answered", s.received, s.sent),
        );
    }
    Ok(checks)
}
