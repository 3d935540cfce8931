//! OpenFlow groups: a rule's `group:N` action hands the packet to group N,
//! whose buckets say what happens: every bucket on its own copy (ALL: floods
//! and multicast, as Faucet builds them), one bucket chosen by a hash of the
//! packet's addresses and ports, weighted (SELECT: load balancing), or the
//! one bucket (INDIRECT: a next hop many rules share). As in OVS, groups
//! belong to the controller that made them and are not saved.

use crate::ofp::{fmt_actions, OfAction, OFPP_NONE};
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;

/// OFPG_MAX: group ids above it are reserved.
pub const GROUP_MAX: u32 = 0xffff_ff00;
/// OFPG_ALL: every group (a delete's wildcard).
pub const GROUP_ALL: u32 = 0xffff_fffc;
/// No watch group (OFPG_ANY).
pub const WATCH_NONE: u32 = 0xffff_ffff;
/// Most groups a bridge holds.
pub const MAX_GROUPS: usize = 65_536;
/// Most buckets a group holds.
pub const MAX_BUCKETS: usize = 256;

/// What a group does with its buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupType {
    /// Every bucket, each on its own copy of the packet.
    All,
    /// One bucket, chosen by a hash of the packet, by weight.
    Select,
    /// Its single bucket.
    Indirect,
}

impl GroupType {
    /// OFPGT_* value.
    pub fn wire(self) -> u8 {
        match self {
            GroupType::All => 0,
            GroupType::Select => 1,
            GroupType::Indirect => 2,
        }
    }

    /// The type with OFPGT_* value `v` (FAST_FAILOVER, 3, is not supported).
    pub fn from_wire(v: u8) -> Option<GroupType> {
        Some(match v {
            0 => GroupType::All,
            1 => GroupType::Select,
            2 => GroupType::Indirect,
            _ => return None,
        })
    }

    /// As ovs-ofctl names it.
    pub fn name(self) -> &'static str {
        match self {
            GroupType::All => "all",
            GroupType::Select => "select",
            GroupType::Indirect => "indirect",
        }
    }
}

/// One bucket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bucket {
    /// SELECT: its share of the packets (0: never chosen).
    pub weight: u16,
    /// Liveness port (FAST_FAILOVER only; kept as sent; OFPP_NONE: none).
    pub watch_port: u32,
    /// Liveness group (as `watch_port`).
    pub watch_group: u32,
    /// What it does.
    pub actions: Vec<OfAction>,
}

/// A group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Group {
    /// Its id (0..=[`GROUP_MAX`]).
    pub id: u32,
    /// Its type.
    pub ty: GroupType,
    /// Its buckets.
    pub buckets: Vec<Bucket>,
}

/// As `ovs-ofctl dump-groups` prints one.
impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group_id={},type={}", self.id, self.ty.name())?;
        // OVS's defaults are left out: weight 1 for SELECT, 0 otherwise, no
        // watch port or group.
        let weight = u16::from(self.ty == GroupType::Select);
        for b in &self.buckets {
            f.write_str(",bucket=")?;
            if b.weight != weight {
                write!(f, "weight:{},", b.weight)?;
            }
            if b.watch_port != OFPP_NONE {
                write!(f, "watch_port:{},", b.watch_port)?;
            }
            if b.watch_group != WATCH_NONE {
                write!(f, "watch_group:{},", b.watch_group)?;
            }
            write!(f, "actions={}", fmt_actions(&b.actions))?;
        }
        Ok(())
    }
}

/// What a GROUP_MOD asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupCommand {
    /// Add a new group.
    Add,
    /// Replace an existing group's type and buckets.
    Modify,
    /// Delete one group, or every group ([`GROUP_ALL`]), and the rules that
    /// send to it.
    Delete,
}

/// Why a group change was refused (OpenFlow's OFPGMFC_* reasons).
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum GroupError {
    /// Add of an id that exists.
    #[error("group {0} exists")]
    Exists(u32),
    /// Modify of an id that does not exist.
    #[error("no group {0}")]
    Unknown(u32),
    /// A reserved id.
    #[error("group id {0:#x} is reserved")]
    Invalid(u32),
    /// Too many groups or buckets.
    #[error("too many groups or buckets (at most {MAX_GROUPS} groups of {MAX_BUCKETS} buckets)")]
    Full,
    /// An INDIRECT group needs exactly one bucket.
    #[error("an indirect group has exactly one bucket")]
    BadBucket,
    /// A bucket names a group: rvs does not chain groups.
    #[error("a bucket sends to a group: chaining groups is not supported")]
    Chaining,
}

/// A group's traffic (OVS's group stats): what the packets through it
/// carried, the group once per packet and each bucket that ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupCounters {
    /// When the group was added (switch clock, ms; kept by a modify).
    pub added_ms: u64,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// (packets, bytes) per bucket.
    pub buckets: Vec<(u64, u64)>,
}

impl GroupCounters {
    /// Zero counters for a group of `n` buckets added at `added_ms`.
    pub fn new(added_ms: u64, n: usize) -> GroupCounters {
        GroupCounters {
            added_ms,
            packets: 0,
            bytes: 0,
            buckets: vec![(0, 0); n],
        }
    }

    /// Count `packets`/`bytes` that ran `buckets` (indexes past the group's
    /// buckets, left from before a modify, count for the group only).
    pub fn credit(&mut self, buckets: &[usize], packets: u64, bytes: u64) {
        self.packets += packets;
        self.bytes += bytes;
        for &i in buckets {
            if let Some(b) = self.buckets.get_mut(i) {
                b.0 += packets;
                b.1 += bytes;
            }
        }
    }
}

