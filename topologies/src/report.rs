//! The comparison report: one column per lab (median and range over the
//! rounds), the first lab's ratios to each of the others (per round, so each
//! ratio compares runs made minutes apart), and the answers to the students'
//! questions, written from the measured rows.

use crate::compare::{CompareArgs, LabKind, LabResult, LabSeries};
use crate::stats::Stat;
use serde::Serialize;
use std::fmt::Write;

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
    /// Seconds of each new-connections run.
    pub conn_secs: f64,
    /// Pings in the RTT run.
    pub pings: u32,
    /// Rounds.
    pub repeat: u32,
    /// Threads of the small-packet generator.
    pub blast_threads: usize,
    /// One entry per topology, in run order.
    pub results: Vec<LabSeries>,
}

impl Report {
    /// A report of `results`, with the facts of this machine and run.
    pub fn new(args: &CompareArgs, results: Vec<LabSeries>) -> Report {
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
            conn_secs: args.conn_secs,
            repeat: args.repeat,
            blast_threads: crate::probe::blast_threads(),
            results,
        }
    }

    /// The first lab of `kind`.
    fn lab(&self, kind: LabKind) -> Option<&LabSeries> {
        self.results.iter().find(|s| s.kind == kind)
    }
}

/// CPU seconds per million packets received.
pub fn per_mpkt(cpu_s: f64, packets: u64) -> f64 {
    if packets == 0 {
        f64::NAN
    } else {
        cpu_s / (packets as f64 / 1e6)
    }
}

/// A measure of one run.
type Value = fn(&LabResult) -> f64;

/// One numeric row of the table.
struct Measure {
    what: String,
    digits: usize,
    value: Value,
}

fn m(what: impl Into<String>, digits: usize, value: Value) -> Measure {
    Measure {
        what: what.into(),
        digits,
        value,
    }
}

fn lost(r: &LabResult) -> f64 {
    r.fault.sent.saturating_sub(r.fault.received) as f64
}

fn cpu_total(r: &LabResult) -> f64 {
    per_mpkt(r.pps.daemon_cpu_s + r.pps.softirq_cpu_s, r.pps.received)
}

fn measures(rep: &Report) -> Vec<Measure> {
    vec![
        m(
            format!("TCP across nodes, Gbit/s (iperf3 {} s) ↑", rep.iperf_secs),
            2,
            |r| r.tcp.gbps,
        ),
        m("TCP across nodes, retransmits", 0, |r| r.tcp.retransmits as f64),
        m("TCP same node, no tunnel, Gbit/s ↑", 2, |r| r.tcp_local.gbps),
        m(
            format!("64-byte UDP across nodes, kpps received ({} s) ↑", rep.pps_secs),
            0,
            |r| r.pps.received_pps / 1e3,
        ),
        m("64-byte UDP across nodes, kpps sent", 0, |r| r.pps.sent_pps / 1e3),
        m("64-byte UDP same node, kpps received ↑", 0, |r| {
            r.pps_local.received_pps / 1e3
        }),
        m(
            format!("new TCP connections across nodes, per s ({} s) ↑", rep.conn_secs),
            0,
            |r| r.conn_rate.per_s,
        ),
        m(format!("ping RTT min, ms ({} pings) ↓", rep.pings), 3, |r| {
            r.rtt_min_ms
        }),
        m("ping RTT avg, ms ↓", 3, |r| r.rtt_avg_ms),
        m("ping RTT p99, ms ↓", 3, |r| r.rtt_p99_ms),
        m("CPU s per million packets: switch process ↓", 2, |r| {
            per_mpkt(r.pps.daemon_cpu_s, r.pps.received)
        }),
        m("CPU s per million packets: softirq ↓", 2, |r| {
            per_mpkt(r.pps.softirq_cpu_s, r.pps.received)
        }),
        m("switch process CPU while idle, % of one CPU ↓", 0, |r| {
            r.idle_cpu_pct
        }),
        m("lab up, s ↓", 2, |r| r.up_s),
        m("first ping across nodes after up starts, s ↓", 2, |r| {
            r.first_ping_s.unwrap_or(f64::NAN)
        }),
        m("across the router: TCP, Gbit/s ↑", 2, |r| {
            r.routed.as_ref().map_or(f64::NAN, |x| x.tcp.gbps)
        }),
        m("across the router: ping RTT avg, ms ↓", 3, |r| {
            r.routed.as_ref().map_or(f64::NAN, |x| x.rtt_avg_ms)
        }),
        m("across the router: new TCP connections, per s ↑", 0, |r| {
            r.routed.as_ref().map_or(f64::NAN, |x| x.conn_rate.per_s)
        }),
        m("fault run: pings lost (10 ms apart) ↓", 0, lost),
        m("fault run: outage, ms ↓", 0, |r| r.fault.outage_ms),
        m("fault run: first reply after the restart began, ms ↓", 0, |r| {
            r.fault.recovery_ms.unwrap_or(f64::NAN)
        }),
    ]
}

