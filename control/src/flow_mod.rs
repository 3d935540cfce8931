//! [`FlowMod`]: OpenFlow's add / modify / delete of rules, strict or not,
//! with cookie and out_port filters — what an OpenFlow FLOW_MOD does to a
//! bridge, independent of the wire.

use crate::bridge::{Bridge, RuleEntry};
use crate::ofp::{
    Match, OfAction, Rule, OFPP_ALL, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_LOCAL, OFPP_NORMAL,
};
use thiserror::Error;

/// What a FLOW_MOD does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Add, replacing a rule with the same table, match and priority.
    Add,
    /// Change the actions of every rule the match covers.
    Modify,
    /// Change the actions of the rule with exactly this match and priority.
    ModifyStrict,
    /// Delete every rule the match covers.
    Delete,
    /// Delete the rule with exactly this match and priority.
    DeleteStrict,
}

/// A flow modification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowMod {
    /// What to do.
    pub command: Command,
    /// The rule (add), or table/priority/match/cookie filter and new actions.
    pub rule: Rule,
    /// Modify/delete: only rules whose cookie agrees with `rule.cookie` on
    /// these bits.
    pub cookie_mask: u64,
    /// Delete/modify in every table (`table_id` 0xff).
    pub all_tables: bool,
    /// Delete: only rules with an output to this port.
    pub out_port: Option<u32>,
    /// Only rules that send to this group (deletes; OFPG_ANY: none given).
    pub out_group: Option<u32>,
    /// Add: refuse when a rule of the same priority overlaps.
    pub check_overlap: bool,
    /// Modify: clear the packet and byte counters.
    pub reset_counts: bool,
    /// Add: tell the controllers when the rule goes (FLOW_REMOVED).
    pub send_flow_rem: bool,
    /// Modify, as OpenFlow 1.0's (OVS): the rules it changes take this
    /// cookie, and when it changes none the rule is added with it.
    pub new_cookie: Option<u64>,
}

/// Why a flow modification was refused.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum FlowModError {
    /// CHECK_OVERLAP found a rule of the same priority matching some of
    /// the same packets.
    #[error("an overlapping rule of the same priority exists")]
    Overlap,
    /// Table 0xff is only for modify/delete.
    #[error("add needs a table (0..254)")]
    BadTable,
    /// The rule sends to a group the bridge does not have.
    #[error("group {0} does not exist")]
    UnknownGroup(u32),
}

/// Why a rule went, as OpenFlow's FLOW_REMOVED says (OFPRR_* values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovalReason {
    /// Idle timeout.
    Idle = 0,
    /// Hard timeout.
    Hard = 1,
    /// A FLOW_MOD delete.
    Delete = 2,
    /// The group it sent to was deleted.
    GroupDelete = 3,
}

/// A rule that went and whose controller asked to hear of it.
#[derive(Clone, Debug)]
pub struct Removed {
    /// Its bridge.
    pub bridge: String,
    /// The rule with its counters.
    pub entry: RuleEntry,
    /// Why.
    pub reason: RemovalReason,
    /// When it went (switch clock, ms).
    pub at_ms: u64,
}

/// What a flow modification did: the tables it changed and the rules it
/// removed (for FLOW_REMOVED).
#[derive(Debug, Default)]
pub struct Outcome {
    /// Tables whose rules changed.
    pub tables: Vec<u8>,
    /// Rules deleted.
    pub removed: Vec<RuleEntry>,
    /// A rule the configuration keeps (one not from a controller) was
    /// added, changed, replaced or removed: the configuration must be saved.
    pub persistent: bool,
}

/// True when `m` is at least as specific as `filter` and agrees with it.
pub fn covers(m: &Match, filter: &Match) -> bool {
    m.mask.masked(&filter.mask) == filter.mask && m.value.masked(&filter.mask) == filter.value
}

