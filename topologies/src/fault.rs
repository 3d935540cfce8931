//! The fault run: pings every 10 ms between two VMs across nodes, `kill -9`
//! the userspace process of the switch role on the first node (the rvs daemon,
//! which programs the kernel datapath or is the AF_XDP one; ovs-vswitchd, whose
//! userspace datapath dies with it; for the Linux bridge, the agent: nothing
//! in its datapath dies), restart it at once as its operators would (OVS: the
//! agent re-adds its rules), and see what the pings saw. Then a second kill
//! and a restart alone count which rules a restart keeps by itself.

use crate::lab::{now_ms, Lab};
use crate::shell::KillOnDrop;
use crate::topology::SwitchKind;
use crate::{ovs_node, rvs_node};
use anyhow::{Context, Result};
use serde::Serialize;
use std::io::Read;
use std::time::Duration;

/// Ping interval of the fault run.
pub const INTERVAL_MS: f64 = 10.0;

/// One ping of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// When it was answered or given up on, ms since the kill.
    pub t_ms: f64,
    /// Round trip (ms), `None`: lost.
    pub rtt_ms: Option<f64>,
}

/// What the fault run measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FaultResult {
    /// What was killed (`rvs daemon on n1`).
    pub killed: String,
    /// Pings sent and answered.
    pub sent: u64,
    /// Pings answered.
    pub received: u64,
    /// Longest time without a reply around the kill (ms).
    pub outage_ms: f64,
    /// How long the restart took (until the process served again and, for
    /// OVS, the agent had re-added its rules; ms).
    pub restart_ms: f64,
    /// What gives the switch its rules back after the restart.
    pub restored_by: String,
    /// OpenFlow rules before a kill -9 and right after a restart of the
    /// process alone, before any agent step (a second kill, after the timed
    /// run); `None`: the kernel holds the configuration.
    pub rules_kept: Option<(usize, usize)>,
    /// From the restart to the first reply after the kill (ms; 0 when the
    /// pings never stopped).
    pub recovery_ms: Option<f64>,
    /// The restarted process's configuration equals the one before the kill
    /// (rvs: `show` and every bridge's rules); `None` when nothing holds config.
    pub config_intact: Option<bool>,
    /// When the restart began, ms since the kill.
    pub restart_at_ms: f64,
    /// A TCP connection open across the kill (iperf3 at a modest rate):
    /// whether it lived through it, and its longest stall.
    pub stream: StreamAcross,
    /// Every ping.
    pub timeline: Vec<Sample>,
}

/// Rate of the TCP stream kept open across the kill: enough to see it
/// stall, not so much that it starves the pings of CPU.
pub const STREAM_RATE: &str = "100M";

/// What a TCP connection open across the kill saw.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StreamAcross {
    /// Data flowed again after the kill and the connection ended cleanly
    /// (neither reset nor stuck).
    pub survived: bool,
    /// Longest time no data moved (ms, in iperf3's 100 ms intervals).
    pub stall_ms: f64,
    /// What iperf3 said when the connection failed.
    pub error: Option<String>,
}

/// Read the stream's `iperf3 -J -i 0.1` output (`None`: nothing usable;
/// empty when the client was stopped for hanging) given the kill's time in
/// seconds since the stream started.
pub fn stream_across(json: &str, kill_at_s: f64) -> StreamAcross {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return StreamAcross {
            error: Some("the connection hung to the end (iperf3 stopped by timeout)".into()),
            ..Default::default()
        };
    };
    let error = v["error"].as_str().map(String::from);
    let intervals: Vec<(f64, f64, f64)> = v["intervals"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| {
                    let s = &i["sum"];
                    Some((s["start"].as_f64()?, s["end"].as_f64()?, s["bytes"].as_f64()?))
                })
                .collect()
        })
        .unwrap_or_default();
    // The longest run of empty intervals, and whether data moved after it
    // (and after the kill).
    let (mut stall, mut run, mut worst_end) = (0.0f64, 0.0, 0.0);
    for &(start, end, bytes) in &intervals {
        if bytes == 0.0 {
            run += end - start;
            if run > stall {
                (stall, worst_end) = (run, end);
            }
        } else {
            run = 0.0;
        }
    }
    let after = worst_end.max(kill_at_s);
    let flowed_after = intervals
        .iter()
        .any(|&(start, _, bytes)| start >= after && bytes > 0.0);
    StreamAcross {
        survived: error.is_none() && flowed_after,
        stall_ms: stall * 1000.0,
        error,
    }
}

