//! The Geneve header (RFC 8926 section 3) as a zero-copy view and a plain repr.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
//! |        Virtual Network Identifier (VNI)       |    Reserved   |
//! |                    Variable-Length Options                    |
//! option: | Option Class (16) | Type (8, C = top bit) | R R R | Length (5, words) | data
//! ```

use super::error::GeneveError;

/// IANA UDP port of Geneve.
pub const GENEVE_PORT: u16 = 6081;
/// Protocol type of an Ethernet payload (Transparent Ethernet Bridging).
pub const PROTO_ETHERNET: u16 = 0x6558;
/// Fixed header length.
pub const HEADER_LEN: usize = 8;
/// Most option bytes a header can carry (6-bit length in 4-byte words).
pub const MAX_OPTIONS_LEN: usize = 63 * 4;
/// Critical bit in an option's type.
pub const OPT_TYPE_CRITICAL: u8 = 0x80;

/// A read-only or writable view of a Geneve header and what follows it.
#[derive(Debug, Clone)]
pub struct GenevePacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> GenevePacket<T> {
    /// Wrap without checks (accessors may panic on short buffers; use
    /// [`new_checked`](Self::new_checked) for untrusted input).
    pub fn new_unchecked(buffer: T) -> Self {
        GenevePacket { buffer }
    }

    /// Wrap after checking that the fixed header and the declared options fit.
    pub fn new_checked(buffer: T) -> Result<Self, GeneveError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Check that the header and the option area fit in the buffer.
    pub fn check_len(&self) -> Result<(), GeneveError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(GeneveError::Truncated);
        }
        if b.len() < self.header_len() {
            return Err(GeneveError::OptLen);
        }
        Ok(())
    }

    /// Consume the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version (must be 0).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 6
    }
    /// Option length in 4-byte words.
    pub fn opt_len_words(&self) -> u8 {
        self.buffer.as_ref()[0] & 0x3f
    }
    /// Header length including options, in bytes.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.opt_len_words() as usize * 4
    }
    /// O bit: control (OAM) packet.
    pub fn oam(&self) -> bool {
        self.buffer.as_ref()[1] & 0x80 != 0
    }
    /// C bit: critical options present.
    pub fn critical(&self) -> bool {
        self.buffer.as_ref()[1] & 0x40 != 0
    }
    /// Protocol type of the payload.
    pub fn protocol(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }
    /// 24-bit VNI.
    pub fn vni(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([0, b[4], b[5], b[6]])
    }
    /// The raw option bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// The encapsulated frame.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> GenevePacket<T> {
    /// Set version and option length (in words).
    pub fn set_ver_opt_len(&mut self, version: u8, words: u8) {
        self.buffer.as_mut()[0] = (version << 6) | (words & 0x3f);
    }
    /// Set the O and C bits (reserved bits cleared).
    pub fn set_flags(&mut self, oam: bool, critical: bool) {
        self.buffer.as_mut()[1] = ((oam as u8) << 7) | ((critical as u8) << 6);
    }
    /// Set the protocol type.
    pub fn set_protocol(&mut self, p: u16) {
        self.buffer.as_mut()[2..4].copy_from_slice(&p.to_be_bytes());
    }
    /// Set the VNI (low 24 bits) and clear the reserved byte.
    pub fn set_vni(&mut self, vni: u32) {
        let b = vni.to_be_bytes();
        self.buffer.as_mut()[4..8].copy_from_slice(&[b[1], b[2], b[3], 0]);
    }
    /// Writable option area (sized by the option length already set).
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// One option TLV, borrowed from the option area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneveOption<'a> {
    /// Option class.
    pub class: u16,
    /// Type, including the critical bit.
    pub typ: u8,
    /// Option data (length is a multiple of 4, at most 124 bytes).
    pub data: &'a [u8],
}

impl GeneveOption<'_> {
    /// True when the receiver must drop the packet if it does not know the option.
    pub fn is_critical(&self) -> bool {
        self.typ & OPT_TYPE_CRITICAL != 0
    }
}

