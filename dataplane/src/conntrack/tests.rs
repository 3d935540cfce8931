use super::state::*;
use super::*;
use crate::flow::FlowKey;
use crate::packet::PacketMeta;
use crate::testing::{self, IP_A, IP_B, MAC_A, MAC_B};
use etherparse::{Icmpv4Type, PacketBuilder, TcpOptionElement};
use proptest::prelude::*;

const FIN: u16 = 0x01;
const SYN: u16 = 0x02;
const RST: u16 = 0x04;
const ACK: u16 = 0x10;

fn tcp_tuple() -> Tuple {
    Tuple::v4(IP_A, IP_B, packet::PROTO_TCP, 40000, 22)
}

/// A TCP segment from A (or from B when `reply`).
fn seg(reply: bool, seq: u32, ack: u32, flags: u16, win: u16, len: u32) -> CtPacket {
    seg_ws(reply, seq, ack, flags, win, len, None)
}

fn seg_ws(reply: bool, seq: u32, ack: u32, flags: u16, win: u16, len: u32, wscale: Option<u8>) -> CtPacket {
    let t = tcp_tuple();
    CtPacket {
        tuple: if reply { t.reverse() } else { t },
        l4: L4::Tcp(TcpSegment {
            seq,
            ack,
            flags,
            win,
            wscale,
            len,
        }),
    }
}

fn udp(reply: bool) -> CtPacket {
    let t = Tuple::v4(IP_A, IP_B, packet::PROTO_UDP, 5000, 53);
    CtPacket {
        tuple: if reply { t.reverse() } else { t },
        l4: L4::Other,
    }
}

const COMMIT: CtAction = CtAction {
    zone: 0,
    commit: true,
    mark: None,
    label: None,
    nat: None,
};
const LOOKUP: CtAction = CtAction {
    zone: 0,
    commit: false,
    mark: None,
    label: None,
    nat: None,
};

fn run(ct: &mut Conntrack, p: &CtPacket, a: &CtAction, now: u64) -> u8 {
    ct.execute(Ok(p), a, now).expect("not refused").state
}

/// A full handshake from A (ISN 1000) to B (ISN 5000), windows 65535.
fn handshake(ct: &mut Conntrack) {
    assert_eq!(
        run(ct, &seg(false, 1000, 0, SYN, 65535, 0), &COMMIT, 0),
        TRK | NEW
    );
    assert_eq!(
        run(ct, &seg(true, 5000, 1001, SYN | ACK, 65535, 0), &LOOKUP, 1),
        TRK | EST | RPL
    );
    assert_eq!(
        run(ct, &seg(false, 1001, 5001, ACK, 65535, 0), &LOOKUP, 2),
        TRK | EST
    );
}

#[test]
fn tcp_handshake_data_and_close() {
    let mut ct = Conntrack::new(CtConfig::default());
    handshake(&mut ct);
    assert_eq!(
        run(&mut ct, &seg(false, 1001, 5001, ACK, 65535, 100), &LOOKUP, 3),
        TRK | EST
    );
    assert_eq!(
        run(&mut ct, &seg(true, 5001, 1101, ACK, 65535, 1400), &LOOKUP, 4),
        TRK | EST | RPL
    );
    let d = ct.dump(5);
    assert_eq!(
        d[0].tcp_state,
        Some((TcpState::Established, TcpState::Established))
    );
    assert_eq!(d[0].expires_in_ms, Timeout::TcpEstablished.default_ms() - 1);
    // FIN from A, acked; FIN from B, acked.
    assert_eq!(
        run(&mut ct, &seg(false, 1101, 6401, FIN | ACK, 65535, 0), &LOOKUP, 6),
        TRK | EST
    );
    assert_eq!(
        run(&mut ct, &seg(true, 6401, 1102, FIN | ACK, 65535, 0), &LOOKUP, 7),
        TRK | EST | RPL
    );
    assert_eq!(
        run(&mut ct, &seg(false, 1102, 6402, ACK, 65535, 0), &LOOKUP, 8),
        TRK | EST
    );
    let d = ct.dump(9);
    assert_eq!(d[0].tcp_state, Some((TcpState::FinWait2, TcpState::FinWait2)));
    assert_eq!(d[0].expires_in_ms, Timeout::TcpClosed.default_ms() - 1);
    // A new SYN on the closed connection starts a new one.
    assert_eq!(
        run(&mut ct, &seg(false, 90000, 0, SYN, 65535, 0), &COMMIT, 10),
        TRK | NEW
    );
    assert_eq!(ct.counters().reopened, 1);
    assert_eq!(ct.len(), 1);
}

