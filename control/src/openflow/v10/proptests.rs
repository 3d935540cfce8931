//! Property tests of the 1.0 codec: matches and actions survive the wire
//! (the action list's wire form is a fixpoint: 1.0 spells some actions
//! differently, as OVS does), and no bytes make a 1.0 session panic or
//! answer without bound.

use super::matches::{decode_match10, decode_nx_match, encode_match10, encode_nx_match};
use super::messages::{decode, Formats};
use super::{nxt, OFP10};
use crate::openflow::actions::{decode_actions10, encode_actions, Ctx};
use crate::openflow::error::OfpError;
use crate::openflow::proptests::{any_rule, drain_bounded, Fake};
use crate::openflow::session::Session;
use crate::openflow::wire::{Put, Reader, NX_VENDOR};
use proptest::prelude::*;

/// An NXT_FLOW_MOD adding `r` as ovs-ofctl sends it (table in the
/// command's high byte).
fn nxt_flow_mod(r: &crate::ofp::Rule) -> Option<Vec<u8>> {
    let mut b = vec![OFP10, 4, 0, 0, 0, 0, 0, 1];
    b.put_u32(NX_VENDOR);
    b.put_u32(nxt::FLOW_MOD);
    b.put_u64(r.cookie);
    b.put_u16((r.table as u16) << 8);
    b.put_u16(r.idle_timeout);
    b.put_u16(r.hard_timeout);
    b.put_u16(r.priority);
    b.put_u32(u32::MAX);
    b.put_u16(0xffff);
    b.put_u16(0);
    let len_at = b.len();
    b.put_u16(0);
    b.put_zeros(6);
    let n = encode_nx_match(&mut b, &r.matches).ok()?;
    b.set_u16(len_at, n);
    encode_actions(&mut b, &r.actions, &Ctx::of10(&r.matches)).ok()?;
    let len = b.len() as u16;
    b.set_u16(2, len);
    Some(b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn matches_and_actions_survive_the_one_zero_wire(r in any_rule()) {
        let mut b = Vec::new();
        let n = encode_nx_match(&mut b, &r.matches).unwrap();
        let mut rd = Reader::new(&b, OfpError::BAD_REQUEST_LEN);
        prop_assert_eq!(decode_nx_match(&mut rd, n as usize), Ok((r.matches, None)));
        let mut b = Vec::new();
        if encode_match10(&mut b, &r.matches).is_ok() {
            let mut rd = Reader::new(&b, OfpError::BAD_REQUEST_LEN);
            prop_assert_eq!(decode_match10(&mut rd), Ok(r.matches));
        }
        let ctx = Ctx::of10(&r.matches);
        let mut b = Vec::new();
        if encode_actions(&mut b, &r.actions, &ctx).is_ok() {
            let mut rd = Reader::new(&b, OfpError::BAD_ACTION_LEN);
            let back = decode_actions10(&mut rd).unwrap_or_else(|e| panic!("{r}: {e}"));
            let mut again = Vec::new();
            encode_actions(&mut again, &back, &ctx).unwrap();
            prop_assert_eq!(again, b, "{}", r);
        }
        // And a whole NXT_FLOW_MOD adds the rule (as 1.0 says it).
        if let Some(m) = nxt_flow_mod(&r) {
            let f = Formats { table_id: true, ..Formats::default() };
            let (_, msg) = decode(&m, &f).unwrap_or_else(|(_, e)| panic!("{r}: {e}"));
            let super::In10::Msg(crate::openflow::Message::FlowMod(fm)) = msg else {
                panic!("{msg:?}")
            };
            prop_assert_eq!(fm.fm.rule.matches, r.matches);
            prop_assert_eq!((fm.fm.rule.table, fm.fm.rule.priority, fm.fm.rule.cookie), (r.table, r.priority, r.cookie));
        }
    }

    #[test]
    fn arbitrary_one_zero_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let mut b = bytes;
        if b.len() >= 8 {
            b[0] = OFP10;
        }
        let _ = decode(&b, &Formats::default());
        let _ = decode(&b, &Formats { nxm: true, table_id: true, nxt_packet_in: true });
    }

    #[test]
    fn a_one_zero_session_survives_anything_with_bounded_output(
        msgs in proptest::collection::vec((0u8..24, proptest::collection::vec(any::<u8>(), 0..300)), 0..12),
        mutated in proptest::collection::vec((any_rule(), any::<u16>(), any::<u8>()), 0..6),
    ) {
        let mut s = Session::new(1);
        let mut sw = Fake { rules: 0 };
        s.receive(&[OFP10, 0, 0, 8, 0, 0, 0, 1], &mut sw);
        prop_assert_eq!(s.version(), OFP10);
        // Well-framed 1.0 messages of every type with random bodies, Nicira
        // ones among them, and flow mods with a byte changed.
        let mut fed = 8;
        for (typ, body) in msgs {
            let mut b = vec![OFP10, typ, 0, 0, 0, 0, 0, 2];
            if typ == 4 || typ == 16 {
                b.put_u32(NX_VENDOR);
            }
            b.extend_from_slice(&body);
            let n = b.len() as u16;
            b.set_u16(2, n);
            fed += b.len();
            s.receive(&b, &mut sw);
        }
        for (r, at, v) in mutated {
            let Some(mut b) = nxt_flow_mod(&r) else { continue };
            let i = 4 + at as usize % (b.len() - 4);
            b[i] ^= v;
            fed += b.len();
            s.receive(&b, &mut sw);
        }
        drain_bounded(&mut s, &mut sw, fed)?;
    }
}
