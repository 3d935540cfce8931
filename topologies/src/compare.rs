//! `rvs-lab compare`: the same measurements on each topology, one after the
//! other in one run (so the ratios compare like with like), then the report.
//! Each lab is brought up, measured and torn down before the next, also when
//! a measurement fails or the run is interrupted.

use crate::fault::{self, FaultResult};
use crate::lab::{now_ms, Lab, LabOptions};
use crate::probe::{first_reply, iperf, ping, pps, IperfResult, PpsResult};
use crate::report::{self, Report};
use crate::shell::Shell;
use crate::state::live_pid;
use crate::topology::{SwitchKind, Topology};
use crate::{charts, rvs_node};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// How long each measurement runs.
#[derive(clap::Args, Clone, Debug)]
pub struct CompareArgs {
    /// Topologies to measure, in order (one column each; the ratio column
    /// compares the first with the second).
    #[arg(default_values = [
        "topologies/two-node-geneve-ebpf.toml",
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
    /// Pings for the RTT figures (10 ms apart).
    #[arg(long, default_value_t = 200)]
    pub pings: u32,
    /// Seconds of pinging in the fault run (the kill comes after a quarter).
    #[arg(long, default_value_t = 4.0)]
    pub fault_secs: f64,
    /// Where report.md, report.json and the charts go.
    #[arg(long, default_value = "target/lab")]
    pub out: PathBuf,
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
    /// The kill -9 run.
    pub fault: FaultResult,
}

/// PIDs of the switch's userspace processes (rvs daemons; none for the kernel).
fn switch_pids(lab: &Lab) -> Vec<u32> {
    if lab.topo.switch != SwitchKind::Rvs {
        return Vec::new();
    }
    lab.topo
        .nodes
        .iter()
        .filter_map(|n| live_pid(&rvs_node::pidfile(lab, &n.name), "rvs"))
        .collect()
}

fn measure(lab: &mut Lab, args: &CompareArgs) -> Result<LabResult> {
    let t = lab.topo.clone();
    let (a, b) = t
        .cross_node_pair()
        .context("the topology has no two VMs of one network on two nodes")?;
    let local = t.same_node_pair();
    let bip = b.ip.to_string();
    let offloads = if t.vm_offloads { ", offloads on" } else { "" };
    let label = match t.switch {
        SwitchKind::Rvs => match t.datapath() {
            crate::topology::DatapathType::Afxdp => format!("rvs (Geneve, AF_XDP{offloads})"),
            crate::topology::DatapathType::Ebpf => format!("rvs (Geneve, eBPF{offloads})"),
        },
        SwitchKind::LinuxBridge => format!("Linux bridge ({}{offloads})", lab.state.overlay.to_uppercase()),
    };
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
    let s = ping(lab, &a.name, &bip, args.pings, 0.01, 1)?;
    (r.rtt_min_ms, r.rtt_avg_ms, r.rtt_p99_ms) = (s.min(), s.avg(), s.quantile(0.99));
    (r.rtt_sent, r.rtt_received) = (s.sent, s.received);
    println!(
        "   ping rtt min/avg/p99 {:.3}/{:.3}/{:.3} ms ({} of {})",
        r.rtt_min_ms, r.rtt_avg_ms, r.rtt_p99_ms, s.received, s.sent
    );
    r.tcp = iperf(lab, &a.name, &b.name, args.iperf_secs)?;
    println!("   TCP across nodes {:.2} Gbit/s", r.tcp.gbps);
    let pids = switch_pids(lab);
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
    Ok(r)
}

/// Run the comparison and write the report.
pub fn run(args: &CompareArgs, opts: &LabOptions, sh: &Shell) -> Result<()> {
    let mut results = Vec::new();
    for path in &args.topologies {
        let t = Topology::load(path)?;
        let mut lab = Lab::up(&t, opts, sh.clone())?;
        let r = measure(&mut lab, args);
        lab.down();
        results.push(r.with_context(|| format!("measuring {}", t.name))?);
    }
    let report = Report::new(args, results);
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