/// A bridge's groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupTable {
    groups: BTreeMap<u32, Group>,
}

impl GroupTable {
    /// Group `id`.
    pub fn get(&self, id: u32) -> Option<&Group> {
        self.groups.get(&id)
    }

    /// Every group, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Apply a change (all or nothing). `Delete` ignores `group`'s type and
    /// buckets. Returns the ids whose meaning changed (their rules and
    /// cached flows must follow).
    pub fn apply(&mut self, cmd: GroupCommand, group: Group) -> Result<Vec<u32>, GroupError> {
        let id = group.id;
        if cmd == GroupCommand::Delete {
            if id == GROUP_ALL {
                let all: Vec<u32> = self.groups.keys().copied().collect();
                self.groups.clear();
                return Ok(all);
            }
            return Ok(self.groups.remove(&id).map(|g| g.id).into_iter().collect());
        }
        if id > GROUP_MAX {
            return Err(GroupError::Invalid(id));
        }
        if group.buckets.len() > MAX_BUCKETS {
            return Err(GroupError::Full);
        }
        if group.ty == GroupType::Indirect && group.buckets.len() != 1 {
            return Err(GroupError::BadBucket);
        }
        if group
            .buckets
            .iter()
            .any(|b| b.actions.iter().any(|a| matches!(a, OfAction::Group(_))))
        {
            return Err(GroupError::Chaining);
        }
        match (cmd, self.groups.contains_key(&id)) {
            (GroupCommand::Add, true) => return Err(GroupError::Exists(id)),
            (GroupCommand::Modify, false) => return Err(GroupError::Unknown(id)),
            (GroupCommand::Add, false) if self.groups.len() >= MAX_GROUPS => return Err(GroupError::Full),
            _ => {}
        }
        self.groups.insert(id, group);
        Ok(vec![id])
    }
}

/// The bucket a SELECT group gives a packet whose selection hash is
/// `hash`: by weight, buckets of weight 0 never (`None` when all are 0).
pub fn select_bucket(buckets: &[Bucket], hash: u64) -> Option<usize> {
    let total: u64 = buckets.iter().map(|b| b.weight as u64).sum();
    if total == 0 {
        return None;
    }
    let mut point = hash % total;
    for (i, b) in buckets.iter().enumerate() {
        if point < b.weight as u64 {
            return Some(i);
        }
        point -= b.weight as u64;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(id: u32, ty: GroupType, n: usize) -> Group {
        Group {
            id,
            ty,
            buckets: (0..n)
                .map(|i| Bucket {
                    weight: 1,
                    watch_port: OFPP_NONE,
                    watch_group: WATCH_NONE,
                    actions: vec![OfAction::Output(i as u32 + 1)],
                })
                .collect(),
        }
    }

    #[test]
    fn add_modify_delete_follow_openflow() {
        let mut t = GroupTable::default();
        assert_eq!(t.apply(GroupCommand::Add, g(1, GroupType::All, 2)), Ok(vec![1]));
        assert_eq!(
            t.apply(GroupCommand::Add, g(1, GroupType::All, 1)),
            Err(GroupError::Exists(1))
        );
        assert_eq!(
            t.apply(GroupCommand::Modify, g(2, GroupType::All, 1)),
            Err(GroupError::Unknown(2))
        );
        assert_eq!(
            t.apply(GroupCommand::Add, g(3, GroupType::Indirect, 2)),
            Err(GroupError::BadBucket)
        );
        assert_eq!(
            t.apply(GroupCommand::Add, g(GROUP_ALL, GroupType::All, 1)),
            Err(GroupError::Invalid(GROUP_ALL))
        );
        let mut chained = g(4, GroupType::All, 1);
        chained.buckets[0].actions.push(OfAction::Group(1));
        assert_eq!(t.apply(GroupCommand::Add, chained), Err(GroupError::Chaining));
        assert_eq!(
            t.apply(GroupCommand::Modify, g(1, GroupType::Select, 3)),
            Ok(vec![1])
        );
        assert_eq!(t.get(1).unwrap().buckets.len(), 3);
        t.apply(GroupCommand::Add, g(5, GroupType::Indirect, 1)).unwrap();
        assert_eq!(t.apply(GroupCommand::Delete, g(9, GroupType::All, 0)), Ok(vec![]));
        assert_eq!(
            t.apply(GroupCommand::Delete, g(GROUP_ALL, GroupType::All, 0)),
            Ok(vec![1, 5])
        );
        assert!(t.is_empty());
    }

    #[test]
    fn select_spreads_by_weight_and_skips_weight_zero() {
        let mut b = g(1, GroupType::Select, 3).buckets;
        b[0].weight = 0;
        b[1].weight = 1;
        b[2].weight = 3;
        let mut counts = [0; 3];
        for h in 0..400u64 {
            counts[select_bucket(&b, h).unwrap()] += 1;
        }
        assert_eq!(counts, [0, 100, 300]);
        b[1].weight = 0;
        b[2].weight = 0;
        assert_eq!(select_bucket(&b, 7), None);
    }

    #[test]
    fn prints_as_ovs_ofctl() {
        let mut s = g(7, GroupType::Select, 2);
        s.buckets[1].weight = 3;
        assert_eq!(
            s.to_string(),
            "group_id=7,type=select,bucket=actions=output:1,bucket=weight:3,actions=output:2"
        );
    }
}