/// The measures the ratio table compares, and whether higher is better.
fn ratio_measures() -> Vec<(&'static str, Value)> {
    vec![
        ("TCP across nodes ↑", |r| r.tcp.gbps),
        ("64-byte UDP across nodes, received ↑", |r| r.pps.received_pps),
        ("new TCP connections across nodes ↑", |r| r.conn_rate.per_s),
        ("ping RTT avg ↓", |r| r.rtt_avg_ms),
        ("CPU per million packets, process + softirq ↓", cpu_total),
        ("fault run: outage ↓", |r| r.fault.outage_ms),
    ]
}

/// Per round, `value(a) / value(b)`; summarised.
pub fn ratio_stat(a: &LabSeries, b: &LabSeries, value: Value) -> Stat {
    Stat::of(a.runs.iter().zip(&b.runs).map(|(x, y)| {
        let (x, y) = (value(x), value(y));
        if y > 0.0 {
            x / y
        } else {
            f64::NAN
        }
    }))
}

fn show_ratio(s: Stat) -> String {
    if s.n == 0 {
        return "-".into();
    }
    let (m, lo, hi) = (
        format!("{:.2}x", s.median),
        format!("{:.2}", s.min),
        format!("{:.2}", s.max),
    );
    if s.n == 1 || lo == hi {
        m
    } else {
        format!("{m} ({lo}–{hi})")
    }
}

/// A cell that is the same words in every run, or each run's words.
fn words(s: &LabSeries, f: impl Fn(&LabResult) -> String) -> String {
    let mut all: Vec<String> = s.runs.iter().map(f).collect();
    all.dedup();
    all.join("; ")
}

fn table_row(out: &mut String, what: &str, cells: impl Iterator<Item = String>) {
    let _ = writeln!(out, "| {what} | {} |", cells.collect::<Vec<_>>().join(" | "));
}

/// The report as Markdown: the table, the ratios, then what they say.
pub fn markdown(rep: &Report) -> String {
    let rs = &rep.results;
    let mut s = String::new();
    let rounds = if rep.repeat > 1 {
        format!("Median of {} rounds (smallest–largest in brackets)", rep.repeat)
    } else {
        "One round".to_string()
    };
    table_row(&mut s, "measure", rs.iter().map(|r| r.label.clone()));
    let _ = writeln!(s, "|---|{}", "---|".repeat(rs.len()));
    for me in measures(rep) {
        table_row(
            &mut s,
            &me.what,
            rs.iter().map(|r| r.stat(me.value).show(me.digits)),
        );
    }
    table_row(
        &mut s,
        "fault run: what was killed",
        rs.iter().map(|r| words(r, |x| x.fault.killed.clone())),
    );
    table_row(
        &mut s,
        "fault run: a TCP connection open across the kill",
        rs.iter().map(|r| words(r, |x| stream_words(&x.fault.stream))),
    );
    table_row(
        &mut s,
        "fault run: rules back by",
        rs.iter().map(|r| words(r, |x| x.fault.restored_by.clone())),
    );
    table_row(
        &mut s,
        "rules before a kill -9 → right after a restart alone",
        rs.iter().map(|r| {
            words(r, |x| match x.fault.rules_kept {
                Some((b, a)) => format!("{b} → {a}"),
                None => "n/a (the kernel holds it)".into(),
            })
        }),
    );
    table_row(
        &mut s,
        "configuration after the restart equals before",
        rs.iter().map(|r| {
            words(r, |x| {
                match x.fault.config_intact {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "n/a (the kernel holds it)",
                }
                .into()
            })
        }),
    );
    let settings: Vec<String> = rs
        .iter()
        .map(|r| format!("{}: VM veths with {}", r.label, r.vm_settings))
        .collect();
    let _ = writeln!(
        s,
        "\n↑ higher is better, ↓ lower is better. {rounds}, one machine ({} CPUs, Linux {}), \
         the labs measured one after the other in each round by `{}`. 64-byte UDP is sent by \
         `rvs blast` with {} thread(s) and counted at the receiving VM's interface. {}. (AF_XDP \
         and OVS's userspace tunnels cannot carry partial checksums or TSO, so their VMs need tx \
         offload off; the kernel paths keep their offloads.)",
        rep.cpus,
        rep.kernel,
        rep.command,
        rep.blast_threads,
        settings.join("; ")
    );
    if let [first, others @ ..] = &rs[..] {
        if !others.is_empty() {
            let _ = writeln!(
                s,
                "\n### {} compared with each lab (ratio per round, median)\n",
                first.label
            );
            table_row(
                &mut s,
                "ratio",
                others.iter().map(|o| format!("{} / {}", first.label, o.label)),
            );
            let _ = writeln!(s, "|---|{}", "---|".repeat(others.len()));
            for (what, value) in ratio_measures() {
                table_row(
                    &mut s,
                    what,
                    others.iter().map(|o| show_ratio(ratio_stat(first, o, value))),
                );
            }
        }
    }
    s.push_str(&answers(rep));
    s
}