#[test]
fn segments_outside_the_window_are_invalid_and_change_nothing() {
    let mut ct = Conntrack::new(CtConfig::default());
    handshake(&mut ct);
    let before = ct.dump(3);
    // Far beyond what B allows A to send.
    assert_eq!(
        run(
            &mut ct,
            &seg(false, 1001 + 400_000, 5001, ACK, 65535, 10),
            &LOOKUP,
            3
        ),
        TRK | INV
    );
    // Acknowledging data B never sent.
    assert_eq!(
        run(
            &mut ct,
            &seg(false, 1001, 5001 + 300_000, ACK, 65535, 0),
            &LOOKUP,
            3
        ),
        TRK | INV
    );
    // A reset with a sequence number that is not the expected one.
    assert_eq!(
        run(
            &mut ct,
            &seg(true, 5001 + 30_000, 1001, RST | ACK, 0, 0),
            &LOOKUP,
            3
        ),
        TRK | INV
    );
    assert_eq!(ct.dump(3), before);
    assert_eq!(ct.counters().invalid, 3);
}

#[test]
fn impossible_flags_and_syn_ack_do_not_start_connections() {
    let mut ct = Conntrack::new(CtConfig::default());
    for flags in [SYN | FIN, SYN | RST, SYN | ACK, 0, FIN] {
        assert_eq!(
            run(&mut ct, &seg(false, 1, 0, flags, 100, 0), &COMMIT, 0),
            TRK | INV,
            "{flags:#x}"
        );
    }
    assert!(ct.is_empty());
    // Mid-stream pick-up (a plain ACK) may start one, as in OVS.
    assert_eq!(
        run(&mut ct, &seg(false, 1, 1, ACK, 100, 0), &COMMIT, 0),
        TRK | NEW
    );
}

#[test]
fn window_scaling_is_tracked() {
    let mut ct = Conntrack::new(CtConfig::default());
    run(&mut ct, &seg_ws(false, 0, 0, SYN, 64240, 0, Some(7)), &COMMIT, 0);
    run(
        &mut ct,
        &seg_ws(true, 0, 1, SYN | ACK, 65160, 0, Some(7)),
        &LOOKUP,
        0,
    );
    run(&mut ct, &seg(false, 1, 1, ACK, 502, 0), &LOOKUP, 0);
    // B may now send 502 << 7 = 64256 bytes ahead of A's ack: a segment
    // 60000 bytes ahead is in the window only with scaling.
    assert_eq!(
        run(&mut ct, &seg(true, 60_001, 1, ACK, 509, 1000), &LOOKUP, 0),
        TRK | EST | RPL
    );
    assert_eq!(
        run(&mut ct, &seg(true, 200_000, 1, ACK, 509, 1000), &LOOKUP, 0),
        TRK | INV
    );
}

#[test]
fn udp_is_new_until_answered_then_established() {
    let mut ct = Conntrack::new(CtConfig::default());
    assert_eq!(run(&mut ct, &udp(false), &COMMIT, 0), TRK | NEW);
    assert_eq!(run(&mut ct, &udp(false), &LOOKUP, 1), TRK | NEW);
    assert_eq!(run(&mut ct, &udp(true), &LOOKUP, 2), TRK | EST | RPL);
    assert_eq!(run(&mut ct, &udp(false), &LOOKUP, 3), TRK | EST);
    // Bidirectional UDP lives 30 s without traffic, then a packet is new again.
    let t = Timeout::OtherBidir.default_ms();
    assert_eq!(run(&mut ct, &udp(false), &LOOKUP, 3 + t - 1), TRK | EST);
    assert_eq!(run(&mut ct, &udp(true), &LOOKUP, 3 + 2 * t), TRK | NEW);
    assert_eq!(ct.counters().expired, 1);
}

#[test]
fn lookups_without_commit_create_nothing() {
    let mut ct = Conntrack::new(CtConfig::default());
    assert_eq!(run(&mut ct, &udp(false), &LOOKUP, 0), TRK | NEW);
    assert_eq!(run(&mut ct, &udp(true), &LOOKUP, 0), TRK | NEW);
    assert!(ct.is_empty());
}

