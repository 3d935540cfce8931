//! The daemon and the CLI, driven as a user would: a daemon on a temporary run
//! directory and configuration file (no root needed: ports of type `memory` and
//! `patch` have no device).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{rvs_at, rvs_daemon_command};

struct Daemon {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
}

impl Daemon {
    fn start(dir: tempfile::TempDir, extra: &[&str]) -> Result<Daemon, String> {
        let mut child = rvs_daemon_command()
            .arg("--run-dir")
            .arg(dir.path())
            .args(["daemon", "--datapath", "afxdp", "--db"])
            .arg(dir.path().join("conf.json"))
            .args(if extra.contains(&"--metrics") {
                &[][..]
            } else {
                &["--metrics", "off"][..]
            })
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        // A killed daemon's socket may still accept: wait for our PID's reply.
        while rvs_control::daemon::server::serving_pid(dir.path()) != Some(child.id()) {
            if let Some(_st) = child.try_wait().unwrap() {
                let out = child.wait_with_output().unwrap();
                return Err(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            assert!(Instant::now() < deadline, "daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Daemon {
            child: Some(child),
            dir: Some(dir),
        })
    }

    fn path(&self) -> &Path {
        self.dir.as_ref().expect("dir").path()
    }

    /// GET /metrics from `addr`, in the daemon's network namespace (its own
    /// when the test runs as root: see `rvs_daemon_command`).
    fn scrape(&self, addr: &str) -> String {
        use std::io::{Read, Write};
        let pid = self.child.as_ref().expect("daemon").id();
        let addr = addr.to_string();
        common::in_netns_of(pid, move || {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut resp = String::new();
            s.read_to_string(&mut resp).unwrap();
            resp
        })
    }

    /// Run `rvs --run-dir DIR ARGS`: (exit code, stdout, stderr).
    fn rvs(&self, args: &[&str]) -> (i32, String, String) {
        rvs_at(self.path(), args)
    }

    /// kill -9, keeping the directory.
    fn kill9(mut self) -> tempfile::TempDir {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
        self.dir.take().expect("dir")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    let (code, out, err) = d.rvs(args);
    assert_eq!(code, 0, "rvs {}: {err}", args.join(" "));
    out
}

fn neutron_like(d: &Daemon) {
    for br in ["br-int", "br-tun", "br-ex"] {
        ok(d, &["add-br", br]);
    }
    ok(
        d,
        &[
            "add-port",
            "br-int",
            "patch-tun",
            "type=patch",
            "options:peer=patch-int",
        ],
    );
    ok(
        d,
        &[
            "add-port",
            "br-tun",
            "patch-int",
            "type=patch",
            "options:peer=patch-tun",
        ],
    );
    ok(d, &["add-port", "br-int", "vm1", "type=memory", "tag=1"]);
    ok(
        d,
        &[
            "add-port",
            "br-tun",
            "gnv1",
            "type=geneve",
            "options:remote_ip=198.18.0.2",
            "options:key=flow",
        ],
    );
    let flows = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/neutron-br-tun.flows");
    // The fixture names gnv2 too.
    ok(
        d,
        &[
            "add-port",
            "br-tun",
            "gnv2",
            "type=geneve",
            "options:remote_ip=198.18.0.3",
        ],
    );
    ok(d, &["replace-flows", "br-tun", flows]);
}

#[test]
fn build_inspect_persist_and_restart() {
    let d = Daemon::start(tempfile::tempdir().unwrap(), &[]).unwrap();
    let sock = d.path().join("rvs.sock");
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600,
        "socket only for its owner"
    );
    neutron_like(&d);
    let show = ok(&d, &["show"]);
    for want in [
        "Bridge br-tun",
        "Port gnv1",
        "type: geneve",
        "remote_ip=198.18.0.2",
        "tag: 1",
        "options: {peer=patch-int}",
    ] {
        assert!(show.contains(want), "missing {want:?} in\n{show}");
    }
    let dump = ok(&d, &["dump-flows", "br-tun", "--table", "22"]);
    assert_eq!(dump.lines().count(), 3, "{dump}");
    assert!(
        dump.contains("n_packets=0") && dump.contains("dl_vlan=1") && dump.contains("actions=strip_vlan"),
        "{dump}"
    );
    let json = ok(&d, &["--format", "json", "dump-flows", "br-tun"]);
    assert!(
        json.trim_start().starts_with('[') && json.contains("\"n_packets\""),
        "{json}"
    );
    let trace = ok(
        &d,
        &[
            "trace",
            "br-int",
            "in_port=vm1,dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,arp",
        ],
    );
    assert!(
        trace.contains("bridge(\"br-tun\")") && trace.contains("22. dl_vlan=1"),
        "{trace}"
    );

    // Bad input: a clear one-line error, exit 1, nothing changed.
    let before = ok(&d, &["dump-flows", "br-tun"]);
    let (code, _, err) = d.rvs(&[
        "add-flow",
        "br-tun",
        "table=1,dl_dts=02:00:00:00:00:01,actions=drop",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("dl_dts") && err.contains("did you mean \"dl_dst\""),
        "{err}"
    );
    assert_eq!(
        ok(&d, &["dump-flows", "br-tun"]).lines().count(),
        before.lines().count()
    );
    let (code, _, err) = d.rvs(&["add-port", "br-tun", "bad", "type=geneve"]);
    assert_eq!(code, 1);
    assert!(err.contains("remote_ip"), "{err}");
    let (code, _, err) = d.rvs(&["frobnicate"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown command"), "{err}");
    // A malformed request on the socket gets an error reply; the daemon keeps serving.
    {
        use std::io::{BufRead, BufReader, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        s.write_all(b"this is not json\n").unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        assert!(
            line.contains("\"ok\":false") && line.contains("malformed request"),
            "{line}"
        );
    }
    assert!(ok(&d, &["list-br"]).contains("br-ex"));
    ok(&d, &["set-mac-aging", "br-int", "60"]);
    assert!(ok(&d, &["dpctl", "dump-flows"]).contains("pmd0:"));
    // OVS-style `add-port BR PORT -- set ...` is accepted too.
    ok(
        &d,
        &[
            "add-port",
            "br-ex",
            "phy-br-ex",
            "--",
            "set",
            "interface",
            "phy-br-ex",
            "type=patch",
            "options:peer=int-br-ex",
        ],
    );
    assert!(ok(&d, &["list-ports", "br-ex"]).contains("phy-br-ex"));

    // kill -9, restart on the same configuration: everything is back.
    let show_before = ok(&d, &["show"]);
    let dir = d.kill9();
    let d = Daemon::start(dir, &[]).unwrap();
    assert_eq!(ok(&d, &["show"]), show_before);
    let conf = std::fs::read_to_string(d.path().join("conf.json")).unwrap();
    assert!(conf.contains("\"mac_aging_s\": 60"), "{conf}");
    assert_eq!(
        ok(&d, &["dump-flows", "br-tun"]).lines().count(),
        before.lines().count()
    );
}

/// `ofport` of each port of `br`, from `show --format json`.
fn ofports(d: &Daemon, br: &str) -> Vec<(String, u64)> {
    let v: serde_json::Value = serde_json::from_str(&ok(d, &["--format", "json", "show"])).unwrap();
    let b = v["bridges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == br)
        .unwrap();
    let mut ports: Vec<(String, u64)> = b["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["ofport"].as_u64().unwrap(),
            )
        })
        .filter(|(n, _)| n != br)
        .collect();
    ports.sort_by_key(|p| p.1);
    ports
}

#[test]
fn port_numbers_stay_across_deletes_and_kill9() {
    let d = Daemon::start(tempfile::tempdir().unwrap(), &[]).unwrap();
    ok(&d, &["add-br", "br0"]);
    for p in ["a", "b", "x"] {
        ok(&d, &["add-port", "br0", p, "type=memory"]);
    }
    ok(&d, &["del-port", "b"]);
    ok(&d, &["add-flow", "br0", "in_port=a,actions=output:x"]);
    let trace = ok(&d, &["trace", "br0", "in_port=a,dl_dst=02:00:00:00:00:02"]);
    assert!(trace.contains("output to x "), "{trace}");
    let dir = d.kill9();
    let d = Daemon::start(dir, &[]).unwrap();
    assert_eq!(ofports(&d, "br0"), [("a".into(), 1), ("x".into(), 3)]);
    let trace = ok(&d, &["trace", "br0", "in_port=a,dl_dst=02:00:00:00:00:02"]);
    assert!(
        trace.contains("output to x "),
        "the rule still reaches x: {trace}"
    );
    assert!(ok(&d, &["dump-flows", "br0"]).contains("actions=output:3"));
    // A new port takes neither the deleted number nor a used one, across a restart too.
    ok(&d, &["add-port", "br0", "y", "type=memory"]);
    // ofport_request: honoured, or refused with a message and nothing added.
    ok(
        &d,
        &[
            "add-port",
            "br0",
            "z",
            "--",
            "set",
            "Interface",
            "z",
            "type=memory",
            "ofport_request=10",
        ],
    );
    let (code, _, err) = d.rvs(&["add-port", "br0", "w", "type=memory", "ofport_request=3"]);
    assert_eq!(code, 1);
    assert!(err.contains("ofport_request=3") && err.contains("x"), "{err}");
    let (code, _, err) = d.rvs(&["add-port", "br0", "v", "type=memory", "ofport_request=65280"]);
    assert_eq!(code, 1, "{err}");
    // Half an add-port is no add-port: a refused option takes the port away again.
    let (code, _, err) = d.rvs(&["add-port", "br0", "u", "type=memory", "options:vtep_ip=300.1.1.1"]);
    assert_eq!(code, 1, "{err}");
    let want: Vec<(String, u64)> = vec![
        ("a".into(), 1),
        ("x".into(), 3),
        ("y".into(), 4),
        ("z".into(), 10),
    ];
    assert_eq!(ofports(&d, "br0"), want);
    let dir = d.kill9();
    let d = Daemon::start(dir, &[]).unwrap();
    assert_eq!(ofports(&d, "br0"), want);
    ok(&d, &["del-port", "y"]);
    ok(&d, &["add-port", "br0", "t", "type=memory"]);
    // Not 4 (y's, just deleted): the next number never used.
    assert!(
        ofports(&d, "br0").contains(&("t".to_string(), 5)),
        "{:?}",
        ofports(&d, "br0")
    );
}

#[test]
fn a_version_1_configuration_is_migrated_with_its_port_numbers() {
    let dir = tempfile::tempdir().unwrap();
    // As the rvs before port numbers were saved wrote it: a, x (b was deleted);
    // that rvs renumbered x to 2 on every start, and its rule says output:2.
    std::fs::write(
        dir.path().join("conf.json"),
        r#"{"version":1,"bridges":[{"name":"br0","ports":[{"name":"a","type":"memory"},{"name":"x","type":"memory"}],"flows":["in_port=1,actions=output:2"]}]}"#,
    )
    .unwrap();
    let d = Daemon::start(dir, &[]).unwrap();
    assert_eq!(ofports(&d, "br0"), [("a".into(), 1), ("x".into(), 2)]);
    ok(&d, &["add-port", "br0", "y", "type=memory"]);
    let conf = std::fs::read_to_string(d.path().join("conf.json")).unwrap();
    assert!(
        conf.contains("\"version\": 2") && conf.contains("\"ofport\": 2"),
        "{conf}"
    );
}

#[test]
fn one_daemon_per_run_dir_and_unreachable_is_exit_2() {
    let d = Daemon::start(tempfile::tempdir().unwrap(), &[]).unwrap();
    let second = tempfile::tempdir().unwrap();
    let err = Command::new(env!("CARGO_BIN_EXE_rvs"))
        .arg("--run-dir")
        .arg(d.path())
        .args(["daemon", "--datapath", "afxdp", "--db"])
        .arg(second.path().join("c.json"))
        .output()
        .unwrap();
    assert_eq!(err.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&err.stderr).contains("another rvs daemon is running"));
    let nowhere = PathBuf::from(second.path()).join("none");
    let (code, _, err) = rvs_at(&nowhere, &["show"]);
    assert_eq!(code, 2);
    assert!(err.contains("rvs.sock"), "names the socket it tried: {err}");
}

#[test]
fn a_corrupt_configuration_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("conf.json");
    std::fs::write(&db, "{ \"version\": 1, \"bridges\": [ oops").unwrap();
    let err = Daemon::start(dir, &[]).err().expect("refused");
    assert!(
        err.contains("conf.json") && err.contains("not a valid rvs configuration"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("conf.json"), "garbage").unwrap();
    let d = Daemon::start(dir, &["--start-empty"]).unwrap();
    assert_eq!(ok(&d, &["list-br"]), "");
    let aside: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("bad-"))
        .collect();
    assert_eq!(aside.len(), 1, "the bad file was kept aside");
}

#[test]
fn metrics_scrape_as_prometheus_text() {
    // A free loopback port (the daemon binds it right after).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::start(tempfile::tempdir().unwrap(), &["--metrics", &addr]).unwrap();
    neutron_like(&d);
    let resp = d.scrape(&addr);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let body = resp.split("\r\n\r\n").nth(1).unwrap();
    // Every sample line is `name{labels} value` with a numeric value, and each
    // family has HELP and TYPE lines.
    let mut samples = 0;
    for l in body.lines().filter(|l| !l.is_empty()) {
        if l.starts_with('#') {
            assert!(
                l.starts_with("# HELP rvs_") || l.starts_with("# TYPE rvs_"),
                "{l}"
            );
            continue;
        }
        let (name, value) = l.rsplit_once(' ').unwrap();
        assert!(name.starts_with("rvs_"), "{l}");
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("not a number: {l}"));
        samples += 1;
    }
    assert!(samples > 0);
    assert!(
        body.contains("rvs_rules{bridge=\"br-tun\",table=\"22\"} 3"),
        "{body}"
    );
    assert!(body.contains("# TYPE rvs_pmd_upcalls_total counter"), "{body}");
}

#[test]
fn detach_pidfile_and_per_command_help() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("rvs.pid");
    let out = rvs_daemon_command()
        .arg("--run-dir")
        .arg(dir.path())
        .args([
            "daemon",
            "--datapath",
            "afxdp",
            "--metrics",
            "off",
            "--detach",
            "--db",
        ])
        .arg(dir.path().join("conf.json"))
        .arg("--pidfile")
        .arg(&pid)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "detached start");
    let pid: i32 = std::fs::read_to_string(&pid).unwrap().trim().parse().unwrap();
    let (code, out, _) = rvs_at(dir.path(), &["add-br", "--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Usage: rvs") && out.contains("add-br BRIDGE"),
        "{out}"
    );
    assert_eq!(rvs_at(dir.path(), &["list-br"]).1, "", "--help created nothing");
    let (code, _, err) = rvs_at(dir.path(), &["bogus"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown command"), "{err}");
    // Stop the daemon we started, by its PID.
    assert!(Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while dir.path().join("rvs.sock").exists() {
        assert!(
            Instant::now() < deadline,
            "SIGTERM stops the daemon and removes its socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The ovs-vsctl spellings an OVS user pastes, into the real binary: `-- set
/// interface` / `-- set port`, `--may-exist`, `--if-exists`, and ovs-ofctl
/// flows with OVS-only spellings.
#[test]
fn ovs_vsctl_forms_work_unchanged() {
    let d = Daemon::start(tempfile::tempdir().unwrap(), &[]).unwrap();
    ok(&d, &["add-br", "br-int"]);
    ok(&d, &["add-br", "br-tun"]);
    ok(
        &d,
        &[
            "add-port",
            "br-int",
            "patch-tun",
            "--",
            "set",
            "interface",
            "patch-tun",
            "type=patch",
            "options:peer=patch-int",
        ],
    );
    ok(
        &d,
        &[
            "add-port",
            "br-int",
            "vm1",
            "--",
            "set",
            "interface",
            "vm1",
            "type=memory",
            "ofport_request=7",
        ],
    );
    ok(
        &d,
        &[
            "add-port",
            "br-int",
            "vm2",
            "type=memory",
            "--",
            "set",
            "port",
            "vm2",
            "tag=3",
        ],
    );
    // Again with --may-exist (either place): nothing changes, no error.
    ok(&d, &["--may-exist", "add-br", "br-int"]);
    ok(&d, &["add-br", "--may-exist", "br-int"]);
    ok(&d, &["--may-exist", "add-port", "br-int", "vm1", "type=memory"]);
    let (code, _, err) = d.rvs(&["add-br", "br-int"]);
    assert_eq!(code, 1, "without --may-exist it is an error");
    assert!(!err.is_empty());
    let (code, _, err) = d.rvs(&["--may-exist", "add-port", "br-tun", "vm1"]);
    assert_eq!(code, 1, "on another bridge it is still an error");
    assert!(err.contains("br-int"), "{err}");
    let show = ok(&d, &["show"]);
    assert!(
        show.contains("tag: 3") && show.contains("options: {peer=patch-int}"),
        "{show}"
    );
    let ports = ok(&d, &["--format", "json", "show"]);
    assert!(
        ports.contains("\"ofport\":7") || ports.contains("\"ofport\": 7"),
        "{ports}"
    );
    // --if-exists del-port / del-br on what is not there.
    ok(&d, &["--if-exists", "del-port", "br-int", "nosuch"]);
    ok(&d, &["--if-exists", "del-br", "nosuch"]);
    assert_eq!(d.rvs(&["del-br", "nosuch"]).0, 1);
    ok(&d, &["--if-exists", "del-port", "br-int", "vm2"]);
    assert!(!ok(&d, &["list-ports", "br-int"]).contains("vm2"));
    // OVS-only flow spellings.
    ok(
        &d,
        &[
            "add-flow",
            "br-int",
            "table=0,priority=5,tcp,tcp_dst=80,action=dec_ttl,mod_nw_ecn:1,output:in_port,write_metadata:0x1/0x1",
        ],
    );
    let dump = ok(&d, &["dump-flows", "br-int"]);
    assert!(
        dump.contains("tp_dst=80")
            && dump.contains("actions=dec_ttl,mod_nw_ecn:1,IN_PORT,write_metadata:0x1/0x1"),
        "{dump}"
    );
    // --names: ports by name, and the text goes back in as it came out.
    ok(
        &d,
        &[
            "add-flow",
            "br-int",
            "priority=7,in_port=7,actset_output=UNSET,actions=output:1,resubmit(7,0),write_actions(output:7)",
        ],
    );
    let named = ok(&d, &["dump-flows", "br-int", "--names"]);
    let line = named.lines().find(|l| l.contains("priority=7")).unwrap();
    assert!(
        line.contains("in_port=vm1,actset_output=UNSET actions=output:patch-tun,resubmit(vm1,0),write_actions(output:vm1)"),
        "{line}"
    );
    let numbered = ok(&d, &["dump-flows", "br-int", "--no-names"]);
    assert!(
        numbered
            .contains("in_port=7,actset_output=UNSET actions=output:1,resubmit(7,0),write_actions(output:7)"),
        "{numbered}"
    );
    let text = line
        .split_once("priority=")
        .unwrap()
        .1
        .replace(" actions=", ",actions=");
    ok(&d, &["del-flows", "br-int", "in_port=7"]);
    assert!(!ok(&d, &["dump-flows", "br-int"]).contains("priority=7"));
    ok(&d, &["add-flow", "br-int", &format!("priority={text}")]);
    assert!(ok(&d, &["dump-flows", "br-int", "--no-names"])
        .contains("in_port=7,actset_output=UNSET actions=output:1,resubmit(7,0),write_actions(output:7)"));
    // --sort / --rsort: by priority, across tables.
    let prios = |args: &[&str]| -> Vec<u32> {
        ok(&d, args)
            .lines()
            .filter_map(|l| l.split("priority=").nth(1))
            .map(|p| p.split([',', ' ']).next().unwrap().parse().unwrap())
            .collect()
    };
    assert_eq!(prios(&["dump-flows", "br-int", "--sort"]), [0, 5, 7]);
    assert_eq!(prios(&["dump-flows", "br-int", "--rsort=priority"]), [7, 5, 0]);
    // By a match field: rules without it last, whichever the direction.
    let mut without: Vec<u32> = prios(&["dump-flows", "br-int"]);
    without.retain(|p| *p != 7);
    let in_port_first: Vec<u32> = [7].into_iter().chain(without.iter().copied()).collect();
    assert_eq!(prios(&["dump-flows", "br-int", "--sort=in_port"]), in_port_first);
    assert_eq!(prios(&["dump-flows", "br-int", "--rsort=in_port"]), in_port_first);
    let tcp_dst_first: Vec<u32> = [5, 7, 0].to_vec();
    assert_eq!(
        prios(&["dump-flows", "br-int", "--sort=tcp_dst", "--rsort"]),
        tcp_dst_first,
        "then by priority, descending"
    );
    let (code, _, err) = d.rvs(&["dump-flows", "br-int", "--sort=tcp_dts"]);
    assert_eq!(code, 1);
    assert!(err.contains("--sort=tcp_dts: not a match field"), "{err}");
    ok(&d, &["del-flows", "br-int", "in_port=7"]);
    let trace = ok(&d, &["trace", "br-int", "in_port=vm1,tcp,tcp_dst=80,nw_ttl=1"]);
    assert!(
        trace.contains("expired") && trace.contains("drop(ttl_exceeded)"),
        "{trace}"
    );
}

/// `trace` as `ofproto/trace`: from a patch port, `--generate` learning (and
/// only then), `--format json`.
#[test]
fn trace_from_patch_ports_generate_and_json() {
    let d = Daemon::start(tempfile::tempdir().unwrap(), &[]).unwrap();
    neutron_like(&d);
    // From br-tun's patch port: br-tun's table 0 sends patch-int traffic to 2.
    let t = ok(
        &d,
        &[
            "trace",
            "br-tun",
            "in_port=patch-int,dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,dl_vlan=1,arp",
        ],
    );
    assert!(
        t.contains("bridge(\"br-tun\")") && t.contains("22. dl_vlan=1"),
        "{t}"
    );
    assert!(
        t.contains("no tunnel route to 198.18.0.2"),
        "no VTEP in this set-up: {t}"
    );
    let flow = "in_port=vm1,dl_src=02:00:00:00:00:0a,dl_dst=ff:ff:ff:ff:ff:ff,arp";
    ok(&d, &["trace", "br-int", flow]);
    assert!(
        !ok(&d, &["fdb-show", "br-int"]).contains("02:00:00:00:00:0a"),
        "a plain trace learns nothing"
    );
    let t = ok(&d, &["trace", "br-int", flow, "--generate"]);
    assert!(t.contains("NORMAL: learned 02:00:00:00:00:0a"), "{t}");
    assert!(ok(&d, &["fdb-show", "br-int"]).contains("02:00:00:00:00:0a"));
    let j: serde_json::Value =
        serde_json::from_str(&ok(&d, &["--format", "json", "trace", "br-int", flow])).unwrap();
    assert!(j["trace"].as_array().is_some_and(|l| !l.is_empty()), "{j}");
    assert!(
        j["datapath_actions"].as_array().is_some_and(|a| !a.is_empty()),
        "{j}"
    );
    assert!(
        j["megaflow"].as_array().unwrap().iter().any(|f| f == "eth_src"),
        "{j}"
    );
    let (code, _, err) = d.rvs(&["trace", "br-int", flow, "--bogus"]);
    assert_eq!(code, 1);
    assert!(err.contains("--bogus"), "{err}");
}

/// `tnl-arp-set` (ovs-appctl tnl/arp/set): a fixed next hop makes tunnel
/// output work without ARP, shows as static, and survives `kill -9`.
#[test]
fn static_tunnel_neighbours_route_traces_and_persist() {
    let d = Daemon::start(tempfile::tempdir().unwrap(), &[]).unwrap();
    neutron_like(&d);
    let (code, _, err) = d.rvs(&["tnl-arp-set", "br-ex", "198.18.0.2", "02:aa:00:00:00:02"]);
    assert_eq!(code, 1, "br-ex serves no VTEP yet");
    assert!(err.contains("vtep_ip"), "{err}");
    ok(
        &d,
        &[
            "add-port",
            "br-ex",
            "eth1",
            "type=memory",
            "options:vtep_ip=198.18.0.1",
            "options:vtep_mac=02:aa:00:00:00:01",
        ],
    );
    ok(&d, &["tnl/arp/set", "br-ex", "198.18.0.2", "02:aa:00:00:00:02"]);
    ok(&d, &["tnl-arp-set", "br-ex", "198.18.0.3", "02:aa:00:00:00:03"]);
    assert_eq!(d.rvs(&["tnl-arp-set", "br-ex", "198.18.0.2", "nomac"]).0, 1);
    let flow = "in_port=patch-int,dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,dl_vlan=1,arp";
    let t = ok(&d, &["trace", "br-tun", flow]);
    assert!(
        t.contains("Datapath actions: pop_vlan,tnl_push(geneve(vni=0x1389,src=198.18.0.1,dst=198.18.0.2)),")
            && t.contains("tnl_push(geneve(vni=0x1389,src=198.18.0.1,dst=198.18.0.3))"),
        "{t}"
    );
    let dir = d.kill9();
    let d = Daemon::start(dir, &[]).unwrap();
    let n = ok(&d, &["tnl-neigh"]);
    assert!(
        n.contains("198.18.0.2") && n.contains("02:aa:00:00:00:02") && n.contains("static"),
        "{n}"
    );
    assert!(ok(&d, &["trace", "br-tun", flow]).contains("tnl_push(geneve(vni=0x1389"));
    ok(&d, &["tnl-arp-del", "br-ex", "198.18.0.2"]);
    let n = ok(&d, &["tnl-neigh"]);
    assert!(
        !n.lines()
            .any(|l| l.starts_with("198.18.0.2 ") && l.contains("static")),
        "{n}"
    );
    assert!(ok(&d, &["trace", "br-tun", flow]).contains("not resolved yet"));
}

/// `tnl-route-add` (OVS's `ovs/route/add`): an endpoint behind a gateway is
/// reached through the gateway's MAC; the route is listed, saved, survives
/// kill -9, and `tnl-route-del` takes it away again.
#[test]
fn static_tunnel_routes_route_traces_and_persist() {
    let d = Daemon::start(tempfile::tempdir().unwrap(), &[]).unwrap();
    neutron_like(&d);
    ok(
        &d,
        &[
            "add-port",
            "br-ex",
            "eth1",
            "type=memory",
            "options:vtep_ip=198.18.0.1",
            "options:vtep_mac=02:aa:00:00:00:01",
        ],
    );
    let (code, _, err) = d.rvs(&["tnl-route-add", "198.18.0.3/33", "br-ex"]);
    assert_eq!(code, 1);
    assert!(err.contains("0..32"), "{err}");
    assert_eq!(d.rvs(&["tnl-route-add", "198.18.0.0/24", "br-nope"]).0, 1);
    ok(&d, &["ovs/route/add", "198.18.0.3/32", "br-ex", "198.18.0.254"]);
    ok(&d, &["tnl-arp-set", "br-ex", "198.18.0.254", "02:aa:00:00:00:fe"]);
    let flow = "in_port=patch-int,dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,dl_vlan=1,arp";
    let t = ok(&d, &["trace", "br-tun", flow]);
    assert!(
        t.contains("to 198.18.0.3 via datapath port")
            && t.contains("gateway 198.18.0.254, next-hop MAC 02:aa:00:00:00:fe"),
        "{t}"
    );
    assert!(
        t.contains("tnl_push(geneve(vni=0x1389,src=198.18.0.1,dst=198.18.0.3))"),
        "{t}"
    );
    let shown = ok(&d, &["tnl-route-show"]);
    assert!(
        shown.contains("User: 198.18.0.3/32 dev br-ex GW 198.18.0.254 SRC 198.18.0.1")
            && shown.contains("Cached: on-link dev br-ex SRC 198.18.0.1"),
        "{shown}"
    );
    let dir = d.kill9();
    let d = Daemon::start(dir, &[]).unwrap();
    assert!(ok(&d, &["ovs/route/show"]).contains("User: 198.18.0.3/32 dev br-ex GW 198.18.0.254"));
    assert!(ok(&d, &["trace", "br-tun", flow]).contains("gateway 198.18.0.254"));
    ok(&d, &["tnl-route-del", "198.18.0.3/32"]);
    assert!(!ok(&d, &["trace", "br-tun", flow]).contains("gateway"));
    assert_eq!(d.rvs(&["tnl-route-del", "198.18.0.3/32"]).0, 1);
}

/// Security groups through the CLI: the neutron-style rules load, `trace`
/// follows `ct(table=)` into the next pass with `--ct-next`, and the
/// tracker's commands answer (`dpctl/` spellings too).
#[test]
fn security_group_rules_trace_both_passes_and_conntrack_commands_answer() {
    let d = Daemon::start(tempfile::tempdir().unwrap(), &[]).unwrap();
    ok(&d, &["add-br", "br-int"]);
    ok(&d, &["add-port", "br-int", "vm1", "type=memory"]);
    ok(&d, &["add-port", "br-int", "uplink", "type=memory"]);
    let sg = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/neutron-sg.flows");
    ok(&d, &["replace-flows", "br-int", sg]);
    let dump = ok(&d, &["dump-flows", "br-int", "--names"]);
    assert!(
        dump.contains("ct_state=-trk,ip") || dump.contains("ct_state=-trk"),
        "{dump}"
    );
    assert!(dump.contains("ct(table=72,zone=NXM_NX_REG6[0..15])"), "{dump}");
    let inbound = "in_port=uplink,dl_src=02:00:00:00:00:0b,dl_dst=02:00:00:00:00:0a,tcp,nw_src=198.18.0.11,nw_dst=198.18.0.10,tp_src=6000,tp_dst=80";
    let new = ok(&d, &["trace", "br-int", inbound]);
    assert!(
        new.contains("resume conntrack with default ct_state=trk|new"),
        "{new}"
    );
    assert!(
        new.trim_end().ends_with("Datapath actions: drop"),
        "new to port 80: {new}"
    );
    let reply = ok(&d, &["trace", "br-int", inbound, "--ct-next", "trk,est,rpl"]);
    assert!(reply.contains("ct_state=trk|rpl|est"), "{reply}");
    assert!(
        !reply.trim_end().ends_with("Datapath actions: drop"),
        "a reply is delivered: {reply}"
    );
    let (code, _, err) = d.rvs(&["trace", "br-int", inbound, "--ct-next", "trk,bogus"]);
    assert_eq!(code, 1);
    assert!(err.contains("bogus"), "{err}");
    // Nothing has been tracked (memory ports carry no traffic here).
    assert_eq!(ok(&d, &["dump-conntrack"]), "");
    assert!(ok(&d, &["dpctl/ct-stats-show"]).contains("Total: 0 (max 3000000)"));
    ok(&d, &["ct-set-maxconns", "1000"]);
    assert_eq!(ok(&d, &["dpctl/ct-get-maxconns"]), "1000\n");
    ok(&d, &["ct-set-limits", "zone=1,limit=10"]);
    assert!(ok(&d, &["ct-get-limits"]).contains("zone=1,limit=10,count=0"));
    let (code, _, err) = d.rvs(&["add-flow", "br-int", "priority=1,actions=set_field:1->ct_mark"]);
    assert_eq!(code, 1);
    assert!(err.contains("ct(commit,exec"), "{err}");
}
