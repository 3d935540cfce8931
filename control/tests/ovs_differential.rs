//! rvs against real Open vSwitch, packet by packet: each case's rules are
//! loaded into a private `ovs-vswitchd` (the distribution's, with its dummy
//! datapath: no kernel module, no root) with `ovs-ofctl`, and into an rvs
//! daemon (memory ports) with `rvs`; each packet is traced by both
//! (`ovs-appctl ofproto/trace` and `rvs trace`, the same flow text), and the
//! datapath actions must be the same once each side's datapath port numbers
//! are written as port names, and a rule set OVS refuses, rvs refuses too.
//! The cases are rule sets OVS users and neutron write, and the behaviours of
//! OVS's `tests/ofproto-dpif.at`.
//!
//! Written the same way on both sides first ([`normalize`]), because they
//! differ in form, not in what leaves which port: the order of copies that
//! leave unmodified one after the other (OVS floods in hash order), one
//! `set(eth(src,dst))` per header in OVS against one per action in rvs,
//! `set(tcp(..))`/`set(udp(..))` against rvs's `set(l4(..))`, `drop` against
//! rvs's `drop(reason)`, OVS's `userspace(..controller(reason=..))` against
//! rvs's `userspace(cookie=..)` for a copy to the controller (both written
//! as an output to `controller`), and dec_ttl's expiry, which OVS offers
//! the controller (reason=2) and rvs counts as `drop(ttl_exceeded)`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{rvs_ok, spawn_daemon};

/// A private OVS: ovsdb-server and ovs-vswitchd (dummy datapath) with every
/// file in a temporary directory; stopped by their pidfiles on drop.
struct Ovs {
    dir: tempfile::TempDir,
}

impl Ovs {
    /// Start it; `None` (the test is skipped) when OVS is not installed,
    /// except under CI, where `make test` installed it.
    fn start() -> Option<Ovs> {
        if !prog("ovs-vswitchd").exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "ovs-vswitchd is missing (scripts/install-deps.sh installs openvswitch-switch)"
            );
            eprintln!("skipped: Open vSwitch is not installed (make deps)");
            return None;
        }
        let ovs = Ovs {
            dir: tempfile::tempdir().unwrap(),
        };
        let d = ovs.path().display().to_string();
        let db = format!("{d}/conf.db");
        ovs.run(&[
            "ovsdb-tool",
            "create",
            &db,
            "/usr/share/openvswitch/vswitch.ovsschema",
        ]);
        ovs.run(&[
            "ovsdb-server",
            &db,
            &format!("--remote=punix:{d}/db.sock"),
            &format!("--pidfile={d}/ovsdb-server.pid"),
            &format!("--unixctl={d}/ovsdb-server.ctl"),
            &format!("--log-file={d}/ovsdb-server.log"),
            "--no-chdir",
            "--detach",
        ]);
        ovs.vsctl(&["--no-wait", "init"]);
        ovs.run(&[
            "ovs-vswitchd",
            &format!("unix:{d}/db.sock"),
            "--enable-dummy=override",
            "--disable-system",
            "--disable-system-route",
            &format!("--pidfile={d}/ovs-vswitchd.pid"),
            &format!("--unixctl={d}/ovs-vswitchd.ctl"),
            &format!("--log-file={d}/ovs-vswitchd.log"),
            "--no-chdir",
            "--detach",
        ]);
        Some(ovs)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Run an OVS program with its files in the directory; stdout. Fails the
    /// test when it fails.
    fn run(&self, argv: &[&str]) -> String {
        self.try_run(argv)
            .unwrap_or_else(|e| panic!("{}: {e}", argv.join(" ")))
    }

    /// Run an OVS program: stdout, or stderr when it fails.
    fn try_run(&self, argv: &[&str]) -> Result<String, String> {
        let d = self.path();
        let out = Command::new(prog(argv[0]))
            .args(&argv[1..])
            .env("OVS_RUNDIR", d)
            .env("OVS_LOGDIR", d)
            .env("OVS_DBDIR", d)
            .env("OVS_SYSCONFDIR", d)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", argv[0]));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db=unix:{}/db.sock", self.path().display());
        let mut argv = vec!["ovs-vsctl", db.as_str(), "--timeout=10"];
        argv.extend_from_slice(args);
        self.run(&argv)
    }

    fn appctl(&self, args: &[&str]) -> String {
        let ctl = format!("{}/ovs-vswitchd.ctl", self.path().display());
        let mut argv = vec!["ovs-appctl", "-t", ctl.as_str()];
        argv.extend_from_slice(args);
        self.run(&argv)
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        for name in ["ovs-vswitchd", "ovsdb-server"] {
            let pidfile = self.path().join(format!("{name}.pid"));
            let Some(pid) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            else {
                continue;
            };
            // SAFETY: kill(2) with a PID our own daemon wrote; no memory passed.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while pidfile.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Where an OVS program is: on PATH, else in /usr/sbin (the daemons, which a
/// normal user's PATH may lack).
fn prog(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .collect::<Vec<_>>()
        })
        .and_then(|c| c.into_iter().find(|p| p.exists()))
        .unwrap_or_else(|| Path::new("/usr/sbin").join(name))
}