/// True when two matches can match the same packet.
fn overlaps(a: &Match, b: &Match) -> bool {
    a.value
        .w
        .iter()
        .zip(&b.value.w)
        .zip(a.mask.w.iter().zip(&b.mask.w))
        .all(|((va, vb), (ma, mb))| (va ^ vb) & ma & mb == 0)
}

/// True when the actions send to `port` (OpenFlow's out_port filter).
pub fn outputs_to(actions: &[OfAction], port: u32) -> bool {
    actions.iter().any(|a| match a {
        OfAction::Output(p) => *p == port,
        OfAction::InPort => port == OFPP_IN_PORT,
        OfAction::Normal => port == OFPP_NORMAL,
        OfAction::Flood => port == OFPP_FLOOD,
        OfAction::All => port == OFPP_ALL,
        OfAction::Local => port == OFPP_LOCAL,
        OfAction::Controller(_) => port == OFPP_CONTROLLER,
        OfAction::WriteActions(w) => outputs_to(w, port),
        _ => false,
    })
}

/// True when `actions` send to group `group` (a FLOW_MOD's or FLOW
/// request's out_group filter).
pub fn outputs_to_group(actions: &[OfAction], group: u32) -> bool {
    actions.iter().any(|a| match a {
        OfAction::Group(g) => *g == group,
        OfAction::WriteActions(w) => outputs_to_group(w, group),
        _ => false,
    })
}

impl FlowMod {
    /// `command` with `rule`, no filters and no flags.
    pub fn new(command: Command, rule: Rule) -> FlowMod {
        FlowMod {
            command,
            rule,
            cookie_mask: 0,
            all_tables: false,
            out_port: None,
            out_group: None,
            check_overlap: false,
            reset_counts: false,
            send_flow_rem: false,
            new_cookie: None,
        }
    }

    fn strict(&self) -> bool {
        matches!(self.command, Command::ModifyStrict | Command::DeleteStrict)
    }

    /// Whether the modify/delete filter selects `e`.
    fn selects(&self, e: &RuleEntry) -> bool {
        let r = &self.rule;
        let m = &e.rule.matches;
        let by_match = if self.strict() {
            *m == r.matches && e.rule.priority == r.priority
        } else {
            covers(m, &r.matches)
        };
        by_match
            && (e.rule.cookie ^ r.cookie) & self.cookie_mask == 0
            && self.out_port.is_none_or(|p| outputs_to(&e.rule.actions, p))
            && self
                .out_group
                .is_none_or(|g| outputs_to_group(&e.rule.actions, g))
    }
}

