//! Helpers shared by control's integration tests: run the real `rvs` binary,
//! and start a daemon (inside a namespace or not) that answers on its socket.
// Each test file uses a part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `rvs --run-dir DIR ARGS`: (exit code, stdout, stderr).
pub fn rvs_at(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rvs"))
        .arg("--run-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
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

/// Start `rvs daemon` on run directory `dir` (configuration `dir/conf.json`,
/// no metrics), inside namespace `ns` when given, and wait until its control
/// socket answers (10 s at most).
pub fn spawn_daemon(ns: Option<&str>, dir: &Path) -> Child {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_rvs")]);
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_rvs")),
    };
    let child = cmd
        .arg("--run-dir")
        .arg(dir)
        .args(["daemon", "--metrics", "off", "--db"])
        .arg(dir.join("conf.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sock = dir.join("rvs.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    // A socket file may be left from a killed daemon: wait until ours answers.
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}
