//! The hash used by the caches. Keys are fixed arrays of u64, hashed pairwise:
//! each pair of words (XORed with per-position secrets) goes through a 64x64->128
//! multiply folded to 64 bits (the wyhash/folded-multiply core), and the products
//! are summed. The pairs are independent, so the CPU overlaps the multiplies; a
//! serial multiply-rotate chain over 17 words cost ~25 ns per key and dominated
//! the EMC hit. A murmur3 finaliser spreads the sum so low bits index tables.

/// Per-position secrets (odd, random-looking 64-bit constants).
const P: [u64; 32] = [
    0xa076_1d64_78bd_642f,
    0xe703_7ed1_a0b4_28db,
    0x8ebc_6af0_9c88_c6e3,
    0x5899_65cc_7537_4cc3,
    0x1d8e_4e27_c47d_124f,
    0x9e37_79b9_7f4a_7c15,
    0xbf58_476d_1ce4_e5b9,
    0x94d0_49bb_1331_11eb,
    0xd6e8_feb8_6659_fd93,
    0xc2b2_ae3d_27d4_eb4f,
    0x1656_67b1_9e37_79f9,
    0x85eb_ca77_c2b2_ae63,
    0x27d4_eb2f_1656_67c5,
    0xff51_afd7_ed55_8ccd,
    0xc4ce_b9fe_1a85_ec53,
    0x87c3_7b91_1142_53d5,
    0x4cf5_ad43_2745_937f,
    0x52dc_e729_da3e_d2b5,
    0x2545_f491_4f6c_dd1d,
    0x9fb2_1c65_1e98_df25,
    0xa54f_f53a_5f1d_36f1,
    0x510e_527f_ade6_82d1,
    0x9b05_688c_2b3e_6c1f,
    0x1f83_d9ab_fb41_bd6b,
    0x5be0_cd19_137e_2179,
    0x6a09_e667_f3bc_c909,
    0xbb67_ae85_84ca_a73b,
    0x3c6e_f372_fe94_f82b,
    0xa54f_f53a_5f1d_36f3,
    0x9b05_688c_2b3e_6c1b,
    0xcbbb_9d5d_c105_9ed9,
    0x629a_292a_367c_d507,
];

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

#[inline(always)]
fn finish(mut h: u64) -> u64 {
    // murmur3 fmix64.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[inline(always)]
fn hash_iter(n: usize, word: impl Fn(usize) -> u64) -> u64 {
    debug_assert!(n <= P.len());
    let mut acc = n as u64;
    let mut i = 0;
    while i + 1 < n {
        acc = acc.wrapping_add(fold_mul(word(i) ^ P[i], word(i + 1) ^ P[i + 1]));
        i += 2;
    }
    if i < n {
        acc = acc.wrapping_add(fold_mul(word(i) ^ P[i], P[P.len() - 1]));
    }
    finish(acc)
}

/// Hash a slice of at most 32 words (a flow key, or a control-plane key that
/// extends it).
#[inline]
pub fn hash_words(words: &[u64]) -> u64 {
    hash_iter(words.len(), |i| words[i])
}

/// Hash `words & mask` without materialising the masked key.
#[inline]
pub fn hash_masked(words: &[u64], mask: &[u64]) -> u64 {
    hash_iter(words.len().min(mask.len()), |i| words[i] & mask[i])
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
