//! An Open vSwitch node, as neutron's OVS agent builds a compute node, with
//! the distribution's OVS: a private `ovsdb-server` and `ovs-vswitchd` in the
//! node namespace (every socket, database, log and pidfile in the node's run
//! directory; started and stopped by pidfile), br-int (VM ports, one local
//! VLAN per network, NORMAL), br-tun (a Geneve port per other node, neutron's
//! tables loaded with `ovs-ofctl`), br-ex (the underlay veth, and the node's
//! address on its internal port).
//!
//! This kernel has no openvswitch module: the bridges use OVS's userspace
//! datapath (`datapath_type=netdev`), which tunnels natively: it routes and
//! ARPs for the remote endpoint itself, through the bridge whose internal
//! port holds the local address (br-ex).

use crate::lab::{mac_of, Lab};
use crate::topology::OvsPortType;
use anyhow::{Context, Result};
use std::path::PathBuf;

/// Where the package keeps the database schema.
pub const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// The bridges of a node, in the order they are made.
pub const BRIDGES: [&str; 3] = ["br-int", "br-tun", "br-ex"];

/// OpenFlow version of every `ovs-ofctl` call (neutron's agent speaks 1.3;
/// OVS refuses neutron's br-tun table text over 1.0's flow formats).
const OF_VERSION: &str = "OpenFlow13";

/// The pidfile of `ovs-vswitchd` on `node`.
pub fn vswitchd_pidfile(lab: &Lab, node: &str) -> PathBuf {
    lab.node_dir(node).join("ovs-vswitchd.pid")
}

/// `env OVS_*=DIR`: keeps every file OVS writes (sockets, logs, `.mgmt`
/// sockets of the bridges) in the node's run directory.
fn env(lab: &Lab, node: &str) -> Vec<String> {
    let d = lab.node_dir(node).display().to_string();
    let mut v = vec!["env".to_string()];
    for var in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"] {
        v.push(format!("{var}={d}"));
    }
    v
}

/// Run an OVS tool (`ovs-vsctl`, `ovs-ofctl`, ...) for `node`, with its
/// files in the node's run directory. The tools talk to the daemons over the
/// run directory's unix sockets, so they need not enter the namespace.
pub fn tool(lab: &Lab, node: &str, argv: &[&str]) -> Result<String> {
    let env = env(lab, node);
    let mut full: Vec<&str> = env.iter().map(String::as_str).collect();
    full.extend_from_slice(argv);
    lab.sh.run(&full)
}

/// `ovs-vsctl` against the node's database.
pub fn vsctl(lab: &Lab, node: &str, args: &[&str]) -> Result<String> {
    let db = format!("--db=unix:{}", lab.node_dir(node).join("db.sock").display());
    let mut argv = vec!["ovs-vsctl", db.as_str(), "--timeout=10"];
    argv.extend_from_slice(args);
    tool(lab, node, &argv)
}

/// `ovs-ofctl -O OpenFlow13` against a bridge of the node.
pub fn ofctl(lab: &Lab, node: &str, args: &[&str]) -> Result<String> {
    let mut argv = vec!["ovs-ofctl", "-O", OF_VERSION];
    argv.extend_from_slice(args);
    tool(lab, node, &argv)
}

/// Start `argv` (an OVS daemon that detaches) inside the node namespace with
/// its files in the run directory; returns once it has detached (for
/// ovs-vswitchd: once it has applied the database's configuration).
fn start(lab: &mut Lab, node: &str, name: &str, args: &[&str]) -> Result<()> {
    let pidfile = lab.record_process(node, name, name, name)?;
    let dir = lab.node_dir(node);
    let (ns, d) = (lab.ns(node), dir.display().to_string());
    let env = env(lab, node);
    let flags = [
        format!("--pidfile={}", pidfile.display()),
        format!("--unixctl={d}/{name}.ctl"),
        format!("--log-file={d}/{name}.log"),
        "--detach".to_string(),
    ];
    let mut argv: Vec<&str> = env.iter().map(String::as_str).collect();
    argv.extend(["ip", "netns", "exec", &ns, name]);
    argv.extend_from_slice(args);
    argv.extend(flags.iter().map(String::as_str));
    // What the daemon prints before it detaches (warnings) goes here.
    lab.sh.run_logged(&argv, &dir.join(format!("{name}.stderr")))
}

/// Create the node's database and start its `ovsdb-server`.
fn start_ovsdb(lab: &mut Lab, node: &str) -> Result<()> {
    let dir = lab.node_dir(node);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let db = dir.join("conf.db").display().to_string();
    tool(lab, node, &["ovsdb-tool", "create", &db, SCHEMA])?;
    let remote = format!("--remote=punix:{}", dir.join("db.sock").display());
    start(lab, node, "ovsdb-server", &[&db, &remote])?;
    vsctl(lab, node, &["--no-wait", "init"])?;
    Ok(())
}

/// Start (or restart) `ovs-vswitchd` on `node`. It reads bridges and ports
/// from ovsdb-server, which survives it; OpenFlow rules live only in
/// ovs-vswitchd, so after a restart br-tun is empty until [`resync`].
pub fn start_vswitchd(lab: &mut Lab, node: &str) -> Result<()> {
    let db = format!("unix:{}", lab.node_dir(node).join("db.sock").display());
    start(lab, node, "ovs-vswitchd", &[&db])
}

