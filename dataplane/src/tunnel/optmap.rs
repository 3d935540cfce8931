//! Which Geneve options the datapath understands: each known (class, type) is
//! copied into a tunnel metadata slot of the flow key. Unknown options are
//! ignored unless critical, in which case the packet is dropped (RFC 8926 3.5).

use crate::packet::TUN_MD_SLOTS;
use thiserror::Error;

/// One mapping: option (class, type) of `len` bytes -> metadata slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptMapping {
    /// Option class.
    pub class: u16,
    /// Option type, critical bit included (as OVS matches it).
    pub typ: u8,
    /// Data length in bytes (a slot holds 4).
    pub len: u8,
    /// Metadata slot, 0..8.
    pub slot: u8,
}

/// Errors of [`GeneveOptMap::insert`].
#[derive(Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptMapError {
    /// Slot out of range.
    #[error("tunnel metadata slot {0} out of range (0..{TUN_MD_SLOTS})")]
    BadSlot(u8),
    /// Length other than 4 bytes.
    #[error("option length {0} not supported: a metadata slot holds exactly 4 bytes")]
    BadLen(u8),
    /// The slot or the option is already mapped.
    #[error("slot {0} or its option is already mapped")]
    Busy(u8),
}

/// The installed option map (small, fixed, no allocation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GeneveOptMap {
    slots: [Option<OptMapping>; TUN_MD_SLOTS],
}

impl GeneveOptMap {
    /// Map option (class, typ) of `len` bytes to `slot`.
    pub fn insert(&mut self, class: u16, typ: u8, len: u8, slot: u8) -> Result<(), OptMapError> {
        if slot as usize >= TUN_MD_SLOTS {
            return Err(OptMapError::BadSlot(slot));
        }
        if len != 4 {
            return Err(OptMapError::BadLen(len));
        }
        if self.slots[slot as usize].is_some() || self.lookup(class, typ).is_some() {
            return Err(OptMapError::Busy(slot));
        }
        self.slots[slot as usize] = Some(OptMapping {
            class,
            typ,
            len,
            slot,
        });
        Ok(())
    }

    /// Remove the mapping of `slot`.
    pub fn remove(&mut self, slot: u8) -> Option<OptMapping> {
        self.slots.get_mut(slot as usize).and_then(Option::take)
    }

    /// The mapping of an option, if any.
    #[inline]
    pub fn lookup(&self, class: u16, typ: u8) -> Option<&OptMapping> {
        self.slots
            .iter()
            .flatten()
            .find(|m| m.class == class && m.typ == typ)
    }

    /// The mapping of a slot.
    pub fn slot(&self, slot: u8) -> Option<&OptMapping> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    /// All mappings.
    pub fn iter(&self) -> impl Iterator<Item = &OptMapping> {
        self.slots.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_lookup_remove() {
        let mut m = GeneveOptMap::default();
        m.insert(0x0102, 0x80, 4, 0).unwrap();
        assert_eq!(m.lookup(0x0102, 0x80).unwrap().slot, 0);
        assert!(m.lookup(0x0102, 0x00).is_none());
        assert_eq!(m.insert(0x0102, 0x80, 4, 1), Err(OptMapError::Busy(1)));
        assert_eq!(m.insert(0x0103, 0x80, 4, 0), Err(OptMapError::Busy(0)));
        assert_eq!(m.insert(1, 1, 8, 2), Err(OptMapError::BadLen(8)));
        assert_eq!(m.insert(1, 1, 4, 8), Err(OptMapError::BadSlot(8)));
        assert!(m.remove(0).is_some());
        assert!(m.lookup(0x0102, 0x80).is_none());
    }
}
