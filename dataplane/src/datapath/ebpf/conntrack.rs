//! The kernel's half of `ct()`: the connections userspace's tracker hands
//! over (established TCP, committed UDP) as entries of the `cts` map, one
//! per direction, which the datapath program answers from (the tracker's
//! `ct_state` for that direction, the mark and label) for TCP segments
//! without SYN, FIN or RST and for UDP. The tracker stays the authority
//! (`conntrack::CtOffload`): it writes and removes the entries, and asks
//! when they were last used before it lets a connection expire. The map is
//! pinned with the others, so established connections keep passing the
//! security groups when the daemon dies, and the next daemon takes them
//! over ([`leftover`]).

use crate::conntrack::{state, CtOffload, OffloadedConn, Tuple};
use rvs_bpf::dp::abi::{CtEntry, CtKey};
use rvs_bpf::dp::TcDatapath;
use std::sync::Arc;

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

fn monotonic_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .unwrap_or_else(|_| nix::sys::time::TimeSpec::new(0, 0));
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

fn half(a: &[u8; 16], lo: bool) -> u64 {
    let r = if lo { &a[8..] } else { &a[..8] };
    u64::from_be_bytes(r.try_into().unwrap_or([0; 8]))
}

fn v4(a: &[u8; 16]) -> u64 {
    u32::from_be_bytes([a[12], a[13], a[14], a[15]]) as u64
}

/// The kernel's key of direction `t` in `zone`: its words as the flow key
/// holds them (`nw_src | nw_dst << 32`, IPv6 halves, `tp_src | tp_dst << 16`).
pub fn ct_key(zone: u16, t: &Tuple) -> CtKey {
    let a = if t.v6 {
        [
            half(&t.src, false),
            half(&t.src, true),
            half(&t.dst, false),
            half(&t.dst, true),
        ]
    } else {
        [v4(&t.src) | v4(&t.dst) << 32, 0, 0, 0]
    };
    CtKey {
        zone,
        proto: t.proto,
        v6: t.v6 as u8,
        ports: t.sport as u32 | (t.dport as u32) << 16,
        a,
    }
}

/// The direction a kernel key stands for.
pub fn tuple_of(k: &CtKey) -> Tuple {
    let addr = |hi: u64, lo: u64| -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&hi.to_be_bytes());
        b[8..].copy_from_slice(&lo.to_be_bytes());
        b
    };
    let (src, dst) = if k.v6 != 0 {
        (addr(k.a[0], k.a[1]), addr(k.a[2], k.a[3]))
    } else {
        let m = |v: u32| addr(0, 0xffff_0000_0000 | v as u64);
        (m(k.a[0] as u32), m((k.a[0] >> 32) as u32))
    };
    Tuple {
        src,
        dst,
        sport: k.ports as u16,
        dport: (k.ports >> 16) as u16,
        proto: k.proto,
        stype: 0,
        dtype: 0,
        v6: k.v6 != 0,
    }
}

/// The tracker's hand-over to the kernel.
pub struct KernelCt {
    dp: Arc<TcDatapath>,
}

impl KernelCt {
    /// Entries in `dp`'s `cts` map.
    pub fn new(dp: Arc<TcDatapath>) -> Self {
        KernelCt { dp }
    }

    fn delete(&self, zone: u16, orig: &Tuple) {
        for t in [*orig, orig.reverse()] {
            if let Err(e) = self.dp.delete_ct(&ct_key(zone, &t)) {
                tracing::warn!(%e, "removing a kernel connection entry");
            }
        }
    }
}

