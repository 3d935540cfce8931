//! The MAC learning table behind the NORMAL action: (VLAN, MAC) -> port, with
//! aging, a size limit and MAC moves. Each port keeps its entries in
//! last-seen order (an LRU list). A full table evicts the least recently seen
//! entry of the port that has the most entries, as OVS does
//! (`evict_mac_entry_fairly`): a port flooding new source MACs evicts its own,
//! not its neighbours'. Eviction and aging cost O(ports) per entry, never a
//! scan of the table.

use lru::LruCache;
use std::collections::HashMap;

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

type Key = (u16, u64);

/// A bridge's MAC table.
#[derive(Clone, Debug)]
pub struct MacTable {
    entries: HashMap<Key, MacEntry>,
    /// Per port, its keys least recently seen first (the learning clock only
    /// moves forward, so this is also oldest `seen_ms` first).
    by_port: HashMap<u32, LruCache<Key, ()>>,
    /// Entries removed (evicted, aged out, forgotten) since the last
    /// [`take_forgotten`](Self::take_forgotten): cached flows that used them
    /// must go.
    forgotten: Vec<Key>,
    /// Idle time before an entry is forgotten.
    pub aging_ms: u64,
    /// Most entries kept.
    pub max_entries: usize,
}

impl Default for MacTable {
    fn default() -> Self {
        MacTable {
            entries: HashMap::new(),
            by_port: HashMap::new(),
            forgotten: Vec::new(),
            aging_ms: DEFAULT_AGING_S * 1000,
            max_entries: DEFAULT_MAX_MACS,
        }
    }
}

impl MacTable {
    /// Record that `mac` on `vlan` was seen on `port` at `now_ms`.
    pub fn learn(&mut self, vlan: u16, mac: u64, port: u32, now_ms: u64) -> Learned {
        let key = (vlan, mac);
        if let Some(e) = self.entries.get_mut(&key) {
            let expired = now_ms.saturating_sub(e.seen_ms) >= self.aging_ms;
            let from = e.port;
            e.seen_ms = now_ms;
            e.port = port;
            if from == port {
                self.list(port).promote(&key);
            } else {
                self.unlist(from, &key);
                self.list(port).put(key, ());
            }
            return match (from == port, expired) {
                (true, false) => Learned::Refreshed,
                (true, true) => Learned::New,
                (false, _) => Learned::Moved { from },
            };
        }
        self.expire(now_ms);
        while self.entries.len() >= self.max_entries.max(1) && self.evict_fairly() {}
        self.entries.insert(
            key,
            MacEntry {
                vlan,
                mac,
                port,
                seen_ms: now_ms,
            },
        );
        self.list(port).put(key, ());
        Learned::New
    }

    /// Traffic from `mac` on `vlan` still arrives on `port` (a cached flow
    /// that learned it was used): keep the entry young, as OVS's revalidators
    /// do. Nothing happens when the entry is gone or has moved since.
    pub fn refresh(&mut self, vlan: u16, mac: u64, port: u32, now_ms: u64) {
        let key = (vlan, mac);
        if let Some(e) = self.entries.get_mut(&key).filter(|e| e.port == port) {
            e.seen_ms = e.seen_ms.max(now_ms);
            self.list(port).promote(&key);
        }
    }

    fn list(&mut self, port: u32) -> &mut LruCache<Key, ()> {
        self.by_port.entry(port).or_insert_with(LruCache::unbounded)
    }

    fn unlist(&mut self, port: u32, key: &Key) {
        if let Some(l) = self.by_port.get_mut(&port) {
            l.pop(key);
            if l.is_empty() {
                self.by_port.remove(&port);
            }
        }
    }

