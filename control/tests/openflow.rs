//! OpenFlow 1.3 on the wire, driven by real clients: `ovs-ofctl` against a
//! bridge's `ptcp:` listener, a raw connection that sends garbage, and a
//! controller the bridge dials (`tcp:`), with fail-open while it is away.
//! No root needed (the daemon listens on loopback; as root it runs in a
//! namespace of its own and the clients join it).

use rvs_control::flow_mod::RemovalReason;
use rvs_control::ofp::{parse_flow, Rule};
use rvs_control::openflow::message::{decode, Message};
use rvs_control::openflow::wire::msg_type;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;
use common::{in_netns_of, run, rvs_at, rvs_ok, spawn_daemon};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/neutron-br-tun.flows");

fn have_ovs_ofctl() -> bool {
    let ok = Command::new("ovs-ofctl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: ovs-ofctl is not installed (scripts/install-deps.sh installs it)");
    }
    ok
}

/// A daemon and the loopback port its bridge listens on.
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    /// ovs-ofctl's `-O` (`None`: its default, OpenFlow 1.0).
    proto: Option<&'static str>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let child = spawn_daemon(None, dir.path());
        // A port free here; in the daemon's own namespace (root) all are.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Daemon {
            child,
            dir,
            port,
            proto: Some("OpenFlow13"),
        }
    }

    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_daemon(None, self.dir.path());
    }

    fn rvs(&self, args: &[&str]) -> String {
        rvs_ok(self.dir.path(), args)
    }

    fn target(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.port)
    }

    /// `ovs-ofctl -O OpenFlow13 CMD tcp:127.0.0.1:PORT ARGS` (or without
    /// `-O`, see `proto`) in the daemon's namespace: (exit code, stdout,
    /// stderr).
    fn ofctl_at(&self, opts: &[&str], cmd: &str, args: &[&str]) -> (i32, String, String) {
        let ns = format!("--net=/proc/{}/ns/net", self.child.id());
        // SAFETY: geteuid has no preconditions and cannot fail.
        let mut c = if unsafe { libc::geteuid() } == 0 {
            let mut c = Command::new("nsenter");
            c.arg(ns).arg("ovs-ofctl");
            c
        } else {
            Command::new("ovs-ofctl")
        };
        if let Some(p) = self.proto {
            c.args(["-O", p]);
        }
        run(c
            .arg("--timeout=10")
            .args(opts)
            .arg(cmd)
            .arg(self.target())
            .args(args))
    }

    fn ofctl(&self, opts: &[&str], cmd: &str, args: &[&str]) -> String {
        let (code, out, err) = self.ofctl_at(opts, cmd, args);
        assert_eq!(code, 0, "ovs-ofctl {cmd} {}: {err}", args.join(" "));
        out
    }

    fn connect(&self) -> TcpStream {
        let addr = format!("127.0.0.1:{}", self.port);
        let s = in_netns_of(self.child.id(), move || TcpStream::connect(addr).unwrap());
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }
}

/// The rules of a dump (ovs-ofctl's or rvs's, statistics or not), parsed
/// with port numbers.
fn rules(dump: &str) -> BTreeSet<String> {
    dump.lines()
        .filter(|l| l.starts_with(' '))
        .map(|l| {
            let line: Vec<&str> = l
                .trim()
                .split(", ")
                .filter(|t| {
                    !["duration=", "n_packets=", "n_bytes=", "idle_age=", "hard_age="]
                        .iter()
                        .any(|p| t.starts_with(p))
                })
                .collect();
            let text = line.join(",").replacen(" actions=", ",actions=", 1);
            let r: Rule = parse_flow(&text, &()).unwrap_or_else(|e| panic!("{text}: {e}"));
            r.to_string()
        })
        .collect()
}

fn neutron_bridges(d: &Daemon) {
    for br in ["br-int", "br-tun"] {
        d.rvs(&["add-br", br]);
    }
    d.rvs(&[
        "add-port",
        "br-int",
        "patch-tun",
        "type=patch",
        "options:peer=patch-int",
    ]);
    d.rvs(&[
        "add-port",
        "br-tun",
        "patch-int",
        "type=patch",
        "options:peer=patch-tun",
    ]);
    for (p, ip) in [("gnv1", "198.18.0.2"), ("gnv2", "198.18.0.3")] {
        let remote = format!("options:remote_ip={ip}");
        d.rvs(&[
            "add-port",
            "br-tun",
            p,
            "type=geneve",
            &remote,
            "options:key=flow",
        ]);
    }
}

