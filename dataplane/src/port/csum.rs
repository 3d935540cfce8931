//! [`CompleteChecksums`]: a port wrapper that recomputes TCP/UDP checksums of
//! received IPv4 frames. A veth endpoint with tx checksum offload sends frames
//! whose L4 checksum is only the pseudo-header sum; AF_XDP (and AF_PACKET)
//! lose the "partial" mark, so forwarded TCP/UDP would arrive broken. The
//! alternative, free for rvs but not for the endpoint, is `ethtool -K DEV tx off`
//! on the endpoints. Cost: one pass over each TCP/UDP payload.

use super::{Port, PortStats};
use crate::action::complete_l4_checksum;
use crate::packet::Batch;
use std::os::fd::RawFd;

/// A port whose received frames get complete L4 checksums.
pub struct CompleteChecksums<P>(pub P);

impl<P: Port> Port for CompleteChecksums<P> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn rx(&mut self, batch: &mut Batch) -> usize {
        let start = batch.len();
        let n = self.0.rx(batch);
        for p in &mut batch.packets_mut()[start..] {
            complete_l4_checksum(p);
        }
        n
    }

    fn tx(&mut self, batch: &mut Batch) -> usize {
        self.0.tx(batch)
    }

    fn stats(&self) -> PortStats {
        self.0.stats()
    }

    fn poll_fd(&self) -> Option<RawFd> {
        self.0.poll_fd()
    }
    fn retire(&mut self) {
        self.0.retire()
    }
}
