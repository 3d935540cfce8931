//! `rvs`: the switch's command line. Today it checks flow files offline
//! (`parse-flows`, like `ovs-ofctl parse-flows`) and traces a packet through the
//! neutron layout (`trace-neutron`); the daemon and its commands come next.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rvs_control::bridge::PortType;
use rvs_control::neutron::{build_node, NodeConfig, Remote, TenantNet};
use rvs_control::ofp::{parse_flows, PortNames};
use rvs_control::switch::Switch;
use rvs_control::upcall::trace_flow;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// rvs, a userspace virtual switch.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Parse flows in ovs-ofctl syntax (one per line, `-` for stdin) and print
    /// them as rvs understands them; errors name the line and column.
    #[command(after_help = "Example:\n  rvs parse-flows control/fixtures/neutron-br-tun.flows")]
    ParseFlows {
        /// Flow file, or `-`.
        file: PathBuf,
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
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvs: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
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
                        mac: [2, 0xee, 0, 0, 0, 2],
                    },
                    Remote {
                        port: "gnv2".into(),
                        ip: [198, 18, 0, 3].into(),
                        mac: [2, 0xee, 0, 0, 0, 3],
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
