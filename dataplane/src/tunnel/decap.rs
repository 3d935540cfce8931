//! Geneve decapsulation: validate the outer Ethernet/IPv4/UDP/Geneve headers,
//! record what they said in the packet's tunnel metadata, and strip them.

use super::error::GeneveError;
use super::geneve::{GenevePacket, OptionIter, GENEVE_PORT, PROTO_ETHERNET};
use super::optmap::GeneveOptMap;
use crate::flow::{TUN_FLAG_CSUM, TUN_FLAG_KEY};
use crate::packet::{PacketBuf, TunnelMeta};

/// Decapsulate `pkt` in place: on success it holds the inner Ethernet frame and
/// `pkt.meta.tunnel` describes the tunnel (VNI, endpoints, mapped options).
/// Unknown critical options are an error, as RFC 8926 section 3.5 requires;
/// so is an OAM frame (O bit), which is for the endpoint, not a tenant.
#[inline]
pub fn decap<B: AsRef<[u8]> + AsMut<[u8]>>(
    pkt: &mut PacketBuf<B>,
    map: &GeneveOptMap,
) -> Result<(), GeneveError> {
    let f = pkt.data();
    if f.len() < 14 {
        return Err(GeneveError::Outer("truncated Ethernet"));
    }
    let mut off = 12;
    let mut ty = u16::from_be_bytes([f[12], f[13]]);
    if ty == 0x8100 {
        // One 802.1Q tag on the underlay is tolerated.
        if f.len() < 18 {
            return Err(GeneveError::Outer("truncated VLAN tag"));
        }
        off += 4;
        ty = u16::from_be_bytes([f[16], f[17]]);
    }
    if ty != 0x0800 {
        return Err(GeneveError::Outer("not IPv4"));
    }
    let ip_off = off + 2;
    let ip = f
        .get(ip_off..ip_off + 20)
        .ok_or(GeneveError::Outer("truncated IPv4"))?;
    let ihl = (ip[0] & 0x0f) as usize * 4;
    if ip[0] >> 4 != 4 || ihl < 20 {
        return Err(GeneveError::Outer("bad IPv4 header"));
    }
    if ip[9] != 17 {
        return Err(GeneveError::Outer("not UDP"));
    }
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return Err(GeneveError::Outer("fragmented"));
    }
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let udp_off = ip_off + ihl;
    if total < ihl + 8 || ip_off + total > f.len() {
        return Err(GeneveError::Outer("bad IPv4 total length"));
    }
    let mut t = TunnelMeta {
        src: u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]),
        dst: u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]),
        tos: ip[1],
        ttl: ip[8],
        flags: TUN_FLAG_KEY,
        ..TunnelMeta::default()
    };
    let end = ip_off + total;
    let udp = &f[udp_off..end];
    if u16::from_be_bytes([udp[2], udp[3]]) != GENEVE_PORT {
        return Err(GeneveError::Outer("not UDP port 6081"));
    }
    let udp_len = u16::from_be_bytes([udp[4], udp[5]]) as usize;
    if udp_len < 8 || udp_len > udp.len() {
        return Err(GeneveError::Outer("bad UDP length"));
    }
    if udp[6] != 0 || udp[7] != 0 {
        t.flags |= TUN_FLAG_CSUM;
    }
    let g = GenevePacket::new_checked(&udp[8..udp_len])?;
    if g.version() != 0 {
        return Err(GeneveError::Version(g.version()));
    }
    if g.protocol() != PROTO_ETHERNET {
        return Err(GeneveError::Protocol(g.protocol()));
    }
    if g.oam() {
        // rvs speaks no OAM protocol: the frame ends here, counted, and its
        // payload never reaches a tenant.
        return Err(GeneveError::Oam);
    }
    t.tun_id = g.vni() as u64;
    for o in OptionIter::new(g.options()) {
        let o = o?;
        match map.lookup(o.class, o.typ) {
            Some(m) if o.data.len() == m.len as usize => {
                t.md[m.slot as usize] = u32::from_be_bytes([o.data[0], o.data[1], o.data[2], o.data[3]]);
                t.md_present |= 1 << m.slot;
            }
            _ if o.is_critical() => {
                return Err(GeneveError::CriticalOption {
                    class: o.class,
                    typ: o.typ,
                })
            }
            _ => {}
        }
    }
    let inner_off = udp_off + 8 + g.header_len();
    let inner_len = udp_len - 8 - g.header_len();
    pkt.meta.tunnel = t;
    pkt.pull_front(inner_off);
    pkt.truncate(inner_len);
    Ok(())
}

#[cfg(test)]
mod tests;
