//! A priority-aware tuple-space-search classifier. Rules with the same mask
//! share a subtable (a hash table of masked values); subtables are probed in
//! order of their highest priority, and a subtable whose best rule cannot beat
//! the match found so far is skipped. The lookup reports the union of the masks
//! it probed: exactly the bits the decision depended on, which is what makes a
//! megaflow built from it correct.
//!
//! Subtables are probed in stages, as OVS's staged lookup does: the
//! metadata (in_port, recirc_id, tunnel, `ct_*`, registers, `metadata`),
//! then everything up to L3, then L4, then the translation-only neighbour
//! discovery fields. When no rule of a subtable agrees with the packet on a
//! stage, only the bits up to that stage were consulted: a packet whose
//! `ct_state` no `+new` rule wants does not make its megaflow match the TCP
//! ports those rules name (one megaflow per connection otherwise), and the
//! many packets that are not NS/NA stay cacheable.

use crate::ofp::{Match, XKey, XMask, ACTSET_WORD, METADATA_WORD, REG_WORD, XWORDS};
use hashbrown::{HashMap, HashTable};
use rvs_dataplane::flow::hash_words;

fn hash(k: &XKey) -> u64 {
    hash_words(&k.w)
}

struct Bucket {
    value: XKey,
    /// (priority, slot), highest priority first.
    rules: Vec<(u16, usize)>,
}

struct Subtable {
    mask: XMask,
    buckets: HashTable<Bucket>,
    max_priority: u16,
    n_rules: usize,
    /// The stages short of the whole mask, in order: each one's mask, and
    /// how many buckets have each value under it.
    stages: Vec<(XMask, HashMap<XKey, usize>)>,
}

/// Which bits each stage adds: metadata, then L2 and L3 (all but L4 and the
/// neighbour discovery words), then all but neighbour discovery.
fn stage_bits() -> [XMask; 3] {
    use rvs_dataplane::flow::Field;
    let mut meta = XMask::default();
    for w in (0..8).chain(REG_WORD..METADATA_WORD + 1).chain([ACTSET_WORD]) {
        meta.w[w] = u64::MAX;
    }
    meta.or_bits(Field::PktMark.place(), u64::MAX);
    let mut no_nd = XMask::exact();
    no_nd.set_nd(&Default::default());
    let mut to_l3 = no_nd;
    to_l3.w[Field::TpSrc.place().0] = 0;
    [meta, to_l3, no_nd]
}

/// The stage masks of a subtable of `mask`: its bits in each stage, leaving
/// out stages that add nothing (and the whole mask, probed last anyway).
fn stage_masks(mask: &XMask) -> Vec<(XMask, HashMap<XKey, usize>)> {
    let mut out: Vec<(XMask, HashMap<XKey, usize>)> = Vec::new();
    for bits in stage_bits() {
        let m = mask.masked(&bits);
        let same_as_last = out.last().map_or(m.is_zero(), |(l, _)| *l == m);
        if !same_as_last && m != *mask {
            out.push((m, HashMap::new()));
        }
    }
    out
}

impl Subtable {
    fn recompute_max(&mut self) {
        self.max_priority = self
            .buckets
            .iter()
            .filter_map(|b| b.rules.first().map(|r| r.0))
            .max()
            .unwrap_or(0);
    }
}

struct Slot<T> {
    matches: Match,
    priority: u16,
    value: T,
}

