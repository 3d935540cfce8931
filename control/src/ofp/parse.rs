//! The ovs-ofctl flow syntax: `table=0,priority=10,in_port=1,dl_dst=..,actions=..`.
//!
//! Errors say what is wrong, where (1-based column of the offending token), and
//! suggest the intended field or action when the token is a near miss.

use super::action::{
    CtSpec, CtZone, LearnSpec, LearnSpecItem, OfAction, SubField, OFPP_ALL, OFPP_CONTROLLER, OFPP_FLOOD,
    OFPP_IN_PORT, OFPP_LOCAL, OFPP_NORMAL, OFPP_TABLE, OFPP_UNSET,
};
use super::action_set;
use super::controller::ControllerSpec;
use super::field::{parse_int, parse_mac, OfField, CT_STATE_FLAGS};
use super::matches::Match;
use super::rule::Rule;
use rvs_dataplane::conntrack::{NatAction, NatParseError};
use rvs_dataplane::flow::{FRAG_ANY, FRAG_LATER, VLAN_CFI};
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use thiserror::Error;

/// Resolves port names in flow text (`in_port=vm1`, `output:patch-tun`).
pub trait PortNames {
    /// The OpenFlow port number of `name`.
    fn port_no(&self, name: &str) -> Option<u32>;
    /// Whether a bare word in an action list may be a port name (`actions=vm1`).
    /// A resolver that accepts any name (`rvs parse-flows`, with no bridge)
    /// says no, so that a misspelt action is an error there too, as in the
    /// daemon.
    fn bare_names(&self) -> bool {
        true
    }
}

impl PortNames for () {
    fn port_no(&self, _: &str) -> Option<u32> {
        None
    }
}

impl PortNames for BTreeMap<String, u32> {
    fn port_no(&self, name: &str) -> Option<u32> {
        self.get(name).copied()
    }
}

/// A flow that could not be parsed.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub struct FlowParseError {
    /// 1-based column of the offending token.
    pub column: usize,
    /// The offending token.
    pub token: String,
    /// What is wrong.
    pub message: String,
    /// The closest known name, for a near miss.
    pub suggestion: Option<String>,
}

impl fmt::Display for FlowParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "column {}: {} (at {:?})",
            self.column, self.message, self.token
        )?;
        if let Some(s) = &self.suggestion {
            write!(f, "; did you mean {s:?}?")?;
        }
        Ok(())
    }
}

/// An error in a batch of flows: the line (1-based) and the error on it.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
#[error("line {line}: {error}")]
pub struct FlowsParseError {
    /// 1-based line.
    pub line: usize,
    /// The error.
    pub error: FlowParseError,
}

type PResult<T> = Result<T, FlowParseError>;

fn err<T>(column: usize, token: &str, message: impl Into<String>) -> PResult<T> {
    Err(FlowParseError {
        column,
        token: token.to_string(),
        message: message.into(),
        suggestion: None,
    })
}

fn suggest(word: &str, candidates: impl IntoIterator<Item = String>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, &c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d > 0)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Split `s` (which starts at column `base`) at top-level commas (and, when
/// `spaces`, whitespace), keeping parenthesised groups whole.
fn split_top(s: &str, base: usize, spaces: bool) -> PResult<Vec<(usize, &str)>> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let mut open_at = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => {
                if depth == 0 {
                    open_at = i;
                }
                depth += 1;
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return err(base + i, ")", "unbalanced parentheses: ')' without '('");
                }
            }
            c if depth == 0 && (c == ',' || (spaces && c.is_whitespace())) => {
                if i > start {
                    out.push((base + start, &s[start..i]));
                }
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if depth > 0 {
        return err(
            base + open_at,
            &s[open_at..],
            "unbalanced parentheses: '(' is never closed",
        );
    }
    if s.len() > start {
        out.push((base + start, &s[start..]));
    }
    Ok(out
        .into_iter()
        .map(|(c, t)| (c, t.trim()))
        .filter(|(_, t)| !t.is_empty())
        .collect())
}

/// Parse one flow. Port names are resolved with `ports`.
pub fn parse_flow(text: &str, ports: &dyn PortNames) -> PResult<Rule> {
    let (match_part, actions_part) = split_actions(text);
    let mut rule = Rule::default();
    let mut seen: Vec<String> = Vec::new();
    for (col, tok) in split_top(match_part, 1, true)? {
        parse_match_token(&mut rule, &mut seen, col, tok, ports)?;
    }
    check_prerequisites(&rule.matches, text)?;
    match actions_part {
        Some((col, a)) => rule.actions = parse_actions(a, col, ports)?,
        None => {
            return err(
                text.len().max(1),
                text,
                "missing actions= (use actions=drop to drop)",
            )
        }
    }
    check_actions(&rule, text)?;
    Ok(rule)
}