fn frame_tracked(f: &[u8]) -> Result<CtPacket, Untrackable> {
    let (k, l) = FlowKey::extract(f, &PacketMeta::default()).expect("valid frame");
    CtPacket::parse(f, &k, l)
}

fn icmp_echo(reply: bool, id: u16) -> Vec<u8> {
    let (s, d, sm, dm) = if reply {
        (IP_B, IP_A, MAC_B, MAC_A)
    } else {
        (IP_A, IP_B, MAC_A, MAC_B)
    };
    let b = PacketBuilder::ethernet2(sm, dm).ipv4(s, d, 64);
    let b = if reply {
        b.icmpv4_echo_reply(id, 1)
    } else {
        b.icmpv4_echo_request(id, 1)
    };
    let mut out = Vec::new();
    b.write(&mut out, &[0u8; 8]).expect("icmp");
    out
}

#[test]
fn icmp_echo_is_answered_by_its_reply_only() {
    let mut ct = Conntrack::new(CtConfig::default());
    let req = frame_tracked(&icmp_echo(false, 7)).unwrap();
    assert_eq!(run(&mut ct, &req, &COMMIT, 0), TRK | NEW);
    let rep = frame_tracked(&icmp_echo(true, 7)).unwrap();
    assert_eq!(run(&mut ct, &rep, &LOOKUP, 1), TRK | EST | RPL);
    // B's own request with the same id is another connection, not a reply.
    let mut b_req = req;
    b_req.tuple = Tuple {
        src: req.tuple.dst,
        dst: req.tuple.src,
        ..req.tuple
    };
    assert_eq!(run(&mut ct, &b_req, &LOOKUP, 1), TRK | NEW);
    // A reply nobody asked for cannot start anything.
    let stray = frame_tracked(&icmp_echo(true, 99)).unwrap();
    assert_eq!(run(&mut ct, &stray, &COMMIT, 1), TRK | INV);
}

/// An ICMP port unreachable from B to A quoting `quoted` (an IPv4 packet).
fn icmp_unreachable(quoted: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_B, MAC_A)
        .ipv4(IP_B, IP_A, 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port,
        ));
    let mut out = Vec::new();
    b.write(&mut out, quoted).expect("icmp error");
    out
}

#[test]
fn icmp_errors_are_related_to_the_connection_they_quote() {
    let mut ct = Conntrack::new(CtConfig::default());
    let f = testing::udp4(MAC_A, MAC_B, IP_A, IP_B, 5000, 53, 10);
    let p = frame_tracked(&f).unwrap();
    run(&mut ct, &p, &COMMIT, 0);
    // The error quotes A's packet (IP header + first 8 bytes of UDP).
    let err = frame_tracked(&icmp_unreachable(&f[14..14 + 28])).unwrap();
    assert!(matches!(err.l4, L4::IcmpError(_)));
    assert_eq!(run(&mut ct, &err, &COMMIT, 1), TRK | REL | RPL);
    // Quoting a connection that does not exist: invalid, and not created.
    let g = testing::udp4(MAC_A, MAC_B, IP_A, IP_B, 5001, 53, 10);
    let err2 = frame_tracked(&icmp_unreachable(&g[14..14 + 28])).unwrap();
    assert_eq!(run(&mut ct, &err2, &COMMIT, 1), TRK | INV);
    assert_eq!(ct.len(), 1);
    // A quote cut short is untrackable, never a panic.
    let short = frame_tracked(&icmp_unreachable(&f[14..14 + 24]));
    assert_eq!(short, Err(Untrackable::L4));
}

#[test]
fn zones_are_isolated() {
    let mut ct = Conntrack::new(CtConfig::default());
    let z1 = CtAction { zone: 1, ..COMMIT };
    let z2 = CtAction { zone: 2, ..LOOKUP };
    run(&mut ct, &udp(false), &z1, 0);
    assert_eq!(run(&mut ct, &udp(true), &z2, 1), TRK | NEW);
    assert_eq!(
        ct.execute(Ok(&udp(true)), &CtAction { zone: 1, ..LOOKUP }, 1)
            .unwrap(),
        CtResult {
            state: TRK | EST | RPL,
            zone: 1,
            mark: 0,
            label: 0,
            rewrite: None,
        }
    );
    assert_eq!((ct.zone_len(1), ct.zone_len(2)), (1, 0));
}

