//! AF_XDP ports (through the `xdpilone` crate): one socket per (interface,
//! queue) with its own UMEM, fill/completion/rx/tx rings and need_wakeup. The
//! XDP program of `rvs-bpf` steers the queue's frames to the socket.
//!
//! Frame accounting: every UMEM frame is, at any time, in exactly one place:
//! the free list, the fill ring, the rx ring (kernel), or the tx/completion
//! rings (kernel). [`AfXdpPort::frames_accounted`] checks that nothing leaked.
//! Frames are copied between the UMEM and the batch's buffers (veth is copy
//! mode anyway); tx reserves ring slots and free frames before taking frames
//! from the batch, so a full ring is backpressure, never loss.

use super::{Port, PortStats};
use crate::packet::Batch;
use rvs_bpf::{BpfError, XdpMode, XskRedirect};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ffi::CString;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::{BorrowedFd, RawFd};
use std::ptr::NonNull;
use std::sync::Arc;
use xdpilone::xdp::XdpDesc;
use xdpilone::{DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig, User};

/// AF_XDP port settings.
#[derive(Clone, Debug)]
pub struct AfXdpConfig {
    /// Interface.
    pub ifname: String,
    /// Rx queue.
    pub queue: u32,
    /// UMEM frames (half are kept on the fill ring).
    pub frames: u32,
    /// Bytes per UMEM frame: 2048 or 4096 (see [`AfXdpConfig::for_interface`]).
    pub frame_size: u32,
    /// Ask for zero-copy (fails on drivers without it, such as veth).
    pub zero_copy: bool,
    /// Force an XDP attach mode (default: native, else generic).
    pub xdp_mode: Option<XdpMode>,
}

impl AfXdpConfig {
    /// Defaults for `ifname` queue 0: 4096 frames of 4 KiB, copy mode.
    pub fn new(ifname: &str) -> Self {
        AfXdpConfig {
            ifname: ifname.into(),
            queue: 0,
            frames: 4096,
            frame_size: 4096,
            zero_copy: false,
            xdp_mode: None,
        }
    }

    /// Defaults with the frame size the interface's MTU needs: 2 KiB frames
    /// (half the UMEM) when a frame of that MTU with two VLAN tags fits behind
    /// the kernel's 256-byte XDP headroom, else 4 KiB.
    pub fn for_interface(ifname: &str) -> Self {
        let mtu = std::fs::read_to_string(format!("/sys/class/net/{ifname}/mtu"))
            .ok()
            .and_then(|m| m.trim().parse::<u32>().ok());
        AfXdpConfig {
            frame_size: frame_size_for_mtu(mtu),
            ..AfXdpConfig::new(ifname)
        }
    }
}

/// The kernel keeps this much headroom in front of every received frame.
const XDP_PACKET_HEADROOM: u32 = 256;

/// UMEM frame size for an interface MTU (unknown: the larger).
pub fn frame_size_for_mtu(mtu: Option<u32>) -> u32 {
    match mtu {
        Some(m) if m + 14 + 8 + XDP_PACKET_HEADROOM <= 2048 => 2048,
        _ => 4096,
    }
}

/// AF_XDP-specific counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AfXdpStats {
    /// Times the fill ring had no room / no free frame to give the kernel.
    pub fill_empty: u64,
    /// Times tx found the ring (or the frame pool) full and left frames queued.
    pub tx_ring_full: u64,
    /// Kicks (sendto) to make the kernel send.
    pub tx_kicks: u64,
    /// Wakeups (recvfrom) to make the kernel fill.
    pub rx_wakeups: u64,
    /// The kernel's own counters: frames dropped because the rx ring was full.
    pub kernel_rx_dropped: u64,
    /// The kernel's own counters: fill ring empty when a frame arrived.
    pub kernel_fill_empty: u64,
}

const FREE: u8 = 0;
const KERNEL_RX: u8 = 1;
const KERNEL_TX: u8 = 2;
/// Copy-mode tx sends at most 32 frames per kick (measured on veth).
const KICK_EVERY: u32 = 32;

/// Page-aligned memory for a UMEM, freed on drop.
struct Area {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Area {
    fn new(len: usize) -> io::Result<Area> {
        let layout =
            Layout::from_size_align(len, 4096).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: the layout has a non-zero size (checked by the caller's frame count).
        let p = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(p).ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        Ok(Area { ptr, layout })
    }

    fn slice(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.ptr, self.layout.size())
    }

