//! AF_PACKET ports: a raw socket bound to one interface, receiving with
//! `recvmmsg` straight into the batch's buffers and sending with `sendmmsg`
//! (one syscall per batch each way). The fallback where XDP cannot attach.
//!
//! The kernel strips a received frame's outer VLAN tag into skb metadata;
//! `PACKET_AUXDATA` hands it back and rx puts the tag back into the frame, so
//! tagged traffic is forwarded as it came. A frame larger than the buffer is
//! dropped whole (`oversize`), never truncated; the kernel's own drops (socket
//! buffer full) are read with `PACKET_STATISTICS` into `rx_dropped`.

use super::sys::{cvt, ifindex, raw, set_nonblocking, socket};
use super::{Port, PortStats};
use crate::packet::{Batch, HEADROOM};
use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

const ETH_P_ALL: u16 = 0x0003;
/// Most frames taken or sent per syscall.
const MAX_BURST: usize = 64;
/// Socket receive buffer asked for: bursts of large frames must not overflow
/// the default (~200 KiB) between two polls.
const RCVBUF: libc::c_int = 4 << 20;

/// Room for one control message carrying a `tpacket_auxdata`, aligned as
/// `cmsghdr` requires.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Ctrl([u8; 64]);

/// Message headers for `recvmmsg`/`sendmmsg`, one buffer each. Built in place
/// (headers point into `iov` and `ctrl`), used for one call, never moved in between.
struct MsgVec {
    iov: [libc::iovec; MAX_BURST],
    msgs: [libc::mmsghdr; MAX_BURST],
    ctrl: [Ctrl; MAX_BURST],
}

impl MsgVec {
    fn new() -> MsgVec {
        // SAFETY: iovec and mmsghdr are plain old data; all-zero is a valid value.
        unsafe { std::mem::zeroed() }
    }

    /// Make header `i` describe the `len` bytes at `ptr`.
    fn set(&mut self, i: usize, ptr: *mut u8, len: usize) {
        self.iov[i] = libc::iovec {
            iov_base: ptr.cast(),
            iov_len: len,
        };
        self.msgs[i].msg_hdr.msg_iov = &mut self.iov[i];
        self.msgs[i].msg_hdr.msg_iovlen = 1;
    }

    /// Give header `i` its control buffer (for receiving auxdata).
    fn set_ctrl(&mut self, i: usize) {
        self.msgs[i].msg_hdr.msg_control = self.ctrl[i].0.as_mut_ptr().cast();
        self.msgs[i].msg_hdr.msg_controllen = std::mem::size_of::<Ctrl>() as _;
    }

    /// The VLAN tag (TPID, TCI) the kernel took off message `i`'s frame, if any.
    fn vlan(&self, i: usize) -> Option<(u16, u16)> {
        let hdr = &self.msgs[i].msg_hdr;
        // The kernel filled `hdr` in; its control pointer and length
        // describe `self.ctrl[i]`, which is alive and unchanged.
        // SAFETY: see above.
        let mut c = unsafe { libc::CMSG_FIRSTHDR(hdr) };
        while !c.is_null() {
            // SAFETY: CMSG_FIRSTHDR/NXTHDR return null or a header inside the buffer.
            let h = unsafe { &*c };
            let whole = h.cmsg_len as usize
                >= std::mem::size_of::<libc::cmsghdr>() + std::mem::size_of::<libc::tpacket_auxdata>();
            if h.cmsg_level == libc::SOL_PACKET && h.cmsg_type == libc::PACKET_AUXDATA && whole {
                // A whole PACKET_AUXDATA message carries a tpacket_auxdata,
                // maybe unaligned: read it unaligned.
                // SAFETY: `c` is a whole message inside this control buffer.
                let p = unsafe { libc::CMSG_DATA(c) }.cast::<libc::tpacket_auxdata>();
                // SAFETY: see above; `p` points at its data.
                let aux = unsafe { p.read_unaligned() };
                if aux.tp_status & libc::TP_STATUS_VLAN_VALID == 0 {
                    return None;
                }
                let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                    aux.tp_vlan_tpid
                } else {
                    0x8100
                };
                return Some((tpid, aux.tp_vlan_tci));
            }
            // SAFETY: as above: `c` is a header inside this message's control buffer.
            c = unsafe { libc::CMSG_NXTHDR(hdr, c) };
        }
        None
    }
}