fn udp_from(port: u16) -> CtPacket {
    CtPacket {
        tuple: Tuple::v4(IP_A, IP_B, packet::PROTO_UDP, port, 53),
        l4: L4::Other,
    }
}

fn udp_reply(port: u16) -> CtPacket {
    CtPacket {
        tuple: Tuple::v4(IP_B, IP_A, packet::PROTO_UDP, 53, port),
        l4: L4::Other,
    }
}

#[test]
fn a_full_table_drops_an_unanswered_connection_then_refuses_and_keeps_established_ones() {
    let mut ct = Conntrack::new(CtConfig {
        max_conns: 2,
        ..CtConfig::default()
    });
    handshake(&mut ct);
    run(&mut ct, &udp_from(1), &COMMIT, 3);
    // Full: the unanswered UDP connection makes room (the kernel's early
    // drop), the answered TCP one stays.
    assert_eq!(run(&mut ct, &udp_from(2), &COMMIT, 4), TRK | NEW);
    assert_eq!(ct.counters().evicted, 1);
    assert_eq!(
        run(&mut ct, &udp_from(1), &LOOKUP, 4),
        TRK | NEW,
        "port 1's connection is gone"
    );
    // Once every connection has been answered, a commit is refused.
    assert_eq!(run(&mut ct, &udp_reply(2), &LOOKUP, 4), TRK | EST | RPL);
    assert_eq!(ct.execute(Ok(&udp_from(3)), &COMMIT, 4), Err(CtRefused::Full(2)));
    assert_eq!(ct.counters().refused_full, 1);
    // Established traffic is untouched; a lookup (no commit) is not refused.
    assert_eq!(
        run(&mut ct, &seg(false, 1001, 5001, ACK, 65535, 10), &LOOKUP, 5),
        TRK | EST
    );
    assert_eq!(run(&mut ct, &udp_from(3), &LOOKUP, 5), TRK | NEW);
    // Once the UDP connection expired, a commit reclaims its place.
    let later = 4 + Timeout::OtherBidir.default_ms();
    assert_eq!(run(&mut ct, &udp_from(3), &COMMIT, later), TRK | NEW);
    assert_eq!(ct.len(), 2);
}

#[test]
fn zone_limits_refuse_per_zone() {
    let mut cfg = CtConfig::default();
    cfg.zone_limits.insert(5, 1);
    let mut ct = Conntrack::new(cfg);
    let z5 = CtAction { zone: 5, ..COMMIT };
    run(&mut ct, &udp_from(1), &z5, 0);
    assert_eq!(
        ct.execute(Ok(&udp_from(2)), &z5, 0),
        Err(CtRefused::ZoneLimit { zone: 5, limit: 1 })
    );
    // Another zone is not limited.
    run(&mut ct, &udp_from(2), &CtAction { zone: 6, ..COMMIT }, 0);
    assert_eq!(ct.counters().refused_zone_limit, 1);
}

#[test]
fn commit_keeps_mark_and_label_for_later_packets() {
    let mut ct = Conntrack::new(CtConfig::default());
    let a = CtAction {
        mark: Some((0x1234, 0xffff)),
        label: Some((1 << 100, u128::MAX)),
        ..COMMIT
    };
    let r = ct.execute(Ok(&udp(false)), &a, 0).unwrap();
    assert_eq!((r.mark, r.label), (0x1234, 1 << 100));
    let r = ct.execute(Ok(&udp(true)), &LOOKUP, 1).unwrap();
    assert_eq!((r.mark, r.label), (0x1234, 1 << 100));
    // A masked update changes only its bits.
    let b = CtAction {
        mark: Some((0x50000, 0xf0000)),
        ..COMMIT
    };
    assert_eq!(ct.execute(Ok(&udp(true)), &b, 2).unwrap().mark, 0x51234);
}

#[test]
fn sweeps_are_bounded_and_a_full_turn_expires_everything() {
    let mut ct = Conntrack::new(CtConfig::default());
    for p in 0..1000 {
        run(&mut ct, &udp_from(p), &COMMIT, 0);
    }
    let late = Timeout::OtherFirst.default_ms();
    assert!(ct.sweep(late, 100) <= 100);
    let mut n = 0;
    for _ in 0..20 {
        n += ct.sweep(late, 100);
    }
    assert!(ct.is_empty(), "{} left after {n}", ct.len());
    assert_eq!(ct.counters().expired, 1000);
    assert!(ct.index.is_empty() && ct.per_zone.is_empty());
}

