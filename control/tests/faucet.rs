//! Root-only: Faucet, a production OpenFlow 1.3 controller (from the venv
//! `scripts/install-deps.sh` makes), runs a bridge of rvs: one VLAN, three
//! hosts (namespaces this test makes and removes). The bridge is in secure
//! mode with no rules, so nothing passes until Faucet has programmed its
//! pipeline (VLAN, eth_src, eth_dst and flood tables: push/pop VLAN,
//! goto_table, flooding by port lists) and learned each host from a
//! PACKET_IN of the `eth_src` table's `CONTROLLER:96` rule; then every host
//! pings every other. For the AF_XDP and the eBPF datapath, and with
//! Faucet's `group_table` (floods through an ALL group).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{daemon_with_bridge, ofctl_in, rvs_ok, Reaped};
use rvs_dataplane::testing::netns::{root_or_skip, sh, Netns};

/// Faucet's cookie on every rule it installs.
const FAUCET_COOKIE: &str = "cookie=0x5adc15c0";

/// The venv with Faucet, or `None` (skipped) when it is not there; in CI
/// it must be, since `make test` runs the install first.
fn venv() -> Option<PathBuf> {
    let dir = std::env::var_os("RVS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv")));
    if dir.join("bin/faucet").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{}: no Faucet (scripts/install-deps.sh installs it)",
        dir.display()
    );
    eprintln!(
        "skipped: no Faucet in {} (scripts/install-deps.sh installs it)",
        dir.display()
    );
    None
}

fn ping(ns: &str, ip: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "1", ip])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn mac_of(ns: &str, dev: &str) -> String {
    let out = sh(&["ip", "-n", ns, "-br", "link", "show", "dev", dev]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

fn faucet_runs_a_bridge(datapath: &str, group_table: bool) {
    let Some(venv) = venv() else { return };
    let tag = match (datapath, group_table) {
        ("ebpf", _) => "rfe",
        (_, true) => "rfg",
        _ => "rfx",
    };
    let mut net = Netns::new(tag);
    let sw = net.add("sw");
    let hosts: Vec<(String, String, String)> = (1..=3)
        .map(|i| {
            let h = net.add(&format!("h{i}"));
            let (a, s) = (net.name(&format!("a{i}")), net.name(&format!("s{i}")));
            net.veth(&h, &a, &sw, &s);
            sh(&[
                "ip",
                "-n",
                &h,
                "addr",
                "add",
                &format!("198.18.64.{i}/24"),
                "dev",
                &a,
            ]);
            (h, a, s)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<&str> = hosts.iter().map(|(_, _, s)| s.as_str()).collect();
    let _daemon = daemon_with_bridge(&sw, dir.path(), datapath, &ports);
    let rvs = |args: &[&str]| rvs_ok(dir.path(), args);
    // Secure and empty: only what Faucet installs forwards.
    rvs(&["set-fail-mode", "br0", "secure"]);
    rvs(&["del-flows", "br0"]);
    rvs(&["set-controller", "br0", "tcp:127.0.0.1:6653", "ptcp:6654"]);
    assert!(
        !ping(&hosts[0].0, "198.18.64.2"),
        "a bridge with no rules forwarded"
    );

    // Faucet names the switch by its datapath id: ask the bridge, as a
    // user would with `ovs-ofctl show`.
    let deadline = Instant::now() + Duration::from_secs(10);
    let dpid = loop {
        let (code, out, _) = ofctl_in(&sw, &["show", "tcp:127.0.0.1:6654"]);
        if let Some(d) = out
            .split("dpid:")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
        {
            break d.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no FEATURES from the bridge ({code}): {out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let config = dir.path().join("faucet.yaml");
    std::fs::write(
        &config,
        format!(
            "vlans:\n  office:\n    vid: 100\ndps:\n  sw1:\n    dp_id: 0x{dpid}\n    hardware: \"Open vSwitch\"\n    group_table: {}\n    interfaces:\n{}",
            if group_table { "True" } else { "False" },
            (1..=3)
                .map(|i| format!("      {i}:\n        native_vlan: office\n"))
                .collect::<String>()
        ),
    )
    .unwrap();
    let log = dir.path().join("faucet.log");
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let _faucet = Reaped(
        Command::new("ip")
            .args(["netns", "exec", &sw])
            .arg(venv.join("bin/faucet"))
            .args([
                "--ryu-ofp-listen-host=127.0.0.1",
                "--ryu-ofp-tcp-listen-port=6653",
            ])
            .env("PATH", path)
            .env("FAUCET_CONFIG", &config)
            .env("FAUCET_LOG", &log)
            .env("FAUCET_EXCEPTION_LOG", dir.path().join("faucet-exceptions.log"))
            .env("FAUCET_PROMETHEUS_ADDR", "127.0.0.1")
            .env("FAUCET_PROMETHEUS_PORT", "9302")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("faucet.out")).unwrap())
            .spawn()
            .unwrap(),
    );
    let faucet_said = || {
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
        format!(
            "faucet.log:\n{}\nexceptions:\n{}\nstderr:\n{}",
            read("faucet.log"),
            read("faucet-exceptions.log"),
            read("faucet.out")
        )
    };
    // Faucet connects (the bridge dials it with backoff) and programs its
    // pipeline.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !rvs(&["dump-flows", "br0"]).contains("actions=CONTROLLER:96") {
        assert!(
            Instant::now() < deadline,
            "Faucet did not program the bridge:\n{}\n{}",
            rvs(&["dump-flows", "br0"]),
            faucet_said()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every host reaches every other: the first packets go to Faucet, which
    // learns their sources and installs eth_src / eth_dst rules.
    for (from, (h, _, _)) in hosts.iter().enumerate() {
        for to in (1..=3).filter(|t| *t != from + 1) {
            let ip = format!("198.18.64.{to}");
            let deadline = Instant::now() + Duration::from_secs(15);
            while !ping(h, &ip) {
                assert!(
                    Instant::now() < deadline,
                    "h{} cannot reach {ip}:\n{}\n{}",
                    from + 1,
                    rvs(&["dump-flows", "br0"]),
                    faucet_said()
                );
            }
        }
    }
    let dump = rvs(&["dump-flows", "br0"]);
    for (h, a, _) in &hosts {
        let mac = mac_of(h, a);
        assert!(
            dump.lines()
                .any(|l| l.contains(FAUCET_COOKIE) && l.contains(&format!("dl_src={mac}"))),
            "Faucet learned {mac} (a PACKET_IN reached it):\n{dump}"
        );
    }
    assert!(!dump.contains("NORMAL"), "{dump}");
    // With group_table, Faucet floods through an ALL group of its own.
    assert_eq!(dump.contains("actions=group:"), group_table, "{dump}");
    assert!(faucet_said().contains("3 hosts total"), "{}", faucet_said());
}

#[test]
fn root_faucet_runs_a_bridge_afxdp() {
    if root_or_skip("faucet_runs_a_bridge_afxdp") {
        faucet_runs_a_bridge("afxdp", false);
    }
}

#[test]
fn root_faucet_floods_with_groups_afxdp() {
    if root_or_skip("faucet_floods_with_groups_afxdp") {
        faucet_runs_a_bridge("afxdp", true);
    }
}

#[test]
fn root_faucet_runs_a_bridge_ebpf() {
    if root_or_skip("faucet_runs_a_bridge_ebpf") {
        faucet_runs_a_bridge("ebpf", false);
    }
}
