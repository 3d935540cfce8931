//! Address translation of tracked connections (`ct(nat)`), as OVS's
//! userspace conntrack and the kernel's nf_nat do it: a committed connection
//! gets its translation once, when it is created (`nat(src=...)` or
//! `nat(dst=...)`, a range to choose from); from then on `ct(nat)` rewrites
//! every packet of it: the originating direction to the translated tuple,
//! the reply direction back to what the originator sent to, and ICMP errors
//! quoting one of its packets (outer address and the quoted header).
//!
//! What is here does no lookup: [`NatAction`] is what a rule asks,
//! [`choices`] the tuples a new connection may get, [`Rewrite`] what a packet
//! must become and [`rewrite`] the bytes (checksums kept right).

use super::packet::{v4_mapped, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use super::Tuple;
use crate::action::checksum::{checksum_update16, internet_checksum};
use crate::flow::Layers;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which address a translation changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NatKind {
    /// The source (`nat(src=...)`: SNAT, masquerading, a floating IP's
    /// outbound half).
    Src,
    /// The destination (`nat(dst=...)`: DNAT, port forwarding, a floating
    /// IP's inbound half).
    Dst,
}

/// `persistent`, `hash`, `random`: how OVS would pick among a range. rvs
/// keeps them (they are part of the rule) and picks the same way for all:
/// a hash of the connection chooses where the search starts.
pub mod flags {
    /// Same address for a client across connections (nf_nat's persistent).
    pub const PERSISTENT: u8 = 1;
    /// Port chosen by a hash.
    pub const HASH: u8 = 2;
    /// Port chosen at random.
    pub const RANDOM: u8 = 4;
}

/// `nat(src=A[-B][:P[-Q]])` or `nat(dst=...)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NatRange {
    /// Source or destination.
    pub kind: NatKind,
    /// First address of the range.
    pub min: IpAddr,
    /// Last address (the same as `min` for one address).
    pub max: IpAddr,
    /// Port range (ICMP: query id); `None`: keep the port if it is free.
    pub ports: Option<(u16, u16)>,
    /// [`flags`] bits.
    pub flags: u8,
}

/// What `ct(...,nat...)` asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NatAction {
    /// Bare `nat`: translate the packets of a connection that has a
    /// translation (a new one gets none).
    Existing,
    /// `nat(src=...)`/`nat(dst=...)`: a connection this commit creates
    /// gets a translation from the range; packets of an existing one are
    /// translated as it was.
    Range(NatRange),
}

impl NatRange {
    fn v6(&self) -> bool {
        self.min.is_ipv6()
    }

    /// Addresses in the range (saturating: a v6 range is searched only so far).
    fn len(&self) -> u64 {
        let d = bits(self.max).wrapping_sub(bits(self.min));
        u64::try_from(d).unwrap_or(u64::MAX).saturating_add(1)
    }

