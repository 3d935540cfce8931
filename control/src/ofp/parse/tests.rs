use super::*;
use proptest::prelude::*;

fn ports() -> BTreeMap<String, u32> {
    [("vm1", 1), ("patch-tun", 2), ("geneve0", 3)]
        .into_iter()
        .map(|(n, p)| (n.to_string(), p))
        .collect()
}

fn p(s: &str) -> Rule {
    parse_flow(s, &ports()).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn e(s: &str) -> FlowParseError {
    parse_flow(s, &ports()).expect_err(s)
}

#[test]
fn basic_rule() {
    let r = p("table=2, priority=10,in_port=vm1,dl_dst=02:00:00:00:00:01,actions=NORMAL");
    assert_eq!(r.table, 2);
    assert_eq!(r.priority, 10);
    assert!(r.matches.is_exact(OfField::InPort, 1));
    assert!(r.matches.is_exact(OfField::DlDst, 0x0200_0000_0001));
    assert_eq!(r.actions, vec![OfAction::Normal]);
    assert_eq!(p("actions=drop").priority, super::super::DEFAULT_PRIORITY);
    assert!(p("priority=0,actions=drop").actions == vec![OfAction::Drop]);
}

#[test]
fn every_match_field() {
    let r = p("tcp,nw_src=198.18.0.0/16,nw_dst=198.18.1.1,nw_tos=0x10,nw_ttl=9,ip_frag=no,tp_src=0x100/0xff00,tp_dst=80,tcp_flags=+syn-ack,actions=drop");
    let m = &r.matches;
    assert!(m.is_exact(OfField::DlType, 0x0800) && m.is_exact(OfField::NwProto, 6));
    assert_eq!(m.get(OfField::NwSrc), (0xc612_0000, 0xffff_0000));
    assert_eq!(m.get(OfField::TpSrc), (0x100, 0xff00));
    assert_eq!(m.get(OfField::TcpFlags), (0x002, 0x012));
    assert_eq!(m.get(OfField::IpFrag), (0, 1));
    let r = p("arp,arp_op=1,arp_spa=198.18.0.1,arp_tpa=198.18.0.2,actions=drop");
    assert!(r.matches.is_exact(OfField::ArpOp, 1));
    assert!(r.matches.is_exact(OfField::NwSrc, 0xc612_0001));
    let r = p("icmp,icmp_type=8,icmp_code=0,actions=drop");
    assert!(r.matches.is_exact(OfField::TpSrc, 8));
    let r = p("icmp6,ipv6_src=2001:db8::/32,ipv6_dst=2001:db8::1,icmpv6_type=135,actions=drop");
    assert_eq!(r.matches.get(OfField::Ipv6Src).1 >> 96, 0xffff_ffff);
    let r = p("dl_vlan=100,dl_vlan_pcp=3,actions=drop");
    assert_eq!(r.matches.get(OfField::VlanTci), (0x6000 | 0x1000 | 100, 0xffff));
    let r = p("dl_vlan=0xffff,actions=drop");
    assert_eq!(r.matches.get(OfField::VlanTci), (0, 0xffff));
    let r =
        p("vlan_tci=0x1000/0x1000,dl_src=02:00:00:00:00:00/01:00:00:00:00:00,dl_type=0x0800,actions=drop");
    assert_eq!(r.matches.get(OfField::DlSrc).1, 0x0100_0000_0000);
    let r =
        p("tun_id=0x1389/0xffff,tun_src=198.18.0.1,tun_dst=198.18.0.2,tun_metadata0=0x1/0xff,actions=drop");
    assert_eq!(r.matches.get(OfField::TunId), (0x1389, 0xffff));
    assert!(r.matches.is_exact(OfField::TunDst, 0xc612_0002));
    assert_eq!(r.matches.get(OfField::TunMetadata(0)), (1, 0xff));
    let r = p("reg0=5,reg7=0x10/0xf0,metadata=0x1,in_port=LOCAL,actions=drop");
    assert!(r.matches.is_exact(OfField::Reg(0), 5));
    assert_eq!(r.matches.get(OfField::Reg(7)), (0x10, 0xf0));
    assert!(r.matches.is_exact(OfField::InPort, OFPP_LOCAL as u128));
    for s in [
        "ipv6,nw_ttl=3",
        "udp6,tp_dst=53",
        "sctp,tp_src=1",
        "ip,ip_frag=later",
        "ip,ip_frag=first",
        "ip,ip_frag=yes",
        "ip,ip_frag=not_later",
    ] {
        p(&format!("{s},actions=drop"));
    }
    let r = p("cookie=0x5,idle_timeout=10,hard_timeout=300,actions=drop");
    assert_eq!((r.cookie, r.idle_timeout, r.hard_timeout), (5, 10, 300));
}

#[test]
fn every_action() {
    let r = p("ip,actions=output:1,vm1,2,NORMAL,FLOOD,ALL,IN_PORT,LOCAL,resubmit(,3),resubmit(1,4),resubmit:2,resubmit(in_port,5),resubmit(,7),\
               mod_vlan_vid:10,mod_vlan_pcp:2,strip_vlan,pop_vlan,push_vlan:0x8100,mod_dl_src:02:00:00:00:00:01,mod_dl_dst:02:00:00:00:00:02,\
               mod_nw_src:198.18.0.1,mod_nw_dst:198.18.0.2,mod_nw_tos:16,mod_tp_src:1,mod_tp_dst:2,set_field:198.18.0.9->nw_dst,\
               load:0x5->NXM_NX_REG0[0..15],move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_tunnel:0x1389,set_tunnel64:0x10,note:01.02,output:NXM_NX_REG1[0..15]");
    use OfAction::*;
    let a = &r.actions;
    assert_eq!(a[0], Output(1));
    assert_eq!(a[1], Output(1));
    assert_eq!(a[3..8], [Normal, Flood, All, InPort, Local]);
    assert_eq!(
        a[8],
        Resubmit {
            port: None,
            table: Some(3)
        }
    );
    assert_eq!(
        a[9],
        Resubmit {
            port: Some(1),
            table: Some(4)
        }
    );
    assert_eq!(
        a[10],
        Resubmit {
            port: Some(2),
            table: None
        }
    );
    assert_eq!(
        a[11],
        Resubmit {
            port: Some(OFPP_IN_PORT),
            table: Some(5)
        }
    );
    assert_eq!(
        a[12],
        Resubmit {
            port: None,
            table: Some(7)
        }
    );
    assert_eq!(p("actions=output:1,goto_table:7").actions[1], GotoTable(7));
    assert_eq!(
        a[13..18],
        [
            ModVlanVid(10),
            ModVlanPcp(2),
            StripVlan,
            StripVlan,
            PushVlan(0x8100)
        ]
    );
    assert_eq!(
        a[25],
        SetField {
            field: OfField::NwDst,
            value: 0xc612_0009
        }
    );
    assert_eq!(
        a[26],
        Load {
            value: 5,
            dst: SubField {
                field: OfField::Reg(0),
                start: 0,
                end: 15
            }
        }
    );
    assert_eq!(
        a[27],
        Move {
            src: SubField::whole(OfField::DlSrc),
            dst: SubField::whole(OfField::DlDst)
        }
    );
    assert_eq!(a[28..30], [SetTunnel(0x1389), SetTunnel(0x10)]);
    assert_eq!(a[30], Note(vec![1, 2]));
    assert_eq!(
        a[31],
        OutputField(SubField {
            field: OfField::Reg(1),
            start: 0,
            end: 15
        })
    );
}

#[test]
fn neutron_learn_action() {
    let r = p("table=10,priority=1,actions=learn(cookie=0x1,table=20,priority=1,hard_timeout=300,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:patch-tun");
    let OfAction::Learn(spec) = &r.actions[0] else {
        panic!()
    };
    assert_eq!(
        (spec.table, spec.priority, spec.hard_timeout, spec.cookie),
        (20, 1, 300, 1)
    );
    assert_eq!(spec.items.len(), 5);
    assert_eq!(
        spec.items[0],
        LearnSpecItem::MatchSame(SubField {
            field: OfField::VlanTci,
            start: 0,
            end: 11
        })
    );
    assert_eq!(
        spec.items[1],
        LearnSpecItem::MatchField {
            dst: SubField::whole(OfField::DlDst),
            src: SubField::whole(OfField::DlSrc)
        }
    );
    assert_eq!(
        spec.items[2],
        LearnSpecItem::LoadValue {
            value: 0,
            dst: SubField::whole(OfField::VlanTci)
        }
    );
    assert_eq!(
        spec.items[4],
        LearnSpecItem::Output(SubField::whole(OfField::InPort))
    );
    assert_eq!(r.actions[1], OfAction::Output(2));
}

/// Action sets and instruction order, as `ovs-ofctl` reads them.
#[test]
fn action_sets_and_instruction_order() {
    use OfAction::*;
    let r = p("actset_output=unset,actions=output:1,clear_actions,write_actions(pop_vlan,output:2),write_metadata:0x1,goto_table:3");
    assert!(r.matches.is_exact(OfField::ActsetOutput, OFPP_UNSET as u128));
    assert_eq!(
        r.actions,
        vec![
            Output(1),
            ClearActions,
            WriteActions(vec![StripVlan, Output(2)]),
            WriteMetadata {
                value: 1,
                mask: u64::MAX
            },
            GotoTable(3)
        ]
    );
    assert_eq!(
        r.to_string(),
        "table=0,priority=32768,actset_output=UNSET,actions=output:1,clear_actions,write_actions(strip_vlan,output:2),write_metadata:0x1,goto_table:3"
    );
    assert!(p("actset_output=vm1,actions=drop")
        .matches
        .is_exact(OfField::ActsetOutput, 1));
    assert_eq!(
        p("actions=write_actions(drop)").actions,
        vec![WriteActions(vec![])]
    );
    let x = e("actions=goto_table:2,output:1");
    assert_eq!(x.column, 22);
    assert_eq!(
        x.message,
        "invalid instruction ordering: apply_actions must appear before goto_table, for OpenFlow 1.1+ compatibility"
    );
    assert!(e("actions=write_actions(output:1),write_actions(output:2)")
        .message
        .starts_with("duplicate write_actions instruction not allowed"));
    assert!(e("actions=write_metadata:1,clear_actions")
        .message
        .contains("clear_actions must appear before write_metadata"));
    assert_eq!(
        e("actions=write_actions(goto_table:2)").message,
        "goto_table instruction not allowed here"
    );
    let x = e("actions=write_actions(output:1,learn(table=1,output:NXM_OF_IN_PORT[]))");
    assert!(x.message.contains("is not allowed in an action set"), "{x}");
    assert_eq!(x.column, 32);
}

#[test]
fn errors_say_what_and_where() {
    let x = e("priority=1,dl_dts=02:00:00:00:00:01,actions=drop");
    assert_eq!(x.column, 12);
    assert_eq!(x.token, "dl_dts=02:00:00:00:00:01");
    assert_eq!(x.suggestion.as_deref(), Some("dl_dst"));
    assert!(x.to_string().contains("column 12") && x.to_string().contains("did you mean \"dl_dst\""));
    let x = e("in_port=1,actions=outptu:2");
    assert_eq!(x.column, 19);
    assert_eq!(x.suggestion.as_deref(), Some("output"));
    assert!(e("nw_src=198.18.0.1,actions=drop")
        .message
        .contains("needs ip or arp"));
    assert!(e("tp_dst=80,actions=drop").message.contains("needs tcp"));
    assert!(e("dl_dst=02:00:00:00:00,actions=drop")
        .message
        .contains("not a valid dl_dst"));
    assert!(e("ip,nw_dst=198.18.0.0/33,actions=drop")
        .message
        .contains("prefix length"));
    assert!(e("dl_dst=02:00:00:00:00:01/zz,actions=drop")
        .message
        .contains("bad mask"));
    assert!(e("actions=frobnicate").message.contains("unknown action"));
    let x = e("actions=learn(table=20,NXM_OF_VLAN_TCI[0..11]");
    assert!(x.message.contains("unbalanced"), "{x}");
    assert_eq!(x.column, 14);
    assert!(e("actions=resubmit(,2))").message.contains("unbalanced"));
    assert!(e("in_port=nosuch,actions=drop").message.contains("no port named"));
    assert!(e("priority=1").message.contains("missing actions"));
    assert!(e("priority=1,priority=2,actions=drop").message.contains("twice"));
    assert!(e("tcp,udp,actions=drop").message.contains("conflicts"));
    assert!(e("actions=load:0x10000->NXM_NX_REG0[0..15]")
        .message
        .contains("does not fit"));
    assert!(e("actions=move:NXM_NX_REG0[0..3]->NXM_NX_REG1[]")
        .message
        .contains("bits"));
    assert!(e("actions=mod_vlan_vid:4096").message.contains("0..4095"));
    assert!(e("actions=drop,output:1").message.contains("only action"));
    assert!(e("priority=70000,actions=drop").message.contains("priority"));
}

/// What OVS checks of actions against their rule (found by comparing with a
/// real ovs-vswitchd: `tests/ovs_differential.rs`).
#[test]
fn actions_are_checked_against_their_rule_as_ovs_does() {
    let x = e("actions=load:0xa000009->NXM_OF_IP_DST[],output:1");
    assert_eq!(
        x.message,
        "load of nw_dst needs ip or arp in the match (e.g. add \"ip\"), as OVS requires"
    );
    assert_eq!(x.column, 9);
    assert!(e("ip,actions=set_field:80->tcp_dst")
        .message
        .starts_with("set_field of tp_dst needs tcp, udp"));
    assert!(e("actions=move:NXM_OF_ARP_SPA[]->NXM_NX_REG0[]")
        .message
        .contains("move of nw_src"));
    assert!(e("actions=write_actions(set_field:::1->ipv6_dst)")
        .message
        .contains("needs ipv6"));
    assert!(e("table=3,actions=goto_table:1")
        .message
        .contains("goto_table:1 in table 3: a rule may only go to a later table"));
    assert!(e("table=3,actions=goto_table:3").message.contains("later table"));
    assert!(e("actions=output:70000")
        .message
        .contains("port 70000 is outside the supported range 0 through 0xffff"));
    // Matched, they pass; so do fields without a protocol, and mod_nw_* (OVS
    // takes those over OpenFlow 1.0 and they do nothing to other packets).
    p("ip,actions=load:0xa000009->NXM_OF_IP_DST[],set_field:80->reg0");
    p("arp,actions=move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]");
    p("actions=mod_nw_src:10.0.0.1,set_field:5->pkt_mark,load:1->NXM_NX_TUN_ID[]");
    p("table=3,actions=goto_table:4");
    // Conntrack needs IP (found loading neutron's table 92 into OVS 3.1).
    assert!(e("reg5=1,actions=ct(commit),output:1")
        .message
        .starts_with("ct needs ip or ipv6 in the match"));
    assert!(e("ip,ct_state=+inv+trk,actions=ct(commit)")
        .message
        .contains("invalid packet cannot be committed"));
    p("ipv6,actions=ct(table=1)");
    p("ip,ct_state=-inv+trk,actions=ct(commit),ct_clear");
    // NAT, written back as ovs-ofctl writes it (nat before exec).
    for text in [
        "ct(commit,table=5,zone=3,nat(src=198.18.2.111),exec(set_field:0x1->ct_mark))",
        "ct(table=1,zone=3,nat)",
        "ct(commit,nat(dst=[fd00::1]-[fd00::3]:80-90,random))",
    ] {
        let ty = if text.contains('[') { "ipv6" } else { "ip" };
        let r = p(&format!("{ty},actions={text}"));
        assert_eq!(crate::ofp::fmt_actions(&r.actions), text);
    }
    assert!(e("ipv6,actions=ct(commit,nat(src=198.18.2.111))")
        .message
        .contains("an IPv4 range in an ipv6 flow"));
    assert!(e("ip,actions=ct(commit,nat(src=198.18.2.111,dst=198.18.2.1))")
        .message
        .contains("one of src or dst"));
    assert!(e("ip,actions=ct(commit,nat(src=198.18.2.9-198.18.2.1))")
        .message
        .contains("bad range"));
    // NXM's in_port is 16 bits, OXM's 32; each prints back as itself.
    p("actions=move:NXM_OF_IN_PORT[]->NXM_NX_REG1[0..15]");
    assert!(e("actions=move:OXM_OF_IN_PORT[]->NXM_NX_REG1[0..15]")
        .message
        .contains("bits"));
    for text in [
        "actions=output:NXM_OF_IN_PORT[]",
        "actions=output:OXM_OF_IN_PORT[]",
    ] {
        assert_eq!(p(text).to_string(), format!("table=0,priority=32768,{text}"));
    }
}

#[test]
fn batch_is_all_or_nothing_and_names_the_line() {
    let ok = parse_flows(
        "# neutron-ish\npriority=1,actions=NORMAL\n\ntable=1,actions=drop\n",
        &(),
    )
    .unwrap();
    assert_eq!(ok.len(), 2);
    let bad = parse_flows("priority=1,actions=NORMAL\ntable=1,actions=bogus\n", &()).unwrap_err();
    assert_eq!(bad.line, 2);
}

#[test]
fn dump_flows_text_parses_back() {
    let r = parse_flow(" cookie=0x0, duration=12.345s, table=0, n_packets=3, n_bytes=180, idle_age=2, priority=1,in_port=1 actions=NORMAL", &()).unwrap();
    assert_eq!(r.priority, 1);
    assert_eq!(r.actions, vec![OfAction::Normal]);
}

fn field_strategy() -> impl Strategy<Value = (&'static str, String)> {
    prop_oneof![
        (1u32..1000).prop_map(|p| ("", format!("in_port={p}"))),
        any::<[u8; 6]>().prop_map(|m| (
            "",
            format!(
                "dl_dst={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            )
        )),
        (0u16..4096).prop_map(|v| ("", format!("dl_vlan={v}"))),
        (any::<u32>(), 0u32..=32)
            .prop_map(|(a, l)| ("ip", format!("nw_dst={}/{l}", std::net::Ipv4Addr::from(a)))),
        any::<u16>().prop_map(|p| ("tcp", format!("tp_dst={p}"))),
        (any::<u16>(), any::<u16>()).prop_map(|(v, m)| ("udp", format!("tp_src={v:#x}/{m:#x}"))),
        any::<u32>().prop_map(|v| ("", format!("tun_id={v:#x}"))),
        (0u8..8, any::<u32>()).prop_map(|(r, v)| ("", format!("reg{r}={v:#x}"))),
        (0u8..6, any::<u32>()).prop_map(|(r, v)| ("", format!("tun_metadata{r}={v:#x}"))),
        any::<u64>().prop_map(|v| ("", format!("metadata={v:#x}"))),
        (0u8..64).prop_map(|v| ("ip", format!("nw_tos={}", v << 2))),
        (0u8..4).prop_map(|v| ("ip", format!("nw_ecn={v}"))),
        (0u8..255).prop_map(|v| ("ip", format!("nw_ttl={v}"))),
        (0u8..8).prop_map(|v| ("", format!("vlan_pcp={v}"))),
        any::<[u8; 6]>().prop_map(|m| (
            "arp",
            format!(
                "arp_sha={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            )
        )),
        any::<u32>().prop_map(|v| ("", format!("pkt_mark={v:#x}"))),
        (0u32..1 << 20).prop_map(|v| ("ipv6", format!("ipv6_label={v:#x}"))),
        any::<u128>().prop_map(|a| (
            "icmp6,icmp_type=135",
            format!("nd_target={}", std::net::Ipv6Addr::from(a))
        )),
        any::<[u8; 6]>().prop_map(|m| (
            "icmp6,icmp_type=135",
            format!(
                "nd_sll={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            )
        )),
    ]
}

/// An action and what its rule must match for it (`""`: nothing), as
/// `field_strategy`'s fields: a field an action reads or writes needs its
/// protocol in the match, as in OVS.
fn action_strategy() -> impl Strategy<Value = (&'static str, String)> {
    let plain = prop_oneof![
        (1u32..100).prop_map(|p| format!("output:{p}")),
        Just("NORMAL".to_string()),
        Just("FLOOD".to_string()),
        (0u8..255).prop_map(|t| format!("resubmit(,{t})")),
        (0u16..4096).prop_map(|v| format!("mod_vlan_vid:{v}")),
        Just("strip_vlan".to_string()),
        any::<u32>().prop_map(|v| format!("set_tunnel:{v:#x}")),
        (any::<u16>(), 0u8..8).prop_map(|(v, r)| format!("load:{v:#x}->NXM_NX_REG{r}[0..15]")),
        (0u8..8).prop_map(|r| format!("move:NXM_NX_REG{r}[]->NXM_NX_TUN_ID[0..31]")),
        Just("learn(table=20,priority=1,hard_timeout=300,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[])".to_string()),
        any::<[u8; 4]>().prop_map(|a| format!("mod_nw_dst:{}", std::net::Ipv4Addr::from(a))),
        Just("dec_ttl".to_string()),
        any::<u8>().prop_map(|t| format!("mod_nw_ttl:{t}")),
        (0u8..4).prop_map(|e| format!("mod_nw_ecn:{e}")),
        (0u8..64).prop_map(|d| format!("mod_nw_tos:{}", d << 2)),
        Just("controller".to_string()),
        (0u16..1500).prop_map(|l| format!("controller:{l}")),
        Just("output:in_port".to_string()),
        (1u32..4096).prop_map(|v| format!("set_field:{}->vlan_vid", v | 0x1000)),
        any::<u32>().prop_map(|v| format!("set_field:{v:#x}->pkt_mark")),
    ];
    prop_oneof![
        4 => plain.prop_map(|a| ("", a)),
        1 => (0u8..8).prop_map(|r| ("arp", format!("move:NXM_NX_ARP_SHA[0..31]->NXM_NX_REG{r}[]"))),
        1 => (0u8..8).prop_map(|r| (
            "icmp6,icmp_type=135",
            format!("move:NXM_NX_ND_TARGET[0..31]->NXM_NX_REG{r}[]")
        )),
        1 => any::<[u8; 4]>().prop_map(|a| ("ip", format!("set_field:{}->ip_src", std::net::Ipv4Addr::from(a)))),
    ]
}

/// What may follow the actions, in the order OpenFlow 1.1+ wants:
/// clear_actions, write_actions(...), write_metadata, goto_table.
fn instructions_strategy() -> impl Strategy<Value = Vec<String>> {
    let set_action = prop_oneof![
        (1u32..100).prop_map(|p| format!("output:{p}")),
        Just("NORMAL".to_string()),
        (0u8..255).prop_map(|t| format!("resubmit(,{t})")),
        Just("dec_ttl".to_string()),
        Just("pop_vlan".to_string()),
        any::<[u8; 4]>().prop_map(|a| format!("mod_nw_dst:{}", std::net::Ipv4Addr::from(a))),
        (0u8..8).prop_map(|r| format!("move:NXM_NX_REG{r}[]->NXM_NX_TUN_ID[0..31]")),
    ];
    (
        any::<bool>(),
        proptest::option::of(proptest::collection::vec(set_action, 0..4)),
        proptest::option::of((any::<u64>(), any::<u64>())),
        proptest::option::of(1u8..255),
    )
        .prop_map(|(clear, write, meta, goto)| {
            let mut v = Vec::new();
            if clear {
                v.push("clear_actions".to_string());
            }
            if let Some(w) = write {
                let body = if w.is_empty() {
                    "drop".to_string()
                } else {
                    w.join(",")
                };
                v.push(format!("write_actions({body})"));
            }
            if let Some((val, m)) = meta {
                v.push(format!("write_metadata:{val:#x}/{m:#x}"));
            }
            if let Some(t) = goto {
                v.push(format!("goto_table:{t}"));
            }
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]
    /// Printing a rule gives text that parses back to the same rule.
    #[test]
    fn print_parse_round_trip(
        table in 0u8..255, prio in any::<u16>(), cookie in any::<u64>(),
        fields in proptest::collection::vec(field_strategy(), 0..5),
        actions in proptest::collection::vec(action_strategy(), 0..5),
        instructions in instructions_strategy(),
    ) {
        let mut seen = std::collections::BTreeSet::new();
        let mut parts = vec![format!("table={table},priority={prio},cookie={cookie:#x}")];
        let mut proto: Option<&str> = None;
        for (need, f) in fields {
            let key = f.split('=').next().unwrap().to_string();
            if !seen.insert(key) { continue; }
            if !need.is_empty() {
                match proto {
                    None => { proto = Some(need); parts.push(need.to_string()); }
                    Some(p) if p == need || (need == "ip" && (p == "tcp" || p == "udp")) => {}
                    Some(_) => continue,
                }
            }
            parts.push(f);
        }
        let mut acts = Vec::new();
        for (need, a) in actions {
            if !need.is_empty() {
                match proto {
                    None => { proto = Some(need); parts.push(need.to_string()); }
                    Some(p) if p == need || (need == "ip" && (p == "tcp" || p == "udp")) => {}
                    Some(_) => continue,
                }
            }
            acts.push(a);
        }
        // goto_table only goes forward (OVS: OFPBIC_BAD_TABLE_ID).
        let forward = |i: &String| {
            i.strip_prefix("goto_table:").and_then(|t| t.parse::<u8>().ok()).is_none_or(|t| t > table)
        };
        let all: Vec<String> = acts.into_iter().chain(instructions.into_iter().filter(forward)).collect();
        let acts = if all.is_empty() { "drop".to_string() } else { all.join(",") };
        let text = format!("{},actions={acts}", parts.join(","));
        let rule = parse_flow(&text, &()).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        let printed = rule.to_string();
        let back = parse_flow(&printed, &()).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
        prop_assert_eq!(back, rule, "{} -> {}", text, printed);
    }
}

#[test]
fn tlv_map_syntax() {
    let m = parse_tlv_map("{class=0x0102,type=0x80,len=4}->tun_metadata0").unwrap();
    assert_eq!(
        m,
        TlvMapping {
            class: 0x0102,
            typ: 0x80,
            len: 4,
            slot: 0
        }
    );
    assert!(parse_tlv_map("{class=0x0102,type=0x80,len=4}->reg0")
        .unwrap_err()
        .message
        .contains("tun_metadata0..tun_metadata5"));
    assert!(
        parse_flow("tun_metadata6=1,actions=drop", &()).is_err(),
        "six slots"
    );
    let e = parse_tlv_map("{clas=1,type=1,len=4}->tun_metadata1").unwrap_err();
    assert_eq!(e.suggestion.as_deref(), Some("class"));
    assert!(parse_tlv_map("class=1,type=1,len=4->tun_metadata1").is_err());
    assert!(parse_tlv_map("{class=1,len=4}->tun_metadata1")
        .unwrap_err()
        .message
        .contains("required"));
}