/// Parse `ping -D -O` output into `(unix ms, seq, rtt)`; lost pings have no rtt.
pub fn parse_timeline(out: &str) -> Vec<(f64, u64, Option<f64>)> {
    out.lines()
        .filter_map(|l| {
            let ts: f64 = l.strip_prefix('[')?.split(']').next()?.parse().ok()?;
            let seq: u64 = l
                .split("icmp_seq=")
                .nth(1)?
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()?;
            let rtt = l
                .split("time=")
                .nth(1)
                .and_then(|t| t.split_whitespace().next())
                .and_then(|t| t.parse().ok());
            if rtt.is_none() && !l.contains("no answer") && !l.contains("Unreachable") {
                return None;
            }
            Some((ts * 1000.0, seq, rtt))
        })
        .collect()
}

/// The outage in a run of reply times (ms): the longest silence between two
/// replies after the last one before `kill_ms`, less one ping interval, and
/// the time the replies came back (`None`: they never did). No ping lost: no
/// outage (gaps are then jitter).
pub fn silence(replies: &[f64], kill_ms: f64, none_lost: bool) -> (f64, Option<f64>) {
    let from = replies.iter().rposition(|&t| t < kill_ms).unwrap_or(0);
    let mut worst: Option<(f64, f64)> = None;
    for w in replies[from..].windows(2) {
        let gap = w[1] - w[0];
        if worst.is_none_or(|(g, _)| gap > g) {
            worst = Some((gap, w[1]));
        }
    }
    match worst {
        _ if none_lost => (0.0, replies.iter().copied().find(|&t| t >= kill_ms)),
        Some((gap, back)) => ((gap - INTERVAL_MS).max(0.0), Some(back)),
        None => (f64::NAN, None),
    }
}

