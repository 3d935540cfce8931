//! Tap ports: the bridge's LOCAL (internal) port as a tap device, so the host
//! (or the node's namespace) can use the bridge. One read/write syscall per
//! frame: tap has no batch interface, and LOCAL traffic is management-sized.

use super::sys::{cvt, set_nonblocking};
use super::{Port, PortStats};
use crate::packet::Batch;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// A tap device.
pub struct TapPort {
    name: String,
    file: File,
    stats: PortStats,
    persistent: bool,
}

impl TapPort {
    /// Create (or attach to) tap device `name`, non-blocking. Bring it up with
    /// `ip link set NAME up` and give it addresses as for any interface.
    pub fn open(name: &str) -> io::Result<TapPort> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad interface name {name:?}"),
            ));
        }
        let file = OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TAP | IFF_NO_PI,
            _pad: [0; 22],
        };
        for (d, s) in req.name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        // TUNSETIFF reads and writes an ifreq (name + flags, padded to 40 bytes).
        // SAFETY: `req` is a live, correctly laid out ifreq for the whole call.
        cvt(unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) })?;
        set_nonblocking(file.as_raw_fd())?;
        Ok(TapPort {
            name: name.to_string(),
            file,
            stats: PortStats::default(),
            persistent: false,
        })
    }

    /// Keep the device when this process closes it or dies, as OVS keeps its
    /// internal ports: a restarted switch attaches to the same device, and the
    /// host's addresses and routes on it survive the restart (closing a
    /// non-persistent tap also unregisters the device, which costs the
    /// exiting process two RCU barriers). [`Port::retire`] undoes it.
    pub fn persist(&mut self) -> io::Result<()> {
        self.set_persist(true)
    }

    fn set_persist(&mut self, on: bool) -> io::Result<()> {
        // TUNSETPERSIST takes its argument by value.
        // SAFETY: a plain ioctl on our own open tap fd; no memory is passed.
        cvt(unsafe { libc::ioctl(self.file.as_raw_fd(), TUNSETPERSIST as _, on as libc::c_ulong) })?;
        self.persistent = on;
        Ok(())
    }
}

impl Port for TapPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx(&mut self, batch: &mut Batch) -> usize {
        let mut n = 0;
        while let Some(slot) = batch.spare_mut().first_mut() {
            let area = slot.rx_area();
            let room = area.len();
            match self.file.read(area) {
                Ok(0) => break,
                Ok(len) if len >= room => {
                    // The tap driver cuts a frame longer than the buffer to
                    // fit: a full buffer may be a cut frame. Drop it whole.
                    self.stats.rx_dropped += 1;
                    batch.note_oversize();
                }
                Ok(len) => {
                    slot.commit_rx(len);
                    self.stats.rx_bytes += len as u64;
                    n += batch.commit_spare(1);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.stats.rx_errors += 1;
                    break;
                }
            }
        }
        self.stats.rx_packets += n as u64;
        n
    }

    fn tx(&mut self, batch: &mut Batch) -> usize {
        let mut sent = 0;
        for p in batch.packets() {
            match self.file.write(p.data()) {
                Ok(_) => {
                    self.stats.tx_bytes += p.len() as u64;
                    sent += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    // The device is down or the frame is refused: count and drop it.
                    self.stats.tx_errors += 1;
                    sent += 1;
                }
            }
        }
        self.stats.tx_packets += sent as u64;
        batch.remove_front(sent);
        sent
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.file.as_raw_fd())
    }

    fn retire(&mut self) {
        if self.persistent {
            if let Err(e) = self.set_persist(false) {
                tracing::warn!(tap = %self.name, "could not make the tap non-persistent: {e}");
            }
        }
    }
}
