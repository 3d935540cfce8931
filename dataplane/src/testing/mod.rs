//! Frame builders for tests and benchmarks (built with etherparse's writers, so
//! the frames are what a real stack would send, checksums included).

use etherparse::{IpFragOffset, IpNumber, Ipv4Header, Ipv6FragmentHeader, PacketBuilder};

/// Default test MACs and addresses (198.18.0.0/15, the benchmarking range).
pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
/// Second test MAC.
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
/// First test IPv4 address.
pub const IP_A: [u8; 4] = [198, 18, 0, 10];
/// Second test IPv4 address.
pub const IP_B: [u8; 4] = [198, 18, 0, 11];

/// Ethernet/IPv4/UDP with `payload_len` zero bytes of payload.
pub fn udp4(
    src: [u8; 6],
    dst: [u8; 6],
    sip: [u8; 4],
    dip: [u8; 4],
    sport: u16,
    dport: u16,
    payload_len: usize,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src, dst)
        .ipv4(sip, dip, 64)
        .udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload_len));
    b.write(&mut out, &vec![0u8; payload_len])
        .expect("write udp frame");
    out
}

/// A minimum-size (64 bytes with FCS, 60 without) UDP frame between A and B.
pub fn udp4_min() -> Vec<u8> {
    udp4(MAC_A, MAC_B, IP_A, IP_B, 1000, 2000, 18)
}

/// Ethernet/IPv4/TCP with SYN (and ACK when `ack`).
pub fn tcp4(sport: u16, dport: u16, ack: bool, payload_len: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(IP_A, IP_B, 64)
        .tcp(sport, dport, 1, 65535)
        .syn();
    let b = if ack { b.ack(7) } else { b };
    let mut out = Vec::with_capacity(b.size(payload_len));
    b.write(&mut out, &vec![0u8; payload_len])
        .expect("write tcp frame");
    out
}

/// Ethernet/IPv4/ICMP echo request.
pub fn icmp4_echo(id: u16, seq: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(IP_A, IP_B, 64)
        .icmpv4_echo_request(id, seq);
    let mut out = Vec::new();
    b.write(&mut out, &[0u8; 8]).expect("write icmp frame");
    out
}

/// Ethernet/IPv6/UDP.
pub fn udp6(sport: u16, dport: u16) -> Vec<u8> {
    let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(src, dst, 64)
        .udp(sport, dport);
    let mut out = Vec::new();
    b.write(&mut out, &[0u8; 16]).expect("write udp6 frame");
    out
}

/// Ethernet/IPv6 with a fragment header (offset in 8-byte units) carrying UDP.
pub fn udp6_fragment(offset: u16, more: bool) -> Vec<u8> {
    let mut f = udp6(1, 2);
    // Insert a fragment header between the IPv6 header (14..54) and UDP.
    let frag = Ipv6FragmentHeader::new(
        IpNumber::UDP,
        IpFragOffset::try_new(offset).expect("offset"),
        more,
        7,
    );
    let fb = frag.to_bytes();
    f[14 + 6] = 44; // next header: fragment
    let plen = u16::from_be_bytes([f[18], f[19]]) + 8;
    f[18..20].copy_from_slice(&plen.to_be_bytes());
    f.splice(54..54, fb.iter().copied());
    f
}

/// Ethernet/IPv4 fragment of a UDP datagram: `offset` in 8-byte units.
pub fn udp4_fragment(offset: u16, more: bool) -> Vec<u8> {
    let mut f = udp4(MAC_A, MAC_B, IP_A, IP_B, 1, 2, 32);
    let mut ip = Ipv4Header::from_slice(&f[14..]).expect("ipv4").0;
    ip.fragment_offset = IpFragOffset::try_new(offset).expect("offset");
    ip.more_fragments = more;
    ip.header_checksum = ip.calc_header_checksum();
    f[14..34].copy_from_slice(&ip.to_bytes());
    f
}

/// Ethernet/IPv6/ICMPv6 neighbour solicitation (`ty` 135) or advertisement
/// (136) for `target`, with the given ND options (each `(type, mac)`, 8 bytes).
pub fn nd(ty: u8, target: [u8; 16], opts: &[(u8, [u8; 6])]) -> Vec<u8> {
    use etherparse::{Icmpv6Header, Icmpv6Type, Ipv6Header};
    let src = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let dst = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2];
    let mut body = Vec::new();
    body.extend_from_slice(&target);
    for (t, mac) in opts {
        body.extend_from_slice(&[*t, 1]);
        body.extend_from_slice(mac);
    }
    let icmp_ty = if ty == 135 {
        Icmpv6Type::Unknown {
            type_u8: 135,
            code_u8: 0,
            bytes5to8: [0; 4],
        }
    } else {
        Icmpv6Type::Unknown {
            type_u8: 136,
            code_u8: 0,
            bytes5to8: [0x60, 0, 0, 0],
        }
    };
    let icmp = Icmpv6Header::with_checksum(icmp_ty, src, dst, &body).expect("icmpv6 checksum");
    let ip = Ipv6Header {
        payload_length: (icmp.header_len() + body.len()) as u16,
        next_header: IpNumber::IPV6_ICMP,
        hop_limit: 255,
        source: src,
        destination: dst,
        ..Default::default()
    };
    let mut out = Vec::new();
    out.extend_from_slice(&[0x33, 0x33, 0xff, 0, 0, 2]);
    out.extend_from_slice(&MAC_A);
    out.extend_from_slice(&[0x86, 0xdd]);
    ip.write(&mut out).expect("ipv6 header");
    icmp.write(&mut out).expect("icmpv6 header");
    out.extend_from_slice(&body);
    out
}

/// Ethernet ARP request from A for B.
pub fn arp_request() -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&IP_A);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&IP_B);
    f
}

/// Insert a VLAN tag (`tpid`, `tci`) after the MAC addresses.
pub fn with_vlan(frame: &[u8], tpid: u16, tci: u16) -> Vec<u8> {
    let mut f = frame.to_vec();
    let mut tag = [0u8; 4];
    tag[..2].copy_from_slice(&tpid.to_be_bytes());
    tag[2..].copy_from_slice(&tci.to_be_bytes());
    f.splice(12..12, tag);
    f
}

pub mod netns;