    fn bytes(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let end = (addr as usize).checked_add(len)?;
        (end <= self.layout.size()).then(|| {
            // The kernel does not write a frame it gave us (off the rx ring).
            // SAFETY: in bounds (checked above) and not written concurrently.
            unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(addr as usize), len) }
        })
    }

    fn bytes_mut(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
        let end = (addr as usize).checked_add(len)?;
        (end <= self.layout.size()).then(|| {
            // The frame is on our free list: neither the kernel nor a slice uses it.
            // SAFETY: in bounds (checked above) and exclusively ours.
            unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(addr as usize), len) }
        })
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // The rings and socket that used it were dropped first (field order).
        // SAFETY: allocated in `new` with this very layout, and no longer used.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// An AF_XDP socket on one interface queue.
pub struct AfXdpPort {
    // Field order is drop order: rings and sockets before the UMEM and its memory.
    rx: RingRx,
    tx: RingTx,
    device: DeviceQueue,
    _user: User,
    _socket: Socket,
    _umem: Umem,
    area: Area,
    prog: Arc<XskRedirect>,
    free: Vec<u64>,
    /// Where each frame is (`FREE`, `KERNEL_RX`, `KERNEL_TX`): every move is
    /// checked, so a frame can never be in two places unnoticed.
    owner: Vec<u8>,
    /// Moves that found a frame somewhere else than expected (must stay 0).
    frame_errors: u64,
    /// Frames on the fill ring + in the rx ring.
    in_rx: u32,
    /// Frames on the tx ring + completion ring.
    in_tx: u32,
    frames: u32,
    frame_size: u32,
    queue: u32,
    zero_copy: bool,
    name: String,
    stats: PortStats,
    xdp: AfXdpStats,
}

// SAFETY: the port exclusively owns its UMEM area, rings and socket; nothing in
// it is shared with another thread, so moving it to the PMD thread is sound
// (xdpilone's rings are Send; only the UMEM's raw area pointer is not marked so).
unsafe impl Send for AfXdpPort {}

