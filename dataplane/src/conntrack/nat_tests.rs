//! `ct(nat)`: real frames through [`track`] as the datapath calls it, their
//! bytes and checksums checked from scratch after every rewrite.

use super::*;
use crate::action::checksum::internet_checksum;
use crate::packet::PacketBuf;
use etherparse::{icmpv4::DestUnreachableHeader, Icmpv4Type, PacketBuilder};
use proptest::prelude::*;
use state::{DNAT, EST, NEW, REL, RPL, SNAT, TRK};
use std::net::IpAddr;

const VM: [u8; 4] = [198, 18, 1, 10];
const PEER: [u8; 4] = [198, 18, 2, 10];
const FIP: [u8; 4] = [198, 18, 2, 111];
const ROUTER: [u8; 4] = [198, 18, 2, 1];
const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn udp(s: [u8; 4], d: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC, MAC).ipv4(s, d, 64).udp(sp, dp);
    let mut f = Vec::new();
    b.write(&mut f, b"nat payload").unwrap();
    f
}

fn tcp(s: [u8; 4], d: [u8; 4], sp: u16, dp: u16, synack: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC, MAC)
        .ipv4(s, d, 64)
        .tcp(sp, dp, 100, 64000)
        .syn();
    let b = if synack { b.ack(101) } else { b };
    let mut f = Vec::new();
    b.write(&mut f, &[]).unwrap();
    f
}

fn echo(s: [u8; 4], d: [u8; 4], id: u16, reply: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC, MAC).ipv4(s, d, 64);
    let b = if reply {
        b.icmpv4_echo_reply(id, 1)
    } else {
        b.icmpv4_echo_request(id, 1)
    };
    let mut f = Vec::new();
    b.write(&mut f, &[7u8; 8]).unwrap();
    f
}

/// An ICMP port unreachable from `s` to `d` quoting `quoted`'s IP header
/// and first 8 bytes of L4.
fn unreachable(s: [u8; 4], d: [u8; 4], quoted: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC, MAC)
        .ipv4(s, d, 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port));
    let mut f = Vec::new();
    b.write(&mut f, &quoted[14..14 + 28]).unwrap();
    f
}

fn be16(d: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([d[o], d[o + 1]])
}

/// Every checksum of an untagged IPv4 or IPv6 frame, recomputed from
/// scratch: IPv4 header (and a quoted one's), TCP, UDP (0: none), ICMP,
/// ICMPv6.
fn checksums_ok(f: &[u8]) -> bool {
    let l3 = 14;
    let v6 = be16(f, 12) == 0x86dd;
    let (l4, end, proto, pseudo) = if v6 {
        let len = be16(f, l3 + 4) as usize;
        let mut p = 0u32;
        for w in (l3 + 8..l3 + 40).step_by(2) {
            p += be16(f, w) as u32;
        }
        (
            l3 + 40,
            l3 + 40 + len,
            f[l3 + 6],
            p + len as u32 + f[l3 + 6] as u32,
        )
    } else {
        let ihl = (f[l3] & 15) as usize * 4;
        if internet_checksum(0, &f[l3..l3 + ihl]) != 0 {
            return false;
        }
        let end = l3 + be16(f, l3 + 2) as usize;
        let p = be16(f, l3 + 12) as u32
            + be16(f, l3 + 14) as u32
            + be16(f, l3 + 16) as u32
            + be16(f, l3 + 18) as u32
            + (end - l3 - ihl) as u32
            + f[l3 + 9] as u32;
        (l3 + ihl, end, f[l3 + 9], p)
    };
    let seg = &f[l4..end];
    match (proto, v6) {
        (17, false) if be16(seg, 6) == 0 => true,
        (6 | 17, _) | (58, true) => internet_checksum(pseudo, seg) == 0,
        (1, false) => {
            let quoted_ok = !matches!(seg[0], 3 | 11) || internet_checksum(0, &seg[8..28]) == 0;
            internet_checksum(0, seg) == 0 && quoted_ok
        }
        _ => true,
    }
}

/// Source and destination address and ports (ICMP: id twice) of an IPv4 frame.
fn tuple4(f: &[u8]) -> ([u8; 4], [u8; 4], u16, u16) {
    let a = |o: usize| [f[o], f[o + 1], f[o + 2], f[o + 3]];
    let l4 = 14 + (f[14] & 15) as usize * 4;
    let (sp, dp) = match f[23] {
        1 => (be16(f, l4 + 4), be16(f, l4 + 4)),
        _ => (be16(f, l4), be16(f, l4 + 2)),
    };
    (a(26), a(30), sp, dp)
}

