//! [`XKey`]: the key that rule tables match on: the datapath [`FlowKey`] words
//! followed by pipeline-only metadata (registers reg0..7, `metadata` and
//! `actset_output`), which exist during translation and never reach the
//! datapath, and the neighbour
//! discovery fields, which are read from the frame at translation time (too
//! rare to cost every packet a datapath key word): a translation that looks
//! at them is not cached.

use rvs_dataplane::flow::{FlowKey, FlowMask, NdFields, KEY_WORDS};

/// Words in an [`XKey`]: the datapath key, four words of registers (two per
/// word), one of metadata, four of neighbour discovery, one for
/// `actset_output`.
pub const XWORDS: usize = KEY_WORDS + 10;

/// Word index of reg0/reg1 (reg i is in word `REG_WORD + i / 2`).
pub const REG_WORD: usize = KEY_WORDS;
/// Word index of `metadata`.
pub const METADATA_WORD: usize = KEY_WORDS + 4;
/// Word index of `nd_target` (high half; the low half follows), then
/// `nd_sll`, then `nd_tll`.
pub const ND_WORD: usize = KEY_WORDS + 5;
/// Word index of `actset_output` (the low 32 bits).
pub const ACTSET_WORD: usize = KEY_WORDS + 9;

/// A translation-time flow key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct XKey {
    /// Raw words.
    pub w: [u64; XWORDS],
}

/// A mask over an [`XKey`].
pub type XMask = XKey;

impl XKey {
    /// An all-ones mask.
    pub fn exact() -> XKey {
        XKey {
            w: [u64::MAX; XWORDS],
        }
    }

    /// The key of a datapath flow key (registers and metadata zero).
    pub fn from_flow(k: &FlowKey) -> XKey {
        let mut x = XKey::default();
        x.w[..KEY_WORDS].copy_from_slice(&k.w);
        x
    }

    /// The key of a packet: its datapath key and its neighbour discovery
    /// fields (registers and metadata zero).
    pub fn from_packet(k: &FlowKey, nd: &NdFields) -> XKey {
        let mut x = XKey::from_flow(k);
        x.set_nd(nd);
        x
    }

    /// The neighbour discovery words.
    pub fn nd(&self) -> NdFields {
        NdFields {
            target: ((self.w[ND_WORD] as u128) << 64) | self.w[ND_WORD + 1] as u128,
            sll: self.w[ND_WORD + 2],
            tll: self.w[ND_WORD + 3],
        }
    }

    /// Set the neighbour discovery words.
    pub fn set_nd(&mut self, nd: &NdFields) {
        self.w[ND_WORD] = (nd.target >> 64) as u64;
        self.w[ND_WORD + 1] = nd.target as u64;
        self.w[ND_WORD + 2] = nd.sll;
        self.w[ND_WORD + 3] = nd.tll;
    }

    /// True when any neighbour discovery bit is set (in a mask: consulted).
    pub fn has_nd(&self) -> bool {
        self.w[ND_WORD..ND_WORD + 4].iter().any(|w| *w != 0)
    }

    /// The datapath part.
    pub fn flow(&self) -> FlowKey {
        let mut k = FlowKey::default();
        k.w.copy_from_slice(&self.w[..KEY_WORDS]);
        k
    }

    /// The datapath part of a mask.
    pub fn flow_mask(&self) -> FlowMask {
        let mut m = FlowMask::default();
        m.w.copy_from_slice(&self.w[..KEY_WORDS]);
        m
    }

    /// Bits (word, shift, width) read as a right-aligned value.
    #[inline]
    pub fn bits(&self, (w, shift, width): (usize, u32, u32)) -> u64 {
        (self.w[w] >> shift) & ones(width)
    }

    /// Write right-aligned `v` into the bits.
    #[inline]
    pub fn set_bits(&mut self, (w, shift, width): (usize, u32, u32), v: u64) {
        let m = ones(width) << shift;
        self.w[w] = (self.w[w] & !m) | ((v << shift) & m);
    }

    /// OR right-aligned `v` into the bits.
    #[inline]
    pub fn or_bits(&mut self, (w, shift, width): (usize, u32, u32), v: u64) {
        self.w[w] |= (v & ones(width)) << shift;
    }

    /// `self & mask`.
    #[inline]
    pub fn masked(&self, mask: &XMask) -> XKey {
        let mut o = *self;
        for i in 0..XWORDS {
            o.w[i] &= mask.w[i];
        }
        o
    }

    /// `self |= other`.
    #[inline]
    pub fn union(&mut self, other: &XKey) {
        for i in 0..XWORDS {
            self.w[i] |= other.w[i];
        }
    }

    /// True when no bit is set.
    pub fn is_zero(&self) -> bool {
        self.w.iter().all(|w| *w == 0)
    }
}

/// `width` low bits set.
#[inline]
pub const fn ones(width: u32) -> u64 {
    if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}
