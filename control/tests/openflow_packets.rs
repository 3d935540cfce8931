//! Root-only: packets between a controller and the datapath, with the real
//! `ovs-ofctl` as the controller. Hosts h1 and h2 (namespaces this test
//! makes and removes) hang off a bridge whose only rule is the table-miss
//! rule `priority=0,actions=CONTROLLER:128`: h1's ARP comes up to
//! `ovs-ofctl monitor` as a PACKET_IN (in_port 1, no_match); a PACKET_OUT
//! from the controller (`output:2`, then `TABLE` through a rule) reaches
//! h2, whose ARP reply comes up in turn (in_port 2); PORT_MOD's no-forward
//! keeps it off port 2 until forward is set again; a group (add-group,
//! dump-groups, a rule to it, del-groups) carries it too. For both datapaths:
//! the AF_XDP one and the eBPF one, whose kernel leaves such flows to
//! userspace; and with ovs-ofctl's default OpenFlow 1.0 (NXT_PACKET_IN,
//! 1.0's PACKET_OUT and PORT_MOD, NXT_GROUP_MOD).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{daemon_with_bridge, ofctl_as, rvs_ok, wait_for, Reaped};
use rvs_dataplane::testing::netns::{root_or_skip, Netns, TwoHosts};

/// An ARP request from the controller's made-up host (198.18.63.1,
/// 02:00:00:00:00:63) for `target`, as hex for `ovs-ofctl packet-out`.
fn arp_request_hex(target: [u8; 4]) -> String {
    let mac = [2, 0, 0, 0, 0, 0x63];
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[198, 18, 63, 1]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the monitor printed so far.
fn monitor_output(path: &std::path::Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// Wait (10 s at most) until the monitor printed a PACKET_IN whose text has
/// every one of `words`; returns it.
fn wait_packet_in(path: &std::path::Path, words: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = monitor_output(path);
        // One message per paragraph: the header line, then the packet.
        let found = out
            .split("_PACKET_IN")
            .skip(1)
            .find(|m| words.iter().all(|w| m.contains(w)));
        if let Some(m) = found {
            return m.to_string();
        }
        assert!(Instant::now() < deadline, "no PACKET_IN with {words:?}:\n{out}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `proto`: ovs-ofctl's `-O` (`None`: OpenFlow 1.0, where the monitor asks
/// for NXT_PACKET_IN and groups go as OVS's NXT_GROUP_MOD).
fn packet_ins_and_outs(datapath: &str, proto: Option<&str>) {
    if Command::new("ovs-ofctl").arg("--version").output().is_err() {
        eprintln!("skipped: ovs-ofctl is not installed (scripts/install-deps.sh installs it)");
        return;
    }
    let prefix = match (datapath, proto) {
        ("ebpf", _) => "rpe",
        (_, None) => "rp0",
        _ => "rpx",
    };
    let mut net = Netns::new(prefix);
    let ofctl_in = |ns: &str, args: &[&str]| ofctl_as(ns, proto, args);
    let TwoHosts { h1, sw, sa, sb, .. } = net.two_hosts(Some("198.18.62"));
    let dir = tempfile::tempdir().unwrap();
    let _daemon = daemon_with_bridge(&sw, dir.path(), datapath, &[&sa, &sb]);
    let rvs = |args: &[&str]| rvs_ok(dir.path(), args);
    let port = 16653 + std::process::id() % 1000;
    rvs(&["set-controller", "br0", &format!("ptcp:{port}")]);
    let target = format!("tcp:127.0.0.1:{port}");
    let ofctl = |args: &[&str]| {
        let (code, out, err) = ofctl_in(&sw, args);
        assert_eq!(code, 0, "ovs-ofctl {}: {err}", args.join(" "));
        out
    };
    // The listener comes up with the daemon's next look at its targets.
    wait_for(5, "no OpenFlow listener", || {
        ofctl_in(&sw, &["show", &target]).0 == 0
    });
    ofctl(&["del-flows", &target]);
    ofctl(&["add-flow", &target, "priority=0,actions=CONTROLLER:128"]);
    assert!(
        rvs(&["dump-flows", "br0"]).contains("priority=0 actions=CONTROLLER:128"),
        "{}",
        rvs(&["dump-flows", "br0"])
    );

    // ovs-ofctl monitor prints what it gets on stderr (it daemonizes its
    // output): both streams go to one file.
    let log = dir.path().join("monitor.out");
    let out = std::fs::File::create(&log).unwrap();
    let mut monitor = Command::new("ip");
    monitor.args(["netns", "exec", &sw, "ovs-ofctl"]);
    if let Some(p) = proto {
        monitor.args(["-O", p]);
    }
    let _monitor = Reaped(
        monitor
            .arg(format!("--unixctl={}", dir.path().join("monitor.ctl").display()))
            .args(["monitor", &target, "65535"])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
    );
    // h1 looks for h2: its ARP request goes to the controller (until the
    // monitor is connected, it is counted as a controller drop and ping
    // tries again).
    let _ping = Reaped(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &h1,
                "ping",
                "-c",
                "20",
                "-i",
                "0.5",
                "198.18.62.2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pin = wait_packet_in(
        &log,
        &["in_port=1", "via no_match", "arp,", "arp_tpa=198.18.62.2"],
    );
    if proto.is_some() {
        assert!(pin.contains("cookie=0x0"), "{pin}");
    } else {
        let all = monitor_output(&log);
        assert!(all.contains("NXT_PACKET_IN (xid="), "1.0's NXT_PACKET_IN: {all}");
        assert!(pin.contains("cookie=0x0 total_len="), "{pin}");
    }

    // The controller answers for nobody but speaks to h2 itself: a
    // PACKET_OUT to port 2; h2's reply comes back up from port 2.
    let hex = arp_request_hex([198, 18, 62, 2]);
    ofctl(&[
        "packet-out",
        &target,
        &format!("in_port=controller packet={hex} actions=output:2"),
    ]);
    wait_packet_in(&log, &["in_port=2", "arp_op=2", "arp_tpa=198.18.63.1"]);

    // output:TABLE: the rules decide. One sends broadcasts from the
    // controller to port 2 (and counts the packet); h2's reply meets the
    // table-miss rule and comes up again.
    ofctl(&[
        "add-flow",
        &target,
        "cookie=0x5,priority=10,in_port=controller,dl_dst=ff:ff:ff:ff:ff:ff,actions=output:2",
    ]);
    // h2's replies seen so far; a packet-out with `actions`, then a new
    // reply awaited.
    let replies = || monitor_output(&log).matches("in_port=2").count();
    let packet_out = |actions: &str| {
        ofctl(&[
            "packet-out",
            &target,
            &format!("in_port=controller packet={hex} actions={actions}"),
        ]);
    };
    let answered = |actions: &str, what: &str| {
        let before = replies();
        packet_out(actions);
        wait_for(10, what, || replies() > before);
    };
    answered("TABLE", "no reply to the TABLE packet-out");
    let dump = ofctl(&["dump-flows", &target]);
    assert!(
        dump.lines()
            .any(|l| l.contains("cookie=0x5") && l.contains("n_packets=1")),
        "the packet-out went through the rule: {dump}"
    );

    // PORT_MOD: with port 2 no-forward, the controller's packet-out stays
    // off it (no reply comes up); forward again, it goes. The monitor sees
    // each change as a PORT_STATUS.
    ofctl(&["mod-port", &target, "2", "no-forward"]);
    let show = ofctl(&["show", &target]);
    assert!(show.contains("NO_FWD"), "{show}");
    let before = replies();
    packet_out("output:2");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(replies(), before, "a no_fwd port sent the packet-out");
    ofctl(&["mod-port", &target, "2", "forward"]);
    answered("output:2", "no reply once port 2 forwards again");
    // Ports are compared every 100 ms: the second change may still be on
    // its way.
    wait_for(10, "two PORT_STATUS, one with NO_FWD", || {
        let out = monitor_output(&log);
        out.matches("OFPT_PORT_STATUS").count() >= 2 && out.contains("NO_FWD")
    });

    groups(&ofctl, &rvs, &target, &answered, proto.is_none());

    // A packet-out from a port the bridge lacks is refused with its error.
    let (code, _, err) = ofctl_in(
        &sw,
        &[
            "packet-out",
            &target,
            &format!("in_port=77 packet={hex} actions=output:2"),
        ],
    );
    assert!(code != 0 && err.contains("OFPBRC_BAD_PORT"), "{code} {err}");
}

fn groups(
    ofctl: &dyn Fn(&[&str]) -> String,
    rvs: &dyn Fn(&[&str]) -> String,
    target: &str,
    answered: &dyn Fn(&str, &str),
    of10: bool,
) {
    let target = target.to_string();
    // Groups: an ALL group to port 2, a rule that sends the controller's
    // ARP to it, a packet-out through the tables: h2 answers. Deleting the
    // group deletes the rule.
    ofctl(&["add-group", &target, "group_id=7,type=all,bucket=output:2"]);
    let groups = ofctl(&["dump-groups", &target]);
    // 1.0 carries groups in OVS's NXST_GROUP_DESC, 1.5's form: bucket ids.
    let want = if of10 {
        "group_id=7,type=all,bucket=bucket_id:0,actions=output:2"
    } else {
        "group_id=7,type=all,bucket=actions=output:2"
    };
    assert!(groups.contains(want), "{groups}");
    assert!(
        rvs(&["dump-groups", "br0"]).contains("group_id=7,type=all,bucket=actions=output:2"),
        "{}",
        rvs(&["dump-groups", "br0"])
    );
    ofctl(&[
        "add-flow",
        &target,
        "priority=20,in_port=controller,arp,actions=group:7",
    ]);
    answered("TABLE", "no reply through group 7");
    let stats = ofctl(&["dump-group-stats", &target]);
    assert!(
        stats.contains("group_id=7") && stats.contains("ref_count=1"),
        "{stats}"
    );
    // The packet-out went through it: the group and its bucket count it.
    assert!(
        stats.contains("packet_count=1,") && stats.contains("bucket0:packet_count=1,"),
        "{stats}"
    );
    ofctl(&["del-groups", &target, "group_id=7"]);
    let dump = ofctl(&["dump-flows", &target]);
    assert!(!dump.contains("group:7"), "the rule went with its group: {dump}");
    assert!(ofctl(&["dump-groups", &target]).lines().count() <= 1);
}

#[test]
fn root_controller_packet_in_and_out_afxdp() {
    if root_or_skip("controller_packet_in_and_out_afxdp") {
        packet_ins_and_outs("afxdp", Some("OpenFlow13"));
    }
}

#[test]
fn root_controller_packet_in_and_out_openflow10() {
    if root_or_skip("controller_packet_in_and_out_openflow10") {
        packet_ins_and_outs("afxdp", None);
    }
}

#[test]
fn root_controller_packet_in_and_out_ebpf() {
    if root_or_skip("controller_packet_in_and_out_ebpf") {
        packet_ins_and_outs("ebpf", Some("OpenFlow13"));
    }
}