fn errno(e: xdpilone::Errno, what: &str) -> io::Error {
    let e = io::Error::from_raw_os_error(e.get_raw());
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl AfXdpPort {
    /// Open a socket on `cfg.ifname`/`cfg.queue`, attaching the XDP program
    /// (or reusing `prog` when another queue of the interface attached it).
    ///
    /// Fails with [`io::ErrorKind::ResourceBusy`] while another rvs holds the
    /// interface (a killed predecessor whose exit is still releasing it, or a
    /// second daemon): checked before anything is set up, since a socket we
    /// bind and drop again costs an RCU grace period to close.
    pub fn open(cfg: &AfXdpConfig, prog: Option<Arc<XskRedirect>>) -> io::Result<AfXdpPort> {
        if prog.is_none() && XskRedirect::held_by_rvs(&cfg.ifname).unwrap_or(false) {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "{}: its XDP hook is held by another rvs (still exiting?)",
                    cfg.ifname
                ),
            ));
        }
        let frames = cfg.frames.clamp(64, 1 << 20);
        let frame_size = if cfg.frame_size <= 2048 { 2048 } else { 4096 };
        let area = Area::new(frames as usize * frame_size as usize)?;
        let ucfg = UmemConfig {
            fill_size: frames / 2,
            complete_size: frames / 2,
            frame_size,
            headroom: 0,
            flags: 0,
        };
        // SAFETY: `area` is page aligned, zeroed, and outlives the UMEM (field order).
        let umem = unsafe { Umem::new(ucfg, area.slice()) }.map_err(|e| errno(e, "UMEM registration"))?;
        let mut info = IfInfo::invalid();
        let cname =
            CString::new(cfg.ifname.as_str()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        info.from_name(&cname)
            .map_err(|e| errno(e, &format!("interface {}", cfg.ifname)))?;
        info.set_queue(cfg.queue);
        let socket = Socket::with_shared(&info, &umem).map_err(|e| errno(e, "AF_XDP socket"))?;
        let device = umem
            .fq_cq(&socket)
            .map_err(|e| errno(e, "fill/completion rings"))?;
        let mode = if cfg.zero_copy {
            SocketConfig::XDP_BIND_ZEROCOPY
        } else {
            SocketConfig::XDP_BIND_COPY
        };
        let user = umem
            .rx_tx(
                &socket,
                &SocketConfig {
                    rx_size: NonZeroU32::new(frames / 2),
                    tx_size: NonZeroU32::new(frames / 2),
                    bind_flags: SocketConfig::XDP_BIND_NEED_WAKEUP | mode,
                },
            )
            .map_err(|e| errno(e, "rx/tx rings"))?;
        let rx = user.map_rx().map_err(|e| errno(e, "mapping rx ring"))?;
        let tx = user.map_tx().map_err(|e| errno(e, "mapping tx ring"))?;
        umem.bind(&user)
            .map_err(|e| errno(e, &format!("binding to {} queue {}", cfg.ifname, cfg.queue)))?;
        let prog = match prog {
            Some(p) => p,
            None => Arc::new(
                XskRedirect::attach(&cfg.ifname, cfg.xdp_mode).map_err(|e| match e {
                    BpfError::InUse { .. } => io::Error::new(io::ErrorKind::ResourceBusy, e.to_string()),
                    e => io::Error::other(e.to_string()),
                })?,
            ),
        };
        // The map update only reads the number.
        // SAFETY: the socket fd stays open for as long as the port (which owns it) lives.
        let fd = unsafe { BorrowedFd::borrow_raw(rx.as_raw_fd()) };
        prog.register_socket(cfg.queue, fd)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut port = AfXdpPort {
            rx,
            tx,
            device,
            _user: user,
            _socket: socket,
            _umem: umem,
            area,
            prog,
            free: (0..frames).map(|i| i as u64 * frame_size as u64).collect(),
            owner: vec![FREE; frames as usize],
            frame_errors: 0,
            in_rx: 0,
            in_tx: 0,
            frames,
            frame_size,
            queue: cfg.queue,
            zero_copy: cfg.zero_copy,
            name: cfg.ifname.clone(),
            stats: PortStats::default(),
            xdp: AfXdpStats::default(),
        };
        port.refill();
        Ok(port)
    }

    /// The attached XDP program (to share with other queues of the interface).
    pub fn program(&self) -> Arc<XskRedirect> {
        self.prog.clone()
    }

    /// AF_XDP counters (with the kernel's, read now).
    pub fn xdp_stats(&self) -> AfXdpStats {
        let mut s = self.xdp;
        if let Ok(k) = self._user.statistics_v2() {
            s.kernel_rx_dropped = k.rx_dropped + k.rx_ring_full;
            s.kernel_fill_empty = k.rx_fill_ring_empty_descs;
        }
        s
    }

    /// True when every frame is accounted for: free + given to the kernel for
    /// rx + in flight on tx == all frames, the free list holds each free frame
    /// once, and no frame was ever found in an unexpected place.
    pub fn frames_accounted(&self) -> bool {
        let free_marked = self.owner.iter().filter(|o| **o == FREE).count();
        self.free.len() as u32 + self.in_rx + self.in_tx == self.frames
            && free_marked == self.free.len()
            && self.frame_errors == 0
    }

    /// Moves that found a frame in an unexpected place (a bug if ever non-zero).
    pub fn frame_errors(&self) -> u64 {
        self.frame_errors
    }

    /// Record that frame `addr` moves from `from` to `to`.
    #[inline]
    fn mark(&mut self, addr: u64, from: u8, to: u8) {
        let i = (addr / self.frame_size as u64) as usize;
        match self.owner.get_mut(i) {
            Some(o) if *o == from => *o = to,
            Some(o) => {
                self.frame_errors += 1;
                *o = to;
            }
            None => self.frame_errors += 1,
        }
    }

    /// Free frames right now.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// Give free frames to the kernel for receiving, keeping half for tx.
    fn refill(&mut self) {
        let want = (self.frames / 2).saturating_sub(self.in_rx);
        let give = want.min(self.free.len() as u32);
        if give == 0 {
            if want > 0 {
                self.xdp.fill_empty += 1;
            }
            return;
        }
        let mut w = self.device.fill(give);
        let start = self.free.len() - give as usize;
        let n = w.insert(self.free[start..].iter().copied());
        w.commit();
        drop(w);
        // The ring may take fewer than offered: exactly the first `n` offered
        // frames left the free list.
        for i in start..start + n as usize {
            let a = self.free[i];
            self.mark(a, FREE, KERNEL_RX);
        }
        self.free.drain(start..start + n as usize);
        self.in_rx += n;
    }

    /// Take back frames the kernel finished sending.
    fn complete(&mut self) {
        let mut done = [0u64; 256];
        loop {
            let mut n = 0;
            let mut r = self.device.complete(self.in_tx.min(256));
            while let Some(addr) = r.read() {
                done[n] = addr & !(self.frame_size as u64 - 1);
                n += 1;
            }
            r.release();
            drop(r);
            for &a in &done[..n] {
                self.mark(a, KERNEL_TX, FREE);
                self.free.push(a);
            }
            self.in_tx -= n as u32;
            if n < 256 {
                break;
            }
        }
    }
}