/// What OVS checks of a rule's actions against its own match and table
/// (`ofpacts_check`): `goto_table` only forward, and a field an action
/// writes (`set_field`, `load`, `move`) or reads (`move`) needs its protocol
/// in the match (OVS: OFPBAC_MATCH_INCONSISTENT).
fn check_actions(rule: &Rule, text: &str) -> PResult<()> {
    let at = |what: &str| text.find(what).map_or(1, |i| i + 1);
    let mut fields: Vec<(OfField, &'static str)> = Vec::new();
    // Fields written outside ct(exec(...)).
    let mut written: Vec<(OfField, &'static str)> = Vec::new();
    let mut stack: Vec<&OfAction> = rule.actions.iter().collect();
    while let Some(a) = stack.pop() {
        match a {
            OfAction::GotoTable(t) if *t <= rule.table => {
                let tok = format!("goto_table:{t}");
                return err(
                    at("goto_table"),
                    &tok,
                    format!(
                        "goto_table:{t} in table {}: a rule may only go to a later table (OFPBIC_BAD_TABLE_ID)",
                        rule.table
                    ),
                );
            }
            OfAction::SetField { field, .. } => {
                fields.push((*field, "set_field"));
                written.push((*field, "set_field"));
            }
            OfAction::Load { dst, .. } => {
                fields.push((dst.field, "load"));
                written.push((dst.field, "load"));
            }
            OfAction::Move { src, dst } => {
                fields.push((src.field, "move"));
                fields.push((dst.field, "move"));
                written.push((dst.field, "move"));
            }
            OfAction::WriteActions(inner) => stack.extend(inner),
            OfAction::Ct(spec) => check_ct(rule, spec, at("ct"))?,
            _ => {}
        }
    }
    for (f, action) in &written {
        let why = match f {
            OfField::CtState | OfField::CtZone => format!("{} is read-only (ct() sets it)", f.name()),
            OfField::CtMark | OfField::CtLabel => {
                format!(
                    "{} can only be set inside ct(commit,exec(...)), as in OVS",
                    f.name()
                )
            }
            _ => continue,
        };
        return err(at(action), action, why);
    }
    for (f, action) in fields {
        if let Some(need) = unmet_prerequisite(f, &rule.matches) {
            let name = f.name();
            return err(
                at(action),
                action,
                format!(
                    "{action} of {name} needs {need} in the match (e.g. add \"{}\"), as OVS requires",
                    need.split(' ').next().unwrap_or("ip")
                ),
            );
        }
    }
    Ok(())
}

/// OVS's `ofpact_check_ct` and `_nat`: conntrack needs an IP packet (the
/// match says `ip` or `ipv6`), an invalid one cannot be committed, and a NAT
/// range is of the match's address family.
fn check_ct(rule: &Rule, spec: &CtSpec, column: usize) -> PResult<()> {
    let commit = spec.commit;
    let (ty, ty_mask) = rule.matches.get(OfField::DlType);
    if ty_mask != 0xffff || (ty != 0x0800 && ty != 0x86dd) {
        return err(
            column,
            "ct",
            "ct needs ip or ipv6 in the match (e.g. add \"ip\"), as OVS requires (OFPBAC_MATCH_INCONSISTENT)",
        );
    }
    let (state, mask) = rule.matches.get(OfField::CtState);
    let inv = rvs_dataplane::conntrack::state::INV as u128;
    if commit && state & mask & inv != 0 {
        return err(
            column,
            "ct",
            "ct(commit) of a packet matched as +inv: an invalid packet cannot be committed, as OVS says (OFPBAC_MATCH_INCONSISTENT)",
        );
    }
    if let Some(NatAction::Range(r)) = &spec.nat {
        if r.min.is_ipv6() != (ty == 0x86dd) {
            let (range, flow) = if r.min.is_ipv6() {
                ("IPv6", "ip")
            } else {
                ("IPv4", "ipv6")
            };
            return err(
                column,
                "ct",
                format!(
                    "ct(nat): an {range} range in an {flow} flow, as OVS refuses (OFPBAC_MATCH_INCONSISTENT)"
                ),
            );
        }
    }
    Ok(())
}

/// Parse a match alone (`in_port=vm1,ip,nw_dst=198.18.0.2`), as `trace` and
/// `del-flows` take it.
pub fn parse_match(text: &str, ports: &dyn PortNames) -> PResult<Match> {
    let mut rule = Rule::default();
    let mut seen: Vec<String> = Vec::new();
    for (col, tok) in split_top(text, 1, true)? {
        parse_match_token(&mut rule, &mut seen, col, tok, ports)?;
    }
    check_prerequisites(&rule.matches, text)?;
    Ok(rule.matches)
}

/// A Geneve option <-> `tun_metadataN` mapping, as `ovs-ofctl add-tlv-map`
/// takes it: `{class=0x0102,type=0x80,len=4}->tun_metadata0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlvMapping {
    /// Option class.
    pub class: u16,
    /// Option type (critical bit included).
    pub typ: u8,
    /// Data length in bytes.
    pub len: u8,
    /// Metadata slot N of `tun_metadataN`.
    pub slot: u8,
}

/// Parse a TLV mapping.
pub fn parse_tlv_map(text: &str) -> PResult<TlvMapping> {
    let t = text.trim();
    let (lhs, rhs) = t.split_once("->").map_or_else(
        || err(1, t, "expected {class=..,type=..,len=..}->tun_metadataN"),
        Ok,
    )?;
    let inner = lhs
        .trim()
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .map_or_else(
            || err(1, lhs, "the option goes in braces: {class=..,type=..,len=..}"),
            Ok,
        )?;
    let (mut class, mut typ, mut len) = (None, None, None);
    for (col, kv) in split_top(inner, 2, false)? {
        let (k, v) = kv
            .split_once('=')
            .map_or_else(|| err(col, kv, "expected key=value"), Ok)?;
        match k.trim() {
            "class" => class = Some(parse_num::<u16>(col, kv, v.trim(), "class")?),
            "type" => typ = Some(parse_num::<u8>(col, kv, v.trim(), "type")?),
            "len" => len = Some(parse_num::<u8>(col, kv, v.trim(), "len")?),
            other => {
                return Err(FlowParseError {
                    column: col,
                    token: kv.into(),
                    message: format!("unknown key {other:?}"),
                    suggestion: suggest(other, ["class", "type", "len"].map(String::from)),
                })
            }
        }
    }
    let col = lhs.len() + 3;
    let slot = match OfField::from_name(rhs.trim()) {
        Some(OfField::TunMetadata(n)) => n,
        _ => {
            return err(
                col,
                rhs,
                "the target must be tun_metadata0..tun_metadata5 (rvs has six slots)",
            )
        }
    };
    match (class, typ, len) {
        (Some(class), Some(typ), Some(len)) => Ok(TlvMapping {
            class,
            typ,
            len,
            slot,
        }),
        _ => err(1, lhs, "class, type and len are all required"),
    }
}

/// Parse one flow per line (blank lines and `#` comments skipped): all of them
/// or an error naming the line.
pub fn parse_flows(text: &str, ports: &dyn PortNames) -> Result<Vec<Rule>, FlowsParseError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| parse_flow(l, ports).map_err(|error| FlowsParseError { line: i + 1, error }))
        .collect()
}

/// Split at the first top-level `actions=` (or OVS's alias `action=`) that
/// starts a token.
fn split_actions(text: &str) -> (&str, Option<(usize, &str)>) {
    let mut depth = 0i32;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => {
                let key = ["actions=", "action="]
                    .into_iter()
                    .find(|k| text[i..].starts_with(k));
                let boundary = i == 0 || matches!(bytes[i - 1], b',' | b' ' | b'\t');
                if let Some(k) = key.filter(|_| boundary) {
                    let start = i + k.len();
                    return (&text[..i], Some((start + 1, &text[start..])));
                }
            }
            _ => {}
        }
    }
    (text, None)
}

