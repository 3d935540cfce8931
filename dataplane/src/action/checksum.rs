//! Incremental Internet checksum updates (RFC 1624, eqn. 3): HC' = ~(~HC + ~m + m').

/// Update checksum `csum` for a 16-bit field changing from `old` to `new`.
#[inline]
pub fn checksum_update16(csum: u16, old: u16, new: u16) -> u16 {
    let mut sum = (!csum) as u32 + (!old) as u32 + new as u32;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// Update checksum `csum` for a 32-bit field changing from `old` to `new`.
#[inline]
pub fn checksum_update32(csum: u16, old: u32, new: u32) -> u16 {
    let c = checksum_update16(csum, (old >> 16) as u16, (new >> 16) as u16);
    checksum_update16(c, old as u16, new as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(words: &[u16]) -> u16 {
        let mut s: u32 = words.iter().map(|w| *w as u32).sum();
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn incremental_equals_full_recompute() {
        let mut w = [
            0x4500u16, 0x0073, 0x0000, 0x4000, 0x4011, 0xc0a8, 0x0001, 0xc0a8, 0x00c7,
        ];
        let c = full(&w);
        let old = w[5];
        w[5] = 0xc612;
        assert_eq!(checksum_update16(c, old, w[5]), full(&w));
        let old32 = ((w[7] as u32) << 16) | w[8] as u32;
        w[7] = 0xc613;
        w[8] = 0x0203;
        let new32 = ((w[7] as u32) << 16) | w[8] as u32;
        assert_eq!(
            checksum_update32(
                full(&[0x4500, 0x0073, 0, 0x4000, 0x4011, 0xc612, 1, 0xc0a8, 0xc7]),
                old32,
                new32
            ),
            full(&w)
        );
    }
}