/// An rvs daemon on a temporary run directory, killed on drop.
struct Rvs {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Rvs {
    fn start() -> Rvs {
        let dir = tempfile::tempdir().unwrap();
        let child = spawn_daemon(None, dir.path());
        Rvs { child, dir }
    }

    fn ok(&self, args: &[&str]) -> String {
        rvs_ok(self.dir.path(), args)
    }
}

impl Drop for Rvs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One rule set and the packets traced through it.
struct Case {
    name: &'static str,
    /// Per port p1..p4: extra `add-port` settings (`tag=N`, `trunks=A,B`).
    ports: [&'static str; 4],
    flows: &'static str,
    packets: &'static [&'static str],
    /// Trace with side effects (`-generate` / `--generate`): NORMAL learns,
    /// `learn()` installs, and the next packet sees it.
    generate: bool,
}

const P: [&str; 4] = ["", "", "", ""];

/// Rule sets OVS refuses: rvs must refuse them as well.
fn refused() -> Vec<Case> {
    let bad = |name, flows| Case {
        name,
        ports: P,
        flows,
        packets: &[],
        generate: false,
    };
    vec![
        bad(
            "load into the IPv4 destination without ip",
            "actions=load:0xa000009->NXM_OF_IP_DST[],output:p1\n",
        ),
        bad(
            "set_field of a TCP port without tcp",
            "ip,actions=set_field:80->tcp_dst,output:p1\n",
        ),
        bad(
            "set_field of an IPv6 address without ipv6",
            "ip,actions=set_field:::1->ipv6_dst,output:p1\n",
        ),
        bad(
            "move from an ARP field without arp",
            "actions=move:NXM_OF_ARP_SPA[]->NXM_NX_REG0[],output:p2\n",
        ),
        bad(
            "move inside write_actions",
            "actions=write_actions(move:NXM_OF_IP_SRC[]->NXM_NX_REG0[])\n",
        ),
        bad("goto_table backwards", "table=1,actions=goto_table:0\n"),
        bad("goto_table to its own table", "table=2,actions=goto_table:2\n"),
        bad("output to a port number over the range", "actions=output:70000\n"),
        bad("an unknown action", "actions=frobnicate,output:p2\n"),
        bad(
            "ct_mark set outside ct()",
            "ip,actions=set_field:1->ct_mark,output:p2\n",
        ),
        bad(
            "ct exec of a non-ct field",
            "ip,actions=ct(commit,exec(set_field:1->reg0)),output:p2\n",
        ),
    ]
}

/// Split datapath actions at top-level commas.
fn actions(text: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The VLAN tag a traced flow's text gives its packet (`vid=V,pcp=P`).
fn tag_of(flow: &str) -> Option<String> {
    let get = |k: &str| {
        flow.split(',')
            .find_map(|f| f.strip_prefix(k)?.strip_prefix('='))
            .map(String::from)
    };
    get("dl_vlan").map(|v| format!("vid={v},pcp={}", get("dl_vlan_pcp").unwrap_or_else(|| "0".into())))
}

/// The datapath actions of a trace's text, each bare port number written as
/// the port's name through `names` (datapath port -> name), normalized for a
/// packet with VLAN tag `tag`.
fn decision(trace: &str, names: &std::collections::HashMap<String, String>, tag: Option<String>) -> String {
    let line = trace
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("Datapath actions: "))
        .unwrap_or_else(|| panic!("no datapath actions in:\n{trace}"));
    let named = actions(line.trim())
        .into_iter()
        .map(|a| names.get(&a).cloned().unwrap_or(a))
        .collect();
    normalize(named, tag).join(",")
}

/// What leaves which port: each output with the header changes made before
/// it (VLAN tags pushed and popped, fields set), sorted, and the other
/// actions (drops with their reason) as they are. See the module comment.
fn normalize(acts: Vec<String>, tag: Option<String>) -> Vec<String> {
    // The packet's own tag, then the tags pushed on it (innermost first).
    let mut vlan: Vec<String> = tag.into_iter().collect();
    let mut sets: std::collections::BTreeMap<(String, String), String> = Default::default();
    let mut out = Vec::new();
    for a in acts {
        // Nothing leaves: OVS prints `drop`, rvs names its reason.
        if a == "drop" || (a.starts_with("drop(") && a != "drop(ttl_exceeded)") {
            continue;
        }
        let to_controller = a.starts_with("userspace(cookie=")
            || (a.starts_with("userspace(") && a.contains("controller(reason=") && !a.contains("reason=2"));
        if a.starts_with("userspace(") && a.contains("controller(reason=2") {
            out.push("drop(ttl_exceeded)".to_string());
        } else if to_controller {
            let changes: Vec<String> = sets.iter().map(|((h, k), v)| format!("{h}.{k}={v}")).collect();
            out.push(format!(
                "controller <- [{}] {}",
                vlan.join(","),
                changes.join(",")
            ));
        } else if a == "pop_vlan" {
            if vlan.pop().is_none() {
                vlan.push("pop of an untagged frame".into());
            }
        } else if let Some(t) = a.strip_prefix("push_vlan(").and_then(|t| t.strip_suffix(')')) {
            vlan.push(t.to_string());
        } else if let Some((hdr, fields)) = set_parts(&a) {
            let hdr = if ["tcp", "udp", "sctp"].contains(&hdr.as_str()) {
                "l4".to_string()
            } else {
                hdr
            };
            for (k, v) in fields {
                sets.insert((hdr.clone(), k), v);
            }
        } else if !a.contains('(') {
            let changes: Vec<String> = sets.iter().map(|((h, k), v)| format!("{h}.{k}={v}")).collect();
            out.push(format!("{a} <- [{}] {}", vlan.join(","), changes.join(",")));
        } else {
            out.push(a);
        }
    }
    out.sort();
    out
}

/// `set(HDR(k=v,...))` -> (HDR, [(k, v)]).
fn set_parts(a: &str) -> Option<(String, Vec<(String, String)>)> {
    let inner = a.strip_prefix("set(")?.strip_suffix("))")?;
    let (hdr, body) = inner.split_once('(')?;
    let fields = body
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some((hdr.to_string(), fields))
}

/// OVS's datapath port -> name (`dpif/show`: `    p1 1/2: (dummy)`).
fn ovs_names(ovs: &Ovs) -> std::collections::HashMap<String, String> {
    ovs.appctl(&["dpif/show"])
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?;
            let (_, dp) = w.next()?.trim_end_matches(':').split_once('/')?;
            Some((dp.to_string(), name.to_string()))
        })
        .collect()
}