const SHORTHANDS: &[(&str, u16, Option<u8>)] = &[
    ("ip", 0x0800, None),
    ("ipv6", 0x86dd, None),
    ("arp", 0x0806, None),
    ("tcp", 0x0800, Some(6)),
    ("udp", 0x0800, Some(17)),
    ("icmp", 0x0800, Some(1)),
    ("sctp", 0x0800, Some(132)),
    ("tcp6", 0x86dd, Some(6)),
    ("udp6", 0x86dd, Some(17)),
    ("icmp6", 0x86dd, Some(58)),
];

/// Keys that dump-flows prints but that are not part of a rule.
const IGNORED_KEYS: &[&str] = &[
    "duration",
    "n_packets",
    "n_bytes",
    "idle_age",
    "hard_age",
    "reset_counts",
];

fn rule_keys() -> impl Iterator<Item = String> {
    [
        "table",
        "priority",
        "cookie",
        "idle_timeout",
        "hard_timeout",
        "actions",
    ]
    .into_iter()
    .chain(SHORTHANDS.iter().map(|s| s.0))
    .map(String::from)
    .chain(OfField::known_names())
}

fn parse_num<T: TryFrom<u128>>(col: usize, tok: &str, v: &str, what: &str) -> PResult<T> {
    parse_int(v).and_then(|n| T::try_from(n).ok()).map_or_else(
        || err(col, tok, format!("{what} needs a number in range, not {v:?}")),
        Ok,
    )
}

fn parse_match_token(
    rule: &mut Rule,
    seen: &mut Vec<String>,
    col: usize,
    tok: &str,
    ports: &dyn PortNames,
) -> PResult<()> {
    let (key, value) = match tok.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v.trim())),
        None => (tok, None),
    };
    if seen.iter().any(|s| s == key) {
        return err(col, tok, format!("{key} is given twice"));
    }
    seen.push(key.to_string());
    if let Some((_, ty, proto)) = SHORTHANDS.iter().find(|s| s.0 == key) {
        if value.is_some() {
            return err(col, tok, format!("{key} takes no value"));
        }
        set_once(rule, col, tok, OfField::DlType, *ty as u128, 0xffff)?;
        if let Some(p) = proto {
            set_once(rule, col, tok, OfField::NwProto, *p as u128, 0xff)?;
        }
        return Ok(());
    }
    if IGNORED_KEYS.contains(&key) {
        return Ok(());
    }
    let Some(v) = value else {
        let mut e = FlowParseError {
            column: col,
            token: tok.into(),
            message: format!("unknown keyword {key:?}"),
            suggestion: None,
        };
        e.suggestion = suggest(key, rule_keys());
        return Err(e);
    };
    match key {
        "table" => rule.table = parse_num(col, tok, v, "table")?,
        "priority" => rule.priority = parse_num(col, tok, v, "priority")?,
        "cookie" => rule.cookie = parse_num(col, tok, v.split('/').next().unwrap_or(v), "cookie")?,
        "idle_timeout" => rule.idle_timeout = parse_num(col, tok, v, "idle_timeout")?,
        "hard_timeout" => rule.hard_timeout = parse_num(col, tok, v, "hard_timeout")?,
        "in_port" => {
            let p = parse_port(col, tok, v, ports)?;
            set_once(rule, col, tok, OfField::InPort, p as u128, OfField::InPort.max())?;
        }
        "actset_output" => {
            let p = match reserved_port(v) {
                Some(p) => p,
                None => parse_port(col, tok, v, ports)?,
            };
            let f = OfField::ActsetOutput;
            set_once(rule, col, tok, f, p as u128, f.max())?;
        }
        "dl_vlan" => {
            let vid: u16 = parse_num(col, tok, v, "dl_vlan")?;
            if vid == 0xffff {
                set_once(rule, col, tok, OfField::VlanTci, 0, 0xffff)?;
            } else if vid < 4096 {
                merge(rule, OfField::VlanTci, (VLAN_CFI | vid) as u128, 0x1fff);
            } else {
                return err(col, tok, "dl_vlan must be 0..4095, or 0xffff for untagged");
            }
        }
        "dl_vlan_pcp" => {
            let pcp: u8 = parse_num(col, tok, v, "dl_vlan_pcp")?;
            if pcp > 7 {
                return err(col, tok, "dl_vlan_pcp must be 0..7");
            }
            merge(
                rule,
                OfField::VlanTci,
                (((pcp as u16) << 13) | VLAN_CFI) as u128,
                0xf000,
            );
        }
        "ip_frag" | "nw_frag" => {
            let (val, mask) = match v {
                "no" => (0, FRAG_ANY),
                "yes" => (FRAG_ANY, FRAG_ANY),
                "first" => (FRAG_ANY, FRAG_ANY | FRAG_LATER),
                "later" => (FRAG_ANY | FRAG_LATER, FRAG_ANY | FRAG_LATER),
                "not_later" => (0, FRAG_LATER),
                _ => return err(col, tok, "ip_frag is one of no, yes, first, later, not_later"),
            };
            set_once(rule, col, tok, OfField::IpFrag, val as u128, mask as u128)?;
        }
        "nw_tos" if !v.contains('/') => {
            let tos: u8 = parse_num(col, tok, v, "nw_tos")?;
            dscp_only(col, tok, tos as u128, "nw_tos")?;
            set_bits(rule, col, tok, OfField::NwTos, tos as u128, 0xfc)?;
        }
        "tcp_flags" => {
            let names: Vec<(&str, u128)> = TCP_FLAGS.iter().map(|(n, b)| (*n, *b as u128)).collect();
            let (val, mask) = parse_flags(col, tok, v, OfField::TcpFlags, &names, "TCP flag")?;
            set_once(rule, col, tok, OfField::TcpFlags, val, mask)?;
        }
        "ct_state" => {
            let names: Vec<(&str, u128)> = CT_STATE_FLAGS.iter().map(|(n, b)| (*n, *b as u128)).collect();
            let (val, mask) = parse_flags(col, tok, v, OfField::CtState, &names, "ct_state flag")?;
            set_once(rule, col, tok, OfField::CtState, val, mask)?;
        }
        _ => {
            let field = match key {
                "arp_spa" => OfField::NwSrc,
                "arp_tpa" => OfField::NwDst,
                "icmp_type" | "icmpv6_type" => OfField::TpSrc,
                "icmp_code" | "icmpv6_code" => OfField::TpDst,
                _ => OfField::from_name(key).ok_or_else(|| FlowParseError {
                    column: col,
                    token: tok.into(),
                    message: format!("unknown field {key:?}"),
                    suggestion: suggest(key, rule_keys()),
                })?,
            };
            let (val, mask) = parse_masked(col, tok, field, v)?;
            if OfField::views().any(|f| f == field) {
                set_bits(rule, col, tok, field, val, mask)?;
            } else {
                set_once(rule, col, tok, field, val, mask)?;
            }
        }
    }
    Ok(())
}

