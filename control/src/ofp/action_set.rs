//! OpenFlow 1.1+ action sets (`write_actions`, `clear_actions`): which
//! actions may be in one, what `actset_output` says about it, and the order
//! its actions run in when the pipeline ends — as OVS's
//! `ofpacts_execute_action_set` (the OpenFlow spec's "Action Set" order).

use super::action::{OfAction, OFPP_ALL, OFPP_FLOOD, OFPP_IN_PORT, OFPP_LOCAL, OFPP_NORMAL};

/// Where an action goes in an action set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// One of each, the last written; run first, in this order.
    StripVlan,
    PushVlan,
    DecTtl,
    /// Field writes: all of them, in the order written.
    SetOrMove,
    /// What the set ends in: the later in this list wins; without one the
    /// set does nothing.
    Resubmit,
    Output,
    /// A group takes precedence over an output (OpenFlow 1.3, 5.10).
    Group,
}

fn class(a: &OfAction) -> Option<Class> {
    Some(match a {
        OfAction::StripVlan => Class::StripVlan,
        OfAction::PushVlan(_) => Class::PushVlan,
        OfAction::DecTtl => Class::DecTtl,
        OfAction::ModVlanVid(_)
        | OfAction::ModVlanPcp(_)
        | OfAction::ModDlSrc(_)
        | OfAction::ModDlDst(_)
        | OfAction::ModNwSrc(_)
        | OfAction::ModNwDst(_)
        | OfAction::ModNwTos(_)
        | OfAction::ModNwEcn(_)
        | OfAction::ModNwTtl(_)
        | OfAction::ModTpSrc(_)
        | OfAction::ModTpDst(_)
        | OfAction::SetField { .. }
        | OfAction::Load { .. }
        | OfAction::Move { .. }
        | OfAction::SetTunnel(_) => Class::SetOrMove,
        OfAction::Resubmit { .. } => Class::Resubmit,
        OfAction::Output(_)
        | OfAction::Normal
        | OfAction::Flood
        | OfAction::All
        | OfAction::InPort
        | OfAction::Local => Class::Output,
        OfAction::Group(_) => Class::Group,
        _ => return None,
    })
}

/// True when `a` may be written into an action set (OVS refuses the others:
/// `learn`, `note`, `controller`, `output:FIELD[]`, instructions, ...).
pub fn allowed(a: &OfAction) -> bool {
    class(a).is_some()
}

/// The port an output action names, as `actset_output` holds it.
fn output_port(a: &OfAction) -> Option<u32> {
    Some(match a {
        OfAction::Output(p) => *p,
        OfAction::Normal => OFPP_NORMAL,
        OfAction::Flood => OFPP_FLOOD,
        OfAction::All => OFPP_ALL,
        OfAction::InPort => OFPP_IN_PORT,
        OfAction::Local => OFPP_LOCAL,
        _ => return None,
    })
}

/// `write_actions(acts)` on `set`; returns the new `actset_output` if the
/// written actions output somewhere (the last output written names it).
pub fn write(set: &mut Vec<OfAction>, acts: &[OfAction]) -> Option<u32> {
    set.extend(acts.iter().filter(|a| allowed(a)).cloned());
    acts.iter().rev().find_map(output_port)
}

/// The actions an action set runs, in order: the last of each one-of-a-kind
/// action (pop VLAN, push VLAN, dec_ttl), every field write in the order
/// written, then the final action (a group over an output over a resubmit;
/// the last written of its kind). A set without a final action does nothing.
pub fn execution_list(set: &[OfAction]) -> Vec<OfAction> {
    let mut slots: [Option<&OfAction>; 3] = [None; 3];
    let mut writes = Vec::new();
    let mut last: Option<(Class, &OfAction)> = None;
    for a in set {
        match class(a) {
            Some(Class::StripVlan) => slots[0] = Some(a),
            Some(Class::PushVlan) => slots[1] = Some(a),
            Some(Class::DecTtl) => slots[2] = Some(a),
            Some(Class::SetOrMove) => writes.push(a.clone()),
            Some(c @ (Class::Resubmit | Class::Output | Class::Group))
                if last.is_none_or(|(l, _)| c >= l) =>
            {
                last = Some((c, a));
            }
            Some(Class::Resubmit | Class::Output | Class::Group) => {}
            None => {}
        }
    }
    let Some((_, fin)) = last else {
        return Vec::new();
    };
    let mut out: Vec<OfAction> = slots.iter().flatten().map(|a| (*a).clone()).collect();
    out.extend(writes);
    out.push(fin.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ofp::parse_actions;

    fn acts(s: &str) -> Vec<OfAction> {
        parse_actions(s, 1, &()).unwrap()
    }

    #[test]
    fn a_group_wins_over_an_output() {
        let mut set = Vec::new();
        write(&mut set, &acts("group:3,output:2"));
        assert_eq!(execution_list(&set), acts("group:3"));
        write(&mut set, &acts("output:4"));
        assert_eq!(execution_list(&set), acts("group:3"));
    }

    #[test]
    fn runs_in_the_spec_order_and_the_last_of_a_kind_wins() {
        let mut set = Vec::new();
        assert_eq!(
            write(&mut set, &acts("output:12,mod_nw_dst:198.18.0.9")),
            Some(12)
        );
        assert_eq!(write(&mut set, &acts("dec_ttl,output:13,strip_vlan")), Some(13));
        assert_eq!(
            execution_list(&set),
            acts("strip_vlan,dec_ttl,mod_nw_dst:198.18.0.9,output:13")
        );
    }

    #[test]
    fn output_beats_resubmit_and_no_final_action_means_nothing() {
        let mut set = Vec::new();
        write(&mut set, &acts("output:2"));
        write(&mut set, &acts("resubmit(,3)"));
        assert_eq!(execution_list(&set), acts("output:2"));
        assert_eq!(
            execution_list(&acts("mod_dl_src:02:00:00:00:00:01,dec_ttl")),
            vec![]
        );
        assert_eq!(write(&mut Vec::new(), &acts("NORMAL")), Some(OFPP_NORMAL));
        assert_eq!(write(&mut Vec::new(), &acts("resubmit(,3)")), None);
    }

    #[test]
    fn what_an_action_set_may_hold() {
        for ok in [
            "output:1",
            "NORMAL",
            "resubmit(,2)",
            "set_field:1->reg0",
            "pop_vlan",
            "dec_ttl",
        ] {
            assert!(allowed(&acts(ok)[0]), "{ok}");
        }
        for no in [
            "note:01",
            "controller",
            "output:NXM_NX_REG0[]",
            "write_metadata:1",
            "goto_table:2",
        ] {
            assert!(!allowed(&acts(no)[0]), "{no}");
        }
    }
}
