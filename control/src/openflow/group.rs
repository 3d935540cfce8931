//! Groups on the wire: GROUP_MOD, and the GROUP_DESC, GROUP and
//! GROUP_FEATURES multipart bodies (OpenFlow 1.3 sections 7.3.4.2, 7.3.5.11
//! to 7.3.5.13).

use super::actions::{decode_actions, encode_actions, Ctx};
use super::error::OfpError;
use super::wire::{port_from13, port_to13, Put, Reader};
use crate::group::{Bucket, Group, GroupCommand, GroupError, GroupType, MAX_BUCKETS, MAX_GROUPS};
use crate::ofp::Match;

/// A GROUP_MOD as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupModMsg {
    /// Add, modify or delete.
    pub command: GroupCommand,
    /// The group (a delete's type and buckets are ignored).
    pub group: Group,
}

/// A GROUP stats entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStats {
    /// The group.
    pub id: u32,
    /// Rules that send to it.
    pub ref_count: u32,
    /// Packets through it.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Its age (ms).
    pub duration_ms: u64,
    /// (packets, bytes) per bucket.
    pub buckets: Vec<(u64, u64)>,
}

/// OFPGMFC_* codes for a refused change.
pub fn error_of(e: &GroupError) -> OfpError {
    let code = match e {
        GroupError::Exists(_) => 0,
        GroupError::Invalid(_) => 1,
        GroupError::Full => 3,
        GroupError::Chaining => 5,
        GroupError::Unknown(_) => 8,
        GroupError::BadBucket => 12,
    };
    OfpError { typ: 6, code }
}

fn decode_buckets(r: &mut Reader<'_>) -> Result<Vec<Bucket>, OfpError> {
    let bad = OfpError { typ: 6, code: 12 };
    let mut v = Vec::new();
    while !r.is_empty() {
        if v.len() >= MAX_BUCKETS {
            return Err(OfpError { typ: 6, code: 4 });
        }
        let len = r.u16()? as usize;
        if len < 16 || !len.is_multiple_of(8) {
            return Err(bad);
        }
        let mut b = r.sub(len - 2).map_err(|_| bad)?;
        let weight = b.u16()?;
        let watch_port = port_from13(b.u32()?);
        let watch_group = b.u32()?;
        b.skip(4)?;
        v.push(Bucket {
            weight,
            watch_port,
            watch_group,
            actions: decode_actions(&mut b)?,
        });
    }
    Ok(v)
}