/// Set a field, refusing to contradict an earlier shorthand or field.
fn set_once(rule: &mut Rule, col: usize, tok: &str, f: OfField, v: u128, m: u128) -> PResult<()> {
    let (ov, om) = rule.matches.get(f);
    if om != 0 && (om != m || ov != v & m) {
        return err(col, tok, format!("conflicts with an earlier condition on {f}"));
    }
    rule.matches.set(f, v, m);
    Ok(())
}

/// OVS's nw_tos is the DSCP bits of the TOS byte in place: the two ECN bits
/// must be clear (they are nw_ecn's).
fn dscp_only(col: usize, tok: &str, tos: u128, what: &str) -> PResult<()> {
    if tos & 3 != 0 {
        return err(
            col,
            tok,
            format!("{what} is the DSCP bits only: a multiple of 4 (nw_ecn / mod_nw_ecn are the low 2 bits)"),
        );
    }
    Ok(())
}

/// Match some bits of a field whose other bits another token may match too
/// (nw_tos and nw_ecn, vlan_vid and vlan_pcp), refusing a contradiction.
fn set_bits(rule: &mut Rule, col: usize, tok: &str, f: OfField, v: u128, m: u128) -> PResult<()> {
    let (ov, om) = rule.matches.get(f);
    if (ov ^ v) & om & m != 0 {
        return err(col, tok, format!("conflicts with an earlier condition on {f}"));
    }
    rule.matches.set(f, ov | (v & m), om | m);
    Ok(())
}

/// Combine with an earlier condition on other bits of the same field.
fn merge(rule: &mut Rule, f: OfField, v: u128, m: u128) {
    let (ov, om) = rule.matches.get(f);
    rule.matches.set(f, (ov & !m) | (v & m), om | m);
}

fn parse_port(col: usize, tok: &str, v: &str, ports: &dyn PortNames) -> PResult<u32> {
    // LOCAL, CONTROLLER (`in_port=CONTROLLER`: a controller's packet-outs), ...
    if let Some(p) = reserved_port(v) {
        return Ok(p);
    }
    if let Some(n) = parse_int(v) {
        // OpenFlow 1.0 port numbers, as OVS takes them in flow text.
        return match u16::try_from(n) {
            Ok(p) => Ok(p as u32),
            Err(_) => err(
                col,
                tok,
                format!("port {v} is outside the supported range 0 through 0xffff"),
            ),
        };
    }
    ports.port_no(v).map_or_else(
        || err(col, tok, format!("no port named {v:?} on this bridge")),
        Ok,
    )
}

/// `value` or `value/mask`; IPv4/IPv6 also take a prefix length.
fn parse_masked(col: usize, tok: &str, f: OfField, v: &str) -> PResult<(u128, u128)> {
    let (val, mask) = match v.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    let value = f.parse_value(val).or_else(|e| err(col, tok, e))?;
    let mask = match mask {
        None => f.max(),
        Some(m) => {
            let is_prefix = matches!(
                f.kind(),
                super::field::ValueKind::Ipv4 | super::field::ValueKind::Ipv6
            ) && !m.contains('.')
                && !m.contains(':');
            if is_prefix {
                let len: u32 = m.parse().map_err(|_| FlowParseError {
                    column: col,
                    token: tok.into(),
                    message: format!("bad prefix length {m:?}"),
                    suggestion: None,
                })?;
                if len > f.width() {
                    return err(
                        col,
                        tok,
                        format!("prefix length {len} is longer than {} bits", f.width()),
                    );
                }
                if len == 0 {
                    0
                } else {
                    f.max() & !((1u128 << (f.width() - len)) - 1)
                }
            } else {
                f.parse_value(m)
                    .or_else(|_| err(col, tok, format!("bad mask {m:?} for {f}")))?
            }
        }
    };
    Ok((value & mask, mask))
}

const TCP_FLAGS: &[(&str, u16)] = &[
    ("fin", 0x001),
    ("syn", 0x002),
    ("rst", 0x004),
    ("psh", 0x008),
    ("ack", 0x010),
    ("urg", 0x020),
    ("ece", 0x040),
    ("cwr", 0x080),
    ("ns", 0x100),
];

/// `+syn-ack` style, or `value[/mask]`, for `field` whose flags are `names`
/// (`what` names them in errors: "TCP flag", "ct_state flag").
fn parse_flags(
    col: usize,
    tok: &str,
    v: &str,
    field: OfField,
    names: &[(&str, u128)],
    what: &str,
) -> PResult<(u128, u128)> {
    if !v.starts_with(['+', '-']) {
        return parse_masked(col, tok, field, v);
    }
    let (mut val, mut mask) = (0u128, 0u128);
    let mut rest = v;
    while let Some(sign) = rest.chars().next() {
        let body = &rest[1..];
        let end = body.find(['+', '-']).unwrap_or(body.len());
        let name = &body[..end];
        let bit = names
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
            .ok_or_else(|| FlowParseError {
                column: col,
                token: tok.into(),
                message: format!("unknown {what} {name:?}"),
                suggestion: suggest(name, names.iter().map(|f| f.0.to_string())),
            })?;
        mask |= bit;
        if sign == '+' {
            val |= bit;
        }
        rest = &body[end..];
    }
    Ok((val, mask))
}

