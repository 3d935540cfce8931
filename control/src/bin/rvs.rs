//! `rvs`: the switch's command line. Today it checks flow files offline
//! (`parse-flows`, like `ovs-ofctl parse-flows`) and traces a packet through the
//! neutron layout (`trace-neutron`); the daemon and its commands come next.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rvs_control::bridge::PortType;
use rvs_control::daemon::datapath::{Datapath, DatapathOptions};
use rvs_control::daemon::proto::Request;
use rvs_control::daemon::server::{request, socket_path, DaemonOptions};
use rvs_control::neutron::{build_node, NodeConfig, Remote, TenantNet};
use rvs_control::ofp::{parse_flows, PortNames};
use rvs_control::switch::Switch;
use rvs_control::upcall::trace_flow;
use rvs_dataplane::datapath::devices::{open_device, parse_port_spec, Programs};
use rvs_dataplane::datapath::DatapathKind;
use rvs_dataplane::pmd::{PmdConfig, PollMode};
use rvs_dataplane::port::Port;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// rvs, a userspace virtual switch.
#[derive(Parser)]
#[command(
    version,
    about,
    after_help = "Commands sent to a running daemon (OVS-like):\n  \
show | version | list-br | list-ports BR | add-br BR | del-br BR\n  \
add-port BR PORT [type=system|afxdp|afpacket|internal|patch|geneve|memory] [tag=N] [ofport_request=N] [options:K=V ...] | del-port PORT\n  \
add-flow BR FLOW | add-flows BR FILE|- | replace-flows BR FILE|- | del-flows BR [MATCH] | dump-flows BR [--table N]\n  \
add-tlv-map BR '{class=0x0102,type=0x80,len=4}->tun_metadata0' | trace BR FLOW\n  \
dump-groups BR | dpctl dump-flows | dpctl show | fdb-show BR | set-mac-aging BR SECONDS | tnl-neigh | tnl-arp-set BR IP MAC | tnl-arp-del BR IP\n  \
tnl-route-add IP/LEN BR [GW] | tnl-route-del IP/LEN | tnl-route-show | pmd-stats [--clear] | port-stats | cache-flush\n  \
set-controller BR TARGET... | del-controller BR | get-controller BR | set-fail-mode BR standalone|secure | get-fail-mode BR\n\n\
Example:\n  rvs daemon --db /var/lib/rvs/conf.json &\n  rvs add-br br-int\n  rvs add-port br-int vm1 tag=1\n  rvs dump-flows br-int"
)]
struct Cli {
    /// Directory of the daemon's control socket (default: $RVS_RUN_DIR, /run/rvs as
    /// root, else $XDG_RUNTIME_DIR/rvs).
    #[arg(long, global = true)]
    run_dir: Option<PathBuf>,
    /// Output format of read commands: text or json.
    #[arg(long, global = true, default_value = "text")]
    format: String,
    /// add-br / add-port: no error if it already exists (ovs-vsctl's flag).
    #[arg(long, global = true)]
    may_exist: bool,
    /// del-br / del-port: no error if it does not exist (ovs-vsctl's flag).
    #[arg(long, global = true)]
    if_exists: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the switch daemon: load the configuration, run the datapath, serve
    /// the control socket.
    Daemon {
        /// Configuration file (created on the first change).
        #[arg(long, default_value = "/var/lib/rvs/conf.json")]
        db: PathBuf,
        /// Poll-mode threads.
        #[arg(long, default_value_t = 1)]
        pmd_threads: usize,
        /// busy or adaptive.
        #[arg(long, default_value = "adaptive")]
        poll: String,
        /// If the configuration is unusable, move it aside and start empty.
        #[arg(long)]
        start_empty: bool,
        /// Serve Prometheus metrics on ADDR:PORT (/metrics), or `off`.
        #[arg(long, default_value = "127.0.0.1:9477")]
        metrics: String,
        /// Write our PID here.
        #[arg(long)]
        pidfile: Option<PathBuf>,
        /// Go to the background once the control socket answers (with --pidfile).
        #[arg(long, requires = "pidfile")]
        detach: bool,
        /// Log filter: error, warn, info, debug, trace (or any tracing filter).
        #[arg(long, default_value = "info")]
        log_level: String,
        /// Put a flow into the exact-match cache with probability 1/N on a
        /// megaflow hit (OVS's other_config:emc-insert-inv-prob; 1 = always,
        /// 0 = never).
        #[arg(long, default_value_t = rvs_dataplane::pmd::DEFAULT_EMC_INSERT_INV_PROB)]
        emc_insert_inv_prob: u32,
        /// Remove cached datapath flows unused this long, in ms (OVS's
        /// other_config:max-idle; 0 = never).
        #[arg(long, default_value_t = rvs_dataplane::pmd::DEFAULT_MAX_IDLE_MS)]
        max_idle: u64,
        /// Share of a PMD thread's time (%) the upcalls of one input port may
        /// take; a port past it (a flood of new flows or MACs) has its misses
        /// dropped as upcall_limit, so cached flows keep their rate
        /// (0 or 100 = no limit).
        #[arg(long, default_value_t = rvs_dataplane::pmd::DEFAULT_UPCALL_BUDGET_PCT)]
        upcall_budget: u32,
        /// Which datapath runs the flows: ebpf (rvs's TC programs run the
        /// flows in the kernel; misses come up to one PMD thread; established
        /// flows keep forwarding if the daemon dies; needs root) or afxdp
        /// (AF_XDP sockets, PMD threads run the caches and actions in
        /// userspace). The kernel one is the default, as OVS's
        /// datapath_type=system is: it measured best in the lab.
        #[arg(long, default_value = "ebpf")]
        datapath: DatapathKind,
    },
    /// A command for the running daemon (see the list below).
    #[command(external_subcommand)]
    Remote(Vec<String>),
    /// Parse flows in ovs-ofctl syntax (one per line, `-` for stdin) and print
    /// them as rvs understands them; errors name the line and column.
    #[command(after_help = "Example:\n  rvs parse-flows control/fixtures/neutron-br-tun.flows")]
    ParseFlows {
        /// Flow file, or `-`.
        file: PathBuf,
    },
    /// Run a one-bridge switch (NORMAL, MAC learning) between real interfaces
    /// until SIGINT/SIGTERM: a quick way to forward between two veths, and the
    /// forwarder the I/O tests and benchmarks use.
    #[command(
        after_help = "Examples:\n  rvs forward --port system:veth-a --port system:veth-b\n  rvs forward --datapath afxdp --port afxdp:veth-a --port afxdp:veth-b --poll adaptive"
    )]
    Forward {
        /// TYPE:IFNAME[,queues=N][,csum] with TYPE one of system (a device:
        /// TC programs with the ebpf datapath, AF_XDP with afxdp), afxdp,
        /// afpacket, tap (repeatable). queues: AF_XDP sockets (rx queues) on
        /// the interface; csum: complete TCP/UDP checksums of received frames
        /// in software (afxdp; for endpoints that keep tx checksum offload on).
        #[arg(long = "port", required = true)]
        ports: Vec<String>,
        /// busy (spin) or adaptive (sleep in poll() when idle).
        #[arg(long, default_value = "adaptive")]
        poll: String,
        /// Poll-mode threads: each polls some of the ports (round-robin) and
        /// sends to all of them.
        #[arg(long, default_value_t = 1)]
        pmd_threads: usize,
        /// Pin PMD thread i to CPU pmd_cpu + i.
        #[arg(long)]
        pmd_cpu: Option<usize>,
        /// Write our PID here (for scripts that must stop us by PID).
        #[arg(long)]
        pidfile: Option<PathBuf>,
        /// ebpf or afxdp (as for `rvs daemon`).
        #[arg(long, default_value = "ebpf")]
        datapath: DatapathKind,
    },
    /// Send small UDP frames as fast as a port can (a packet generator that
    /// outruns iperf3's ~150 kpps UDP sender); count them at the receiver.
    #[command(
        after_help = "Example:\n  rvs blast --port afxdp:veth0 --dst-mac 02:00:00:00:00:02 --seconds 5"
    )]
    Blast {
        /// TYPE:IFNAME as for `forward` (afxdp or afpacket).
        #[arg(long)]
        port: String,
        /// Destination MAC.
        #[arg(long)]
        dst_mac: String,
        /// Source MAC.
        #[arg(long, default_value = "02:00:00:00:00:01")]
        src_mac: String,
        /// Source IPv4 (198.18.0.0/15 only).
        #[arg(long, default_value = "198.18.40.1")]
        src_ip: std::net::Ipv4Addr,
        /// Destination IPv4 (198.18.0.0/15 only).
        #[arg(long, default_value = "198.18.40.2")]
        dst_ip: std::net::Ipv4Addr,
        /// Frame size without FCS (60 = a 64-byte frame on the wire).
        #[arg(long, default_value_t = 60)]
        size: usize,
        /// How long to send.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Distinct UDP source ports (flows).
        #[arg(long, default_value_t = 1)]
        flows: u16,
        /// Sending threads, each with its own socket and its own flows (one
        /// thread cannot outrun a kernel path, which runs in the sender's
        /// system call: use one per CPU). afpacket ports only when over 1.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Trace a packet through a node built with the neutron layout (br-int,
    /// br-tun with its fixture rules, br-ex) and VM ports vm1 (VLAN 1) and vm2
    /// (VLAN 2), like `ovs-appctl ofproto/trace`.
    #[command(
        after_help = "Example:\n  rvs trace-neutron br-int 'in_port=vm1,dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,arp'"
    )]
    TraceNeutron {
        /// Bridge the packet enters.
        bridge: String,
        /// The packet, as a match (`in_port=vm1,dl_dst=..,ip,nw_dst=..`).
        flow: String,
    },
}

