//! rvs-bpf: the BPF programs of rvs and their loaders.
//!
//! - The XDP program that steers frames to rvs's AF_XDP sockets (the afxdp
//!   datapath), below.
//! - The eBPF datapath ([`dp`]): TC programs that run rvs's megaflows in the
//!   kernel and hand misses to userspace.
//!
//! The program (`src/bpf/xsk_redirect.bpf.c`) redirects each frame to the XSKMAP
//! entry of its rx queue and passes it to the kernel when no socket is bound, so
//! the host keeps working when the daemon is gone. [`XskRedirect`] loads it with
//! libbpf-rs and attaches it through a bpf_link (native mode, falling back to
//! generic), which the kernel removes when the process exits, even after a crash.

mod attach;
pub mod dp;
mod error;
mod program;

pub use attach::XdpMode;
pub use error::BpfError;
pub use program::{XdpCounters, XskRedirect, PROGRAM_NAME};

/// The compiled XDP object, embedded at build time.
pub(crate) const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/xsk_redirect.bpf.o"));

/// Index of a network interface by name, in the caller's network namespace.
pub fn ifindex(ifname: &str) -> Result<u32, BpfError> {
    nix::net::if_::if_nametoindex(ifname).map_err(|_| BpfError::NoSuchInterface(ifname.to_string()))
}