/// The protocol field `f` needs and `m` does not match (`None`: fine), as
/// OVS's prerequisites: an IPv4 address needs ip (or arp: ARP's addresses
/// share the field), a port needs its transport, ND fields their ICMPv6 type.
fn unmet_prerequisite(f: OfField, m: &Match) -> Option<&'static str> {
    let ty = m.get(OfField::DlType);
    let proto = m.get(OfField::NwProto);
    let is_ty = |t: u128| ty == (t, 0xffff);
    let is_proto = |p: u128| proto == (p, 0xff);
    let ip = is_ty(0x0800) || is_ty(0x86dd);
    // ND fields need icmp6 with the NS/NA type (and code 0, OVS's MFP_ND).
    let tp_src = m.get(OfField::TpSrc);
    let (code, code_mask) = m.get(OfField::TpDst);
    let nd = |types: &[u128]| {
        is_ty(0x86dd) && is_proto(58) && types.iter().any(|t| tp_src == (*t, 0xffff)) && code & code_mask == 0
    };
    let transport = ip && (is_proto(6) || is_proto(17) || is_proto(132) || is_proto(1) || is_proto(58));
    let (ok, need) = match f {
        OfField::NwSrc | OfField::NwDst => (is_ty(0x0800) || is_ty(0x0806), "ip or arp"),
        OfField::ArpOp | OfField::ArpSha | OfField::ArpTha => (is_ty(0x0806), "arp"),
        OfField::NwProto
        | OfField::NwTos
        | OfField::NwTtl
        | OfField::NwEcn
        | OfField::IpDscp
        | OfField::IpFrag => (ip, "ip or ipv6"),
        OfField::Ipv6Src | OfField::Ipv6Dst | OfField::Ipv6Label => (is_ty(0x86dd), "ipv6"),
        OfField::TpSrc | OfField::TpDst => (transport, "tcp, udp, sctp, icmp or icmp6"),
        OfField::TcpFlags => (ip && is_proto(6), "tcp"),
        OfField::NdTarget => (nd(&[135, 136]), "icmp6,icmp_type=135 or icmp6,icmp_type=136"),
        OfField::NdSll => (nd(&[135]), "icmp6,icmp_type=135"),
        OfField::NdTll => (nd(&[136]), "icmp6,icmp_type=136"),
        _ => (true, ""),
    };
    (!ok).then_some(need)
}

/// Fields need the protocol that carries them, as in OVS.
fn check_prerequisites(m: &Match, text: &str) -> PResult<()> {
    for f in OfField::all().chain(OfField::views()) {
        let name = f.name();
        // ARP's hardware addresses share bits with the IPv6 addresses: the
        // field the text names is the one checked.
        let shared = matches!(
            f,
            OfField::ArpSha | OfField::ArpTha | OfField::Ipv6Src | OfField::Ipv6Dst
        );
        if shared && !text.contains(name.as_str()) {
            continue;
        }
        if !m.has(f) {
            continue;
        }
        if let Some(need) = unmet_prerequisite(f, m) {
            let column = text.find(name.as_str()).map_or(1, |i| i + 1);
            return err(
                column,
                &name,
                format!(
                    "{name} needs {need} to be matched too (e.g. add \"{}\")",
                    need.split(' ').next().unwrap_or("ip")
                ),
            );
        }
    }
    Ok(())
}

/// The action a bare keyword names (`NORMAL`, `in_port`, `dec_ttl`, ...).
pub fn keyword_action(name: &str) -> Option<OfAction> {
    Some(match name.to_ascii_lowercase().as_str() {
        "normal" => OfAction::Normal,
        "flood" => OfAction::Flood,
        "all" => OfAction::All,
        "in_port" => OfAction::InPort,
        "local" => OfAction::Local,
        "drop" => OfAction::Drop,
        "strip_vlan" | "pop_vlan" => OfAction::StripVlan,
        "dec_ttl" => OfAction::DecTtl,
        "controller" => OfAction::Controller(Default::default()),
        "clear_actions" => OfAction::ClearActions,
        "ct_clear" => OfAction::CtClear,
        "ct" => OfAction::Ct(CtSpec {
            commit: false,
            zone: CtZone::Imm(0),
            table: None,
            exec: Vec::new(),
            nat: None,
        }),
        _ => return None,
    })
}

const ACTION_NAMES: &[&str] = &[
    "output",
    "NORMAL",
    "FLOOD",
    "ALL",
    "IN_PORT",
    "LOCAL",
    "drop",
    "resubmit",
    "goto_table",
    "mod_vlan_vid",
    "mod_vlan_pcp",
    "strip_vlan",
    "pop_vlan",
    "push_vlan",
    "mod_dl_src",
    "mod_dl_dst",
    "mod_nw_src",
    "mod_nw_dst",
    "mod_nw_tos",
    "mod_tp_src",
    "mod_tp_dst",
    "set_field",
    "load",
    "move",
    "set_tunnel",
    "set_tunnel64",
    "learn",
    "note",
    "dec_ttl",
    "mod_nw_ttl",
    "mod_nw_ecn",
    "write_metadata",
    "controller",
    "group",
    "write_actions",
    "clear_actions",
    "ct",
    "ct_clear",
];

/// OpenFlow 1.1+ instructions in the order a rule must give them (OVS
/// refuses any other, "for OpenFlow 1.1+ compatibility"); plain actions are
/// the apply_actions instruction.
const INSTRUCTIONS: [&str; 5] = [
    "apply_actions",
    "clear_actions",
    "write_actions",
    "write_metadata",
    "goto_table",
];

fn instruction(a: &OfAction) -> usize {
    match a {
        OfAction::ClearActions => 1,
        OfAction::WriteActions(_) => 2,
        OfAction::WriteMetadata { .. } => 3,
        OfAction::GotoTable(_) => 4,
        _ => 0,
    }
}

/// Parse a comma-separated action list (with its instructions) starting at
/// column `base`.
pub fn parse_actions(text: &str, base: usize, ports: &dyn PortNames) -> PResult<Vec<OfAction>> {
    let mut out: Vec<OfAction> = Vec::new();
    for (col, tok) in split_top(text, base, false)? {
        let a = parse_action(col, tok, ports)?;
        if let Some(prev) = out.last().map(instruction) {
            let next = instruction(&a);
            if next == prev && next != 0 {
                let msg = format!(
                    "duplicate {} instruction not allowed, for OpenFlow 1.1+ compatibility",
                    INSTRUCTIONS[next]
                );
                return err(col, tok, msg);
            }
            if next < prev {
                let msg = format!(
                    "invalid instruction ordering: {} must appear before {}, for OpenFlow 1.1+ compatibility",
                    INSTRUCTIONS[next], INSTRUCTIONS[prev]
                );
                return err(col, tok, msg);
            }
        }
        out.push(a);
    }
    if out.len() > 1 && out.contains(&OfAction::Drop) {
        let col = base + text.find("drop").unwrap_or(0);
        return err(col, "drop", "drop must be the only action");
    }
    Ok(out)
}