/// Offline, any port name is accepted and numbered in order of appearance.
#[derive(Default)]
struct AnyPortName(std::cell::RefCell<std::collections::BTreeMap<String, u32>>);

impl PortNames for AnyPortName {
    fn port_no(&self, name: &str) -> Option<u32> {
        let mut m = self.0.borrow_mut();
        let n = m.len() as u32 + 1;
        Some(*m.entry(name.to_string()).or_insert(n))
    }

    fn bare_names(&self) -> bool {
        false
    }
}

fn default_run_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RVS_RUN_DIR") {
        return d.into();
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return "/run/rvs".into();
    }
    std::env::var_os("XDG_RUNTIME_DIR").map_or_else(
        || std::env::temp_dir().join("rvs"),
        |d| PathBuf::from(d).join("rvs"),
    )
}

fn poll_mode(s: &str) -> Result<PollMode> {
    Ok(match s {
        "busy" => PollMode::Busy,
        "adaptive" => PollMode::ADAPTIVE,
        other => anyhow::bail!("--poll {other:?}: use busy or adaptive"),
    })
}

/// Send a command to the daemon; exit 0 on success, 1 on a refused command,
/// 2 when the daemon cannot be reached.
/// Usage and an example for each daemon command.
const REMOTE_HELP: &[(&str, &str, &str)] = &[
    ("show", "show", "Bridges, ports, types and options, like ovs-vsctl show."),
    ("version", "version", "The daemon's version and PID, like ovs-appctl version."),
    ("list-br", "list-br", "Bridge names."),
    ("list-ports", "list-ports BRIDGE", "Port names of a bridge."),
    ("add-br", "[--may-exist] add-br BRIDGE", "Create a bridge (with its LOCAL port and priority=0,actions=NORMAL)."),
    ("del-br", "[--if-exists] del-br BRIDGE", "Delete a bridge and its ports."),
    ("add-port", "[--may-exist] add-port BRIDGE PORT [type=T] [tag=N] [trunks=A,B] [ofport_request=N] [options:K=V ...] [-- set interface|port PORT KEY=VALUE ...]", "Add a port (the port number stays for the port's life, across restarts; ofport_request=N asks for N). T: afxdp, afpacket, tap, internal, patch (options:peer=P), geneve (options:remote_ip=IP [options:local_ip=IP] [options:key=VNI|flow]), memory. Device options: queues=N, csum=true, vtep_ip=IP (serve that tunnel endpoint on this port; with afxdp only its frames go to rvs) [vtep_mac=MAC]. Examples: rvs add-port br-int vm1 type=afxdp tag=1; rvs add-port br-ex eth1 type=afxdp options:vtep_ip=198.18.0.11; rvs add-port br-int patch-tun -- set interface patch-tun type=patch options:peer=patch-int"),
    ("del-port", "[--if-exists] del-port [BRIDGE] PORT", "Remove a port."),
    ("add-flow", "add-flow BRIDGE FLOW", "Add a rule in ovs-ofctl syntax. Example: rvs add-flow br-int 'table=0,priority=10,in_port=vm1,actions=NORMAL'"),
    ("add-flows", "add-flows BRIDGE FILE|-", "Add rules from a file (one per line), all or nothing."),
    ("replace-flows", "replace-flows BRIDGE FILE|-", "Replace all rules of a bridge, atomically."),
    ("del-flows", "del-flows BRIDGE [table=N,MATCH]", "Delete the rules a match covers (all without one)."),
    ("dump-flows", "dump-flows BRIDGE [--table N] [--names|--no-names] [--sort[=FIELD]|--rsort[=FIELD]]...", "Rules with n_packets, n_bytes, duration, like ovs-ofctl dump-flows; --names prints ports by name (in_port=vm1, output:patch-tun), the default on a terminal; --sort/--rsort order across tables by priority (the default) or a match field (rules without it last), ascending/descending, several keys in turn."),
    ("add-tlv-map", "add-tlv-map BRIDGE '{class=0x0102,type=0x80,len=4}->tun_metadata0'", "Map a Geneve option to tun_metadataN."),
    ("set-controller", "set-controller BRIDGE TARGET...", "Connect the bridge to OpenFlow 1.3/1.0 controllers, as ovs-vsctl set-controller (replaces the list; saved): tcp:IP[:PORT] dials a controller and reconnects with backoff; ptcp:[PORT][:IP] listens (127.0.0.1 unless IP is given; port 6653 by default) for controllers and ovs-ofctl. Rules a controller adds share the tables with the CLI's and dump-flows shows both; they are not saved (gone after a restart, as in OVS). As in OVS, the first tcp: controller (and removing the last) flushes the bridge's rules and groups. Example: rvs set-controller br-int ptcp:6653, then ovs-ofctl -O OpenFlow13 dump-flows tcp:127.0.0.1:6653"),
    ("del-controller", "del-controller BRIDGE", "Remove every controller target of the bridge (their connections close; the rules stay)."),
    ("get-controller", "get-controller BRIDGE", "The bridge's controller targets."),
    ("set-fail-mode", "set-fail-mode BRIDGE standalone|secure", "What a bridge with tcp: controllers does while none is connected, as in OVS: standalone (the default) forwards as a learning switch (NORMAL) until one connects; secure keeps using the flow tables. Saved. As in OVS, a change on a bridge without tcp: controllers flushes its rules and groups (standalone then gets priority=0,actions=NORMAL back)."),
    ("del-fail-mode", "del-fail-mode BRIDGE", "Back to the default fail mode (standalone)."),
    ("get-fail-mode", "get-fail-mode BRIDGE", "The bridge's fail mode."),
    ("trace", "trace BRIDGE FLOW [--generate] [--ct-next FLAGS]...", "Walk a packet through the tables, like ovs-appctl ofproto/trace: from any port (also a patch or Geneve port), nothing learned unless --generate (then NORMAL learns and learn() installs, as ofproto/trace -generate); each ct(table=N) is followed into its next pass with the ct_state of the next --ct-next (e.g. trk,est; default trk,new); --format json for a JSON object. Example: rvs trace br-int 'in_port=vm1,dl_dst=ff:ff:ff:ff:ff:ff,arp'"),
    ("dpctl-dump-flows", "dpctl-dump-flows", "Cached datapath flows (megaflows) per PMD, with packets and age."),
    ("dpctl", "dpctl dump-flows | dpctl show", "dump-flows: the cached datapath flows (megaflows) per PMD thread, and the kernel's with the ebpf datapath, with packets and age. show: the datapath, its lookups (hit, missed, lost), flows and ports, as ovs-dpctl show."),
    ("dpctl-show", "dpctl-show", "The datapath, its lookups (hit, missed, lost), flows and ports, as ovs-dpctl show (also spelled dpctl/show)."),
    ("set-mac-aging", "set-mac-aging BRIDGE SECONDS", "How long NORMAL remembers a MAC (default 300 s); saved with the configuration."),
    ("fdb-show", "fdb-show BRIDGE", "NORMAL's MAC table."),
    ("dump-groups", "dump-groups BRIDGE", "The bridge's OpenFlow groups, as ovs-ofctl dump-groups prints them (groups are a controller's: made over OpenFlow, e.g. ovs-ofctl -O OpenFlow13 add-group, and not saved, as in OVS)."),
    ("tnl-neigh", "tnl-neigh", "Tunnel next hops of the VTEPs: resolved by ARP, or static (tnl-arp-set). Also spelled tnl/neigh/show."),
    ("tnl-arp-set", "tnl-arp-set BRIDGE IP MAC", "Fix the next-hop MAC of tunnel endpoint IP for the VTEPs on BRIDGE's ports, as ovs-appctl tnl/arp/set (also spelled so): never aged or changed by ARP, saved with the configuration."),
    ("tnl-arp-del", "tnl-arp-del BRIDGE IP", "Forget a tnl-arp-set entry (ARP resolves the address again)."),
    ("tnl-route-add", "tnl-route-add IP/LEN BRIDGE [GW]", "Reach tunnel endpoints in IP/LEN through the VTEP on BRIDGE's ports, via gateway GW when given (its MAC is what ARP asks for), as ovs-appctl ovs/route/add (also spelled so); the longest prefix wins; saved with the configuration."),
    ("tnl-route-del", "tnl-route-del IP/LEN", "Remove a tnl-route-add route (also spelled ovs/route/del)."),
    ("tnl-route-show", "tnl-route-show", "The tunnel routes: static ones (User) and each VTEP's own link (Cached), as ovs-appctl ovs/route/show (also spelled so)."),
    ("pmd-stats", "pmd-stats [--clear]", "Per-PMD counters: cache hits by level, upcalls, drops by reason, busy/idle."),
    ("port-stats", "port-stats", "Per-port rx/tx packets, bytes, drops, errors."),
    ("cache-flush", "cache-flush", "Drop every cached flow."),
    ("dump-conntrack", "dump-conntrack [zone=N]", "The connection tracker's connections, one per line as ovs-appctl dpctl/dump-conntrack (also spelled so): tcp,orig=(src=..,dst=..,sport=..,dport=..),reply=(..),zone=N,mark=M,protoinfo=(state=ESTABLISHED)."),
    ("flush-conntrack", "flush-conntrack [zone=N]", "Forget every connection (of zone N only, if given), as dpctl/flush-conntrack: their next packets are new again."),
    ("ct-stats-show", "ct-stats-show", "Connections by protocol, TCP state and zone, and the tracker's counters (inserted, expired, invalid, refused because full), as dpctl/ct-stats-show."),
    ("ct-set-maxconns", "ct-set-maxconns N", "Most connections in all zones (default 3000000, OVS's); a commit beyond it is refused and counted (drop reason ct_refused). Not saved, as in OVS."),
    ("ct-get-maxconns", "ct-get-maxconns", "The table's size limit."),
    ("ct-set-limits", "ct-set-limits [default=N] [zone=Z,limit=L]...", "Most connections per zone (0: none), as dpctl/ct-set-limits; all or nothing. Not saved, as in OVS."),
    ("ct-get-limits", "ct-get-limits", "The per-zone limits and each zone's count."),
];

