//! [`FlowKey`]: the fixed-size, `Copy` description of a packet that the caches match.

use super::field::Field;
use super::hash::{hash_masked, hash_words};
use super::mask::FlowMask;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Number of 64-bit words in a key (144 bytes). Every word costs each packet
/// (zeroing, hashing, comparing): a word more measured +5..10% on the pipeline
/// benchmark (and +6% instructions when `ct_mark`/`ct_label` had one), so
/// rare fields (neighbour discovery) stay out of the key and live only in
/// translation (see `rvs_control`'s `XKey`), and the connection-tracking
/// fields share words with others.
pub const KEY_WORDS: usize = 18;

/// `vlan_tci` bit that says "a tag is present" (OVS's CFI convention).
pub const VLAN_CFI: u16 = 0x1000;
/// `nw_frag`: the packet is a fragment.
pub const FRAG_ANY: u8 = 1;
/// `nw_frag`: the packet is a fragment other than the first.
pub const FRAG_LATER: u8 = 2;
/// `tun_flags`: the packet came through a tunnel with a key (VNI).
pub const TUN_FLAG_KEY: u16 = 1;
/// `tun_flags`: Geneve OAM bit.
pub const TUN_FLAG_OAM: u16 = 2;
/// `tun_flags`: outer UDP carried a checksum.
pub const TUN_FLAG_CSUM: u16 = 4;

/// A flow key. Fields are read and written through [`Field`] places; the word
/// array makes masking and hashing cheap and allocation-free.
#[derive(Clone, Copy, Eq, Default)]
pub struct FlowKey {
    /// The raw words. Prefer the typed accessors.
    pub w: [u64; KEY_WORDS],
}

impl PartialEq for FlowKey {
    /// Word-wise XOR/OR: branch-free and inlined (a derived `==` calls `memcmp`,
    /// which showed up at 9% of the pipeline benchmark).
    #[inline(always)]
    fn eq(&self, other: &FlowKey) -> bool {
        let mut diff = 0u64;
        for i in 0..KEY_WORDS {
            diff |= self.w[i] ^ other.w[i];
        }
        diff == 0
    }
}

impl FlowKey {
    /// Read a field (right-aligned).
    #[inline(always)]
    pub fn get(&self, f: Field) -> u64 {
        let (w, shift, _) = f.place();
        (self.w[w] >> shift) & f.max()
    }

    /// Write a field; bits above its width are discarded.
    #[inline(always)]
    pub fn set(&mut self, f: Field, v: u64) {
        let (w, shift, _) = f.place();
        let m = f.max() << shift;
        self.w[w] = (self.w[w] & !m) | ((v << shift) & m);
    }