fn parse_action(col: usize, tok: &str, ports: &dyn PortNames) -> PResult<OfAction> {
    if let Some(a) = keyword_action(tok) {
        return Ok(a);
    }
    // name:arg, name(args), or a bare port.
    let (name, arg, paren) = if let Some(i) = tok.find(['(', ':']) {
        let (n, rest) = tok.split_at(i);
        if rest.starts_with('(') {
            let inner = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')'));
            let Some(inner) = inner else {
                return err(col, tok, "unbalanced parentheses");
            };
            (n, inner, true)
        } else {
            (n, &rest[1..], false)
        }
    } else {
        (tok, "", false)
    };
    let argcol = col + name.len() + 1;
    let num = |what: &str| -> PResult<u128> {
        parse_int(arg).map_or_else(
            || err(argcol, tok, format!("{what} needs a number, not {arg:?}")),
            Ok,
        )
    };
    // Action names are case-insensitive, as OVS's (`CONTROLLER:65535`).
    Ok(match name.to_ascii_lowercase().as_str() {
        // As in OVS, `output:in_port` is the reserved port IN_PORT; reading
        // the field takes `output:NXM_OF_IN_PORT[]`.
        "output" if arg.eq_ignore_ascii_case("in_port") => OfAction::InPort,
        "output" => {
            if arg.contains('[') || OfField::from_name(arg).is_some() {
                OfAction::OutputField(parse_subfield(argcol, tok, arg)?)
            } else {
                port_action(parse_port(argcol, tok, arg, ports)?)
            }
        }
        "resubmit" => {
            let (p, t) = if paren {
                let (p, t) = arg.split_once(',').unwrap_or((arg, ""));
                (p.trim(), t.trim())
            } else {
                (arg, "")
            };
            let port = match p {
                "" => None,
                "in_port" | "IN_PORT" => Some(OFPP_IN_PORT),
                _ => Some(parse_port(argcol, tok, p, ports)?),
            };
            let table = if t.is_empty() {
                None
            } else {
                Some(parse_num(argcol, tok, t, "resubmit table")?)
            };
            if port.is_none() && table.is_none() {
                return err(col, tok, "resubmit needs a port or a table");
            }
            OfAction::Resubmit { port, table }
        }
        "goto_table" => OfAction::GotoTable(parse_num(argcol, tok, arg, "goto_table")?),
        "mod_vlan_vid" => {
            let v = num("mod_vlan_vid")?;
            if v > 4095 {
                return err(argcol, tok, "VLAN id must be 0..4095");
            }
            OfAction::ModVlanVid(v as u16)
        }
        "mod_vlan_pcp" => {
            let v = num("mod_vlan_pcp")?;
            if v > 7 {
                return err(argcol, tok, "VLAN priority must be 0..7");
            }
            OfAction::ModVlanPcp(v as u8)
        }
        "push_vlan" => {
            let v = num("push_vlan")?;
            if v != 0x8100 && v != 0x88a8 {
                return err(argcol, tok, "push_vlan takes 0x8100 or 0x88a8");
            }
            OfAction::PushVlan(v as u16)
        }
        "mod_dl_src" | "mod_dl_dst" => {
            let m = parse_mac(arg).or_else(|_| err(argcol, tok, format!("{arg:?} is not a MAC address")))?;
            if name == "mod_dl_src" {
                OfAction::ModDlSrc(m)
            } else {
                OfAction::ModDlDst(m)
            }
        }
        "mod_nw_src" | "mod_nw_dst" => {
            let a: Ipv4Addr = arg
                .parse()
                .or_else(|_| err(argcol, tok, format!("{arg:?} is not an IPv4 address")))?;
            if name == "mod_nw_src" {
                OfAction::ModNwSrc(a)
            } else {
                OfAction::ModNwDst(a)
            }
        }
        "mod_nw_tos" => {
            let tos: u8 = parse_num(argcol, tok, arg, "mod_nw_tos")?;
            dscp_only(argcol, tok, tos as u128, "mod_nw_tos")?;
            OfAction::ModNwTos(tos)
        }
        "mod_nw_ecn" => {
            let e = num("mod_nw_ecn")?;
            if e > 3 {
                return err(argcol, tok, "ECN must be 0..3");
            }
            OfAction::ModNwEcn(e as u8)
        }
        "mod_nw_ttl" => OfAction::ModNwTtl(parse_num(argcol, tok, arg, "mod_nw_ttl")?),
        // dec_ttl(ID,...) names the controllers told of an expiry.
        "dec_ttl" if paren => {
            for id in arg.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                parse_num::<u16>(argcol, tok, id, "dec_ttl controller id")?;
            }
            OfAction::DecTtl
        }
        "controller" => match ControllerSpec::parse(arg) {
            Ok(c) => OfAction::Controller(c),
            Err(e) => return err(argcol, tok, e),
        },
        "group" => OfAction::Group(parse_num(argcol, tok, arg, "group id")?),
        "write_metadata" => {
            let (v, m) = arg.split_once('/').unwrap_or((arg, ""));
            let value: u64 = parse_num(argcol, tok, v, "write_metadata")?;
            let mask: u64 = if m.is_empty() {
                u64::MAX
            } else {
                parse_num(argcol, tok, m, "write_metadata mask")?
            };
            OfAction::WriteMetadata {
                value: value & mask,
                mask,
            }
        }
        "mod_tp_src" => OfAction::ModTpSrc(parse_num(argcol, tok, arg, "mod_tp_src")?),
        "mod_tp_dst" => OfAction::ModTpDst(parse_num(argcol, tok, arg, "mod_tp_dst")?),
        "set_tunnel" | "set_tunnel64" => OfAction::SetTunnel(parse_num(argcol, tok, arg, name)?),
        "set_field" => {
            let (v, f) = arg
                .split_once("->")
                .map_or_else(|| err(argcol, tok, "set_field needs VALUE->FIELD"), Ok)?;
            let field = field_named(argcol, tok, f.trim())?;
            let value = field.parse_value(v.trim()).or_else(|e| err(argcol, tok, e))?;
            if field == OfField::NwTos {
                dscp_only(argcol, tok, value, "set_field nw_tos")?;
            }
            OfAction::SetField { field, value }
        }
        "load" => {
            let (v, d) = arg
                .split_once("->")
                .map_or_else(|| err(argcol, tok, "load needs VALUE->FIELD[]"), Ok)?;
            let dst = parse_subfield(argcol, tok, d.trim())?;
            let value =
                parse_int(v.trim()).map_or_else(|| err(argcol, tok, format!("{v:?} is not a number")), Ok)?;
            if value & !(dst.mask() >> dst.start) != 0 {
                return err(
                    argcol,
                    tok,
                    format!("{value:#x} does not fit in {} bits", dst.width()),
                );
            }
            OfAction::Load { value, dst }
        }
        "move" => {
            let (s, d) = arg
                .split_once("->")
                .map_or_else(|| err(argcol, tok, "move needs SRC[]->DST[]"), Ok)?;
            let src = parse_subfield(argcol, tok, s.trim())?;
            let dst = parse_subfield(argcol, tok, d.trim())?;
            if src.width() != dst.width() {
                return err(
                    argcol,
                    tok,
                    format!("move of {} bits into {} bits", src.width(), dst.width()),
                );
            }
            OfAction::Move { src, dst }
        }
        "note" => {
            let hex: String = arg.chars().filter(|c| *c != '.').collect();
            if !hex.len().is_multiple_of(2) {
                return err(argcol, tok, "note needs hex bytes, e.g. note:01.02");
            }
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
                .collect::<Result<Vec<_>, _>>()
                .or_else(|_| err(argcol, tok, "note needs hex bytes, e.g. note:01.02"))?;
            OfAction::Note(bytes)
        }
        "learn" if paren => OfAction::Learn(parse_learn(argcol, arg, ports)?),
        "ct" if paren => OfAction::Ct(parse_ct(argcol, arg, ports)?),
        "write_actions" if paren => parse_write_actions(argcol, arg, ports)?,
        _ if arg.is_empty() && !paren => match parse_int(tok) {
            Some(n) => port_action(u32::try_from(n).or_else(|_| err(col, tok, "port number too large"))?),
            None => match ports.port_no(tok).filter(|_| ports.bare_names()) {
                Some(p) => OfAction::Output(p),
                None => {
                    let hint = if ports.bare_names() {
                        ""
                    } else {
                        " (a port name here needs output:NAME)"
                    };
                    return Err(FlowParseError {
                        column: col,
                        token: tok.into(),
                        message: format!("unknown action {tok:?}{hint}"),
                        suggestion: suggest(tok, ACTION_NAMES.iter().map(|s| s.to_string())),
                    });
                }
            },
        },
        _ => {
            return Err(FlowParseError {
                column: col,
                token: tok.into(),
                message: format!("unknown action {name:?}"),
                suggestion: suggest(name, ACTION_NAMES.iter().map(|s| s.to_string())),
            })
        }
    })
}

