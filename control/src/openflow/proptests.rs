//! Property tests of the codec: every message decodes to what was encoded,
//! and no bytes make the decoder or a session panic or grow without bound.

use super::group::GroupModMsg;
use super::message::{decode, AsyncConfig, Features, FlowModMsg, FlowRemoved, Message, Role, SwitchConfig};
use super::multipart::{Desc, FlowFilter, FlowStats, MpReply, MpRequest, PortDesc, PortStats, TableStats};
use super::packet::{PacketInMsg, PacketOutMsg, PortModMsg};
use super::session::{OfSwitch, Session, OUT_HIGH_WATER};
use super::wire::NO_BUFFER;
use super::OfpError;
use crate::flow_mod::{Command, FlowMod, RemovalReason};
use crate::group::{Bucket, Group, GroupCommand, GroupType};
use crate::ofp::{
    parse_flow, ControllerSpec, OfAction, OfField, PinReason, PortNames, Rule, OFPP_CONTROLLER, OFPP_LOCAL,
    OFPP_NONE, OFPP_TABLE,
};
use proptest::prelude::*;

/// Every name is a port (numbered from its bytes), as a bridge would have it.
struct AnyName;

impl PortNames for AnyName {
    fn port_no(&self, name: &str) -> Option<u32> {
        Some(1 + name.bytes().map(u32::from).sum::<u32>() % 200)
    }
}

/// Rules of every fixture plus a vocabulary of matches and actions.
fn rule_texts() -> Vec<String> {
    let mut v: Vec<String> = [
        include_str!("../../fixtures/neutron-br-tun.flows"),
        include_str!("../../fixtures/neutron-sg.flows"),
        include_str!("../../fixtures/ovn-router.flows"),
        include_str!("../../fixtures/ovn-floating-ip.flows"),
    ]
    .iter()
    .flat_map(|f| f.lines())
    .map(str::trim)
    .filter(|l| !l.is_empty() && !l.starts_with('#'))
    .map(String::from)
    .collect();
    let matches = [
        "",
        "in_port=3",
        "ip,nw_src=198.18.0.0/15",
        "tcp,tp_dst=22",
        "udp,tp_src=53,nw_ttl=9",
        "arp,arp_tpa=198.18.0.1,arp_op=1",
        "dl_vlan=5",
        "ipv6,ipv6_dst=2001:db8::1",
        "ct_state=+trk+est-inv,ct_zone=4",
        "reg0=0x5/0xff",
        "tun_id=0x10",
        "dl_src=00:11:22:33:44:55,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00",
        "icmp,icmp_type=8,icmp_code=0",
        "metadata=0x3",
        "ct_mark=0x1/0x1",
    ];
    let actions = [
        "output:2",
        "NORMAL",
        "drop",
        "resubmit(,5)",
        "dec_ttl",
        "ct(commit,zone=3)",
        "ct(table=7,zone=NXM_NX_REG6[0..15])",
        "load:0x5->NXM_NX_REG1[]",
        "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]",
        "set_field:00:00:00:00:00:01->eth_src",
        "push_vlan:0x8100",
        "pop_vlan",
        "goto_table:9",
        "controller(max_len=96)",
        "ct_clear",
        "LOCAL,IN_PORT",
    ];
    for m in matches {
        for a in actions {
            let m = if m.is_empty() {
                String::new()
            } else {
                format!("{m},")
            };
            v.push(format!("table=1,{m}actions={a}"));
        }
    }
    v
}