/// rvs's datapath port -> name (`dpctl show` as JSON).
fn rvs_names(rvs: &Rvs) -> std::collections::HashMap<String, String> {
    let v: serde_json::Value = serde_json::from_str(&rvs.ok(&["--format", "json", "dpctl", "show"])).unwrap();
    v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["port"].to_string(), p["name"].as_str().unwrap().to_string()))
        .collect()
}

/// Build the case's bridge on both sides, load its rules, trace each packet;
/// the mismatches as text.
fn run_case(ovs: &Ovs, rvs: &Rvs, case: &Case) -> Vec<String> {
    let _ = ovs.vsctl(&["--if-exists", "del-br", "br0"]);
    ovs.vsctl(&[
        "add-br",
        "br0",
        "--",
        "set",
        "bridge",
        "br0",
        "datapath_type=dummy",
        "fail_mode=secure",
    ]);
    rvs.ok(&["--if-exists", "del-br", "br0"]);
    rvs.ok(&["add-br", "br0"]);
    for (i, extra) in case.ports.iter().enumerate() {
        let (name, ofport) = (format!("p{}", i + 1), format!("ofport_request={}", i + 1));
        let mut o = vec!["add-port", "br0", name.as_str()];
        o.extend(extra.split_whitespace());
        o.extend([
            "--",
            "set",
            "interface",
            name.as_str(),
            "type=dummy",
            ofport.as_str(),
        ]);
        ovs.vsctl(&o);
        let mut r = vec!["add-port", "br0", name.as_str(), "type=memory", ofport.as_str()];
        r.extend(extra.split_whitespace());
        rvs.ok(&r);
    }
    let file = ovs.path().join("flows");
    std::fs::write(&file, case.flows).unwrap();
    let f = file.display().to_string();
    // A rule set OVS refuses, rvs must refuse too (and the other way round).
    let o = ovs.try_run(&["ovs-ofctl", "-O", "OpenFlow13", "replace-flows", "br0", &f]);
    let (code, _, rerr) = common::rvs_at(rvs.dir.path(), &["replace-flows", "br0", &f]);
    match (o, code) {
        (Ok(_), 0) => {}
        (Err(_), c) if c != 0 => return Vec::new(),
        (o, _) => {
            return vec![format!(
                "{}: the rules\n    OVS: {}\n    rvs: {}",
                case.name,
                o.err().map_or("accepted".into(), |e| e.trim().to_string()),
                if code == 0 {
                    "accepted".into()
                } else {
                    rerr.trim().to_string()
                }
            )]
        }
    }
    let (on, rn) = (ovs_names(ovs), rvs_names(rvs));
    let mut bad = Vec::new();
    for pkt in case.packets {
        // `FLOW --ct-next FLAGS`: what the tracker says at each recirculation.
        let (flow, ct_next) = match pkt.split_once(" --ct-next ") {
            Some((f, c)) => (f, Some(c)),
            None => (*pkt, None),
        };
        let (mut oa, mut ra) = (vec!["ofproto/trace", "br0", flow], vec!["trace", "br0", flow]);
        if case.generate {
            oa.push("-generate");
            ra.push("--generate");
        }
        if let Some(c) = ct_next {
            oa.extend(["--ct-next", c]);
            ra.extend(["--ct-next", c]);
        }
        let o = decision(&ovs.appctl(&oa), &on, tag_of(flow));
        let r = decision(&rvs.ok(&ra), &rn, tag_of(flow));
        if o != r {
            bad.push(format!("{}: {pkt}\n    OVS: {o}\n    rvs: {r}", case.name));
        }
    }
    bad
}