    fn addr(&self, i: u64) -> [u8; 16] {
        let a = bits(self.min).wrapping_add(i as u128);
        match self.min {
            IpAddr::V4(_) => v4_mapped((a as u32).to_be_bytes()),
            IpAddr::V6(_) => a.to_be_bytes(),
        }
    }
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Most candidate tuples a new connection's commit tries before it is
/// refused (bounded: a PMD never stalls searching a crowded range).
pub const MAX_TRIES: usize = 512;

/// Ephemeral ports SNAT moves a source port into when the original one is
/// taken and the rule gives no range (as OVS's userspace conntrack does).
const EPHEMERAL: (u16, u16) = (1024, 65535);

/// The tuples, in order, that a new connection `orig` may be translated to
/// under `r` (at most [`MAX_TRIES`]); `seed` (a hash of the connection)
/// spreads connections over the range. Nothing if the range's family is
/// not the packet's.
pub fn choices(orig: &Tuple, r: &NatRange, seed: u64) -> impl Iterator<Item = Tuple> {
    let usable = r.v6() == orig.v6;
    let has_ports = matches!(orig.proto, PROTO_TCP | PROTO_UDP) || is_icmp_query(orig);
    let n_addr = if usable { r.len() } else { 0 };
    let first_addr = seed % n_addr.max(1);
    let orig = *orig;
    let r = *r;
    let own = match r.kind {
        NatKind::Src => orig.sport,
        NatKind::Dst => orig.dport,
    };
    // Ports to try at each address: the connection's own first (when the
    // range allows it), then the range from a hashed start.
    let span = match (r.ports, r.kind) {
        (Some(p), _) => Some(p),
        (None, NatKind::Src) => Some(EPHEMERAL),
        (None, NatKind::Dst) => None,
    };
    let keep_own = r.ports.is_none_or(|(lo, hi)| (lo..=hi).contains(&own));
    let per_addr: Vec<u16> = if !has_ports {
        vec![own]
    } else {
        let mut v = Vec::new();
        if keep_own {
            v.push(own);
        }
        if let Some((lo, hi)) = span {
            let n = (hi as u64).saturating_sub(lo as u64) + 1;
            let start = (seed >> 16) % n;
            v.extend(
                (0..n.min(MAX_TRIES as u64))
                    .map(|i| lo + ((start + i) % n) as u16)
                    .filter(|p| !keep_own || *p != own),
            );
        }
        v
    };
    (0..n_addr)
        .flat_map(move |i| {
            let addr = r.addr((first_addr + i) % n_addr);
            per_addr.clone().into_iter().map(move |p| (addr, p))
        })
        .take(MAX_TRIES)
        .map(move |(addr, port)| {
            let mut t = orig;
            match r.kind {
                NatKind::Src => {
                    t.src = addr;
                    t.sport = port;
                }
                NatKind::Dst => {
                    t.dst = addr;
                    t.dport = port;
                }
            }
            if is_icmp_query(&orig) {
                // One id for both directions.
                t.sport = port;
                t.dport = port;
            }
            t
        })
}

fn is_icmp_query(t: &Tuple) -> bool {
    matches!((t.proto, t.v6), (PROTO_ICMP, false) | (PROTO_ICMPV6, true)) && (t.stype != 0 || t.dtype != 0)
}

/// What a packet becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rewrite {
    /// A packet of the connection: its addresses and ports (ICMP query id)
    /// become this tuple's.
    Packet(Tuple),
    /// An ICMP error quoting a packet of the connection: one outer address
    /// changes (the one the translation is about in the error's direction),
    /// and the quoted header becomes `inner`.
    IcmpError {
        /// New outer source, if it changes.
        src: Option<[u8; 16]>,
        /// New outer destination, if it changes.
        dst: Option<[u8; 16]>,
        /// The quoted packet's tuple after translation.
        inner: Tuple,
    },
}

/// The rewrite of a packet travelling in direction `reply` of a connection
/// from `orig` that the translation `kind` turned into `xlated` (its
/// originating direction as it leaves), and the `ct_state` NAT bit the
/// packet gets. `error`: the packet is an ICMP error quoting one of the
/// connection's packets.
pub fn plan(orig: &Tuple, xlated: &Tuple, kind: NatKind, reply: bool, error: bool) -> (Rewrite, u8) {
    use super::state::{DNAT, SNAT};
    // What the packet looks like once translated.
    let want = if reply { orig.reverse() } else { *xlated };
    // Which address the translation touches in this direction: the source
    // of an SNAT connection's originating packets and the destination of
    // its replies, and the other way round for DNAT.
    let src_side = (kind == NatKind::Src) != reply;
    let bit = if src_side { SNAT } else { DNAT };
    if !error {
        return (Rewrite::Packet(want), bit);
    }
    let rw = if src_side {
        Rewrite::IcmpError {
            src: Some(want.src),
            dst: None,
            inner: want.reverse(),
        }
    } else {
        Rewrite::IcmpError {
            src: None,
            dst: Some(want.dst),
            inner: want.reverse(),
        }
    };
    (rw, bit)
}

