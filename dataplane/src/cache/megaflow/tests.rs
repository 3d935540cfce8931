use super::*;
use crate::flow::Field;
use proptest::prelude::*;

fn acts(p: u32) -> Box<[Action]> {
    vec![Action::Output(p)].into()
}

fn key_dst(ip: u32, port: u16) -> FlowKey {
    let mut k = FlowKey::default();
    k.set(Field::NwDst, ip as u64);
    k.set(Field::TpDst, port as u64);
    k
}

fn mask_of(fields: &[(Field, u64)]) -> FlowMask {
    let mut m = FlowMask::default();
    for (f, v) in fields {
        m.set(*f, *v);
    }
    m
}

#[test]
fn masked_lookup_matches_covered_bits_only() {
    let mut c = MegaflowCache::new(100);
    let m = mask_of(&[(Field::NwDst, 0xffff_ff00)]);
    c.insert(&key_dst(0xc612_0005, 80), m, acts(1), 0);
    assert!(
        c.lookup(&key_dst(0xc612_00ff, 9999)).is_some(),
        "same /24, other port"
    );
    assert!(c.lookup(&key_dst(0xc612_0105, 80)).is_none(), "other /24");
    assert_eq!(c.n_subtables(), 1);
    c.insert(&key_dst(0, 22), mask_of(&[(Field::TpDst, 0xffff)]), acts(2), 0);
    assert_eq!(c.n_subtables(), 2);
    assert_eq!(
        c.lookup(&key_dst(1, 22)).unwrap().actions[..],
        [Action::Output(2)]
    );
    let s = c.stats().get();
    assert_eq!((s.hits, s.misses), (2, 1));
}

#[test]
fn bounded_and_evicts_least_recently_used() {
    let mut c = MegaflowCache::new(64);
    let m = FlowMask::exact();
    for i in 0..64u32 {
        c.insert(&key_dst(i, 1), m, acts(1), i as u64);
    }
    assert_eq!(c.len(), 64);
    // Touch flow 0 so it is the most recently used.
    c.lookup(&key_dst(0, 1)).unwrap().record(1, 60, 1_000_000);
    for i in 64..200u32 {
        c.insert(&key_dst(i, 1), m, acts(1), 1000 + i as u64);
        assert!(c.len() <= 64);
    }
    assert!(c.stats().get().evictions > 0);
    assert!(c.lookup(&key_dst(0, 1)).is_some(), "recently used flow survives");
    assert!(c.lookup(&key_dst(1, 1)).is_none(), "old idle flow was evicted");
    assert!(c.lookup(&key_dst(199, 1)).is_some());
}

#[test]
fn generation_bump_invalidates_everything_at_once() {
    let mut c = MegaflowCache::new(10);
    let f = c.insert(&key_dst(1, 1), FlowMask::exact(), acts(1), 0);
    let g = c.generation();
    assert!(f.is_valid(g));
    c.bump_generation();
    assert!(c.lookup(&key_dst(1, 1)).is_none());
    assert!(!f.is_valid(c.generation()));
    assert_eq!(c.purge_stale(), 1);
    assert!(c.is_empty());
    assert_eq!(c.n_subtables(), 0);
}

#[test]
fn revalidate_keeps_replaces_and_deletes() {
    let mut c = MegaflowCache::new(10);
    let m = FlowMask::exact();
    let keep = c.insert(&key_dst(1, 1), m, acts(1), 0);
    let repl = c.insert(&key_dst(2, 1), m, acts(1), 0);
    let del = c.insert(&key_dst(3, 1), m, acts(1), 0);
    let r = c.revalidate(|f| match f.key.get(Field::NwDst) {
        1 => Revalidate::Keep,
        2 => Revalidate::Replace(acts(7)),
        _ => Revalidate::Delete,
    });
    assert_eq!(r, (1, 1, 1));
    let g = c.generation();
    assert!(
        keep.is_valid(g),
        "kept flows (and EMC entries pointing at them) stay valid"
    );
    assert!(!repl.is_valid(g) && !del.is_valid(g));
    assert_eq!(c.lookup(&key_dst(2, 1)).unwrap().actions[..], [Action::Output(7)]);
    assert!(c.lookup(&key_dst(3, 1)).is_none());
    assert_eq!(c.len(), 2);
}