/// The body of `write_actions(...)`: actions an action set may hold, no
/// instructions (`drop` alone: an empty write).
fn parse_write_actions(base: usize, text: &str, ports: &dyn PortNames) -> PResult<OfAction> {
    let mut set = Vec::new();
    for (col, tok) in split_top(text, base, false)? {
        let a = parse_action(col, tok, ports)?;
        let inst = instruction(&a);
        if inst != 0 {
            return err(
                col,
                tok,
                format!("{} instruction not allowed here", INSTRUCTIONS[inst]),
            );
        }
        if a == OfAction::Drop {
            continue;
        }
        if !action_set::allowed(&a) {
            return err(
                col,
                tok,
                format!("{tok} is not allowed in an action set (write_actions)"),
            );
        }
        set.push(a);
    }
    Ok(OfAction::WriteActions(set))
}

/// A reserved OpenFlow port by name (`UNSET`, `NORMAL`, ...), as OVS's
/// `ofputil_port_from_string` knows them; any case.
fn reserved_port(name: &str) -> Option<u32> {
    Some(match name.to_ascii_uppercase().as_str() {
        "IN_PORT" => OFPP_IN_PORT,
        "NORMAL" => OFPP_NORMAL,
        "FLOOD" => OFPP_FLOOD,
        "ALL" => OFPP_ALL,
        "CONTROLLER" => OFPP_CONTROLLER,
        "LOCAL" => OFPP_LOCAL,
        "UNSET" => OFPP_UNSET,
        "TABLE" => OFPP_TABLE,
        _ => return None,
    })
}

fn port_action(p: u32) -> OfAction {
    match p {
        OFPP_LOCAL => OfAction::Local,
        OFPP_IN_PORT => OfAction::InPort,
        OFPP_NORMAL => OfAction::Normal,
        OFPP_FLOOD => OfAction::Flood,
        OFPP_ALL => OfAction::All,
        OFPP_CONTROLLER => OfAction::Controller(Default::default()),
        p => OfAction::Output(p),
    }
}