const ARP_BCAST: &str = "in_port=p1,dl_src=50:54:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_spa=10.0.0.1,arp_tpa=10.0.0.2,arp_op=1";
const TCP: &str = "in_port=p1,dl_src=50:54:00:00:00:01,dl_dst=50:54:00:00:00:02,tcp,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_ttl=64,tp_src=1234,tp_dst=80";
const UDP: &str = "in_port=p2,dl_src=50:54:00:00:00:02,dl_dst=50:54:00:00:00:01,udp,nw_src=10.0.0.2,nw_dst=10.0.0.1,nw_tos=0x2c,nw_ecn=2,nw_ttl=1,udp_src=53,udp_dst=5353";
// icmp, not a bare `ip`: OVS writes no IPv4 rewrite into the datapath for a
// packet whose protocol is 0 (it takes it for one without an L3 header).
const TAGGED: &str = "in_port=p3,dl_src=50:54:00:00:00:03,dl_dst=ff:ff:ff:ff:ff:ff,dl_vlan=10,dl_vlan_pcp=3,icmp,nw_src=10.0.0.3,nw_dst=10.0.0.255,nw_ttl=64,icmp_type=8,icmp_code=0";
const IPV6: &str = "in_port=p1,dl_src=50:54:00:00:00:01,dl_dst=50:54:00:00:00:02,udp6,ipv6_src=2001:db8::1,ipv6_dst=2001:db8::2,nw_ttl=64,udp_src=1,udp_dst=2";

const PACKETS: &[&str] = &[ARP_BCAST, TCP, UDP, TAGGED, IPV6];

