//! The `rvs` binary as a user runs it.

use std::io::Write;
use std::process::{Command, Stdio};

fn rvs(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = c.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn parse_flows_prints_the_fixture_in_canonical_form() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/neutron-br-tun.flows");
    let (code, out, err) = rvs(&["parse-flows", fixture], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("# port 1: patch-int"));
    assert!(
        out.contains(
            "table=22,priority=1,dl_vlan=1,actions=strip_vlan,load:0x1389->NXM_NX_TUN_ID[],output:2,output:3"
        ),
        "{out}"
    );
    assert_eq!(out.lines().filter(|l| l.starts_with("table=")).count(), 14);
}

#[test]
fn a_bad_flow_is_an_error_with_line_column_and_suggestion() {
    let (code, out, err) = rvs(
        &["parse-flows", "-"],
        Some("priority=1,actions=NORMAL\npriority=1,dl_dts=02:00:00:00:00:01,actions=drop\n"),
    );
    assert_eq!(code, 1);
    assert!(out.is_empty(), "nothing printed for a batch that fails: {out}");
    assert!(
        err.contains("line 2") && err.contains("column 12") && err.contains("did you mean \"dl_dst\""),
        "{err}"
    );
}

/// What the daemon refuses, parse-flows refuses: a bare unknown word is not
/// taken for a port name (the daemon has no such port either).
#[test]
fn parse_flows_refuses_an_unknown_action_and_knows_the_ovs_ones() {
    let (code, _, err) = rvs(
        &["parse-flows", "-"],
        Some("priority=1,actions=dec_tl,output:vm1\n"),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("unknown action \"dec_tl\"") && err.contains("did you mean \"dec_ttl\""),
        "{err}"
    );
    let (code, out, err) = rvs(
        &["parse-flows", "-"],
        Some("priority=1,ip,nw_tos=32,action=dec_ttl,mod_nw_ttl:9,output:in_port,output:vm1\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("priority=1,ip,nw_tos=32,actions=dec_ttl,mod_nw_ttl:9,IN_PORT,output:1"),
        "{out}"
    );
}

#[test]
fn trace_neutron_walks_br_int_into_br_tun() {
    let (code, out, err) = rvs(
        &[
            "trace-neutron",
            "br-int",
            "in_port=vm1,dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,arp",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("bridge(\"br-tun\")"), "{out}");
    assert!(
        out.contains("Datapath actions: tnl_push(geneve(vni=0x1389"),
        "{out}"
    );
    let (code, _, err) = rvs(
        &["trace-neutron", "br-int", "in_port=vm1,ip,nw_dst=300.1.1.1"],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("not a valid nw_dst"), "{err}");
}

/// `rvs blast` sends only inside the lab block, and several threads only
/// through AF_PACKET (an AF_XDP queue takes one socket): refused before any
/// socket is opened.
#[test]
fn blast_refuses_outside_addresses_and_threads_on_afxdp() {
    let base = ["blast", "--dst-mac", "02:00:00:00:00:02", "--seconds", "0.1"];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        rvs(&a, None)
    };
    let (code, _, err) = run(&["--port", "afpacket:lo", "--dst-ip", "192.0.2.1"]);
    assert_eq!(code, 1);
    assert!(err.contains("only sends inside 198.18.0.0/15"), "{err}");
    let (code, _, err) = run(&["--port", "afxdp:lo", "--threads", "2"]);
    assert_eq!(code, 1);
    assert!(err.contains("needs an afpacket port"), "{err}");
    let (code, _, err) = run(&["--port", "afpacket:lo", "--threads", "0"]);
    assert_eq!(code, 1);
    assert!(err.contains("--threads must be 1..=16"), "{err}");
}