pub(super) fn any_rule() -> impl Strategy<Value = Rule> {
    let rules: Vec<Rule> = rule_texts()
        .iter()
        .filter_map(|t| parse_flow(t, &AnyName).ok())
        .filter(super::message::encodable)
        .collect();
    assert!(rules.len() > 200, "{} rules", rules.len());
    (
        proptest::sample::select(rules),
        0u8..254,
        any::<u16>(),
        any::<u64>(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(mut r, table, priority, cookie, idle, hard)| {
            // goto_table only goes forward: keep the rule's own table.
            if !r
                .actions
                .iter()
                .any(|a| matches!(a, crate::ofp::OfAction::GotoTable(_)))
            {
                r.table = table;
            }
            r.priority = priority;
            r.cookie = cookie;
            r.idle_timeout = idle;
            r.hard_timeout = hard;
            r
        })
}

fn any_flow_mod() -> impl Strategy<Value = Message> {
    (
        any_rule(),
        0usize..5,
        any::<u64>(),
        proptest::option::of(1u32..0xff00),
        any::<bool>(),
        0u16..32,
        any::<u32>(),
        proptest::option::of(0u32..0xffff_ff00),
    )
        .prop_map(
            |(rule, cmd, cookie_mask, out_port, all, flags, buffer_id, out_group)| {
                let command = [
                    Command::Add,
                    Command::Modify,
                    Command::ModifyStrict,
                    Command::Delete,
                    Command::DeleteStrict,
                ][cmd];
                // goto_table needs a table to go forward from.
                let goto = rule.actions.iter().any(|a| matches!(a, OfAction::GotoTable(_)));
                let all_tables = all && command != Command::Add && !goto;
                let mut rule = rule;
                if all_tables {
                    rule.table = 0;
                }
                Message::FlowMod(FlowModMsg {
                    fm: FlowMod {
                        command,
                        rule,
                        cookie_mask,
                        all_tables,
                        out_port,
                        // Only deletes carry it (a modify's is not read).
                        out_group: out_group
                            .filter(|_| matches!(command, Command::Delete | Command::DeleteStrict)),
                        check_overlap: flags & 2 != 0,
                        send_flow_rem: flags & 1 != 0,
                        reset_counts: flags & 4 != 0,
                        new_cookie: None,
                    },
                    buffer_id,
                    flags,
                })
            },
        )
}

fn any_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,14}"
}

fn any_packet_in() -> impl Strategy<Value = Message> {
    (
        any_rule(),
        0u8..3,
        0u8..254,
        any::<u64>(),
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(r, reason, table, cookie, total_len, data)| {
            Message::PacketIn(PacketInMsg {
                buffer_id: NO_BUFFER,
                total_len,
                reason,
                table,
                cookie,
                matches: r.matches,
                data,
            })
        })
}

fn any_group_mod() -> impl Strategy<Value = Message> {
    let bucket = (
        any::<u16>(),
        prop_oneof![1u32..0xff00, Just(OFPP_NONE)],
        any::<u32>(),
        proptest::collection::vec((1u32..0xff00).prop_map(OfAction::Output), 0..3),
    )
        .prop_map(|(weight, watch_port, watch_group, actions)| Bucket {
            weight,
            watch_port,
            watch_group,
            actions,
        });
    (
        0usize..3,
        0usize..3,
        0u32..0xffff_ff00,
        proptest::collection::vec(bucket, 0..4),
    )
        .prop_map(|(cmd, ty, id, buckets)| {
            Message::GroupMod(GroupModMsg {
                command: [GroupCommand::Add, GroupCommand::Modify, GroupCommand::Delete][cmd],
                group: Group {
                    id,
                    ty: [GroupType::All, GroupType::Select, GroupType::Indirect][ty],
                    buckets,
                },
            })
        })
}

/// A packet-out's actions: outputs of every kind, to the controller, to
/// the tables, and rewrites.
fn any_packet_out() -> impl Strategy<Value = Message> {
    let action = prop_oneof![
        (1u32..0xff00).prop_map(OfAction::Output),
        Just(OfAction::Output(OFPP_TABLE)),
        Just(OfAction::Normal),
        Just(OfAction::Flood),
        Just(OfAction::InPort),
        (any::<u16>(), 0u16..3).prop_map(|(max_len, id)| OfAction::Controller(ControllerSpec {
            max_len,
            reason: PinReason::Action,
            id,
        })),
        any::<[u8; 6]>().prop_map(|m| OfAction::SetField {
            field: OfField::DlDst,
            value: m.iter().fold(0u128, |a, b| a << 8 | *b as u128),
        }),
    ];
    (
        prop_oneof![
            1u32..0xff00,
            Just(OFPP_CONTROLLER),
            Just(OFPP_LOCAL),
            Just(OFPP_NONE)
        ],
        proptest::collection::vec(action, 0..6),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(in_port, actions, data)| {
            Message::PacketOut(PacketOutMsg {
                buffer_id: NO_BUFFER,
                in_port,
                actions,
                data,
            })
        })
}

fn any_port() -> impl Strategy<Value = PortDesc> {
    (1u32..0xff00, any::<[u8; 6]>(), any_name(), 0u32..8).prop_map(|(port_no, hw_addr, name, state)| {
        PortDesc {
            port_no,
            hw_addr,
            name,
            config: 0,
            state,
            curr_speed: 10_000_000,
        }
    })
}

