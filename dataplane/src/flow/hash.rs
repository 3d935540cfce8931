//! The hash used by the caches: a word-at-a-time multiply/rotate mix with a
//! murmur3 finaliser. Keys are fixed arrays of u64, so no generic `Hasher` is
//! needed, and the same function hashes a masked key without building it.

const K: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline(always)]
fn mix(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(K).rotate_left(29)
}

#[inline(always)]
fn finish(mut h: u64) -> u64 {
    // murmur3 fmix64: spreads every input bit over the whole output, so the low
    // bits can index power-of-two tables.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Hash a slice of words.
#[inline]
pub fn hash_words(words: &[u64]) -> u64 {
    let mut h = 0u64;
    for &w in words {
        h = mix(h, w);
    }
    finish(h)
}

/// Hash `words & mask` without materialising the masked key.
#[inline]
pub fn hash_masked(words: &[u64], mask: &[u64]) -> u64 {
    let mut h = 0u64;
    for (w, m) in words.iter().zip(mask) {
        h = mix(h, w & m);
    }
    finish(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_hash_equals_hash_of_masked_words() {
        let w = [1u64, 0xdead_beef, u64::MAX, 42];
        let m = [0u64, 0xffff, u64::MAX, 0xf0];
        let masked: Vec<u64> = w.iter().zip(&m).map(|(a, b)| a & b).collect();
        assert_eq!(hash_masked(&w, &m), hash_words(&masked));
    }

    #[test]
    fn single_bit_changes_change_the_hash() {
        let base = [0u64; 17];
        let h0 = hash_words(&base);
        for i in 0..17 {
            for b in [0, 13, 63] {
                let mut w = base;
                w[i] ^= 1 << b;
                assert_ne!(hash_words(&w), h0);
            }
        }
    }
}