/// The arguments of `ct(...)`: `commit`, `zone=N|FIELD[a..b]`, `table=T`,
/// `exec(set_field:V->ct_mark,...)`, `nat[(src=...|dst=...)]`. ALGs and
/// `force` are refused by name (not implemented), never ignored.
fn parse_ct(base: usize, text: &str, ports: &dyn PortNames) -> PResult<CtSpec> {
    let mut spec = CtSpec {
        commit: false,
        zone: CtZone::Imm(0),
        table: None,
        exec: Vec::new(),
        nat: None,
    };
    for (col, tok) in split_top(text, base, false)? {
        let (k, v) = match tok.split_once(['=', '(']) {
            Some((k, v)) => (k.trim(), Some(v)),
            None => (tok.trim(), None),
        };
        match (k, v) {
            ("commit", None) => spec.commit = true,
            ("table", Some(t)) => spec.table = Some(parse_num(col, tok, t.trim(), "ct table")?),
            ("zone", Some(z)) => {
                spec.zone = match parse_int(z.trim()) {
                    Some(n) => {
                        CtZone::Imm(u16::try_from(n).or_else(|_| err(col, tok, "a ct zone is 0..65535"))?)
                    }
                    None => {
                        let sf = parse_subfield(col + 5, tok, z.trim())?;
                        if sf.width() != 16 {
                            return err(
                                col,
                                tok,
                                format!("a ct zone field must be 16 bits wide, not {}", sf.width()),
                            );
                        }
                        CtZone::Field(sf)
                    }
                };
            }
            ("exec", Some(body)) => {
                let inner = body
                    .strip_suffix(')')
                    .map_or_else(|| err(col, tok, "unbalanced parentheses"), Ok)?;
                spec.exec = parse_actions(inner, col + 5, ports)?;
                for a in &spec.exec {
                    let ok = match a {
                        OfAction::SetField { field, .. } => {
                            matches!(field, OfField::CtMark | OfField::CtLabel)
                        }
                        OfAction::Load { dst, .. } => matches!(dst.field, OfField::CtMark | OfField::CtLabel),
                        _ => false,
                    };
                    if !ok {
                        return err(
                            col,
                            tok,
                            format!("ct(exec({a})): exec may only set ct_mark or ct_label"),
                        );
                    }
                }
            }
            ("nat", None) => spec.nat = Some(NatAction::Existing),
            ("nat", Some(body)) if tok.trim_start()[3..].trim_start().starts_with('(') => {
                let inner = body
                    .strip_suffix(')')
                    .map_or_else(|| err(col, tok, "unbalanced parentheses"), Ok)?;
                spec.nat = Some(
                    inner
                        .parse()
                        .or_else(|e: NatParseError| err(col, tok, e.to_string()))?,
                );
            }
            ("alg", _) => {
                return err(
                    col,
                    tok,
                    "ct(alg=...) is not supported (no application-level gateways)",
                )
            }
            ("force", None) => return err(col, tok, "ct(force) is not supported yet"),
            _ => {
                return Err(FlowParseError {
                    column: col,
                    token: tok.into(),
                    message: format!("unknown ct argument {k:?}"),
                    suggestion: suggest(k, ["commit", "zone", "table", "exec", "nat"].map(String::from)),
                })
            }
        }
    }
    if !spec.exec.is_empty() && !spec.commit {
        return err(base, text, "ct(exec(...)) needs commit, as in OVS");
    }
    Ok(spec)
}

fn field_named(col: usize, tok: &str, name: &str) -> PResult<OfField> {
    OfField::from_name(name).ok_or_else(|| FlowParseError {
        column: col,
        token: tok.into(),
        message: format!("unknown field {name:?}"),
        suggestion: suggest(name, OfField::known_names()),
    })
}

/// `NAME[]`, `NAME[n]`, `NAME[a..b]` or a bare `NAME`.
fn parse_subfield(col: usize, tok: &str, s: &str) -> PResult<SubField> {
    let (name, range) = match s.split_once('[') {
        Some((n, r)) => {
            let r = r
                .strip_suffix(']')
                .map_or_else(|| err(col, tok, format!("{s:?}: missing ']'")), Ok)?;
            (n, Some(r))
        }
        None => (s, None),
    };
    let field = field_named(col, tok, name)?;
    // NXM's in_port is OpenFlow 1.0's 16-bit port number (OXM's is 32 bits).
    let w = if name == "NXM_OF_IN_PORT" {
        16
    } else {
        field.width()
    };
    let (start, end) = match range {
        None | Some("") => (0, w - 1),
        Some(r) => {
            let (a, b) = r.split_once("..").unwrap_or((r, r));
            let a: u32 = a
                .trim()
                .parse()
                .or_else(|_| err(col, tok, format!("bad bit range [{r}]")))?;
            let b: u32 = b
                .trim()
                .parse()
                .or_else(|_| err(col, tok, format!("bad bit range [{r}]")))?;
            if a > b || b >= w {
                return err(col, tok, format!("bit range [{r}] is outside {name} ({w} bits)"));
            }
            (a, b)
        }
    };
    Ok(SubField { field, start, end })
}

fn parse_learn(base: usize, text: &str, ports: &dyn PortNames) -> PResult<LearnSpec> {
    let mut spec = LearnSpec {
        table: 1,
        priority: super::rule::DEFAULT_PRIORITY,
        idle_timeout: 0,
        hard_timeout: 0,
        cookie: 0,
        items: Vec::new(),
    };
    let _ = ports;
    for (col, tok) in split_top(text, base, false)? {
        if let Some(rest) = tok.strip_prefix("load:") {
            let (v, d) = rest
                .split_once("->")
                .map_or_else(|| err(col, tok, "load needs SRC->DST[]"), Ok)?;
            let dst = parse_subfield(col, tok, d.trim())?;
            let item = match parse_int(v.trim()) {
                Some(value) => LearnSpecItem::LoadValue { value, dst },
                None => {
                    let src = parse_subfield(col, tok, v.trim())?;
                    if src.width() != dst.width() {
                        return err(col, tok, "load source and destination differ in width");
                    }
                    LearnSpecItem::LoadField { src, dst }
                }
            };
            spec.items.push(item);
        } else if let Some(rest) = tok.strip_prefix("output:") {
            spec.items
                .push(LearnSpecItem::Output(parse_subfield(col, tok, rest.trim())?));
        } else if let Some((k, v)) = tok.split_once('=') {
            let (k, v) = (k.trim(), v.trim());
            match k {
                "table" => spec.table = parse_num(col, tok, v, "table")?,
                "priority" => spec.priority = parse_num(col, tok, v, "priority")?,
                "idle_timeout" => spec.idle_timeout = parse_num(col, tok, v, "idle_timeout")?,
                "hard_timeout" => spec.hard_timeout = parse_num(col, tok, v, "hard_timeout")?,
                "cookie" => spec.cookie = parse_num(col, tok, v, "cookie")?,
                "fin_idle_timeout" | "fin_hard_timeout" => {}
                _ => {
                    let dst = parse_subfield(col, tok, k)?;
                    let item = match dst.field.parse_value(v) {
                        Ok(value) if dst.is_whole() || !v.contains('[') => {
                            LearnSpecItem::MatchValue { dst, value }
                        }
                        _ => {
                            let src = parse_subfield(col, tok, v)?;
                            if src.width() != dst.width() {
                                return err(col, tok, "match source and destination differ in width");
                            }
                            LearnSpecItem::MatchField { dst, src }
                        }
                    };
                    spec.items.push(item);
                }
            }
        } else {
            spec.items
                .push(LearnSpecItem::MatchSame(parse_subfield(col, tok, tok)?));
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests;