fn remote(run_dir: &std::path::Path, format: &str, mut words: Vec<String>) -> ExitCode {
    let cmd = words.remove(0);
    if words.iter().any(|w| w == "--help" || w == "-h") {
        return match REMOTE_HELP.iter().find(|(c, _, _)| *c == cmd) {
            Some((_, usage, about)) => {
                println!("{about}\n\nUsage: rvs [--run-dir DIR] [--format text|json] {usage}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("rvs: unknown command {cmd:?} (rvs --help lists them)");
                ExitCode::from(1)
            }
        };
    }
    const ALIASES: &[&str] = &[
        "dpctl/dump-flows",
        "dpctl/show",
        "dpctl/dump-conntrack",
        "dpctl/flush-conntrack",
        "dpctl/ct-stats-show",
        "dpctl/ct-set-maxconns",
        "dpctl/ct-get-maxconns",
        "dpctl/ct-set-limits",
        "dpctl/ct-get-limits",
        "tnl/arp/set",
        "tnl/neigh/set",
        "tnl/neigh/show",
        "tnl/arp/show",
        "ovs/route/add",
        "ovs/route/del",
        "ovs/route/show",
        "tnl/route/add",
        "tnl/route/del",
        "tnl/route/show",
    ];
    if !REMOTE_HELP.iter().any(|(c, _, _)| *c == cmd) && !ALIASES.contains(&cmd.as_str()) {
        eprintln!("rvs: unknown command {cmd:?} (rvs --help lists them)");
        return ExitCode::from(1);
    }
    // As ovs-ofctl: port names by default when a person reads the output.
    if cmd == "dump-flows"
        && !words.iter().any(|w| w == "--names" || w == "--no-names")
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
    {
        words.push("--names".into());
    }
    // Flow files are read here, so the daemon gets their text.
    if matches!(cmd.as_str(), "add-flows" | "replace-flows") && words.len() == 2 {
        let text = if words[1] == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map(|_| s)
        } else {
            std::fs::read_to_string(&words[1])
        };
        match text {
            Ok(t) => words[1] = t,
            Err(e) => {
                eprintln!("rvs: {}: {e}", words[1]);
                return ExitCode::from(1);
            }
        }
    }
    let req = Request {
        cmd,
        args: words,
        format: (format == "json").then(|| "json".to_string()),
    };
    match request(run_dir, &req) {
        Ok(r) if r.ok => {
            print!("{}", r.output);
            if !r.output.is_empty() && !r.output.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        Ok(r) => {
            eprintln!("rvs: {}", r.error);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!(
                "rvs: cannot reach the daemon at {}: {e}",
                socket_path(run_dir).display()
            );
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let run_dir = cli.run_dir.clone().unwrap_or_else(default_run_dir);
    let level = match &cli.cmd {
        Cmd::Daemon { log_level, .. } => log_level.clone(),
        _ => "warn".to_string(),
    };
    init_logs(&level);
    if let Cmd::Remote(words) = cli.cmd {
        // `rvs dump-flows br-int | head` should end quietly, as ovs-ofctl does,
        // not panic on the closed pipe (Rust ignores SIGPIPE by default). Only
        // the client does this: the daemon must survive clients that go away.
        // Nothing else in this process depends on SIGPIPE being ignored.
        // SAFETY: sets a signal's disposition to the default; no handler runs.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        let mut words = words;
        for (set, flag) in [(cli.may_exist, "--may-exist"), (cli.if_exists, "--if-exists")] {
            if set {
                words.push(flag.to_string());
            }
        }
        return remote(&run_dir, &cli.format, words);
    }
    match run(cli, run_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvs: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli, run_dir: PathBuf) -> Result<()> {
    match cli.cmd {
        Cmd::Remote(_) => unreachable!("handled in main"),
        Cmd::Daemon {
            db,
            pmd_threads,
            poll,
            start_empty,
            metrics,
            pidfile,
            detach,
            emc_insert_inv_prob,
            max_idle,
            upcall_budget,
            datapath,
            ..
        } => {
            if detach {
                return detach_daemon(&run_dir, pidfile.as_deref());
            }
            let metrics = match metrics.as_str() {
                "off" => None,
                a => Some(
                    a.parse()
                        .with_context(|| format!("--metrics {a:?}: use ADDR:PORT or off"))?,
                ),
            };
            let opts = DaemonOptions {
                db,
                run_dir,
                pmd_threads,
                poll: poll_mode(&poll)?,
                start_empty,
                metrics,
                pmd: PmdConfig {
                    emc_insert_inv_prob,
                    max_idle_ms: max_idle,
                    upcall_budget_pct: upcall_budget,
                    ..PmdConfig::default()
                },
                datapath,
            };
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(sig, stop.clone())?;
            }
            if let Some(p) = &pidfile {
                std::fs::write(p, format!("{}\n", std::process::id()))
                    .with_context(|| format!("writing {}", p.display()))?;
            }
            let r = rvs_control::daemon::server::run(&opts, stop);
            if let Some(p) = &pidfile {
                let _ = std::fs::remove_file(p);
            }
            r.map_err(|e| anyhow::anyhow!(e))
        }
        Cmd::ParseFlows { file } => {
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).context("reading stdin")?;
                s
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let names = AnyPortName::default();
            let rules = parse_flows(&text, &names).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let mut ports: Vec<(u32, String)> = names.0.take().into_iter().map(|(n, p)| (p, n)).collect();
            ports.sort();
            for (no, name) in ports {
                println!("# port {no}: {name}");
            }
            for r in rules {
                println!("{r}");
            }
            Ok(())
        }
        Cmd::Forward {
            ports,
            poll,
            pmd_threads,
            pmd_cpu,
            pidfile,
            datapath,
        } => forward(&ports, &poll, pmd_threads, pmd_cpu, pidfile, datapath),
        Cmd::Blast {
            port,
            dst_mac,
            src_mac,
            src_ip,
            dst_ip,
            size,
            seconds,
            flows,
            threads,
        } => blast(
            &port, &dst_mac, &src_mac, src_ip, dst_ip, size, seconds, flows, threads,
        ),
        Cmd::TraceNeutron { bridge, flow } => {
            let mut sw = Switch::new();
            let cfg = NodeConfig {
                underlay_port: "eth-ul".into(),
                underlay_kind: "memory".into(),
                local_ip: [198, 18, 0, 1].into(),
                local_mac: [2, 0xee, 0, 0, 0, 1],
                remotes: vec![
                    Remote {
                        port: "gnv1".into(),
                        ip: [198, 18, 0, 2].into(),
                        mac: Some([2, 0xee, 0, 0, 0, 2]),
                    },
                    Remote {
                        port: "gnv2".into(),
                        ip: [198, 18, 0, 3].into(),
                        mac: Some([2, 0xee, 0, 0, 0, 3]),
                    },
                ],
                nets: vec![TenantNet { vni: 5001, vlan: 1 }, TenantNet { vni: 5002, vlan: 2 }],
            };
            build_node(&mut sw, &cfg)?;
            sw.add_port(
                "br-int",
                "vm1",
                PortType::System {
                    kind: "memory".into(),
                },
                Some(1),
            )?;
            sw.add_port(
                "br-int",
                "vm2",
                PortType::System {
                    kind: "memory".into(),
                },
                Some(2),
            )?;
            println!("{}", trace_flow(&mut sw, &bridge, &flow)?);
            Ok(())
        }
    }
}

/// Open the device of a `--port TYPE:IFNAME[,queues=N][,csum]` spec.
fn open_port(spec: &str, progs: &mut Programs) -> Result<(String, Box<dyn Port>)> {
    let (ty, ifname, options) = parse_port_spec(spec)?;
    let port = open_device(&ty, &ifname, &options, progs, false).with_context(|| format!("--port {spec}"))?;
    Ok((ifname, port))
}

fn forward(
    specs: &[String],
    poll: &str,
    threads: usize,
    cpu: Option<usize>,
    pidfile: Option<PathBuf>,
    kind: DatapathKind,
) -> Result<()> {
    anyhow::ensure!((1..=64).contains(&threads), "--pmd-threads must be 1..=64");
    let mut sw = Switch::new();
    sw.add_bridge("br0")?;
    // A forwarder between interfaces has no host side: its bridge's LOCAL
    // port gets no device (no tap to create, or to leave behind).
    if let Some(local) = sw
        .bridges
        .get_mut("br0")
        .and_then(|b| b.ports.get_mut(&rvs_control::ofp::OFPP_LOCAL))
    {
        local.ty = PortType::System {
            kind: "memory".into(),
        };
    }
    for spec in specs {
        let (ty, ifname, options) = parse_port_spec(spec)?;
        sw.add_port("br0", &ifname, PortType::System { kind: ty }, None)?;
        if !options.is_empty() {
            sw.set_port_options(&ifname, options)?;
        }
    }
    let sw = std::sync::Arc::new(std::sync::Mutex::new(sw));
    // The daemon's datapath manager, over a one-bridge switch.
    let opts = DatapathOptions {
        kind,
        threads,
        mode: poll_mode(poll)?,
        pmd: PmdConfig::default(),
        cpu,
        pin_dir: None,
    };
    let mut dp = Datapath::start(&sw, &opts).context("starting the datapath")?;
    let warnings = dp.sync(&sw);
    if !warnings.is_empty() {
        dp.stop(true);
        anyhow::bail!("{}", warnings.join("; "));
    }
    // (handlers first: whoever reads the pidfile may signal at once)
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    if let Some(p) = &pidfile {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    eprintln!(
        "rvs: forwarding between {} ports ({} datapath, {poll} polling); SIGINT or SIGTERM stops",
        specs.len(),
        kind.name()
    );
    let mut last_tick = std::time::Instant::now();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if last_tick.elapsed().as_secs() >= 1 {
            dp.credit(&sw);
            rvs_control::upcall::lock(&sw).expire();
            dp.tick();
            dp.settle();
            last_tick = std::time::Instant::now();
        }
    }
    for s in dp.snapshots() {
        let drops: Vec<String> = s.stats.drops.nonzero().map(|(r, n)| format!("{r}={n}")).collect();
        let who = if s.id == rvs_dataplane::datapath::KERNEL_SNAPSHOT {
            "kernel".to_string()
        } else {
            format!("pmd{}", s.id)
        };
        eprintln!(
            "rvs: {who}: rx {} packets, emc hits {}, megaflow hits {}, upcalls {}, drops {} [{}]",
            s.stats.rx_packets,
            s.stats.emc_hits,
            s.stats.megaflow_hits,
            s.stats.upcalls,
            s.stats.drops.total(),
            drops.join(" ")
        );
        for (no, name, p) in &s.port_stats() {
            eprintln!(
                "rvs: port {no} {name}: rx {} tx {} rx_dropped {} tx_errors {}",
                p.rx_packets, p.tx_packets, p.rx_dropped, p.tx_errors
            );
        }
    }
    dp.credit(&sw);
    let g = rvs_control::upcall::lock(&sw);
    for e in g.bridge("br0").map(|b| b.rules()).unwrap_or_default() {
        eprintln!(
            "rvs: n_packets={}, n_bytes={}, {}",
            e.n_packets, e.n_bytes, e.rule
        );
    }
    drop(g);
    dp.stop(true);
    if let Some(p) = &pidfile {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// 198.18.0.0/15: the only addresses rvs's tools send to.
fn in_lab_block(ip: std::net::Ipv4Addr) -> bool {
    u32::from(ip) >> 17 == u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0)) >> 17
}

#[allow(clippy::too_many_arguments)]
fn blast(
    spec: &str,
    dst_mac: &str,
    src_mac: &str,
    src_ip: std::net::Ipv4Addr,
    dst_ip: std::net::Ipv4Addr,
    size: usize,
    seconds: f64,
    flows: u16,
    threads: usize,
) -> Result<()> {
    anyhow::ensure!(
        in_lab_block(src_ip) && in_lab_block(dst_ip),
        "blast only sends inside 198.18.0.0/15"
    );
    anyhow::ensure!((1..=16).contains(&threads), "--threads must be 1..=16");
    anyhow::ensure!(
        threads == 1 || spec.starts_with("afpacket:"),
        "--threads over 1 needs an afpacket port (an AF_XDP queue takes one socket)"
    );
    anyhow::ensure!((60..=1514).contains(&size), "--size must be 60..=1514");
    let mac = |s: &str| -> Result<[u8; 6]> {
        let v = rvs_control::ofp::OfField::DlSrc
            .parse_value(s)
            .map_err(|e| anyhow::anyhow!(e))?;
        let b = (v as u64).to_be_bytes();
        Ok([b[2], b[3], b[4], b[5], b[6], b[7]])
    };
    let (src, dst) = (mac(src_mac)?, mac(dst_mac)?);
    let flows = flows.max(1);
    let mut progs = Programs::new();
    let mut senders = Vec::new();
    for t in 0..threads as u16 {
        // Thread t's flows: source ports 10000 + t*flows ...
        let frames: Vec<Vec<u8>> = (0..flows)
            .map(|i| {
                rvs_dataplane::testing::udp4(
                    src,
                    dst,
                    src_ip.octets(),
                    dst_ip.octets(),
                    10_000u16.wrapping_add(t.wrapping_mul(flows)).wrapping_add(i),
                    9,
                    size - 42,
                )
            })
            .collect();
        senders.push((open_port(spec, &mut progs)?.1, frames));
    }
    let start = std::time::Instant::now();
    let sent: u64 = std::thread::scope(|sc| {
        let handles: Vec<_> = senders
            .into_iter()
            .map(|(mut port, frames)| {
                sc.spawn(move || {
                    let mut batch = rvs_dataplane::packet::Batch::new(64);
                    let (mut sent, mut next) = (0u64, 0usize);
                    while start.elapsed().as_secs_f64() < seconds {
                        while !batch.is_full() {
                            batch.push_copy(&frames[next], Default::default());
                            next = (next + 1) % frames.len();
                        }
                        sent += port.tx(&mut batch) as u64;
                    }
                    sent
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let dt = start.elapsed().as_secs_f64();
    println!(
        "sent {sent} frames of {size} bytes in {dt:.2} s: {:.0} pps",
        sent as f64 / dt
    );
    Ok(())
}

/// Logs go to stderr; `RVS_LOG` (a tracing filter) overrides the level.
fn init_logs(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RVS_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// `--detach`: run the same command without it as a background process, wait
/// until its control socket answers, record its PID, and return.
fn detach_daemon(run_dir: &std::path::Path, pidfile: Option<&std::path::Path>) -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--detach").collect();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting the daemon")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Our child, not a killed predecessor whose socket still accepts.
    while rvs_control::daemon::server::serving_pid(run_dir) != Some(child.id()) {
        if let Some(st) = child.try_wait()? {
            anyhow::bail!("the daemon exited ({st}) before its socket answered");
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the daemon's socket did not answer in 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if let Some(p) = pidfile {
        std::fs::write(p, format!("{}\n", child.id())).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
