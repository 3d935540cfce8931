//! `rvs-lab compare`: the same measurements on each topology, one after the
//! other in one run (so the ratios compare like with like), `--repeat N`
//! rounds of all of them (interleaved, so drift on the machine hits every lab
//! alike), then the report: medians and ranges. Each lab is brought up,
//! measured and torn down before the next, also when a measurement fails or
//! the run is interrupted.

use crate::fault::{self, FaultResult};
use crate::lab::{now_ms, Lab, LabOptions};
use crate::probe::{conn_rate, cpu_seconds, first_reply, iperf, ping, pps, ConnRate, IperfResult, PpsResult};
use crate::report::{self, Report};
use crate::shell::Shell;
use crate::state::live_pid;
use crate::stats::Stat;
use crate::topology::{SwitchKind, Topology};
use crate::{charts, ovs_node, rvs_node};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// How long each measurement runs.
#[derive(clap::Args, Clone, Debug)]
pub struct CompareArgs {
    /// Topologies to measure, in order (one column each; the ratios compare
    /// the first with each of the others).
    #[arg(default_values = [
        "topologies/two-node-geneve-ebpf.toml",
        "topologies/ovs-userspace.toml",
        "topologies/ovs-userspace-pmd.toml",
        "topologies/linux-bridge-offloads.toml",
        "topologies/two-node-geneve.toml",
        "topologies/linux-bridge.toml",
    ])]
    pub topologies: Vec<PathBuf>,
    /// Seconds of each iperf3 TCP run.
    #[arg(long, default_value_t = 10)]
    pub iperf_secs: u32,
    /// Seconds of each 64-byte UDP run.
    #[arg(long, default_value_t = 5.0)]
    pub pps_secs: f64,
    /// Seconds of each new-connections-per-second run.
    #[arg(long, default_value_t = 3.0)]
    pub conn_secs: f64,
    /// Pings for the RTT figures (10 ms apart).
    #[arg(long, default_value_t = 200)]
    pub pings: u32,
    /// Seconds of pinging in the fault run (the kill comes after a quarter).
    #[arg(long, default_value_t = 4.0)]
    pub fault_secs: f64,
    /// Rounds of the whole comparison; the report gives each measure's
    /// median and range over them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub repeat: u32,
    /// Where report.md, report.json and the charts go.
    #[arg(long, default_value = "target/lab")]
    pub out: PathBuf,
}

/// Which kind of switch a lab runs, for the report's words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabKind {
    /// rvs, eBPF kernel datapath.
    RvsEbpf,
    /// rvs, AF_XDP userspace datapath.
    RvsAfxdp,
    /// Open vSwitch, userspace datapath.
    Ovs,
    /// Linux bridge and a kernel overlay.
    #[default]
    LinuxBridge,
}

impl LabKind {
    /// The kind of `t`'s switch.
    pub fn of(t: &Topology) -> LabKind {
        match t.switch {
            SwitchKind::Rvs if t.datapath() == crate::topology::DatapathType::Ebpf => LabKind::RvsEbpf,
            SwitchKind::Rvs => LabKind::RvsAfxdp,
            SwitchKind::Ovs => LabKind::Ovs,
            SwitchKind::LinuxBridge => LabKind::LinuxBridge,
        }
    }
}

/// Every run of one topology.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LabSeries {
    /// Topology name.
    pub topology: String,
    /// Column header (the first run's).
    pub label: String,
    /// What it runs.
    pub kind: LabKind,
    /// Its VMs are behind security groups (its flows go through `ct()`).
    pub security_groups: bool,
    /// How the VMs' veths were set.
    pub vm_settings: String,
    /// One entry per round, in run order.
    pub runs: Vec<LabResult>,
}

impl LabSeries {
    /// Median and range of one measure over the runs.
    pub fn stat(&self, f: impl Fn(&LabResult) -> f64) -> Stat {
        Stat::of(self.runs.iter().map(f))
    }
}

/// Everything measured on one topology.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LabResult {
    /// Topology name.
    pub topology: String,
    /// Who switches, for column headers (`rvs (Geneve)`).
    pub label: String,
    /// The overlay used.
    pub overlay: String,
    /// How the VMs' veths were set: `default offloads` or `tx offload off`.
    pub vm_settings: String,
    /// Seconds `up` took.
    pub up_s: f64,
    /// Seconds from the start of `up` to the first cross-node ping reply.
    pub first_ping_s: Option<f64>,
    /// TCP across nodes (through the tunnel).
    pub tcp: IperfResult,
    /// TCP between VMs of one node (no tunnel).
    pub tcp_local: IperfResult,
    /// 64-byte UDP across nodes.
    pub pps: PpsResult,
    /// 64-byte UDP between VMs of one node.
    pub pps_local: PpsResult,
    /// CPU the switch's processes used while no traffic flowed (% of one
    /// CPU; busy-polling threads spin anyway).
    pub idle_cpu_pct: f64,
    /// RTT min / avg / p99 (ms) across nodes and pings lost.
    pub rtt_min_ms: f64,
    /// Mean RTT.
    pub rtt_avg_ms: f64,
    /// 99th percentile RTT.
    pub rtt_p99_ms: f64,
    /// Pings sent / answered in the RTT run.
    pub rtt_sent: u64,
    /// Pings answered.
    pub rtt_received: u64,
    /// New TCP connections per second across nodes.
    pub conn_rate: ConnRate,
    /// Across the router (labs with one): between VMs of different networks
    /// on different nodes.
    pub routed: Option<Routed>,
    /// The kill -9 run.
    pub fault: FaultResult,
}

