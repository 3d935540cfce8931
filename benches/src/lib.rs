//! Fixtures shared by the criterion benchmarks in `benches/` (and tested here, so
//! a benchmark never measures a setup that silently does something else).

use rvs_dataplane::action::Action;
use rvs_dataplane::cache::MegaflowCache;
use rvs_dataplane::flow::{Field, FlowKey, FlowMask};
use rvs_dataplane::packet::PacketBuf;
use rvs_dataplane::pmd::{Upcall, UpcallError, UpcallReply};
use rvs_dataplane::testing::{self, MAC_A, MAC_B};
use rvs_dataplane::tunnel::{GeneveEncap, TunnelHeader};
use std::net::Ipv4Addr;

/// The three frames the extract benchmark parses: 64-byte UDP, TCP, and a
/// Geneve-wrapped 64-byte UDP frame (with one 4-byte option).
pub fn sample_frames() -> [(&'static str, Vec<u8>); 3] {
    let udp = testing::udp4_min();
    let tcp = testing::tcp4(1000, 80, true, 6);
    let mut g = PacketBuf::from_slice(&udp);
    geneve_header(1).push(&mut g, 7).expect("headroom");
    [
        ("udp64", udp),
        ("tcp64", tcp),
        ("geneve_udp64", g.data().to_vec()),
    ]
}

/// A Geneve header between two lab VTEPs, VNI `vni`, one OVN-style option.
pub fn geneve_header(vni: u32) -> TunnelHeader {
    let mut e = GeneveEncap::new(
        MAC_A,
        MAC_B,
        Ipv4Addr::new(198, 18, 0, 1),
        Ipv4Addr::new(198, 18, 0, 2),
        vni,
    );
    e.geneve
        .push_option(0x0102, 0x80, &[0, 0, 0, 1])
        .expect("option fits");
    TunnelHeader::geneve(&e)
}

/// A megaflow cache with `n_subtables` distinct masks (each with 16 flows) and
/// one probe key per subtable that hits a flow there. Probing the keys in turn
/// visits on average half of the subtables, the usual tuple-space-search cost.
pub fn megaflow_with_subtables(n_subtables: usize) -> (MegaflowCache, Vec<FlowKey>) {
    let mut cache = MegaflowCache::new(1 << 16);
    let mut probes = Vec::new();
    for s in 0..n_subtables {
        let mut mask = FlowMask::default();
        mask.set_exact(Field::InPort);
        mask.set_exact(Field::EthType);
        // A different prefix length (and port mask) per subtable: distinct masks.
        let plen = 8 + (s % 25) as u32;
        mask.set(Field::NwDst, (u32::MAX << (32 - plen)) as u64);
        mask.set(Field::TpDst, 0xffff >> (s / 25));
        for f in 0..16u64 {
            let mut k = FlowKey::default();
            k.set(Field::EthType, 0x0800);
            k.set(Field::NwDst, ((s as u64) << 24) | (f << 8));
            k.set(Field::TpDst, 1000 + s as u64);
            cache.insert(&k, mask, vec![Action::Output(1)].into(), 0);
            if f == 0 {
                probes.push(k);
            }
        }
    }
    (cache, probes)
}

/// The slow path of the pipeline benchmark: everything from port 0 goes to
/// port 1, decided on in_port alone.
pub struct ForwardToPort1;

impl Upcall for ForwardToPort1 {
    fn upcall(&mut self, _key: &FlowKey, _pkt: &PacketBuf) -> Result<UpcallReply, UpcallError> {
        let mut m = FlowMask::default();
        m.set_exact(Field::InPort);
        Ok(UpcallReply::new(vec![Action::Output(1)], m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_probe_hits_its_own_subtable() {
        for n in [1, 8, 32] {
            let (cache, probes) = megaflow_with_subtables(n);
            assert_eq!(cache.n_subtables(), n);
            assert_eq!(probes.len(), n);
            for k in &probes {
                assert!(cache.lookup(k).is_some());
            }
        }
    }

    #[test]
    fn sample_frames_parse() {
        for (name, f) in sample_frames() {
            let meta = Default::default();
            assert!(FlowKey::extract(&f, &meta).is_ok(), "{name}");
        }
    }
}
