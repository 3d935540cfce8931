//! Traffic between lab VMs, with the plain tools a student knows: ping
//! (reachability, RTT), iperf3 (TCP throughput), and `rvs blast` for small
//! packets counted at the receiver's interface.

use crate::lab::{vm_mac, Lab};
use crate::shell::KillOnDrop;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::time::{Duration, Instant};

/// What a run of ping saw.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PingStats {
    /// Echo requests sent.
    pub sent: u64,
    /// Replies received.
    pub received: u64,
    /// Round-trip times of the replies (ms).
    pub rtts_ms: Vec<f64>,
}

impl PingStats {
    /// Parse ping's output (`time=0.123 ms` lines and the summary).
    pub fn parse(out: &str) -> PingStats {
        let mut s = PingStats::default();
        for line in out.lines() {
            if let Some(t) = line.split("time=").nth(1) {
                if let Some(v) = t.split_whitespace().next().and_then(|v| v.parse().ok()) {
                    s.rtts_ms.push(v);
                }
            }
            if line.contains("packets transmitted") {
                let num = |word: &str| -> u64 {
                    line.split(',')
                        .find(|p| p.contains(word))
                        .and_then(|p| p.split_whitespace().next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0)
                };
                s.sent = num("transmitted");
                s.received = num("received");
            }
        }
        s
    }

    /// Smallest RTT (ms).
    pub fn min(&self) -> f64 {
        self.rtts_ms.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// Mean RTT (ms).
    pub fn avg(&self) -> f64 {
        self.rtts_ms.iter().sum::<f64>() / self.rtts_ms.len().max(1) as f64
    }

    /// The `q` quantile of RTT (nearest rank; ms).
    pub fn quantile(&self, q: f64) -> f64 {
        let mut v = self.rtts_ms.clone();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(f64::total_cmp);
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }
}

/// Ping `to` from the namespace of `from`: `count` requests, `interval_s`
/// apart, waiting at most `wait_s` for each. Does not fail when replies are missing.
pub fn ping(lab: &Lab, from: &str, to: &str, count: u32, interval_s: f64, wait_s: u32) -> Result<PingStats> {
    let (c, i, w) = (count.to_string(), format!("{interval_s}"), wait_s.to_string());
    let ns = lab.ns(from);
    let argv = [
        "ip", "netns", "exec", &ns, "ping", "-n", "-c", &c, "-i", &i, "-W", &w, to,
    ];
    Ok(PingStats::parse(&lab.sh.capture(&argv)?))
}

/// Time until `from` gets its first reply from `to` (single pings, each
/// given 200 ms), or `None` after `limit`.
pub fn first_reply(lab: &Lab, from: &str, to: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit && !lab.sh.stopped() {
        if lab.probe(from, &["ping", "-n", "-c", "1", "-W", "0.2", to]) {
            return Some(start.elapsed());
        }
    }
    None
}

/// One iperf3 TCP run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IperfResult {
    /// Received throughput (Gbit/s).
    pub gbps: f64,
    /// TCP retransmits the sender counted.
    pub retransmits: u64,
}