fn nat(kind: NatKind, min: [u8; 4], max: [u8; 4], ports: Option<(u16, u16)>) -> Option<NatAction> {
    Some(NatAction::Range(NatRange {
        kind,
        min: IpAddr::from(min),
        max: IpAddr::from(max),
        ports,
        flags: 0,
    }))
}

fn act(commit: bool, nat: Option<NatAction>) -> CtAction {
    CtAction {
        zone: 3,
        commit,
        nat,
        ..CtAction::default()
    }
}

/// Track `frame` as the datapath does; the frame as it leaves and its
/// `ct_state`.
fn go(ct: &mut Conntrack, frame: &[u8], a: &CtAction) -> Result<(Vec<u8>, u8), DropReason> {
    let mut p = PacketBuf::from_slice(frame);
    track(ct, &mut p, a, 0)?;
    assert!(checksums_ok(p.data()), "bad checksum after {a:?}");
    Ok((p.data().to_vec(), p.meta.ct.state))
}

/// A floating IP's outbound half: the VM's connection leaves with the
/// floating address as its source, its replies come back to the VM, and
/// `ct()` without `nat` translates nothing.
#[test]
fn snat_translates_the_originating_direction_and_back() {
    let mut ct = Conntrack::default();
    let syn = tcp(VM, PEER, 40000, 22, false);
    assert!(checksums_ok(&syn));
    let (out, st) = go(&mut ct, &syn, &act(true, nat(NatKind::Src, FIP, FIP, None))).unwrap();
    assert_eq!(
        tuple4(&out),
        (FIP, PEER, 40000, 22),
        "the port is kept when it is free"
    );
    assert_eq!(st, TRK | NEW | SNAT);
    let synack = tcp(PEER, FIP, 22, 40000, true);
    let (back, st) = go(&mut ct, &synack, &act(false, Some(NatAction::Existing))).unwrap();
    assert_eq!(tuple4(&back), (PEER, VM, 22, 40000));
    assert_eq!(st, TRK | EST | RPL | DNAT);
    // Without nat the tracker still knows the reply, and leaves it alone.
    let (same, st) = go(&mut ct, &synack, &act(false, None)).unwrap();
    assert_eq!((same, st), (synack.clone(), TRK | EST | RPL));
    assert_eq!(
        ct.dump(0)[0].to_string(),
        "tcp,orig=(src=198.18.1.10,dst=198.18.2.10,sport=40000,dport=22),\
         reply=(src=198.18.2.10,dst=198.18.2.111,sport=22,dport=40000),zone=3,\
         protoinfo=(state_orig=ESTABLISHED,state_reply=SYN_SENT)"
    );
}

/// A floating IP's inbound half (and port forwarding): the destination is
/// translated to the VM's address and port, the VM's replies leave from the
/// floating address.
#[test]
fn dnat_translates_the_destination_and_the_replys_source() {
    let mut ct = Conntrack::default();
    let q = udp(PEER, FIP, 5353, 8080);
    let (out, st) = go(&mut ct, &q, &act(true, nat(NatKind::Dst, VM, VM, Some((80, 80))))).unwrap();
    assert_eq!((tuple4(&out), st), ((PEER, VM, 5353, 80), TRK | NEW | DNAT));
    let (back, st) = go(
        &mut ct,
        &udp(VM, PEER, 80, 5353),
        &act(false, Some(NatAction::Existing)),
    )
    .unwrap();
    assert_eq!(
        (tuple4(&back), st),
        ((FIP, PEER, 8080, 5353), TRK | EST | RPL | SNAT)
    );
    // A datagram sent without a UDP checksum keeps none.
    let mut nocsum = udp(PEER, FIP, 5353, 8080);
    nocsum[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]);
    let (out, _) = go(&mut ct, &nocsum, &act(false, Some(NatAction::Existing))).unwrap();
    assert_eq!(be16(&out, 14 + 20 + 6), 0);
}

