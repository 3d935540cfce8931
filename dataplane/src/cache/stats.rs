//! Hit/miss/evict counters of a cache.

use std::cell::Cell;

/// Counters of one cache. Cells: a cache belongs to one PMD thread, and lookups
/// take `&self`.
#[derive(Debug, Default, Clone)]
pub struct CacheStats {
    hits: Cell<u64>,
    misses: Cell<u64>,
    evictions: Cell<u64>,
    inserts: Cell<u64>,
}

/// A plain copy of [`CacheStats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheCounters {
    /// Lookups that found a valid entry.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Valid entries removed to make room.
    pub evictions: u64,
    /// Entries added.
    pub inserts: u64,
}

impl CacheStats {
    #[inline(always)]
    pub(crate) fn hit(&self) {
        self.hits.set(self.hits.get() + 1);
    }
    #[inline(always)]
    pub(crate) fn miss(&self) {
        self.misses.set(self.misses.get() + 1);
    }
    #[inline(always)]
    pub(crate) fn evict(&self, n: u64) {
        self.evictions.set(self.evictions.get() + n);
    }
    #[inline(always)]
    pub(crate) fn insert(&self) {
        self.inserts.set(self.inserts.get() + 1);
    }
    /// A snapshot.
    pub fn get(&self) -> CacheCounters {
        CacheCounters {
            hits: self.hits.get(),
            misses: self.misses.get(),
            evictions: self.evictions.get(),
            inserts: self.inserts.get(),
        }
    }
    /// Reset to zero.
    pub fn clear(&self) {
        self.hits.set(0);
        self.misses.set(0);
        self.evictions.set(0);
        self.inserts.set(0);
    }
}
