//! Byte-level reading and writing of OpenFlow messages: a bounds-checked
//! reader (every read can fail, none can panic) and a big-endian writer.

use super::error::OfpError;

/// OpenFlow 1.3's version byte.
pub const OFP13: u8 = 0x04;
/// Length of the common header.
pub const HEADER_LEN: usize = 8;
/// "Any"/"all" port in OpenFlow 1.3 (32-bit port numbers).
pub const OFPP13_ANY: u32 = 0xffff_ffff;
/// "Any" group.
pub const OFPG_ANY: u32 = 0xffff_ffff;
/// "All tables".
pub const OFPTT_ALL: u8 = 0xff;
/// No buffered packet.
pub const NO_BUFFER: u32 = 0xffff_ffff;
/// Nicira's experimenter id (the NXM/NXAST extensions).
pub const NX_VENDOR: u32 = 0x0000_2320;

/// OpenFlow 1.3 message types.
#[allow(missing_docs)]
pub mod msg_type {
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const EXPERIMENTER: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const GET_CONFIG_REQUEST: u8 = 7;
    pub const GET_CONFIG_REPLY: u8 = 8;
    pub const SET_CONFIG: u8 = 9;
    pub const PACKET_IN: u8 = 10;
    pub const FLOW_REMOVED: u8 = 11;
    pub const PORT_STATUS: u8 = 12;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    pub const GROUP_MOD: u8 = 15;
    pub const PORT_MOD: u8 = 16;
    pub const TABLE_MOD: u8 = 17;
    pub const MULTIPART_REQUEST: u8 = 18;
    pub const MULTIPART_REPLY: u8 = 19;
    pub const BARRIER_REQUEST: u8 = 20;
    pub const BARRIER_REPLY: u8 = 21;
    pub const ROLE_REQUEST: u8 = 24;
    pub const ROLE_REPLY: u8 = 25;
    pub const GET_ASYNC_REQUEST: u8 = 26;
    pub const GET_ASYNC_REPLY: u8 = 27;
    pub const SET_ASYNC: u8 = 28;
    pub const METER_MOD: u8 = 29;
}

/// The common header of every message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Protocol version.
    pub version: u8,
    /// Message type.
    pub msg_type: u8,
    /// Length of the whole message, header included.
    pub length: u16,
    /// Transaction id (echoed in replies).
    pub xid: u32,
}

impl Header {
    /// The header at the start of `buf`, when 8 bytes are there.
    pub fn peek(buf: &[u8]) -> Option<Header> {
        let b: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            version: b[0],
            msg_type: b[1],
            length: u16::from_be_bytes([b[2], b[3]]),
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

/// A bounds-checked cursor. Running out of bytes is `err`, the error the
/// caller's context calls a bad length.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
    err: OfpError,
}

impl<'a> Reader<'a> {
    /// Read `buf`; a short read fails with `err`.
    pub fn new(buf: &'a [u8], err: OfpError) -> Self {
        Reader { buf, err }
    }

    /// Bytes left.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], OfpError> {
        if n > self.buf.len() {
            return Err(self.err);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// A sub-reader over the next `n` bytes (same error).
    pub fn sub(&mut self, n: usize) -> Result<Reader<'a>, OfpError> {
        let err = self.err;
        Ok(Reader::new(self.bytes(n)?, err))
    }

    /// Skip `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), OfpError> {
        self.bytes(n).map(|_| ())
    }

    /// Read a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], OfpError> {
        let b = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    /// u8.
    pub fn u8(&mut self) -> Result<u8, OfpError> {
        Ok(self.array::<1>()?[0])
    }

    /// Big-endian u16.
    pub fn u16(&mut self) -> Result<u16, OfpError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Big-endian u32.
    pub fn u32(&mut self) -> Result<u32, OfpError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Big-endian u64.
    pub fn u64(&mut self) -> Result<u64, OfpError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Exactly `n` bytes are left, or the message has a bad length
    /// (BAD_REQUEST_LEN: fixed-size bodies).
    pub fn expect_len(&self, n: usize) -> Result<(), OfpError> {
        if self.buf.len() == n {
            Ok(())
        } else {
            Err(OfpError::BAD_REQUEST_LEN)
        }
    }