/// The rules of an `ovs-ofctl dump-flows`-style listing that are
/// configuration: without counters and ages, and without rules that have a
/// timeout (learned: runtime state, as in OVS).
pub fn configured_rules(dump: &str) -> Vec<String> {
    dump.lines()
        .filter(|l| l.contains("actions="))
        .filter(|l| !l.contains("hard_timeout=") && !l.contains("idle_timeout="))
        .map(|line| {
            line.split(", ")
                .filter(|f| {
                    !["duration=", "n_packets=", "n_bytes=", "idle_age=", "hard_age="]
                        .iter()
                        .any(|p| f.trim().starts_with(p))
                })
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect()
}

/// The OpenFlow rules of the switch of `node` (every bridge; `None`: the
/// Linux bridge, which has none).
pub fn rules_of(lab: &Lab, node: &str) -> Result<Option<Vec<String>>> {
    let dump = match lab.topo.switch {
        SwitchKind::Rvs => {
            let mut all = String::new();
            for br in ["br-int", "br-tun", "br-ex"] {
                all.push_str(&rvs_node::rvs(lab, node, &["dump-flows", br])?);
            }
            all
        }
        SwitchKind::Ovs => ovs_node::dump_rules(lab, node)?,
        SwitchKind::LinuxBridge => return Ok(None),
    };
    Ok(Some(configured_rules(&dump)))
}

/// What the switch of `node` is configured with (bridges, ports, rules), for
/// the before/after check; `None` when the kernel holds it all.
fn config_of(lab: &Lab, node: &str) -> Result<Option<String>> {
    let mut all = match lab.topo.switch {
        SwitchKind::Rvs => rvs_node::rvs(lab, node, &["show"])?,
        SwitchKind::Ovs => ovs_node::vsctl(lab, node, &["show"])?,
        SwitchKind::LinuxBridge => return Ok(None),
    };
    for r in rules_of(lab, node)?.unwrap_or_default() {
        all.push_str(&r);
        all.push('\n');
    }
    Ok(Some(all))
}

/// Rules of the switch of `node` before a `kill -9` and right after a
/// restart of its process alone (no agent step): what a restart keeps.
/// The lab is as before afterwards (the agent step runs last).
pub fn rules_kept(lab: &mut Lab, node: &str) -> Result<Option<(usize, usize)>> {
    let Some(before) = rules_of(lab, node)? else {
        return Ok(None);
    };
    lab.kill_switch(node)?;
    lab.restart_switch(node)?;
    let after = rules_of(lab, node)?.unwrap_or_default();
    lab.resync_switch(node)?;
    Ok(Some((before.len(), after.len())))
}

/// Run the fault test for `secs` seconds of pings from `from` to `to`; the kill
/// comes after `secs / 4`.
pub fn run(lab: &mut Lab, from: &str, to: &str, secs: f64) -> Result<FaultResult> {
    let node = lab.vm(from)?.node.clone();
    let to_ip = lab.vm(to)?.ip.to_string();
    let role = lab.switch_process(&node).0;
    let before = config_of(lab, &node)?;
    let deadline = format!("{}", secs.ceil() as u64);
    let interval = format!("{}", INTERVAL_MS / 1000.0);
    let ns = lab.ns(from);
    // The TCP stream runs 4 s longer than the pings, so a connection that
    // comes back late is seen coming back; `timeout` ends a stuck client.
    let _srv = crate::probe::iperf_server(lab, to)?;
    let (stream_secs, limit) = (
        format!("{}", secs.ceil() as u64 + 4),
        format!("{}", secs.ceil() as u64 + 15),
    );
    let mut stream = KillOnDrop(lab.sh.spawn(&[
        "ip",
        "netns",
        "exec",
        &ns,
        "timeout",
        &limit,
        "iperf3",
        "-c",
        &to_ip,
        "-t",
        &stream_secs,
        "-b",
        STREAM_RATE,
        "-i",
        "0.1",
        "-J",
    ])?);
    let stream_start = now_ms() as f64;
    let mut stream_out = stream.0.stdout.take().context("iperf3's output")?;
    let stream_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stream_out.read_to_string(&mut s);
        s
    });
    let mut ping = KillOnDrop(lab.sh.spawn(&[
        "ip", "netns", "exec", &ns, "ping", "-n", "-D", "-O", "-i", &interval, "-W", "1", "-w", &deadline,
        &to_ip,
    ])?);
    let mut stdout = ping.0.stdout.take().context("ping's output")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    std::thread::sleep(Duration::from_secs_f64(secs / 4.0));
    let kill_ms = lab.kill_switch(&node)? as f64;
    let restart_ms = now_ms() as f64;
    lab.restart_switch(&node)?;
    lab.resync_switch(&node)?;
    let restarted_ms = now_ms() as f64;
    let _ = ping.0.wait();
    let out = reader.join().unwrap_or_default();
    let _ = stream.0.wait();
    let stream_json = stream_reader.join().unwrap_or_default();
    let stream = stream_across(&stream_json, (kill_ms - stream_start) / 1000.0);
    let after = config_of(lab, &node)?;
    let pings = parse_timeline(&out);
    let stats = crate::probe::PingStats::parse(&out);
    let mut replies: Vec<f64> = pings.iter().filter(|p| p.2.is_some()).map(|p| p.0).collect();
    replies.sort_by(f64::total_cmp);
    let (outage_ms, back_at) = silence(&replies, kill_ms, stats.sent == stats.received);
    let rules_kept = rules_kept(lab, &node)?;
    Ok(FaultResult {
        killed: format!("{role} on {node}"),
        sent: stats.sent,
        received: stats.received,
        outage_ms,
        recovery_ms: back_at.map(|t| (t - restart_ms).max(0.0)),
        restart_ms: restarted_ms - restart_ms,
        config_intact: before.zip(after).map(|(b, a)| a == b),
        restored_by: lab.restored_by().to_string(),
        rules_kept,
        restart_at_ms: restart_ms - kill_ms,
        stream,
        timeline: pings
            .iter()
            .map(|&(t, _, rtt)| Sample {
                t_ms: t - kill_ms,
                rtt_ms: rtt,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outage_is_the_longest_silence_after_the_kill() {
        let r = [0.0, 10.0, 20.0, 30.0, 400.0, 410.0, 420.0];
        assert_eq!(silence(&r, 25.0, false), (360.0, Some(400.0)));
        // A gap before the kill does not count.
        let r = [0.0, 500.0, 510.0, 520.0, 700.0, 710.0];
        assert_eq!(silence(&r, 515.0, false), (170.0, Some(700.0)));
        // Nothing lost: jitter, no outage.
        assert_eq!(silence(&[0.0, 10.0, 26.0], 5.0, true), (0.0, Some(10.0)));
        // Never came back.
        let (o, back) = silence(&[0.0, 10.0], 15.0, false);
        assert!(o.is_nan() && back.is_none());
    }

    #[test]
    fn a_stream_across_the_kill_is_judged_by_its_intervals() {
        let iv = |v: &[(f64, u64)]| {
            let a: Vec<String> = v
                .iter()
                .map(|(s, b)| format!(r#"{{"sum":{{"start":{s},"end":{},"bytes":{b}}}}}"#, s + 0.1))
                .collect();
            format!(r#"{{"intervals":[{}]}}"#, a.join(","))
        };
        let ok = iv(&[(0.0, 9), (0.1, 0), (0.2, 0), (0.3, 0), (0.4, 9), (0.5, 9)]);
        let s = stream_across(&ok, 0.1);
        assert!(s.survived && s.error.is_none(), "{s:?}");
        assert!((s.stall_ms - 300.0).abs() < 1e-6, "{s:?}");
        // Stuck from the kill on: it did not survive.
        let stuck = iv(&[(0.0, 9), (0.1, 0), (0.2, 0)]);
        assert!(!stream_across(&stuck, 0.1).survived);
        // Reset: iperf3 reports an error.
        let reset = r#"{"intervals":[],"error":"error - control socket has closed unexpectedly"}"#;
        let s = stream_across(reset, 0.1);
        assert!(!s.survived && s.error.as_deref().unwrap().contains("closed"));
        // Stopped by timeout: no JSON at all.
        assert!(stream_across("", 0.1).error.unwrap().contains("hung"));
    }

    #[test]
    fn ping_timelines_are_read() {
        let out = "PING 198.19.1.13 (198.19.1.13) 56(84) bytes of data.
[1764064000.100000] 64 bytes from 198.19.1.13: icmp_seq=1 ttl=64 time=0.120 ms
[1764064000.120000] no answer yet for icmp_seq=2
[1764064000.130000] 64 bytes from 198.19.1.13: icmp_seq=3 ttl=64 time=0.5 ms
[1764064000.140000] From 198.19.1.11 icmp_seq=4 Destination Host Unreachable
";
        let t = parse_timeline(out);
        assert_eq!(t.len(), 4);
        assert_eq!((t[3].1, t[3].2), (4, None));
        assert_eq!(t[0].1, 1);
        assert_eq!(t[0].2, Some(0.12));
        assert_eq!((t[1].1, t[1].2), (2, None));
        assert!((t[2].0 - 1_764_064_000_130.0).abs() < 0.01);
    }
}