/// Two VMs' connections to the same server from the same port behind one
/// address: the second gets another source port, and each reply finds its
/// own VM. A range with no tuple left refuses the commit (counted).
#[test]
fn colliding_translations_move_the_port_and_a_full_range_refuses() {
    let mut ct = Conntrack::default();
    let vm2 = [198, 18, 1, 11];
    let a = act(true, nat(NatKind::Src, FIP, FIP, None));
    let (o1, _) = go(&mut ct, &udp(VM, PEER, 5000, 53), &a).unwrap();
    let (o2, _) = go(&mut ct, &udp(vm2, PEER, 5000, 53), &a).unwrap();
    let (p1, p2) = (tuple4(&o1).2, tuple4(&o2).2);
    assert_eq!(p1, 5000);
    assert!(p2 != 5000 && p2 >= 1024, "moved into the ephemeral ports: {p2}");
    let bare = act(false, Some(NatAction::Existing));
    assert_eq!(
        tuple4(&go(&mut ct, &udp(PEER, FIP, 53, p1), &bare).unwrap().0).1,
        VM
    );
    assert_eq!(
        tuple4(&go(&mut ct, &udp(PEER, FIP, 53, p2), &bare).unwrap().0).1,
        vm2
    );

    let one = act(true, nat(NatKind::Src, FIP, FIP, Some((7000, 7000))));
    go(&mut ct, &udp(VM, PEER, 6000, 54), &one).unwrap();
    assert_eq!(
        go(&mut ct, &udp(vm2, PEER, 6000, 54), &one),
        Err(DropReason::CtRefused)
    );
    assert_eq!(ct.counters().refused_nat, 1);
    assert_eq!(ct.len(), 3);
}

/// ICMP echo: the id is the port; the ICMP checksum follows it.
#[test]
fn echo_is_translated_with_its_id() {
    let mut ct = Conntrack::default();
    let (out, st) = go(
        &mut ct,
        &echo(VM, PEER, 77, false),
        &act(true, nat(NatKind::Src, FIP, FIP, None)),
    )
    .unwrap();
    assert_eq!((tuple4(&out), st), ((FIP, PEER, 77, 77), TRK | NEW | SNAT));
    let (back, st) = go(
        &mut ct,
        &echo(PEER, FIP, 77, true),
        &act(false, Some(NatAction::Existing)),
    )
    .unwrap();
    assert_eq!((tuple4(&back), st), ((PEER, VM, 77, 77), TRK | EST | RPL | DNAT));
}

/// An ICMP error about a translated packet reaches the VM as if the VM's
/// own packet had been refused: outer destination and quoted header
/// translated back, every checksum right.
#[test]
fn an_icmp_error_about_a_translated_packet_is_translated_back() {
    let mut ct = Conntrack::default();
    let (out, _) = go(
        &mut ct,
        &udp(VM, PEER, 5000, 9999),
        &act(true, nat(NatKind::Src, FIP, FIP, None)),
    )
    .unwrap();
    let err = unreachable(ROUTER, FIP, &out);
    assert!(checksums_ok(&err));
    let (back, st) = go(&mut ct, &err, &act(false, Some(NatAction::Existing))).unwrap();
    assert_eq!(st, TRK | REL | RPL | DNAT);
    assert_eq!(tuple4(&back).0, ROUTER, "the error's sender stays");
    assert_eq!(tuple4(&back).1, VM);
    // The quoted packet is the VM's own again.
    let quoted = &back[14 + 20 + 8..];
    assert_eq!((&quoted[12..16], &quoted[16..20]), (&VM[..], &PEER[..]));
    assert_eq!((be16(quoted, 20), be16(quoted, 22)), (5000, 9999));
    // Without nat, the error is related and left alone.
    let (same, st) = go(&mut ct, &err, &act(false, None)).unwrap();
    assert_eq!((same, st), (err, TRK | REL | RPL));
}

/// A packet translated in an earlier pass of the same zone is found as it
/// now is, keeps its bits and is not translated twice (OVS's pipeline runs
/// `ct(nat)` then `ct(commit,nat(...))` on one packet).
#[test]
fn a_packet_translated_in_an_earlier_pass_is_not_translated_again() {
    let mut ct = Conntrack::default();
    let a = act(true, nat(NatKind::Dst, VM, VM, None));
    let first = udp(PEER, FIP, 1000, 80);
    go(&mut ct, &first, &a).unwrap();
    let mut p = PacketBuf::from_slice(&first);
    track(&mut ct, &mut p, &act(false, Some(NatAction::Existing)), 1).unwrap();
    let once = p.data().to_vec();
    assert_eq!(tuple4(&once), (PEER, VM, 1000, 80));
    // Pass two, same zone: the same connection, nothing more to do.
    track(&mut ct, &mut p, &a, 1).unwrap();
    assert_eq!(p.data(), &once[..]);
    assert_eq!(p.meta.ct.state, TRK | NEW | DNAT);
    assert_eq!(ct.len(), 1);
}

