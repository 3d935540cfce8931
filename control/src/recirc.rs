//! Recirculation ids: where translation resumes after `ct(table=T)`, OVS's
//! "frozen state". The datapath runs `ct()`, then looks the packet up again
//! with the id in its key; a miss comes back here and the id says which
//! bridge and table to continue in, with which OpenFlow in_port and which
//! pipeline metadata (registers, `metadata`), none of which the datapath key
//! carries.

use crate::ofp::{XKey, METADATA_WORD, REG_WORD};
use hashbrown::HashMap;

/// Pipeline words a frozen state keeps: the registers and `metadata`.
const META_WORDS: usize = METADATA_WORD + 1 - REG_WORD;

/// Most ids at once. Ids are shared by every packet that freezes the same
/// state, so this bounds distinct (bridge, table, in_port, registers)
/// combinations; past it the table starts over (and every cached flow goes,
/// since their recirculations may name forgotten ids).
pub const MAX_RECIRC_IDS: usize = 1 << 16;

/// A point to resume translation at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frozen {
    /// Bridge.
    pub bridge: String,
    /// Table.
    pub table: u8,
    /// OpenFlow in_port in that bridge.
    pub in_port: u32,
    /// Registers and `metadata`.
    pub meta: [u64; META_WORDS],
}

impl Frozen {
    /// The state of translation `flow` in `bridge`, resuming at `table`.
    pub fn of(bridge: &str, table: u8, in_port: u32, flow: &XKey) -> Frozen {
        let mut meta = [0u64; META_WORDS];
        meta.copy_from_slice(&flow.w[REG_WORD..=METADATA_WORD]);
        Frozen {
            bridge: bridge.to_string(),
            table,
            in_port,
            meta,
        }
    }

    /// Put the frozen registers and metadata back into `flow`.
    pub fn restore(&self, flow: &mut XKey) {
        flow.w[REG_WORD..=METADATA_WORD].copy_from_slice(&self.meta);
    }
}

/// The ids in use.
#[derive(Debug, Default)]
pub struct RecircTable {
    ids: HashMap<Frozen, u32>,
    states: HashMap<u32, Frozen>,
    last: u32,
}

impl RecircTable {
    /// The id of `state` (the same state always gets the same id while it
    /// is remembered), and whether the table had to start over first.
    pub fn freeze(&mut self, state: Frozen) -> (u32, bool) {
        if let Some(id) = self.ids.get(&state) {
            return (*id, false);
        }
        let restarted = self.ids.len() >= MAX_RECIRC_IDS;
        if restarted {
            self.ids.clear();
            self.states.clear();
        }
        // Never 0 (a fresh packet's id); ids are not reused soon after a
        // restart, so a stale one finds nothing rather than a wrong state.
        self.last = self.last.wrapping_add(1).max(1);
        let id = self.last;
        self.ids.insert(state.clone(), id);
        self.states.insert(id, state);
        (id, restarted)
    }

    /// Where `id` resumes.
    pub fn thaw(&self, id: u32) -> Option<&Frozen> {
        self.states.get(&id)
    }

    /// Ids in use.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// True when no id is in use.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_state_shares_an_id_and_thaws_back() {
        let mut t = RecircTable::default();
        let mut k = XKey::default();
        k.w[REG_WORD] = 0x1234;
        let (a, _) = t.freeze(Frozen::of("br-int", 72, 5, &k));
        let (b, _) = t.freeze(Frozen::of("br-int", 72, 5, &k));
        let (c, _) = t.freeze(Frozen::of("br-int", 73, 5, &k));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, 0);
        let mut back = XKey::default();
        t.thaw(a).unwrap().restore(&mut back);
        assert_eq!(back.w[REG_WORD], 0x1234);
        assert_eq!(t.thaw(a).unwrap().table, 72);
        assert!(t.thaw(999).is_none());
    }

    #[test]
    fn a_full_table_starts_over() {
        let mut t = RecircTable::default();
        for i in 0..MAX_RECIRC_IDS {
            let mut k = XKey::default();
            k.w[REG_WORD] = i as u64;
            assert!(!t.freeze(Frozen::of("br", 1, 1, &k)).1);
        }
        let (id, restarted) = t.freeze(Frozen::of("br", 2, 1, &XKey::default()));
        assert!(restarted);
        assert_eq!(t.len(), 1);
        assert_eq!(t.thaw(id).unwrap().table, 2);
    }
}
