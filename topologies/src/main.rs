//! `rvs-lab`: build, test and compare lab topologies.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use rvs_topologies::lab::{default_prefix, Lab, LabOptions, DEFAULT_STATE_DIR};
use rvs_topologies::shell::Shell;
use rvs_topologies::state::live_pid;
use rvs_topologies::topology::SwitchKind;
use rvs_topologies::{checks, compare, conn_rate, ovs_node, rvs_node, Topology};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Lab runner for rvs topologies: two "hypervisor" namespaces, VMs, and rvs,
/// Open vSwitch or Linux bridges between them.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args)]
struct Common {
    /// Print every command (iproute2, rvs, ping, iperf3) before running it.
    #[arg(long, global = true)]
    explain: bool,
    /// Where state files and run directories live.
    #[arg(long, global = true, default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// The rvs binary (default: next to rvs-lab).
    #[arg(long, global = true)]
    rvs: Option<PathBuf>,
    /// Prefix of every namespace and interface name (default: rl + PID).
    #[arg(long, global = true)]
    prefix: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Parse and validate a topology file, and print what it describes.
    Check {
        /// The topology (TOML).
        topology: PathBuf,
    },
    /// Build the lab: namespaces, links, switches.
    Up {
        /// The topology (TOML).
        topology: PathBuf,
    },
    /// Remove the lab that `up` built (found through its state file).
    Down {
        /// The topology (TOML).
        topology: PathBuf,
    },
    /// What the lab consists of, and whether its parts are alive.
    Status {
        /// The topology (TOML).
        topology: PathBuf,
    },
    /// Check the lab works (reachability, isolation, MTU, TCP); brings it up
    /// and down around the checks unless it is up already.
    Test {
        /// The topology (TOML).
        topology: PathBuf,
        /// Length of the iperf3 check.
        #[arg(long, default_value_t = 3)]
        iperf_secs: u32,
    },
    /// Measure labs side by side (rvs, Open vSwitch, the Linux bridge):
    /// throughput, pps, latency, CPU, set-up time, a kill -9 of the switch's
    /// process; `--repeat N` rounds; writes report.md, report.json and SVG charts.
    Compare(compare::CompareArgs),
    /// The connection-rate probe `compare` runs inside the VMs.
    #[command(hide = true, subcommand)]
    ConnRate(ConnRateCmd),
}

