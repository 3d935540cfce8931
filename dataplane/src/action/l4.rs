//! TCP/UDP port rewrites with incremental checksum updates.

use super::checksum::checksum_update16;
use super::l3_offset;
use crate::drop::DropReason;
use crate::packet::PacketBuf;
use std::fmt;

/// Which L4 ports to rewrite (`None` leaves one alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetTransport {
    /// New source port.
    pub src: Option<u16>,
    /// New destination port.
    pub dst: Option<u16>,
}

impl fmt::Display for SetTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.src, self.dst) {
            (Some(s), Some(d)) => write!(f, "src={s},dst={d}"),
            (Some(s), None) => write!(f, "src={s}"),
            (None, Some(d)) => write!(f, "dst={d}"),
            (None, None) => Ok(()),
        }
    }
}

/// Rewrite the TCP or UDP ports of an IPv4 frame, or of an IPv6 frame whose
/// TCP/UDP header follows the fixed header directly (after up to two VLAN
/// tags). An IPv6 frame with extension headers before L4 is refused
/// (`action_mismatch`, counted), never forwarded unrewritten.
pub fn set_transport<B: AsRef<[u8]> + AsMut<[u8]>>(
    pkt: &mut PacketBuf<B>,
    t: &SetTransport,
) -> Result<(), DropReason> {
    let d = pkt.data_mut();
    let (ip, ty) = l3_offset(d).ok_or(DropReason::ActionMismatch)?;
    let (proto, l4, later_fragment) = match ty {
        0x0800 if d.len() >= ip + 20 => {
            let ihl = (d[ip] & 0x0f) as usize * 4;
            if ihl < 20 {
                return Err(DropReason::MalformedL4);
            }
            let frag = u16::from_be_bytes([d[ip + 6], d[ip + 7]]) & 0x1fff;
            (d[ip + 9], ip + ihl, frag != 0)
        }
        0x86dd if d.len() >= ip + 40 => (d[ip + 6], ip + 40, false),
        _ => return Err(DropReason::ActionMismatch),
    };
    let csum_off = match proto {
        6 => l4 + 16,
        17 => l4 + 6,
        _ => return Err(DropReason::ActionMismatch),
    };
    if later_fragment || d.len() < csum_off + 2 {
        return Err(DropReason::MalformedL4);
    }
    let udp = proto == 17;
    let mut csum = u16::from_be_bytes([d[csum_off], d[csum_off + 1]]);
    let has_csum = !(udp && csum == 0);
    for (new, off) in [(t.src, l4), (t.dst, l4 + 2)] {
        if let Some(port) = new {
            let old = u16::from_be_bytes([d[off], d[off + 1]]);
            csum = checksum_update16(csum, old, port);
            d[off..off + 2].copy_from_slice(&port.to_be_bytes());
        }
    }
    if has_csum {
        if udp && csum == 0 {
            csum = 0xffff;
        }
        d[csum_off..csum_off + 2].copy_from_slice(&csum.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use etherparse::{SlicedPacket, TransportSlice};

    #[test]
    fn rewrites_ipv6_ports_with_a_valid_checksum_and_refuses_extension_headers() {
        let mut p = PacketBuf::from_slice(&udp6(5, 6));
        let t = SetTransport {
            src: Some(4321),
            dst: Some(53),
        };
        set_transport(&mut p, &t).unwrap();
        let s = SlicedPacket::from_ethernet(p.data()).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = &s.net else {
            panic!()
        };
        let Some(TransportSlice::Udp(u)) = &s.transport else {
            panic!()
        };
        assert_eq!((u.source_port(), u.destination_port()), (4321, 53));
        let h = ip.header().to_header();
        assert_eq!(
            u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap(),
            u.checksum()
        );
        let mut p = PacketBuf::from_slice(&udp6_fragment(0, true));
        assert_eq!(set_transport(&mut p, &t), Err(DropReason::ActionMismatch));
    }

    #[test]
    fn rewrites_ports_with_valid_checksums() {
        for frame in [
            tcp4(1000, 80, true, 9),
            udp4(MAC_A, MAC_B, IP_A, IP_B, 5, 6, 11),
            with_vlan(&tcp4(1, 2, false, 0), 0x8100, 3),
        ] {
            let mut p = PacketBuf::from_slice(&frame);
            set_transport(
                &mut p,
                &SetTransport {
                    src: Some(4321),
                    dst: Some(8080),
                },
            )
            .unwrap();
            let s = SlicedPacket::from_ethernet(p.data()).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = &s.net else {
                panic!()
            };
            let h = ip.header().to_header();
            match s.transport.unwrap() {
                TransportSlice::Tcp(t) => {
                    assert_eq!((t.source_port(), t.destination_port()), (4321, 8080));
                    assert_eq!(
                        t.calc_checksum_ipv4(h.source, h.destination).unwrap(),
                        t.checksum()
                    );
                }
                TransportSlice::Udp(u) => {
                    assert_eq!((u.source_port(), u.destination_port()), (4321, 8080));
                    assert_eq!(
                        u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap(),
                        u.checksum()
                    );
                }
                _ => panic!(),
            }
        }
        let mut p = PacketBuf::from_slice(&arp_request());
        assert_eq!(
            set_transport(
                &mut p,
                &SetTransport {
                    src: Some(1),
                    dst: None
                }
            ),
            Err(DropReason::ActionMismatch)
        );
    }
}
