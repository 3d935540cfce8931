//! IPv6 rewrites: addresses (with the L4 checksum's pseudo-header), flow
//! label, traffic class and hop limit (the last three are in no checksum).

use super::checksum::checksum_update16;
use super::l3_of;
use crate::drop::DropReason;
use crate::packet::PacketBuf;
use std::fmt;
use std::net::Ipv6Addr;

/// Which IPv6 fields to rewrite (`None` leaves a field alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetIpv6 {
    /// New source address.
    pub src: Option<Ipv6Addr>,
    /// New destination address.
    pub dst: Option<Ipv6Addr>,
    /// New flow label (20 bits).
    pub label: Option<u32>,
    /// New traffic class (DSCP and ECN).
    pub tclass: Option<u8>,
    /// New hop limit.
    pub hlimit: Option<u8>,
}

impl fmt::Display for SetIpv6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut item = |f: &mut fmt::Formatter<'_>, s: fmt::Arguments<'_>| {
            let r = write!(f, "{sep}{s}");
            sep = ",";
            r
        };
        if let Some(a) = self.src {
            item(f, format_args!("src={a}"))?;
        }
        if let Some(a) = self.dst {
            item(f, format_args!("dst={a}"))?;
        }
        if let Some(l) = self.label {
            item(f, format_args!("label={l:#x}"))?;
        }
        if let Some(t) = self.tclass {
            item(f, format_args!("tclass={t:#x}"))?;
        }
        if let Some(h) = self.hlimit {
            item(f, format_args!("hlimit={h}"))?;
        }
        Ok(())
    }
}

/// Where the checksum of the L4 header right after the fixed IPv6 header is
/// (TCP, UDP, ICMPv6), relative to that header; `None` for other protocols.
fn l4_checksum_at(next: u8) -> Option<usize> {
    match next {
        6 => Some(16),
        17 => Some(6),
        58 => Some(2),
        _ => None,
    }
}

/// Rewrite IPv6 fields of `pkt`. An address change updates the TCP, UDP or
/// ICMPv6 checksum that covers it; when an extension header stands between
/// the fixed header and L4, an address change is refused
/// (`action_mismatch`, counted) rather than leaving a wrong checksum.
pub fn set_ipv6<B: AsRef<[u8]> + AsMut<[u8]>>(pkt: &mut PacketBuf<B>, s: &SetIpv6) -> Result<(), DropReason> {
    let d = pkt.data_mut();
    let l3 = l3_of(d, 0x86dd)?;
    let h = d.get(l3..l3 + 40).ok_or(DropReason::MalformedIpv6)?;
    if h[0] >> 4 != 6 {
        return Err(DropReason::MalformedIpv6);
    }
    let next = h[6];
    let addrs = [(s.src, l3 + 8), (s.dst, l3 + 24)];
    if addrs.iter().any(|(a, _)| a.is_some()) {
        let csum_at = l4_checksum_at(next).ok_or(DropReason::ActionMismatch)?;
        let c = l3 + 40 + csum_at;
        if d.len() < c + 2 {
            return Err(DropReason::MalformedL4);
        }
        let mut csum = u16::from_be_bytes([d[c], d[c + 1]]);
        // A UDP checksum of 0 (illegal on IPv6, but seen) stays 0.
        let update = !(next == 17 && csum == 0);
        for (addr, at) in addrs {
            let Some(a) = addr else { continue };
            let new = a.octets();
            for i in (0..16).step_by(2) {
                let old = u16::from_be_bytes([d[at + i], d[at + i + 1]]);
                csum = checksum_update16(csum, old, u16::from_be_bytes([new[i], new[i + 1]]));
            }
            d[at..at + 16].copy_from_slice(&new);
        }
        if update {
            if next == 17 && csum == 0 {
                csum = 0xffff;
            }
            d[c..c + 2].copy_from_slice(&csum.to_be_bytes());
        }
    }
    let h = &mut d[l3..l3 + 40];
    if let Some(tc) = s.tclass {
        // version(4) | traffic class(8) | flow label(20)
        h[0] = 0x60 | tc >> 4;
        h[1] = (tc << 4) | (h[1] & 0x0f);
    }
    if let Some(l) = s.label {
        h[1] = (h[1] & 0xf0) | ((l >> 16) as u8 & 0x0f);
        h[2] = (l >> 8) as u8;
        h[3] = l as u8;
    }
    if let Some(hl) = s.hlimit {
        h[7] = hl;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use proptest::prelude::*;

    proptest! {
        /// Any rewrite lands where etherparse reads it and leaves the flow
        /// label and the rest of the frame alone.
        #[test]
        fn rewrites_land_and_keep_the_rest(tc in proptest::option::of(any::<u8>()), hl in proptest::option::of(any::<u8>())) {
            let f = udp6(5, 6);
            let mut p = PacketBuf::from_slice(&f);
            set_ipv6(&mut p, &SetIpv6 { tclass: tc, hlimit: hl, ..SetIpv6::default() }).unwrap();
            let ip = etherparse::Ipv6HeaderSlice::from_slice(&p.data()[14..]).unwrap();
            let old = etherparse::Ipv6HeaderSlice::from_slice(&f[14..]).unwrap();
            prop_assert_eq!(ip.traffic_class(), tc.unwrap_or(old.traffic_class()));
            prop_assert_eq!(ip.hop_limit(), hl.unwrap_or(old.hop_limit()));
            prop_assert_eq!(ip.flow_label(), old.flow_label());
            prop_assert_eq!(&p.data()[22..], &f[22..]);
        }
    }

    #[test]
    fn address_and_label_rewrites_keep_the_l4_checksum_valid() {
        use etherparse::{SlicedPacket, TransportSlice};
        let src: Ipv6Addr = "2001:db8::a".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::b".parse().unwrap();
        let mut p = PacketBuf::from_slice(&udp6(5, 6));
        let s = SetIpv6 {
            src: Some(src),
            dst: Some(dst),
            label: Some(0xabcde),
            ..SetIpv6::default()
        };
        set_ipv6(&mut p, &s).unwrap();
        assert_eq!(s.to_string(), "src=2001:db8::a,dst=2001:db8::b,label=0xabcde");
        let sp = SlicedPacket::from_ethernet(p.data()).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = &sp.net else {
            panic!()
        };
        let h = ip.header().to_header();
        assert_eq!((h.source, h.destination), (src.octets(), dst.octets()));
        assert_eq!(h.flow_label.value(), 0xabcde);
        let Some(TransportSlice::Udp(u)) = &sp.transport else {
            panic!()
        };
        assert_eq!(
            u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap(),
            u.checksum()
        );
        // An extension header before L4: the checksum cannot be found, so refuse.
        let mut p = PacketBuf::from_slice(&udp6_fragment(0, true));
        assert_eq!(set_ipv6(&mut p, &s), Err(DropReason::ActionMismatch));
    }

    #[test]
    fn refuses_ipv4_and_short_frames() {
        let mut p = PacketBuf::from_slice(&udp4(MAC_A, MAC_B, IP_A, IP_B, 1, 2, 4));
        assert_eq!(
            set_ipv6(&mut p, &SetIpv6::default()),
            Err(DropReason::ActionMismatch)
        );
        let f = udp6(5, 6);
        let mut p = PacketBuf::from_slice(&f[..40]);
        assert_eq!(
            set_ipv6(&mut p, &SetIpv6::default()),
            Err(DropReason::MalformedIpv6)
        );
    }
}