#[derive(Subcommand)]
enum ConnRateCmd {
    /// Accept and close connections on PORT for SECONDS.
    Serve {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        seconds: f64,
    },
    /// Connect to ADDR:PORT over and over; prints `connections N failed M`.
    Connect {
        #[arg(long)]
        to: std::net::SocketAddr,
        #[arg(long)]
        seconds: f64,
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
}

fn main() {
    if let Err(e) = run() {
        eprintln!("rvs-lab: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    // `rvs-lab status ... | head` should end quietly, not panic on the closed
    // pipe (Rust ignores SIGPIPE by default). The programs it starts reset it
    // themselves (rvs is a Rust program too).
    // SAFETY: setting a signal's disposition to the default; no handler runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let stop = Arc::new(AtomicBool::new(false));
    // Ctrl-C and SIGTERM stop the current step; clean-up then runs as on failure.
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }
    let sh = Shell::new(cli.common.explain, stop);
    let rvs = match &cli.common.rvs {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("rvs-lab has no directory")?
            .join("rvs"),
    };
    let prefix = cli.common.prefix.clone().unwrap_or_else(default_prefix);
    let opts = LabOptions {
        prefix,
        state_dir: cli.common.state_dir.clone(),
        rvs: rvs.clone(),
    };
    let need_rvs = |t: &Topology| -> Result<()> {
        if t.switch == SwitchKind::Rvs && !rvs.exists() {
            bail!(
                "no rvs binary at {} (build it: cargo build --release -p rvs-control, or pass --rvs)",
                rvs.display()
            );
        }
        Ok(())
    };
    match cli.cmd {
        Cmd::ConnRate(ConnRateCmd::Serve { port, seconds }) => conn_rate::serve(port, seconds)?,
        Cmd::ConnRate(ConnRateCmd::Connect { to, seconds, threads }) => {
            println!("{}", conn_rate::format(conn_rate::connect(to, seconds, threads)));
        }
        Cmd::Check { topology } => {
            let t = Topology::load(&topology)?;
            println!("{}: {}", t.name, t.description);
            let datapath = match t.switch {
                SwitchKind::Rvs => format!(" ({} datapath)", t.datapath().name()),
                SwitchKind::Ovs => format!(" (userspace datapath, {} ports)", t.ovs_port_type().name()),
                SwitchKind::LinuxBridge => String::new(),
            };
            println!(
                "switch {:?}{datapath}, overlay {:?}, vm mtu {}, vm offloads {}",
                t.switch,
                t.overlay,
                t.vm_mtu,
                if t.vm_offloads { "on" } else { "off" }
            );
            println!("underlay {} (mtu {})", t.underlay.subnet, t.underlay.mtu);
            for n in &t.nodes {
                let vtep = n
                    .vtep_ip
                    .map(|v| format!(", tunnel endpoint {v}"))
                    .unwrap_or_default();
                println!("node {} underlay {}{vtep}", n.name, n.underlay_ip);
                for vm in t.vms_on(&n.name) {
                    println!("  vm {} {} on {}", vm.name, vm.ip, vm.network);
                }
            }
            for net in &t.networks {
                let gw = net.gateway.map(|g| format!(" gateway {g}")).unwrap_or_default();
                println!("network {} vni {} subnet {}{gw}", net.name, net.vni, net.subnet);
            }
            if let Some(r) = &t.router {
                let at = r
                    .node
                    .as_ref()
                    .map_or("distributed: every node".to_string(), |n| {
                        format!("namespace on {n}")
                    });
                println!("router {} ({at}) joins {}", r.name, r.networks.join(", "));
            }
            if t.security_groups {
                println!("every VM behind a security group");
            }
        }
        Cmd::Up { topology } => {
            let t = Topology::load(&topology)?;
            need_rvs(&t)?;
            let lab = Lab::up(&t, &opts, sh)?;
            let secs = (lab.state.ready_ms - lab.state.started_ms) as f64 / 1000.0;
            println!(
                "{} is up in {secs:.1} s (prefix {}, overlay {}); `rvs-lab status {}` shows it",
                t.name,
                lab.state.prefix,
                lab.state.overlay,
                topology.display()
            );
            if let Some((a, b)) = t.cross_node_pair() {
                println!("try: ip netns exec {} ping {}", lab.ns(&a.name), b.ip);
            }
            if let Some(n) = t.nodes.first() {
                let dir = lab.node_dir(&n.name);
                match t.switch {
                    SwitchKind::Rvs => println!(
                        "     {} --run-dir {} dpctl dump-flows",
                        lab.rvs.display(),
                        dir.display()
                    ),
                    SwitchKind::Ovs => println!(
                        "     OVS_RUNDIR={0} ovs-ofctl -O OpenFlow13 dump-flows br-tun; ovs-vsctl --db=unix:{0}/db.sock show",
                        dir.display()
                    ),
                    SwitchKind::LinuxBridge => {}
                }
            }
        }
        Cmd::Down { topology } => {
            let t = Topology::load(&topology)?;
            match Lab::open(&t, &opts.state_dir, &rvs, sh)? {
                Some(lab) => {
                    let p = lab.state.prefix.clone();
                    lab.down();
                    println!("{} (prefix {p}) is down", t.name);
                }
                None => println!(
                    "{} is not up (no state file in {})",
                    t.name,
                    opts.state_dir.display()
                ),
            }
        }
        Cmd::Status { topology } => {
            let t = Topology::load(&topology)?;
            let Some(lab) = Lab::open(&t, &opts.state_dir, &rvs, sh)? else {
                println!("{} is not up", t.name);
                return Ok(());
            };
            status(&lab)?;
        }
        Cmd::Test { topology, iperf_secs } => {
            let t = Topology::load(&topology)?;
            need_rvs(&t)?;
            let (mut lab, ours) = match Lab::open(&t, &opts.state_dir, &rvs, sh.clone())? {
                Some(lab) => (lab, false),
                None => (Lab::up(&t, &opts, sh)?, true),
            };
            let res = checks::run(&mut lab, iperf_secs);
            if ours {
                lab.down();
            }
            let failed = res?.iter().filter(|c| !c.passed).count();
            if failed > 0 {
                bail!("{failed} check(s) failed");
            }
            println!("all checks passed");
        }
        Cmd::Compare(args) => {
            // Every lab's small-packet run sends with `rvs blast`.
            if !rvs.exists() {
                bail!(
                    "no rvs binary at {} (compare sends with `rvs blast`; build it: cargo build --release -p rvs-control, or pass --rvs)",
                    rvs.display()
                );
            }
            for t in &args.topologies {
                Topology::load(t)?;
            }
            compare::run(&args, &opts, &sh)?;
        }
    }
    Ok(())
}

fn status(lab: &Lab) -> Result<()> {
    let s = &lab.state;
    println!(
        "{}: prefix {}, overlay {}, up since {} ms ago",
        s.topology,
        s.prefix,
        s.overlay,
        rvs_topologies::lab::now_ms().saturating_sub(s.started_ms)
    );
    let present = lab.sh.run(&["ip", "netns", "list"])?;
    for ns in &s.namespaces {
        let here = present.lines().any(|l| l.split_whitespace().next() == Some(ns));
        println!("  namespace {ns}: {}", if here { "present" } else { "MISSING" });
    }
    for p in &s.processes {
        let pid = live_pid(&p.pidfile, &p.comm);
        println!(
            "  {} on {}: {}",
            p.role,
            p.on,
            pid.map_or("not running".to_string(), |p| format!("pid {p}"))
        );
    }
    for n in &lab.topo.nodes {
        let shown = match lab.topo.switch {
            SwitchKind::Rvs => rvs_node::rvs(lab, &n.name, &["show"]),
            SwitchKind::Ovs => ovs_node::vsctl(lab, &n.name, &["show"]),
            SwitchKind::LinuxBridge => continue,
        };
        println!(
            "--- {} on {}",
            if lab.topo.switch == SwitchKind::Rvs {
                "rvs show"
            } else {
                "ovs-vsctl show"
            },
            n.name
        );
        match shown {
            Ok(out) => print!("{out}"),
            Err(e) => println!("  {e:#}"),
        }
    }
    Ok(())
}
