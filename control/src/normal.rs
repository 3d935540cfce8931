//! The MAC learning table behind the NORMAL action: (VLAN, MAC) -> port, with
//! aging, a size limit (oldest evicted first) and MAC moves.

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

/// A bridge's MAC table.
#[derive(Clone, Debug)]
pub struct MacTable {
    entries: HashMap<(u16, u64), MacEntry>,
    /// Idle time before an entry is forgotten.
    pub aging_ms: u64,
    /// Most entries kept.
    pub max_entries: usize,
}

impl Default for MacTable {
    fn default() -> Self {
        MacTable {
            entries: HashMap::new(),
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
        if self.entries.len() >= self.max_entries {
            self.expire(now_ms);
        }
        if self.entries.len() >= self.max_entries {
            if let Some(oldest) = self
                .entries
                .values()
                .min_by_key(|e| e.seen_ms)
                .map(|e| (e.vlan, e.mac))
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(
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
            .get(&(vlan, mac))
            .filter(|e| now_ms.saturating_sub(e.seen_ms) < self.aging_ms)
            .map(|e| e.port)
    }

    /// Forget aged-out entries; returns how many.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let before = self.entries.len();
        let aging = self.aging_ms;
        self.entries
            .retain(|_, e| now_ms.saturating_sub(e.seen_ms) < aging);
        before - self.entries.len()
    }

    /// Forget the entries of one port (it was removed).
    pub fn forget_port(&mut self, port: u32) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.port != port);
        before - self.entries.len()
    }

    /// Forget everything.
    pub fn flush(&mut self) {
        self.entries.clear();
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
        t.learn(0, 99, 1, 100);
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(0, 0, 100), None, "the oldest went");
        assert_eq!(t.lookup(0, 99, 100), Some(1));
        assert_eq!(t.forget_port(1), 3);
    }
}