    /// Ethernet source as bytes.
    pub fn eth_src(&self) -> [u8; 6] {
        mac_from_u64(self.get(Field::EthSrc))
    }
    /// Ethernet destination as bytes.
    pub fn eth_dst(&self) -> [u8; 6] {
        mac_from_u64(self.get(Field::EthDst))
    }
    /// IPv4 source (also ARP SPA).
    pub fn nw_src(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.get(Field::NwSrc) as u32)
    }
    /// IPv4 destination (also ARP TPA).
    pub fn nw_dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.get(Field::NwDst) as u32)
    }
    /// IPv6 source.
    pub fn ipv6_src(&self) -> Ipv6Addr {
        Ipv6Addr::from(((self.w[12] as u128) << 64) | self.w[13] as u128)
    }
    /// IPv6 destination.
    pub fn ipv6_dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(((self.w[14] as u128) << 64) | self.w[15] as u128)
    }
    /// Set the IPv6 source.
    pub fn set_ipv6_src(&mut self, a: Ipv6Addr) {
        let v = u128::from(a);
        self.w[12] = (v >> 64) as u64;
        self.w[13] = v as u64;
    }
    /// Set the IPv6 destination.
    pub fn set_ipv6_dst(&mut self, a: Ipv6Addr) {
        let v = u128::from(a);
        self.w[14] = (v >> 64) as u64;
        self.w[15] = v as u64;
    }

    /// `self & mask`.
    #[inline]
    pub fn masked(&self, mask: &FlowMask) -> FlowKey {
        let mut out = FlowKey::default();
        for i in 0..KEY_WORDS {
            out.w[i] = self.w[i] & mask.w[i];
        }
        out
    }

    /// Hash of the whole key (EMC).
    #[inline]
    pub fn hash(&self) -> u64 {
        hash_words(&self.w)
    }

    /// Hash of `self & mask` (megaflow subtables).
    #[inline]
    pub fn hash_masked(&self, mask: &FlowMask) -> u64 {
        hash_masked(&self.w, &mask.w)
    }

    /// True when `self & mask == other` (other already masked).
    #[inline]
    pub fn matches_masked(&self, mask: &FlowMask, masked: &FlowKey) -> bool {
        let mut diff = 0u64;
        for i in 0..KEY_WORDS {
            diff |= (self.w[i] & mask.w[i]) ^ masked.w[i];
        }
        diff == 0
    }

    /// Write the key in datapath-flow style, showing only fields that the mask
    /// covers (all fields when `mask` is `None`), e.g.
    /// `in_port(1),eth_dst(02:00:00:00:00:01),eth_type(0x0800)`.
    pub fn fmt_masked(&self, mask: Option<&FlowMask>, out: &mut impl fmt::Write) -> fmt::Result {
        let mut first = true;
        for f in Field::ALL {
            let m = mask.map_or(f.max(), |m| m.get(f));
            if m == 0 {
                continue;
            }
            let v = self.get(f);
            if mask.is_none() && v == 0 && f != Field::InPort {
                continue;
            }
            if !first {
                out.write_char(',')?;
            }
            first = false;
            let arp = self.get(Field::EthType) == 0x0806;
            match f {
                Field::Ipv6SrcHi if arp => write!(out, "arp_sha(")?,
                Field::Ipv6DstHi if arp => write!(out, "arp_tha(")?,
                _ => write!(out, "{}(", f.name())?,
            }
            match f {
                Field::Ipv6SrcHi | Field::Ipv6DstHi if arp => fmt_mac(mac_from_u64(v), out)?,
                Field::EthSrc | Field::EthDst => fmt_mac(mac_from_u64(v), out)?,
                Field::NwSrc | Field::NwDst | Field::TunSrc | Field::TunDst => {
                    write!(out, "{}", Ipv4Addr::from(v as u32))?
                }
                Field::EthType | Field::VlanTci | Field::VlanTci2 => write!(out, "{v:#06x}")?,
                _ => write!(out, "{v:#x}")?,
            }
            if m != f.max() {
                write!(out, "/{m:#x}")?;
            }
            out.write_char(')')?;
        }
        Ok(())
    }
}

impl fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FlowKey(")?;
        self.fmt_masked(None, f)?;
        f.write_str(")")
    }
}

/// 48-bit big-endian MAC as the low bits of a u64.
#[inline]
pub(crate) fn mac_to_u64(m: [u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
}

/// Inverse of [`mac_to_u64`].
#[inline]
pub(crate) fn mac_from_u64(v: u64) -> [u8; 6] {
    let b = v.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// A MAC written `aa:bb:cc:dd:ee:ff` (flow dumps, actions, configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

fn fmt_mac(m: [u8; 6], out: &mut impl fmt::Write) -> fmt::Result {
    write!(out, "{}", MacAddr(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_each_field_without_touching_others() {
        for f in Field::ALL {
            let mut k = FlowKey::default();
            k.set(f, u64::MAX);
            assert_eq!(k.get(f), f.max(), "{f:?}");
            for g in Field::ALL {
                if g != f {
                    assert_eq!(k.get(g), 0, "{f:?} leaked into {g:?}");
                }
            }
        }
    }

    #[test]
    fn mac_round_trip() {
        let m = [0x02, 0xab, 0xcd, 0xef, 0x01, 0xff];
        assert_eq!(mac_from_u64(mac_to_u64(m)), m);
    }

    #[test]
    fn formats_masked_fields_only() {
        let mut k = FlowKey::default();
        k.set(Field::InPort, 3);
        k.set(Field::EthDst, mac_to_u64([2, 0, 0, 0, 0, 1]));
        k.set(Field::NwDst, u32::from(Ipv4Addr::new(198, 18, 0, 1)) as u64);
        let mut m = FlowMask::default();
        m.set_exact(Field::InPort);
        m.set(Field::NwDst, 0xffff_ff00);
        let mut s = String::new();
        k.fmt_masked(Some(&m), &mut s).unwrap();
        assert_eq!(s, "in_port(0x3),nw_dst(198.18.0.1/0xffffff00)");
    }
}