    /// What is left, consuming it.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}

/// Big-endian writing into a growing buffer.
pub trait Put {
    /// u8.
    fn put_u8(&mut self, v: u8);
    /// u16.
    fn put_u16(&mut self, v: u16);
    /// u32.
    fn put_u32(&mut self, v: u32);
    /// u64.
    fn put_u64(&mut self, v: u64);
    /// `n` zero bytes.
    fn put_zeros(&mut self, n: usize);
    /// Zeros up to the next multiple of 8 counted from `start`.
    fn pad8_from(&mut self, start: usize);
    /// Overwrite the u16 at `at` (a length filled in afterwards).
    fn set_u16(&mut self, at: usize, v: u16);
    /// `s` as a NUL-padded field of `n` bytes (cut to `n - 1`).
    fn put_str(&mut self, s: &str, n: usize);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
    fn pad8_from(&mut self, start: usize) {
        let used = (self.len() - start) % 8;
        if used != 0 {
            self.put_zeros(8 - used);
        }
    }
    fn set_u16(&mut self, at: usize, v: u16) {
        if let Some(b) = self.get_mut(at..at + 2) {
            b.copy_from_slice(&v.to_be_bytes());
        }
    }
    fn put_str(&mut self, s: &str, n: usize) {
        let b = s.as_bytes();
        let k = b.len().min(n.saturating_sub(1));
        self.extend_from_slice(&b[..k]);
        self.put_zeros(n - k);
    }
}

/// Start a message: its header with length 0, filled by [`finish`].
pub fn start(buf: &mut Vec<u8>, msg_type: u8, xid: u32) -> usize {
    start_version(buf, OFP13, msg_type, xid)
}

/// [`start`] for another version than 1.3.
pub fn start_version(buf: &mut Vec<u8>, version: u8, msg_type: u8, xid: u32) -> usize {
    let at = buf.len();
    buf.put_u8(version);
    buf.put_u8(msg_type);
    buf.put_u16(0);
    buf.put_u32(xid);
    at
}

/// Fill in the length of the message started at `at`. Messages are built
/// by rvs and stay below 64 KiB (multipart replies are split before).
pub fn finish(buf: &mut [u8], at: usize) {
    let len = (buf.len() - at).min(u16::MAX as usize) as u16;
    if let Some(b) = buf.get_mut(at + 2..at + 4) {
        b.copy_from_slice(&len.to_be_bytes());
    }
}

/// A 32-bit OpenFlow 1.3 port number as rvs's 16-bit-style one: reserved
/// ports (0xfffffff8..) map to 0xfff8.., the rest stay.
pub fn port_from13(p: u32) -> u32 {
    if p >= 0xffff_ff00 {
        p - 0xffff_0000
    } else {
        p
    }
}

/// rvs's port number as OpenFlow 1.3's.
pub fn port_to13(p: u32) -> u32 {
    if (0xff00..=0xffff).contains(&p) {
        p + 0xffff_0000
    } else {
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_never_reads_past_the_end() {
        let e = OfpError::BAD_REQUEST_LEN;
        let mut r = Reader::new(&[1, 2, 3], e);
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(r.u16(), Err(e));
        assert_eq!(r.u8(), Ok(3));
        assert!(r.is_empty());
        assert_eq!(r.u64(), Err(e));
    }

    #[test]
    fn reserved_ports_map_both_ways() {
        for p in [1, 0xfeff, 0xfff8, 0xfffa, 0xfffd, 0xfffe, 0xffff] {
            assert_eq!(port_from13(port_to13(p)), p);
        }
        assert_eq!(port_to13(0xfffd), 0xffff_fffd);
        assert_eq!(port_from13(OFPP13_ANY), 0xffff);
    }
}
