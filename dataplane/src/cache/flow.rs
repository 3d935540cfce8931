//! [`DpFlow`]: a cached datapath flow (masked key, mask, actions, stats).

use crate::action::Action;
use crate::flow::{FlowKey, FlowMask};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Generation value of a flow that has been removed: never equal to a cache's.
const DEAD: u64 = u64::MAX;

/// Packet/byte counters and last-use time of a flow. Written by the owning PMD
/// thread only (plain relaxed load + store, no locked instruction), readable
/// from any thread.
#[derive(Debug, Default)]
pub struct FlowStats {
    packets: AtomicU64,
    bytes: AtomicU64,
    used_ms: AtomicU64,
}

impl FlowStats {
    /// Packets that hit the flow.
    pub fn packets(&self) -> u64 {
        self.packets.load(Relaxed)
    }
    /// Bytes that hit the flow.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }
    /// Last hit, in the PMD's millisecond clock.
    pub fn used_ms(&self) -> u64 {
        self.used_ms.load(Relaxed)
    }
}

/// A datapath flow: packets whose key matches `key` under `mask` get `actions`.
#[derive(Debug)]
pub struct DpFlow {
    /// The key, already masked.
    pub key: FlowKey,
    /// The mask.
    pub mask: FlowMask,
    /// What to do with matching packets.
    pub actions: Box<[Action]>,
    /// Counters.
    pub stats: FlowStats,
    /// When the flow was installed (PMD millisecond clock).
    pub created_ms: u64,
    generation: AtomicU64,
    /// Opaque number the slow path gave this flow (to credit its counters to
    /// whatever produced it); 0 = none.
    tag: AtomicU64,
    /// What the translation depended on (see [`super::Invalidations`]):
    /// invalidating any of these tags removes the flow. Sorted.
    deps: Box<[u64]>,
}

impl DpFlow {
    /// A flow for `key` (masked here) under `mask`.
    pub fn new(key: &FlowKey, mask: FlowMask, actions: Box<[Action]>, generation: u64, now_ms: u64) -> Self {
        DpFlow {
            key: key.masked(&mask),
            mask,
            actions,
            stats: FlowStats {
                used_ms: AtomicU64::new(now_ms),
                ..Default::default()
            },
            created_ms: now_ms,
            generation: AtomicU64::new(generation),
            tag: AtomicU64::new(0),
            deps: Box::default(),
        }
    }

    /// The same flow, depending on `deps` (any order).
    pub fn with_deps(mut self, deps: &[u64]) -> Self {
        let mut d = deps.to_vec();
        d.sort_unstable();
        d.dedup();
        self.deps = d.into();
        self
    }

    /// The tags this flow depends on (sorted).
    pub fn deps(&self) -> &[u64] {
        &self.deps
    }

    /// The slow path's tag for this flow.
    pub fn tag(&self) -> u64 {
        self.tag.load(Relaxed)
    }

    /// Set the slow path's tag.
    pub fn set_tag(&self, tag: u64) {
        self.tag.store(tag, Relaxed);
    }

    /// True while the flow belongs to generation `gen` and has not been removed.
    #[inline(always)]
    pub fn is_valid(&self, gen: u64) -> bool {
        self.generation.load(Relaxed) == gen
    }

    /// The flow's generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    /// Move the flow into generation `gen` (it was revalidated).
    pub(crate) fn set_generation(&self, gen: u64) {
        self.generation.store(gen, Relaxed);
    }

    /// True once the flow was removed from its cache.
    pub fn is_dead(&self) -> bool {
        self.generation.load(Relaxed) == DEAD
    }

    /// Mark the flow removed, so that EMC entries pointing at it stop matching.
    pub(crate) fn kill(&self) {
        self.generation.store(DEAD, Relaxed);
    }

    /// Set the counters from elsewhere (a kernel flow's, read back).
    pub fn set_stats(&self, packets: u64, bytes: u64, used_ms: u64) {
        let s = &self.stats;
        s.packets.store(packets, Relaxed);
        s.bytes.store(bytes, Relaxed);
        s.used_ms.store(used_ms, Relaxed);
    }

    /// Count a hit (single writer: the owning PMD).
    #[inline(always)]
    pub fn record(&self, packets: u64, bytes: u64, now_ms: u64) {
        let s = &self.stats;
        s.packets.store(s.packets.load(Relaxed) + packets, Relaxed);
        s.bytes.store(s.bytes.load(Relaxed) + bytes, Relaxed);
        s.used_ms.store(now_ms, Relaxed);
    }
}
