//! Packets for controllers. Translation turns a `controller` action into a
//! datapath `userspace(cookie)` action whose cookie names a [`PinState`]:
//! what the PACKET_IN says that the packet does not (bridge, table, rule
//! cookie, reason, OpenFlow in_port, registers). The datapath hands each
//! such packet to the upcall handler, which makes it a [`PacketIn`] and
//! gives it to the [`PacketInSink`] the daemon installed (its OpenFlow
//! connections). OVS does the same with its `controller()` userdata.

use crate::ofp::{ControllerSpec, Match, OfField, PinReason, XKey, MAX_LEN_ALL};
use crate::recirc::{Freezable, Frozen, IdTable};
use rvs_dataplane::flow::{Field, FlowKey};

/// What a `controller` action froze when it was translated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PinState {
    /// Bridge, table, OpenFlow in_port, registers and `metadata`.
    pub at: Frozen,
    /// The cookie of the rule whose action it was.
    pub cookie: u64,
    /// The action's arguments (its reason already resolved).
    pub spec: ControllerSpec,
    /// The PACKET_IN's match but for the packet's tunnel: in_port, and the
    /// registers and `metadata` that are not zero (derived from `at`, made
    /// once here rather than for every packet).
    pub matches: Match,
}

impl PinState {
    /// The state of a `controller` action with `spec` in rule `cookie`,
    /// translating at `at`.
    pub fn new(at: Frozen, cookie: u64, spec: ControllerSpec) -> PinState {
        let mut matches = Match::default();
        matches.set_exact(OfField::InPort, at.in_port as u128);
        let mut pipeline = XKey::default();
        at.restore(&mut pipeline);
        for f in OfField::all().filter(|f| matches!(f, OfField::Reg(_) | OfField::Metadata)) {
            let v = f.get(&pipeline);
            if v != 0 {
                matches.set_exact(f, v);
            }
        }
        PinState {
            at,
            cookie,
            spec,
            matches,
        }
    }
}

impl Freezable for PinState {
    fn eat(&self, eat: &mut dyn FnMut(&[u8])) {
        self.at.eat(eat);
        eat(&self.cookie.to_le_bytes());
        eat(&self.spec.max_len.to_le_bytes());
        eat(&self.spec.id.to_le_bytes());
        eat(&[self.spec.reason as u8]);
    }
}

/// Packet-in cookies in use.
pub type PinTable = IdTable<PinState>;

/// One PACKET_IN for the controllers of a bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketIn {
    /// The bridge.
    pub bridge: String,
    /// Why.
    pub reason: PinReason,
    /// Table of the rule that sent it.
    pub table: u8,
    /// That rule's cookie.
    pub cookie: u64,
    /// Connections with this controller id get it.
    pub controller_id: u16,
    /// The packet's whole length.
    pub total_len: usize,
    /// Pipeline fields: in_port, and the tunnel fields, registers and
    /// `metadata` that are not zero (as OVS sends them).
    pub matches: Match,
    /// The packet, cut to the action's `max_len`.
    pub data: Vec<u8>,
}

impl PacketIn {
    /// The PACKET_IN for `frame` (whose datapath key is `key`) sent by the
    /// action that froze `st`.
    pub fn new(st: &PinState, key: &FlowKey, frame: &[u8]) -> PacketIn {
        let mut matches = st.matches;
        // The tunnel the packet came through (the key's: the pipeline
        // cannot change where a packet came from).
        if key.get(Field::TunDst) != 0 {
            for (of, dp) in [
                (OfField::TunId, Field::TunId),
                (OfField::TunSrc, Field::TunSrc),
                (OfField::TunDst, Field::TunDst),
            ] {
                matches.set_exact(of, key.get(dp) as u128);
            }
        }
        let keep = match st.spec.max_len {
            MAX_LEN_ALL => frame.len(),
            n => frame.len().min(n as usize),
        };
        PacketIn {
            bridge: st.at.bridge.clone(),
            reason: st.spec.reason,
            table: st.at.table,
            cookie: st.cookie,
            controller_id: st.spec.id,
            total_len: frame.len(),
            matches,
            data: frame[..keep].to_vec(),
        }
    }
}

/// Where packet-ins go (the daemon's OpenFlow connections). Called from
/// datapath threads, once per batch, without the switch's lock held.
pub trait PacketInSink: Send + Sync {
    /// Queue `pins` for their bridges' connections; returns how many no
    /// connection took (none connected, or every queue full).
    fn deliver(&self, pins: Vec<PacketIn>) -> usize;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ofp::REG_WORD;

    fn state(max_len: u16) -> PinState {
        let mut k = XKey::default();
        k.w[REG_WORD] = 0x2a;
        PinState::new(
            Frozen::of("br0", 3, 7, &k),
            0x99,
            ControllerSpec {
                max_len,
                reason: PinReason::NoMatch,
                id: 0,
            },
        )
    }

    #[test]
    fn a_packet_in_carries_the_frozen_pipeline_and_the_cut_packet() {
        let frame: Vec<u8> = (0..200u8).collect();
        let pin = PacketIn::new(&state(64), &FlowKey::default(), &frame);
        assert_eq!(pin.data, frame[..64]);
        assert_eq!(pin.total_len, 200);
        assert_eq!((pin.table, pin.cookie, pin.reason), (3, 0x99, PinReason::NoMatch));
        assert!(pin.matches.is_exact(OfField::InPort, 7));
        assert!(pin.matches.is_exact(OfField::Reg(0), 0x2a));
        assert!(!pin.matches.has(OfField::Reg(1)));
        assert!(!pin.matches.has(OfField::TunId));
        let all = PacketIn::new(&state(MAX_LEN_ALL), &FlowKey::default(), &frame);
        assert_eq!(all.data.len(), 200);
    }

    #[test]
    fn states_that_differ_get_different_cookies() {
        let mut t = PinTable::default();
        let (a, _) = t.freeze(state(64));
        let (b, _) = t.freeze(state(128));
        let (c, _) = t.freeze(state(64));
        assert_ne!(a, b);
        assert_eq!(a, c);
        assert_eq!(t.thaw(b).unwrap().spec.max_len, 128);
    }
}