/// IPv6 DNAT: addresses in the pseudo-header, UDP's checksum follows.
#[test]
fn ipv6_is_translated_with_its_checksums() {
    let (c, v, f) = (
        [0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9],
        [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10],
        [0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x11],
    );
    let frame = |s: [u8; 16], d: [u8; 16], sp: u16, dp: u16| {
        let b = PacketBuilder::ethernet2(MAC, MAC).ipv6(s, d, 64).udp(sp, dp);
        let mut out = Vec::new();
        b.write(&mut out, b"six").unwrap();
        out
    };
    let mut ct = Conntrack::default();
    let a = CtAction {
        nat: Some(NatAction::Range(NatRange {
            kind: NatKind::Dst,
            min: IpAddr::from(v),
            max: IpAddr::from(v),
            ports: None,
            flags: 0,
        })),
        ..act(true, None)
    };
    let (out, st) = go(&mut ct, &frame(c, f, 1, 2), &a).unwrap();
    assert_eq!((&out[14 + 24..14 + 40], st), (&v[..], TRK | NEW | DNAT));
    let (back, _) = go(
        &mut ct,
        &frame(v, c, 2, 1),
        &act(false, Some(NatAction::Existing)),
    )
    .unwrap();
    assert_eq!(&back[14 + 8..14 + 24], &f[..]);
    // A v4 range cannot translate a v6 connection: refused, not mangled.
    let v4 = act(true, nat(NatKind::Dst, VM, VM, None));
    assert_eq!(go(&mut ct, &frame(c, f, 3, 4), &v4), Err(DropReason::CtRefused));
}

/// ovs-ofctl's text for nat, both ways.
#[test]
fn nat_text_reads_and_writes_as_ovs_ofctl() {
    for s in [
        "nat",
        "nat(src=10.0.0.1)",
        "nat(dst=10.0.0.1-10.0.0.9:1024-2048,random)",
        "nat(src=10.0.0.1:80,persistent,hash)",
        "nat(dst=[fd00::1]-[fd00::9]:443)",
        "nat(src=[fd00::2])",
    ] {
        let inner = s
            .strip_prefix("nat")
            .unwrap()
            .trim_start_matches('(')
            .trim_end_matches(')');
        let n: NatAction = inner.parse().unwrap();
        assert_eq!(n.to_string(), s);
    }
    for bad in [
        "src=1.2.3.4,dst=1.2.3.5",
        "random",
        "src=1.2.3.4,hash,random",
        "src=1.2.3.9-1.2.3.1",
        "src=1.2.3.4:9-8",
        "src=1.2.3.4-[fd00::1]",
        "src=fd00::1",
        "to=1.2.3.4",
    ] {
        assert!(bad.parse::<NatAction>().is_err(), "{bad} parsed");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Whatever the range and the connections before it: every frame a
    /// connection's translation writes has right checksums, the originator
    /// gets its replies back addressed as it sent (translation and its
    /// inverse compose to nothing), and no two connections share a
    /// translated tuple.
    #[test]
    fn translation_then_reply_gives_back_what_was_sent(
        conns in proptest::collection::vec((0u8..4, 1u16..4, any::<bool>()), 1..24),
        src_nat in any::<bool>(),
        width in 0u8..3,
        ports in proptest::option::of((1u16..6, 0u16..4)),
    ) {
        let mut ct = Conntrack::default();
        let lo = [198, 18, 9, 1];
        let hi = [198, 18, 9, 1 + width];
        let kind = if src_nat { NatKind::Src } else { NatKind::Dst };
        let a = act(true, nat(kind, lo, hi, ports.map(|(p, w)| (p, p + w))));
        let bare = act(false, Some(NatAction::Existing));
        let (mut sent_before, mut seen) = (std::collections::HashSet::new(), std::collections::HashSet::new());
        for (host, sport, is_tcp) in conns {
            if !sent_before.insert((host, sport, is_tcp)) {
                continue;
            }
            let s = [198, 18, 1, 10 + host];
            let sent = if is_tcp { tcp(s, PEER, sport, 22, false) } else { udp(s, PEER, sport, 53) };
            let Ok((out, _)) = go(&mut ct, &sent, &a) else { continue };
            let (xs, xd, xsp, xdp) = tuple4(&out);
            prop_assert!(seen.insert((xs, xd, xsp, xdp, is_tcp)), "two connections translated alike");
            let reply = if is_tcp { tcp(xd, xs, xdp, xsp, true) } else { udp(xd, xs, xdp, xsp) };
            let (back, st) = go(&mut ct, &reply, &bare).unwrap();
            let (os, od, osp, odp) = tuple4(&sent);
            prop_assert_eq!(tuple4(&back), (od, os, odp, osp));
            prop_assert!(st & RPL != 0);
        }
    }
}