/// What was measured across a lab's router.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Routed {
    /// Which VMs (`vm1 -> vm4`).
    pub pair: String,
    /// TCP through the router.
    pub tcp: IperfResult,
    /// Mean ping RTT through it (ms).
    pub rtt_avg_ms: f64,
    /// New TCP connections per second through it.
    pub conn_rate: ConnRate,
}

/// PIDs of the switch's userspace processes (rvs daemons, ovs-vswitchd;
/// none for the kernel).
fn switch_pids(lab: &Lab) -> Vec<u32> {
    let nodes = lab.topo.nodes.iter();
    match lab.topo.switch {
        SwitchKind::Rvs => nodes
            .filter_map(|n| live_pid(&rvs_node::pidfile(lab, &n.name), "rvs"))
            .collect(),
        SwitchKind::Ovs => nodes
            .filter_map(|n| live_pid(&ovs_node::vswitchd_pidfile(lab, &n.name), "ovs-vswitchd"))
            .collect(),
        SwitchKind::LinuxBridge => Vec::new(),
    }
}

/// The column header of a lab.
fn label(lab: &Lab) -> String {
    let t = &lab.topo;
    // What sets the lab apart, in its column header.
    let mut offloads = if t.vm_offloads { ", offloads on" } else { "" }.to_string();
    if t.security_groups {
        offloads.push_str(", security groups");
    }
    if t.router.is_some() {
        offloads.push_str(", router");
    }
    match t.switch {
        SwitchKind::Rvs => match t.datapath() {
            crate::topology::DatapathType::Afxdp => format!("rvs (Geneve, AF_XDP{offloads})"),
            crate::topology::DatapathType::Ebpf => format!("rvs (Geneve, eBPF{offloads})"),
        },
        SwitchKind::LinuxBridge => format!("Linux bridge ({}{offloads})", lab.state.overlay.to_uppercase()),
        SwitchKind::Ovs => {
            // `ovs-vswitchd (Open vSwitch) 3.1.0`
            let version = lab
                .sh
                .run(&["ovs-vswitchd", "--version"])
                .ok()
                .and_then(|v| v.lines().next()?.split_whitespace().last().map(String::from))
                .unwrap_or_default();
            format!(
                "OVS {version} userspace (Geneve, {}{offloads})",
                t.ovs_port_type().name()
            )
        }
    }
}