#[test]
fn expire_removes_idle_flows() {
    let mut c = MegaflowCache::new(10);
    c.insert(&key_dst(1, 1), FlowMask::exact(), acts(1), 0);
    c.insert(&key_dst(2, 1), FlowMask::exact(), acts(1), 9_000);
    assert_eq!(c.expire(10_000, 5_000), 1);
    assert!(c.lookup(&key_dst(2, 1)).is_some());
}

#[test]
fn ranking_puts_hot_subtables_first() {
    let mut c = MegaflowCache::new(10);
    c.insert(
        &key_dst(1, 0),
        mask_of(&[(Field::NwDst, u32::MAX as u64)]),
        acts(1),
        0,
    );
    c.insert(&key_dst(0, 5), mask_of(&[(Field::TpDst, 0xffff)]), acts(2), 0);
    for _ in 0..10 {
        c.lookup(&key_dst(9, 5)).unwrap();
    }
    c.rank_subtables();
    assert_eq!(c.subtables[0].mask.get(Field::TpDst), 0xffff);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// A key finds a flow iff some installed flow satisfies (key & mask) == flow.key,
    /// and a found flow always satisfies it.
    #[test]
    fn lookup_obeys_masked_semantics(
        flows in proptest::collection::vec((any::<[u8; 4]>(), 0usize..4), 1..30),
        probes in proptest::collection::vec(any::<[u8; 4]>(), 1..30),
    ) {
        let masks = [
            mask_of(&[(Field::NwDst, 0xffff_ffff)]),
            mask_of(&[(Field::NwDst, 0xff00_0000)]),
            mask_of(&[(Field::NwDst, 0xffff_0000), (Field::TpDst, 0xff)]),
            mask_of(&[(Field::TpDst, 0xf0)]),
        ];
        let mut c = MegaflowCache::new(1000);
        let key = |b: [u8; 4]| key_dst(u32::from_be_bytes(b), u16::from(b[3]));
        for (i, (k, m)) in flows.iter().enumerate() {
            c.insert(&key(*k), masks[*m], acts(i as u32), 0);
        }
        for p in probes.iter().chain(flows.iter().map(|(k, _)| k)) {
            let k = key(*p);
            let any_match = c.iter().any(|f| k.masked(&f.mask) == f.key);
            match c.lookup(&k) {
                Some(f) => prop_assert_eq!(k.masked(&f.mask), f.key),
                None => prop_assert!(!any_match),
            }
        }
        prop_assert!(c.len() <= flows.len());
    }
}

#[test]
fn invalidating_a_tag_removes_exactly_its_flows() {
    let mut c = MegaflowCache::new(1024);
    let mut mask = FlowMask::default();
    mask.set_exact(Field::NwSrc);
    let key = |i: u64| {
        let mut k = FlowKey::default();
        k.set(Field::NwSrc, i);
        k
    };
    // Flow i depends on tags i % 3 and 100.
    let flows: Vec<_> = (0..30u64)
        .map(|i| c.insert_with_deps(&key(i), mask, vec![Action::Output(1)].into(), &[i % 3, 100], 0))
        .collect();
    assert_eq!(c.invalidate_tags(&[1]), 10);
    assert_eq!(c.len(), 20);
    assert!(flows.iter().enumerate().all(|(i, f)| f.is_dead() == (i % 3 == 1)));
    assert!(c.lookup(&key(1)).is_none() && c.lookup(&key(2)).is_some());
    assert_eq!(
        c.invalidate_tags(&[1, 7]),
        0,
        "nothing left under 1, nothing under 7"
    );
    // Flows removed some other way leave only dead index entries, which do nothing.
    c.expire(10_000, 1);
    assert!(c.is_empty());
    assert_eq!(c.invalidate_tags(&[100]), 0);
    c.compact();
    let f = c.insert_with_deps(&key(5), mask, vec![Action::Output(2)].into(), &[100], 0);
    assert_eq!(c.invalidate_tags(&[100]), 1);
    assert!(f.is_dead() && c.is_empty() && c.n_subtables() == 0);
}
