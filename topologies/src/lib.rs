//! rvs lab topologies: TOML descriptions of namespaces, underlay and tenant
//! networks, checked before anything is built, and the runner behind the
//! `rvs-lab` binary that builds them (rvs, Open vSwitch or Linux bridges),
//! checks them, and compares them.

pub mod br_int;
pub mod charts;
pub mod checks;
pub mod compare;
pub mod conn_rate;
pub mod controller;
pub mod fault;
pub mod lab;
pub mod linux_l3;
pub mod linux_node;
pub mod ovs_node;
pub mod probe;
pub mod report;
pub mod rvs_node;
pub mod shell;
pub mod state;
pub mod stats;
pub mod topology;

pub use topology::{Topology, TopologyError};
