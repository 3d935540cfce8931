//! [`PacketBuf`]: a frame in a buffer with headroom, so encapsulation prepends
//! headers without moving the payload.

use super::meta::PacketMeta;
use bytes::Bytes;

/// Size of an owned packet buffer.
pub const BUF_SIZE: usize = 4096;
/// Headroom reserved in front of a received frame: enough for the largest Geneve
/// encapsulation (Ethernet 14 + IPv4 20 + UDP 8 + Geneve 8 + 252 bytes of options)
/// plus a VLAN tag, rounded up.
pub const HEADROOM: usize = 320;

/// A frame inside a buffer `B`. `B = Box<[u8]>` (the default) is an owned, reusable
/// buffer; `B = &mut [u8]` views a frame in a ring (UMEM) without copying it.
#[derive(Clone, Debug)]
pub struct PacketBuf<B = Box<[u8]>> {
    buf: B,
    head: usize,
    len: usize,
    /// Metadata (in_port, recirculation, tunnel).
    pub meta: PacketMeta,
}

impl Default for PacketBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketBuf {
    /// An empty owned buffer of [`BUF_SIZE`] bytes with [`HEADROOM`].
    pub fn new() -> Self {
        PacketBuf::from_buffer(vec![0u8; BUF_SIZE].into_boxed_slice(), HEADROOM, 0)
    }

    /// An owned buffer holding a copy of `data`.
    ///
    /// # Panics
    /// When `data` does not fit behind the headroom (test and set-up helper).
    pub fn from_slice(data: &[u8]) -> Self {
        let mut p = Self::new();
        assert!(p.set_data(data), "frame of {} bytes does not fit", data.len());
        p
    }

    /// A copy of the frame that can cross threads cheaply.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.data())
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> PacketBuf<B> {
    /// Wrap a buffer whose frame starts at `head` and is `len` bytes long.
    ///
    /// # Panics
    /// When `head + len` is past the end of `buf`.
    pub fn from_buffer(buf: B, head: usize, len: usize) -> Self {
        assert!(head + len <= buf.as_ref().len(), "frame outside its buffer");
        PacketBuf {
            buf,
            head,
            len,
            meta: PacketMeta::default(),
        }
    }

    /// The frame's bytes.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        &self.buf.as_ref()[self.head..self.head + self.len]
    }

