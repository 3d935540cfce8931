//! The properties of a TABLE_FEATURES reply entry: what every rvs table
//! takes (instructions, next tables, actions, match and set-field
//! headers). OpenFlow 1.3 requires eight of them in a reply, and OVS's
//! clients (`ovs-ofctl add-flow`) refuse a reply without them.

use super::oxm::{field_of, FieldId, NXM_0, NXM_1, OFPXMC_BASIC};
use super::wire::Put;

/// OFPTFPT_* property types (the `_MISS` variant of each is one more).
mod prop {
    pub const INSTRUCTIONS: u16 = 0;
    pub const NEXT_TABLES: u16 = 2;
    pub const WRITE_ACTIONS: u16 = 4;
    pub const APPLY_ACTIONS: u16 = 6;
    pub const MATCH: u16 = 8;
    pub const WILDCARDS: u16 = 10;
    pub const WRITE_SETFIELD: u16 = 12;
    pub const APPLY_SETFIELD: u16 = 14;
}

/// Instructions rvs runs: GOTO_TABLE, WRITE_METADATA, WRITE_ACTIONS,
/// APPLY_ACTIONS, CLEAR_ACTIONS.
const INSTRUCTIONS: [u16; 5] = [1, 2, 3, 4, 5];
/// Standard actions rvs runs: OUTPUT, PUSH_VLAN, POP_VLAN, SET_NW_TTL,
/// DEC_NW_TTL, SET_FIELD (Nicira's come as experimenter actions).
const ACTIONS: [u16; 6] = [0, 17, 18, 23, 24, 25];
/// Tables 0..=LAST_TABLE.
const LAST_TABLE: u8 = 253;

/// Every OXM/NXM header rvs decodes, without the has-mask bit.
fn headers() -> impl Iterator<Item = u32> {
    let classes = [(OFPXMC_BASIC, 0..=39u8), (NXM_0, 0..=17u8), (NXM_1, 0..=127u8)];
    classes.into_iter().flat_map(|(class, fields)| {
        fields.filter_map(move |f| {
            let id: FieldId = (class, f);
            field_of(id).map(|w| (class as u32) << 16 | (f as u32) << 9 | w.len as u32)
        })
    })
}

/// Append one property: its header, `body`, padding to 8 bytes.
fn put_prop(b: &mut Vec<u8>, typ: u16, body: impl FnOnce(&mut Vec<u8>)) {
    let start = b.len();
    b.put_u16(typ);
    b.put_u16(0);
    body(b);
    let len = b.len() - start;
    b[start + 2..start + 4].copy_from_slice(&(len as u16).to_be_bytes());
    b.put_zeros((8 - len % 8) % 8);
}

fn put_ids(b: &mut Vec<u8>, ids: &[u16]) {
    for t in ids {
        b.put_u16(*t);
        b.put_u16(4);
    }
}

/// Append the properties of table `table`.
pub fn put_properties(b: &mut Vec<u8>, table: u8) {
    // Each property and its _MISS twin say the same: a miss runs no
    // instructions of its own in rvs (it drops), but may be given any.
    for miss in [0, 1] {
        put_prop(b, prop::INSTRUCTIONS + miss, |b| put_ids(b, &INSTRUCTIONS));
        put_prop(b, prop::NEXT_TABLES + miss, |b| {
            // goto_table only goes forward.
            for t in table.saturating_add(1)..=LAST_TABLE {
                b.put_u8(t);
            }
        });
        put_prop(b, prop::WRITE_ACTIONS + miss, |b| put_ids(b, &ACTIONS));
        put_prop(b, prop::APPLY_ACTIONS + miss, |b| put_ids(b, &ACTIONS));
    }
    put_prop(b, prop::MATCH, |b| headers().for_each(|h| b.put_u32(h)));
    put_prop(b, prop::WILDCARDS, |b| headers().for_each(|h| b.put_u32(h)));
    for miss in [0, 1] {
        put_prop(b, prop::WRITE_SETFIELD + miss, |b| {
            headers().for_each(|h| b.put_u32(h))
        });
        put_prop(b, prop::APPLY_SETFIELD + miss, |b| {
            headers().for_each(|h| b.put_u32(h))
        });
    }
}

/// Bytes [`put_properties`] appends for `table`.
pub fn properties_len(table: u8) -> usize {
    let mut b = Vec::new();
    put_properties(&mut b, table);
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_whole_and_padded() {
        for table in [0, 100, 253] {
            let mut b = Vec::new();
            put_properties(&mut b, table);
            assert_eq!(b.len() % 8, 0);
            let mut seen = 0u32;
            let mut i = 0;
            while i < b.len() {
                let typ = u16::from_be_bytes([b[i], b[i + 1]]);
                let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
                assert!(len >= 4 && i + len <= b.len());
                seen |= 1 << typ;
                i += len.div_ceil(8) * 8;
            }
            // The eight required properties and their _MISS twins, but for
            // the WILDCARDS and MATCH (which have none).
            assert_eq!(seen, 0xf5ff, "table {table}");
        }
        assert!(headers().count() > 40);
    }
}
