//! Attaching an XDP program through a bpf_link in a chosen mode.

use libbpf_rs::libbpf_sys;
use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// How the program runs on the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// In the driver, before an skb is built (fast; veth supports it).
    Native,
    /// After the skb is built (works on any interface, slower).
    Generic,
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        })
    }
}

impl XdpMode {
    fn flags(self) -> u32 {
        match self {
            XdpMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
        }
    }
}

/// Create an XDP bpf_link for `prog` on `ifindex` in `mode`. The link lives as
/// long as the returned fd (and so at most as long as the process).
pub(crate) fn link_xdp(prog: BorrowedFd<'_>, ifindex: u32, mode: XdpMode) -> Result<OwnedFd, std::io::Error> {
    let opts = libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
        flags: mode.flags(),
        ..Default::default()
    };
    let (pfd, ifx) = (prog.as_raw_fd(), ifindex as i32);
    // SAFETY: `pfd` is a live program fd during the call; `opts` is initialised, `sz` its own size.
    let fd = unsafe { libbpf_sys::bpf_link_create(pfd, ifx, libbpf_sys::BPF_XDP, &opts) };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: bpf_link_create returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The id of the XDP program attached to `ifindex` (in any mode; 0: none).
pub(crate) fn attached_prog_id(ifindex: u32) -> Result<u32, std::io::Error> {
    let mut id = 0u32;
    // SAFETY: `id` is a live u32 the call writes; no other memory is passed.
    let r = unsafe { libbpf_sys::bpf_xdp_query_id(ifindex as i32, 0, &mut id) };
    if r < 0 {
        return Err(std::io::Error::from_raw_os_error(-r));
    }
    Ok(id)
}