fn encode_buckets(b: &mut Vec<u8>, buckets: &[Bucket]) -> Result<(), OfpError> {
    for k in buckets {
        let at = b.len();
        b.put_u16(0);
        b.put_u16(k.weight);
        b.put_u32(port_to13(k.watch_port));
        b.put_u32(k.watch_group);
        b.put_zeros(4);
        encode_actions(b, &k.actions, &Ctx::of(&Match::default()))?;
        let len = u16::try_from(b.len() - at).map_err(|_| OfpError::BAD_REQUEST_LEN)?;
        b[at..at + 2].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

/// A GROUP_MOD's type (a delete names no type that matters).
pub(crate) fn group_type(command: GroupCommand, ty: u8) -> Result<GroupType, OfpError> {
    match GroupType::from_wire(ty) {
        Some(t) => Ok(t),
        None if command == GroupCommand::Delete => Ok(GroupType::All),
        None => Err(OfpError::GROUP_MOD_BAD_TYPE),
    }
}

impl GroupModMsg {
    /// Decode the body (after the common header).
    pub fn decode(r: &mut Reader<'_>) -> Result<GroupModMsg, OfpError> {
        let command = match r.u16()? {
            0 => GroupCommand::Add,
            1 => GroupCommand::Modify,
            2 => GroupCommand::Delete,
            _ => return Err(OfpError { typ: 6, code: 11 }),
        };
        let ty = r.u8()?;
        r.skip(1)?;
        let id = r.u32()?;
        let buckets = decode_buckets(r)?;
        let ty = group_type(command, ty)?;
        Ok(GroupModMsg {
            command,
            group: Group { id, ty, buckets },
        })
    }

    /// Append the body to `b`.
    pub fn encode(&self, b: &mut Vec<u8>) -> Result<(), OfpError> {
        b.put_u16(match self.command {
            GroupCommand::Add => 0,
            GroupCommand::Modify => 1,
            GroupCommand::Delete => 2,
        });
        b.put_u8(self.group.ty.wire());
        b.put_zeros(1);
        b.put_u32(self.group.id);
        encode_buckets(b, &self.group.buckets)
    }
}

/// Append GROUP_DESC entries.
pub fn encode_desc(b: &mut Vec<u8>, groups: &[Group]) -> Result<(), OfpError> {
    for g in groups {
        let at = b.len();
        b.put_u16(0);
        b.put_u8(g.ty.wire());
        b.put_zeros(1);
        b.put_u32(g.id);
        encode_buckets(b, &g.buckets)?;
        let len = u16::try_from(b.len() - at).map_err(|_| OfpError::BAD_REQUEST_LEN)?;
        b[at..at + 2].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

/// Read GROUP_DESC entries.
pub fn decode_desc(r: &mut Reader<'_>) -> Result<Vec<Group>, OfpError> {
    let mut v = Vec::new();
    while !r.is_empty() {
        if v.len() >= MAX_GROUPS {
            return Err(OfpError::BAD_REQUEST_LEN);
        }
        let len = r.u16()? as usize;
        let mut e = r.sub(len.checked_sub(2).ok_or(OfpError::BAD_REQUEST_LEN)?)?;
        let ty = GroupType::from_wire(e.u8()?).ok_or(OfpError::GROUP_MOD_BAD_TYPE)?;
        e.skip(1)?;
        let id = e.u32()?;
        v.push(Group {
            id,
            ty,
            buckets: decode_buckets(&mut e)?,
        });
    }
    Ok(v)
}

/// The encoded size of one GROUP_DESC entry.
pub fn desc_len(g: &Group) -> usize {
    let mut b = Vec::new();
    let _ = encode_desc(&mut b, std::slice::from_ref(g));
    b.len()
}

/// Append GROUP stats entries.
pub fn encode_stats(b: &mut Vec<u8>, v: &[GroupStats]) {
    for s in v {
        b.put_u16((40 + 16 * s.buckets.len()) as u16);
        b.put_zeros(2);
        b.put_u32(s.id);
        b.put_u32(s.ref_count);
        b.put_zeros(4);
        b.put_u64(s.packets);
        b.put_u64(s.bytes);
        b.put_u32((s.duration_ms / 1000).min(u32::MAX as u64) as u32);
        b.put_u32((s.duration_ms % 1000) as u32 * 1_000_000);
        for (p, n) in &s.buckets {
            b.put_u64(*p);
            b.put_u64(*n);
        }
    }
}

/// Read GROUP stats entries.
pub fn decode_stats(r: &mut Reader<'_>) -> Result<Vec<GroupStats>, OfpError> {
    let mut v = Vec::new();
    while !r.is_empty() {
        let len = r.u16()? as usize;
        if len < 40 || !(len - 40).is_multiple_of(16) {
            return Err(OfpError::BAD_REQUEST_LEN);
        }
        let mut e = r.sub(len - 2)?;
        e.skip(2)?;
        let id = e.u32()?;
        let ref_count = e.u32()?;
        e.skip(4)?;
        let packets = e.u64()?;
        let bytes = e.u64()?;
        let (sec, nsec) = (e.u32()?, e.u32()?);
        let mut buckets = Vec::new();
        while !e.is_empty() {
            buckets.push((e.u64()?, e.u64()?));
        }
        v.push(GroupStats {
            id,
            ref_count,
            packets,
            bytes,
            duration_ms: sec as u64 * 1000 + (nsec / 1_000_000) as u64,
            buckets,
        });
    }
    Ok(v)
}

/// GROUP_FEATURES: ALL, SELECT and INDIRECT; weighted select; per type the
/// most groups and the actions a bucket may hold (OFPAT_* bits: output,
/// push/pop VLAN, set_nw_ttl, dec_nw_ttl, set_field, and Nicira's via
/// experimenter).
pub fn encode_features(b: &mut Vec<u8>) {
    b.put_u32(0b111);
    b.put_u32(1);
    // ALL, SELECT, INDIRECT; FAST_FAILOVER not supported.
    for n in [MAX_GROUPS as u32, MAX_GROUPS as u32, MAX_GROUPS as u32, 0] {
        b.put_u32(n);
    }
    let actions: u32 = 1 | 1 << 17 | 1 << 18 | 1 << 23 | 1 << 24 | 1 << 25;
    for a in [actions, actions, actions, 0] {
        b.put_u32(a);
    }
}
