//! Root-only: attach the XDP program to a veth inside namespaces this test
//! creates (per-run prefix, removed on drop, also on failure), and check that
//! with no AF_XDP socket bound the kernel still gets every frame (XDP_PASS).

use rvs_bpf::{BpfError, XdpMode, XskRedirect};
use std::process::Command;

fn sh(args: &[&str]) -> std::process::Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run command");
    assert!(
        out.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Two namespaces joined by a veth pair; removed on drop.
struct Netns {
    a: String,
    b: String,
    va: String,
}

impl Netns {
    fn new() -> Netns {
        let p = format!("rvsb{}", std::process::id() % 100_000);
        let n = Netns {
            a: format!("{p}a"),
            b: format!("{p}b"),
            va: format!("{p}va"),
        };
        let vb = format!("{p}vb");
        sh(&["ip", "netns", "add", &n.a]);
        sh(&["ip", "netns", "add", &n.b]);
        sh(&[
            "ip", "link", "add", &n.va, "netns", &n.a, "type", "veth", "peer", "name", &vb, "netns", &n.b,
        ]);
        sh(&["ip", "-n", &n.a, "addr", "add", "198.18.10.1/24", "dev", &n.va]);
        sh(&["ip", "-n", &n.b, "addr", "add", "198.18.10.2/24", "dev", &vb]);
        sh(&["ip", "-n", &n.a, "link", "set", &n.va, "up"]);
        sh(&["ip", "-n", &n.b, "link", "set", &vb, "up"]);
        n
    }

    fn link_show(&self) -> String {
        String::from_utf8_lossy(&sh(&["ip", "-n", &self.a, "link", "show", &self.va]).stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth pair with it.
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn root_xdp_pass_keeps_the_interface_usable_and_detaches_on_drop() {
    if !is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root: this test must not be skipped there"
        );
        eprintln!("skipped: needs root (namespaces, XDP)");
        return;
    }
    let ns = Netns::new();
    let (a, b, va) = (ns.a.clone(), ns.b.clone(), ns.va.clone());
    let show = |ns: &Netns| ns.link_show();
    std::thread::scope(|s| {
        s.spawn(|| {
            // This thread moves into namespace `a`, where the veth end lives.
            let f = std::fs::File::open(format!("/run/netns/{a}")).unwrap();
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();

            let prog = XskRedirect::attach(&va, None).expect("attach");
            assert_eq!(prog.mode(), XdpMode::Native, "veth supports native XDP");
            assert!(show(&ns).contains("xdp"), "ip link shows the program");

            // A second attach on the same interface is refused, clearly.
            match XskRedirect::attach(&va, None) {
                Err(BpfError::InUse { prog: p, .. }) => assert_eq!(p, rvs_bpf::PROGRAM_NAME),
                other => panic!("expected InUse, got {other:?}"),
            }

            let ping = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &b,
                    "ping",
                    "-c",
                    "3",
                    "-i",
                    "0.2",
                    "-W",
                    "2",
                    "198.18.10.1",
                ])
                .output()
                .unwrap();
            assert!(
                ping.status.success(),
                "ping through XDP_PASS: {}",
                String::from_utf8_lossy(&ping.stdout)
            );
            let c = prog.counters().unwrap();
            assert_eq!(c.redirected, 0, "no socket is bound");
            assert!(c.passed >= 3, "echo requests were seen and passed: {c:?}");

            drop(prog);
            assert!(
                !show(&ns).contains("xdp"),
                "dropping the handle detaches the program"
            );

            // Generic mode on request.
            let prog = XskRedirect::attach(&va, Some(XdpMode::Generic)).expect("generic attach");
            assert_eq!(prog.mode(), XdpMode::Generic);
            assert!(show(&ns).contains("xdpgeneric"));
        });
    });
}
