//! rvs-dataplane: the packet engine of rvs.
//!
//! It knows packets, ports, flow keys, caches and datapath actions, and nothing of
//! OpenFlow: a cache miss is handed to an [`pmd::Upcall`] that the control crate
//! implements. The packet path is
//! `port.rx -> FlowKey::extract -> Emc -> MegaflowCache -> upcall -> actions -> port.tx`,
//! batched, with no allocation, lock or syscall per packet on a cache hit.

pub mod action;
pub mod cache;
pub mod conntrack;
pub mod datapath;
pub mod drop;
pub mod flow;
pub mod packet;
pub mod pmd;
pub mod port;
pub mod testing;
pub mod tunnel;
pub mod vtep;

pub use drop::DropReason;
pub use flow::{Field, FlowKey, FlowMask};
pub use packet::{Batch, PacketBuf, PacketMeta};
pub use port::{Port, PortNo, PortStats};