impl CtOffload for KernelCt {
    fn offload(&mut self, c: &OffloadedConn) -> bool {
        // (a tuple that is its own reverse would need one entry for both)
        if !matches!(c.orig.proto, PROTO_TCP | PROTO_UDP) || c.orig == c.orig.reverse() {
            return false;
        }
        let now = monotonic_ns();
        let (est, rpl, new) = (state::EST, state::EST | state::RPL, state::NEW);
        let dirs = if c.replied {
            [(c.orig, est), (c.orig.reverse(), rpl)]
        } else {
            // (the first reply must reach the tracker: no entry that way)
            if let Err(e) = self.dp.delete_ct(&ct_key(c.zone, &c.orig.reverse())) {
                tracing::warn!(%e, "removing a kernel connection entry");
            }
            [(c.orig, new); 2]
        };
        for (t, st) in dirs {
            let e = CtEntry {
                state: st,
                mark: c.mark,
                label: c.label,
                used_ns: now,
                timeout_ns: c.timeout_ms.saturating_mul(1_000_000),
                ..CtEntry::default()
            };
            if let Err(e) = self.dp.set_ct(&ct_key(c.zone, &t), &e) {
                tracing::debug!(%e, "connection stays in userspace");
                self.delete(c.zone, &c.orig);
                return false;
            }
        }
        true
    }

    fn withdraw(&mut self, zone: u16, orig: &Tuple) {
        self.delete(zone, orig);
    }

    fn last_used_ms(&mut self, zone: u16, orig: &Tuple, now_ms: u64) -> Option<u64> {
        let used = [*orig, orig.reverse()]
            .iter()
            .filter_map(|t| self.dp.ct(&ct_key(zone, t)).ok().flatten())
            .map(|e| e.used_ns)
            .max()?;
        let age_ms = monotonic_ns().saturating_sub(used) / 1_000_000;
        Some(now_ms.saturating_sub(age_ms))
    }
}

/// The connections an earlier daemon handed to the kernel (its pinned map),
/// with how long ago each was last used (ms), to be taken over.
pub fn leftover(dp: &TcDatapath) -> Vec<(OffloadedConn, u64)> {
    let all = dp.cts();
    let now = monotonic_ns();
    all.iter()
        .filter(|(_, e)| e.state & state::RPL == 0)
        .map(|(k, e)| {
            let orig = tuple_of(k);
            let rev = ct_key(k.zone, &orig.reverse());
            let used = all
                .iter()
                .find(|(k2, _)| *k2 == rev)
                .map_or(e.used_ns, |(_, r)| r.used_ns.max(e.used_ns));
            let c = OffloadedConn {
                zone: k.zone,
                orig,
                mark: e.mark,
                label: e.label,
                replied: e.state & state::EST != 0,
                timeout_ms: e.timeout_ns / 1_000_000,
            };
            (c, now.saturating_sub(used) / 1_000_000)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::CtPacket;
    use crate::flow::{Field, FlowKey};
    use crate::packet::PacketMeta;
    use crate::testing::{tcp4, udp4, IP_A, IP_B, MAC_A, MAC_B};

    /// The key built from a tracker's tuple is the one the kernel builds
    /// from the packet's flow key, both ways.
    #[test]
    fn a_tuples_kernel_key_is_the_packets() {
        for f in [
            udp4(MAC_A, MAC_B, IP_A, IP_B, 4000, 53, 64),
            tcp4(1000, 22, false, 64),
        ] {
            let (k, layers) = FlowKey::extract(&f, &PacketMeta::default()).unwrap();
            let t = CtPacket::parse(&f, &k, layers).unwrap().tuple;
            let ck = ct_key(7, &t);
            assert_eq!(ck.a[0], k.w[11]);
            assert_eq!(ck.ports as u64, k.w[16] & 0xffff_ffff);
            assert_eq!(ck.proto as u64, k.get(Field::NwProto));
            assert_eq!(tuple_of(&ck), t);
        }
        let mut t = Tuple::v4([198, 18, 0, 1], [198, 18, 0, 2], PROTO_TCP, 1, 2);
        t.v6 = true;
        t.src = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets();
        assert_eq!(tuple_of(&ct_key(1, &t)), t);
    }
}