/// In order: p1 announces itself, p2 answers it (known by then when learning
/// happened), p1 sends to p2, p3 sends on VLAN 10 to p1.
const LEARN: &[&str] = &[
    ARP_BCAST,
    "in_port=p2,dl_src=50:54:00:00:00:02,dl_dst=50:54:00:00:00:01,arp,arp_spa=10.0.0.2,arp_tpa=10.0.0.1,arp_op=2",
    TCP,
    "in_port=p3,dl_src=50:54:00:00:00:03,dl_dst=50:54:00:00:00:01,dl_vlan=10,ip,nw_proto=1,nw_src=10.0.0.3,nw_dst=10.0.0.1",
    UDP,
];

const IPV6_PACKETS: &[&str] = &[
    IPV6,
    "in_port=p2,dl_src=50:54:00:00:00:02,dl_dst=50:54:00:00:00:01,icmp6,ipv6_src=2001:db8::2,ipv6_dst=2001:db8::1,nw_ttl=1,icmpv6_type=128,icmpv6_code=0",
    "in_port=p1,dl_src=50:54:00:00:00:01,dl_dst=33:33:ff:00:00:07,icmp6,ipv6_src=2001:db8::1,ipv6_dst=ff02::1:ff00:7,nw_ttl=255,icmpv6_type=135,icmpv6_code=0,nd_target=2001:db8::7",
    TCP,
];

const FRAGMENTS: &[&str] = &[
    "in_port=p1,dl_src=50:54:00:00:00:01,dl_dst=50:54:00:00:00:02,udp,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_frag=first,udp_src=1,udp_dst=2",
    "in_port=p1,dl_src=50:54:00:00:00:01,dl_dst=50:54:00:00:00:02,udp,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_frag=later",
    TCP,
    ARP_BCAST,
];

/// The same TCP packet as the tracker may judge it at the recirculation.
const TCP_CT: &[&str] = &[
    TCP,
    "in_port=p1,dl_src=50:54:00:00:00:01,dl_dst=50:54:00:00:00:02,tcp,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_ttl=64,tp_src=1234,tp_dst=80 --ct-next trk,est",
    "in_port=p1,dl_src=50:54:00:00:00:01,dl_dst=50:54:00:00:00:02,tcp,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_ttl=64,tp_src=1234,tp_dst=80 --ct-next trk,est,rpl",
    "in_port=p1,dl_src=50:54:00:00:00:01,dl_dst=50:54:00:00:00:02,tcp,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_ttl=64,tp_src=1234,tp_dst=80 --ct-next trk,inv",
    "in_port=p2,dl_src=50:54:00:00:00:02,dl_dst=50:54:00:00:00:01,tcp,nw_src=10.0.0.2,nw_dst=10.0.0.1,nw_ttl=64,tp_src=80,tp_dst=1234 --ct-next trk,rel",
];

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "a stateful firewall: ct(table=), ct_state, commit with a mark",
            ports: P,
            flows: "table=0,priority=10,ct_state=-trk,ip,actions=ct(table=1,zone=5)