#[test]
fn untrackable_packets_are_invalid() {
    let mut ct = Conntrack::new(CtConfig::default());
    let arp = testing::arp_request();
    assert_eq!(frame_tracked(&arp), Err(Untrackable::NotIp));
    let frag = testing::udp4_fragment(8, false);
    assert_eq!(frame_tracked(&frag), Err(Untrackable::Fragment));
    let r = ct.execute(Err(Untrackable::Fragment), &COMMIT, 0).unwrap();
    assert_eq!(r.state, TRK | INV);
    assert!(ct.is_empty());
}

#[test]
fn frames_give_the_tuples_and_segments_the_tracker_uses() {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(IP_A, IP_B, 64)
        .tcp(40000, 22, 77, 29200)
        .syn()
        .options(&[TcpOptionElement::WindowScale(7)])
        .expect("options");
    let mut f = Vec::new();
    b.write(&mut f, &[1, 2, 3]).expect("tcp");
    let p = frame_tracked(&f).unwrap();
    assert_eq!(p.tuple, tcp_tuple());
    assert_eq!(
        p.l4,
        L4::Tcp(TcpSegment {
            seq: 77,
            ack: 0,
            flags: SYN,
            win: 29200,
            wscale: Some(7),
            len: 3
        })
    );
    let v6 = frame_tracked(&testing::udp6(1, 2)).unwrap();
    assert!(v6.tuple.v6 && v6.tuple.sport == 1 && v6.tuple.dport == 2);
    let e = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6([1; 16], [2; 16], 64)
        .icmpv6_echo_request(9, 1);
    let mut f = Vec::new();
    e.write(&mut f, &[]).expect("icmp6");
    let p = frame_tracked(&f).unwrap();
    assert_eq!((p.tuple.sport, p.tuple.stype, p.tuple.dtype), (9, 128, 129));
    assert_eq!(p.l4, L4::IcmpQuery { request: true });
}

#[test]
fn dump_lines_read_as_ovs_dump_conntrack() {
    let mut ct = Conntrack::new(CtConfig::default());
    handshake(&mut ct);
    run(
        &mut ct,
        &udp(false),
        &CtAction {
            zone: 3,
            mark: Some((1, 1)),
            ..COMMIT
        },
        0,
    );
    let mut lines: Vec<String> = ct.dump(3).iter().map(|e| e.to_string()).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "tcp,orig=(src=198.18.0.10,dst=198.18.0.11,sport=40000,dport=22),reply=(src=198.18.0.11,dst=198.18.0.10,sport=22,dport=40000),protoinfo=(state=ESTABLISHED)",
            "udp,orig=(src=198.18.0.10,dst=198.18.0.11,sport=5000,dport=53),reply=(src=198.18.0.11,dst=198.18.0.10,sport=53,dport=5000),zone=3,mark=1",
        ]
    );
}

#[test]
fn flush_by_zone() {
    let mut ct = Conntrack::new(CtConfig::default());
    run(&mut ct, &udp_from(1), &CtAction { zone: 1, ..COMMIT }, 0);
    run(&mut ct, &udp_from(2), &CtAction { zone: 2, ..COMMIT }, 0);
    assert_eq!(ct.flush(Some(1)), 1);
    assert_eq!((ct.zone_len(1), ct.zone_len(2)), (0, 1));
    assert_eq!(ct.flush(None), 1);
    assert!(ct.is_empty() && ct.index.is_empty());
}

/// A well-behaved TCP conversation, the reference the tracker must agree
/// with: handshake (with or without window scaling), data each way within
/// the receiver's window, a close. Every segment is valid and the states
/// are the model's; a segment far outside the window at any point once both
/// ends have spoken is invalid and changes nothing (before that, pf takes a
/// responder's first segment as it comes, and so does OVS).
#[derive(Debug, Clone)]
struct Conversation {
    isn: [u32; 2],
    win: [u16; 2],
    wscale: Option<[u8; 2]>,
    /// (from the responder?, payload length)
    data: Vec<(bool, u16)>,
}