/// A classifier holding one `T` per (match, priority).
pub struct Classifier<T> {
    subtables: Vec<Subtable>,
    slots: Vec<Option<Slot<T>>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Default for Classifier<T> {
    fn default() -> Self {
        Classifier {
            subtables: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

/// The result of a lookup.
pub struct Lookup<'a, T> {
    /// The winning rule: its match, priority and value.
    pub hit: Option<(&'a Match, u16, &'a T)>,
    /// Every key bit the lookup looked at.
    pub consulted: XMask,
    /// Where the winning rule is, for [`Classifier::slot_mut`] (no second
    /// search by match and priority).
    pub slot: Option<usize>,
}

impl<T> Classifier<T> {
    /// An empty classifier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of distinct masks.
    pub fn n_subtables(&self) -> usize {
        self.subtables.len()
    }

    fn find_slot(&self, m: &Match, priority: u16) -> Option<usize> {
        let st = self.subtables.iter().find(|s| s.mask == m.mask)?;
        let b = st.buckets.find(hash(&m.value), |b| b.value == m.value)?;
        b.rules
            .iter()
            .find(|(p, s)| *p == priority && self.slots[*s].as_ref().is_some_and(|x| x.matches == *m))
            .map(|(_, s)| *s)
    }

    /// The value of the rule with exactly this match and priority.
    pub fn get(&self, m: &Match, priority: u16) -> Option<&T> {
        self.find_slot(m, priority)
            .and_then(|s| self.slots[s].as_ref())
            .map(|s| &s.value)
    }

    /// The value of the rule with exactly this match and priority, writable.
    pub fn get_mut(&mut self, m: &Match, priority: u16) -> Option<&mut T> {
        let s = self.find_slot(m, priority)?;
        self.slot_mut(s)
    }

    /// The value of the rule a [`Lookup`] found (`Lookup::slot`).
    pub fn slot_mut(&mut self, slot: usize) -> Option<&mut T> {
        self.slots.get_mut(slot)?.as_mut().map(|s| &mut s.value)
    }

    /// Add a rule; a rule with the same match and priority is replaced and returned.
    pub fn insert(&mut self, m: Match, priority: u16, value: T) -> Option<T> {
        if let Some(s) = self.find_slot(&m, priority) {
            let slot = self.slots[s].as_mut().expect("live slot");
            return Some(std::mem::replace(&mut slot.value, value));
        }
        let slot = Slot {
            matches: m,
            priority,
            value,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        let si = match self.subtables.iter().position(|s| s.mask == m.mask) {
            Some(i) => i,
            None => {
                self.subtables.push(Subtable {
                    mask: m.mask,
                    buckets: HashTable::new(),
                    max_priority: 0,
                    n_rules: 0,
                    stages: stage_masks(&m.mask),
                });
                self.subtables.len() - 1
            }
        };
        let st = &mut self.subtables[si];
        let h = hash(&m.value);
        match st.buckets.find_mut(h, |b| b.value == m.value) {
            Some(b) => {
                let pos = b.rules.partition_point(|(p, _)| *p >= priority);
                b.rules.insert(pos, (priority, idx));
            }
            None => {
                st.buckets.insert_unique(
                    h,
                    Bucket {
                        value: m.value,
                        rules: vec![(priority, idx)],
                    },
                    |b| hash(&b.value),
                );
                for (sm, values) in &mut st.stages {
                    *values.entry(m.value.masked(sm)).or_default() += 1;
                }
            }
        }
        st.n_rules += 1;
        st.max_priority = st.max_priority.max(priority);
        self.sort_subtables();
        self.len += 1;
        None
    }

    /// Remove the rule with exactly this match and priority.
    pub fn remove(&mut self, m: &Match, priority: u16) -> Option<T> {
        let s = self.find_slot(m, priority)?;
        let si = self.subtables.iter().position(|st| st.mask == m.mask)?;
        let st = &mut self.subtables[si];
        let h = hash(&m.value);
        if let Ok(mut e) = st.buckets.find_entry(h, |b| b.value == m.value) {
            e.get_mut().rules.retain(|(_, x)| *x != s);
            if e.get().rules.is_empty() {
                e.remove();
                for (sm, values) in &mut st.stages {
                    let v = m.value.masked(sm);
                    if let Some(n) = values.get_mut(&v) {
                        *n -= 1;
                        if *n == 0 {
                            values.remove(&v);
                        }
                    }
                }
            }
        }
        st.n_rules -= 1;
        if st.n_rules == 0 {
            self.subtables.remove(si);
        } else {
            st.recompute_max();
            self.sort_subtables();
        }
        self.len -= 1;
        self.free.push(s);
        self.slots[s].take().map(|s| s.value)
    }

    fn sort_subtables(&mut self) {
        self.subtables.sort_by_key(|s| std::cmp::Reverse(s.max_priority));
    }

    /// The highest-priority rule matching `key`, and the bits consulted.
    pub fn lookup(&self, key: &XKey) -> Lookup<'_, T> {
        let mut consulted = XMask::default();
        let mut best: Option<(u16, usize)> = None;
        for st in &self.subtables {
            if best.is_some_and(|(p, _)| st.max_priority <= p) {
                // Sorted by max priority: nothing further can win.
                break;
            }
            let miss = st
                .stages
                .iter()
                .find(|(sm, values)| !values.contains_key(&key.masked(sm)));
            if let Some((sm, _)) = miss {
                consulted.union(sm);
                continue;
            }
            consulted.union(&st.mask);
            let v = key.masked(&st.mask);
            if let Some(b) = st.buckets.find(hash(&v), |b| b.value == v) {
                let (p, s) = b.rules[0];
                if best.is_none_or(|(bp, _)| p > bp) {
                    best = Some((p, s));
                }
            }
        }
        let slot = best.map(|(_, s)| s);
        let hit = slot
            .and_then(|s| self.slots[s].as_ref())
            .map(|s| (&s.matches, s.priority, &s.value));
        Lookup { hit, consulted, slot }
    }

    /// Every rule.
    pub fn iter(&self) -> impl Iterator<Item = (&Match, u16, &T)> {
        self.slots
            .iter()
            .flatten()
            .map(|s| (&s.matches, s.priority, &s.value))
    }

    /// Keep the rules for which `keep` is true; returns the removed values.
    pub fn retain(&mut self, mut keep: impl FnMut(&Match, u16, &T) -> bool) -> Vec<T> {
        let doomed: Vec<(Match, u16)> = self
            .iter()
            .filter(|(m, p, v)| !keep(m, *p, v))
            .map(|(m, p, _)| (*m, p))
            .collect();
        doomed.iter().filter_map(|(m, p)| self.remove(m, *p)).collect()
    }
}

const _: () = assert!(XWORDS <= 32, "the key hash takes at most 32 words");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ofp::OfField;
    use proptest::prelude::*;

    fn m(fields: &[(OfField, u128, u128)]) -> Match {
        let mut m = Match::any();
        for (f, v, mk) in fields {
            m.set(*f, *v, *mk);
        }
        m
    }

    fn key(fields: &[(OfField, u128)]) -> XKey {
        let mut k = XKey::default();
        for (f, v) in fields {
            f.set(&mut k, *v);
        }
        k
    }

    /// A subtable with neighbour discovery bits: a packet that agrees with
    /// none of its rules on the other bits consults only those (staged).
    #[test]
    fn translation_only_bits_are_consulted_only_when_the_rest_agrees() {
        let mut c = Classifier::new();
        let nd_rule = m(&[
            (OfField::DlType, 0x86dd, 0xffff),
            (OfField::NwProto, 58, 0xff),
            (OfField::TpSrc, 135, 0xffff),
            (OfField::NdTarget, 9, u128::MAX),
        ]);
        c.insert(nd_rule, 100, "nd");
        c.insert(m(&[]), 0, "default");
        let udp = key(&[(OfField::DlType, 0x86dd), (OfField::NwProto, 17)]);
        let l = c.lookup(&udp);
        assert_eq!(l.hit.map(|h| *h.2), Some("default"));
        assert!(!l.consulted.has_nd());
        let ns = key(&[
            (OfField::DlType, 0x86dd),
            (OfField::NwProto, 58),
            (OfField::TpSrc, 135),
            (OfField::NdTarget, 9),
        ]);
        let l = c.lookup(&ns);
        assert_eq!(l.hit.map(|h| *h.2), Some("nd"));
        assert!(l.consulted.has_nd());
        // Removing the rule removes its stage value too.
        c.remove(&nd_rule, 100);
        assert!(!c.lookup(&ns).consulted.has_nd());
    }

    /// A packet no rule of a subtable wants on its metadata (`ct_state`)
    /// consults that subtable's metadata bits only, not the ports its rules
    /// name: established connections share one megaflow.
    #[test]
    fn a_metadata_mismatch_consults_metadata_bits_only() {
        let mut c = Classifier::new();
        let (trk, new, est) = (0x20u128, 0x01u128, 0x02u128);
        c.insert(
            m(&[
                (OfField::CtState, trk | new, trk | new),
                (OfField::DlType, 0x0800, 0xffff),
                (OfField::NwProto, 6, 0xff),
                (OfField::TpDst, 22, 0xffff),
            ]),
            100,
            "ssh in",
        );
        c.insert(m(&[(OfField::CtState, trk | est, trk | est)]), 50, "established");
        let reply = key(&[
            (OfField::CtState, trk | est),
            (OfField::DlType, 0x0800),
            (OfField::NwProto, 6),
            (OfField::TpDst, 40000),
        ]);
        let l = c.lookup(&reply);
        assert_eq!(l.hit.map(|h| *h.2), Some("established"));
        let mut tp = XMask::default();
        OfField::TpDst.set(&mut tp, 0xffff);
        assert!(l.consulted.masked(&tp).is_zero(), "ports not consulted");
        // A new SSH connection does consult them, and hits its rule.
        let syn = key(&[
            (OfField::CtState, trk | new),
            (OfField::DlType, 0x0800),
            (OfField::NwProto, 6),
            (OfField::TpDst, 22),
        ]);
        let l = c.lookup(&syn);
        assert_eq!(l.hit.map(|h| *h.2), Some("ssh in"));
        assert!(!l.consulted.masked(&tp).is_zero());
    }

    #[test]
    fn priority_wins_and_consulted_bits_are_reported() {
        let mut c = Classifier::new();
        c.insert(m(&[]), 0, "default");
        c.insert(m(&[(OfField::NwDst, 0xc612_0000, 0xffff_0000)]), 10, "/16");
        c.insert(m(&[(OfField::NwDst, 0xc612_0100, 0xffff_ff00)]), 20, "/24");
        let k = key(&[(OfField::NwDst, 0xc612_0105)]);
        let l = c.lookup(&k);
        assert_eq!(l.hit.unwrap().2, &"/24");
        assert_eq!(
            OfField::NwDst.get(&l.consulted),
            0xffff_ff00,
            "only the /24 subtable was needed"
        );
        let k = key(&[(OfField::NwDst, 0xc612_0205)]);
        let l = c.lookup(&k);
        assert_eq!(l.hit.unwrap().2, &"/16");
        assert_eq!(
            OfField::NwDst.get(&l.consulted),
            0xffff_ff00,
            "the /24 was probed and missed"
        );
        assert_eq!(c.lookup(&key(&[(OfField::NwDst, 1)])).hit.unwrap().2, &"default");
    }

    #[test]
    fn replace_and_remove() {
        let mut c = Classifier::new();
        let a = m(&[(OfField::TpDst, 80, 0xffff)]);
        assert_eq!(c.insert(a, 5, 1), None);
        assert_eq!(c.insert(a, 5, 2), Some(1));
        c.insert(a, 6, 3);
        assert_eq!(c.len(), 2);
        assert_eq!(c.lookup(&key(&[(OfField::TpDst, 80)])).hit.unwrap().2, &3);
        assert_eq!(c.remove(&a, 6), Some(3));
        assert_eq!(c.lookup(&key(&[(OfField::TpDst, 80)])).hit.unwrap().2, &2);
        assert_eq!(c.remove(&a, 5), Some(2));
        assert!(c.is_empty());
        assert_eq!(c.n_subtables(), 0);
        assert!(c.lookup(&key(&[])).hit.is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// The classifier agrees with a linear scan, and any key that agrees
        /// with the probe on the consulted bits gets the same answer.
        #[test]
        fn agrees_with_linear_scan_and_consulted_bits_suffice(
            rules in proptest::collection::vec((0usize..5, any::<u16>(), 0u16..8), 1..40),
            probes in proptest::collection::vec((any::<u16>(), any::<u16>()), 1..20),
        ) {
            let masks: [(u128, u128); 5] = [(0xffff, 0xffff), (0xff00, 0), (0, 0xffff), (0xf000, 0x0f00), (0, 0)];
            let mut c = Classifier::new();
            let mut list: Vec<(Match, u16, usize)> = Vec::new();
            for (i, (mi, v, prio)) in rules.iter().enumerate() {
                let (ms, md) = masks[*mi];
                let mm = m(&[(OfField::TpSrc, *v as u128, ms), (OfField::TpDst, (*v as u128).rotate_left(3) & 0xffff, md)]);
                if c.insert(mm, *prio, i).is_some() {
                    list.retain(|(x, p, _)| !(*x == mm && p == prio));
                }
                list.push((mm, *prio, i));
            }
            for (s, d) in probes {
                let k = key(&[(OfField::TpSrc, s as u128), (OfField::TpDst, d as u128)]);
                let l = c.lookup(&k);
                let best = list.iter().filter(|(mm, _, _)| mm.matches(&k)).map(|(_, p, _)| *p).max();
                prop_assert_eq!(l.hit.map(|h| h.1), best);
                // Flip bits outside the consulted mask: same winner priority.
                let mut k2 = k;
                for i in 0..XWORDS { k2.w[i] ^= !l.consulted.w[i]; }
                let l2 = c.lookup(&k2);
                prop_assert_eq!(l2.hit.map(|h| h.1), l.hit.map(|h| h.1));
            }
        }
    }
}
