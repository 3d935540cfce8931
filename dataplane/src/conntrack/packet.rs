//! What the connection tracker reads of a packet: the direction's tuple and
//! the L4 facts its state machines need, taken from a frame the flow
//! extractor has already validated (lengths, header sizes). Nothing here
//! panics on a short or lying frame: anything it cannot read makes the packet
//! untrackable (`+trk+inv`).

use crate::flow::{Field, FlowKey, Layers, FRAG_ANY};
use etherparse::{TcpHeaderSlice, TcpOptionElement};

pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;
pub(crate) const PROTO_ICMP: u8 = 1;
pub(crate) const PROTO_ICMPV6: u8 = 58;

/// One direction of a connection: addresses (IPv4 as v4-mapped IPv6),
/// ports (ICMP: the query id in both), protocol, and for ICMP queries the
/// type sent this way and the type that answers it (OVS keys ICMP the same
/// way, so a request never matches another request's reply direction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Source port, or ICMP id.
    pub sport: u16,
    /// Destination port, or ICMP id.
    pub dport: u16,
    /// IP protocol.
    pub proto: u8,
    /// ICMP type of this direction (0 for other protocols).
    pub stype: u8,
    /// ICMP type of the answering direction (0 for other protocols).
    pub dtype: u8,
    /// IPv6 (else IPv4).
    pub v6: bool,
}

impl Tuple {
    /// The other direction.
    pub fn reverse(&self) -> Tuple {
        Tuple {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
            stype: self.dtype,
            dtype: self.stype,
            v6: self.v6,
        }
    }

    /// An IPv4 tuple (tests, benchmarks, fixtures).
    pub fn v4(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16) -> Tuple {
        Tuple {
            src: v4_mapped(src),
            dst: v4_mapped(dst),
            sport,
            dport,
            proto,
            stype: 0,
            dtype: 0,
            v6: false,
        }
    }
}

pub(crate) fn v4_mapped(a: [u8; 4]) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[10] = 0xff;
    m[11] = 0xff;
    m[12..].copy_from_slice(&a);
    m
}

/// The TCP facts the window tracker needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSegment {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20).
    pub flags: u16,
    /// Window field (unscaled).
    pub win: u16,
    /// The window-scale option, if the segment carries one.
    pub wscale: Option<u8>,
    /// Payload length.
    pub len: u32,
}

/// What kind of packet this is to the tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    /// A TCP segment.
    Tcp(TcpSegment),
    /// An ICMP query (echo and the like); `request` if it may start one.
    IcmpQuery {
        /// A request (echo, timestamp, information): may create a connection.
        request: bool,
    },
    /// An ICMP error quoting a packet of another connection (its tuple as
    /// the quoted packet travelled).
    IcmpError(Tuple),
    /// UDP and any other IP protocol: tracked by addresses (and ports).
    Other,
}

/// A packet as the tracker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtPacket {
    /// This packet's direction.
    pub tuple: Tuple,
    /// Its L4 facts.
    pub l4: L4,
}

/// Why a packet cannot be tracked (it gets `+trk+inv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Untrackable {
    /// Not IPv4 or IPv6.
    NotIp,
    /// An IP fragment (no reassembly yet: OVS reassembles first).
    Fragment,
    /// An L4 header the tracker cannot read, or an ICMP type it does not
    /// track (ICMPv6 neighbour discovery, router messages, ...).
    L4,
}

impl CtPacket {
    /// Read `frame`, whose key and layers the flow extractor produced.
    pub fn parse(frame: &[u8], key: &FlowKey, layers: Layers) -> Result<CtPacket, Untrackable> {
        let v6 = match key.get(Field::EthType) {
            0x0800 => false,
            0x86dd => true,
            _ => return Err(Untrackable::NotIp),
        };
        if key.get(Field::NwFrag) as u8 & FRAG_ANY != 0 {
            return Err(Untrackable::Fragment);
        }
        if layers.l4 == 0 {
            return Err(Untrackable::L4);
        }
        let l3 = frame.get(layers.l3 as usize..).ok_or(Untrackable::L4)?;
        let end = ip_end(l3, v6).ok_or(Untrackable::L4)? + layers.l3 as usize;
        let l4 = frame.get(layers.l4 as usize..end).ok_or(Untrackable::L4)?;
        let (src, dst) = if v6 {
            (
                ((key.get(Field::Ipv6SrcHi) as u128) << 64 | key.get(Field::Ipv6SrcLo) as u128).to_be_bytes(),
                ((key.get(Field::Ipv6DstHi) as u128) << 64 | key.get(Field::Ipv6DstLo) as u128).to_be_bytes(),
            )
        } else {
            (
                v4_mapped((key.get(Field::NwSrc) as u32).to_be_bytes()),
                v4_mapped((key.get(Field::NwDst) as u32).to_be_bytes()),
            )
        };
        let proto = key.get(Field::NwProto) as u8;
        parse_l4(src, dst, proto, v6, l4, true)
    }
}

/// Where the IP packet starting at `l3` ends (relative to `l3`).
fn ip_end(l3: &[u8], v6: bool) -> Option<usize> {
    if v6 {
        let plen = u16::from_be_bytes([*l3.get(4)?, *l3.get(5)?]) as usize;
        Some(40 + plen)
    } else {
        Some(u16::from_be_bytes([*l3.get(2)?, *l3.get(3)?]) as usize)
    }
}

