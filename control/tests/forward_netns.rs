//! Root-only: the `rvs forward` switch between two "hosts" in namespaces this
//! test creates (per-run prefix; removed on drop, also on failure), with AF_XDP
//! and AF_PACKET ports: ping and a short TCP run cross it, and after `kill -9`
//! the interfaces are the kernel's again (no XDP program left behind).

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rvs_dataplane::testing::netns::{sh, Netns, TwoHosts};

fn ns_run(ns: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("ip netns exec")
}

struct Lab {
    net: Netns,
    forwarder: Option<Child>,
    server: Option<Child>,
    pidfile: PathBuf,
}

impl Lab {
    fn ns(&self, n: &str) -> String {
        self.net.name(n)
    }

    fn new(tag: &str, endpoints_offload: bool) -> Lab {
        let mut net = Netns::new(&format!("rvf{tag}"));
        let TwoHosts {
            h1, h2, sw, a, b, sa, ..
        } = net.two_hosts(Some("198.18.30"));
        let lab = Lab {
            pidfile: std::env::temp_dir().join(format!("{}.pid", net.name(""))),
            net,
            forwarder: None,
            server: None,
        };
        sh(&["ip", "-n", &h1, "addr", "add", "198.18.31.1/24", "dev", &a]);
        sh(&["ip", "-n", &sw, "addr", "add", "198.18.31.254/24", "dev", &sa]);
        for (n, d) in [(&h1, &a), (&h2, &b)] {
            // AF_XDP loses the partial-checksum state of offloaded frames: either
            // the endpoints complete their checksums, or rvs does (`csum`).
            if !endpoints_offload {
                ns_run(n, &["ethtool", "-K", d, "tx", "off"]);
            }
        }
        lab
    }