impl Port for AfXdpPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx(&mut self, batch: &mut Batch) -> usize {
        self.complete();
        self.refill();
        if self.device.needs_wakeup() {
            self.device.wake();
            self.xdp.rx_wakeups += 1;
        }
        let room = (batch.capacity() - batch.len()) as u32;
        if room == 0 {
            return 0;
        }
        let mut got = 0;
        let mut got_frames = 0u32;
        let mut r = self.rx.receive(room);
        while let Some(XdpDesc { addr, len, .. }) = r.read() {
            if let Some(frame) = self.area.bytes(addr, len as usize) {
                if batch.push_copy(frame, Default::default()) {
                    got += 1;
                    self.stats.rx_bytes += len as u64;
                } else {
                    // Room was reserved above: only a frame too big for a buffer fails.
                    self.stats.rx_dropped += 1;
                    batch.note_oversize();
                }
            } else {
                self.stats.rx_errors += 1;
            }
            got_frames += 1;
            self.free.push(addr & !(self.frame_size as u64 - 1));
            self.in_rx -= 1;
        }
        r.release();
        drop(r);
        let start = self.free.len() - got_frames as usize;
        for i in start..self.free.len() {
            let a = self.free[i];
            self.mark(a, KERNEL_RX, FREE);
        }
        self.stats.rx_packets += got as u64;
        got
    }

    fn tx(&mut self, batch: &mut Batch) -> usize {
        self.complete();
        // `done` frames from the front are handled: sent, or dropped whole for
        // not fitting a UMEM frame (never truncated).
        let (mut sent, mut done) = (0u32, 0u32);
        let fits = |p: &crate::packet::PacketBuf, size: u32| p.len() <= size as usize;
        while done < batch.len() as u32 {
            while done < batch.len() as u32 && !fits(&batch.packets()[done as usize], self.frame_size) {
                self.stats.tx_dropped += 1;
                done += 1;
            }
            // The frames that fit, up to the next one that does not.
            let fitting = batch.packets()[done as usize..]
                .iter()
                .take_while(|p| fits(p, self.frame_size))
                .count() as u32;
            if fitting == 0 {
                break;
            }
            // Reserve first: as many as there are free frames and ring slots.
            let want = fitting.min(KICK_EVERY).min(self.free.len() as u32);
            if want == 0 {
                self.xdp.tx_ring_full += 1;
                break;
            }
            let mut w = self.tx.transmit(want);
            let cap = w.capacity().min(want);
            if cap == 0 {
                drop(w);
                self.xdp.tx_ring_full += 1;
                break;
            }
            let mut descs = [XdpDesc {
                addr: 0,
                len: 0,
                options: 0,
            }; KICK_EVERY as usize];
            for (i, d) in descs.iter_mut().enumerate().take(cap as usize) {
                let p = &batch.packets()[done as usize + i];
                let addr = self.free.pop().expect("reserved above");
                let len = p.len();
                if let Some(dst) = self.area.bytes_mut(addr, len) {
                    dst.copy_from_slice(&p.data()[..len]);
                }
                *d = XdpDesc {
                    addr,
                    len: len as u32,
                    options: 0,
                };
                self.stats.tx_bytes += len as u64;
            }
            let n = w.insert(descs[..cap as usize].iter().copied());
            w.commit();
            drop(w);
            for d in &descs[..n as usize] {
                self.mark(d.addr, FREE, KERNEL_TX);
            }
            // Descriptors the ring did not take go back to the pool.
            for d in &descs[n as usize..cap as usize] {
                self.free.push(d.addr);
            }
            self.in_tx += n;
            sent += n;
            done += n;
            // Copy mode sends only inside sendto(), at most 32 frames per call,
            // whatever the need_wakeup flag says: kick once per 32.
            if !self.zero_copy || self.tx.needs_wakeup() {
                self.tx.wake();
                self.xdp.tx_kicks += 1;
            }
            if n < cap {
                self.xdp.tx_ring_full += 1;
                break;
            }
        }
        self.stats.tx_packets += sent as u64;
        batch.remove_front(done as usize);
        done as usize
    }

    fn stats(&self) -> PortStats {
        // Frames the kernel could not hand us (rx ring full, fill ring empty)
        // are this port's receive drops too.
        let mut s = self.stats;
        let x = self.xdp_stats();
        s.rx_dropped += x.kernel_rx_dropped + x.kernel_fill_empty;
        s
    }

    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.rx.as_raw_fd())
    }
}

impl Drop for AfXdpPort {
    fn drop(&mut self) {
        // Frames of this queue go to the kernel again (XDP_PASS) from now on.
        let _ = self.prog.unregister_socket(self.queue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_size_follows_the_mtu() {
        // 1500 + Ethernet + two tags + the kernel's headroom fit 2 KiB; so does
        // the lab's 1600-byte underlay.
        assert_eq!(frame_size_for_mtu(Some(1500)), 2048);
        assert_eq!(frame_size_for_mtu(Some(1600)), 2048);
        assert_eq!(frame_size_for_mtu(Some(1770)), 2048);
        assert_eq!(frame_size_for_mtu(Some(1771)), 4096);
        assert_eq!(frame_size_for_mtu(Some(9000)), 4096);
        assert_eq!(frame_size_for_mtu(None), 4096);
    }
}
