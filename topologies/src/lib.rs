//! rvs lab topologies: TOML descriptions of namespaces, underlay and tenant
//! networks, checked before anything is built. The `rvs-lab` binary drives them.

pub mod topology;

pub use topology::{Topology, TopologyError};
