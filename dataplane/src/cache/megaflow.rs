//! [`MegaflowCache`]: masked flows found by tuple-space search. Flows with the
//! same mask share a subtable (a hash table of masked keys); a lookup probes the
//! subtables in order of recent hits and stops at the first valid match.

use super::flow::DpFlow;
use super::stats::CacheStats;
use crate::action::Action;
use crate::flow::{FlowKey, FlowMask};
use hashbrown::HashTable;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// Default bound on cached flows (OVS's default flow limit is 200,000; a small
/// lab needs far fewer).
pub const DEFAULT_MAX_FLOWS: usize = 65_536;

struct Subtable {
    mask: FlowMask,
    flows: HashTable<Arc<DpFlow>>,
    hits: Cell<u64>,
}

impl Subtable {
    #[inline]
    fn find(&self, key: &FlowKey) -> Option<&Arc<DpFlow>> {
        let h = key.hash_masked(&self.mask);
        self.flows.find(h, |f| key.matches_masked(&self.mask, &f.key))
    }
}

/// What [`MegaflowCache::revalidate`] should do with one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revalidate {
    /// Still right: carry it into the new generation.
    Keep,
    /// Same match, new actions.
    Replace(Box<[Action]>),
    /// Wrong now: remove it.
    Delete,
}

/// The megaflow cache: bounded, with hit/miss/evict counters and a generation.
pub struct MegaflowCache {
    subtables: Vec<Subtable>,
    /// Dependency tag -> the flows that carry it, so invalidating a tag
    /// touches those flows only, not the whole cache. Entries of flows removed
    /// otherwise are dropped by [`compact`](Self::compact).
    by_dep: HashMap<u64, Vec<Weak<DpFlow>>>,
    n_flows: usize,
    max_flows: usize,
    generation: u64,
    stats: CacheStats,
}

impl MegaflowCache {
    /// An empty cache holding at most `max_flows` flows.
    pub fn new(max_flows: usize) -> Self {
        MegaflowCache {
            subtables: Vec::new(),
            by_dep: HashMap::new(),
            n_flows: 0,
            max_flows: max_flows.max(1),
            generation: 1,
            stats: CacheStats::default(),
        }
    }

    /// The current generation: only flows of this generation match.
    #[inline(always)]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Find the flow matching `key`.
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> Option<&Arc<DpFlow>> {
        for st in &self.subtables {
            if let Some(f) = st.find(key) {
                if f.is_valid(self.generation) {
                    st.hits.set(st.hits.get() + 1);
                    self.stats.hit();
                    return Some(f);
                }
            }
        }
        self.stats.miss();
        None
    }

    /// Install a flow for `key` under `mask` with `actions`, in the current
    /// generation, replacing a flow with the same masked key. Evicts the least
    /// recently used flows first when the cache is full. Returns the flow (for
    /// the EMC).
    pub fn insert(
        &mut self,
        key: &FlowKey,
        mask: FlowMask,
        actions: Box<[Action]>,
        now_ms: u64,
    ) -> Arc<DpFlow> {
        self.insert_with_deps(key, mask, actions, &[], now_ms)
    }

    /// [`insert`](Self::insert) a flow that depends on tags `deps`
    /// (see [`invalidate_tags`](Self::invalidate_tags)).
    pub fn insert_with_deps(
        &mut self,
        key: &FlowKey,
        mask: FlowMask,
        actions: Box<[Action]>,
        deps: &[u64],
        now_ms: u64,
    ) -> Arc<DpFlow> {
        if self.n_flows >= self.max_flows {
            self.evict_lru(self.max_flows / 8 + 1);
        }
        let flow = Arc::new(DpFlow::new(key, mask, actions, self.generation, now_ms).with_deps(deps));
        let idx = match self.subtables.iter().position(|s| s.mask == mask) {
            Some(i) => i,
            None => {
                self.subtables.push(Subtable {
                    mask,
                    flows: HashTable::new(),
                    hits: Cell::new(0),
                });
                self.subtables.len() - 1
            }
        };
        for d in flow.deps() {
            self.by_dep.entry(*d).or_default().push(Arc::downgrade(&flow));
        }
        let st = &mut self.subtables[idx];
        let h = flow.key.hash_masked(&mask);
        match st.flows.find_mut(h, |f| f.key == flow.key) {
            Some(old) => {
                old.kill();
                *old = flow.clone();
            }
            None => {
                st.flows
                    .insert_unique(h, flow.clone(), |f| f.key.hash_masked(&f.mask));
                self.n_flows += 1;
            }
        }
        self.stats.insert();
        flow
    }

    /// Invalidate every flow in O(1) by moving to a new generation (a flush whose
    /// memory is reclaimed lazily by [`purge_stale`](Self::purge_stale)).
    pub fn bump_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    /// Remove every flow now.
    pub fn flush(&mut self) {
        self.retain(|_| false);
        self.subtables.clear();
        self.by_dep.clear();
    }

    /// Remove flows of older generations (after a bump).
    pub fn purge_stale(&mut self) -> usize {
        let gen = self.generation;
        self.retain(|f| f.is_valid(gen))
    }

    /// Remove the flows that depend on any of `tags`; returns how many. Costs
    /// the flows found, not the size of the cache.
    pub fn invalidate_tags(&mut self, tags: &[u64]) -> usize {
        let mut n = 0;
        for t in tags {
            for w in self.by_dep.remove(t).unwrap_or_default() {
                if let Some(f) = w.upgrade() {
                    n += self.remove_flow(&f) as usize;
                }
            }
        }
        n
    }