/// The agent's part after a restart: load br-tun's rules again, as
/// neutron's OVS agent does when it sees ovs-vswitchd restarted (its canary
/// rule gone). The lab does it at once; the agent would first notice.
pub fn resync(lab: &Lab, node: &str) -> Result<()> {
    let flows = lab.br_tun_flows_file(node).display().to_string();
    ofctl(lab, node, &["replace-flows", "br-tun", &flows])?;
    let br_int = crate::br_int::file(lab, node);
    if br_int.exists() {
        // Security groups and the router: br-int's own rules.
        ofctl(
            lab,
            node,
            &["replace-flows", "br-int", &br_int.display().to_string()],
        )?;
    }
    Ok(())
}

/// The OpenFlow rules of every bridge of `node`, one per line, without
/// counters (`ovs-ofctl dump-flows`).
pub fn dump_rules(lab: &Lab, node: &str) -> Result<String> {
    let mut all = String::new();
    for br in BRIDGES {
        all.push_str(&ofctl(lab, node, &["--names", "dump-flows", br])?);
    }
    Ok(all)
}

/// Build every node.
pub fn build(lab: &mut Lab) -> Result<()> {
    lab.state.overlay = "geneve".into();
    let nodes: Vec<String> = lab.topo.nodes.iter().map(|n| n.name.clone()).collect();
    for (i, n) in nodes.iter().enumerate() {
        lab.sh.note(&format!(
            "node {n}: ovsdb-server and ovs-vswitchd (userspace datapath), br-int, br-tun, br-ex"
        ));
        start_ovsdb(lab, n)?;
        if lab.topo.ovs_port_type() == OvsPortType::Afxdp {
            // One PMD thread per node, each on its own CPU (two on one CPU
            // time-slice: milliseconds of latency).
            let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
            let mask = format!("other_config:pmd-cpu-mask={:#x}", 1u64 << (i % cpus.min(64)));
            vsctl(lab, n, &["--no-wait", "set", "Open_vSwitch", ".", &mask])?;
        }
        start_vswitchd(lab, n)?;
        configure(lab, n)?;
    }
    Ok(())
}

fn configure(lab: &mut Lab, name: &str) -> Result<()> {
    let node = lab.node(name)?.clone();
    let ptype = format!("type={}", lab.topo.ovs_port_type().name());
    // br-ex's own MAC: it must differ from the underlay veth's, or both
    // answer the same frames.
    let hwaddr = format!("other-config:hwaddr={}", mac_of(node.underlay_ip));
    let mtu = lab.topo.underlay.mtu.to_string();
    let mtu_req = format!("mtu_request={mtu}");
    let netdev = "datapath_type=netdev";
    vsctl(
        lab,
        name,
        &["add-br", "br-int", "--", "set", "bridge", "br-int", netdev],
    )?;
    vsctl(
        lab,
        name,
        &[
            "add-br",
            "br-tun",
            "--",
            "set",
            "bridge",
            "br-tun",
            netdev,
            "fail_mode=secure",
        ],
    )?;
    vsctl(
        lab,
        name,
        &[
            "add-br",
            "br-ex",
            "--",
            "set",
            "bridge",
            "br-ex",
            netdev,
            &hwaddr,
            "--",
            "set",
            "interface",
            "br-ex",
            &mtu_req,
        ],
    )?;
    for (br, port, peer) in [
        ("br-int", "patch-tun", "patch-int"),
        ("br-tun", "patch-int", "patch-tun"),
    ] {
        let peer = format!("options:peer={peer}");
        vsctl(
            lab,
            name,
            &[
                "add-port",
                br,
                port,
                "--",
                "set",
                "interface",
                port,
                "type=patch",
                &peer,
            ],
        )?;
    }

    let uplink = lab.underlay_if(name);
    vsctl(
        lab,
        name,
        &[
            "add-port",
            "br-ex",
            &uplink,
            "--",
            "set",
            "interface",
            &uplink,
            &ptype,
        ],
    )?;
    // The node's address on br-ex: OVS's native tunnelling routes and ARPs
    // for the remote endpoint through it.
    let ns = lab.ns(name);
    let addr = format!("{}/{}", node.underlay_ip, lab.topo.underlay.subnet.prefix);
    lab.sh
        .run(&["ip", "-n", &ns, "addr", "add", &addr, "dev", "br-ex"])?;
    lab.sh
        .run(&["ip", "-n", &ns, "link", "set", "br-ex", "mtu", &mtu, "up"])?;

    let mut tunnels = Vec::new();
    for other in lab.topo.nodes.iter().filter(|n| n.name != name) {
        let port = format!("gnv-{}", other.name);
        let remote = format!("options:remote_ip={}", other.tunnel_ip());
        let local = format!("options:local_ip={}", node.underlay_ip);
        vsctl(
            lab,
            name,
            &[
                "add-port",
                "br-tun",
                &port,
                "--",
                "set",
                "interface",
                &port,
                "type=geneve",
                &remote,
                &local,
                "options:key=flow",
            ],
        )?;
        tunnels.push(port);
    }
    for vm in lab.topo.vms_on(name) {
        let tag = format!("tag={}", lab.topo.local_vlan(&vm.network).unwrap_or(1));
        let port = lab.vm_if(&vm.name);
        vsctl(
            lab,
            name,
            &[
                "add-port",
                "br-int",
                &port,
                &tag,
                "--",
                "set",
                "interface",
                &port,
                &ptype,
            ],
        )?;
    }
    lab.write_br_tun_flows(name, &tunnels)?;
    crate::br_int::write(lab, name)?;
    resync(lab, name)
}