/// iperf3 TCP for `secs` from VM `client` to VM `server`.
pub fn iperf(lab: &Lab, client: &str, server: &str, secs: u32) -> Result<IperfResult> {
    let sip = lab.vm(server)?.ip.to_string();
    let srv = iperf_server(lab, server)?;
    let t = secs.to_string();
    let argv = ["iperf3", "-c", sip.as_str(), "-t", t.as_str(), "-J"];
    let mut last = None;
    for _ in 0..3 {
        match lab.exec(client, &argv) {
            Ok(out) => {
                last = Some(Ok(out));
                break;
            }
            Err(e) => last = Some(Err(e)),
        }
        lab.sh.check()?;
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(srv);
    let out = last.context("iperf3 did not run")??;
    parse_iperf(&out)
}

/// A one-off iperf3 server in VM `server` (it exits after one test),
/// returned once it listens (a loaded machine can take a while to start it;
/// connecting early is "Connection refused").
pub fn iperf_server(lab: &Lab, server: &str) -> Result<KillOnDrop> {
    let srv = KillOnDrop(
        lab.sh
            .spawn(&["ip", "netns", "exec", &lab.ns(server), "iperf3", "-s", "-1"])?,
    );
    let listening = ["ss", "-Hltn", "sport = :5201"];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !lab
        .exec(server, &listening)
        .is_ok_and(|out| !out.trim().is_empty())
    {
        lab.sh.check()?;
        if std::time::Instant::now() > deadline {
            bail!("iperf3 server in {server} did not listen within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(srv)
}

/// New TCP connections per second from VM `client` to VM `server` (port
/// 22, which the lab's security group opens and nothing else listens on),
/// over `secs` seconds, with `rvs-lab conn-rate` on both ends.
pub fn conn_rate(lab: &Lab, client: &str, server: &str, secs: f64) -> Result<ConnRate> {
    use std::io::BufRead;
    let me = std::env::current_exe()?.display().to_string();
    let to = format!("{}:22", lab.vm(server)?.ip);
    let serve_secs = format!("{}", secs + 5.0);
    let mut srv = KillOnDrop(lab.sh.spawn(&[
        "ip",
        "netns",
        "exec",
        &lab.ns(server),
        &me,
        "conn-rate",
        "serve",
        "--port",
        "22",
        "--seconds",
        &serve_secs,
    ])?);
    let mut line = String::new();
    let listening = srv
        .0
        .stdout
        .take()
        .map(|o| std::io::BufReader::new(o).read_line(&mut line));
    if !matches!(listening, Some(Ok(_))) || line.trim() != "listening" {
        bail!("the connection-rate server in {server} did not start: {line:?}");
    }
    // Room for many short connections: the whole ephemeral range.
    lab.exec(
        client,
        &["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"],
    )?;
    let s = format!("{secs}");
    let threads = blast_threads().to_string();
    let out = lab.exec(
        client,
        &[
            &me,
            "conn-rate",
            "connect",
            "--to",
            &to,
            "--seconds",
            &s,
            "--threads",
            &threads,
        ],
    );
    drop(srv);
    let c = crate::conn_rate::parse(&out?).context("conn-rate connect printed no count")?;
    Ok(ConnRate {
        per_s: c.done as f64 / secs,
        failed: c.failed,
    })
}

/// What [`conn_rate`] measured.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ConnRate {
    /// Connections set up and closed per second.
    pub per_s: f64,
    /// Connects that failed or timed out.
    pub failed: u64,
}

/// Read iperf3's JSON summary.
pub fn parse_iperf(json: &str) -> Result<IperfResult> {
    let v: serde_json::Value = serde_json::from_str(json).context("iperf3 -J output is not JSON")?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        bail!("iperf3: {e}");
    }
    let bps = v
        .pointer("/end/sum_received/bits_per_second")
        .and_then(|b| b.as_f64())
        .context("iperf3 -J output has no end.sum_received")?;
    Ok(IperfResult {
        gbps: bps / 1e9,
        retransmits: v
            .pointer("/end/sum_sent/retransmits")
            .and_then(|r| r.as_u64())
            .unwrap_or(0),
    })
}

/// A small-packet run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PpsResult {
    /// Frames the generator sent per second.
    pub sent_pps: f64,
    /// Frames the receiver's interface counted per second.
    pub received_pps: f64,
    /// Frames received in all.
    pub received: u64,
    /// CPU seconds the switch's processes used (rvs daemons; 0 for the kernel).
    pub daemon_cpu_s: f64,
    /// Softirq CPU seconds of the whole machine.
    pub softirq_cpu_s: f64,
}

/// The `rx_packets` counter of `vm`'s interface.
fn rx_packets(lab: &Lab, vm: &str) -> Result<u64> {
    let path = format!("/sys/class/net/{}/statistics/rx_packets", lab.vm_if(vm));
    let v = lab.exec(vm, &["cat", &path])?;
    v.trim().parse().with_context(|| format!("{path}: {v:?}"))
}

/// CPU seconds: `(processes in pids, softirq of the machine)`.
pub fn cpu_seconds(pids: &[u32]) -> (f64, f64) {
    const TICK: f64 = 0.01; // USER_HZ is 100 on Linux.
    let procs: u64 = pids
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .map(|s| {
            // Fields after the ")" that ends the command name, from state:
            // utime is the 12th, stime the 13th (proc(5)).
            let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
            let f: Vec<&str> = rest.split_whitespace().collect();
            let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            field(11) + field(12)
        })
        .sum();
    let softirq: u64 = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(7).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0);
    (procs as f64 * TICK, softirq as f64 * TICK)
}

