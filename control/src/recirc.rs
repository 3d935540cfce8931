//! Recirculation ids: where translation resumes after `ct(table=T)`, OVS's
//! "frozen state". The datapath runs `ct()`, then looks the packet up again
//! with the id in its key; a miss comes back here and the id says which
//! bridge and table to continue in, with which OpenFlow in_port and which
//! pipeline metadata (registers, `metadata`), none of which the datapath key
//! carries. The same [`IdTable`] numbers what a `controller` action froze
//! for its PACKET_IN (`packet_in.rs`).

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

/// A state an id can name. Its preferred id is a hash of the state that
/// is the same in every process (FNV-1a), never 0: a restarted daemon so
/// gives the states it meets the ids the kernel's adopted flows carry,
/// whatever order it meets them in, and those flows survive revalidation
/// (a counter would number them by arrival, and flows whose ids moved
/// would be deleted and their packets sent up while the daemon starts).
pub trait Freezable: Clone + Eq + std::hash::Hash {
    /// Feed the state to a hash.
    fn eat(&self, eat: &mut dyn FnMut(&[u8]));

    /// The id it gets when no other state holds it.
    fn preferred_id(&self) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        self.eat(&mut |b: &[u8]| {
            for x in b {
                h = (h ^ *x as u32).wrapping_mul(0x0100_0193);
            }
        });
        h.max(1)
    }
}

impl Freezable for Frozen {
    fn eat(&self, eat: &mut dyn FnMut(&[u8])) {
        eat(self.bridge.as_bytes());
        eat(&[0, self.table]);
        eat(&self.in_port.to_le_bytes());
        for w in &self.meta {
            eat(&w.to_le_bytes());
        }
    }
}

/// Recirculation ids in use.
pub type RecircTable = IdTable<Frozen>;

/// Ids (never 0) for the states in use, each state always the same id
/// while it is remembered.
#[derive(Debug)]
pub struct IdTable<S> {
    ids: HashMap<S, u32>,
    states: HashMap<u32, S>,
}

impl<S> Default for IdTable<S> {
    fn default() -> Self {
        IdTable {
            ids: HashMap::new(),
            states: HashMap::new(),
        }
    }
}

impl<S: Freezable> IdTable<S> {
    /// The id of `state` (the same state always gets the same id while it
    /// is remembered), and whether the table had to start over first.
    pub fn freeze(&mut self, state: S) -> (u32, bool) {
        if let Some(id) = self.ids.get(&state) {
            return (*id, false);
        }
        let restarted = self.ids.len() >= MAX_RECIRC_IDS;
        if restarted {
            self.ids.clear();
            self.states.clear();
        }
        // The preferred id, or the next free one after it (never 0, a fresh
        // packet's id). An id names one state while it is remembered; after
        // a start-over every cached flow goes, so none names an old one.
        let mut id = state.preferred_id();
        while self.states.contains_key(&id) {
            id = id.wrapping_add(1).max(1);
        }
        self.ids.insert(state.clone(), id);
        self.states.insert(id, state);
        (id, restarted)
    }

    /// Where `id` resumes.
    pub fn thaw(&self, id: u32) -> Option<&S> {
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

    /// Ids do not depend on the order states are met in (a restarted
    /// daemon numbers them as the one before it did).
    #[test]
    fn ids_do_not_depend_on_the_order_states_come_in() {
        let states: Vec<Frozen> = (0..50u64)
            .map(|i| {
                let mut k = XKey::default();
                k.w[REG_WORD] = i;
                Frozen::of("br-int", (i % 3) as u8 + 71, i as u32, &k)
            })
            .collect();
        let (mut a, mut b) = (RecircTable::default(), RecircTable::default());
        let fwd: Vec<u32> = states.iter().map(|s| a.freeze(s.clone()).0).collect();
        let mut rev: Vec<u32> = states.iter().rev().map(|s| b.freeze(s.clone()).0).collect();
        rev.reverse();
        assert_eq!(fwd, rev);
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