table=0,priority=0,actions=NORMAL
table=1,priority=20,ct_state=+trk+new,ip,in_port=p1,actions=ct(commit,zone=5,exec(set_field:0x7->ct_mark)),output:p2
table=1,priority=20,ct_state=+trk+est-rpl,ip,actions=output:p2
table=1,priority=20,ct_state=+trk+est+rpl,ip,actions=output:p3
table=1,priority=15,ct_state=+rel,ip,actions=output:p4
table=1,priority=10,ct_state=+trk+inv,actions=drop
table=1,priority=0,actions=drop\n",
            packets: TCP_CT,
            generate: false,
        },
        Case {
            name: "ct zone from a register, ct_clear, two recirculations",
            ports: P,
            flows: "table=0,priority=10,ip,actions=load:0x2a->NXM_NX_REG6[0..15],ct(table=1,zone=NXM_NX_REG6[0..15])
table=1,priority=10,ct_state=+trk,ct_zone=42,ip,actions=ct_clear,ct(table=2,zone=7)
table=1,priority=0,actions=output:p4
table=2,priority=10,ct_state=+trk,ct_zone=7,reg6=0x2a,actions=output:p3
table=2,priority=0,actions=output:p2\n",
            packets: &[TCP, UDP],
            generate: false,
        },
        Case {
            name: "drop everything",
            ports: P,
            flows: "priority=0,actions=drop\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "output, in_port and flood",
            ports: P,
            flows: "in_port=p1,actions=output:p2,output:in_port,output:p1
in_port=p2,actions=flood
in_port=p3,actions=all
priority=0,actions=output:p4\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "field rewrites",
            ports: P,
            flows: "in_port=p1,tcp,actions=mod_dl_src:02:00:00:00:00:aa,mod_nw_dst:10.0.0.9,mod_tp_dst:8080,output:p2
in_port=p2,udp,actions=mod_nw_tos:0x40,set_field:2->ip_ecn,output:p1
in_port=p3,actions=set_field:50:54:00:00:00:ff->eth_dst,output:p4
in_port=p1,ipv6,actions=set_field:2001:db8::9->ipv6_dst,output:p3\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "VLAN push, pop, modify",
            ports: P,
            flows: "in_port=p1,actions=mod_vlan_vid:5,output:p2
in_port=p2,actions=push_vlan:0x8100,set_field:4102->vlan_vid,output:p3
in_port=p3,dl_vlan=10,actions=strip_vlan,output:p1,mod_vlan_pcp:7,output:p2
in_port=p3,actions=drop\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "TTL",
            ports: P,
            flows: "in_port=p1,ip,actions=dec_ttl,output:p2
in_port=p2,ip,actions=dec_ttl,output:p1
in_port=p1,ipv6,actions=dec_ttl,mod_nw_ttl:9,output:p3
priority=0,actions=drop\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "resubmit and goto_table",
            ports: P,
            flows: "table=0,in_port=p1,actions=resubmit(,1),output:p4
table=0,in_port=p2,actions=resubmit(p1,2)
table=0,priority=0,actions=goto_table:3
table=1,tcp,actions=output:p2
table=1,priority=0,actions=output:p3
table=2,in_port=p1,actions=output:in_port,output:p3
table=2,in_port=p2,actions=output:p4
table=3,dl_vlan=10,actions=output:p1
table=3,priority=0,actions=drop\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "registers, move and load",
            ports: P,
            flows: "table=0,actions=load:0x2->NXM_NX_REG0[],move:NXM_OF_IN_PORT[]->NXM_NX_REG1[0..15],resubmit(,1)
table=1,reg0=2,reg1=1,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],output:p3
table=1,reg0=2,reg1=2,ip,actions=load:0xa000009->NXM_OF_IP_DST[],output:p1
table=1,priority=0,actions=output:p4\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "metadata",
            ports: P,
            flows: "table=0,in_port=p1,actions=write_metadata:0x5/0xff,goto_table:1
table=0,priority=0,actions=write_metadata:0x7,goto_table:1
table=1,metadata=0x5,actions=output:p2
table=1,metadata=0x7,actions=output:p4\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "action sets",
            ports: P,
            flows: "table=0,in_port=p1,actions=output:p4,write_actions(output:p2,mod_nw_src:10.1.1.1),goto_table:1
table=0,in_port=p2,actions=write_actions(output:p3),goto_table:2
table=0,priority=0,actions=write_actions(output:p1),clear_actions,output:p2
table=1,actions=write_actions(output:p3)
table=2,actset_output=p3,actions=write_actions(output:p4)\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "masks and priorities",
            ports: P,
            flows: "priority=100,ip,nw_src=10.0.0.0/30,actions=output:p2
priority=90,ip,nw_dst=10.0.0.0/24,actions=output:p3
priority=80,tcp,tp_dst=0x40/0xffc0,actions=output:p4
priority=70,dl_src=50:54:00:00:00:00/ff:ff:ff:00:00:00,actions=output:p1
priority=60,ipv6,ipv6_src=2001:db8::/64,actions=output:p2
priority=0,actions=drop\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "ToS, ECN, DSCP",
            ports: P,
            flows: "udp,nw_tos=0x2c,actions=output:p1
udp,nw_ecn=2,actions=output:p3
priority=0,ip,actions=mod_nw_ecn:1,output:p4\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "ARP fields",
            ports: P,
            flows: "arp,arp_op=1,arp_tpa=10.0.0.2,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:02:00:00:00:00:02,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],load:0x20000000002->NXM_NX_ARP_SHA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xa000002->NXM_OF_ARP_SPA[],in_port