/// A frame the rewrite could not be applied to (it was parsed before, so
/// only a frame changed under the tracker gets here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Apply `rw` to `frame`, whose L3 and L4 start where `layers` says.
/// IPv4 header, TCP/UDP and ICMPv6 checksums are updated for the new
/// addresses and ports; an ICMP error's checksum is computed anew (its
/// quoted header changed).
pub fn rewrite(frame: &mut [u8], layers: Layers, rw: &Rewrite) -> Result<(), Malformed> {
    let (l3, l4) = (layers.l3 as usize, layers.l4 as usize);
    let v6 = frame.get(l3).ok_or(Malformed)? >> 4 == 6;
    let end = l3 + ip_len(frame.get(l3..).ok_or(Malformed)?, v6)?;
    if end > frame.len() || l4 > end {
        return Err(Malformed);
    }
    let proto = if v6 { frame[l3 + 6] } else { frame[l3 + 9] };
    match rw {
        Rewrite::Packet(t) => {
            let csum = l4_csum_at(proto, v6, l4, end);
            set_addrs(frame, l3, v6, Some(t.src), Some(t.dst), csum)?;
            // ICMPv4's checksum covers no addresses, but it covers the id.
            let id_csum = match proto {
                PROTO_ICMP if !v6 && l4 + 4 <= end => Some(l4 + 2),
                _ => csum,
            };
            set_ports(frame, proto, v6, l4, end, t.sport, t.dport, id_csum)
        }
        Rewrite::IcmpError { src, dst, inner } => {
            set_addrs(frame, l3, v6, *src, *dst, None)?;
            // The quoted packet: after the 8-byte ICMP header.
            let q = l4 + 8;
            let qv6 = v6;
            let qhl = if qv6 {
                40
            } else {
                (*frame.get(q).ok_or(Malformed)? & 0x0f) as usize * 4
            };
            if (!qv6 && qhl < 20) || q + qhl + 8 > end {
                return Err(Malformed);
            }
            let qproto = if qv6 { frame[q + 6] } else { frame[q + 9] };
            // The quoted L4 checksum covers data that is not all here: it
            // stays as it was (as the kernel leaves it).
            set_addrs(frame, q, qv6, Some(inner.src), Some(inner.dst), None)?;
            set_ports(frame, qproto, qv6, q + qhl, end, inner.sport, inner.dport, None)?;
            // The error's own checksum, over all of it.
            frame[l4 + 2] = 0;
            frame[l4 + 3] = 0;
            let pseudo = if v6 {
                pseudo_v6(frame, l3, proto, end - l4)
            } else {
                0
            };
            let c = internet_checksum(pseudo, &frame[l4..end]);
            frame[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
            Ok(())
        }
    }
}

fn ip_len(l3: &[u8], v6: bool) -> Result<usize, Malformed> {
    let at = |i: usize| l3.get(i).copied().ok_or(Malformed);
    Ok(if v6 {
        40 + u16::from_be_bytes([at(4)?, at(5)?]) as usize
    } else {
        u16::from_be_bytes([at(2)?, at(3)?]) as usize
    })
}

/// Where the L4 checksum that covers the addresses is: TCP, UDP (unless
/// an IPv4 datagram sent without one), ICMPv6.
fn l4_csum_at(proto: u8, v6: bool, l4: usize, end: usize) -> Option<usize> {
    let at = match proto {
        PROTO_TCP => l4 + 16,
        PROTO_UDP => l4 + 6,
        PROTO_ICMPV6 if v6 => l4 + 2,
        _ => return None,
    };
    (at + 2 <= end).then_some(at)
}

fn rd16(d: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([d[o], d[o + 1]])
}

/// Write `csum` at `at`, with UDP's rule that a computed 0 goes as 0xffff.
fn put_csum(d: &mut [u8], at: usize, mut csum: u16, udp: bool) {
    if udp && csum == 0 {
        csum = 0xffff;
    }
    d[at..at + 2].copy_from_slice(&csum.to_be_bytes());
}

/// Set the source and destination addresses of the IP header at `l3`,
/// updating its checksum (IPv4) and the L4 checksum at `l4c`.
fn set_addrs(
    d: &mut [u8],
    l3: usize,
    v6: bool,
    src: Option<[u8; 16]>,
    dst: Option<[u8; 16]>,
    l4c: Option<usize>,
) -> Result<(), Malformed> {
    let (off, width) = if v6 {
        ([l3 + 8, l3 + 24], 16)
    } else {
        ([l3 + 12, l3 + 16], 4)
    };
    if d.len() < off[1] + width {
        return Err(Malformed);
    }
    let udp_none = l4c.is_some_and(|c| !v6 && d[l3 + 9] == PROTO_UDP && rd16(d, c) == 0);
    let l4c = l4c.filter(|_| !udp_none);
    let udp = if v6 { d[l3 + 6] } else { d[l3 + 9] } == PROTO_UDP;
    for (new, at) in [(src, off[0]), (dst, off[1])] {
        let Some(a) = new else { continue };
        let new = if v6 { &a[..] } else { &a[12..] };
        for w in (0..width).step_by(2) {
            let (old, nw) = (rd16(d, at + w), u16::from_be_bytes([new[w], new[w + 1]]));
            if old == nw {
                continue;
            }
            if !v6 {
                let c = checksum_update16(rd16(d, l3 + 10), old, nw);
                d[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
            }
            if let Some(c) = l4c {
                put_csum(d, c, checksum_update16(rd16(d, c), old, nw), udp);
            }
            d[at + w..at + w + 2].copy_from_slice(&nw.to_be_bytes());
        }
    }
    Ok(())
}

/// Set the ports (TCP, UDP) or the query id (ICMP echo and the like) of the
/// L4 header at `l4`, updating the checksum at `l4c` (the ICMPv4 id's own).
#[allow(clippy::too_many_arguments)]
fn set_ports(
    d: &mut [u8],
    proto: u8,
    v6: bool,
    l4: usize,
    end: usize,
    sport: u16,
    dport: u16,
    l4c: Option<usize>,
) -> Result<(), Malformed> {
    let fields: &[(usize, u16)] = match proto {
        PROTO_TCP | PROTO_UDP => &[(l4, sport), (l4 + 2, dport)],
        PROTO_ICMP | PROTO_ICMPV6 if (proto == PROTO_ICMPV6) == v6 => &[(l4 + 4, sport)],
        _ => &[],
    };
    let udp_none = proto == PROTO_UDP && !v6 && l4c.is_some_and(|c| rd16(d, c) == 0);
    for &(at, new) in fields {
        if at + 2 > end.min(d.len()) {
            return Err(Malformed);
        }
        let old = rd16(d, at);
        if old == new {
            continue;
        }
        if let Some(c) = l4c.filter(|_| !udp_none) {
            put_csum(d, c, checksum_update16(rd16(d, c), old, new), proto == PROTO_UDP);
        }
        d[at..at + 2].copy_from_slice(&new.to_be_bytes());
    }
    Ok(())
}

/// The IPv6 pseudo-header's sum (addresses, length, next header).
fn pseudo_v6(d: &[u8], l3: usize, proto: u8, len: usize) -> u32 {
    let mut sum = 0u32;
    for w in (l3 + 8..l3 + 40).step_by(2) {
        sum += rd16(d, w) as u32;
    }
    sum + (len as u32 >> 16) + (len as u32 & 0xffff) + proto as u32
}

impl fmt::Display for NatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NatKind::Src => "src",
            NatKind::Dst => "dst",
        })
    }
}