    /// Remove `f` from its subtable (false when it is no longer there).
    fn remove_flow(&mut self, f: &Arc<DpFlow>) -> bool {
        if f.is_dead() {
            return false;
        }
        let Some(i) = self.subtables.iter().position(|s| s.mask == f.mask) else {
            return false;
        };
        let st = &mut self.subtables[i];
        let h = f.key.hash_masked(&f.mask);
        let Ok(e) = st.flows.find_entry(h, |x| Arc::ptr_eq(x, f)) else {
            return false;
        };
        e.remove();
        f.kill();
        self.n_flows -= 1;
        if st.flows.is_empty() {
            self.subtables.remove(i);
        }
        true
    }

    /// Drop the dependency index's entries of flows that are gone.
    pub fn compact(&mut self) {
        self.by_dep.retain(|_, v| {
            v.retain(|w| w.upgrade().is_some_and(|f| !f.is_dead()));
            !v.is_empty()
        });
    }

    /// Remove flows not hit since `now_ms - idle_ms` (OVS's idle timeout).
    pub fn expire(&mut self, now_ms: u64, idle_ms: u64) -> usize {
        let cutoff = now_ms.saturating_sub(idle_ms);
        self.retain(|f| f.stats.used_ms() >= cutoff)
    }

    /// Re-check every flow of the current generation with `check`, then move
    /// the cache to a new generation holding only the flows kept or replaced.
    /// Returns (kept, replaced, deleted).
    pub fn revalidate(&mut self, mut check: impl FnMut(&DpFlow) -> Revalidate) -> (usize, usize, usize) {
        let old = self.generation;
        let new = old + 1;
        let (mut kept, mut replaced, mut deleted) = (0, 0, 0);
        let by_dep = &mut self.by_dep;
        for st in &mut self.subtables {
            st.flows.retain(|f| {
                if !f.is_valid(old) {
                    f.kill();
                    deleted += 1;
                    return false;
                }
                match check(f) {
                    Revalidate::Keep => {
                        f.set_generation(new);
                        kept += 1;
                        true
                    }
                    Revalidate::Replace(actions) => {
                        let nf = Arc::new(
                            DpFlow::new(&f.key, f.mask, actions, new, f.stats.used_ms()).with_deps(f.deps()),
                        );
                        nf.set_tag(f.tag());
                        for d in nf.deps() {
                            by_dep.entry(*d).or_default().push(Arc::downgrade(&nf));
                        }
                        f.kill();
                        *f = nf;
                        replaced += 1;
                        true
                    }
                    Revalidate::Delete => {
                        f.kill();
                        deleted += 1;
                        false
                    }
                }
            });
        }
        self.n_flows -= deleted;
        self.subtables.retain(|s| !s.flows.is_empty());
        self.generation = new;
        (kept, replaced, deleted)
    }

    /// Keep flows for which `keep` is true; returns how many were removed.
    fn retain(&mut self, mut keep: impl FnMut(&DpFlow) -> bool) -> usize {
        let mut removed = 0;
        for st in &mut self.subtables {
            st.flows.retain(|f| {
                let k = keep(f);
                if !k {
                    f.kill();
                    removed += 1;
                }
                k
            });
        }
        self.subtables.retain(|s| !s.flows.is_empty());
        self.n_flows -= removed;
        removed
    }

    /// Remove at least `n` flows, least recently used first (stale ones go first).
    fn evict_lru(&mut self, n: usize) {
        let gen = self.generation;
        let mut used: Vec<u64> = self
            .iter()
            .map(|f| if f.is_valid(gen) { f.stats.used_ms() } else { 0 })
            .collect();
        if used.is_empty() {
            return;
        }
        let nth = n.min(used.len()) - 1;
        let (_, cutoff, _) = used.select_nth_unstable(nth);
        let cutoff = *cutoff;
        let mut budget = n;
        let evicted = self.retain(|f| {
            let old = !f.is_valid(gen) || f.stats.used_ms() <= cutoff;
            if old && budget > 0 {
                budget -= 1;
                false
            } else {
                true
            }
        });
        self.stats.evict(evicted as u64);
    }

    /// Order subtables by hits since the last call (most hit first), so that
    /// lookups for common traffic probe fewer subtables. Call it every few
    /// thousand batches, as OVS's PMD re-sorts its dpcls subtables.
    pub fn rank_subtables(&mut self) {
        self.subtables.sort_by_key(|s| std::cmp::Reverse(s.hits.get()));
        for s in &self.subtables {
            s.hits.set(0);
        }
    }

    /// Every flow (valid or stale), for dumps.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<DpFlow>> {
        self.subtables.iter().flat_map(|s| s.flows.iter())
    }

    /// Number of flows held (valid or not yet purged).
    pub fn len(&self) -> usize {
        self.n_flows
    }

    /// True when no flows are held.
    pub fn is_empty(&self) -> bool {
        self.n_flows == 0
    }

    /// Number of subtables (distinct masks).
    pub fn n_subtables(&self) -> usize {
        self.subtables.len()
    }

    /// The bound on flows.
    pub fn max_flows(&self) -> usize {
        self.max_flows
    }

    /// Counters.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests;