    fn start(&mut self, ty: &str, opts: &str, extra: &[&str]) {
        let (sw, sa, sb) = (self.ns("sw"), self.ns("sa"), self.ns("sb"));
        // (a killed forwarder's pidfile is still there: wait for the new one's)
        let _ = std::fs::remove_file(&self.pidfile);
        let child = Command::new("ip")
            .args(["netns", "exec", &sw, env!("CARGO_BIN_EXE_rvs"), "forward"])
            // (a `system` port is the kernel datapath's; the others are
            // userspace I/O, the afxdp datapath's)
            .args(["--datapath", if ty == "system" { "ebpf" } else { "afxdp" }])
            .args([
                "--port",
                &format!("{ty}:{sa}{opts}"),
                "--port",
                &format!("{ty}:{sb}{opts}"),
            ])
            .args(extra)
            .arg("--pidfile")
            .arg(&self.pidfile)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rvs forward");
        self.forwarder = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.pidfile.exists() {
            if let Some(st) = self.forwarder.as_mut().unwrap().try_wait().unwrap() {
                let out = self.forwarder.take().unwrap().wait_with_output().unwrap();
                panic!(
                    "rvs forward exited ({st}): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert!(Instant::now() < deadline, "rvs forward did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ping(&self, from: &str, to: &str, count: &str) -> bool {
        ns_run(&self.ns(from), &["ping", "-c", count, "-i", "0.2", "-W", "2", to])
            .status
            .success()
    }

    /// A 2-second TCP run h1 -> h2; returns the bytes received.
    fn iperf(&mut self) -> u64 {
        let server = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns("h2"),
                "iperf3",
                "-s",
                "-1",
                "-B",
                "198.18.30.2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iperf3 server");
        self.server = Some(server);
        std::thread::sleep(Duration::from_millis(500));
        let out = ns_run(
            &self.ns("h1"),
            &[
                "iperf3",
                "-c",
                "198.18.30.2",
                "-t",
                "2",
                "-J",
                "--connect-timeout",
                "3000",
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let _ = self.server.take().map(|mut s| s.wait());
        // "sum_received": { ..., "bytes": N, ... }
        let i = text
            .find("\"sum_received\"")
            .unwrap_or_else(|| panic!("iperf3 output: {text}"));
        let rest = &text[i..];
        let j = rest.find("\"bytes\":").expect("bytes");
        rest[j + 8..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// SIGTERM, by our child's PID; waits for the exit.
    fn stop_forwarder(&mut self) {
        if let Some(mut c) = self.forwarder.take() {
            // SAFETY: kill(2) on our own child's PID; no memory is involved.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    fn kill_forwarder(&mut self) {
        if let Some(mut c) = self.forwarder.take() {
            let _ = c.kill(); // SIGKILL, by our child's PID
            let _ = c.wait();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.kill_forwarder();
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = std::fs::remove_file(&self.pidfile);
        // (the namespaces go after this, with `net`)
    }
}

fn root_or_skip() -> bool {
    rvs_dataplane::testing::netns::root_or_skip("forward_netns")
}

fn forward_through(ty: &str, tag: &str, opts: &str, endpoints_offload: bool, extra: &[&str]) {
    if !root_or_skip() {
        return;
    }
    let mut lab = Lab::new(tag, endpoints_offload);
    lab.start(ty, opts, extra);
    assert!(lab.ping("h1", "198.18.30.2", "3"), "ping across rvs ({ty})");
    let bytes = lab.iperf();
    assert!(
        bytes > 1_000_000,
        "TCP across rvs ({ty}) moved only {bytes} bytes"
    );
    eprintln!("{ty}: {bytes} bytes in 2 s of TCP");
    lab.kill_forwarder();
    let link = String::from_utf8_lossy(&ns_run(&lab.ns("sw"), &["ip", "link", "show", &lab.ns("sa")]).stdout)
        .into_owned();
    assert!(
        !link.contains("xdp"),
        "no XDP program outlives the process: {link}"
    );
    // The kernel owns the interface again: its own address answers.
    assert!(
        lab.ping("h1", "198.18.31.254", "2"),
        "interface usable by the kernel after kill -9 ({ty})"
    );
}

#[test]
fn root_afxdp_forwarding_and_kill() {
    forward_through("afxdp", "x", "", false, &[]);
}

#[test]
fn root_afpacket_forwarding_and_kill() {
    forward_through("afpacket", "p", "", false, &[]);
}

/// Endpoints keep tx checksum offload on; rvs completes the checksums.
#[test]
fn root_afxdp_completes_checksums_for_offloading_endpoints() {
    forward_through("afxdp", "c", ",csum", true, &[]);
}

/// Two PMD threads, each polling one port and sending to both.
#[test]
fn root_afxdp_with_two_pmd_threads() {
    forward_through(
        "afxdp",
        "t",
        "",
        false,
        &["--pmd-threads", "2", "--poll", "adaptive"],
    );
}

/// `rvs forward` with the kernel datapath (the default): the flows run in
/// TC programs, the forwarder's death (kill -9) leaves them forwarding, and
/// a clean stop takes every filter away.
#[test]
fn root_ebpf_forwarding_survives_kill_and_stops_clean() {
    if !root_or_skip() {
        return;
    }
    let mut lab = Lab::new("e", true);
    lab.start("system", "", &[]);
    assert!(lab.ping("h1", "198.18.30.2", "3"), "ping across rvs (ebpf)");
    let bytes = lab.iperf();
    assert!(
        bytes > 1_000_000,
        "TCP across rvs (ebpf) moved only {bytes} bytes"
    );
    let filters = |lab: &Lab| {
        let sw = lab.ns("sw");
        let out = ns_run(&sw, &["tc", "filter", "show", "dev", &lab.ns("sa"), "ingress"]).stdout;
        String::from_utf8_lossy(&out).into_owned()
    };
    assert!(filters(&lab).contains("rvs_ingress"), "{}", filters(&lab));
    lab.kill_forwarder();
    assert!(
        lab.ping("h1", "198.18.30.2", "3"),
        "established flows forward with the forwarder dead"
    );
    lab.start("system", "", &[]);
    assert!(lab.ping("h1", "198.18.30.2", "2"), "ping after the restart");
    lab.stop_forwarder();
    assert_eq!(filters(&lab), "", "a clean stop removes the filters");
}
