//! The rvs daemon's parts: the control-socket protocol, device opening, and
//! the datapath manager that keeps PMD threads in step with the switch.

pub mod commands;
pub mod datapath;
pub mod devices;
pub mod metrics;
pub mod port_args;
pub mod proto;
pub mod server;