fn fmt_ip(f: &mut fmt::Formatter<'_>, a: IpAddr) -> fmt::Result {
    match a {
        IpAddr::V4(a) => write!(f, "{a}"),
        IpAddr::V6(a) => write!(f, "[{a}]"),
    }
}

/// OVS's form: `nat`, `nat(src=10.0.0.1-10.0.0.9:1024-2048,random)`,
/// `nat(dst=[fd00::1]:80)`.
impl fmt::Display for NatAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let NatAction::Range(r) = self else {
            return f.write_str("nat");
        };
        write!(f, "nat({}=", r.kind)?;
        fmt_ip(f, r.min)?;
        if r.max != r.min {
            f.write_str("-")?;
            fmt_ip(f, r.max)?;
        }
        if let Some((lo, hi)) = r.ports {
            write!(f, ":{lo}")?;
            if hi != lo {
                write!(f, "-{hi}")?;
            }
        }
        for (bit, name) in [
            (flags::PERSISTENT, "persistent"),
            (flags::HASH, "hash"),
            (flags::RANDOM, "random"),
        ] {
            if r.flags & bit != 0 {
                write!(f, ",{name}")?;
            }
        }
        f.write_str(")")
    }
}

/// Why `nat(...)` text is wrong.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum NatParseError {
    /// Not `src=`, `dst=` or a flag.
    #[error("invalid key {0:?} in nat (src=, dst=, persistent, hash, random)")]
    Key(String),
    /// Both src and dst.
    #[error("nat may only specify one of src or dst, as in OVS")]
    Both,
    /// Flags without a range.
    #[error("nat flags are allowed only with src or dst, as in OVS")]
    FlagsAlone,
    /// `hash` and `random`.
    #[error("nat: hash and random are not allowed together, as in OVS")]
    HashAndRandom,
    /// A range that does not parse or runs backwards.
    #[error("nat: bad range {0:?} (ADDR[-ADDR][:PORT[-PORT]], IPv6 in brackets)")]
    Range(String),
}