fn setsockopt_int(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: setsockopt with a pointer to a live c_int and its size.
    cvt(unsafe {
        libc::setsockopt(
            raw(fd),
            level,
            name,
            &v as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// A raw-socket port on one interface.
pub struct AfPacketPort {
    name: String,
    fd: OwnedFd,
    stats: PortStats,
    /// Frames the kernel dropped for this socket so far (PACKET_STATISTICS
    /// resets on every read, so the reads are summed here).
    kernel_drops: Cell<u64>,
}

impl AfPacketPort {
    /// Open a non-blocking AF_PACKET socket on `ifname`. Frames this socket
    /// sends are not received back (`PACKET_IGNORE_OUTGOING`).
    pub fn open(ifname: &str) -> io::Result<AfPacketPort> {
        Self::open_with(ifname, true)
    }

    /// A socket that only sends on `ifname` (protocol 0: the kernel hands it
    /// no frames). The eBPF datapath's slow path sends through these; the
    /// kernel's programs receive.
    pub fn open_tx_only(ifname: &str) -> io::Result<AfPacketPort> {
        Self::open_with(ifname, false)
    }

    fn open_with(ifname: &str, rx: bool) -> io::Result<AfPacketPort> {
        let index = ifindex(ifname)?;
        let proto = if rx { ETH_P_ALL.to_be() } else { 0 };
        let fd = socket(libc::AF_PACKET, libc::SOCK_RAW, proto as i32)?;
        if rx {
            setsockopt_int(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1)?;
            setsockopt_int(&fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, 1)?;
            // Past the rmem_max limit needs CAP_NET_ADMIN (FORCE); without it the
            // plain option gets what the limit allows.
            if setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF).is_err() {
                setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF)?;
            }
        }
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = index as i32;
        // SAFETY: bind with a pointer to a live sockaddr_ll and its exact size.
        cvt(unsafe {
            libc::bind(
                raw(&fd),
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        set_nonblocking(raw(&fd))?;
        Ok(AfPacketPort {
            name: ifname.to_string(),
            fd,
            stats: PortStats::default(),
            kernel_drops: Cell::new(0),
        })
    }

    /// Add what the kernel dropped since the last call to `kernel_drops`.
    fn read_kernel_drops(&self) {
        // SAFETY: tpacket_stats is plain old data; all-zero is a valid value.
        let mut st: libc::tpacket_stats = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into the live `st`.
        let r = unsafe {
            libc::getsockopt(
                raw(&self.fd),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                &mut st as *mut _ as *mut libc::c_void,
                &mut len,
            )
        };
        if r == 0 {
            self.kernel_drops
                .set(self.kernel_drops.get() + st.tp_drops as u64);
        }
    }
}

impl Port for AfPacketPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx(&mut self, batch: &mut Batch) -> usize {
        let free = (batch.capacity() - batch.len()).min(MAX_BURST);
        if free == 0 {
            return 0;
        }
        // Point one header at the free area of each free slot: the kernel writes
        // the frames in place, behind the headroom.
        let mut mv = MsgVec::new();
        let slots = batch.spare_mut();
        for (i, slot) in slots.iter_mut().take(free).enumerate() {
            let area = slot.rx_area();
            mv.set(i, area.as_mut_ptr(), area.len());
            mv.set_ctrl(i);
        }
        // The headers point at `iov[..free]`, which point into the spare buffers
        // of `batch`; all stay alive and unaliased during the call.
        // SAFETY: see above; `free` <= MAX_BURST entries are initialised.
        let n = unsafe {
            libc::recvmmsg(
                raw(&self.fd),
                mv.msgs.as_mut_ptr(),
                free as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock {
                self.stats.rx_errors += 1;
            }
            return 0;
        }
        let n = n as usize;
        let mut oversize = 0;
        for (i, slot) in slots.iter_mut().enumerate().take(n) {
            let m = &mv.msgs[i];
            if m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                oversize += 1;
                slot.commit_rx(0);
                continue;
            }
            slot.commit_rx(m.msg_len as usize);
            if let Some((tpid, tci)) = mv.vlan(i) {
                // Put back the tag the kernel took off (it goes after the MACs).
                match slot.insert_gap(12, 4) {
                    Some(tag) => {
                        tag[..2].copy_from_slice(&tpid.to_be_bytes());
                        tag[2..].copy_from_slice(&tci.to_be_bytes());
                    }
                    None => {
                        oversize += 1;
                        slot.commit_rx(0);
                        continue;
                    }
                }
            }
            self.stats.rx_bytes += slot.len() as u64;
        }
        self.stats.rx_dropped += oversize as u64;
        for _ in 0..oversize {
            batch.note_oversize();
        }
        let got = batch.commit_spare(n);
        self.stats.rx_packets += got as u64;
        got
    }

    fn tx(&mut self, batch: &mut Batch) -> usize {
        let n = batch.len().min(MAX_BURST);
        if n == 0 {
            return 0;
        }
        let mut mv = MsgVec::new();
        for (i, p) in batch.packets().iter().take(n).enumerate() {
            let d = p.data();
            // The kernel only reads through this pointer (sendmmsg).
            mv.set(i, d.as_ptr() as *mut u8, d.len());
        }
        let (fd, hdrs) = (raw(&self.fd), mv.msgs.as_mut_ptr());
        // SAFETY: as in rx; the kernel only reads the frames.
        let sent = unsafe { libc::sendmmsg(fd, hdrs, n as u32, libc::MSG_DONTWAIT) };
        let sent = if sent < 0 {
            match io::Error::last_os_error().kind() {
                // Socket buffer full: keep the frames (backpressure).
                io::ErrorKind::WouldBlock => 0,
                _ => {
                    // A frame the interface refuses (too large...): drop that one.
                    self.stats.tx_errors += 1;
                    1
                }
            }
        } else {
            sent as usize
        };
        for p in batch.packets().iter().take(sent) {
            self.stats.tx_bytes += p.len() as u64;
        }
        self.stats.tx_packets += sent as u64;
        batch.remove_front(sent);
        sent
    }

    fn stats(&self) -> PortStats {
        self.read_kernel_drops();
        let mut s = self.stats;
        s.rx_dropped += self.kernel_drops.get();
        s
    }

    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }
}

const _: () = assert!(HEADROOM > 0);
