//! Groups in OpenFlow 1.0, as OVS carries them: NXT_GROUP_MOD and the
//! NXST_GROUP_DESC reply with OpenFlow 1.5's group and bucket bodies (bucket
//! ids, bucket properties for weight and watches), holding 1.0 actions.
//! NXST_GROUP and NXST_GROUP_FEATURES use 1.3's bodies
//! ([`crate::openflow::group`]).

use crate::group::{Bucket, Group, GroupCommand, GroupType, MAX_BUCKETS, WATCH_NONE};
use crate::ofp::{Match, OFPP_NONE};
use crate::openflow::actions::{decode_actions10, encode_actions, Ctx};
use crate::openflow::error::OfpError;
use crate::openflow::group::{group_type, GroupModMsg};
use crate::openflow::wire::{port_from13, port_to13, Put, Reader};

/// OFPGBPT15_WEIGHT.
const PROP_WEIGHT: u16 = 0;
/// OFPGBPT15_WATCH_PORT.
const PROP_WATCH_PORT: u16 = 1;
/// OFPGBPT15_WATCH_GROUP.
const PROP_WATCH_GROUP: u16 = 2;

const BAD_BUCKET: OfpError = OfpError { typ: 6, code: 12 };
const BAD_COMMAND: OfpError = OfpError { typ: 6, code: 11 };

/// One bucket property's value (`len` bytes after its 4-byte header),
/// padding to 8 skipped.
fn bucket_prop<'a>(r: &mut Reader<'a>) -> Result<(u16, Reader<'a>), OfpError> {
    let typ = r.u16()?;
    let len = r.u16()? as usize;
    if len < 4 {
        return Err(BAD_BUCKET);
    }
    let v = r.sub(len - 4).map_err(|_| BAD_BUCKET)?;
    r.skip((8 - len % 8) % 8).map_err(|_| BAD_BUCKET)?;
    Ok((typ, v))
}

/// `select`: a SELECT group's buckets (weight 1 unless said, as OVS; 0
/// for the other types).
fn decode_buckets15(r: &mut Reader<'_>, select: bool) -> Result<Vec<Bucket>, OfpError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        if out.len() >= MAX_BUCKETS {
            return Err(OfpError { typ: 6, code: 4 });
        }
        let len = r.u16()? as usize;
        let actions_len = r.u16()? as usize;
        let _bucket_id = r.u32()?;
        if len < 8 + actions_len {
            return Err(BAD_BUCKET);
        }
        let mut body = r.sub(len - 8).map_err(|_| BAD_BUCKET)?;
        let mut acts = body.sub(actions_len).map_err(|_| BAD_BUCKET)?;
        let mut bucket = Bucket {
            weight: u16::from(select),
            watch_port: OFPP_NONE,
            watch_group: WATCH_NONE,
            actions: decode_actions10(&mut acts)?,
        };
        while !body.is_empty() {
            let (typ, mut v) = bucket_prop(&mut body)?;
            match (typ, v.len()) {
                // OVS pads the 16-bit weight to 4 bytes, as the spec's
                // struct does.
                (PROP_WEIGHT, n) if n >= 2 => bucket.weight = v.u16()?,
                (PROP_WATCH_PORT, 4) => bucket.watch_port = port_from13(v.u32()?),
                (PROP_WATCH_GROUP, 4) => bucket.watch_group = v.u32()?,
                _ => return Err(BAD_BUCKET),
            }
        }
        out.push(bucket);
    }
    Ok(out)
}

/// Decode an NXT_GROUP_MOD body (after the Nicira header).
pub fn decode_group_mod(r: &mut Reader<'_>) -> Result<GroupModMsg, OfpError> {
    let command = match r.u16()? {
        0 => GroupCommand::Add,
        1 => GroupCommand::Modify,
        2 => GroupCommand::Delete,
        // INSERT_BUCKET, REMOVE_BUCKET: rvs changes whole groups only.
        _ => return Err(BAD_COMMAND),
    };
    let ty = r.u8()?;
    r.skip(1)?;
    let id = r.u32()?;
    let buckets_len = r.u16()? as usize;
    r.skip(2)?;
    let _command_bucket_id = r.u32()?;
    let mut buckets = r.sub(buckets_len)?;
    let buckets = decode_buckets15(&mut buckets, ty == GroupType::Select.wire())?;
    if !r.is_empty() {
        // Group properties (OVS's selection method): rvs's SELECT hash is
        // its own.
        return Err(OfpError::GROUP_MOD_BAD_TYPE);
    }
    let ty = group_type(command, ty)?;
    Ok(GroupModMsg {
        command,
        group: Group { id, ty, buckets },
    })
}