priority=0,actions=drop\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "NORMAL on access and trunk ports",
            ports: ["tag=10", "tag=20", "trunks=10,20", ""],
            flows: "actions=NORMAL\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "NORMAL, all on VLAN 0",
            ports: P,
            flows: "actions=NORMAL\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "NORMAL learns (generate): the reply goes to one port",
            ports: P,
            flows: "actions=NORMAL\n",
            packets: LEARN,
            generate: true,
        },
        Case {
            name: "NORMAL learns per VLAN (generate)",
            ports: ["tag=10", "tag=10", "trunks=10,20", "tag=20"],
            flows: "actions=NORMAL\n",
            packets: LEARN,
            generate: true,
        },
        Case {
            name: "learn() a MAC table (generate)",
            ports: P,
            flows: "table=0,actions=learn(table=1,priority=10,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),resubmit(,1)
table=1,priority=0,actions=flood\n",
            packets: LEARN,
            generate: true,
        },
        Case {
            name: "a resubmit loop drops the whole packet",
            ports: P,
            flows: "in_port=p1,actions=output:p2,resubmit(,0)
priority=0,actions=output:p3\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "output to a register, resubmit to an empty table",
            ports: P,
            flows: "table=0,in_port=p1,actions=load:4->NXM_NX_REG2[0..15],output:NXM_NX_REG2[0..15]
table=0,in_port=p2,actions=resubmit(,9),output:p3
table=0,priority=0,actions=load:1->NXM_NX_REG2[],resubmit(,1)
table=1,reg2=1,actions=output:p2\n",
            packets: PACKETS,
            generate: false,
        },
        Case {
            name: "IPv6 rewrites and matches",
            ports: P,
            flows: "ipv6,ipv6_dst=2001:db8::2,actions=set_field:2001:db8::99->ipv6_src,dec_ttl,output:p2
ipv6,actions=output:p3
icmp6,icmp_type=135,nd_target=2001:db8::7,actions=output:p4
priority=0,actions=drop\n",
            packets: IPV6_PACKETS,
            generate: false,
        },
        Case {
            name: "fragments",
            ports: P,
            flows: "ip,nw_frag=later,actions=drop
ip,nw_frag=first,actions=output:p2
ip,nw_frag=no,actions=output:p3
priority=0,actions=output:p4\n",
            packets: FRAGMENTS,
            generate: false,
        },
        Case {
            name: "neutron br-int: a local VLAN per network, NORMAL",
            ports: ["tag=1", "tag=2", "", ""],
            flows: "table=0,priority=10,in_port=p3,dl_vlan=10,actions=mod_vlan_vid:1,NORMAL
table=0,priority=10,in_port=p3,dl_vlan=20,actions=mod_vlan_vid:2,NORMAL
table=0,priority=2,in_port=p3,actions=drop
table=0,priority=1,actions=NORMAL\n",
            packets: PACKETS,
            generate: false,
        },
    ]
}

