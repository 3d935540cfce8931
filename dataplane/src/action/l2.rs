//! Ethernet and VLAN rewrites.

use crate::drop::DropReason;
use crate::flow::VLAN_CFI;
use crate::packet::PacketBuf;

/// Insert a VLAN tag after the MAC addresses.
#[inline]
pub fn push_vlan<B: AsRef<[u8]> + AsMut<[u8]>>(
    pkt: &mut PacketBuf<B>,
    tpid: u16,
    tci: u16,
) -> Result<(), DropReason> {
    if pkt.len() < 14 {
        return Err(DropReason::TruncatedEth);
    }
    let gap = pkt.insert_gap(12, 4).ok_or(DropReason::NoHeadroom)?;
    gap[..2].copy_from_slice(&tpid.to_be_bytes());
    gap[2..].copy_from_slice(&(tci & !VLAN_CFI).to_be_bytes());
    Ok(())
}

/// Remove the outer VLAN tag.
#[inline]
pub fn pop_vlan<B: AsRef<[u8]> + AsMut<[u8]>>(pkt: &mut PacketBuf<B>) -> Result<(), DropReason> {
    let d = pkt.data();
    if d.len() < 18 {
        return Err(DropReason::ActionMismatch);
    }
    match u16::from_be_bytes([d[12], d[13]]) {
        0x8100 | 0x88a8 | 0x9100 => {
            pkt.remove_gap(12, 4);
            Ok(())
        }
        _ => Err(DropReason::ActionMismatch),
    }
}

/// Rewrite the Ethernet source.
#[inline]
pub fn set_eth_src<B: AsRef<[u8]> + AsMut<[u8]>>(
    pkt: &mut PacketBuf<B>,
    mac: &[u8; 6],
) -> Result<(), DropReason> {
    set_mac(pkt, 6, mac)
}

/// Rewrite the Ethernet destination.
#[inline]
pub fn set_eth_dst<B: AsRef<[u8]> + AsMut<[u8]>>(
    pkt: &mut PacketBuf<B>,
    mac: &[u8; 6],
) -> Result<(), DropReason> {
    set_mac(pkt, 0, mac)
}

#[inline]
fn set_mac<B: AsRef<[u8]> + AsMut<[u8]>>(
    pkt: &mut PacketBuf<B>,
    at: usize,
    mac: &[u8; 6],
) -> Result<(), DropReason> {
    let d = pkt.data_mut();
    if d.len() < 14 {
        return Err(DropReason::TruncatedEth);
    }
    d[at..at + 6].copy_from_slice(mac);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use etherparse::{LinkExtSlice, SlicedPacket};

    #[test]
    fn push_then_pop_restores_the_frame_and_etherparse_sees_the_tag() {
        let f = udp4_min();
        let mut p = PacketBuf::from_slice(&f);
        push_vlan(&mut p, 0x8100, 0x2000 | VLAN_CFI | 100).unwrap();
        {
            let s = SlicedPacket::from_ethernet(p.data()).unwrap();
            let LinkExtSlice::Vlan(v) = &s.link_exts[0] else {
                panic!("no vlan")
            };
            assert_eq!(v.vlan_identifier().value(), 100);
            assert_eq!(v.priority_code_point().value(), 1);
            assert!(
                !v.drop_eligible_indicator(),
                "CFI/present bit must not leak as DEI"
            );
            assert!(s.transport.is_some());
        }
        // QinQ on top.
        push_vlan(&mut p, 0x88a8, 7).unwrap();
        assert_eq!(SlicedPacket::from_ethernet(p.data()).unwrap().link_exts.len(), 2);
        pop_vlan(&mut p).unwrap();
        pop_vlan(&mut p).unwrap();
        assert_eq!(p.data(), &f[..]);
        assert_eq!(pop_vlan(&mut p), Err(DropReason::ActionMismatch));
    }

    #[test]
    fn mac_rewrites() {
        let mut p = PacketBuf::from_slice(&udp4_min());
        set_eth_src(&mut p, &[1; 6]).unwrap();
        set_eth_dst(&mut p, &[2; 6]).unwrap();
        assert_eq!(&p.data()[..12], &[2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1]);
        let mut short = PacketBuf::from_slice(&[0; 10]);
        assert_eq!(set_eth_src(&mut short, &[1; 6]), Err(DropReason::TruncatedEth));
    }
}