impl std::str::FromStr for NatAction {
    type Err = NatParseError;

    /// `nat` or `nat(...)`'s inside, as ovs-ofctl writes it (`src=...`,
    /// `dst=...`, `persistent`, `hash`, `random`, comma-separated).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut range: Option<NatRange> = None;
        let mut fl = 0u8;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .map_or((part, None), |(k, v)| (k.trim(), Some(v.trim())));
            match (k, v) {
                ("src" | "dst", Some(v)) => {
                    if range.is_some() {
                        return Err(NatParseError::Both);
                    }
                    let kind = if k == "src" { NatKind::Src } else { NatKind::Dst };
                    range = Some(parse_range(kind, v).ok_or_else(|| NatParseError::Range(v.into()))?);
                }
                ("persistent", None) => fl |= flags::PERSISTENT,
                ("hash", None) => fl |= flags::HASH,
                ("random", None) => fl |= flags::RANDOM,
                _ => return Err(NatParseError::Key(part.into())),
            }
        }
        if fl & flags::HASH != 0 && fl & flags::RANDOM != 0 {
            return Err(NatParseError::HashAndRandom);
        }
        match range {
            None if fl != 0 => Err(NatParseError::FlagsAlone),
            None => Ok(NatAction::Existing),
            Some(r) => Ok(NatAction::Range(NatRange { flags: fl, ..r })),
        }
    }
}

/// `A[-B][:P[-Q]]`, IPv6 addresses in brackets; flags are the caller's.
fn parse_range(kind: NatKind, s: &str) -> Option<NatRange> {
    let (addrs, ports) = if s.starts_with('[') {
        // `[a]-[b]:p-q`: the ports follow the last bracket.
        let close = s.rfind(']')?;
        let (a, rest) = s.split_at(close + 1);
        match rest {
            "" => (a, None),
            r => (a, Some(r.strip_prefix(':')?)),
        }
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        }
    };
    let one = |a: &str| -> Option<IpAddr> {
        let a = a.trim();
        match a.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
            Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            None => a.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        }
    };
    let (min, max) = match addrs.split_once("-") {
        Some((a, b)) => (one(a)?, one(b)?),
        None => (one(addrs)?, one(addrs)?),
    };
    if min.is_ipv6() != max.is_ipv6() || bits(max) < bits(min) {
        return None;
    }
    let ports = match ports {
        None => None,
        Some(p) => {
            let (lo, hi) = match p.split_once('-') {
                Some((a, b)) => (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?),
                None => {
                    let v = p.trim().parse::<u16>().ok()?;
                    (v, v)
                }
            };
            if lo == 0 || hi < lo {
                return None;
            }
            Some((lo, hi))
        }
    };
    Some(NatRange {
        kind,
        min,
        max,
        ports,
        flags: 0,
    })
}
