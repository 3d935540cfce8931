//! Ports: where packets enter and leave the datapath, in batches.
//!
//! Like smoltcp's `phy::Device`, a [`Port`] only moves frames; it knows no
//! flows. Real devices (AF_XDP, AF_PACKET, tap) implement the same trait.

mod afpacket;
mod afxdp;
mod csum;
mod memory;
mod multiqueue;
pub(crate) mod sys;
mod tap;

pub use afpacket::AfPacketPort;
pub use afxdp::{AfXdpConfig, AfXdpPort, AfXdpStats};
pub use csum::CompleteChecksums;
pub use memory::{MemoryPort, MemoryPortHandle};
pub use multiqueue::MultiQueue;
pub use sys::{poll_readable, wait_readable};
pub use tap::TapPort;

use crate::packet::Batch;

/// A datapath port number (the index the PMD and `Output` actions use).
pub type PortNo = u32;

/// No port: what a frame the slow path injects came in on when it came from
/// no port (a controller's packet-out from CONTROLLER).
pub const NO_PORT: PortNo = PortNo::MAX;

/// A port several PMD threads can send to: one of them polls it for rx, any
/// of them transmits; the lock is taken once per batch, never per packet.
pub type SharedPort = std::sync::Arc<std::sync::Mutex<Box<dyn Port>>>;

/// Share a port between PMD threads.
pub fn share(port: Box<dyn Port>) -> SharedPort {
    std::sync::Arc::new(std::sync::Mutex::new(port))
}

/// Lock a shared port (a thread that panicked holding it left it usable).
#[inline]
pub fn lock_port(p: &SharedPort) -> std::sync::MutexGuard<'_, Box<dyn Port>> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a PMD knows about one of its ports.
#[derive(Clone, Debug)]
pub struct PortInfo {
    /// Datapath number.
    pub no: PortNo,
    /// Name.
    pub name: String,
    /// Counters.
    pub stats: PortStats,
    /// Its wake-up descriptor.
    pub poll_fd: Option<std::os::fd::RawFd>,
    /// True when this PMD polls it for rx (else it only sends to it).
    pub polled: bool,
}

/// Counters every port keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames the port had to drop on receive (no room, too large).
    pub rx_dropped: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames dropped on send.
    pub tx_dropped: u64,
    /// Send errors.
    pub tx_errors: u64,
}

/// A device that receives and sends frames in batches.
pub trait Port: Send {
    /// The port's name (interface name for real devices).
    fn name(&self) -> &str;

    /// Receive into the free slots of `batch`; returns how many frames were added.
    /// Must not block.
    fn rx(&mut self, batch: &mut Batch) -> usize;

    /// Send frames from the front of `batch`, removing those sent (and those
    /// dropped whole for not fitting the device); returns how many were removed.
    /// Frames that do not fit (ring full) stay in `batch` for the next call:
    /// a port applies backpressure, it does not drop.
    fn tx(&mut self, batch: &mut Batch) -> usize;

    /// Current counters.
    fn stats(&self) -> PortStats;

    /// A descriptor that becomes readable when frames arrive, so an idle PMD
    /// can sleep in `poll()` instead of spinning (`None`: always poll).
    fn poll_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }

    /// The port leaves the switch for good (deleted, not the process
    /// stopping): remove what was made to outlive the process, such as a
    /// persistent tap device.
    fn retire(&mut self) {}

    /// True when received packets carry their own `in_port` (packets a
    /// kernel datapath handed up, from many ports); else the PMD sets the
    /// port's number.
    fn sets_in_port(&self) -> bool {
        false
    }
}

/// A boxed port is a port (so wrappers such as [`CompleteChecksums`] take any).
impl<P: Port + ?Sized> Port for Box<P> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn rx(&mut self, batch: &mut Batch) -> usize {
        (**self).rx(batch)
    }
    fn tx(&mut self, batch: &mut Batch) -> usize {
        (**self).tx(batch)
    }
    fn stats(&self) -> PortStats {
        (**self).stats()
    }
    fn poll_fd(&self) -> Option<std::os::fd::RawFd> {
        (**self).poll_fd()
    }
    fn retire(&mut self) {
        (**self).retire()
    }
    fn sets_in_port(&self) -> bool {
        (**self).sets_in_port()
    }
}
