//! AF_PACKET ports: a raw socket bound to one interface, receiving with
//! `recvmmsg` straight into the batch's buffers and sending with `sendmmsg`
//! (one syscall per batch each way). The fallback where XDP cannot attach.

use super::sys::{cvt, ifindex, raw, set_nonblocking, socket};
use super::{Port, PortStats};
use crate::packet::{Batch, HEADROOM};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

const ETH_P_ALL: u16 = 0x0003;
/// Most frames taken or sent per syscall.
const MAX_BURST: usize = 64;

/// Message headers for `recvmmsg`/`sendmmsg`, one buffer each. Built in place
/// (headers point into `iov`), used for one call, never moved in between.
struct MsgVec {
    iov: [libc::iovec; MAX_BURST],
    msgs: [libc::mmsghdr; MAX_BURST],
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
}

/// A raw-socket port on one interface.
pub struct AfPacketPort {
    name: String,
    fd: OwnedFd,
    stats: PortStats,
}

impl AfPacketPort {
    /// Open a non-blocking AF_PACKET socket on `ifname`. Frames this socket
    /// sends are not received back (`PACKET_IGNORE_OUTGOING`).
    pub fn open(ifname: &str) -> io::Result<AfPacketPort> {
        let index = ifindex(ifname)?;
        let fd = socket(libc::AF_PACKET, libc::SOCK_RAW, ETH_P_ALL.to_be() as i32)?;
        let one: libc::c_int = 1;
        // SAFETY: setsockopt with a pointer to a live c_int and its size.
        cvt(unsafe {
            libc::setsockopt(
                raw(&fd),
                libc::SOL_PACKET,
                libc::PACKET_IGNORE_OUTGOING,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        })?;
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
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
        })
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
        for (i, m) in mv.msgs.iter().enumerate().take(n) {
            if m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                self.stats.rx_dropped += 1;
                slots[i].commit_rx(0);
                continue;
            }
            slots[i].commit_rx(m.msg_len as usize);
            self.stats.rx_bytes += m.msg_len as u64;
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
        self.stats
    }

    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }
}

const _: () = assert!(HEADROOM > 0);