fn measure(lab: &mut Lab, args: &CompareArgs) -> Result<LabResult> {
    let t = lab.topo.clone();
    let (a, b) = t
        .cross_node_pair()
        .context("the topology has no two VMs of one network on two nodes")?;
    let local = t.same_node_pair();
    let bip = b.ip.to_string();
    let label = label(lab);
    println!("== {label}: {}", t.name);
    let mut r = LabResult {
        topology: t.name.clone(),
        label,
        overlay: lab.state.overlay.clone(),
        vm_settings: if t.vm_offloads {
            "default offloads (TSO/GSO, tx checksum on)".into()
        } else {
            "tx offload off".into()
        },
        up_s: (lab.state.ready_ms - lab.state.started_ms) as f64 / 1000.0,
        ..Default::default()
    };
    r.first_ping_s = first_reply(lab, &a.name, &bip, Duration::from_secs(10))
        .map(|_| (now_ms() - lab.state.started_ms) as f64 / 1000.0);
    println!(
        "   up in {:.2} s, first ping {} -> {} after {}",
        r.up_s,
        a.name,
        b.name,
        r.first_ping_s.map_or("never".into(), |s| format!("{s:.2} s"))
    );
    let pids = switch_pids(lab);
    let (idle0, _) = cpu_seconds(&pids);
    std::thread::sleep(Duration::from_secs(1));
    r.idle_cpu_pct = (cpu_seconds(&pids).0 - idle0) * 100.0;
    println!(
        "   switch process CPU while idle: {:.0}% of one CPU",
        r.idle_cpu_pct
    );
    let s = ping(lab, &a.name, &bip, args.pings, 0.01, 1)?;
    (r.rtt_min_ms, r.rtt_avg_ms, r.rtt_p99_ms) = (s.min(), s.avg(), s.quantile(0.99));
    (r.rtt_sent, r.rtt_received) = (s.sent, s.received);
    println!(
        "   ping rtt min/avg/p99 {:.3}/{:.3}/{:.3} ms ({} of {})",
        r.rtt_min_ms, r.rtt_avg_ms, r.rtt_p99_ms, s.received, s.sent
    );
    r.tcp = iperf(lab, &a.name, &b.name, args.iperf_secs)?;
    println!("   TCP across nodes {:.2} Gbit/s", r.tcp.gbps);
    r.pps = pps(lab, &a.name, &b.name, args.pps_secs, &pids)?;
    println!(
        "   64-byte UDP across nodes: {:.0} pps received of {:.0} sent",
        r.pps.received_pps, r.pps.sent_pps
    );
    if let Some((x, y)) = local {
        r.tcp_local = iperf(lab, &x.name, &y.name, args.iperf_secs)?;
        r.pps_local = pps(lab, &x.name, &y.name, args.pps_secs, &pids)?;
        println!(
            "   same node (no tunnel): TCP {:.2} Gbit/s, {:.0} pps",
            r.tcp_local.gbps, r.pps_local.received_pps
        );
    }
    r.conn_rate = conn_rate(lab, &a.name, &b.name, args.conn_secs)?;
    println!(
        "   new TCP connections across nodes: {:.0} per s ({} failed)",
        r.conn_rate.per_s, r.conn_rate.failed
    );
    if let Some((x, y)) = t.routed_pair() {
        let pair = format!("{} -> {}", x.name, y.name);
        let rtt = ping(lab, &x.name, &y.ip.to_string(), args.pings.min(100), 0.01, 1)?;
        let routed = Routed {
            tcp: iperf(lab, &x.name, &y.name, args.iperf_secs)?,
            rtt_avg_ms: rtt.avg(),
            conn_rate: conn_rate(lab, &x.name, &y.name, args.conn_secs)?,
            pair,
        };
        println!(
            "   across the router ({}): TCP {:.2} Gbit/s, ping avg {:.3} ms, {:.0} new connections per s",
            routed.pair, routed.tcp.gbps, routed.rtt_avg_ms, routed.conn_rate.per_s
        );
        r.routed = Some(routed);
    }
    r.fault = fault::run(lab, &a.name, &b.name, args.fault_secs)?;
    println!(
        "   kill -9 {}: {} of {} pings lost, outage {:.0} ms, recovery {} after the restart",
        r.fault.killed,
        r.fault.sent - r.fault.received,
        r.fault.sent,
        r.fault.outage_ms,
        r.fault
            .recovery_ms
            .map_or("never".into(), |m| format!("{m:.0} ms"))
    );
    println!(
        "   a TCP connection open across the kill: {}, longest stall {:.0} ms",
        if r.fault.stream.survived {
            "survived"
        } else {
            "did not survive"
        },
        r.fault.stream.stall_ms
    );
    if let Some((before, after)) = r.fault.rules_kept {
        println!(
            "   rules: {before} before a kill -9, {after} right after a restart alone; restored by {}",
            r.fault.restored_by
        );
    }
    Ok(r)
}

/// Run the comparison and write the report.
pub fn run(args: &CompareArgs, opts: &LabOptions, sh: &Shell) -> Result<()> {
    let topos = args
        .topologies
        .iter()
        .map(|p| Topology::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut series: Vec<LabSeries> = topos
        .iter()
        .map(|t| LabSeries {
            topology: t.name.clone(),
            kind: LabKind::of(t),
            security_groups: t.security_groups,
            ..Default::default()
        })
        .collect();
    for round in 1..=args.repeat {
        if args.repeat > 1 {
            println!("\n#### round {round} of {}", args.repeat);
        }
        for (t, s) in topos.iter().zip(&mut series) {
            let mut lab = Lab::up(t, opts, sh.clone())?;
            let r = measure(&mut lab, args);
            lab.down();
            let r = r.with_context(|| format!("measuring {}", t.name))?;
            if s.runs.is_empty() {
                (s.label, s.vm_settings) = (r.label.clone(), r.vm_settings.clone());
            }
            s.runs.push(r);
        }
    }
    let report = Report::new(args, series);
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let md = report::markdown(&report);
    print!("\n{md}");
    std::fs::write(args.out.join("report.md"), &md)?;
    std::fs::write(
        args.out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    charts::draw_all(&report, &args.out)?;
    println!(
        "\nwrote {0}/report.md, {0}/report.json and the charts {0}/*.svg",
        args.out.display()
    );
    Ok(())
}