/// Wait for a condition of the daemon's state (the listener comes up with
/// the reply, but a restarted daemon's connections take a moment).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The fixture added through ovs-ofctl (after a delete of everything), as
/// ovs-ofctl and rvs dump it; then the same file through the CLI, as rvs
/// dumps it.
fn fixture_both_ways(d: &Daemon) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    d.ofctl(&[], "del-flows", &[]);
    d.ofctl(&[], "add-flows", &[FIXTURE]);
    let by_ofctl = rules(&d.ofctl(&["--no-stats", "--no-names"], "dump-flows", &[]));
    let by_rvs = rules(&d.rvs(&["dump-flows", "br-tun", "--no-names"]));
    d.rvs(&["replace-flows", "br-tun", FIXTURE]);
    let by_cli = rules(&d.rvs(&["dump-flows", "br-tun", "--no-names"]));
    assert_eq!(by_cli.len(), 14);
    (by_ofctl, by_rvs, by_cli)
}

/// Modify, strict delete, cookie and out_port filters, aggregates and port
/// counters through ovs-ofctl (whichever version `d` speaks), on a bridge
/// with four ports and nothing in table 30.
fn modify_delete_and_count(d: &Daemon) {
    d.ofctl(
        &[],
        "add-flow",
        &["table=30,priority=5,cookie=0x7,ip,nw_dst=198.18.0.0/16,actions=output:2"],
    );
    d.ofctl(
        &[],
        "add-flow",
        &["table=30,priority=6,cookie=0x8,ip,actions=output:3"],
    );
    d.ofctl(&[], "mod-flows", &["table=30,ip,actions=output:4"]);
    let t30 = d.ofctl(&["--no-stats"], "dump-flows", &["table=30"]);
    assert_eq!(t30.matches("actions=output:4").count(), 2, "{t30}");
    assert!(t30.contains("nw_dst=198.18.0.0/16"), "{t30}");
    d.ofctl(&["--strict"], "del-flows", &["table=30,priority=5,ip"]);
    assert_eq!(
        d.ofctl(&["--no-stats"], "dump-flows", &["table=30"])
            .lines()
            .count(),
        2,
        "strict: nothing"
    );
    d.ofctl(
        &["--strict"],
        "del-flows",
        &["table=30,priority=5,ip,nw_dst=198.18.0.0/16"],
    );
    d.ofctl(&[], "del-flows", &["cookie=0x7/-1"]);
    let agg = d.ofctl(&[], "dump-aggregate", &["table=30"]);
    assert!(agg.contains("flow_count=1"), "{agg}");
    d.ofctl(&[], "del-flows", &["out_port=4"]);
    assert!(d
        .ofctl(&[], "dump-aggregate", &["table=30"])
        .contains("flow_count=0"));
    let ports = d.ofctl(&[], "dump-ports", &[]);
    assert!(ports.contains("4 ports"), "{ports}");
}

