//! [`Invalidations`]: how the slow path tells PMD threads which cached flows
//! went stale, without a lock on the packet path.
//!
//! Two kinds of change:
//! - a change that can alter any translation (ports, options) moves the
//!   *epoch*: every PMD drops every cached flow before its next lookup;
//! - a change with a known reach (NORMAL learned, moved or forgot a MAC; the
//!   rules of one table changed) invalidates a *tag*: each cached flow carries the tags of what its
//!   translation depended on (the slow path chooses them, opaque here), and
//!   only the flows holding that tag are removed. One VM sending from many new
//!   MACs then costs the other tenants' flows nothing, as with OVS's
//!   revalidators, which re-translate and keep the flows a change did not touch.
//!
//! A PMD reads two atomics per poll; only when the tag sequence moved does it
//! take the (leaf) lock to copy the new tags out. Tags are kept in a bounded
//! log: a PMD that fell behind it drops everything, which is always correct.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Tags remembered for PMDs that have not caught up yet.
const LOG_CAP: usize = 4096;

/// Where the slow path's changes stood at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Full-flush counter.
    pub epoch: u64,
    /// Tags invalidated so far.
    pub seq: u64,
}

#[derive(Debug, Default)]
struct Log {
    /// Sequence number of `tags[0]`.
    first: u64,
    tags: VecDeque<u64>,
}

/// The slow path's change counters, shared with every PMD.
#[derive(Debug, Default)]
pub struct Invalidations {
    epoch: AtomicU64,
    seq: AtomicU64,
    log: Mutex<Log>,
}

impl Invalidations {
    /// No change yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every cached flow is stale (a rule, port or option changed).
    pub fn flush_all(&self) {
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// Cached flows that carry `tag` are stale.
    pub fn invalidate(&self, tag: u64) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.tags.len() == LOG_CAP {
            log.tags.pop_front();
            log.first += 1;
        }
        log.tags.push_back(tag);
        // Published under the lock, so a reader that sees the new count finds
        // the tag in the log.
        self.seq.fetch_add(1, Ordering::Release);
    }

    /// Where the changes stand now.
    #[inline]
    pub fn now(&self) -> Seen {
        Seen {
            epoch: self.epoch.load(Ordering::Acquire),
            seq: self.seq.load(Ordering::Acquire),
        }
    }

    /// The tags invalidated after sequence number `since`, into `out`
    /// (cleared, then sorted and deduplicated); returns the sequence number
    /// they reach. `None` when the log no longer reaches back that far: the
    /// caller must drop everything.
    pub fn tags_since(&self, since: u64, out: &mut Vec<u64>) -> Option<u64> {
        out.clear();
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let end = log.first + log.tags.len() as u64;
        if since < log.first {
            return None;
        }
        let skip = (since - log.first) as usize;
        out.extend(log.tags.iter().skip(skip).copied());
        drop(log);
        out.sort_unstable();
        out.dedup();
        Some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_since_and_overflow() {
        let inv = Invalidations::new();
        let mut out = Vec::new();
        assert_eq!(inv.tags_since(0, &mut out), Some(0));
        assert!(out.is_empty());
        inv.invalidate(7);
        inv.invalidate(3);
        inv.invalidate(7);
        let s = inv.now();
        assert_eq!(s.seq, 3);
        assert_eq!(inv.tags_since(0, &mut out), Some(3));
        assert_eq!(out, [3, 7]);
        assert_eq!(inv.tags_since(2, &mut out), Some(3));
        assert_eq!(out, [7]);
        assert_eq!(inv.tags_since(3, &mut out), Some(3));
        assert!(out.is_empty());
        for t in 0..LOG_CAP as u64 {
            inv.invalidate(t);
        }
        assert_eq!(inv.tags_since(0, &mut out), None, "fell behind: flush");
        assert_eq!(inv.tags_since(3, &mut out), Some(3 + LOG_CAP as u64));
        assert_eq!(out.len(), LOG_CAP);
        inv.flush_all();
        assert_eq!(inv.now().epoch, 1);
    }
}
