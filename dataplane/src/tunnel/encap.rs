//! Geneve encapsulation: a precomputed outer header (Ethernet/IPv4/UDP/Geneve)
//! that `TunnelPush` prepends into the packet's headroom, fixing only the length
//! fields, the IPv4 checksum and the UDP source port per packet.

use super::error::GeneveError;
use super::geneve::{GenevePacket, GeneveRepr, GENEVE_PORT};
use crate::packet::PacketBuf;
use etherparse::{EtherType, Ethernet2Header, IpNumber, Ipv4Header};
use std::net::Ipv4Addr;

/// Largest outer header: Ethernet 14 + IPv4 20 + UDP 8 + Geneve 8 + 252 options.
pub const MAX_TUNNEL_HEADER: usize = 14 + 20 + 8 + 8 + 252;
const ETH_LEN: usize = 14;
const IP_OFF: usize = ETH_LEN;
const UDP_OFF: usize = IP_OFF + 20;

/// What to encapsulate with: the parameters of a Geneve tunnel push.
#[derive(Clone, Debug)]
pub struct GeneveEncap {
    /// Outer Ethernet source (the VTEP's MAC).
    pub eth_src: [u8; 6],
    /// Outer Ethernet destination (next hop towards `ip_dst`).
    pub eth_dst: [u8; 6],
    /// Local tunnel endpoint.
    pub ip_src: Ipv4Addr,
    /// Remote tunnel endpoint.
    pub ip_dst: Ipv4Addr,
    /// Outer TOS.
    pub tos: u8,
    /// Outer TTL (64 by default).
    pub ttl: u8,
    /// Geneve header (VNI, O bit, options).
    pub geneve: GeneveRepr,
}

impl GeneveEncap {
    /// Encapsulation to `ip_dst` with `vni`, TTL 64, no options.
    pub fn new(eth_src: [u8; 6], eth_dst: [u8; 6], ip_src: Ipv4Addr, ip_dst: Ipv4Addr, vni: u32) -> Self {
        GeneveEncap {
            eth_src,
            eth_dst,
            ip_src,
            ip_dst,
            tos: 0,
            ttl: 64,
            geneve: GeneveRepr::new(vni),
        }
    }
}

/// A ready-to-copy outer header. Fixed size (no allocation per packet); built
/// once when a flow is installed.
#[derive(Clone, PartialEq, Eq)]
pub struct TunnelHeader {
    bytes: [u8; MAX_TUNNEL_HEADER],
    len: u16,
    /// IPv4 checksum of the template with total length 0.
    base_csum: u16,
}

impl std::fmt::Debug for TunnelHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = GenevePacket::new_unchecked(&self.bytes[UDP_OFF + 8..self.len as usize]);
        let ip = &self.bytes[IP_OFF..UDP_OFF];
        write!(
            f,
            "geneve(vni={:#x},src={},dst={}",
            g.vni(),
            Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
            Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        )?;
        if !g.options().is_empty() {
            // As OVS prints them: {class,type,len,value} per option.
            f.write_str(",options(")?;
            for (i, o) in super::geneve::OptionIter::new(g.options()).enumerate() {
                let Ok(o) = o else { break };
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(
                    f,
                    "{{class={:#x},type={:#x},len={},0x",
                    o.class,
                    o.typ,
                    o.data.len()
                )?;
                for b in o.data {
                    write!(f, "{b:02x}")?;
                }
                f.write_str("}")?;
            }
            f.write_str(")")?;
        }
        f.write_str(")")
    }
}

