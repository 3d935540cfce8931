//! Helpers shared by control's integration tests: run the real `rvs` binary,
//! and start a daemon (inside a namespace or not) that answers on its socket.
// Each test file uses a part of this module.
#![allow(dead_code)]

pub mod pmd;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `rvs --run-dir DIR ARGS`: (exit code, stdout, stderr).
pub fn rvs_at(dir: &Path, args: &[&str]) -> (i32, String, String) {
    run(Command::new(env!("CARGO_BIN_EXE_rvs"))
        .arg("--run-dir")
        .arg(dir)
        .args(args))
}

/// Run a command to its end: (exit code, stdout, stderr).
pub fn run(c: &mut Command) -> (i32, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `rvs --run-dir DIR ARGS`, which must succeed; its stdout.
pub fn rvs_ok(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = rvs_at(dir, args);
    assert_eq!(code, 0, "rvs {}: {err}", args.join(" "));
    out
}

/// A command that runs `rvs` as a daemon outside any test namespace. As root
/// it runs in a private network namespace of its own (`unshare --net`, with
/// loopback up), which the kernel removes with the process: the taps of its
/// bridges' internal ports, which outlive a daemon as OVS's do, never land in
/// the host's namespace. The child's PID is the daemon's (both `unshare` and
/// `sh` exec).
pub fn rvs_daemon_command() -> Command {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Command::new(env!("CARGO_BIN_EXE_rvs"));
    }
    let mut c = Command::new("unshare");
    c.args(["--net", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_rvs"));
    c
}

/// Start `rvs daemon` with the afxdp datapath (what these tests exercise;
/// `ebpf_daemon.rs` runs the kernel one) on run directory `dir`
/// (configuration `dir/conf.json`, no metrics), inside namespace `ns` when given, and wait until its control
/// socket answers (10 s at most).
pub fn spawn_daemon(ns: Option<&str>, dir: &Path) -> Child {
    spawn_daemon_with(ns, dir, "afxdp")
}

/// [`spawn_daemon`] with datapath `datapath` (`afxdp` or `ebpf`).
pub fn spawn_daemon_with(ns: Option<&str>, dir: &Path, datapath: &str) -> Child {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_rvs")]);
            c
        }
        None => rvs_daemon_command(),
    };
    let child = cmd
        .arg("--run-dir")
        .arg(dir)
        .args(["daemon", "--datapath", datapath, "--metrics", "off", "--db"])
        .arg(dir.join("conf.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_serving(dir, &child);
    child
}

/// Wait until `child` serves `dir` (10 s at most). A killed daemon's socket
/// may still accept for a while: only a reply with our child's PID counts.
pub fn wait_serving(dir: &Path, child: &Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while rvs_control::daemon::server::serving_pid(dir) != Some(child.id()) {
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The kernel datapath's hits in `rvs dpctl show`'s output.
pub fn kernel_hits(show: &str) -> u64 {
    show.split("hit:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("dpctl show: {show}"))
}

/// Run `f` on a thread in the network namespace of process `pid` (the
/// daemon's own one when the tests run as root: see `rvs_daemon_command`);
/// sockets it makes stay in that namespace wherever they are used later.
pub fn in_netns_of<T: Send + 'static>(pid: u32, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
        // setns moves only this thread; the daemon's namespace is the host's
        // when not root (joining it again is harmless, and refused only
        // without CAP_SYS_ADMIN: then we are already there).
        // SAFETY: setns on a namespace fd we hold open; no memory is passed.
        let _ = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) };
        f()
    })
    .join()
    .unwrap()
}

/// A process of the test's that goes when the test does, pass or fail.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A daemon with datapath `datapath` in namespace `ns` (run directory
/// `dir`) and bridge `br0` with `ports` (devices in `ns`) as device ports
/// of that datapath's kind.
pub fn daemon_with_bridge(ns: &str, dir: &Path, datapath: &str, ports: &[&str]) -> Reaped {
    let daemon = Reaped(spawn_daemon_with(Some(ns), dir, datapath));
    rvs_ok(dir, &["add-br", "br0"]);
    let ty = if datapath == "ebpf" {
        "type=system"
    } else {
        "type=afxdp"
    };
    for p in ports {
        rvs_ok(dir, &["add-port", "br0", p, ty]);
    }
    daemon
}

/// Wait (`secs` at most) until `ok` holds; else fail saying `what`.
pub fn wait_for(secs: u64, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `ovs-ofctl -O OpenFlow13 --timeout=10 ARGS` inside namespace `ns`:
/// (exit code, stdout, stderr).
pub fn ofctl_in(ns: &str, args: &[&str]) -> (i32, String, String) {
    ofctl_as(ns, Some("OpenFlow13"), args)
}

/// `ovs-ofctl [-O PROTO]` in namespace `ns` (`None`: its default, OpenFlow
/// 1.0): (exit code, stdout, stderr).
#[allow(dead_code)]
pub fn ofctl_as(ns: &str, proto: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, "ovs-ofctl", "--timeout=10"]);
    if let Some(p) = proto {
        c.args(["-O", p]);
    }
    run(c.args(args))
}