/// `label median unit` of one measure for the lab of `kind`.
fn fig(rep: &Report, kind: LabKind, value: Value, digits: usize, unit: &str) -> Option<String> {
    let s = rep.lab(kind)?;
    let st = s.stat(value);
    (st.n > 0).then(|| format!("{:.digits$}{unit}", st.median))
}

/// The lab with the best median of `value` (`higher`: the largest).
fn best(rep: &Report, value: Value, higher: bool) -> Option<(&LabSeries, f64)> {
    rep.results
        .iter()
        .map(|s| (s, s.stat(value).median))
        .filter(|(_, v)| v.is_finite())
        .max_by(|a, b| {
            if higher {
                a.1.total_cmp(&b.1)
            } else {
                b.1.total_cmp(&a.1)
            }
        })
}

fn stream_words(st: &crate::fault::StreamAcross) -> String {
    match (&st.error, st.survived) {
        (_, true) => format!("survived (longest stall {:.0} ms)", st.stall_ms),
        (Some(e), false) => format!("lost: {e}"),
        (None, false) => "stuck: no data after the kill".into(),
    }
}

fn fault_words(s: &LabSeries) -> String {
    let outage = s.stat(|r| r.fault.outage_ms);
    let lost = s.stat(lost);
    let what = match s.kind {
        LabKind::LinuxBridge => "the agent died; the bridge, the overlay and their forwarding are kernel state, so nothing stopped",
        LabKind::RvsEbpf if s.security_groups => "the daemon died; established TCP and UDP connections kept passing the security groups in the kernel (its tracker had handed them over), while the pings, ICMP through ct(), which only the daemon's tracker answers, stopped until the restarted daemon took them again",
        LabKind::RvsEbpf => "the daemon died; the flows it had put in the kernel kept forwarding, and only new flows waited for the restarted daemon",
        LabKind::RvsAfxdp => "the daemon died and its AF_XDP datapath with it; forwarding came back when the restarted daemon had reloaded its saved configuration and re-opened its ports",
        LabKind::Ovs => "ovs-vswitchd died and its userspace datapath with it; forwarding came back when it had restarted (bridges and ports come back from ovsdb-server) and the agent had re-added its OpenFlow rules",
    };
    let rules = match s.runs.first().and_then(|r| r.fault.rules_kept) {
        Some((b, a)) if a < b => format!(
            " A restart alone keeps {a} of its {b} rules: OpenFlow rules live in the process, not in a database, so something must push them again."
        ),
        Some((b, _)) => format!(" A restart alone keeps all {b} rules (saved configuration)."),
        None => String::new(),
    };
    let stream = words(s, |x| stream_words(&x.fault.stream));
    format!(
        "- **{}**: {what}: {} pings lost, outage {} ms; a TCP connection open across it: {stream}.{rules}",
        s.label,
        lost.show(0),
        outage.show(0)
    )
}

