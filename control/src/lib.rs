//! rvs-control: the switch's brain.
//!
//! It holds OpenFlow-like rule tables ([`ofp`]), parses and prints them in
//! ovs-ofctl syntax, classifies packets with a tuple-space-search classifier that
//! reports the bits it consulted, and translates packets into datapath actions
//! plus a megaflow mask for the dataplane's caches.

pub mod bridge;
pub mod classifier;
pub mod config;
pub mod daemon;
pub mod flow_mod;
pub mod group;
pub mod neutron;
pub mod normal;
pub mod ofp;
pub mod openflow;
pub mod packet_in;
pub mod recirc;
pub mod router;
pub mod security_group;
pub mod switch;
pub mod upcall;
pub mod xlate;
