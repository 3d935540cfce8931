//! [`Emc`]: the exact-match cache. Each key can live in one of two slots picked
//! by two halves of its hash; an entry points at a megaflow, and is only used
//! while that megaflow is valid in the current generation.

use super::flow::DpFlow;
use super::stats::CacheStats;
use crate::flow::FlowKey;
use std::sync::Arc;

/// Default number of entries (as OVS's EMC).
pub const DEFAULT_EMC_ENTRIES: usize = 8192;

struct Entry {
    hash: u64,
    key: FlowKey,
    flow: Arc<DpFlow>,
}

/// The exact-match cache: bounded, per thread, hit/miss/evict counters.
pub struct Emc {
    slots: Box<[Option<Entry>]>,
    mask: usize,
    stats: CacheStats,
}

impl Emc {
    /// A cache with `entries` slots (rounded up to a power of two, at least 2).
    pub fn new(entries: usize) -> Self {
        let n = entries.max(2).next_power_of_two();
        Emc {
            slots: (0..n).map(|_| None).collect(),
            mask: n - 1,
            stats: CacheStats::default(),
        }
    }

    #[inline(always)]
    fn ways(&self, hash: u64) -> [usize; 2] {
        [hash as usize & self.mask, (hash >> 32) as usize & self.mask]
    }

    /// The flow for `key` (whose hash is `hash`), if cached and valid in `gen`.
    #[inline]
    pub fn lookup(&self, key: &FlowKey, hash: u64, gen: u64) -> Option<&Arc<DpFlow>> {
        for i in self.ways(hash) {
            if let Some(e) = &self.slots[i] {
                if e.hash == hash && e.key == *key && e.flow.is_valid(gen) {
                    self.stats.hit();
                    return Some(&e.flow);
                }
            }
        }
        self.stats.miss();
        None
    }

    /// Cache `flow` for `key`. Takes a free, invalid or same-key slot of the two;
    /// otherwise replaces the second (counted as an eviction).
    pub fn insert(&mut self, key: FlowKey, hash: u64, flow: Arc<DpFlow>, gen: u64) {
        let ways = self.ways(hash);
        let pick = ways
            .iter()
            .copied()
            .find(|&i| match &self.slots[i] {
                None => true,
                Some(e) => !e.flow.is_valid(gen) || (e.hash == hash && e.key == key),
            })
            .unwrap_or_else(|| {
                self.stats.evict(1);
                ways[1]
            });
        self.slots[pick] = Some(Entry { hash, key, flow });
        self.stats.insert();
    }

    /// Drop every entry.
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Occupied slots whose flow is valid in `gen`.
    pub fn len(&self, gen: u64) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|e| e.flow.is_valid(gen))
            .count()
    }

    /// True when no slot holds a flow valid in `gen`.
    pub fn is_empty(&self, gen: u64) -> bool {
        self.len(gen) == 0
    }

    /// Counters.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Action;
    use crate::flow::{Field, FlowMask};

    fn key(i: u64) -> FlowKey {
        let mut k = FlowKey::default();
        k.set(Field::NwSrc, i);
        k
    }

    fn flow(k: &FlowKey, gen: u64) -> Arc<DpFlow> {
        Arc::new(DpFlow::new(
            k,
            FlowMask::exact(),
            vec![Action::Output(1)].into(),
            gen,
            0,
        ))
    }

    #[test]
    fn hit_after_insert_and_miss_after_generation_change() {
        let mut emc = Emc::new(16);
        let k = key(1);
        let f = flow(&k, 5);
        emc.insert(k, k.hash(), f.clone(), 5);
        assert!(emc.lookup(&k, k.hash(), 5).is_some());
        assert!(
            emc.lookup(&k, k.hash(), 6).is_none(),
            "an older generation never matches"
        );
        f.kill();
        assert!(
            emc.lookup(&k, k.hash(), 5).is_none(),
            "a removed megaflow never matches"
        );
        let s = emc.stats().get();
        assert_eq!((s.hits, s.misses, s.inserts), (1, 2, 1));
    }

    #[test]
    fn bounded_with_evictions() {
        let mut emc = Emc::new(8);
        for i in 0..1000 {
            let k = key(i);
            emc.insert(k, k.hash(), flow(&k, 1), 1);
        }
        assert_eq!(emc.capacity(), 8);
        assert!(emc.len(1) <= 8);
        assert!(emc.stats().get().evictions > 900);
        // The last key inserted is always found.
        let k = key(999);
        assert!(emc.lookup(&k, k.hash(), 1).is_some());
    }

    #[test]
    fn same_key_reinsert_replaces_in_place() {
        let mut emc = Emc::new(64);
        let k = key(3);
        emc.insert(k, k.hash(), flow(&k, 1), 1);
        emc.insert(k, k.hash(), flow(&k, 1), 1);
        assert_eq!(emc.len(1), 1);
        assert_eq!(emc.stats().get().evictions, 0);
    }
}