fn any_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (1u32..0x40).prop_map(|b| Message::Hello {
            bitmap: Some(b | 1 << 4)
        }),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Message::EchoRequest),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Message::EchoReply),
        Just(Message::FeaturesRequest),
        (any::<u64>(), any::<u32>(), any::<u8>(), any::<u32>()).prop_map(|(d, b, t, c)| {
            Message::FeaturesReply(Features {
                datapath_id: d,
                n_buffers: b,
                n_tables: t,
                capabilities: c,
            })
        }),
        Just(Message::GetConfigRequest),
        (0u16..4, any::<u16>()).prop_map(|(f, m)| Message::SetConfig(SwitchConfig {
            flags: f,
            miss_send_len: m
        })),
        any_flow_mod(),
        any_packet_in(),
        any_packet_out(),
        any_group_mod(),
        prop_oneof![
            Just(MpRequest::GroupDesc),
            Just(MpRequest::GroupFeatures),
            any::<u32>().prop_map(MpRequest::GroupStats)
        ]
        .prop_map(|body| Message::MultipartRequest { flags: 0, body }),
        any_group_mod().prop_map(|m| match m {
            Message::GroupMod(g) => Message::MultipartReply {
                flags: 0,
                body: MpReply::GroupDesc(vec![g.group.clone(), g.group]),
            },
            other => other,
        }),
        (
            any::<u32>(),
            any::<u32>(),
            any::<(u64, u64)>(),
            0u64..4_000_000_000_000,
            proptest::collection::vec(any::<(u64, u64)>(), 0..5)
        )
            .prop_map(|(id, ref_count, (packets, bytes), duration_ms, buckets)| {
                Message::MultipartReply {
                    flags: 0,
                    body: MpReply::GroupStats(vec![super::group::GroupStats {
                        id,
                        ref_count,
                        packets,
                        bytes,
                        duration_ms,
                        buckets,
                    }]),
                }
            }),
        Just(Message::MultipartReply {
            flags: 0,
            body: MpReply::GroupFeatures
        }),
        (
            1u32..0xff00,
            any::<[u8; 6]>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(
                |(port_no, hw_addr, config, mask, advertise)| Message::PortMod(PortModMsg {
                    port_no,
                    hw_addr,
                    config,
                    mask,
                    advertise,
                })
            ),
        Just(Message::BarrierRequest),
        Just(Message::BarrierReply),
        (0u32..4, any::<u64>())
            .prop_map(|(role, generation_id)| Message::RoleRequest(Role { role, generation_id })),
        proptest::array::uniform6(any::<u32>()).prop_map(|a| Message::SetAsync(AsyncConfig {
            packet_in: [a[0], a[1]],
            port_status: [a[2], a[3]],
            flow_removed: [a[4], a[5]],
        })),
        (
            any_rule(),
            proptest::option::of(0u8..254),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(|(r, table, cookie, cookie_mask)| {
                Message::MultipartRequest {
                    flags: 0,
                    body: MpRequest::Flow(FlowFilter {
                        table,
                        out_port: None,
                        out_group: 0xffff_ffff,
                        cookie,
                        cookie_mask,
                        matches: r.matches,
                    }),
                }
            }),
        proptest::option::of(1u32..0xff00).prop_map(|p| Message::MultipartRequest {
            flags: 0,
            body: MpRequest::PortStats(p)
        }),
        Just(Message::MultipartRequest {
            flags: 0,
            body: MpRequest::PortDesc
        }),
        proptest::collection::vec((any_rule(), any::<u64>(), any::<u64>(), any::<u32>()), 0..8).prop_map(
            |v| {
                Message::MultipartReply {
                    flags: 0,
                    body: MpReply::Flow(
                        v.into_iter()
                            .map(|(r, packets, bytes, ms)| FlowStats {
                                table: r.table,
                                duration_ms: ms as u64,
                                // 1.3 has no place for it.
                                idle_ms: 0,
                                priority: r.priority,
                                idle_timeout: r.idle_timeout,
                                hard_timeout: r.hard_timeout,
                                flags: 0,
                                cookie: r.cookie,
                                packets,
                                bytes,
                                matches: r.matches,
                                actions: r.actions,
                            })
                            .collect(),
                    ),
                }
            }
        ),
        proptest::collection::vec(any_port(), 0..8).prop_map(|v| Message::MultipartReply {
            flags: 1,
            body: MpReply::PortDesc(v),
        }),
        proptest::collection::vec((1u32..0xff00, any::<[u64; 8]>(), any::<u32>()), 0..8).prop_map(|v| {
            Message::MultipartReply {
                flags: 0,
                body: MpReply::PortStats(
                    v.into_iter()
                        .map(|(port_no, counters, ms)| PortStats {
                            port_no,
                            counters,
                            duration_ms: ms as u64,
                        })
                        .collect(),
                ),
            }
        }),
        (any_rule(), 0usize..3, any::<u32>(), any::<u64>(), any::<u64>()).prop_map(
            |(r, why, ms, packets, bytes)| {
                Message::FlowRemoved(FlowRemoved {
                    reason: [RemovalReason::Idle, RemovalReason::Hard, RemovalReason::Delete][why],
                    table: r.table,
                    priority: r.priority,
                    cookie: r.cookie,
                    duration_ms: ms as u64,
                    idle_timeout: r.idle_timeout,
                    hard_timeout: r.hard_timeout,
                    packets,
                    bytes,
                    matches: r.matches,
                })
            }
        ),
        (0u8..3, any_port()).prop_map(|(reason, desc)| Message::PortStatus { reason, desc }),
        (any_name(), any_name()).prop_map(|(a, b)| Message::MultipartReply {
            flags: 0,
            body: MpReply::Desc(Desc {
                mfr: a.clone(),
                hw: b.clone(),
                sw: a,
                serial: b,
                dp: "bridge x".into(),
            }),
        }),
    ]
}

