//! `rvs-lab`: build, test and compare lab topologies.

use anyhow::Result;
use clap::{Parser, Subcommand};
use rvs_topologies::Topology;
use std::path::PathBuf;

/// Lab runner for rvs topologies.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Parse and validate a topology file, and print what it describes.
    Check {
        /// The topology (TOML).
        topology: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Check { topology } => {
            let t = Topology::load(&topology)?;
            println!("{}: {}", t.name, t.description);
            println!("underlay {} (mtu {})", t.underlay.subnet, t.underlay.mtu);
            for n in &t.nodes {
                println!("node {} underlay {}", n.name, n.underlay_ip);
                for vm in t.vms_on(&n.name) {
                    println!("  vm {} {} on {}", vm.name, vm.ip, vm.network);
                }
            }
            for net in &t.networks {
                println!("network {} vni {} subnet {}", net.name, net.vni, net.subnet);
            }
            Ok(())
        }
    }
}
