//! [`Match`]: a rule's match as a masked [`XKey`].

use super::field::OfField;
use super::xkey::{XKey, XMask};

/// What a rule matches: packets whose key agrees with `value` on every bit of
/// `mask`. `value` is always stored masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Match {
    /// Expected bits (already masked).
    pub value: XKey,
    /// Bits that matter.
    pub mask: XMask,
}

impl Match {
    /// The catch-all match.
    pub fn any() -> Match {
        Match::default()
    }

    /// Require `field & mask == value & mask` (replacing an earlier condition on
    /// the field).
    pub fn set(&mut self, field: OfField, value: u128, mask: u128) {
        field.set(&mut self.mask, mask);
        field.set(&mut self.value, value & mask);
    }

    /// Require the field to equal `value` exactly.
    pub fn set_exact(&mut self, field: OfField, value: u128) {
        self.set(field, value, field.max());
    }

    /// (value, mask) of a field.
    pub fn get(&self, field: OfField) -> (u128, u128) {
        (field.get(&self.value), field.get(&self.mask))
    }

    /// True when the field is matched on at all.
    pub fn has(&self, field: OfField) -> bool {
        field.get(&self.mask) != 0
    }

    /// True when the field is matched exactly with `value`.
    pub fn is_exact(&self, field: OfField, value: u128) -> bool {
        self.get(field) == (value, field.max())
    }

    /// True when `key` satisfies the match.
    #[inline]
    pub fn matches(&self, key: &XKey) -> bool {
        key.w
            .iter()
            .zip(&self.mask.w)
            .zip(&self.value.w)
            .all(|((k, m), v)| k & m == *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_match() {
        let mut m = Match::any();
        m.set(OfField::NwDst, 0xc612_0005, 0xffff_ff00);
        let mut k = XKey::default();
        OfField::NwDst.set(&mut k, 0xc612_00aa);
        assert!(m.matches(&k));
        OfField::NwDst.set(&mut k, 0xc612_01aa);
        assert!(!m.matches(&k));
        assert_eq!(m.get(OfField::NwDst), (0xc612_0000, 0xffff_ff00));
        assert!(Match::any().matches(&k));
    }
}