/// Iterates over option TLVs; yields an error (and stops) on a bad length.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> OptionIter<'a> {
    /// Iterate over a raw option area.
    pub fn new(options: &'a [u8]) -> Self {
        OptionIter { rest: options }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<GeneveOption<'a>, GeneveError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 4 {
            self.rest = &[];
            return Some(Err(GeneveError::OptLen));
        }
        let r = self.rest;
        let dlen = (r[3] & 0x1f) as usize * 4;
        if r.len() < 4 + dlen {
            self.rest = &[];
            return Some(Err(GeneveError::OptLen));
        }
        self.rest = &r[4 + dlen..];
        Some(Ok(GeneveOption {
            class: u16::from_be_bytes([r[0], r[1]]),
            typ: r[2],
            data: &r[4..4 + dlen],
        }))
    }
}

/// A parsed Geneve header, options kept as raw TLV bytes (fixed storage, no
/// allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct GeneveRepr {
    /// O bit.
    pub oam: bool,
    /// C bit (kept consistent with the options by `push_option`).
    pub critical: bool,
    /// Protocol type (0x6558 for Ethernet).
    pub protocol: u16,
    /// 24-bit VNI.
    pub vni: u32,
    opts: [u8; MAX_OPTIONS_LEN],
    opts_len: u8,
}

impl std::fmt::Debug for GeneveRepr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneveRepr")
            .field("oam", &self.oam)
            .field("critical", &self.critical)
            .field("protocol", &format_args!("{:#06x}", self.protocol))
            .field("vni", &self.vni)
            .field("options", &self.options().collect::<Vec<_>>())
            .finish()
    }
}

impl GeneveRepr {
    /// A header for an Ethernet payload with `vni` and no options.
    pub fn new(vni: u32) -> Self {
        GeneveRepr {
            oam: false,
            critical: false,
            protocol: PROTO_ETHERNET,
            vni: vni & 0x00ff_ffff,
            opts: [0; MAX_OPTIONS_LEN],
            opts_len: 0,
        }
    }

    /// Parse and validate a header: version 0 and well-formed options.
    pub fn parse<T: AsRef<[u8]>>(p: &GenevePacket<T>) -> Result<Self, GeneveError> {
        p.check_len()?;
        if p.version() != 0 {
            return Err(GeneveError::Version(p.version()));
        }
        let opts = p.options();
        for o in OptionIter::new(opts) {
            o?;
        }
        let mut r = GeneveRepr::new(p.vni());
        r.oam = p.oam();
        r.critical = p.critical();
        r.protocol = p.protocol();
        r.opts[..opts.len()].copy_from_slice(opts);
        r.opts_len = opts.len() as u8;
        Ok(r)
    }

    /// Append an option. `data` must be a multiple of 4 bytes, at most 124.
    pub fn push_option(&mut self, class: u16, typ: u8, data: &[u8]) -> Result<(), GeneveError> {
        let len = self.opts_len as usize;
        if !data.len().is_multiple_of(4) || data.len() > 31 * 4 || len + 4 + data.len() > MAX_OPTIONS_LEN {
            return Err(GeneveError::OptionsTooLong);
        }
        let o = &mut self.opts[len..len + 4 + data.len()];
        o[..2].copy_from_slice(&class.to_be_bytes());
        o[2] = typ;
        o[3] = (data.len() / 4) as u8;
        o[4..].copy_from_slice(data);
        self.opts_len += (4 + data.len()) as u8;
        if typ & OPT_TYPE_CRITICAL != 0 {
            self.critical = true;
        }
        Ok(())
    }

