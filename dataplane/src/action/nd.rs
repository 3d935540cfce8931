//! Neighbour discovery rewrites (RFC 4861 NS/NA): the target address and the
//! source/target link-layer address options, with the ICMPv6 checksum
//! updated for each changed word.

use super::checksum::checksum_update16;
use super::l3_of;
use crate::drop::DropReason;
use crate::flow::MacAddr;
use crate::packet::PacketBuf;
use std::fmt;
use std::net::Ipv6Addr;

/// Which ND fields to rewrite (`None` leaves a field alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetNd {
    /// New target address.
    pub target: Option<Ipv6Addr>,
    /// New source link-layer address (only where the option is present).
    pub sll: Option<[u8; 6]>,
    /// New target link-layer address (only where the option is present).
    pub tll: Option<[u8; 6]>,
}

impl fmt::Display for SetNd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(t) = self.target {
            parts.push(format!("target={t}"));
        }
        if let Some(m) = self.sll {
            parts.push(format!("sll={}", MacAddr(m)));
        }
        if let Some(m) = self.tll {
            parts.push(format!("tll={}", MacAddr(m)));
        }
        f.write_str(&parts.join(","))
    }
}

/// Overwrite `d[at..at + new.len()]`, folding each changed 16-bit word into `csum`.
fn rewrite(d: &mut [u8], at: usize, new: &[u8], csum: &mut u16) {
    for (i, w) in new.chunks_exact(2).enumerate() {
        let o = at + 2 * i;
        let old = u16::from_be_bytes([d[o], d[o + 1]]);
        *csum = checksum_update16(*csum, old, u16::from_be_bytes([w[0], w[1]]));
    }
    d[at..at + new.len()].copy_from_slice(new);
}

/// Rewrite the ND fields of an NS/NA whose ICMPv6 header follows the fixed
/// IPv6 header. As in OVS, a link-layer address is rewritten only where its
/// option is present (none is added). Anything that is not an NS/NA is
/// refused (`action_mismatch`, counted).
pub fn set_nd<B: AsRef<[u8]> + AsMut<[u8]>>(pkt: &mut PacketBuf<B>, s: &SetNd) -> Result<(), DropReason> {
    let d = pkt.data_mut();
    let l3 = l3_of(d, 0x86dd)?;
    let icmp = l3 + 40;
    if d.len() < icmp + 24 {
        return Err(DropReason::ActionMismatch);
    }
    if d[l3 + 6] != 58 || d[icmp + 1] != 0 || !matches!(d[icmp], 135 | 136) {
        return Err(DropReason::ActionMismatch);
    }
    let plen = u16::from_be_bytes([d[l3 + 4], d[l3 + 5]]) as usize;
    let end = (l3 + 40 + plen).min(d.len());
    let mut csum = u16::from_be_bytes([d[icmp + 2], d[icmp + 3]]);
    if let Some(t) = s.target {
        rewrite(d, icmp + 8, &t.octets(), &mut csum);
    }
    let mut at = icmp + 24;
    while at + 8 <= end {
        let len = d[at + 1] as usize * 8;
        if len == 0 || at + len > end {
            break;
        }
        let new = match (d[at], len) {
            (1, 8) => s.sll,
            (2, 8) => s.tll,
            _ => None,
        };
        if let Some(m) = new {
            rewrite(d, at + 2, &m, &mut csum);
        }
        at += len;
    }
    d[icmp + 2..icmp + 4].copy_from_slice(&csum.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{nd, udp6};

    #[test]
    fn rewrites_target_and_option_with_a_valid_checksum() {
        let t = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        let mut p = PacketBuf::from_slice(&nd(135, t, &[(1, [2, 0, 0, 0, 0, 1])]));
        let new_t: Ipv6Addr = "2001:db8::77".parse().unwrap();
        let s = SetNd {
            target: Some(new_t),
            sll: Some([2, 0, 0, 0, 0, 0x42]),
            tll: Some([2, 0, 0, 0, 0, 0x43]),
        };
        set_nd(&mut p, &s).unwrap();
        // Rebuilt from scratch with the new values: same bytes (checksum too);
        // no TLL option was added.
        assert_eq!(
            p.data(),
            &nd(135, new_t.octets(), &[(1, [2, 0, 0, 0, 0, 0x42])])[..]
        );
        assert_eq!(
            s.to_string(),
            "target=2001:db8::77,sll=02:00:00:00:00:42,tll=02:00:00:00:00:43"
        );
        let mut p = PacketBuf::from_slice(&udp6(1, 2));
        assert_eq!(set_nd(&mut p, &s), Err(DropReason::ActionMismatch));
    }
}
