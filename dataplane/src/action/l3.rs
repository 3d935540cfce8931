//! IPv4 rewrites with incremental checksum updates (IPv4 header and the TCP/UDP
//! pseudo-header).

use super::checksum::{checksum_update16, checksum_update32};
use super::l3_of;
use crate::drop::DropReason;
use crate::packet::PacketBuf;
use std::fmt;
use std::net::Ipv4Addr;

/// Which IPv4 fields to rewrite (`None` leaves a field alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetIpv4 {
    /// New source address.
    pub src: Option<Ipv4Addr>,
    /// New destination address.
    pub dst: Option<Ipv4Addr>,
    /// New TOS byte.
    pub tos: Option<u8>,
    /// New TTL.
    pub ttl: Option<u8>,
}

impl fmt::Display for SetIpv4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(a) = self.src {
            write!(f, "src={a}")?;
            sep = ",";
        }
        if let Some(a) = self.dst {
            write!(f, "{sep}dst={a}")?;
            sep = ",";
        }
        if let Some(t) = self.tos {
            write!(f, "{sep}tos={t:#x}")?;
            sep = ",";
        }
        if let Some(t) = self.ttl {
            write!(f, "{sep}ttl={t}")?;
        }
        Ok(())
    }
}

/// Rewrite IPv4 fields of `pkt`, keeping the IPv4 header checksum and the
/// TCP/UDP checksum (pseudo-header) correct.
pub fn set_ipv4<B: AsRef<[u8]> + AsMut<[u8]>>(pkt: &mut PacketBuf<B>, s: &SetIpv4) -> Result<(), DropReason> {
    let d = pkt.data_mut();
    let l3 = l3_of(d, 0x0800)?;
    if d.len() < l3 + 20 || d[l3] >> 4 != 4 {
        return Err(DropReason::MalformedIpv4);
    }
    let ihl = (d[l3] & 0x0f) as usize * 4;
    if ihl < 20 || d.len() < l3 + ihl {
        return Err(DropReason::MalformedIpv4);
    }
    let rd16 = |d: &[u8], o: usize| u16::from_be_bytes([d[o], d[o + 1]]);
    let rd32 = |d: &[u8], o: usize| u32::from_be_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]);
    let mut ip_csum = rd16(d, l3 + 10);
    let proto = d[l3 + 9];
    let later_fragment = rd16(d, l3 + 6) & 0x1fff != 0;
    let l4 = l3 + ihl;
    // Where the L4 checksum is, when it covers the addresses and is present.
    let l4_csum = match proto {
        6 if !later_fragment && d.len() >= l4 + 18 => Some((l4 + 16, false)),
        17 if !later_fragment && d.len() >= l4 + 8 && rd16(d, l4 + 6) != 0 => Some((l4 + 6, true)),
        _ => None,
    };
    let mut l4c = l4_csum.map(|(o, _)| rd16(d, o));

    for (new, off) in [(s.src, l3 + 12), (s.dst, l3 + 16)] {
        if let Some(a) = new {
            let old = rd32(d, off);
            let new = u32::from(a);
            ip_csum = checksum_update32(ip_csum, old, new);
            l4c = l4c.map(|c| checksum_update32(c, old, new));
            d[off..off + 4].copy_from_slice(&new.to_be_bytes());
        }
    }
    if let Some(tos) = s.tos {
        let old = rd16(d, l3);
        d[l3 + 1] = tos;
        ip_csum = checksum_update16(ip_csum, old, rd16(d, l3));
    }
    if let Some(ttl) = s.ttl {
        let old = rd16(d, l3 + 8);
        d[l3 + 8] = ttl;
        ip_csum = checksum_update16(ip_csum, old, rd16(d, l3 + 8));
    }
    d[l3 + 10..l3 + 12].copy_from_slice(&ip_csum.to_be_bytes());
    if let (Some((off, udp)), Some(mut c)) = (l4_csum, l4c) {
        // A computed UDP checksum of 0 is sent as 0xffff (0 means "none").
        if udp && c == 0 {
            c = 0xffff;
        }
        d[off..off + 2].copy_from_slice(&c.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use etherparse::{Ipv4HeaderSlice, SlicedPacket, TransportSlice};
    use proptest::prelude::*;

    /// Re-parse with etherparse and verify every checksum from scratch.
    fn checksums_ok(frame: &[u8]) -> bool {
        let s = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = &s.net else {
            return false;
        };
        let h = ip.header();
        let ip_ok = h.to_header().calc_header_checksum() == h.header_checksum();
        let hdr = h.to_header();
        let l4_ok = match &s.transport {
            Some(TransportSlice::Udp(u)) => {
                u.checksum() == 0
                    || u.to_header().calc_checksum_ipv4(&hdr, u.payload()).unwrap() == u.checksum()
            }
            Some(TransportSlice::Tcp(t)) => {
                t.calc_checksum_ipv4(hdr.source, hdr.destination).unwrap() == t.checksum()
            }
            _ => true,
        };
        ip_ok && l4_ok
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        /// Any combination of rewrites keeps every checksum valid, on UDP and TCP,
        /// tagged or not.
        #[test]
        fn rewrites_keep_checksums_valid(
            src in proptest::option::of(any::<u32>()),
            dst in proptest::option::of(any::<u32>()),
            tos in proptest::option::of(any::<u8>()),
            ttl in proptest::option::of(any::<u8>()),
            tcp in any::<bool>(),
            vlan in any::<bool>(),
        ) {
            let mut f = if tcp { tcp4(1, 2, true, 11) } else { udp4(MAC_A, MAC_B, IP_A, IP_B, 5, 6, 13) };
            if vlan { f = with_vlan(&f, 0x8100, 9); }
            prop_assert!(checksums_ok(&f));
            let mut p = PacketBuf::from_slice(&f);
            let s = SetIpv4 { src: src.map(Ipv4Addr::from), dst: dst.map(Ipv4Addr::from), tos, ttl };
            set_ipv4(&mut p, &s).unwrap();
            prop_assert!(checksums_ok(p.data()));
            let l3 = if vlan { 18 } else { 14 };
            let ip = Ipv4HeaderSlice::from_slice(&p.data()[l3..]).unwrap();
            if let Some(a) = src { prop_assert_eq!(u32::from(ip.source_addr()), a); }
            if let Some(a) = dst { prop_assert_eq!(u32::from(ip.destination_addr()), a); }
            if let Some(t) = ttl { prop_assert_eq!(ip.ttl(), t); }
        }
    }

    #[test]
    fn non_ipv4_is_refused() {
        let mut p = PacketBuf::from_slice(&arp_request());
        assert_eq!(
            set_ipv4(
                &mut p,
                &SetIpv4 {
                    ttl: Some(1),
                    ..Default::default()
                }
            ),
            Err(DropReason::ActionMismatch)
        );
    }
}