#[test]
fn rvs_forwards_as_open_vswitch_does() {
    let Some(ovs) = Ovs::start() else {
        return;
    };
    let rvs = Rvs::start();
    let mut bad = Vec::new();
    let mut traced = 0;
    for case in cases().into_iter().chain(refused()) {
        traced += case.packets.len();
        bad.extend(run_case(&ovs, &rvs, &case));
    }
    assert!(
        bad.is_empty(),
        "{} of {traced} packets differ from Open vSwitch:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn datapath_actions_are_compared_by_what_leaves_which_port() {
    let names = [("2".to_string(), "p1".to_string())].into_iter().collect();
    let t = "Flow: ...\nDatapath actions: set(ipv4(src=1.2.3.4,dst=5.6.7.8)),2,push_vlan(vid=5,pcp=0),3";
    assert_eq!(
        decision(t, &names, None),
        "3 <- [vid=5,pcp=0] ipv4.dst=5.6.7.8,ipv4.src=1.2.3.4,\
         p1 <- [] ipv4.dst=5.6.7.8,ipv4.src=1.2.3.4"
    );
    let tag = tag_of("in_port=p3,dl_vlan=10,dl_vlan_pcp=3,icmp");
    assert_eq!(tag.as_deref(), Some("vid=10,pcp=3"));
    let n = |v: &[&str]| normalize(v.iter().map(|s| s.to_string()).collect(), tag.clone());
    // Flood order, one set per header or per field, tcp/l4: the same.
    assert_eq!(n(&["p4", "br0", "p1"]), n(&["p1", "p4", "br0"]));
    assert_eq!(
        n(&["set(eth(src=a,dst=b))", "set(tcp(dst=80))", "p1"]),
        n(&["set(eth(dst=b))", "set(eth(src=a))", "set(l4(dst=80))", "p1"])
    );
    // A copy before a pop and after the push that restores the tag; not
    // after a push of another tag.
    assert_eq!(
        n(&["br0", "pop_vlan", "p1", "push_vlan(vid=10,pcp=3)", "p4"]),
        n(&["pop_vlan", "p1", "push_vlan(vid=10,pcp=3)", "p4", "br0"])
    );
    assert_ne!(
        n(&["br0", "pop_vlan", "p1"]),
        n(&["pop_vlan", "p1", "push_vlan(vid=10,pcp=0)", "br0"])
    );
    assert_ne!(
        n(&["p1", "set(eth(src=a))", "p2"]),
        n(&["set(eth(src=a))", "p1", "p2"])
    );
    assert_eq!(
        n(&["userspace(pid=0,controller(reason=2,dont_send=1))"]),
        ["drop(ttl_exceeded)"]
    );
    assert_eq!(
        n(&["set(eth(dst=b))", "userspace(pid=0,controller(reason=1,dont_send=0,recirc_id=1,rule_cookie=0,controller_id=0,max_len=65535))"]),
        n(&["set(eth(dst=b))", "userspace(cookie=0x2a)"])
    );
    assert_ne!(
        n(&["userspace(cookie=0x2a)", "set(eth(dst=b))"]),
        n(&["set(eth(dst=b))", "userspace(cookie=0x2a)"])
    );
    assert_eq!(n(&["drop"]), n(&["drop(xlate_depth)"]));
    assert!(n(&["drop"]).is_empty());
}

/// The cookies of a dump-flows listing, in its order.
fn cookies(dump: &str) -> Vec<String> {
    dump.lines()
        .filter_map(|l| l.split("cookie=").nth(1))
        .map(|c| c.split([',', ' ']).next().unwrap_or("").to_string())
        .collect()
}

/// `dump-flows --sort[=FIELD]/--rsort[=FIELD]`: the same order as ovs-ofctl.
#[test]
fn dump_flows_sorts_as_ovs_ofctl_does() {
    let Some(ovs) = Ovs::start() else {
        return;
    };
    let rvs = Rvs::start();
    let case = Case {
        name: "sorting",
        ports: P,
        // Distinct priorities: every order below ends in a total one (OVS's
        // own order of ties is whatever its qsort leaves).
        flows: "cookie=0x1,priority=5,in_port=p2,actions=drop
cookie=0x2,priority=9,tcp,tcp_dst=80,actions=drop
cookie=0x3,priority=6,in_port=p1,tcp,tcp_dst=22,actions=drop
cookie=0x4,table=1,priority=1,dl_src=02:00:00:00:00:05,actions=drop
cookie=0x5,priority=7,ip,nw_dst=10.0.0.0/8,actions=drop
cookie=0x6,table=2,priority=8,ip,nw_dst=9.0.0.0/8,in_port=p4,actions=drop\n",
        packets: &[],
        generate: false,
    };
    assert_eq!(run_case(&ovs, &rvs, &case), Vec::<String>::new());
    let orders: &[&[&str]] = &[
        &["--sort"],
        &["--rsort"],
        &["--sort=in_port", "--sort"],
        &["--rsort=in_port", "--sort"],
        &["--rsort=tcp_dst", "--rsort"],
        &["--sort=tcp_dst", "--sort"],
        &["--sort=nw_dst", "--rsort=priority"],
        &["--sort=dl_src", "--sort"],
        &["--rsort=priority", "--sort=in_port"],
    ];
    for keys in orders {
        let mut o = vec!["ovs-ofctl", "-O", "OpenFlow13"];
        o.extend_from_slice(keys);
        o.extend(["dump-flows", "br0"]);
        let mut r = vec!["dump-flows", "br0"];
        r.extend_from_slice(keys);
        let (want, got) = (cookies(&ovs.run(&o)), cookies(&rvs.ok(&r)));
        assert_eq!(got.len(), 6, "{keys:?}: {got:?}");
        assert_eq!(got, want, "{keys:?}: rvs against ovs-ofctl");
    }
}