/// The students' questions, answered from the rows above.
fn answers(rep: &Report) -> String {
    let mut s = String::from("\n### What the numbers say\n\n");
    s.push_str(
        "**\"Because of stability, the Linux bridge is used instead of OVS/OVN — does OVS fail \
         more often?\"** This lab does not count how often a switch fails; it measures what a \
         failure of the switch's userspace process costs (kill -9, restarted at once, pings every \
         10 ms). What matters is where the datapath lives: in the kernel it outlives the process, \
         in a userspace process it dies with it.\n\n",
    );
    for r in &rep.results {
        let _ = writeln!(s, "{}", fault_words(r));
    }
    s.push_str("\n**Which is faster for which traffic?**\n\n");
    let lines: [(&str, Value, bool, usize, &str); 3] = [
        (
            "TCP across nodes (bulk, through the tunnel)",
            |r| r.tcp.gbps,
            true,
            2,
            " Gbit/s",
        ),
        (
            "64-byte packets across nodes",
            |r| r.pps.received_pps / 1e3,
            true,
            0,
            " kpps",
        ),
        (
            "ping latency across nodes (avg)",
            |r| r.rtt_avg_ms,
            false,
            3,
            " ms",
        ),
    ];
    for (what, value, higher, digits, unit) in lines {
        if let Some((b, v)) = best(rep, value, higher) {
            let others: Vec<String> = rep
                .results
                .iter()
                .filter(|o| o.label != b.label)
                .map(|o| format!("{} {}{unit}", o.label, o.stat(value).show(digits)))
                .collect();
            let _ = writeln!(
                s,
                "- {what}: **{}**, {v:.digits$}{unit} (the others: {}).",
                b.label,
                others.join(", ")
            );
        }
    }
    // Whether any lab kept the VMs' offloads (its vm_settings say so).
    let offloads = rep
        .results
        .iter()
        .any(|r| r.vm_settings.starts_with("default offloads"));
    if offloads {
        s.push_str(
            "\nWhy: the kernel paths with the VMs' offloads on (Linux bridge, rvs's eBPF datapath) \
             hand whole TSO/GSO super-frames of up to 64 KB through the bridge and the tunnel, so \
             bulk TCP costs one lookup per 64 KB; a userspace datapath (OVS netdev, rvs AF_XDP) sees \
             every 1500-byte frame, copies it through an AF_XDP ring and needs the VMs' offloads off. \
             Small packets and pings cost a lookup each on every path, so there the difference is \
             per-packet overhead: a context switch to a userspace thread, or none.\n",
        );
    } else {
        s.push_str(
            "\nWhy: every lab here sends whole 1500-byte frames (the VMs' tx offload is off), so \
             every path pays per packet: bulk TCP, small packets and pings alike show per-packet \
             overhead (a lookup, and for a userspace datapath a trip through an AF_XDP ring), not \
             the 64 KB super-frames kernel paths move when offloads are on.\n",
        );
    }
    if let Some((b, v)) = best(rep, cpu_total, false) {
        let others: Vec<String> = rep
            .results
            .iter()
            .filter(|o| o.label != b.label)
            .map(|o| format!("{} {}", o.label, o.stat(cpu_total).show(2)))
            .collect();
        let _ = writeln!(
            s,
            "\n**CPU cost** (process + softirq seconds per million 64-byte packets): least \
             **{}**, {v:.2} (the others: {}). A userspace switch spends it in its own threads; the \
             kernel paths spend it in softirq, which `top` shows as nobody's.",
            b.label,
            others.join(", ")
        );
    }
    let spinning: Vec<String> = rep
        .results
        .iter()
        .map(|r| (r, r.stat(|x| x.idle_cpu_pct)))
        .filter(|(_, st)| st.median >= 50.0)
        .map(|(r, st)| format!("{} {}%", r.label, st.show(0)))
        .collect();
    if !spinning.is_empty() {
        let _ = writeln!(
            s,
            "\nWith no traffic at all, busy-polling threads keep spinning: {} of one CPU \
             (see \"switch process CPU while idle\"). That CPU is the VMs' on a real host.",
            spinning.join(", ")
        );
    }
    let tcp = |k| fig(rep, k, |r| r.tcp.gbps, 2, " Gbit/s TCP");
    let ping = |k| fig(rep, k, |r| r.rtt_avg_ms, 3, " ms ping");
    let outage = |k| fig(rep, k, |r| r.fault.outage_ms, 0, " ms outage on kill -9");
    let measured = |k: LabKind| {
        let parts: Vec<String> = [tcp(k), ping(k), outage(k)].into_iter().flatten().collect();
        if parts.is_empty() {
            "not in this run".to_string()
        } else {
            parts.join(", ")
        }
    };
    s.push_str("\n**How to choose** (measured: medians of this run)\n\n");
    s.push_str("| choose | when | measured here |\n|---|---|---|\n");
    let _ = writeln!(
        s,
        "| Linux bridge + kernel VXLAN/Geneve | L2 segments and an overlay, no flow rules; the datapath must survive any agent | {} |",
        measured(LabKind::LinuxBridge)
    );
    let _ = writeln!(
        s,
        "| OVS (userspace datapath, as here) | OpenFlow pipelines (neutron's br-int/br-tun, OVN) where the openvswitch kernel module is missing, or with DPDK/AF_XDP on dedicated cores; an outage while ovs-vswitchd restarts and rules are re-pushed | {} |",
        measured(LabKind::Ovs)
    );
    let routed = rep
        .results
        .iter()
        .filter_map(|r| {
            let st = r.stat(|x| x.routed.as_ref().map_or(f64::NAN, |y| y.tcp.gbps));
            (st.n > 0).then(|| format!("{} {:.2} Gbit/s", r.label, st.median))
        })
        .collect::<Vec<_>>();
    let routed = if routed.is_empty() {
        "the same datapath as the OVS row; routers and security groups: run compare on the *-router-sg topologies".to_string()
    } else {
        format!(
            "the same datapath as the OVS row; TCP across the router (distributed in rvs and OVS, a router namespace on one node for Linux): {}",
            routed.join(", ")
        )
    };
    let _ = writeln!(
        s,
        "| OVN-style (OVS + ovn-controller) | distributed routers, ACLs/security groups, NAT from one northbound model instead of per-feature agents | {routed} |"
    );
    let _ = writeln!(
        s,
        "| rvs, eBPF datapath | an OpenFlow-like pipeline whose established flows run in the kernel and keep forwarding when the daemon dies | {} |",
        measured(LabKind::RvsEbpf)
    );
    let _ = writeln!(
        s,
        "| rvs, AF_XDP datapath | the userspace datapath to study (PMDs, EMC, megaflows) where TC programs are not allowed | {} |",
        measured(LabKind::RvsAfxdp)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultResult;
    use crate::probe::{IperfResult, PpsResult};

    fn run(gbps: f64, kpps: f64, outage: f64) -> LabResult {
        LabResult {
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
            rtt_avg_ms: 0.1,
            fault: FaultResult {
                sent: 400,
                received: 390,
                outage_ms: outage,
                config_intact: Some(true),
                rules_kept: Some((13, 2)),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn series(label: &str, kind: LabKind, runs: Vec<LabResult>) -> LabSeries {
        LabSeries {
            label: label.into(),
            kind,
            runs,
            ..Default::default()
        }
    }

    fn report(results: Vec<LabSeries>, repeat: u32) -> Report {
        Report {
            command: "rvs-lab compare".into(),
            unix_time: 0,
            kernel: "6.18".into(),
            cpus: 2,
            iperf_secs: 10,
            pps_secs: 5.0,
            pings: 200,
            conn_secs: 3.0,
            repeat,
            blast_threads: 2,
            results,
        }
    }

    #[test]
    fn the_table_has_a_column_per_lab_medians_ranges_and_per_round_ratios() {
        let rep = report(
            vec![
                series(
                    "rvs",
                    LabKind::RvsEbpf,
                    vec![run(1.0, 800.0, 0.0), run(3.0, 600.0, 0.0), run(2.0, 700.0, 0.0)],
                ),
                series(
                    "OVS",
                    LabKind::Ovs,
                    vec![
                        run(1.0, 400.0, 400.0),
                        run(1.0, 200.0, 500.0),
                        run(2.0, 350.0, 450.0),
                    ],
                ),
            ],
            3,
        );
        let md = markdown(&rep);
        let line = |start: &str| md.lines().find(|l| l.starts_with(start)).unwrap().to_string();
        assert_eq!(line("| measure"), "| measure | rvs | OVS |");
        assert!(
            line("| TCP across nodes, Gbit").ends_with("| 2.00 (1.00–3.00) | 1.00 (1.00–2.00) |"),
            "{md}"
        );
        assert!(md.contains("Median of 3 rounds"), "{md}");
        // Ratios per round: 1/1, 3/1, 2/2 -> median 1, range 1-3.
        assert!(
            line("| TCP across nodes ↑").ends_with("| 1.00x (1.00–3.00) |"),
            "{md}"
        );
        // pps: 800/400, 600/200, 700/350 -> 2, 3, 2.
        assert!(
            line("| 64-byte UDP across nodes, received").ends_with("| 2.00x (2.00–3.00) |"),
            "{md}"
        );
        assert!(line("| fault run: pings lost").contains("| 10 |"), "{md}");
        assert!(line("| rules before").contains("13 → 2"), "{md}");
        assert!(
            line("| CPU s per million packets: switch").contains("| 0.29 (0.25–0.33) |"),
            "1 s over 3-4 Mpkt: {md}"
        );
        // The answers name the fastest lab with its median, and the table
        // of choices carries each kind's figures.
        assert!(
            md.contains("TCP across nodes (bulk, through the tunnel): **rvs**, 2.00 Gbit/s"),
            "{md}"
        );
        assert!(md.contains("keeps 2 of its 13 rules"), "{md}");
        assert!(
            line("| OVS (userspace").contains("1.00 Gbit/s TCP, 0.100 ms ping, 450 ms outage"),
            "{md}"
        );
        assert!(line("| Linux bridge +").ends_with("| not in this run |"), "{md}");
        assert!(!md.contains("keep spinning"), "nothing spins: {md}");
        let mut spin = rep.clone();
        for r in &mut spin.results[1].runs {
            r.idle_cpu_pct = 200.0;
        }
        assert!(
            markdown(&spin).contains("keep spinning: OVS 200% of one CPU"),
            "{md}"
        );
    }

    #[test]
    fn one_round_prints_plain_figures_and_missing_ratios_as_dashes() {
        let mut dead = run(1.0, 0.0, f64::NAN);
        dead.pps.received = 0;
        let rep = report(
            vec![
                series("a", LabKind::RvsAfxdp, vec![run(2.0, 100.0, 10.0)]),
                series("b", LabKind::LinuxBridge, vec![dead]),
            ],
            1,
        );
        let md = markdown(&rep);
        let line = |start: &str| md.lines().find(|l| l.starts_with(start)).unwrap().to_string();
        assert!(md.contains("One round"), "{md}");
        assert!(
            line("| TCP across nodes, Gbit").ends_with("| 2.00 | 1.00 |"),
            "{md}"
        );
        assert!(
            line("| 64-byte UDP across nodes, received").ends_with("| - |"),
            "{md}"
        );
        assert!(
            line("| CPU s per million packets: switch").ends_with("| - |"),
            "{md}"
        );
        assert_eq!(show_ratio(Stat::of([f64::NAN])), "-");
    }

    #[test]
    fn the_why_speaks_of_super_frames_only_when_a_lab_had_offloads() {
        let off = series("a", LabKind::RvsAfxdp, vec![run(2.0, 100.0, 10.0)]);
        let on = LabSeries {
            vm_settings: "default offloads (TSO/GSO, tx checksum on)".into(),
            ..series("b", LabKind::LinuxBridge, vec![run(9.0, 100.0, 0.0)])
        };
        let md = markdown(&report(vec![off.clone()], 1));
        assert!(
            md.contains("tx offload is off") && !md.contains("hand whole TSO"),
            "{md}"
        );
        let md = markdown(&report(vec![off, on], 1));
        assert!(md.contains("hand whole TSO/GSO super-frames"), "{md}");
    }

    #[test]
    fn the_fault_answer_says_what_a_stateful_kernel_lab_keeps_and_loses() {
        let plain = series("e", LabKind::RvsEbpf, vec![run(1.0, 1.0, 0.0)]);
        let stateful = LabSeries {
            security_groups: true,
            ..series("s", LabKind::RvsEbpf, vec![run(1.0, 1.0, 300.0)])
        };
        assert!(fault_words(&plain).contains("kept forwarding"));
        let w = fault_words(&stateful);
        assert!(
            w.contains("ICMP through ct()") && !w.contains("kept forwarding"),
            "{w}"
        );
        assert!(
            w.contains("established TCP and UDP connections kept passing"),
            "{w}"
        );
    }
}
