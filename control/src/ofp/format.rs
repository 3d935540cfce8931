//! Printing rules and actions in ovs-ofctl syntax. What is printed parses back
//! to the same rule (a property test checks it).

use super::action::{LearnSpec, LearnSpecItem, OfAction, SubField, OFPP_TABLE};
use super::field::{fmt_mac, OfField, ValueKind};
use super::matches::Match;
use super::rule::{Rule, DEFAULT_PRIORITY};
use rvs_dataplane::flow::{FRAG_ANY, FRAG_LATER, VLAN_CFI};
use std::fmt::{self, Write};

/// NXM/OXM name of a field, as `load:` and `move:` print it.
pub fn nxm_name(f: OfField) -> String {
    match f {
        OfField::InPort => "NXM_OF_IN_PORT".into(),
        OfField::DlSrc => "NXM_OF_ETH_SRC".into(),
        OfField::DlDst => "NXM_OF_ETH_DST".into(),
        OfField::DlType => "NXM_OF_ETH_TYPE".into(),
        OfField::VlanTci => "NXM_OF_VLAN_TCI".into(),
        OfField::NwSrc => "NXM_OF_IP_SRC".into(),
        OfField::NwDst => "NXM_OF_IP_DST".into(),
        OfField::NwProto => "NXM_OF_IP_PROTO".into(),
        OfField::NwTos => "NXM_OF_IP_TOS".into(),
        OfField::NwTtl => "NXM_NX_IP_TTL".into(),
        OfField::IpFrag => "NXM_NX_IP_FRAG".into(),
        OfField::TpSrc => "NXM_OF_TCP_SRC".into(),
        OfField::TpDst => "NXM_OF_TCP_DST".into(),
        OfField::TcpFlags => "NXM_NX_TCP_FLAGS".into(),
        OfField::ArpOp => "NXM_OF_ARP_OP".into(),
        OfField::Ipv6Src => "NXM_NX_IPV6_SRC".into(),
        OfField::Ipv6Dst => "NXM_NX_IPV6_DST".into(),
        OfField::TunId => "NXM_NX_TUN_ID".into(),
        OfField::TunSrc => "NXM_NX_TUN_IPV4_SRC".into(),
        OfField::TunDst => "NXM_NX_TUN_IPV4_DST".into(),
        OfField::TunMetadata(i) => format!("NXM_NX_TUN_METADATA{i}"),
        OfField::Reg(i) => format!("NXM_NX_REG{i}"),
        OfField::Metadata => "OXM_OF_METADATA".into(),
        OfField::ArpSha => "NXM_NX_ARP_SHA".into(),
        OfField::ArpTha => "NXM_NX_ARP_THA".into(),
        OfField::VlanVid => "OXM_OF_VLAN_VID".into(),
        OfField::VlanPcp => "OXM_OF_VLAN_PCP".into(),
        OfField::NwEcn => "NXM_NX_IP_ECN".into(),
        OfField::IpDscp => "OXM_OF_IP_DSCP".into(),
        OfField::PktMark => "NXM_NX_PKT_MARK".into(),
        OfField::Ipv6Label => "NXM_NX_IPV6_LABEL".into(),
        OfField::NdTarget => "NXM_NX_ND_TARGET".into(),
        OfField::NdSll => "NXM_NX_ND_SLL".into(),
        OfField::NdTll => "NXM_NX_ND_TLL".into(),
        OfField::ActsetOutput => "ONFOXM_ET_ACTSET_OUTPUT".into(),
        OfField::CtState => "NXM_NX_CT_STATE".into(),
        OfField::CtZone => "NXM_NX_CT_ZONE".into(),
        OfField::CtMark => "NXM_NX_CT_MARK".into(),
        OfField::CtLabel => "NXM_NX_CT_LABEL".into(),
    }
}

impl fmt::Display for SubField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = nxm_name(self.field);
        // NXM's in_port is 16 bits wide, OXM's 32: name the one that reads
        // back as this range.
        if self.field == OfField::InPort {
            return match (self.start, self.end) {
                (0, 15) => write!(f, "NXM_OF_IN_PORT[]"),
                (0, 31) => write!(f, "OXM_OF_IN_PORT[]"),
                (a, b) if a == b => write!(f, "OXM_OF_IN_PORT[{a}]"),
                (a, b) => write!(f, "OXM_OF_IN_PORT[{a}..{b}]"),
            };
        }
        if self.is_whole() {
            write!(f, "{n}[]")
        } else if self.start == self.end {
            write!(f, "{n}[{}]", self.start)
        } else {
            write!(f, "{n}[{}..{}]", self.start, self.end)
        }
    }
}

