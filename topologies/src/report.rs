//! The comparison report: one column per switch, a ratio column (first /
//! second, from the same run), and the words a student needs to read it.

use crate::compare::{CompareArgs, LabResult};
use serde::Serialize;

/// The whole report (also written as JSON).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The command that produced it.
    pub command: String,
    /// Unix time (s) of the run.
    pub unix_time: u64,
    /// Kernel release.
    pub kernel: String,
    /// CPUs the machine has.
    pub cpus: usize,
    /// Measurement lengths.
    pub iperf_secs: u32,
    /// Seconds of each pps run.
    pub pps_secs: f64,
    /// Pings in the RTT run.
    pub pings: u32,
    /// One entry per topology, in run order.
    pub results: Vec<LabResult>,
}

impl Report {
    /// A report of `results`, with the facts of this machine and run.
    pub fn new(args: &CompareArgs, results: Vec<LabResult>) -> Report {
        Report {
            command: std::env::args()
                .map(|a| {
                    if a.contains('/') && a.ends_with("rvs-lab") {
                        "rvs-lab".to_string()
                    } else {
                        a
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
            unix_time: crate::lab::now_ms() / 1000,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            iperf_secs: args.iperf_secs,
            pps_secs: args.pps_secs,
            pings: args.pings,
            results,
        }
    }
}

/// `a / b` as `1.23x`, or `-` when either is missing.
fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

fn per_mpkt(cpu_s: f64, packets: u64) -> f64 {
    if packets == 0 {
        f64::NAN
    } else {
        cpu_s / (packets as f64 / 1e6)
    }
}

fn num(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "-".into()
    }
}

/// One table row: label, a cell per result, and the ratio of the first two
/// values (`None`: no ratio makes sense).
struct Row {
    what: String,
    cells: Vec<String>,
    ratio: String,
}

fn row(
    what: &str,
    rs: &[LabResult],
    cell: impl Fn(&LabResult) -> String,
    value: impl Fn(&LabResult) -> f64,
) -> Row {
    let ratio = match rs {
        [a, b, ..] => ratio(value(a), value(b)),
        _ => "-".into(),
    };
    Row {
        what: what.into(),
        cells: rs.iter().map(cell).collect(),
        ratio,
    }
}

/// The report as Markdown: the table, then how to read it.
pub fn markdown(rep: &Report) -> String {
    let rs = &rep.results;
    let mut rows = vec![
        row(
            &format!("TCP across nodes, Gbit/s (iperf3 {} s) ↑", rep.iperf_secs),
            rs,
            |r| format!("{:.2} ({} retr.)", r.tcp.gbps, r.tcp.retransmits),
            |r| r.tcp.gbps,
        ),
        row(
            "TCP same node, no tunnel, Gbit/s ↑",
            rs,
            |r| format!("{:.2}", r.tcp_local.gbps),
            |r| r.tcp_local.gbps,
        ),
        row(
            "tunnel overhead, TCP: across / same node",
            rs,
            |r| ratio(r.tcp.gbps, r.tcp_local.gbps),
            |_| f64::NAN,
        ),
        row(
            &format!("64-byte UDP across nodes, kpps received ({} s) ↑", rep.pps_secs),
            rs,
            |r| {
                format!(
                    "{:.0} (of {:.0} sent)",
                    r.pps.received_pps / 1e3,
                    r.pps.sent_pps / 1e3
                )
            },
            |r| r.pps.received_pps,
        ),
        row(
            "64-byte UDP same node, kpps received ↑",
            rs,
            |r| format!("{:.0}", r.pps_local.received_pps / 1e3),
            |r| r.pps_local.received_pps,
        ),
        row(
            "tunnel overhead, pps: across / same node",
            rs,
            |r| ratio(r.pps.received_pps, r.pps_local.received_pps),
            |_| f64::NAN,
        ),
        row(
            &format!("ping RTT min / avg / p99, ms ({} pings) ↓", rep.pings),
            rs,
            |r| {
                format!(
                    "{} / {} / {}",
                    num(r.rtt_min_ms, 3),
                    num(r.rtt_avg_ms, 3),
                    num(r.rtt_p99_ms, 3)
                )
            },
            |r| r.rtt_avg_ms,
        ),
        row(
            "CPU s per million packets: switch process / softirq ↓",
            rs,
            |r| {
                format!(
                    "{} / {}",
                    num(per_mpkt(r.pps.daemon_cpu_s, r.pps.received), 2),
                    num(per_mpkt(r.pps.softirq_cpu_s, r.pps.received), 2)
                )
            },
            |r| per_mpkt(r.pps.daemon_cpu_s + r.pps.softirq_cpu_s, r.pps.received),
        ),
        row(
            "lab up / first ping across nodes, s ↓",
            rs,
            |r| {
                format!(
                    "{:.2} / {}",
                    r.up_s,
                    r.first_ping_s.map_or("never".into(), |s| format!("{s:.2}"))
                )
            },
            |r| r.first_ping_s.unwrap_or(f64::NAN),
        ),
        row(
            "fault run: what was killed",
            rs,
            |r| r.fault.killed.clone(),
            |_| f64::NAN,
        ),
        row(
            "fault run: pings lost (10 ms apart) / outage ms ↓",
            rs,
            |r| {
                format!(
                    "{} of {} / {}",
                    r.fault.sent - r.fault.received,
                    r.fault.sent,
                    num(r.fault.outage_ms, 0)
                )
            },
            |_| f64::NAN,
        ),
        row(
            "fault run: first reply after the restart, ms / config intact",
            rs,
            |r| {
                format!(
                    "{} / {}",
                    r.fault.recovery_ms.map_or("never".into(), |m| format!("{m:.0}")),
                    match r.fault.config_intact {
                        Some(true) => "yes",
                        Some(false) => "NO",
                        None => "n/a (kernel holds it)",
                    }
                )
            },
            |_| f64::NAN,
        ),
    ];
    if rs.len() < 2 {
        for r in &mut rows {
            r.ratio = "-".into();
        }
    }
    let mut s = String::new();
    s.push_str("| measure | ");
    s.push_str(
        &rs.iter()
            .map(|r| r.label.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
    );
    s.push_str(" | first / second |\n|---|");
    s.push_str(&"---|".repeat(rs.len() + 1));
    s.push('\n');
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} |\n",
            r.what,
            r.cells.join(" | "),
            r.ratio
        ));
    }
    let settings: Vec<String> = rs
        .iter()
        .map(|r| format!("{}: VM veths with {}", r.label, r.vm_settings))
        .collect();
    s.push_str(&format!(
        "\n↑ higher is better, ↓ lower is better. One run, one machine ({} CPUs, Linux {}), \
         the labs measured one after the other by `{}`. {}. (AF_XDP cannot carry partial \
         checksums, so its VMs need tx offload off; the kernel overlay keeps its own offloads.)\n",
        rep.cpus,
        rep.kernel,
        rep.command,
        settings.join("; ")
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultResult;
    use crate::probe::{IperfResult, PpsResult};

    fn result(label: &str, gbps: f64, kpps: f64) -> LabResult {
        LabResult {
            label: label.into(),
            tcp: IperfResult { gbps, retransmits: 0 },
            tcp_local: IperfResult {
                gbps: gbps * 2.0,
                retransmits: 0,
            },
            pps: PpsResult {
                received_pps: kpps * 1e3,
                received: (kpps * 5e3) as u64,
                daemon_cpu_s: 1.0,
                ..Default::default()
            },
            fault: FaultResult {
                sent: 400,
                received: 390,
                config_intact: Some(true),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_table_has_a_column_per_switch_and_same_run_ratios() {
        let rep = Report {
            command: "rvs-lab compare".into(),
            unix_time: 0,
            kernel: "6.18".into(),
            cpus: 2,
            iperf_secs: 10,
            pps_secs: 5.0,
            pings: 200,
            results: vec![
                result("rvs", 1.0, 800.0),
                result("Linux bridge (VXLAN)", 2.0, 400.0),
            ],
        };
        let md = markdown(&rep);
        assert!(
            md.contains("| measure | rvs | Linux bridge (VXLAN) | first / second |"),
            "{md}"
        );
        let line = |start: &str| md.lines().find(|l| l.starts_with(start)).unwrap().to_string();
        assert!(line("| TCP across").ends_with("| 0.50x |"), "{md}");
        assert!(line("| 64-byte UDP across").ends_with("| 2.00x |"), "{md}");
        assert!(
            line("| tunnel overhead, TCP").contains("| 0.50x | 0.50x | - |"),
            "{md}"
        );
        assert!(line("| fault run: pings lost").contains("10 of 400"), "{md}");
        assert!(line("| CPU s").contains("0.25 /"), "1 s over 4 Mpkt: {md}");
        assert_eq!(ratio(1.0, 0.0), "-");
    }
}
