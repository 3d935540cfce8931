//! [`XskRedirect`]: the loaded and attached XDP program of one interface.

use crate::attach::{attached_prog_id, link_xdp, XdpMode};
use crate::error::BpfError;
use crate::{ifindex, OBJECT};
use libbpf_rs::query::{LinkInfoIter, LinkTypeInfo, ProgInfoIter};
use libbpf_rs::{MapCore, MapFlags, MapHandle, Object, ObjectBuilder, Xdp, XdpFlags};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Name of the XDP program (as `bpftool prog` and `ip link` show it).
pub const PROGRAM_NAME: &str = "xsk_redirect";

/// Frames the program handled, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpCounters {
    /// Frames redirected to an AF_XDP socket.
    pub redirected: u64,
    /// Frames passed to the kernel stack (no socket bound to their queue).
    pub passed: u64,
}

/// The XDP program attached to one interface. Dropping it detaches the program.
pub struct XskRedirect {
    // Field order is drop order: the link goes first, then the object.
    link: OwnedFd,
    xsks: MapHandle,
    stats: MapHandle,
    steer: MapHandle,
    _object: Object,
    ifname: String,
    ifindex: u32,
    mode: XdpMode,
}

impl std::fmt::Debug for XskRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskRedirect")
            .field("ifname", &self.ifname)
            .field("ifindex", &self.ifindex)
            .field("mode", &self.mode)
            .field("link_fd", &self.link.as_raw_fd())
            .finish()
    }
}

impl XskRedirect {
    /// Load the program and attach it to `ifname`: in `mode` when given, else
    /// native with a fall-back to generic. A copy of this program that a crashed
    /// earlier run left attached with a netlink attach is removed first.
    pub fn attach(ifname: &str, mode: Option<XdpMode>) -> Result<XskRedirect, BpfError> {
        let ifindex = ifindex(ifname)?;
        let object = ObjectBuilder::default()
            .open_memory(OBJECT)
            .and_then(|o| o.load())
            .map_err(BpfError::Load)?;
        let prog = object.progs().find(|p| p.name() == PROGRAM_NAME).ok_or_else(|| {
            BpfError::Load(libbpf_rs::Error::from(std::io::Error::other(
                "program missing from object",
            )))
        })?;
        remove_stale(prog.as_fd(), ifname, ifindex)?;

        let modes: &[XdpMode] = match mode {
            Some(m) => &[m][..],
            None => &[XdpMode::Native, XdpMode::Generic],
        };
        let mut errors = Vec::new();
        let mut attached = None;
        for &m in modes {
            match link_xdp(prog.as_fd(), ifindex, m) {
                Ok(fd) => {
                    attached = Some((fd, m));
                    break;
                }
                Err(e) => {
                    tracing::warn!(ifname, mode = %m, error = %e, "XDP attach failed");
                    errors.push(format!("{m}: {e}"));
                }
            }
        }
        let Some((link, mode)) = attached else {
            return Err(BpfError::Attach {
                ifname: ifname.into(),
                reason: errors.join("; "),
            });
        };
        let map = |name: &'static str| {
            let m = object
                .maps()
                .find(|m| m.name() == name)
                .ok_or_else(|| BpfError::Map {
                    map: name,
                    source: libbpf_rs::Error::from(std::io::Error::other("map missing from object")),
                })?;
            MapHandle::try_from(&m).map_err(|source| BpfError::Map { map: name, source })
        };
        let xsks = map("xsks")?;
        let stats = map("stats")?;
        let steer = map("steer")?;
        tracing::info!(ifname, %mode, "XDP program attached");
        Ok(XskRedirect {
            link,
            xsks,
            stats,
            steer,
            _object: object,
            ifname: ifname.into(),
            ifindex,
            mode,
        })
    }

    /// True when another rvs holds `ifname`'s XDP hook through a live
    /// bpf_link: a second daemon, or a predecessor that was killed and whose
    /// exit is still closing its sockets and links (each waits for an RCU
    /// grace period). Its program must go before ours can attach.
    pub fn held_by_rvs(ifname: &str) -> Result<bool, BpfError> {
        let ifindex = ifindex(ifname)?;
        let Ok(id) = attached_prog_id(ifindex) else {
            return Ok(false);
        };
        if id == 0 {
            return Ok(false);
        }
        // Program ids are global, so the link that runs it is the one on our
        // interface (link info holds an ifindex, which repeats across namespaces).
        let by_link =
            LinkInfoIter::default().any(|l| l.prog_id == id && matches!(l.info, LinkTypeInfo::Xdp(_)));
        let ours = ProgInfoIter::default().any(|p| p.id == id && p.name.to_string_lossy() == PROGRAM_NAME);
        Ok(by_link && ours)
    }

    /// The interface.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Its index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The mode the program runs in.
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// Steer rx queue `queue` to the AF_XDP socket `xsk`.
    pub fn register_socket(&self, queue: u32, xsk: BorrowedFd<'_>) -> Result<(), BpfError> {
        let fd = xsk.as_raw_fd() as u32;
        self.xsks
            .update(&queue.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| BpfError::Map { map: "xsks", source })
    }

    /// Stop steering `queue`: its frames go to the kernel again.
    pub fn unregister_socket(&self, queue: u32) -> Result<(), BpfError> {
        self.xsks
            .delete(&queue.to_ne_bytes())
            .map_err(|source| BpfError::Map { map: "xsks", source })
    }

    /// Steer only frames for `addr` (ARP for it, IPv4 to it) to the sockets and
    /// pass all others to the kernel; `None` steers every frame (the default).
    pub fn steer_only(&self, addr: Option<std::net::Ipv4Addr>) -> Result<(), BpfError> {
        // The program compares with the address as it is on the wire.
        let value = addr.map_or([0; 4], |a| a.octets());
        self.steer
            .update(&0u32.to_ne_bytes(), &value, MapFlags::ANY)
            .map_err(|source| BpfError::Map { map: "steer", source })
    }

    /// Counters summed over all CPUs.
    pub fn counters(&self) -> Result<XdpCounters, BpfError> {
        let read = |key: u32| -> Result<u64, BpfError> {
            let per_cpu = self
                .stats
                .lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY)
                .map_err(|source| BpfError::Map { map: "stats", source })?
                .unwrap_or_default();
            Ok(per_cpu
                .iter()
                .map(|v| {
                    v.get(..8)
                        .map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
                })
                .sum())
        };
        Ok(XdpCounters {
            redirected: read(0)?,
            passed: read(1)?,
        })
    }
}

/// Remove our program from `ifindex` if an earlier run attached it with netlink
/// and died. A bpf_link held by a live process cannot be removed this way: that
/// is reported as in use.
fn remove_stale(prog: BorrowedFd<'_>, ifname: &str, ifindex: u32) -> Result<(), BpfError> {
    let xdp = Xdp::new(prog);
    let Ok(id) = xdp.query_id(ifindex as i32, XdpFlags::NONE) else {
        return Ok(());
    };
    if id == 0 {
        return Ok(());
    }
    let name = ProgInfoIter::default()
        .find(|p| p.id == id)
        .map(|p| p.name.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name == PROGRAM_NAME && xdp.detach(ifindex as i32, XdpFlags::NONE).is_ok() {
        tracing::warn!(ifname, id, "removed an XDP program left behind by an earlier run");
        return Ok(());
    }
    Err(BpfError::InUse {
        ifname: ifname.into(),
        prog: name,
    })
}