fn conversation() -> impl Strategy<Value = Conversation> {
    (
        any::<[u32; 2]>(),
        [1000u16..=65535, 1000u16..=65535],
        proptest::option::of([0u8..=14, 0u8..=14]),
        proptest::collection::vec((any::<bool>(), 0u16..=1460), 0..40),
    )
        .prop_map(|(isn, win, wscale, data)| Conversation {
            isn,
            win,
            wscale,
            data,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_tracker_agrees_with_a_well_behaved_conversation(c in conversation(), bad_at in 2usize..48) {
        let mut ct = Conntrack::new(CtConfig::default());
        let ws = |i: usize| c.wscale.map(|w| w[i]);
        // next[i]: the next sequence number peer i sends.
        let mut next = [c.isn[0].wrapping_add(1), c.isn[1].wrapping_add(1)];
        let mut step = 0usize;
        let mut check = |ct: &mut Conntrack, p: CtPacket, commit: bool, want: u8, next: [u32; 2]| {
            if step == bad_at {
                // Far ahead of anything the receiver allows.
                let from_reply = p.tuple != tcp_tuple();
                let i = from_reply as usize;
                let bad = seg(from_reply, next[i].wrapping_add(0x4000_0000), next[1 - i], ACK, 1000, 10);
                let before = ct.dump(0);
                prop_assert_eq!(run(ct, &bad, &LOOKUP, 0), TRK | INV);
                prop_assert_eq!(ct.dump(0), before);
            }
            step += 1;
            let a = if commit { COMMIT } else { LOOKUP };
            prop_assert_eq!(run(ct, &p, &a, 0), want);
            Ok(())
        };
        check(&mut ct, seg_ws(false, c.isn[0], 0, SYN, c.win[0], 0, ws(0)), true, TRK | NEW, next)?;
        check(&mut ct, seg_ws(true, c.isn[1], next[0], SYN | ACK, c.win[1], 0, ws(1)), false, TRK | EST | RPL, next)?;
        // After the SYNs, windows are announced scaled down.
        let win = |i: usize| match c.wscale {
            Some(w) => (((c.win[i] as u32) >> w[i]).max(1)) as u16,
            None => c.win[i],
        };
        check(&mut ct, seg(false, next[0], next[1], ACK, win(0), 0), false, TRK | EST, next)?;
        for &(from_reply, len) in &c.data {
            let i = from_reply as usize;
            // Stay within what the receiver announced: never more than its
            // (unscaled-down) window beyond what it acknowledged.
            let len = (len as u32).min(win(1 - i) as u32);
            let p = seg(from_reply, next[i], next[1 - i], ACK, win(i), len);
            let want = if from_reply { TRK | EST | RPL } else { TRK | EST };
            check(&mut ct, p, false, want, next)?;
            next[i] = next[i].wrapping_add(len);
            // The receiver acknowledges at once (an empty segment).
            let p = seg(!from_reply, next[1 - i], next[i], ACK, win(1 - i), 0);
            let want = if from_reply { TRK | EST } else { TRK | EST | RPL };
            check(&mut ct, p, false, want, next)?;
        }
        prop_assert_eq!(ct.dump(0)[0].tcp_state, Some((TcpState::Established, TcpState::Established)));
        check(&mut ct, seg(false, next[0], next[1], FIN | ACK, win(0), 0), false, TRK | EST, next)?;
        next[0] = next[0].wrapping_add(1);
        check(&mut ct, seg(true, next[1], next[0], FIN | ACK, win(1), 0), false, TRK | EST | RPL, next)?;
        next[1] = next[1].wrapping_add(1);
        check(&mut ct, seg(false, next[0], next[1], ACK, win(0), 0), false, TRK | EST, next)?;
        prop_assert_eq!(ct.dump(0)[0].tcp_state, Some((TcpState::FinWait2, TcpState::FinWait2)));
    }

    #[test]
    fn arbitrary_segments_never_panic_and_states_only_advance(
        segs in proptest::collection::vec(
            (any::<bool>(), any::<u32>(), any::<u32>(), 0u16..0x40, any::<u16>(), 0u32..3000, proptest::option::of(any::<u8>())),
            1..60),
    ) {
        let mut ct = Conntrack::new(CtConfig::default());
        let mut last: Option<TcpConn> = None;
        for (i, (reply, sq, ak, flags, win, len, ws)) in segs.into_iter().enumerate() {
            let p = seg_ws(reply, sq, ak, flags, win, len, ws);
            let r = ct.execute(Ok(&p), &COMMIT, i as u64).expect("no limit");
            prop_assert!(r.state & TRK != 0);
            let now = ct.conns.iter().next().map(|(_, c)| match c.proto {
                Proto::Tcp(t) => t,
                Proto::Other => unreachable!("tcp only"),
            });
            if let (Some(a), Some(b)) = (last, now) {
                if ct.counters().reopened == 0 {
                    prop_assert!(b.peer[0].state >= a.peer[0].state && b.peer[1].state >= a.peer[1].state);
                }
            }
            last = now;
        }
    }

    #[test]
    fn arbitrary_frames_never_panic_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..200), proto in prop_oneof![Just(1u8), Just(6), Just(17), Just(58), any::<u8>()]) {
        // A valid IPv4 header with the given protocol and arbitrary payload,
        // and the raw bytes themselves as a frame.
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(IP_A, IP_B, 64)
            .write(&mut f, etherparse::IpNumber(proto), &bytes)
            .expect("ip");
        for frame in [&f[..], &bytes[..]] {
            if let Ok((k, l)) = FlowKey::extract(frame, &PacketMeta::default()) {
                let p = CtPacket::parse(frame, &k, l);
                let mut ct = Conntrack::new(CtConfig::default());
                let _ = ct.execute(p.as_ref().map_err(|e| *e), &COMMIT, 0);
            }
        }
    }
}