/// rvs actions whose OpenFlow 1.3 form decodes to another spelling of the
/// same action (as in OVS: mod_vlan_vid is push_vlan + set_field).
fn alias(a: &OfAction) -> bool {
    match a {
        OfAction::WriteActions(w) => w.iter().any(alias),
        OfAction::ModVlanVid(_)
        | OfAction::ModVlanPcp(_)
        | OfAction::ModDlSrc(_)
        | OfAction::ModDlDst(_)
        | OfAction::ModNwSrc(_)
        | OfAction::ModNwDst(_)
        | OfAction::ModNwTos(_)
        | OfAction::ModNwEcn(_)
        | OfAction::ModTpSrc(_)
        | OfAction::ModTpDst(_) => true,
        _ => false,
    }
}

fn has_alias(m: &Message) -> bool {
    match m {
        Message::FlowMod(f) => f.fm.rule.actions.iter().any(alias),
        Message::MultipartReply {
            body: MpReply::Flow(v),
            ..
        } => v.iter().any(|f| f.actions.iter().any(alias)),
        _ => false,
    }
}

/// A switch with a few rules and ports that refuses nothing.
pub(super) struct Fake {
    pub(super) rules: usize,
}

impl OfSwitch for Fake {
    fn features(&self) -> Features {
        Features {
            datapath_id: 1,
            n_buffers: 0,
            n_tables: 254,
            capabilities: 7,
        }
    }
    fn desc(&self) -> Desc {
        Desc {
            mfr: "m".into(),
            hw: "h".into(),
            sw: "s".into(),
            serial: "n".into(),
            dp: "d".into(),
        }
    }
    fn ports(&self) -> Vec<PortDesc> {
        Vec::new()
    }
    fn port_stats(&self, _: Option<u32>) -> Result<Vec<PortStats>, OfpError> {
        Ok(Vec::new())
    }
    fn flow_mod(&mut self, _: &FlowMod) -> Result<(), OfpError> {
        self.rules += 1;
        Ok(())
    }
    fn flows(&self, _: &FlowFilter) -> Vec<FlowStats> {
        Vec::new()
    }
    fn tables(&self) -> Vec<TableStats> {
        Vec::new()
    }
    fn role(&self, _: u64) -> u32 {
        1
    }
    fn role_request(&mut self, _: u64, r: Role) -> Result<Role, OfpError> {
        Ok(r)
    }
    fn packet_out(&mut self, _: &PacketOutMsg) -> Result<(), OfpError> {
        Ok(())
    }
    fn port_mod(&mut self, _: &PortModMsg) -> Result<(), OfpError> {
        Ok(())
    }
    fn group_mod(&mut self, _: &GroupModMsg) -> Result<(), OfpError> {
        Ok(())
    }
    fn groups(&self) -> Vec<(Group, super::group::GroupStats)> {
        Vec::new()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_message_decodes_to_what_was_encoded(m in any_message(), xid in any::<u32>()) {
        let mut b = Vec::new();
        m.encode(xid, &mut b).unwrap();
        prop_assert_eq!(u16::from_be_bytes([b[2], b[3]]) as usize, b.len());
        let (h, back) = decode(&b).unwrap_or_else(|(_, e)| panic!("{m:?}: {e:?}"));
        prop_assert_eq!(h.xid, xid);
        // The wire form is a fixpoint...
        let mut again = Vec::new();
        back.encode(xid, &mut again).unwrap();
        prop_assert_eq!(&again, &b);
        // ...and the message comes back whole, but for the actions OpenFlow
        // 1.3 spells differently (mod_dl_src is a set_field there).
        if !has_alias(&m) {
            prop_assert_eq!(back, m);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn a_session_survives_anything_with_bounded_output(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..8),
        // Messages that are almost right: a valid one with some bytes changed.
        mutated in proptest::collection::vec((any_message(), any::<u16>(), any::<u8>()), 0..6),
    ) {
        let mut s = Session::new(1);
        let mut sw = Fake { rules: 0 };
        let mut hello = Vec::new();
        Message::Hello { bitmap: Some(1 << 4) }.encode(0, &mut hello).unwrap();
        s.receive(&hello, &mut sw);
        let mut fed = hello.len();
        for (m, at, v) in mutated {
            let mut b = Vec::new();
            m.encode(7, &mut b).unwrap();
            let i = 4 + at as usize % (b.len() - 4);
            b[i] ^= v;
            fed += b.len();
            s.receive(&b, &mut sw);
        }
        for c in &chunks {
            fed += c.len();
            s.receive(c, &mut sw);
        }
        drain_bounded(&mut s, &mut sw, fed)?;
    }
}

/// Take a session's output until nothing is held back: an answer per
/// message at most, each bounded (no amplification beyond a reply's size,
/// nothing kept unbounded). Output stops growing at the high-water mark
/// (plus one reply); taking it lets the held-back requests run, in bounded
/// steps. `fed`: the bytes given to it.
pub(super) fn drain_bounded(s: &mut Session, sw: &mut Fake, fed: usize) -> Result<(), TestCaseError> {
    let mut rounds = 0;
    loop {
        let out = s.take_output();
        prop_assert!(
            out.len() <= OUT_HIGH_WATER + 1024 * 1024,
            "{} out for {} in",
            out.len(),
            fed
        );
        if !s.backlog() {
            return Ok(());
        }
        s.receive(&[], sw);
        rounds += 1;
        prop_assert!(rounds <= fed / 8 + 1);
    }
}

/// As OVS: a connection accepted on a `ptcp:` listener (a "service"
/// connection, e.g. `ovs-ofctl`) gets no asynchronous message until it sets
/// a nonzero miss_send_len; one to a dialed controller gets them at once.
#[test]
fn service_connections_get_async_messages_only_when_they_ask() {
    let hello = |s: &mut Session, sw: &mut Fake| {
        let mut b = Vec::new();
        Message::Hello { bitmap: Some(1 << 4) }.encode(1, &mut b).unwrap();
        s.receive(&b, sw);
        s.take_output();
    };
    let port = PortDesc {
        port_no: 1,
        hw_addr: [2, 0, 0, 0, 0, 1],
        name: "p1".into(),
        config: 0,
        state: 0,
        curr_speed: 0,
    };
    let mut sw = Fake { rules: 0 };
    let mut service = Session::service(1);
    hello(&mut service, &mut sw);
    service.port_status(0, port.clone(), &sw);
    assert!(service.take_output().is_empty());
    let mut b = Vec::new();
    Message::SetConfig(SwitchConfig {
        flags: 0,
        miss_send_len: 128,
    })
    .encode(2, &mut b)
    .unwrap();
    service.receive(&b, &mut sw);
    service.port_status(0, port.clone(), &sw);
    assert!(!service.take_output().is_empty());
    let mut primary = Session::new(2);
    hello(&mut primary, &mut sw);
    primary.port_status(0, port, &sw);
    assert!(!primary.take_output().is_empty());
}
