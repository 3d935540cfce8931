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

/// A floating IP (`ct(nat)`) on the eBPF datapath: h2 (198.18.62.2) is
/// reached at 198.18.62.111. The kernel program does not translate, so these
/// flows stay in the daemon (every packet goes up); what counts is that the
/// translation happens on that path too: h1's pings to the floating address
/// are answered from it, the tracker holds the translated connection, and
/// no kernel flow carries a `ct(nat)`.
#[test]
fn root_ebpf_daemon_translates_a_floating_ip_in_userspace() {
    if !root_or_skip("ebpf_daemon_translates_a_floating_ip_in_userspace") {
        return;
    }
    let mut net = Netns::new("rvn");
    let TwoHosts {
        h1, h2, sa, sb, b, ..
    } = net.two_hosts(Some("198.18.62"));
    let mut lab = Lab {
        net,
        dir: tempfile::tempdir().unwrap(),
        daemon: None,
    };
    lab.start_daemon();
    lab.rvs(&["add-br", "br0"]);
    lab.rvs(&["add-port", "br0", &sa, "type=system"]);
    lab.rvs(&["add-port", "br0", &sb, "type=system"]);
    let h2_mac = String::from_utf8(
        sh(&[
            "ip",
            "netns",
            "exec",
            &h2,
            "cat",
            &format!("/sys/class/net/{b}/address"),
        ])
        .stdout,
    )
    .unwrap();
    let h2_mac = h2_mac.trim();
    // The floating address answers ARP with a MAC of its own; inbound to it
    // is translated to h2 (zone 7), h2's replies back; the rest is NORMAL.
    let fip_mac = "02:00:00:00:00:6f";
    let flows = [
        format!(
            "priority=100,arp,arp_op=1,arp_tpa=198.18.62.111,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],\
             mod_dl_src:{fip_mac},load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],\
             load:0x02000000006f->NXM_NX_ARP_SHA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],\
             load:0xc6123e6f->NXM_OF_ARP_SPA[],in_port"
        ),
        "priority=100,ip,nw_dst=198.18.62.111,actions=ct(commit,zone=7,table=1,nat(dst=198.18.62.2))".into(),
        "priority=100,ip,nw_src=198.18.62.2,nw_dst=198.18.62.1,actions=ct(zone=7,table=1,nat)".into(),
        // Direct traffic to h2 is tracked in the same zone, so its replies
        // are +est+rpl there (an echo reply nobody asked for is +inv).
        "priority=90,ip,nw_dst=198.18.62.2,actions=ct(commit,zone=7,table=1,nat)".into(),
        "priority=0,actions=NORMAL".into(),
        format!("table=1,priority=10,ct_state=+trk-rpl,ip,nw_dst=198.18.62.2,actions=mod_dl_dst:{h2_mac},NORMAL"),
        format!("table=1,priority=10,ct_state=+trk+rpl,ip,nw_src=198.18.62.111,actions=mod_dl_src:{fip_mac},NORMAL"),
        "table=1,priority=5,ct_state=+trk-inv,ip,actions=NORMAL".into(),
        "table=1,priority=0,actions=drop".into(),
    ];
    for f in &flows {
        lab.rvs(&["add-flow", "br0", f]);
    }
    let out = Command::new("ip")
        .args(["netns", "exec", &h1, "ping", "-c", "5", "-i", "0.2", "-W", "1"])
        .arg("198.18.62.111")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the floating address answers: {text}");
    assert!(
        text.contains("from 198.18.62.111"),
        "replies come from the floating address: {text}"
    );
    let ct = lab.rvs(&["dump-conntrack", "zone=7"]);
    assert!(
        ct.contains("orig=(src=198.18.62.1,dst=198.18.62.111")
            && ct.contains("reply=(src=198.18.62.2,dst=198.18.62.1"),
        "the tracker holds the translated connection: {ct}"
    );
    // h2 is still reached by its own address, untranslated.
    let (ok, text) = lab.ping("2", "0.2");
    assert!(
        ok,
        "h2 by its own address: {text}\n{}\n{}",
        lab.rvs(&["dump-conntrack", "zone=7"]),
        lab.rvs(&["dump-flows", "br0"])
    );
    // The daemon's cache holds the translating flows; the kernel's does not.
    let dump = lab.rvs(&["dpctl", "dump-flows"]);
    let (user, kernel) = dump.split_once("kernel:").expect("a kernel section");
    assert!(user.contains("nat(dst=198.18.62.2)"), "{dump}");
    assert!(!kernel.contains("nat"), "no kernel flow translates: {dump}");
}
