//! `rvs-lab test`: what a lab must do, checked with ping and iperf3: the
//! underlay's kernel side answers, VMs of one tenant talk (across nodes and on
//! one node), VMs of different tenants do not, full-size frames cross the
//! overlay, and TCP passes; behind security groups, a closed port drops;
//! across a router, traffic is routed with the TTL one lower, replies and
//! ICMP errors come back.

use crate::lab::Lab;
use crate::probe::{iperf, ping};
use crate::topology::{SwitchKind, Vm};
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
            if let Some(c) = &t.controller {
                // Its rules are the controller's, not saved: the restarted
                // daemon dials it and gets them again.
                let r = crate::controller::wait_programmed(lab);
                lab.sh.check()?;
                add(
                    format!(
                        "{}'s restarted daemon dialed the controller ({}) and got br-int's and br-tun's rules again",
                        b.name, c.ip
                    ),
                    r.is_ok(),
                    match r {
                        Ok(()) => "br-tun has the agent's learn rule".into(),
                        Err(e) => format!("{e:#}"),
                    },
                );
            }
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
            let (ok, seen) = closed_port(lab, a, b)?;
            add(
                format!(
                    "{} -> {} TCP port 81, closed by the security group: dropped",
                    a.name, b.name
                ),
                ok,
                seen,
            );
        }
    }
    if t.nodes.len() > 2 {
        // Over the underlay switch, each node to each other one.
        for (a, b) in t.cross_node_pairs() {
            let (ok, seen) = reach(lab, &a.name, &b.ip.to_string(), &[])?;
            add(
                format!(
                    "{} ({}) -> {} ({}), {}",
                    a.name, a.node, b.name, b.node, a.network
                ),
                ok,
                seen,
            );
        }
    }
    if let Some((a, b)) = t.routed_pair() {
        routed(lab, a, b, &mut add)?;
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
        // Even with a router between them, one tenant's network does not
        // reach into the other's: the router answers for its own address only.
        // Give `a` an on-link route to `b`, so the ping really asks the switch
        // (ARP on a's tenant network) instead of failing for want of a route.
        let dev = lab.vm_if(&a.name);
        let host = format!("{}/32", b.ip);
        lab.exec(&a.name, &["ip", "route", "add", &host, "dev", &dev])?;
        let s = ping(lab, &a.name, &b.ip.to_string(), 3, 0.2, 1)?;
        lab.exec(&a.name, &["ip", "route", "del", &host, "dev", &dev])?;
        add(
            format!(
                "{} -> {} on-link must fail ({} vs {}: different networks, no router on the way)",
                a.name, b.name, a.network, b.network
            ),
            s.received == 0 && s.sent > 0,
            format!("{} of {} answered", s.received, s.sent),
        );
    }
    Ok(checks)
}

/// Run a bash `script` in VM `vm`: did it exit 0, and `yes` or `no` to say so.
fn script_check(lab: &Lab, vm: &Vm, script: &str, yes: &str, no: &str) -> Result<(bool, String)> {
    let ok = lab.probe(&vm.name, &["bash", "-c", script]);
    lab.sh.check()?;
    Ok((ok, if ok { yes } else { no }.to_string()))
}

/// A port the group does not open: its SYN is dropped, so the connect times
/// out (without the group, b's kernel answers with a RST at once).
fn closed_port(lab: &Lab, a: &Vm, b: &Vm) -> Result<(bool, String)> {
    let script = format!(
        "timeout 2 bash -c 'exec 3<>/dev/tcp/{}/81'; test $? -eq 124",
        b.ip
    );
    script_check(
        lab,
        a,
        &script,
        "the connect timed out (no RST came back)",
        "answered or refused",
    )
}

/// The TTL of the replies `ping` printed (`ttl=63`), if any.
fn reply_ttl(ping_output: &str) -> Option<u8> {
    ping_output
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ttl=")?.parse().ok())
}

/// Checks across the lab's router, from `a` to `b` (different networks,
/// different nodes): ping with the TTL one lower than on-network, TCP
/// through both security groups, an ICMP error coming back as related,
/// a closed port dropped.
fn routed(lab: &Lab, a: &Vm, b: &Vm, add: &mut impl FnMut(String, bool, String)) -> Result<()> {
    let t = &lab.topo;
    let hop = format!("{} -> {} (across the router)", a.name, b.name);
    let out = lab
        .exec(
            &a.name,
            &["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", &b.ip.to_string()],
        )
        .unwrap_or_default();
    lab.sh.check()?;
    let routed_ttl = reply_ttl(&out);
    add(
        format!("{hop}: ping"),
        routed_ttl.is_some(),
        routed_ttl.map_or("no reply".into(), |t| format!("replies, ttl={t}")),
    );
    if let Some(peer) = t.vms.iter().find(|v| v.network == a.network && v.name != a.name) {
        let out = lab
            .exec(
                &a.name,
                &["ping", "-n", "-c", "1", "-W", "2", &peer.ip.to_string()],
            )
            .unwrap_or_default();
        lab.sh.check()?;
        let direct = reply_ttl(&out);
        let ok = matches!((direct, routed_ttl), (Some(d), Some(r)) if r + 1 == d);
        add(
            format!(
                "TTL one lower per router hop ({} on {}'s network vs {})",
                peer.name, a.name, b.name
            ),
            ok,
            format!(
                "ttl={} on-network, ttl={} routed",
                direct.map_or("-".into(), |t| t.to_string()),
                routed_ttl.map_or("-".into(), |t| t.to_string())
            ),
        );
    }
    // Nothing listens on 22: the SYN crossing both groups is answered by b's
    // kernel with a RST, which comes back as the connection's reply.
    let script = format!(
        "timeout 2 bash -c 'exec 3<>/dev/tcp/{}/22' 2>/dev/null; test $? -eq 1",
        b.ip
    );
    let (ok, seen) = script_check(
        lab,
        a,
        &script,
        "refused at once by the far end's kernel",
        "timed out or connected",
    )?;
    add(
        format!("{hop}: TCP port 22, open in the group: the SYN passes, the RST comes back"),
        ok,
        seen,
    );
    if t.security_groups {
        // UDP to the open discard port, where nothing listens: b's kernel
        // answers "port unreachable", related to the flow; a connected UDP
        // socket reports it on its next send.
        let script = format!(
            "exec 3<>/dev/udp/{}/{}; for i in 1 2 3; do echo x >&3 2>/dev/null; sleep 0.5; \
             out=$( {{ echo x >&3; }} 2>&1 ); case \"$out\" in *refused*) exit 0;; esac; done; exit 1",
            b.ip,
            crate::br_int::SG_UDP_IN
        );
        let (ok, seen) = script_check(lab, a, &script, "port unreachable reported", "no error came back")?;
        add(
            format!("{hop}: UDP to a port nothing listens on: the ICMP error comes back (related)"),
            ok,
            seen,
        );
        let (ok, seen) = closed_port(lab, a, b)?;
        add(
            format!("{hop}: TCP port 81, closed by the security group: dropped"),
            ok,
            seen,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reply_ttls_are_read_from_ping() {
        let out = "64 bytes from 198.19.2.14: icmp_seq=1 ttl=63 time=0.32 ms\n";
        assert_eq!(super::reply_ttl(out), Some(63));
        assert_eq!(super::reply_ttl("1 packets transmitted, 0 received"), None);
    }
}