#[test]
fn ovs_ofctl_programs_neutron_br_tun_and_dumps_it_back_equal() {
    if !have_ovs_ofctl() {
        return;
    }
    let mut d = Daemon::start();
    neutron_bridges(&d);
    let ptcp = format!("ptcp:{}", d.port);
    d.rvs(&["set-controller", "br-tun", &ptcp]);
    assert_eq!(
        d.rvs(&["get-controller", "br-tun"]),
        format!("ptcp:{}:127.0.0.1\n", d.port)
    );

    let show = d.ofctl(&[], "show", &[]);
    assert!(show.contains("n_tables:254"), "{show}");
    for p in ["(patch-int)", "(gnv1)", "(gnv2)", "LOCAL(br-tun)"] {
        assert!(show.contains(p), "{p} missing: {show}");
    }
    assert_eq!(d.ofctl(&[], "dump-ports-desc", &[]).matches("speed:").count(), 4);

    // The fixture through OpenFlow (port names resolved by ovs-ofctl from
    // PORT_DESC), over the bridge's default rule, and through the CLI.
    let (by_ofctl, by_rvs, by_cli) = fixture_both_ways(&d);
    // OpenFlow 1.3 has no mod_vlan_vid: ovs-ofctl sends push_vlan +
    // set_field (the rule matches no VLAN), and OVS dumps it back so too.
    let as_of13 = |rules: &BTreeSet<String>| -> BTreeSet<String> {
        rules
            .iter()
            .map(|r| {
                r.replace("mod_vlan_vid:1,", "push_vlan:0x8100,set_field:4097->vlan_vid,")
                    .replace("mod_vlan_vid:2,", "push_vlan:0x8100,set_field:4098->vlan_vid,")
            })
            .collect()
    };
    assert_eq!(
        by_ofctl,
        as_of13(&by_cli),
        "ovs-ofctl's dump of the OpenFlow-added rules"
    );
    assert_eq!(by_rvs, by_ofctl, "rvs's dump of the OpenFlow-added rules");
    // And the CLI's rules read back through OpenFlow: the same rules.
    let cli_by_ofctl = rules(&d.ofctl(&["--no-stats", "--no-names"], "dump-flows", &[]));
    assert_eq!(cli_by_ofctl.len(), 14);
    assert_eq!(as_of13(&cli_by_ofctl), as_of13(&by_cli));

    modify_delete_and_count(&d);

    // A refused FLOW_MOD is an error, and changes nothing.
    let (code, _, err) = d.ofctl_at(&[], "add-flow", &["table=254,actions=drop"]);
    assert_ne!(code, 0);
    assert!(err.contains("OFPFMFC_BAD_TABLE_ID"), "{err}");

    // Controller flows are not kept across a restart (as in OVS); the
    // controller target is, and the bridge listens again.
    d.ofctl(&[], "add-flows", &[FIXTURE]);
    d.restart();
    assert_eq!(
        d.rvs(&["get-controller", "br-tun"]),
        format!("ptcp:{}:127.0.0.1\n", d.port)
    );
    eventually("the listener after a restart", || {
        d.ofctl_at(&[], "dump-flows", &[]).0 == 0
    });
    assert!(rules(&d.ofctl(&[], "dump-flows", &[])).is_empty());
    // The CLI's rules are: the OpenFlow delete above removed them, and that
    // was saved too.
    assert!(rules(&d.rvs(&["dump-flows", "br-int"])).len() == 1);
    d.rvs(&["del-controller", "br-tun"]);
    assert_eq!(d.rvs(&["get-controller", "br-tun"]), "");
    eventually("the listener to close", || {
        d.ofctl_at(&[], "dump-flows", &[]).0 != 0
    });
}

