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

/// Ones'-complement sum of `data` (16-bit big-endian words) added to `sum`.
#[inline]
fn sum_words(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u32) << 8;
    }
    sum
}

/// The Internet checksum of `data`, `sum` (a pseudo-header's) added.
pub(crate) fn internet_checksum(sum: u32, data: &[u8]) -> u16 {
    fold(sum_words(sum, data))
}

fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Recompute the TCP or UDP checksum of an IPv4 frame (after up to two VLAN
/// tags) from scratch. For frames a veth sent with checksum offload, whose L4
/// checksum holds only the pseudo-header sum (AF_XDP loses the "partial" mark).
/// Returns false (frame untouched) for anything else.
pub fn complete_l4_checksum<B: AsRef<[u8]> + AsMut<[u8]>>(pkt: &mut crate::packet::PacketBuf<B>) -> bool {
    let d = pkt.data_mut();
    let Some((ip, 0x0800)) = super::l3_offset(d) else {
        return false;
    };
    if d.len() < ip + 20 {
        return false;
    }
    let ihl = (d[ip] & 0x0f) as usize * 4;
    let total = u16::from_be_bytes([d[ip + 2], d[ip + 3]]) as usize;
    let frag = u16::from_be_bytes([d[ip + 6], d[ip + 7]]) & 0x3fff;
    let proto = d[ip + 9];
    if ihl < 20 || frag != 0 || total < ihl + 8 || ip + total > d.len() {
        return false;
    }
    let csum_at = match proto {
        6 if total >= ihl + 20 => 16,
        17 => 6,
        _ => return false,
    };
    let l4 = ip + ihl;
    let len = total - ihl;
    d[l4 + csum_at] = 0;
    d[l4 + csum_at + 1] = 0;
    let mut sum = sum_words(0, &d[ip + 12..ip + 20]);
    sum += proto as u32 + len as u32;
    sum = sum_words(sum, &d[l4..l4 + len]);
    let mut c = fold(sum);
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    d[l4 + csum_at..l4 + csum_at + 2].copy_from_slice(&c.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PacketBuf;
    use crate::testing::{tcp4, udp4, with_vlan, IP_A, IP_B, MAC_A, MAC_B};

    #[test]
    fn completes_partial_checksums_to_what_a_stack_computes() {
        for f in [
            tcp4(1, 2, true, 33),
            udp4(MAC_A, MAC_B, IP_A, IP_B, 3, 4, 17),
            with_vlan(&tcp4(5, 6, false, 1), 0x8100, 9),
        ] {
            let off = if f.len() > 12 && f[12] == 0x81 { 4 } else { 0 };
            let csum_at = 14 + off + 20 + if f[14 + off + 9] == 6 { 16 } else { 6 };
            let mut broken = f.clone();
            broken[csum_at] ^= 0x5a; // as a partial (pseudo-header only) sum would differ
            let mut p = PacketBuf::from_slice(&broken);
            assert!(complete_l4_checksum(&mut p));
            assert_eq!(p.data(), &f[..]);
        }
        let mut arp = PacketBuf::from_slice(&crate::testing::arp_request());
        assert!(!complete_l4_checksum(&mut arp));
    }

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