/// IPv6 through `track()` as the datapath calls it: the handshake's states,
/// and the metadata the recirculated lookup keys on.
#[test]
fn ipv6_tcp_is_tracked_through_the_datapath_entry_point() {
    let (a, b) = (
        [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
    );
    let seg = |from_a: bool, seq: u32, ack: Option<u32>| {
        let (s, d, sm, dm, sp, dp) = if from_a {
            (a, b, MAC_A, MAC_B, 40000, 22)
        } else {
            (b, a, MAC_B, MAC_A, 22, 40000)
        };
        let bld = PacketBuilder::ethernet2(sm, dm)
            .ipv6(s, d, 64)
            .tcp(sp, dp, seq, 64000);
        let bld = match ack {
            Some(n) => bld.syn().ack(n),
            None => bld.syn(),
        };
        let mut f = Vec::new();
        bld.write(&mut f, &[]).unwrap();
        crate::packet::PacketBuf::from_slice(&f)
    };
    let mut ct = Conntrack::default();
    let commit = CtAction { zone: 9, ..COMMIT };
    let mut syn = seg(true, 100, None);
    track(&mut ct, &mut syn, &commit, 0).unwrap();
    assert_eq!((syn.meta.ct.state, syn.meta.ct.zone), (TRK | NEW, 9));
    let mut synack = seg(false, 500, Some(101));
    track(&mut ct, &mut synack, &CtAction { zone: 9, ..LOOKUP }, 1).unwrap();
    assert_eq!(synack.meta.ct.state, TRK | EST | RPL);
    let (k, _) = FlowKey::extract(synack.data(), &synack.meta).unwrap();
    assert_eq!(k.get(crate::flow::Field::CtState), (TRK | EST | RPL) as u64);
    assert_eq!(k.get(crate::flow::Field::CtZone), 9);
    assert!(ct.dump(1)[0].orig.v6);
}

/// What a datapath was told, and when it last "saw" a connection.
#[derive(Clone, Default)]
struct FakeDatapath {
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    used_ms: std::sync::Arc<std::sync::Mutex<Option<u64>>>,
}

impl CtOffload for FakeDatapath {
    fn offload(&mut self, c: &OffloadedConn) -> bool {
        let what = format!("offload {} replied={}", c.orig.proto, c.replied);
        self.log.lock().unwrap().push(what);
        true
    }
    fn withdraw(&mut self, _zone: u16, orig: &Tuple) {
        self.log.lock().unwrap().push(format!("withdraw {}", orig.proto));
    }
    fn last_used_ms(&mut self, _zone: u16, _orig: &Tuple, _now_ms: u64) -> Option<u64> {
        *self.used_ms.lock().unwrap()
    }
}

fn offloading() -> (Conntrack, FakeDatapath) {
    let mut ct = Conntrack::default();
    let dp = FakeDatapath::default();
    ct.set_offload(Some(Box::new(dp.clone())));
    (ct, dp)
}

fn taken(dp: &FakeDatapath) -> Vec<String> {
    std::mem::take(&mut *dp.log.lock().unwrap())
}

/// A TCP connection is handed over when both ends are established, taken
/// back at its FIN; its windows are not checked after (segments went past).
#[test]
fn tcp_is_handed_over_established_and_taken_back_at_fin() {
    let (mut ct, dp) = offloading();
    run(&mut ct, &seg(false, 1000, 0, SYN, 65535, 0), &COMMIT, 0);
    run(&mut ct, &seg(true, 5000, 1001, SYN | ACK, 65535, 0), &LOOKUP, 1);
    assert!(taken(&dp).is_empty(), "not established yet");
    run(&mut ct, &seg(false, 1001, 5001, ACK, 65535, 0), &LOOKUP, 2);
    assert_eq!(taken(&dp), ["offload 6 replied=true"]);
    assert_eq!(ct.offloaded(), 1);
    // A megabyte went by in the datapath: the FIN is far past the window
    // the tracker last saw, and still in the connection.
    let fin = seg(false, 1001 + 1_000_000, 5001, FIN | ACK, 65535, 0);
    assert_eq!(run(&mut ct, &fin, &LOOKUP, 3), TRK | EST);
    assert_eq!(taken(&dp), ["withdraw 6"]);
    assert_eq!(ct.offloaded(), 0);
}

/// UDP is handed over at its commit (one way, `+new`), again once
/// answered; a mark change or a removal takes it back.
#[test]
fn udp_is_handed_over_at_commit_and_again_once_answered() {
    let (mut ct, dp) = offloading();
    run(&mut ct, &udp(false), &COMMIT, 0);
    assert_eq!(taken(&dp), ["offload 17 replied=false"]);
    run(&mut ct, &udp(false), &LOOKUP, 1);
    assert!(taken(&dp).is_empty(), "nothing changed");
    run(&mut ct, &udp(true), &LOOKUP, 2);
    assert_eq!(taken(&dp), ["offload 17 replied=true"]);
    let mark = CtAction {
        mark: Some((1, 1)),
        ..COMMIT
    };
    run(&mut ct, &udp(false), &mark, 3);
    // (taken back, then handed over again with the new mark)
    assert_eq!(taken(&dp), ["withdraw 17", "offload 17 replied=true"]);
    ct.flush(None);
    assert_eq!(taken(&dp), ["withdraw 17"]);
}

/// A handed-over connection lives while the datapath uses it: the sweep
/// asks before it expires one, and a silent one goes (and is withdrawn).
#[test]
fn a_handed_over_connection_lives_while_the_datapath_uses_it() {
    let (mut ct, dp) = offloading();
    run(&mut ct, &udp(false), &COMMIT, 0);
    run(&mut ct, &udp(true), &LOOKUP, 1);
    taken(&dp);
    let bidir = ct.config().timeouts.ms(Timeout::OtherBidir);
    let later = 1 + bidir + 10;
    *dp.used_ms.lock().unwrap() = Some(later - 5);
    assert_eq!(ct.sweep(later, 1024), 0, "used 5 ms ago in the datapath");
    assert_eq!(ct.len(), 1);
    *dp.used_ms.lock().unwrap() = None;
    assert_eq!(ct.sweep(later + bidir, 1024), 1);
    assert_eq!(taken(&dp), ["withdraw 17"]);
}

/// A packet of a handed-over connection that still reaches the tracker
/// half a timeout later (the datapath's entry for its direction went stale
/// while the other direction kept the connection alive) hands it over again.
#[test]
fn a_stale_direction_is_handed_over_again() {
    let (mut ct, dp) = offloading();
    run(&mut ct, &udp(false), &COMMIT, 0);
    run(&mut ct, &udp(true), &LOOKUP, 1);
    taken(&dp);
    run(&mut ct, &udp(true), &LOOKUP, 2);
    assert!(taken(&dp).is_empty(), "just handed over");
    let half = ct.config().timeouts.ms(Timeout::OtherBidir) / 2;
    run(&mut ct, &udp(true), &LOOKUP, 2 + half);
    assert_eq!(taken(&dp), ["offload 17 replied=true"]);
}
