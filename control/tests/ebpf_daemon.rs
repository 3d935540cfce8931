//! Root-only: a daemon with the eBPF datapath (`--datapath ebpf`) in a switch
//! namespace between two hosts (namespaces this test creates and removes).
//! Established flows run in the kernel; a drop rule stops the very next
//! packet; idle kernel flows expire; `kill -9` of the daemon loses no packet
//! of an established flow, and the restarted daemon (under `ip netns exec`,
//! its predecessor's bpffs went with its mount namespace) takes the kernel
//! flows over through the programs still attached; a clean stop leaves no
//! TC filter behind.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;
use common::{kernel_hits, rvs_ok, wait_serving};
use rvs_dataplane::testing::netns::{root_or_skip, sh, Netns, TwoHosts};

struct Lab {
    net: Netns,
    dir: tempfile::TempDir,
    daemon: Option<Child>,
}

impl Lab {
    fn ns(&self, n: &str) -> String {
        self.net.name(n)
    }

    fn start_daemon(&mut self) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns("sw"), env!("CARGO_BIN_EXE_rvs")])
            .arg("--run-dir")
            .arg(self.dir.path())
            .args([
                "daemon",
                "--datapath",
                "ebpf",
                "--max-idle",
                "1500",
                "--metrics",
                "off",
                "--db",
            ])
            .arg(self.dir.path().join("conf.json"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_serving(self.dir.path(), &child);
        self.daemon = Some(child);
    }

    fn rvs(&self, args: &[&str]) -> String {
        rvs_ok(self.dir.path(), args)
    }

    fn ping(&self, count: &str, interval: &str) -> (bool, String) {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns("h1"),
                "ping",
                "-c",
                count,
                "-i",
                interval,
                "-W",
                "1",
            ])
            .arg("198.18.62.2")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn filters(&self, dev: &str) -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns("sw"),
                "tc",
                "filter",
                "show",
                "dev",
                dev,
                "ingress",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // (the namespaces go after this, with `net`)
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The kernel's flows in `dpctl dump-flows` (the lines after "kernel:").
fn kernel_flows(dump: &str) -> usize {
    dump.lines()
        .skip_while(|l| !l.starts_with("kernel:"))
        .filter(|l| l.contains("actions:"))
        .count()
}

#[test]
fn root_ebpf_daemon_forwards_in_the_kernel_and_survives_kill9() {
    if !root_or_skip("ebpf_daemon_forwards_in_the_kernel_and_survives_kill9") {
        return;
    }
    let mut net = Netns::new("rve");
    let TwoHosts { h1, sw, sa, sb, .. } = net.two_hosts(Some("198.18.62"));
    let mut lab = Lab {
        net,
        dir: tempfile::tempdir().unwrap(),
        daemon: None,
    };
    lab.start_daemon();
    lab.rvs(&["add-br", "br0"]);
    lab.rvs(&["add-port", "br0", &sa, "type=system"]);
    lab.rvs(&["add-port", "br0", &sb, "type=system"]);
    assert!(lab.rvs(&["show"]).contains("datapath_type: ebpf"));
    // Endpoints keep their offloads: the kernel path carries partial checksums.
    let (ok, out) = lab.ping("5", "0.2");
    assert!(ok, "ping across the eBPF datapath: {out}");
    let show = lab.rvs(&["dpctl", "show"]);
    assert!(show.starts_with("ebpf@rvs:"), "{show}");
    let dump = lab.rvs(&["dpctl", "dump-flows"]);
    assert!(kernel_flows(&dump) >= 2, "the flows are in the kernel: {dump}");
    let hit = kernel_hits(&show);
    assert!(hit >= 4, "later pings were kernel hits: {show}");

    // The bridge's internal port: what the host sends through it enters the
    // switch at the tap's egress (the same program), and replies come back
    // to the host through the tap.
    sh(&["ip", "-n", &sw, "addr", "add", "198.18.62.3/24", "dev", "br0"]);
    sh(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
    let out = Command::new("ip")
        .args(["netns", "exec", &sw, "ping", "-c", "4", "-i", "0.2", "-W", "1"])
        .arg("198.18.62.2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the host pings through its internal port: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let show = lab.rvs(&["dpctl", "show"]);
    assert!(
        kernel_hits(&show) >= hit + 3,
        "the host's later pings were kernel hits: {show}"
    );
    // Kernel flow counters reach the rule's.
    std::thread::sleep(Duration::from_millis(1200));
    let flows = lab.rvs(&["dump-flows", "br0"]);
    assert!(!flows.contains("n_packets=0,"), "{flows}");

    // A rule that drops the traffic stops the very next packet: the command
    // returns once the kernel flows it made stale are gone.
    lab.rvs(&["add-flow", "br0", "priority=100,icmp,actions=drop"]);
    let (ok, out) = lab.ping("1", "0.2");
    assert!(!ok, "dropped at once: {out}");
    lab.rvs(&["del-flows", "br0", "icmp"]);
    let (ok, out) = lab.ping("2", "0.2");
    assert!(ok, "forwarded again: {out}");

    // Idle kernel flows go after --max-idle (1.5 s here).
    let deadline = Instant::now() + Duration::from_secs(6);
    while kernel_flows(&lab.rvs(&["dpctl", "dump-flows"])) > 0 {
        assert!(Instant::now() < deadline, "idle kernel flows expire");
        std::thread::sleep(Duration::from_millis(200));
    }

    // kill -9 while pings flow every 10 ms: the kernel keeps forwarding the
    // established flow; a new daemon takes it over.
    let (ok, _) = lab.ping("3", "0.1");
    assert!(ok);
    let pinger = Command::new("ip")
        .args([
            "netns",
            "exec",
            &h1,
            "ping",
            "-c",
            "250",
            "-i",
            "0.01",
            "-W",
            "1",
            "198.18.62.2",
        ])
        .output();
    let pinger = std::thread::spawn(move || pinger);
    std::thread::sleep(Duration::from_millis(400));
    let mut old = lab.daemon.take().unwrap();
    old.kill().unwrap();
    old.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    lab.start_daemon();
    let out = pinger.join().unwrap().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("250 packets transmitted, 250 received"),
        "no ping lost across kill -9 and restart: {text}"
    );
    assert!(lab.ping("2", "0.2").0, "new flows after the restart");

    // A clean stop takes every filter away.
    assert!(lab.filters(&sa).contains("rvs_ingress"));
    let d = lab.daemon.take().unwrap();
    sh(&["kill", "-TERM", &d.id().to_string()]);
    let mut d = d;
    d.wait().unwrap();
    assert!(!lab.filters(&sa).contains("rvs_ingress"), "{}", lab.filters(&sa));
    assert!(!lab.filters(&sb).contains("rvs_ingress"));
}