impl fmt::Display for LearnSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "learn(table={}", self.table)?;
        if self.priority != DEFAULT_PRIORITY {
            write!(f, ",priority={}", self.priority)?;
        }
        if self.idle_timeout != 0 {
            write!(f, ",idle_timeout={}", self.idle_timeout)?;
        }
        if self.hard_timeout != 0 {
            write!(f, ",hard_timeout={}", self.hard_timeout)?;
        }
        if self.cookie != 0 {
            write!(f, ",cookie={:#x}", self.cookie)?;
        }
        for item in &self.items {
            match item {
                LearnSpecItem::MatchSame(s) => write!(f, ",{s}")?,
                LearnSpecItem::MatchField { dst, src } => write!(f, ",{dst}={src}")?,
                LearnSpecItem::MatchValue { dst, value } => {
                    write!(f, ",{dst}={}", dst.field.fmt_value(*value))?
                }
                LearnSpecItem::LoadValue { value, dst } => write!(f, ",load:{value:#x}->{dst}")?,
                LearnSpecItem::LoadField { src, dst } => write!(f, ",load:{src}->{dst}")?,
                LearnSpecItem::Output(s) => write!(f, ",output:{s}")?,
            }
        }
        f.write_char(')')
    }
}

impl fmt::Display for OfAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfAction::Output(OFPP_TABLE) => f.write_str("TABLE"),
            OfAction::Output(p) => write!(f, "output:{p}"),
            OfAction::OutputField(s) => write!(f, "output:{s}"),
            OfAction::Normal => f.write_str("NORMAL"),
            OfAction::Flood => f.write_str("FLOOD"),
            OfAction::All => f.write_str("ALL"),
            OfAction::InPort => f.write_str("IN_PORT"),
            OfAction::Local => f.write_str("LOCAL"),
            OfAction::Drop => f.write_str("drop"),
            OfAction::Resubmit { port, table } => {
                f.write_str("resubmit(")?;
                if let Some(p) = port {
                    if *p == super::action::OFPP_IN_PORT {
                        f.write_str("in_port")?;
                    } else {
                        write!(f, "{p}")?;
                    }
                }
                f.write_char(',')?;
                if let Some(t) = table {
                    write!(f, "{t}")?;
                }
                f.write_char(')')
            }
            OfAction::GotoTable(t) => write!(f, "goto_table:{t}"),
            OfAction::ModVlanVid(v) => write!(f, "mod_vlan_vid:{v}"),
            OfAction::ModVlanPcp(v) => write!(f, "mod_vlan_pcp:{v}"),
            OfAction::StripVlan => f.write_str("strip_vlan"),
            OfAction::PushVlan(t) => write!(f, "push_vlan:{t:#06x}"),
            OfAction::ModDlSrc(m) => write!(f, "mod_dl_src:{}", fmt_mac(*m)),
            OfAction::ModDlDst(m) => write!(f, "mod_dl_dst:{}", fmt_mac(*m)),
            OfAction::ModNwSrc(a) => write!(f, "mod_nw_src:{a}"),
            OfAction::ModNwDst(a) => write!(f, "mod_nw_dst:{a}"),
            OfAction::ModNwTos(t) => write!(f, "mod_nw_tos:{t}"),
            OfAction::ModTpSrc(p) => write!(f, "mod_tp_src:{p}"),
            OfAction::ModTpDst(p) => write!(f, "mod_tp_dst:{p}"),
            OfAction::SetField { field, value } => {
                write!(f, "set_field:{}->{field}", field.fmt_value(*value))
            }
            OfAction::Load { value, dst } => write!(f, "load:{value:#x}->{dst}"),
            OfAction::Move { src, dst } => write!(f, "move:{src}->{dst}"),
            OfAction::SetTunnel(id) => write!(f, "set_tunnel:{id:#x}"),
            OfAction::Learn(spec) => write!(f, "{spec}"),
            OfAction::DecTtl => f.write_str("dec_ttl"),
            OfAction::ModNwTtl(t) => write!(f, "mod_nw_ttl:{t}"),
            OfAction::ModNwEcn(e) => write!(f, "mod_nw_ecn:{e}"),
            OfAction::WriteMetadata { value, mask } if *mask == u64::MAX => {
                write!(f, "write_metadata:{value:#x}")
            }
            OfAction::WriteMetadata { value, mask } => write!(f, "write_metadata:{value:#x}/{mask:#x}"),
            OfAction::Group(g) => write!(f, "group:{g}"),
            OfAction::Controller(c) => write!(f, "{c}"),
            OfAction::WriteActions(set) => write!(f, "write_actions({})", fmt_actions(set)),
            OfAction::ClearActions => f.write_str("clear_actions"),
            OfAction::CtClear => f.write_str("ct_clear"),
            // OVS's order: commit, table, zone, nat, exec.
            OfAction::Ct(c) => {
                let mut parts: Vec<String> = Vec::new();
                if c.commit {
                    parts.push("commit".into());
                }
                if let Some(t) = c.table {
                    parts.push(format!("table={t}"));
                }
                match c.zone {
                    super::action::CtZone::Imm(0) => {}
                    super::action::CtZone::Imm(z) => parts.push(format!("zone={z}")),
                    super::action::CtZone::Field(s) => parts.push(format!("zone={s}")),
                }
                // OVS writes nat outside exec(), before it.
                if let Some(n) = c.nat {
                    parts.push(n.to_string());
                }
                if !c.exec.is_empty() {
                    parts.push(format!("exec({})", fmt_actions(&c.exec)));
                }
                write!(f, "ct({})", parts.join(","))
            }
            OfAction::Note(bytes) => {
                f.write_str("note:")?;
                for (i, b) in bytes.iter().enumerate() {
                    if i > 0 {
                        f.write_char('.')?;
                    }
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// Shorthand keyword for a (dl_type, nw_proto) pair, if one exists.
fn shorthand(m: &Match) -> Option<(&'static str, bool)> {
    let ty = m.get(OfField::DlType);
    if ty.1 != 0xffff {
        return None;
    }
    let proto = m.get(OfField::NwProto);
    let exact_proto = (proto.1 == 0xff).then_some(proto.0);
    let with_proto = |p4: &'static str, p6: &'static str| match ty.0 {
        0x0800 => Some((p4, true)),
        0x86dd => Some((p6, true)),
        _ => None,
    };
    match (ty.0, exact_proto) {
        (0x0800 | 0x86dd, Some(6)) => with_proto("tcp", "tcp6"),
        (0x0800 | 0x86dd, Some(17)) => with_proto("udp", "udp6"),
        (0x0800, Some(1)) => Some(("icmp", true)),
        (0x86dd, Some(58)) => Some(("icmp6", true)),
        (0x0800, Some(132)) => Some(("sctp", true)),
        (0x0800, _) => Some(("ip", false)),
        (0x86dd, _) => Some(("ipv6", false)),
        (0x0806, _) => Some(("arp", false)),
        _ => None,
    }
}

/// Port names for printing flows (`dump-flows --names`): OpenFlow number ->
/// name. Only names that read back as one token are used (others print as
/// numbers).
pub type PortNameMap = std::collections::BTreeMap<u32, String>;

/// The name OVS prints for a reserved port (`ofputil_port_to_string`).
fn reserved_port_name(p: u32) -> Option<&'static str> {
    use super::action::*;
    Some(match p {
        OFPP_IN_PORT => "IN_PORT",
        OFPP_NORMAL => "NORMAL",
        OFPP_FLOOD => "FLOOD",
        OFPP_ALL => "ALL",
        OFPP_CONTROLLER => "CONTROLLER",
        OFPP_LOCAL => "LOCAL",
        OFPP_UNSET => "UNSET",
        OFPP_TABLE => "TABLE",
        _ => return None,
    })
}

fn port_str(p: u32, names: Option<&PortNameMap>) -> String {
    let plain = |n: &&String| {
        !n.is_empty()
            && n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && super::action_keyword(n).is_none()
            && OfField::from_name(n).is_none()
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    match names.and_then(|m| m.get(&p)).filter(plain) {
        Some(n) => n.clone(),
        None => p.to_string(),
    }
}

/// A match with port names (`in_port=vm1`) where `names` has them.
pub fn fmt_match_named(m: &Match, names: &PortNameMap) -> String {
    m.parts(Some(names)).join(",")
}

/// An action list with port names (`output:patch-tun`) where `names` has them.
pub fn fmt_actions_named(actions: &[OfAction], names: &PortNameMap) -> String {
    if actions.is_empty() {
        return "drop".into();
    }
    let named = |a: &OfAction| match a {
        OfAction::Output(OFPP_TABLE) => "TABLE".into(),
        OfAction::Output(p) => format!("output:{}", port_str(*p, Some(names))),
        OfAction::Resubmit { port: Some(p), table } if *p != super::action::OFPP_IN_PORT => format!(
            "resubmit({},{})",
            port_str(*p, Some(names)),
            table.map(|t| t.to_string()).unwrap_or_default()
        ),
        OfAction::WriteActions(set) => format!("write_actions({})", fmt_actions_named(set, names)),
        a => a.to_string(),
    };
    actions.iter().map(named).collect::<Vec<_>>().join(",")
}

impl fmt::Display for Match {
    /// The match part of a flow, e.g. `tcp,in_port=1,nw_dst=198.18.0.0/24,tp_dst=80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.parts(None).join(","))
    }
}

impl Match {
    fn parts(&self, names: Option<&PortNameMap>) -> Vec<String> {
        let mut parts: Vec<String> = Vec::new();
        let short = shorthand(self);
        if let Some((s, _)) = short {
            parts.push(s.to_string());
        }
        for field in OfField::all() {
            let (v, m) = self.get(field);
            if m == 0 {
                continue;
            }
            let arp = self.get(OfField::DlType) == (0x0806, 0xffff);
            match field {
                // The IPv6 words hold ARP's hardware addresses in an ARP match.
                OfField::Ipv6Src | OfField::Ipv6Dst if arp => continue,
                OfField::ArpSha | OfField::ArpTha if !arp => continue,
                // OVS's nw_tos is the DSCP bits in place; nw_ecn the low two.
                OfField::NwTos if matches!(m, 0xfc | 0x03 | 0xff) => {
                    if m & 0xfc != 0 {
                        parts.push(format!("nw_tos={}", v & 0xfc));
                    }
                    if m & 3 != 0 {
                        parts.push(format!("nw_ecn={}", v & 3));
                    }
                    continue;
                }
                OfField::DlType if short.is_some() => continue,
                OfField::NwProto if short.is_some_and(|s| s.1) => continue,
                OfField::VlanTci if m == 0x1fff && v & VLAN_CFI as u128 != 0 => {
                    parts.push(format!("dl_vlan={}", v & 0xfff));
                    continue;
                }
                OfField::CtState => {
                    parts.push(format!("ct_state={}", fmt_ct_state(v as u8, m as u8)));
                    continue;
                }
                OfField::IpFrag => {
                    let word = match (v as u8, m as u8) {
                        (0, FRAG_ANY) => Some("no"),
                        (FRAG_ANY, FRAG_ANY) => Some("yes"),
                        (FRAG_ANY, 3) => Some("first"),
                        (3, 3) => Some("later"),
                        (0, FRAG_LATER) => Some("not_later"),
                        _ => None,
                    };
                    if let Some(w) = word {
                        parts.push(format!("ip_frag={w}"));
                        continue;
                    }
                }
                _ => {}
            }
            if field == OfField::InPort && m == field.max() {
                parts.push(format!("in_port={}", port_str(v as u32, names)));
                continue;
            }
            if field == OfField::ActsetOutput && m == field.max() {
                let p = match reserved_port_name(v as u32) {
                    Some(n) => n.to_string(),
                    None => port_str(v as u32, names),
                };
                parts.push(format!("actset_output={p}"));
                continue;
            }
            // ICMP's type and code live in the port fields; OVS names them.
            let icmp = self.get(OfField::NwProto).1 == 0xff && matches!(self.get(OfField::NwProto).0, 1 | 58);
            let name = match field {
                OfField::TpSrc if icmp => "icmp_type".to_string(),
                OfField::TpDst if icmp => "icmp_code".to_string(),
                _ => field.name(),
            };
            let mut s = format!("{name}={}", field.fmt_value(v));
            if m != field.max() {
                // A prefix mask of an address is written as its length, as
                // OVS does (nw_dst=198.18.0.0/16).
                let len = m.count_ones();
                let prefix = m == field.max() & !(field.max() >> len);
                match field.kind() {
                    ValueKind::Ipv4 | ValueKind::Ipv6 if prefix => {
                        let _ = write!(s, "/{len}");
                    }
                    _ => {
                        let _ = write!(s, "/{}", field.fmt_value(m));
                    }
                }
            }
            parts.push(s);
        }
        parts
    }
}

/// `ct_state` flags as OVS writes them: `+est+trk`, `-trk`, one per mask bit.
pub fn fmt_ct_state(v: u8, m: u8) -> String {
    let mut s = String::new();
    for (name, bit) in super::field::CT_STATE_FLAGS {
        if m & bit != 0 {
            s.push(if v & bit != 0 { '+' } else { '-' });
            s.push_str(name);
        }
    }
    s
}

/// The action list, `drop` when empty.
pub fn fmt_actions(actions: &[OfAction]) -> String {
    if actions.is_empty() {
        return "drop".into();
    }
    actions
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for Rule {
    /// The flow in add-flow syntax, e.g. `table=0,priority=10,in_port=1,actions=NORMAL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "table={},priority={}", self.table, self.priority)?;
        if self.cookie != 0 {
            write!(f, ",cookie={:#x}", self.cookie)?;
        }
        if self.idle_timeout != 0 {
            write!(f, ",idle_timeout={}", self.idle_timeout)?;
        }
        if self.hard_timeout != 0 {
            write!(f, ",hard_timeout={}", self.hard_timeout)?;
        }
        let m = self.matches.to_string();
        if !m.is_empty() {
            write!(f, ",{m}")?;
        }
        write!(f, ",actions={}", fmt_actions(&self.actions))
    }
}
