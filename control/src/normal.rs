//! The MAC learning table behind the NORMAL action: (VLAN, MAC) -> port, with
//! aging, a size limit (oldest evicted first) and MAC moves. Entries are kept
//! in last-seen order (an LRU list), so evicting the oldest and expiring the
//! aged are O(1) per entry, never a scan of the table.

use lru::LruCache;

/// Default idle time before an entry ages out (as OVS: 300 s).
pub const DEFAULT_AGING_S: u64 = 300;
/// Default bound on entries (as OVS: 8192).
pub const DEFAULT_MAX_MACS: usize = 8192;

/// One learned address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacEntry {
    /// VLAN.
    pub vlan: u16,
    /// The MAC (low 48 bits).
    pub mac: u64,
    /// OpenFlow port it was last seen on.
    pub port: u32,
    /// When it was last seen (ms).
    pub seen_ms: u64,
}

/// What learning a source address changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// Already known on that port (only the age was refreshed).
    Refreshed,
    /// A new address.
    New,
    /// The address moved from another port.
    Moved {
        /// Where it was.
        from: u32,
    },
}

/// A bridge's MAC table.
#[derive(Clone, Debug)]
pub struct MacTable {
    /// Least recently seen first: the learning clock only moves forward, so
    /// this is also oldest `seen_ms` first.
    entries: LruCache<(u16, u64), MacEntry>,
    /// Entries removed (evicted, aged out, forgotten) since the last
    /// [`take_forgotten`](Self::take_forgotten): cached flows that used them
    /// must go.
    forgotten: Vec<(u16, u64)>,
    /// Idle time before an entry is forgotten.
    pub aging_ms: u64,
    /// Most entries kept.
    pub max_entries: usize,
}

impl Default for MacTable {
    fn default() -> Self {
        MacTable {
            entries: LruCache::unbounded(),
            forgotten: Vec::new(),
            aging_ms: DEFAULT_AGING_S * 1000,
            max_entries: DEFAULT_MAX_MACS,
        }
    }
}

impl MacTable {
    /// Record that `mac` on `vlan` was seen on `port` at `now_ms`.
    pub fn learn(&mut self, vlan: u16, mac: u64, port: u32, now_ms: u64) -> Learned {
        if let Some(e) = self.entries.get_mut(&(vlan, mac)) {
            let expired = now_ms.saturating_sub(e.seen_ms) >= self.aging_ms;
            let from = e.port;
            e.seen_ms = now_ms;
            e.port = port;
            return match (from == port, expired) {
                (true, false) => Learned::Refreshed,
                (true, true) => Learned::New,
                (false, _) => Learned::Moved { from },
            };
        }
        self.expire(now_ms);
        while self.entries.len() >= self.max_entries.max(1) {
            match self.entries.pop_lru() {
                Some((k, _)) => self.forgotten.push(k),
                None => break,
            }
        }
        self.entries.put(
            (vlan, mac),
            MacEntry {
                vlan,
                mac,
                port,
                seen_ms: now_ms,
            },
        );
        Learned::New
    }

    /// The port of `mac` on `vlan`, unless unknown or aged out.
    pub fn lookup(&self, vlan: u16, mac: u64, now_ms: u64) -> Option<u32> {
        self.entries
            .peek(&(vlan, mac))
            .filter(|e| now_ms.saturating_sub(e.seen_ms) < self.aging_ms)
            .map(|e| e.port)
    }

    /// Forget aged-out entries (oldest first, stopping at the first young
    /// one); returns how many.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let mut n = 0;
        while let Some((_, e)) = self.entries.peek_lru() {
            if now_ms.saturating_sub(e.seen_ms) < self.aging_ms {
                break;
            }
            let (k, _) = self.entries.pop_lru().expect("peeked");
            self.forgotten.push(k);
            n += 1;
        }
        n
    }

    /// Forget the entries of one port (it was removed).
    pub fn forget_port(&mut self, port: u32) -> usize {
        let gone: Vec<(u16, u64)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.port == port)
            .map(|(k, _)| *k)
            .collect();
        for k in &gone {
            self.entries.pop(k);
        }
        self.forgotten.extend_from_slice(&gone);
        gone.len()
    }

    /// Forget everything.
    pub fn flush(&mut self) {
        let gone: Vec<(u16, u64)> = self.entries.iter().map(|(k, _)| *k).collect();
        self.forgotten.extend(gone);
        self.entries.clear();
    }

    /// (VLAN, MAC) of the entries removed since the last call.
    pub fn take_forgotten(&mut self) -> Vec<(u16, u64)> {
        std::mem::take(&mut self.forgotten)
    }

    /// Entries, sorted by (vlan, mac).
    pub fn entries(&self) -> Vec<MacEntry> {
        let mut v: Vec<_> = self.entries.iter().map(|(_, e)| *e).collect();
        v.sort_by_key(|e| (e.vlan, e.mac));
        v
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learn_lookup_move_age() {
        let mut t = MacTable {
            aging_ms: 1000,
            ..Default::default()
        };
        assert_eq!(t.learn(1, 0xa, 5, 0), Learned::New);
        assert_eq!(t.learn(1, 0xa, 5, 10), Learned::Refreshed);
        assert_eq!(t.lookup(1, 0xa, 500), Some(5));
        assert_eq!(t.lookup(2, 0xa, 500), None, "per VLAN");
        assert_eq!(t.learn(1, 0xa, 6, 600), Learned::Moved { from: 5 });
        assert_eq!(t.lookup(1, 0xa, 700), Some(6));
        assert_eq!(t.lookup(1, 0xa, 1700), None, "aged out");
        assert_eq!(t.expire(1700), 1);
        assert!(t.is_empty());
        assert_eq!(t.take_forgotten(), [(1, 0xa)]);
    }

    #[test]
    fn size_limit_evicts_the_oldest() {
        let mut t = MacTable {
            max_entries: 3,
            ..Default::default()
        };
        for i in 0..3 {
            t.learn(0, i, 1, i * 10);
        }
        // Seeing 0 again makes 1 the oldest.
        assert_eq!(t.learn(0, 0, 1, 50), Learned::Refreshed);
        t.learn(0, 99, 1, 100);
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(0, 1, 100), None, "the least recently seen went");
        assert_eq!(t.lookup(0, 0, 100), Some(1));
        assert_eq!(t.lookup(0, 99, 100), Some(1));
        assert_eq!(t.take_forgotten(), [(0, 1)]);
        assert_eq!(t.forget_port(1), 3);
        assert_eq!(t.take_forgotten().len(), 3);
    }
}
