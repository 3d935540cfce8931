//! ARP rewrites (an ARP responder in the rule tables: opcode, sender and target
//! addresses). ARP has no checksum.

use super::l3_of;
use crate::drop::DropReason;
use crate::flow::MacAddr;
use crate::packet::PacketBuf;
use std::fmt;
use std::net::Ipv4Addr;

/// Which ARP fields to rewrite (`None` leaves a field alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetArp {
    /// New opcode.
    pub op: Option<u16>,
    /// New sender hardware address.
    pub sha: Option<[u8; 6]>,
    /// New sender protocol address.
    pub spa: Option<Ipv4Addr>,
    /// New target hardware address.
    pub tha: Option<[u8; 6]>,
    /// New target protocol address.
    pub tpa: Option<Ipv4Addr>,
}

impl fmt::Display for SetArp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mac = |m: &[u8; 6]| MacAddr(*m).to_string();
        let mut parts = Vec::new();
        if let Some(a) = self.spa {
            parts.push(format!("sip={a}"));
        }
        if let Some(a) = self.tpa {
            parts.push(format!("tip={a}"));
        }
        if let Some(o) = self.op {
            parts.push(format!("op={o}"));
        }
        if let Some(m) = &self.sha {
            parts.push(format!("sha={}", mac(m)));
        }
        if let Some(m) = &self.tha {
            parts.push(format!("tha={}", mac(m)));
        }
        f.write_str(&parts.join(","))
    }
}

/// Rewrite ARP fields of `pkt` (Ethernet/IPv4 ARP only, as the flow key
/// extraction accepts).
pub fn set_arp<B: AsRef<[u8]> + AsMut<[u8]>>(pkt: &mut PacketBuf<B>, s: &SetArp) -> Result<(), DropReason> {
    let d = pkt.data_mut();
    let l3 = l3_of(d, 0x0806)?;
    let a = d.get_mut(l3..l3 + 28).ok_or(DropReason::MalformedArp)?;
    if a[0..6] != [0, 1, 0x08, 0x00, 6, 4] {
        return Err(DropReason::MalformedArp);
    }
    if let Some(op) = s.op {
        a[6..8].copy_from_slice(&op.to_be_bytes());
    }
    if let Some(m) = s.sha {
        a[8..14].copy_from_slice(&m);
    }
    if let Some(ip) = s.spa {
        a[14..18].copy_from_slice(&ip.octets());
    }
    if let Some(m) = s.tha {
        a[18..24].copy_from_slice(&m);
    }
    if let Some(ip) = s.tpa {
        a[24..28].copy_from_slice(&ip.octets());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn turns_a_request_into_a_reply() {
        let mut p = PacketBuf::from_slice(&arp_request());
        let before = p.data().to_vec();
        let s = SetArp {
            op: Some(2),
            sha: Some([2, 0, 0, 0, 0, 9]),
            spa: Some(Ipv4Addr::new(198, 18, 0, 9)),
            tha: Some(before[22..28].try_into().unwrap()),
            tpa: Some(Ipv4Addr::new(198, 18, 0, 1)),
        };
        set_arp(&mut p, &s).unwrap();
        let a = etherparse::ArpPacketSlice::from_slice(&p.data()[14..]).unwrap();
        assert_eq!(a.operation().0, 2);
        assert_eq!(a.sender_hw_addr(), &[2, 0, 0, 0, 0, 9]);
        assert_eq!(a.sender_protocol_addr(), &[198, 18, 0, 9]);
        assert_eq!(a.target_hw_addr(), &before[22..28]);
        assert_eq!(a.target_protocol_addr(), &[198, 18, 0, 1]);
        assert_eq!(p.data()[..14], before[..14], "Ethernet header untouched");
    }

    #[test]
    fn refuses_what_is_not_arp_or_is_cut_short() {
        let mut p = PacketBuf::from_slice(&udp4(MAC_A, MAC_B, IP_A, IP_B, 1, 2, 4));
        assert_eq!(
            set_arp(&mut p, &SetArp::default()),
            Err(DropReason::ActionMismatch)
        );
        let f = arp_request();
        let mut p = PacketBuf::from_slice(&f[..30]);
        assert_eq!(set_arp(&mut p, &SetArp::default()), Err(DropReason::MalformedArp));
    }
}
