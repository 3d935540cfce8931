//! [`FlowMask`]: which bits of a [`FlowKey`] a cached flow depends on.

use super::field::Field;
use super::key::{FlowKey, KEY_WORDS};

/// A mask over a flow key: a 1 bit means "this bit was consulted".
/// A megaflow matches a key when `key & mask == flow.key`.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash, Debug)]
pub struct FlowMask {
    /// Raw mask words, same layout as [`FlowKey::w`].
    pub w: [u64; KEY_WORDS],
}

impl FlowMask {
    /// A mask that covers every bit (an exact match).
    pub fn exact() -> FlowMask {
        FlowMask {
            w: [u64::MAX; KEY_WORDS],
        }
    }

    /// Mask bits of one field (right-aligned).
    #[inline]
    pub fn get(&self, f: Field) -> u64 {
        let (w, shift, _) = f.place();
        (self.w[w] >> shift) & f.max()
    }

    /// Replace a field's mask.
    #[inline]
    pub fn set(&mut self, f: Field, m: u64) {
        let (w, shift, _) = f.place();
        let all = f.max() << shift;
        self.w[w] = (self.w[w] & !all) | ((m << shift) & all);
    }

    /// Add bits to a field's mask (the way translation accumulates what it read).
    #[inline]
    pub fn add(&mut self, f: Field, m: u64) {
        let (w, shift, _) = f.place();
        self.w[w] |= (m & f.max()) << shift;
    }

    /// Cover a whole field.
    #[inline]
    pub fn set_exact(&mut self, f: Field) {
        self.add(f, u64::MAX);
    }

    /// Union of two masks.
    pub fn union(&mut self, other: &FlowMask) {
        for i in 0..KEY_WORDS {
            self.w[i] |= other.w[i];
        }
    }

    /// True when no bit is set.
    pub fn is_empty(&self) -> bool {
        self.w.iter().all(|w| *w == 0)
    }

    /// A key with the mask's bits as its value (for printing a mask).
    pub fn as_key(&self) -> FlowKey {
        FlowKey { w: self.w }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key_strategy() -> impl Strategy<Value = FlowKey> {
        proptest::array::uniform18(any::<u64>()).prop_map(|w| FlowKey { w })
    }

    proptest! {
        /// The masked-match law every cache relies on:
        /// `key` matches an entry `(masked, mask)` iff `key & mask == masked`.
        #[test]
        fn matches_iff_masked_equal(k in key_strategy(), other in key_strategy(), m in proptest::array::uniform18(any::<u64>())) {
            let mask = FlowMask { w: m };
            let entry = other.masked(&mask);
            prop_assert_eq!(k.matches_masked(&mask, &entry), k.masked(&mask) == entry);
            prop_assert!(k.matches_masked(&mask, &k.masked(&mask)));
            prop_assert_eq!(k.hash_masked(&mask), k.masked(&mask).hash());
        }
    }

    #[test]
    fn add_accumulates_bits() {
        let mut m = FlowMask::default();
        m.add(Field::NwDst, 0xff00_0000);
        m.add(Field::NwDst, 0x00ff_0000);
        assert_eq!(m.get(Field::NwDst), 0xffff_0000);
        assert_eq!(m.get(Field::NwSrc), 0);
        m.set(Field::NwDst, 0x1);
        assert_eq!(m.get(Field::NwDst), 1);
    }
}