impl Bridge {
    /// Apply a flow modification; `from_controller` marks added rules as a
    /// controller's (not saved in the configuration, as OVS does not keep
    /// them across a restart). All or nothing.
    pub fn flow_mod(
        &mut self,
        fm: &FlowMod,
        now_ms: u64,
        from_controller: bool,
    ) -> Result<Outcome, FlowModError> {
        let mut out = Outcome::default();
        let table_ok = |t: u8| fm.all_tables || t == fm.rule.table;
        match fm.command {
            Command::Add => {
                if fm.all_tables {
                    return Err(FlowModError::BadTable);
                }
                let r = &fm.rule;
                if fm.check_overlap {
                    if let Some(cls) = self.tables.get(&r.table) {
                        let clash = cls
                            .iter()
                            .any(|(m, p, _)| p == r.priority && m != &r.matches && overlaps(m, &r.matches));
                        if clash {
                            return Err(FlowModError::Overlap);
                        }
                    }
                }
                let replaced = self
                    .tables
                    .get(&r.table)
                    .and_then(|c| c.get(&r.matches, r.priority));
                out.persistent = !from_controller || replaced.is_some_and(|e| !e.from_controller);
                self.add_rule_from(r.clone(), now_ms, from_controller);
                if let Some(e) = self
                    .tables
                    .get_mut(&r.table)
                    .and_then(|c| c.get_mut(&r.matches, r.priority))
                {
                    e.send_flow_rem = fm.send_flow_rem;
                }
                out.tables.push(r.table);
            }
            Command::Modify | Command::ModifyStrict => {
                for (t, cls) in self.tables.iter_mut() {
                    if !table_ok(*t) {
                        continue;
                    }
                    let keys: Vec<(Match, u16)> = cls
                        .iter()
                        .filter(|(_, _, e)| fm.selects(e))
                        .map(|(m, p, _)| (*m, p))
                        .collect();
                    for (m, p) in &keys {
                        if let Some(e) = cls.get_mut(m, *p) {
                            out.persistent |= !e.from_controller;
                            e.rule.actions = fm.rule.actions.clone();
                            if let Some(c) = fm.new_cookie {
                                e.rule.cookie = c;
                            }
                            if fm.reset_counts {
                                e.n_packets = 0;
                                e.n_bytes = 0;
                            }
                        }
                    }
                    if !keys.is_empty() {
                        out.tables.push(*t);
                    }
                }
                if let (Some(cookie), true) = (fm.new_cookie, out.tables.is_empty()) {
                    let add = FlowMod {
                        command: Command::Add,
                        rule: Rule {
                            cookie,
                            ..fm.rule.clone()
                        },
                        all_tables: false,
                        new_cookie: None,
                        ..fm.clone()
                    };
                    return self.flow_mod(&add, now_ms, from_controller);
                }
            }
            Command::Delete | Command::DeleteStrict => {
                for (t, cls) in self.tables.iter_mut() {
                    if !table_ok(*t) {
                        continue;
                    }
                    let gone = cls.retain(|_, _, e| !fm.selects(e));
                    if !gone.is_empty() {
                        out.tables.push(*t);
                        out.persistent |= gone.iter().any(|e| !e.from_controller);
                        out.removed.extend(gone);
                    }
                }
                self.tables.retain(|_, c| !c.is_empty());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ofp::parse_flow;

    fn bridge(flows: &[&str]) -> Bridge {
        let mut b = Bridge::new("br0");
        for f in flows {
            b.add_rule(parse_flow(f, &()).unwrap(), 0);
        }
        b
    }

    fn fm(command: Command, text: &str) -> FlowMod {
        FlowMod::new(command, parse_flow(text, &()).unwrap())
    }

    fn texts(b: &Bridge) -> Vec<String> {
        b.rules().iter().map(|e| e.rule.to_string()).collect()
    }

    #[test]
    fn a_one_zero_modify_sets_cookies_or_adds() {
        let mut b = bridge(&["priority=10,ip,actions=output:1"]);
        let mut m = fm(Command::Modify, "ip,actions=output:2");
        m.new_cookie = Some(7);
        b.flow_mod(&m, 0, true).unwrap();
        assert_eq!(texts(&b), ["table=0,priority=10,cookie=0x7,ip,actions=output:2"]);
        let mut m = fm(Command::ModifyStrict, "table=3,priority=4,arp,actions=drop");
        m.new_cookie = Some(9);
        let out = b.flow_mod(&m, 0, true).unwrap();
        assert_eq!(out.tables, [3]);
        assert!(texts(&b).contains(&"table=3,priority=4,cookie=0x9,arp,actions=drop".to_string()));
        // Without a new cookie (1.3's modify), nothing is added.
        let m = fm(Command::Modify, "table=5,arp,actions=drop");
        assert!(b.flow_mod(&m, 0, true).unwrap().tables.is_empty());
        assert_eq!(b.n_rules(), 2);
    }

    #[test]
    fn strict_and_loose_delete() {
        let flows = [
            "priority=10,ip,nw_dst=198.18.0.1,actions=output:1",
            "priority=20,ip,nw_dst=198.18.0.1,actions=output:2",
            "priority=10,ip,actions=drop",
        ];
        let mut b = bridge(&flows);
        let strict = fm(Command::DeleteStrict, "priority=10,ip,actions=drop");
        assert_eq!(b.flow_mod(&strict, 0, true).unwrap().removed.len(), 1);
        assert_eq!(b.n_rules(), 2);
        let mut b = bridge(&flows);
        let loose = fm(Command::Delete, "ip,actions=drop");
        assert_eq!(b.flow_mod(&loose, 0, true).unwrap().removed.len(), 3);
        let mut b = bridge(&flows);
        let mut by_port = fm(Command::Delete, "ip,actions=drop");
        by_port.out_port = Some(2);
        assert_eq!(b.flow_mod(&by_port, 0, true).unwrap().removed.len(), 1);
        assert!(texts(&b).iter().all(|t| !t.contains("output:2")));
    }

    #[test]
    fn modify_keeps_counters_and_cookie_filters() {
        let mut b = bridge(&[
            "cookie=0x5,priority=10,ip,actions=output:1",
            "cookie=0x6,priority=10,arp,actions=output:1",
        ]);
        let keys: Vec<(Match, u16)> = b
            .rules()
            .iter()
            .map(|e| (e.rule.matches, e.rule.priority))
            .collect();
        let cls = b.tables.get_mut(&0).unwrap();
        for (m, p) in keys {
            cls.get_mut(&m, p).unwrap().n_packets = 7;
        }
        let mut m = fm(Command::Modify, "cookie=0x5,actions=output:3");
        m.cookie_mask = u64::MAX;
        b.flow_mod(&m, 0, true).unwrap();
        let rules = b.rules();
        let ip = rules.iter().find(|e| e.rule.cookie == 5).unwrap();
        assert_eq!(ip.rule.actions, vec![OfAction::Output(3)]);
        assert_eq!(ip.n_packets, 7);
        let arp = rules.iter().find(|e| e.rule.cookie == 6).unwrap();
        assert_eq!(arp.rule.actions, vec![OfAction::Output(1)]);
    }

    #[test]
    fn check_overlap_refuses_and_changes_nothing() {
        let mut b = bridge(&["priority=10,ip,actions=output:1"]);
        let mut add = fm(Command::Add, "priority=10,ip,nw_dst=198.18.0.1,actions=output:2");
        add.check_overlap = true;
        assert_eq!(b.flow_mod(&add, 0, true).unwrap_err(), FlowModError::Overlap);
        assert_eq!(b.n_rules(), 1);
        add.rule.priority = 11;
        assert!(b.flow_mod(&add, 0, true).is_ok());
        assert_eq!(b.n_rules(), 2);
    }
}

#[cfg(test)]
mod removal_tests {
    use super::*;
    use crate::ofp::parse_flow;
    use crate::switch::Switch;

    #[test]
    fn a_rule_that_asked_is_reported_when_deleted_or_expired() {
        let mut sw = Switch::new();
        sw.add_bridge("br0").unwrap();
        let fm = |command, text: &str, send_flow_rem| FlowMod {
            send_flow_rem,
            ..FlowMod::new(command, parse_flow(text, &()).unwrap())
        };
        sw.flow_mod(
            "br0",
            &fm(Command::Add, "priority=5,udp,actions=drop", true),
            true,
        )
        .unwrap();
        sw.flow_mod(
            "br0",
            &fm(Command::Add, "priority=5,tcp,actions=drop", false),
            true,
        )
        .unwrap();
        sw.flow_mod(
            "br0",
            &fm(Command::Add, "priority=5,icmp,hard_timeout=1,actions=drop", true),
            true,
        )
        .unwrap();
        sw.flow_mod("br0", &fm(Command::Delete, "ip,actions=drop", false), true)
            .unwrap();
        let gone = sw.take_removed();
        assert_eq!(gone.len(), 2, "{gone:?}");
        assert!(gone
            .iter()
            .all(|r| r.reason == RemovalReason::Delete && r.bridge == "br0"));
        assert!(sw.take_removed().is_empty());
    }
}