    /// The frame's bytes, writable.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (h, l) = (self.head, self.len);
        &mut self.buf.as_mut()[h..h + l]
    }

    /// Frame length.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty frame.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free bytes in front of the frame.
    #[inline(always)]
    pub fn headroom(&self) -> usize {
        self.head
    }

    /// Free bytes behind the frame.
    #[inline(always)]
    pub fn tailroom(&self) -> usize {
        self.buf.as_ref().len() - self.head - self.len
    }

    /// Where the frame starts in the buffer (for ring descriptors).
    #[inline(always)]
    pub fn head(&self) -> usize {
        self.head
    }

    /// Replace the frame with a copy of `data` at the default headroom (or less
    /// when the buffer is small). Returns false, leaving the frame empty, when it
    /// does not fit. Metadata is reset.
    #[inline]
    pub fn set_data(&mut self, data: &[u8]) -> bool {
        let cap = self.buf.as_ref().len();
        self.meta = PacketMeta::default();
        let head = HEADROOM.min(cap.saturating_sub(data.len()));
        if head + data.len() > cap {
            self.len = 0;
            return false;
        }
        self.head = head;
        self.len = data.len();
        self.buf.as_mut()[head..head + data.len()].copy_from_slice(data);
        true
    }

    /// The writable area behind the default headroom, for a device to receive a
    /// frame into; then call [`commit_rx`](Self::commit_rx) with its length.
    #[inline]
    pub fn rx_area(&mut self) -> &mut [u8] {
        let h = HEADROOM.min(self.buf.as_ref().len());
        &mut self.buf.as_mut()[h..]
    }

    /// Make the first `len` bytes of [`rx_area`](Self::rx_area) the frame
    /// (metadata reset).
    #[inline]
    pub fn commit_rx(&mut self, len: usize) {
        let cap = self.buf.as_ref().len();
        self.head = HEADROOM.min(cap);
        self.len = len.min(cap - self.head);
        self.meta = PacketMeta::default();
    }

    /// Grow the frame by `n` bytes at the front and return them; `None` when the
    /// headroom is too small.
    #[inline]
    pub fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.head {
            return None;
        }
        self.head -= n;
        self.len += n;
        let h = self.head;
        Some(&mut self.buf.as_mut()[h..h + n])
    }

    /// Remove `n` bytes from the front; false when the frame is shorter.
    #[inline]
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.head += n;
        self.len -= n;
        true
    }

    /// Shorten the frame to `len` bytes (no-op when already shorter).
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Open a gap of `n` bytes at offset `at` by moving the first `at` bytes
    /// forward into the headroom (cheap when `at` is small, e.g. a VLAN push after
    /// the MAC addresses). Returns the gap; `None` when the headroom is too small
    /// or `at` is past the end.
    #[inline]
    pub fn insert_gap(&mut self, at: usize, n: usize) -> Option<&mut [u8]> {
        if at > self.len || n > self.head {
            return None;
        }
        let old = self.head;
        self.head -= n;
        self.len += n;
        let h = self.head;
        let b = self.buf.as_mut();
        b.copy_within(old..old + at, h);
        Some(&mut b[h + at..h + at + n])
    }

    /// Remove `n` bytes at offset `at` by moving the first `at` bytes back
    /// (the inverse of [`insert_gap`](Self::insert_gap)). False when out of range.
    #[inline]
    pub fn remove_gap(&mut self, at: usize, n: usize) -> bool {
        if at + n > self.len {
            return false;
        }
        let h = self.head;
        self.buf.as_mut().copy_within(h..h + at, h + n);
        self.head += n;
        self.len -= n;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_pull_front_use_headroom() {
        let mut p = PacketBuf::from_slice(&[1, 2, 3]);
        assert_eq!(p.headroom(), HEADROOM);
        p.push_front(2).unwrap().copy_from_slice(&[9, 8]);
        assert_eq!(p.data(), &[9, 8, 1, 2, 3]);
        assert!(p.pull_front(3));
        assert_eq!(p.data(), &[2, 3]);
        assert!(!p.pull_front(3));
        assert!(p.push_front(HEADROOM + 10).is_none());
    }

    #[test]
    fn gaps_insert_and_remove() {
        let mut p = PacketBuf::from_slice(&[1, 2, 3, 4, 5]);
        p.insert_gap(2, 2).unwrap().copy_from_slice(&[7, 7]);
        assert_eq!(p.data(), &[1, 2, 7, 7, 3, 4, 5]);
        assert!(p.remove_gap(2, 2));
        assert_eq!(p.data(), &[1, 2, 3, 4, 5]);
        assert!(!p.remove_gap(4, 2));
        assert!(p.insert_gap(6, 1).is_none());
    }

    #[test]
    fn borrowed_ring_frame_works_in_place() {
        let mut ring = [0u8; 64];
        ring[16..20].copy_from_slice(&[1, 2, 3, 4]);
        let mut p = PacketBuf::from_buffer(&mut ring[..], 16, 4);
        p.push_front(2).unwrap().copy_from_slice(&[5, 6]);
        assert_eq!(p.data(), &[5, 6, 1, 2, 3, 4]);
        assert_eq!(p.head(), 14);
        assert_eq!(&ring[14..20], &[5, 6, 1, 2, 3, 4]);
    }

    #[test]
    fn oversize_frame_is_refused() {
        let mut p = PacketBuf::new();
        assert!(!p.set_data(&vec![0u8; BUF_SIZE + 1]));
        assert!(p.is_empty());
        assert!(p.set_data(&vec![0u8; BUF_SIZE]));
        assert_eq!(p.headroom(), 0);
    }
}