/// A property of a 2- or 4-byte value, as OVS writes it (its length
/// counts the value, the padding to 8 follows).
fn put_prop(b: &mut Vec<u8>, typ: u16, value: &[u8]) {
    let at = b.len();
    b.put_u16(typ);
    b.put_u16(4 + value.len() as u16);
    b.extend_from_slice(value);
    b.pad8_from(at);
}

/// Append one NXST_GROUP_DESC entry (`ofp15_group_desc_stats`); fails
/// when a bucket's actions have no 1.0 form.
pub fn encode_desc15(b: &mut Vec<u8>, g: &Group) -> Result<(), OfpError> {
    let at = b.len();
    b.put_u16(0);
    b.put_u8(g.ty.wire());
    b.put_u8(0);
    b.put_u32(g.id);
    b.put_u16(0);
    b.put_zeros(6);
    let buckets_at = b.len();
    for (i, k) in g.buckets.iter().enumerate() {
        let start = b.len();
        b.put_u16(0);
        b.put_u16(0);
        // Buckets are numbered in order (rvs keeps no ids of its own).
        b.put_u32(i as u32);
        let acts = b.len();
        encode_actions(b, &k.actions, &Ctx::of10(&Match::default()))?;
        let acts_len = b.len() - acts;
        if g.ty == GroupType::Select || k.weight != 0 {
            let w = k.weight.to_be_bytes();
            put_prop(b, PROP_WEIGHT, &[w[0], w[1], 0, 0]);
        }
        if k.watch_port != OFPP_NONE {
            put_prop(b, PROP_WATCH_PORT, &port_to13(k.watch_port).to_be_bytes());
        }
        if k.watch_group != WATCH_NONE {
            put_prop(b, PROP_WATCH_GROUP, &k.watch_group.to_be_bytes());
        }
        let n = u16::try_from(b.len() - start).map_err(|_| OfpError::BAD_REQUEST_LEN)?;
        b.set_u16(start, n);
        b.set_u16(start + 2, acts_len as u16);
    }
    let buckets = u16::try_from(b.len() - buckets_at).map_err(|_| OfpError::BAD_REQUEST_LEN)?;
    b.set_u16(at + 8, buckets);
    let n = u16::try_from(b.len() - at).map_err(|_| OfpError::BAD_REQUEST_LEN)?;
    b.set_u16(at, n);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ofp::parse_actions;

    #[test]
    fn a_group_desc_entry_is_what_a_group_mod_says() {
        let g = Group {
            id: 7,
            ty: GroupType::Select,
            buckets: vec![
                Bucket {
                    weight: 3,
                    watch_port: OFPP_NONE,
                    watch_group: WATCH_NONE,
                    actions: parse_actions("output:1", 0, &()).unwrap(),
                },
                Bucket {
                    weight: 1,
                    watch_port: 2,
                    watch_group: WATCH_NONE,
                    actions: parse_actions("mod_vlan_vid:5,output:2", 0, &()).unwrap(),
                },
            ],
        };
        let mut b = Vec::new();
        encode_desc15(&mut b, &g).unwrap();
        assert_eq!(b.len() % 8, 0);
        // A desc entry and a group mod share the layout after their first
        // word and the bucket list: turn one into the other.
        let mut m = vec![0, 0, b[2], 0];
        m.extend_from_slice(&b[4..10]);
        m.extend_from_slice(&[0, 0, 0xff, 0xff, 0xff, 0xff]);
        m.extend_from_slice(&b[16..]);
        let mut r = Reader::new(&m, OfpError::BAD_REQUEST_LEN);
        let gm = decode_group_mod(&mut r).unwrap();
        assert_eq!((gm.command, gm.group), (GroupCommand::Add, g));
    }

    #[test]
    fn bucket_inserts_and_group_properties_are_refused() {
        let mut m = vec![0, 3, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        let mut r = Reader::new(&m, OfpError::BAD_REQUEST_LEN);
        assert_eq!(decode_group_mod(&mut r), Err(BAD_COMMAND));
        m[1] = 0;
        m.extend_from_slice(&[0xff, 0xff, 0, 8, 0, 0, 0x23, 0x20]);
        let mut r = Reader::new(&m, OfpError::BAD_REQUEST_LEN);
        assert_eq!(decode_group_mod(&mut r), Err(OfpError::GROUP_MOD_BAD_TYPE));
    }
}