    /// Remove the least recently seen entry of the port with the most entries.
    fn evict_fairly(&mut self) -> bool {
        let Some((&port, _)) = self
            .by_port
            .iter()
            .max_by_key(|(p, l)| (l.len(), std::cmp::Reverse(**p)))
        else {
            return false;
        };
        let l = self.by_port.get_mut(&port).expect("just found");
        let Some((key, ())) = l.pop_lru() else {
            return false;
        };
        if l.is_empty() {
            self.by_port.remove(&port);
        }
        self.entries.remove(&key);
        self.forgotten.push(key);
        true
    }

    /// The port of `mac` on `vlan`, unless unknown or aged out.
    pub fn lookup(&self, vlan: u16, mac: u64, now_ms: u64) -> Option<u32> {
        self.entries
            .get(&(vlan, mac))
            .filter(|e| now_ms.saturating_sub(e.seen_ms) < self.aging_ms)
            .map(|e| e.port)
    }

    /// Forget aged-out entries (each port's oldest first, stopping at its
    /// first young one); returns how many.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let mut n = 0;
        let aging = self.aging_ms;
        let entries = &mut self.entries;
        let forgotten = &mut self.forgotten;
        self.by_port.retain(|_, l| {
            while let Some((key, ())) = l.peek_lru() {
                let old = entries
                    .get(key)
                    .is_none_or(|e| now_ms.saturating_sub(e.seen_ms) >= aging);
                if !old {
                    break;
                }
                let (key, ()) = l.pop_lru().expect("peeked");
                entries.remove(&key);
                forgotten.push(key);
                n += 1;
            }
            !l.is_empty()
        });
        n
    }

    /// Forget the entries of one port (it was removed).
    pub fn forget_port(&mut self, port: u32) -> usize {
        let Some(l) = self.by_port.remove(&port) else {
            return 0;
        };
        let n = l.len();
        for (key, ()) in l.iter() {
            self.entries.remove(key);
            self.forgotten.push(*key);
        }
        n
    }

    /// Forget everything.
    pub fn flush(&mut self) {
        self.forgotten.extend(self.entries.keys().copied());
        self.entries.clear();
        self.by_port.clear();
    }

    /// (VLAN, MAC) of the entries removed since the last call.
    pub fn take_forgotten(&mut self) -> Vec<(u16, u64)> {
        std::mem::take(&mut self.forgotten)
    }

    /// Entries, sorted by (vlan, mac).
    pub fn entries(&self) -> Vec<MacEntry> {
        let mut v: Vec<_> = self.entries.values().copied().collect();
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

    #[test]
    fn a_flooding_port_evicts_its_own_entries() {
        let mut t = MacTable {
            max_entries: 100,
            ..Default::default()
        };
        // Two quiet stations, learned first (the oldest entries).
        t.learn(1, 0xa, 1, 0);
        t.learn(1, 0xb, 2, 0);
        // Port 3 sends from 10,000 new MACs.
        for m in 0..10_000 {
            t.learn(1, 0x1000 + m, 3, 1 + m);
        }
        assert_eq!(t.len(), 100);
        assert_eq!(t.lookup(1, 0xa, 20_000), Some(1), "port 1's entry survived");
        assert_eq!(t.lookup(1, 0xb, 20_000), Some(2));
        assert_eq!(t.take_forgotten().len(), 10_000 + 2 - 100);
    }

    #[test]
    fn refresh_keeps_used_entries_young_but_never_moves_them() {
        let mut t = MacTable {
            aging_ms: 1000,
            ..Default::default()
        };
        t.learn(1, 0xa, 1, 0);
        t.refresh(1, 0xa, 1, 900);
        assert_eq!(t.lookup(1, 0xa, 1500), Some(1), "refreshed at 900");
        t.refresh(1, 0xa, 2, 1800);
        assert_eq!(
            t.lookup(1, 0xa, 1950),
            None,
            "a refresh from another port does nothing"
        );
        t.learn(1, 0xa, 2, 2000);
        assert_eq!(t.lookup(1, 0xa, 2000), Some(2));
        assert_eq!(t.expire(3500), 1);
        assert!(t.is_empty());
    }
}
