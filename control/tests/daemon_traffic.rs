//! Root-only: a daemon in a switch namespace with two AF_XDP ports between two
//! hosts (namespaces this test creates and removes): ping crosses, dump-flows
//! counters grow, pmd-stats and dpctl-dump-flows show the cached flow, and a
//! `kill -9` + restart forwards again with the same configuration and the same
//! port numbers (rules saved as `output:3` still reach the port that was 3).
//! The restart begins while the killed daemon's exit still releases its
//! devices; the internal port's tap (and its address) survives it, and goes
//! with `del-br`.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;
use common::{rvs_ok, spawn_daemon};
use rvs_dataplane::testing::netns::{sh, Netns, TwoHosts};

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
        self.daemon = Some(spawn_daemon(Some(&self.ns("sw")), self.dir.path()));
    }

    fn rvs(&self, args: &[&str]) -> String {
        rvs_ok(self.dir.path(), args)
    }

    fn ping(&self) -> bool {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns("h1"),
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "2",
                "198.18.60.2",
            ])
            .output()
            .unwrap()
            .status
            .success()
    }

    /// kill -9 and start again as soon as the old daemon's lock is free,
    /// while its exit still releases its devices; the old one is reaped after.
    fn kill9_and_restart_at_once(&mut self) {
        let mut old = self.daemon.take().expect("daemon");
        old.kill().unwrap();
        let lock = self.dir.path().join("rvs.lock");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::File::open(&lock).unwrap().try_lock().is_err() {
            assert!(Instant::now() < deadline, "the killed daemon kept its lock");
            std::thread::sleep(Duration::from_millis(1));
        }
        self.start_daemon();
        old.wait().unwrap();
    }

    fn link(&self, ns: &str, dev: &str) -> Option<String> {
        let out = Command::new("ip")
            .args(["-n", ns, "-d", "addr", "show", "dev", dev])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // (the namespaces go after this, with `net`)
        self.kill9();
    }
}

#[test]
fn root_daemon_forwards_counts_and_survives_kill9() {
    if !rvs_dataplane::testing::netns::root_or_skip("daemon_forwards_counts_and_survives_kill9") {
        return;
    }
    let mut net = Netns::new("rvd");
    let TwoHosts { sw, sa, sb, .. } = net.two_hosts(Some("198.18.60"));
    let mut lab = Lab {
        net,
        dir: tempfile::tempdir().unwrap(),
        daemon: None,
    };
    lab.start_daemon();
    lab.rvs(&["add-br", "br0"]);
    // Port numbers with a hole (the defect of issue 15): sa=1, gap=2, sb=3,
    // then gap goes; the rules below are saved as output:1 / output:3 and must
    // still mean sa and sb after a restart.
    lab.rvs(&["add-port", "br0", &sa, "type=afxdp"]);
    lab.rvs(&["add-port", "br0", "gap", "type=memory"]);
    lab.rvs(&["add-port", "br0", &sb, "type=afxdp"]);
    lab.rvs(&["del-port", "gap"]);
    assert!(lab.ping(), "ping across the daemon's switch");
    std::thread::sleep(Duration::from_millis(1200));
    let dump = lab.rvs(&["dump-flows", "br0"]);
    let n: u64 = dump
        .split("n_packets=")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("{dump}"));
    assert!(n >= 6, "NORMAL rule counted the pings: {dump}");
    let stats = lab.rvs(&["pmd-stats"]);
    assert!(
        stats.contains("packets received") && !stats.contains("packets received: 0"),
        "{stats}"
    );
    assert!(lab.rvs(&["dpctl-dump-flows"]).contains("actions:"));
    assert!(
        lab.rvs(&["fdb-show", "br0"]).lines().count() >= 3,
        "two MACs learned"
    );
    lab.rvs(&["del-flows", "br0"]);
    lab.rvs(&["add-flow", "br0", &format!("in_port={sa},actions=output:{sb}")]);
    lab.rvs(&["add-flow", "br0", &format!("in_port={sb},actions=output:{sa}")]);
    assert!(lab.ping(), "ping through the explicit rules");
    let conf = std::fs::read_to_string(lab.dir.path().join("conf.json")).unwrap();
    assert!(conf.contains("output:3"), "{conf}");
    // The bridge's internal port is a tap the host uses: give it an address.
    sh(&["ip", "-n", &sw, "addr", "add", "198.18.61.1/24", "dev", "br0"]);
    let before = lab.link(&sw, "br0").expect("tap br0");
    lab.kill9_and_restart_at_once();
    assert!(lab.rvs(&["show"]).contains(&format!("Port {sa}")));
    // As OVS's internal ports, the tap outlived the crash: same device (its
    // index), its address kept.
    let after = lab.link(&sw, "br0").expect("tap br0 after the restart");
    let index = |t: &str| t.split(':').next().map(str::to_string);
    assert_eq!(index(&before), index(&after), "{before}\n{after}");
    assert!(after.contains("198.18.61.1/24"), "{after}");
    // Started while the old exit was still releasing the AF_XDP sockets, the
    // new daemon waited for them rather than falling back to AF_PACKET.
    for dev in [&sa, &sb] {
        let l = lab.link(&sw, dev).unwrap();
        assert!(l.contains("xdp"), "{dev} has our XDP program again: {l}");
    }
    let dump = lab.rvs(&["dump-flows", "br0"]);
    assert!(dump.contains("actions=output:3"), "{dump}");
    // The restarted daemon re-attached the devices: forwarding again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lab.ping() {
        assert!(Instant::now() < deadline, "forwarding after restart");
    }
    // Deleting the bridge deletes its internal port's device.
    lab.rvs(&["del-br", "br0"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.link(&sw, "br0").is_some() {
        assert!(Instant::now() < deadline, "br0's tap is gone with the bridge");
        std::thread::sleep(Duration::from_millis(20));
    }
}
