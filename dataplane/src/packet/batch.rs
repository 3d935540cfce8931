//! [`Batch`]: a fixed set of reusable packet buffers, processed together.

use super::buf::PacketBuf;
use super::meta::PacketMeta;

/// Packets per rx batch (as in OVS's `NETDEV_MAX_BURST`).
pub const BATCH_SIZE: usize = 32;

/// Up to `capacity` packets. The buffers are allocated once and reused; moving a
/// packet between batches swaps buffers instead of copying or allocating.
#[derive(Debug)]
pub struct Batch {
    pkts: Vec<PacketBuf>,
    len: usize,
    /// Frames a port received for this batch but could not fit in a buffer
    /// (dropped whole); the PMD counts them under `oversize`.
    oversize: u32,
}

impl Batch {
    /// A batch with `capacity` preallocated buffers.
    pub fn new(capacity: usize) -> Self {
        Batch {
            pkts: (0..capacity).map(|_| PacketBuf::new()).collect(),
            len: 0,
            oversize: 0,
        }
    }

    /// A port received a frame too large for a buffer and dropped it whole.
    #[inline]
    pub fn note_oversize(&mut self) {
        self.oversize += 1;
    }

    /// Oversize frames noted since the last call.
    #[inline]
    pub fn take_oversize(&mut self) -> u32 {
        std::mem::take(&mut self.oversize)
    }

    /// Packets in the batch.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of buffers.
    #[inline(always)]
    pub fn capacity(&self) -> usize {
        self.pkts.len()
    }

    /// True when no slot is free.
    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.len == self.pkts.len()
    }

    /// Empty the batch (buffers are kept).
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Keep the first `n` packets.
    #[inline]
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// The packets.
    #[inline(always)]
    pub fn packets(&self) -> &[PacketBuf] {
        &self.pkts[..self.len]
    }

    /// The packets, writable.
    #[inline(always)]
    pub fn packets_mut(&mut self) -> &mut [PacketBuf] {
        &mut self.pkts[..self.len]
    }

    /// The free slots, for a device to receive into in place (then
    /// [`commit_spare`](Self::commit_spare)).
    #[inline]
    pub fn spare_mut(&mut self) -> &mut [PacketBuf] {
        &mut self.pkts[self.len..]
    }

    /// Add the first `n` free slots to the batch, skipping empty frames;
    /// returns how many were added.
    #[inline]
    pub fn commit_spare(&mut self, n: usize) -> usize {
        let start = self.len;
        let end = (start + n).min(self.pkts.len());
        for i in start..end {
            if !self.pkts[i].is_empty() {
                self.pkts.swap(self.len, i);
                self.len += 1;
            }
        }
        self.len - start
    }

    /// Append a copy of `data` with `meta`; false when full or the frame does not fit.
    #[inline]
    pub fn push_copy(&mut self, data: &[u8], meta: PacketMeta) -> bool {
        if self.is_full() {
            return false;
        }
        let slot = &mut self.pkts[self.len];
        if !slot.set_data(data) {
            return false;
        }
        slot.meta = meta;
        self.len += 1;
        true
    }

    /// Append `pkt` by swapping buffers with the next free slot: `pkt` is left
    /// holding that slot's old (spare) buffer. False when full.
    #[inline]
    pub fn push_swap(&mut self, pkt: &mut PacketBuf) -> bool {
        if self.is_full() {
            return false;
        }
        std::mem::swap(&mut self.pkts[self.len], pkt);
        self.len += 1;
        true
    }

    /// Fill the next free slot with `fill`; the packet is kept when `fill`
    /// returns true. False when full or refused.
    #[inline]
    pub fn push_with(&mut self, fill: impl FnOnce(&mut PacketBuf) -> bool) -> bool {
        if self.is_full() {
            return false;
        }
        if fill(&mut self.pkts[self.len]) {
            self.len += 1;
            true
        } else {
            false
        }
    }

    /// Remove the first `n` packets, keeping the rest in order (their buffers
    /// rotate to the free end).
    #[inline]
    pub fn remove_front(&mut self, n: usize) {
        let n = n.min(self.len);
        if n == self.len {
            self.len = 0;
            return;
        }
        self.pkts[..self.len].rotate_left(n);
        self.len -= n;
    }

    /// Move every packet of `self` into `other` (by swapping), as far as `other`
    /// has room; returns how many moved. Packets that did not fit stay at the front.
    pub fn move_into(&mut self, other: &mut Batch) -> usize {
        let n = self.len.min(other.capacity() - other.len());
        for p in &mut self.pkts[..n] {
            other.push_swap(p);
        }
        self.remove_front(n);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_moves_without_losing_buffers() {
        let mut a = Batch::new(4);
        let mut b = Batch::new(2);
        for i in 0..3u8 {
            assert!(a.push_copy(
                &[i; 10],
                PacketMeta {
                    in_port: i as u32,
                    ..Default::default()
                }
            ));
        }
        assert_eq!(a.move_into(&mut b), 2);
        assert_eq!(b.packets()[1].data(), &[1u8; 10]);
        assert_eq!(b.packets()[1].meta.in_port, 1);
        assert_eq!(a.len(), 1);
        assert_eq!(a.packets()[0].data(), &[2u8; 10]);
        assert_eq!(a.capacity(), 4);
        assert_eq!(b.capacity(), 2);
        assert!(!b.push_copy(&[0], PacketMeta::default()));
    }

    #[test]
    fn receive_in_place_skips_empty_frames() {
        let mut a = Batch::new(4);
        a.push_copy(&[9], PacketMeta::default());
        let spare = a.spare_mut();
        spare[0].rx_area()[..2].copy_from_slice(&[1, 2]);
        spare[0].commit_rx(2);
        spare[1].commit_rx(0);
        spare[2].rx_area()[0] = 3;
        spare[2].commit_rx(1);
        assert_eq!(a.commit_spare(3), 2);
        let got: Vec<&[u8]> = a.packets().iter().map(|p| p.data()).collect();
        assert_eq!(got, vec![&[9][..], &[1, 2][..], &[3][..]]);
    }

    #[test]
    fn push_with_respects_refusal() {
        let mut a = Batch::new(1);
        assert!(!a.push_with(|_| false));
        assert!(a.push_with(|p| p.set_data(&[1, 2])));
        assert!(a.is_full());
        assert!(!a.push_with(|_| true));
    }
}
