//! IPv6 rewrites: traffic class and hop limit (no header checksum; neither is
//! in the TCP/UDP pseudo-header).

use super::l3_of;
use crate::drop::DropReason;
use crate::packet::PacketBuf;
use std::fmt;

/// Which IPv6 fields to rewrite (`None` leaves a field alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetIpv6 {
    /// New traffic class (DSCP and ECN).
    pub tclass: Option<u8>,
    /// New hop limit.
    pub hlimit: Option<u8>,
}

impl fmt::Display for SetIpv6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.tclass, self.hlimit) {
            (Some(t), Some(h)) => write!(f, "tclass={t:#x},hlimit={h}"),
            (Some(t), None) => write!(f, "tclass={t:#x}"),
            (None, Some(h)) => write!(f, "hlimit={h}"),
            (None, None) => Ok(()),
        }
    }
}

/// Rewrite IPv6 fields of `pkt`.
pub fn set_ipv6<B: AsRef<[u8]> + AsMut<[u8]>>(pkt: &mut PacketBuf<B>, s: &SetIpv6) -> Result<(), DropReason> {
    let d = pkt.data_mut();
    let l3 = l3_of(d, 0x86dd)?;
    let h = d.get_mut(l3..l3 + 40).ok_or(DropReason::MalformedIpv6)?;
    if h[0] >> 4 != 6 {
        return Err(DropReason::MalformedIpv6);
    }
    if let Some(tc) = s.tclass {
        // version(4) | traffic class(8) | flow label(20)
        h[0] = 0x60 | tc >> 4;
        h[1] = (tc << 4) | (h[1] & 0x0f);
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
            set_ipv6(&mut p, &SetIpv6 { tclass: tc, hlimit: hl }).unwrap();
            let ip = etherparse::Ipv6HeaderSlice::from_slice(&p.data()[14..]).unwrap();
            let old = etherparse::Ipv6HeaderSlice::from_slice(&f[14..]).unwrap();
            prop_assert_eq!(ip.traffic_class(), tc.unwrap_or(old.traffic_class()));
            prop_assert_eq!(ip.hop_limit(), hl.unwrap_or(old.hop_limit()));
            prop_assert_eq!(ip.flow_label(), old.flow_label());
            prop_assert_eq!(&p.data()[22..], &f[22..]);
        }
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