    /// The options.
    pub fn options(&self) -> impl Iterator<Item = GeneveOption<'_>> {
        OptionIter::new(self.raw_options()).filter_map(Result::ok)
    }

    /// Raw option bytes.
    pub fn raw_options(&self) -> &[u8] {
        &self.opts[..self.opts_len as usize]
    }

    /// Bytes that [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.opts_len as usize
    }

    /// Write the header into the front of `p` (which must be at least
    /// [`buffer_len`](Self::buffer_len) bytes).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut GenevePacket<T>) {
        p.set_ver_opt_len(0, self.opts_len / 4);
        p.set_flags(self.oam, self.critical);
        p.set_protocol(self.protocol);
        p.set_vni(self.vni);
        p.options_mut().copy_from_slice(self.raw_options());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emit_then_parse_with_options() {
        let mut r = GeneveRepr::new(0x12_3456);
        r.push_option(0x0102, 0x80, &[1, 2, 3, 4]).unwrap();
        r.push_option(0xffff, 0x01, &[]).unwrap();
        r.push_option(0x0103, 0x02, &[9; 8]).unwrap();
        assert!(r.critical);
        let mut buf = vec![0u8; r.buffer_len() + 3];
        buf[r.buffer_len()..].copy_from_slice(&[7, 7, 7]);
        let mut p = GenevePacket::new_unchecked(&mut buf[..]);
        r.emit(&mut p);
        let p = GenevePacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.vni(), 0x12_3456);
        assert_eq!(p.protocol(), PROTO_ETHERNET);
        assert_eq!(p.payload(), &[7, 7, 7]);
        assert!(p.critical());
        let back = GeneveRepr::parse(&p).unwrap();
        assert_eq!(back, r);
        let opts: Vec<_> = back.options().collect();
        assert_eq!(opts.len(), 3);
        assert_eq!(
            opts[0],
            GeneveOption {
                class: 0x0102,
                typ: 0x80,
                data: &[1, 2, 3, 4]
            }
        );
        assert!(opts[0].is_critical());
        assert_eq!(opts[2].data, &[9; 8]);
    }

    #[test]
    fn rejects_bad_version_and_lengths() {
        let mut buf = [0u8; 8];
        buf[0] = 0x40; // version 1
        assert_eq!(
            GeneveRepr::parse(&GenevePacket::new_unchecked(&buf[..])),
            Err(GeneveError::Version(1))
        );
        buf[0] = 0x01; // one option word, but nothing behind the header
        assert_eq!(
            GenevePacket::new_checked(&buf[..]).unwrap_err(),
            GeneveError::OptLen
        );
        assert_eq!(
            GenevePacket::new_checked(&buf[..5]).unwrap_err(),
            GeneveError::Truncated
        );
        // Option area of one word holding an option that claims 2 words of data.
        let buf2 = [0x01, 0, 0x65, 0x58, 0, 0, 1, 0, 0x01, 0x02, 0x03, 0x02];
        let p = GenevePacket::new_checked(&buf2[..]).unwrap();
        assert_eq!(GeneveRepr::parse(&p), Err(GeneveError::OptLen));
    }

    #[test]
    fn option_limits() {
        let mut r = GeneveRepr::new(1);
        assert_eq!(r.push_option(1, 1, &[0; 3]), Err(GeneveError::OptionsTooLong));
        assert_eq!(r.push_option(1, 1, &[0; 128]), Err(GeneveError::OptionsTooLong));
        // 252 bytes: two options of 4+120 and one empty of 4.
        r.push_option(1, 1, &[0; 120]).unwrap();
        r.push_option(1, 2, &[0; 120]).unwrap();
        r.push_option(1, 3, &[]).unwrap();
        assert_eq!(r.raw_options().len(), MAX_OPTIONS_LEN);
        assert_eq!(r.push_option(1, 4, &[]), Err(GeneveError::OptionsTooLong));
    }

    fn repr_strategy() -> impl Strategy<Value = GeneveRepr> {
        (
            any::<u32>(),
            any::<bool>(),
            proptest::collection::vec((any::<u16>(), any::<u8>(), 0usize..8), 0..8),
        )
            .prop_map(|(vni, oam, opts)| {
                let mut r = GeneveRepr::new(vni);
                r.oam = oam;
                for (class, typ, words) in opts {
                    let data: Vec<u8> = (0..words * 4).map(|i| i as u8 ^ typ).collect();
                    let _ = r.push_option(class, typ, &data);
                }
                r
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        /// parse(emit(r)) == r for 0..N options.
        #[test]
        fn round_trip(r in repr_strategy()) {
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut GenevePacket::new_unchecked(&mut buf[..]));
            let back = GeneveRepr::parse(&GenevePacket::new_checked(&buf[..]).unwrap()).unwrap();
            prop_assert_eq!(back, r);
        }

        /// Arbitrary bytes never panic the checked view or the parser.
        #[test]
        fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(p) = GenevePacket::new_checked(&data[..]) {
                let _ = GeneveRepr::parse(&p);
                let _ = p.payload();
            }
        }
    }
}