/// `l4` is the L4 header and payload. `outer` is false for the packet quoted
/// inside an ICMP error: only its first 8 bytes are there (ports, ICMP id),
/// and an error quoting an error is not followed.
fn parse_l4(
    src: [u8; 16],
    dst: [u8; 16],
    proto: u8,
    v6: bool,
    l4: &[u8],
    outer: bool,
) -> Result<CtPacket, Untrackable> {
    let mut t = Tuple {
        src,
        dst,
        sport: 0,
        dport: 0,
        proto,
        stype: 0,
        dtype: 0,
        v6,
    };
    let be16 = |i: usize| -> Result<u16, Untrackable> {
        Ok(u16::from_be_bytes([
            *l4.get(i).ok_or(Untrackable::L4)?,
            *l4.get(i + 1).ok_or(Untrackable::L4)?,
        ]))
    };
    let l4kind = match (proto, v6) {
        (PROTO_TCP, _) => {
            t.sport = be16(0)?;
            t.dport = be16(2)?;
            if outer {
                L4::Tcp(tcp_segment(l4)?)
            } else {
                L4::Other
            }
        }
        (PROTO_UDP, _) => {
            t.sport = be16(0)?;
            t.dport = be16(2)?;
            L4::Other
        }
        (PROTO_ICMP, false) | (PROTO_ICMPV6, true) => {
            let ty = *l4.first().ok_or(Untrackable::L4)?;
            if let Some((reply, request)) = icmp_query(ty, v6) {
                let id = be16(4)?;
                t.sport = id;
                t.dport = id;
                t.stype = ty;
                t.dtype = reply;
                L4::IcmpQuery { request }
            } else if outer && icmp_error(ty, v6) {
                // The quoted packet starts after the 8-byte ICMP header.
                let inner = l4.get(8..).ok_or(Untrackable::L4)?;
                L4::IcmpError(quoted(inner, v6)?)
            } else {
                return Err(Untrackable::L4);
            }
        }
        _ => L4::Other,
    };
    Ok(CtPacket { tuple: t, l4: l4kind })
}

/// The tuple of the packet an ICMP error quotes (its IP header and at least
/// the first 8 bytes of its L4 header, RFC 792 / RFC 4443).
fn quoted(ip: &[u8], v6: bool) -> Result<Tuple, Untrackable> {
    let (src, dst, proto, l4) = if v6 {
        if ip.len() < 40 || ip[0] >> 4 != 6 {
            return Err(Untrackable::L4);
        }
        let a = |o: usize| -> [u8; 16] {
            let mut x = [0u8; 16];
            x.copy_from_slice(&ip[o..o + 16]);
            x
        };
        // Extension headers in a quoted packet are not followed (OVS does
        // not either): such an error is untrackable.
        (a(8), a(24), ip[6], &ip[40..])
    } else {
        let ihl = (*ip.first().ok_or(Untrackable::L4)? & 0x0f) as usize * 4;
        if ip[0] >> 4 != 4 || ihl < 20 || ip.len() < ihl {
            return Err(Untrackable::L4);
        }
        // A quoted fragment other than the first has no ports to match.
        if u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0 {
            return Err(Untrackable::L4);
        }
        let a = |o: usize| v4_mapped([ip[o], ip[o + 1], ip[o + 2], ip[o + 3]]);
        (a(12), a(16), ip[9], &ip[ihl..])
    };
    if l4.len() < 8 {
        return Err(Untrackable::L4);
    }
    Ok(parse_l4(src, dst, proto, v6, l4, false)?.tuple)
}

/// For an ICMP query type: (the type that answers it, may it start a
/// connection). ICMPv4 echo/timestamp/information, ICMPv6 echo.
fn icmp_query(ty: u8, v6: bool) -> Option<(u8, bool)> {
    Some(match (ty, v6) {
        (8, false) => (0, true),
        (0, false) => (8, false),
        (13, false) => (14, true),
        (14, false) => (13, false),
        (15, false) => (16, true),
        (16, false) => (15, false),
        (128, true) => (129, true),
        (129, true) => (128, false),
        _ => return None,
    })
}

/// ICMP error types: unreachable, source quench, redirect, time exceeded,
/// parameter problem; ICMPv6 unreachable, too big, time exceeded, parameter.
fn icmp_error(ty: u8, v6: bool) -> bool {
    if v6 {
        matches!(ty, 1..=4)
    } else {
        matches!(ty, 3 | 4 | 5 | 11 | 12)
    }
}

fn tcp_segment(l4: &[u8]) -> Result<TcpSegment, Untrackable> {
    let t = TcpHeaderSlice::from_slice(l4).map_err(|_| Untrackable::L4)?;
    let s = t.slice();
    let mut wscale = None;
    for o in t.options_iterator() {
        match o {
            Ok(TcpOptionElement::WindowScale(w)) => wscale = Some(w),
            Ok(_) => {}
            // A malformed option list ends the walk (pf does the same).
            Err(_) => break,
        }
    }
    Ok(TcpSegment {
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        flags: (((s[12] & 0x0f) as u16) << 8) | s[13] as u16,
        win: t.window_size(),
        wscale,
        len: (l4.len() - s.len()) as u32,
    })
}