#[test]
fn ovs_ofctl_without_a_version_speaks_openflow_1_0_with_nicira_extensions() {
    if !have_ovs_ofctl() {
        return;
    }
    let mut d = Daemon::start();
    // ovs-ofctl's default: OpenFlow 1.0 only, NXM flow formats on top.
    d.proto = None;
    neutron_bridges(&d);
    let ptcp = format!("ptcp:{}", d.port);
    d.rvs(&["set-controller", "br-tun", &ptcp]);

    let show = d.ofctl(&[], "show", &[]);
    assert!(show.starts_with("OFPT_FEATURES_REPLY (xid="), "not 1.0: {show}");
    for p in ["(patch-int)", "(gnv1)", "(gnv2)", "LOCAL(br-tun)", "n_tables:254"] {
        assert!(show.contains(p), "{p} missing: {show}");
    }
    assert_eq!(d.ofctl(&[], "dump-ports-desc", &[]).matches("config:").count(), 4);
    let tables = d.ofctl(&[], "dump-tables", &[]);
    assert!(tables.contains(r#"table 0 ("classifier")"#), "{tables}");

    // The fixture (tunnel ids, registers, learn, ...: NXT_FLOW_MOD) and
    // back (NXST_FLOW): what the CLI makes of the same file.
    let (by_ofctl, by_rvs, by_cli) = fixture_both_ways(&d);
    assert_eq!(by_ofctl, by_cli, "ovs-ofctl's 1.0 dump of the 1.0-added rules");
    assert_eq!(by_rvs, by_cli, "rvs's dump of the 1.0-added rules");
    // With statistics, as OVS prints them in 1.0 (idle_age from NXST_FLOW).
    let stats = d.ofctl(&[], "dump-flows", &[]);
    assert!(stats.contains(", idle_age="), "{stats}");
    assert_eq!(rules(&stats), by_cli);
    assert_eq!(
        rules(&d.ofctl(&["--no-stats", "--no-names"], "dump-flows", &[])),
        by_cli
    );

    // Tables (NXT_FLOW_MOD_TABLE_ID), modify, strict delete, cookie
    // (NXM_NX_COOKIE) and out_port filters, aggregates.
    modify_delete_and_count(&d);
    // 1.0's modify with a cookie (OVS): it adds when nothing matches.
    d.ofctl(
        &[],
        "mod-flows",
        &["table=31,priority=3,cookie=0x9,ip,actions=output:1"],
    );
    let t31 = d.ofctl(&["--no-stats"], "dump-flows", &["table=31"]);
    assert!(
        t31.contains("cookie=0x9") && t31.contains("priority=3,ip"),
        "{t31}"
    );

    // 1.0 errors: OVS's Nicira codes where 1.0 has none.
    let (code, _, err) = d.ofctl_at(&[], "add-flow", &["table=254,actions=drop"]);
    assert_ne!(code, 0);
    assert!(err.contains("NXFMFC_BAD_TABLE_ID"), "{err}");
    // A delete without a table reaches every table, as OVS does in 1.0.
    d.ofctl(&[], "del-flows", &[]);
    assert!(rules(&d.rvs(&["dump-flows", "br-tun"])).is_empty());
}

/// Read one whole OpenFlow message.
fn read_msg(s: &mut TcpStream) -> Vec<u8> {
    let mut h = [0u8; 8];
    s.read_exact(&mut h).unwrap();
    let len = u16::from_be_bytes([h[2], h[3]]) as usize;
    let mut m = h.to_vec();
    m.resize(len.max(8), 0);
    s.read_exact(&mut m[8..]).unwrap();
    m
}

/// Messages until one of type `typ` (skipping HELLO and the like).
fn expect(s: &mut TcpStream, typ: u8) -> Vec<u8> {
    loop {
        let m = read_msg(s);
        if m[1] == typ {
            return m;
        }
        assert!(m[1] != msg_type::ERROR, "unexpected error {m:02x?}");
    }
}

fn hello13() -> Vec<u8> {
    let mut b = Vec::new();
    Message::Hello { bitmap: Some(1 << 4) }.encode(1, &mut b).unwrap();
    b
}

fn error_of(m: &[u8]) -> (u16, u16) {
    (
        u16::from_be_bytes([m[8], m[9]]),
        u16::from_be_bytes([m[10], m[11]]),
    )
}

#[test]
fn garbage_gets_an_error_and_other_connections_are_served() {
    if !have_ovs_ofctl() {
        return;
    }
    let d = Daemon::start();
    d.rvs(&["add-br", "br0"]);
    d.rvs(&["set-controller", "br0", &format!("ptcp:{}", d.port)]);

    // An unknown message type: OFPBRC_BAD_TYPE, the connection stays.
    let mut s = d.connect();
    s.write_all(&hello13()).unwrap();
    s.write_all(&[4, 0xee, 0, 12, 0, 0, 0, 9, 1, 2, 3, 4]).unwrap();
    let e = expect(&mut s, msg_type::ERROR);
    assert_eq!(error_of(&e), (1, 1));
    assert_eq!(&e[4..8], &[0, 0, 0, 9], "the error carries the request's xid");
    s.write_all(&[4, msg_type::ECHO_REQUEST, 0, 8, 0, 0, 0, 10])
        .unwrap();
    expect(&mut s, msg_type::ECHO_REPLY);
    // A FLOW_MOD whose match lies about its length: OFPBMC_BAD_LEN.
    let mut fm = vec![4, msg_type::FLOW_MOD, 0, 56, 0, 0, 0, 11];
    fm.extend_from_slice(&[0; 40]);
    fm.extend_from_slice(&[0, 1, 0, 200, 0, 0, 0, 0]);
    s.write_all(&fm).unwrap();
    assert_eq!(error_of(&expect(&mut s, msg_type::ERROR)).0, 4);
    // A length below the header's: BAD_LEN, then the switch hangs up (there
    // is no telling where the next message starts).
    s.write_all(&[4, msg_type::ECHO_REQUEST, 0, 3, 0, 0, 0, 12])
        .unwrap();
    assert_eq!(error_of(&expect(&mut s, msg_type::ERROR)), (1, 6));
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);

    // A peer that offers only OpenFlow 1.1: HELLO_FAILED/INCOMPATIBLE.
    let mut s = d.connect();
    let mut h = Vec::new();
    Message::Hello { bitmap: Some(1 << 2) }.encode(1, &mut h).unwrap();
    h[0] = 2;
    s.write_all(&h).unwrap();
    assert_eq!(error_of(&expect(&mut s, msg_type::ERROR)), (0, 0));

    // One that says 1.0 without a bitmap gets 1.0: its errors in 1.0.
    let mut s = d.connect();
    s.write_all(&[1, msg_type::HELLO, 0, 8, 0, 0, 0, 1]).unwrap();
    s.write_all(&[1, 0xee, 0, 8, 0, 0, 0, 9]).unwrap();
    let e = expect(&mut s, msg_type::ERROR);
    assert_eq!((e[0], error_of(&e)), (1, (1, 1)));
    s.write_all(&[1, msg_type::ECHO_REQUEST, 0, 8, 0, 0, 0, 10])
        .unwrap();
    assert_eq!(expect(&mut s, msg_type::ECHO_REPLY)[0], 1);
    // It hangs up: its slot is free for the connection limit below.
    drop(s);

    // Random bytes, a lot of them, on several connections at once.
    let mut junk: Vec<TcpStream> = (0..4).map(|_| d.connect()).collect();
    let mut x: u32 = 0x1234_5678;
    for s in &mut junk {
        let bytes: Vec<u8> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let _ = s.write_all(&bytes);
    }
    // The daemon serves on: ovs-ofctl and the CLI.
    let dump = d.ofctl(&[], "dump-flows", &[]);
    assert!(dump.contains("actions=NORMAL"), "{dump}");
    d.rvs(&["show"]);
    drop(junk);

    // At most 64 connections at once (a thread each): the next is closed at
    // once; when one goes, a new one is served.
    // A connection is served when its HELLO is answered.
    let served = |d: &Daemon| {
        let mut c = d.connect();
        let mut b = [0u8; 8];
        let ok = c.write_all(&hello13()).is_ok() && c.read(&mut b).unwrap_or(0) > 0;
        ok.then_some(c)
    };
    let mut held: Vec<TcpStream> = Vec::new();
    // The junk connections' threads end as they see them closed.
    eventually("64 served connections", || {
        if let Some(c) = served(&d) {
            held.push(c);
        }
        held.len() == 64
    });
    assert!(served(&d).is_none(), "the 65th connection is closed");
    held.pop();
    eventually("a free connection slot", || served(&d).is_some());
}

fn trace_says_fail_open(dir: &Path) -> bool {
    let (code, out, err) = rvs_at(dir, &["trace", "br0", "in_port=LOCAL,dl_dst=ff:ff:ff:ff:ff:ff"]);
    assert_eq!(code, 0, "{err}");
    out.contains("fail-open")
}

#[test]
fn a_bridge_dials_its_controller_and_fails_open_while_it_is_away() {
    let d = Daemon::start();
    let dir = d.dir.path();
    d.rvs(&["add-br", "br0"]);
    d.rvs(&["del-flows", "br0"]);
    // No controller: the tables decide (empty: drop).
    assert!(!trace_says_fail_open(dir));
    // A controller that is not there yet (a free port, nobody listening):
    // standalone fails open.
    let pid = d.child.id();
    let port = in_netns_of(pid, || {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    });
    let target = format!("tcp:127.0.0.1:{port}");
    d.rvs(&["set-controller", "br0", &target]);
    assert!(trace_says_fail_open(dir));
    d.rvs(&["set-fail-mode", "br0", "secure"]);
    assert_eq!(d.rvs(&["get-fail-mode", "br0"]), "secure\n");
    assert!(!trace_says_fail_open(dir));
    d.rvs(&["set-fail-mode", "br0", "standalone"]);
    assert!(trace_says_fail_open(dir));

    // The controller comes up (the bridge retries within 8 s): handshake,
    // then a rule over the connection.
    let listener = in_netns_of(pid, move || TcpListener::bind(("127.0.0.1", port)).unwrap());
    let (mut c, _) = listener.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let hello = expect(&mut c, msg_type::HELLO);
    assert_eq!(hello[0], 4);
    c.write_all(&hello13()).unwrap();
    let mut b = Vec::new();
    Message::FeaturesRequest.encode(2, &mut b).unwrap();
    c.write_all(&b).unwrap();
    let f = expect(&mut c, msg_type::FEATURES_REPLY);
    match decode(&f) {
        Ok((_, Message::FeaturesReply(f))) => assert_eq!(f.n_tables, 254),
        other => panic!("{other:?}"),
    }
    eventually("fail-open to end", || !trace_says_fail_open(dir));
    let mut b = Vec::new();
    rvs_control::openflow::message::add_flow(
        parse_flow("priority=9,dl_type=0x88cc,actions=drop", &()).unwrap(),
    )
    .encode(3, &mut b)
    .unwrap();
    Message::BarrierRequest.encode(4, &mut b).unwrap();
    c.write_all(&b).unwrap();
    expect(&mut c, msg_type::BARRIER_REPLY);
    let dump = d.rvs(&["dump-flows", "br0"]);
    assert!(dump.contains("priority=9,dl_type=0x88cc actions=drop"), "{dump}");
    // Rules that ask for it are reported when they go: by hard timeout,
    // and by a delete.
    let mut b = Vec::new();
    for (i, text) in [
        "priority=7,udp,tp_dst=9,hard_timeout=1,actions=drop",
        "priority=7,udp,tp_dst=10,actions=drop",
    ]
    .iter()
    .enumerate()
    {
        let Message::FlowMod(mut fm) =
            rvs_control::openflow::message::add_flow(parse_flow(text, &()).unwrap())
        else {
            unreachable!()
        };
        fm.flags = 1;
        fm.fm.send_flow_rem = true;
        Message::FlowMod(fm).encode(10 + i as u32, &mut b).unwrap();
    }
    c.write_all(&b).unwrap();
    let removed = |c: &mut TcpStream| match decode(&expect(c, msg_type::FLOW_REMOVED)) {
        Ok((_, Message::FlowRemoved(f))) => f,
        other => panic!("{other:?}"),
    };
    let f = removed(&mut c);
    assert_eq!((f.reason, f.hard_timeout), (RemovalReason::Hard, 1));
    // The CLI's del-flows is a delete too (as ovs-ofctl's would be).
    d.rvs(&["del-flows", "br0", "udp,tp_dst=10"]);
    assert_eq!(removed(&mut c).reason, RemovalReason::Delete);
    let mut b = Vec::new();
    let Message::FlowMod(mut del) = rvs_control::openflow::message::add_flow(
        parse_flow("priority=7,udp,tp_dst=10,actions=drop", &()).unwrap(),
    ) else {
        unreachable!()
    };
    del.fm.command = rvs_control::flow_mod::Command::DeleteStrict;
    // Add it again, and delete it over OpenFlow.
    let mut again = del.clone();
    again.fm.command = rvs_control::flow_mod::Command::Add;
    again.flags = 1;
    again.fm.send_flow_rem = true;
    Message::FlowMod(again).encode(20, &mut b).unwrap();
    Message::FlowMod(del).encode(21, &mut b).unwrap();
    c.write_all(&b).unwrap();
    let f = removed(&mut c);
    assert_eq!((f.reason, f.priority), (RemovalReason::Delete, 7));
    // Ports that come and go are announced (PORT_STATUS ADD, DELETE).
    d.rvs(&["add-port", "br0", "p9", "type=memory"]);
    let ps = expect(&mut c, msg_type::PORT_STATUS);
    match decode(&ps) {
        Ok((_, Message::PortStatus { reason: 0, desc })) => assert_eq!(desc.name, "p9"),
        other => panic!("{other:?}"),
    }
    d.rvs(&["del-port", "p9"]);
    match decode(&expect(&mut c, msg_type::PORT_STATUS)) {
        Ok((_, Message::PortStatus { reason: 1, desc })) => assert_eq!(desc.name, "p9"),
        other => panic!("{other:?}"),
    }
    // The controller goes away: fail-open again, the rules stay.
    drop(c);
    eventually("fail-open to start again", || trace_says_fail_open(dir));
    assert!(d.rvs(&["dump-flows", "br0"]).contains("dl_type=0x88cc"));
    // And it dials again (with backoff).
    let (c2, _) = listener.accept().unwrap();
    drop(c2);
    d.rvs(&["del-controller", "br0"]);
    assert!(!trace_says_fail_open(dir));
}