impl TunnelHeader {
    /// Build the template for `e`.
    pub fn geneve(e: &GeneveEncap) -> Self {
        let mut bytes = [0u8; MAX_TUNNEL_HEADER];
        let len = UDP_OFF + 8 + e.geneve.buffer_len();
        let eth = Ethernet2Header {
            source: e.eth_src,
            destination: e.eth_dst,
            ether_type: EtherType::IPV4,
        };
        bytes[..ETH_LEN].copy_from_slice(&eth.to_bytes());
        // Total length 0 in the template; the checksum is then fixed up per packet
        // by adding the real length (ones' complement arithmetic is linear).
        let mut ip = Ipv4Header::new(0, e.ttl, IpNumber::UDP, e.ip_src.octets(), e.ip_dst.octets())
            .expect("zero payload length is valid");
        ip.total_len = 0;
        ip.dont_fragment = true;
        ip.dscp = etherparse::IpDscp::try_new(e.tos >> 2).unwrap_or(etherparse::IpDscp::ZERO);
        ip.ecn = etherparse::IpEcn::try_new(e.tos & 3).unwrap_or(etherparse::IpEcn::ZERO);
        ip.header_checksum = ip.calc_header_checksum();
        let base_csum = ip.header_checksum;
        bytes[IP_OFF..UDP_OFF].copy_from_slice(&ip.to_bytes());
        bytes[UDP_OFF + 2..UDP_OFF + 4].copy_from_slice(&GENEVE_PORT.to_be_bytes());
        e.geneve
            .emit(&mut GenevePacket::new_unchecked(&mut bytes[UDP_OFF + 8..len]));
        TunnelHeader {
            bytes,
            len: len as u16,
            base_csum,
        }
    }

    /// Header length in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True for an empty header (never, for a built one).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The template bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The template's IPv4 header checksum (computed with total length 0).
    pub fn base_csum(&self) -> u16 {
        self.base_csum
    }

    /// Prepend the outer header to `pkt`. `hash` (a hash of the inner flow) picks
    /// the UDP source port, so ECMP in the underlay spreads flows (RFC 8926 3.3).
    /// The UDP checksum is left 0, which RFC 8926 allows over IPv4.
    #[inline]
    pub fn push<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        pkt: &mut PacketBuf<B>,
        hash: u32,
    ) -> Result<(), GeneveError> {
        let hlen = self.len as usize;
        let inner = pkt.len();
        let Some(h) = pkt.push_front(hlen) else {
            return Err(GeneveError::NoHeadroom);
        };
        h.copy_from_slice(&self.bytes[..hlen]);
        let ip_len = (hlen - IP_OFF + inner) as u16;
        h[IP_OFF + 2..IP_OFF + 4].copy_from_slice(&ip_len.to_be_bytes());
        // csum = ~(~base + len) in ones' complement.
        let mut sum = (!self.base_csum) as u32 + ip_len as u32;
        sum = (sum & 0xffff) + (sum >> 16);
        let csum = !(sum as u16);
        h[IP_OFF + 10..IP_OFF + 12].copy_from_slice(&csum.to_be_bytes());
        let sport = 0xc000 | (hash as u16 & 0x3fff);
        h[UDP_OFF..UDP_OFF + 2].copy_from_slice(&sport.to_be_bytes());
        let udp_len = ip_len - 20;
        h[UDP_OFF + 4..UDP_OFF + 6].copy_from_slice(&udp_len.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_options_as_ovs_does() {
        let a = Ipv4Addr::new(198, 18, 0, 1);
        let b = Ipv4Addr::new(198, 18, 0, 2);
        let mut e = GeneveEncap::new([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], a, b, 0x1389);
        assert_eq!(
            format!("{:?}", TunnelHeader::geneve(&e)),
            "geneve(vni=0x1389,src=198.18.0.1,dst=198.18.0.2)"
        );
        e.geneve.push_option(0x102, 0x80, &[0, 0, 0, 5]).unwrap();
        e.geneve
            .push_option(0xffff, 1, &[1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap();
        assert_eq!(
            format!("{:?}", TunnelHeader::geneve(&e)),
            "geneve(vni=0x1389,src=198.18.0.1,dst=198.18.0.2,options({class=0x102,type=0x80,len=4,0x00000005},{class=0xffff,type=0x1,len=8,0x0102030405060708}))"
        );
    }
}
