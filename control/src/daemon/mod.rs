//! The rvs daemon's parts: the control-socket protocol, the commands, and
//! the datapath manager that keeps the datapath in step with the switch.

pub mod commands;
pub mod conntrack_cmds;
pub mod datapath;
pub mod metrics;
pub mod openflow;
pub mod port_args;
pub mod proto;
pub mod server;