/// Sending threads of the small-packet run: one per CPU. A kernel datapath
/// runs in the sender's system call, so a single thread measures the sender
/// (measured: one thread 166 kpps, two 329 kpps through rvs's eBPF path).
pub fn blast_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
}

/// 64-byte UDP frames from `from` to `to` for `secs`, with `rvs blast` (an
/// AF_PACKET generator, [`blast_threads`] threads), counted at `to`'s interface.
pub fn pps(lab: &Lab, from: &str, to: &str, secs: f64, switch_pids: &[u32]) -> Result<PpsResult> {
    let (a, b) = (lab.vm(from)?, lab.vm(to)?);
    let (rvs, port) = (
        lab.rvs.display().to_string(),
        format!("afpacket:{}", lab.vm_if(from)),
    );
    let (smac, dmac) = (vm_mac(a), vm_mac(b));
    let (sip, dip, s) = (a.ip.to_string(), b.ip.to_string(), format!("{secs}"));
    let threads = blast_threads().to_string();
    // Warm the path (ARP, caches) so the count measures forwarding, not set-up.
    ping(lab, from, &dip, 3, 0.05, 1)?;
    let before = rx_packets(lab, to)?;
    let cpu0 = cpu_seconds(switch_pids);
    let out = lab.exec(
        from,
        &[
            &rvs,
            "blast",
            "--port",
            &port,
            "--src-mac",
            &smac,
            "--dst-mac",
            &dmac,
            "--src-ip",
            &sip,
            "--dst-ip",
            &dip,
            "--seconds",
            &s,
            "--flows",
            "16",
            "--threads",
            &threads,
        ],
    )?;
    // Frames still in flight land within a few ms.
    std::thread::sleep(Duration::from_millis(200));
    let cpu1 = cpu_seconds(switch_pids);
    let received = rx_packets(lab, to)?.saturating_sub(before);
    let sent: u64 = out
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("rvs blast said {out:?}"))?;
    Ok(PpsResult {
        sent_pps: sent as f64 / secs,
        received_pps: received as f64 / secs,
        received,
        daemon_cpu_s: cpu1.0 - cpu0.0,
        softirq_cpu_s: cpu1.1 - cpu0.1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_output_is_read() {
        let out = "PING 198.19.1.13 (198.19.1.13) 56(84) bytes of data.
64 bytes from 198.19.1.13: icmp_seq=1 ttl=64 time=0.210 ms
64 bytes from 198.19.1.13: icmp_seq=2 ttl=64 time=0.090 ms
64 bytes from 198.19.1.13: icmp_seq=4 ttl=64 time=0.120 ms

--- 198.19.1.13 ping statistics ---
4 packets transmitted, 3 received, 25% packet loss, time 3004ms
rtt min/avg/max/mdev = 0.090/0.140/0.210/0.051 ms";
        let s = PingStats::parse(out);
        assert_eq!((s.sent, s.received), (4, 3));
        assert_eq!(s.rtts_ms, vec![0.21, 0.09, 0.12]);
        assert_eq!(s.min(), 0.09);
        assert!((s.avg() - 0.14).abs() < 1e-9);
        assert_eq!(s.quantile(0.99), 0.21);
        assert_eq!(s.quantile(0.5), 0.12);
        assert!(PingStats::default().quantile(0.5).is_nan());
    }

    #[test]
    fn iperf_json_is_read_and_errors_are_reported() {
        let ok = r#"{"end":{"sum_sent":{"retransmits":7},"sum_received":{"bits_per_second":2.5e9}}}"#;
        assert_eq!(
            parse_iperf(ok).unwrap(),
            IperfResult {
                gbps: 2.5,
                retransmits: 7
            }
        );
        let e = parse_iperf(r#"{"error":"unable to connect to server"}"#).unwrap_err();
        assert!(e.to_string().contains("unable to connect"));
        assert!(parse_iperf("garbage").is_err());
    }

    #[test]
    fn cpu_of_this_process_is_counted() {
        // Burn some CPU so this process has ticks to count.
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let (p, s) = cpu_seconds(&[std::process::id()]);
        assert!(p >= 0.1, "{p} s of CPU after a 0.3 s busy loop");
        assert!(s >= 0.0);
        assert_eq!(cpu_seconds(&[]).0, 0.0);
    }
}
