//! [`KernelTable`]: userspace's record of the flows in the kernel's table
//! (which mask slot, flow stats slot and encapsulation slots each holds, and
//! what its translation depended on), and the only writer of that table.
//!
//! The rules it keeps, so that no stale kernel flow forwards a packet after
//! the change that made it stale is done:
//! - a full flush (an epoch change of [`Invalidations`]) bumps the kernel's
//!   generation first (one map write: every flow stops matching at once),
//!   then deletes the flows;
//! - an invalidated tag deletes exactly the flows that depended on it;
//! - a translation is installed only if nothing it depended on changed since
//!   it was made ([`KernelTable::install`] applies pending changes first, and
//!   every change is applied under the same lock, so an install either sees
//!   a change or the change's apply sees the installed flow);
//! - a mask slot's bit is set only after its mask is written, and a hit is
//!   checked against the flow's own mask, so a slot can be reused safely.

use super::encode::{encode, EncapSlots, NotOffloaded};
use crate::action::Action;
use crate::cache::{DpFlow, Invalidations, Seen};
use crate::flow::{FlowKey, FlowMask};
use rvs_bpf::dp::abi::{self, Config, Encap, LookupKey, MAX_ENCAPS, MAX_FLOWS, MAX_MASKS};
use rvs_bpf::dp::TcDatapath;
use rvs_bpf::BpfError;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use thiserror::Error;

/// Why a flow was not installed in the kernel.
#[derive(Error, Debug)]
pub enum InstallError {
    /// It cannot run there (the packets stay with userspace).
    #[error("not offloadable: {0:?}")]
    NotOffloaded(NotOffloaded),
    /// Every mask slot holds another mask.
    #[error("all {MAX_MASKS} kernel mask slots in use")]
    MasksFull,
    /// Every flow slot is in use.
    #[error("kernel flow table full ({MAX_FLOWS})")]
    Full,
    /// Something it depended on changed since its translation.
    #[error("stale: the state it was translated from changed")]
    Stale,
    /// A map write failed.
    #[error(transparent)]
    Bpf(#[from] BpfError),
}

/// One installed flow.
struct Entry {
    id: u32,
    slot: u32,
    flow: Arc<DpFlow>,
    encaps: Vec<u16>,
    /// The encoded actions (what the kernel holds).
    acts: Vec<abi::Action>,
}

/// Encapsulation slots in use, by content.
#[derive(Default)]
struct Encaps {
    slots: Vec<Option<(Encap, usize)>>,
    /// Slots encoded for the flow being installed (released if it fails).
    taken: Vec<u16>,
}

impl EncapSlots for Encaps {
    fn slot(&mut self, e: &Encap) -> Option<u16> {
        let i = match self
            .slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|(x, _)| x == e))
        {
            Some(i) => i,
            None => {
                let i = match self.slots.iter().position(Option::is_none) {
                    Some(i) => i,
                    None if self.slots.len() < MAX_ENCAPS => {
                        self.slots.push(None);
                        self.slots.len() - 1
                    }
                    None => return None,
                };
                self.slots[i] = Some((*e, 0));
                i
            }
        };
        if let Some((_, n)) = &mut self.slots[i] {
            *n += 1;
        }
        self.taken.push(i as u16);
        Some(i as u16)
    }
}

impl Encaps {
    fn release(&mut self, slots: &[u16]) {
        for s in slots {
            if let Some(Some((_, n))) = self.slots.get_mut(*s as usize) {
                *n -= 1;
                if *n == 0 {
                    self.slots[*s as usize] = None;
                }
            }
        }
    }
}

/// The kernel flow table's userspace side.
pub struct KernelTable {
    dp: Arc<TcDatapath>,
    config: Config,
    /// Mask and number of flows per slot.
    masks: Vec<Option<(FlowMask, usize)>>,
    flows: HashMap<LookupKey, Entry>,
    /// Tag -> flows that depend on it.
    by_tag: HashMap<u64, HashSet<LookupKey>>,
    free_ids: Vec<u32>,
    next_id: u32,
    encaps: Encaps,
    inv: Arc<Invalidations>,
    seen: Seen,
    tags: Vec<u64>,
    /// Flows an earlier daemon installed, not yet checked against this
    /// daemon's translation.
    adopted: Vec<LookupKey>,
    /// Counters: flushes, flows invalidated, expired.
    pub flushes: u64,
    /// Flows removed by tag invalidation.
    pub invalidated: u64,
    /// Flows removed as idle.
    pub expired: u64,
}

/// CLOCK_MONOTONIC in milliseconds: the clock of the kernel flows' last use
/// (`bpf_ktime_get_ns`), so every time a kernel flow carries is on it.
pub fn monotonic_ms() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .unwrap_or_else(|_| nix::sys::time::TimeSpec::new(0, 0));
    t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000
}

/// What re-translating a flow's key gave (for revalidating adopted flows).
#[derive(Clone, Debug)]
pub struct Revalidated {
    /// Datapath actions.
    pub actions: Vec<Action>,
    /// What the decision depended on (in_port and recirc_id included).
    pub mask: FlowMask,
    /// Invalidation tags.
    pub deps: Vec<u64>,
    /// The slow path's tag.
    pub tag: u64,
}

/// A translation to install: `actions` for every packet that agrees with
/// `key` under `mask`, made when the slow path's counters were `at`,
/// depending on `deps`; `tag` credits its counters to what produced it.
#[derive(Clone, Copy, Debug)]
pub struct Install<'a> {
    /// The packet's key.
    pub key: &'a FlowKey,
    /// What the decision depended on.
    pub mask: &'a FlowMask,
    /// Datapath actions.
    pub actions: &'a [Action],
    /// Invalidation tags.
    pub deps: &'a [u64],
    /// The slow path's tag.
    pub tag: u64,
    /// When it was translated.
    pub at: Seen,
}

/// A masked key as `dpctl dump-flows` writes it (for logs).
struct DisplayKey<'a>(&'a FlowKey, &'a FlowMask);

impl std::fmt::Display for DisplayKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt_masked(Some(self.1), f)
    }
}

/// The (slot, masked key) a flow is filed under.
fn lookup_key(slot: u32, key: &FlowKey, mask: &FlowMask) -> LookupKey {
    LookupKey {
        mask: slot,
        pad: 0,
        w: key.masked(mask).w,
    }
}

impl KernelTable {
    /// The bookkeeping of a table that knows no flow yet.
    fn empty(dp: Arc<TcDatapath>, config: abi::Config, inv: Arc<Invalidations>) -> KernelTable {
        let seen = inv.now();
        KernelTable {
            dp,
            config,
            masks: vec![None; MAX_MASKS],
            flows: HashMap::new(),
            by_tag: HashMap::new(),
            free_ids: Vec::new(),
            next_id: 0,
            encaps: Encaps::default(),
            inv,
            seen,
            tags: Vec::new(),
            adopted: Vec::new(),
            flushes: 0,
            invalidated: 0,
            expired: 0,
        }
    }

    /// An empty table over `dp`'s maps (its generation moved past whatever
    /// the maps held), following `inv`.
    pub fn new(dp: Arc<TcDatapath>, inv: Arc<Invalidations>) -> Result<KernelTable, BpfError> {
        let mut config = dp.config()?;
        config.gen += 1;
        config.mask_used = 0;
        config.flags &= !abi::CFG_TEST;
        dp.set_config(&config)?;
        let mut t = KernelTable::empty(dp, config, inv);
        t.delete_all_kernel_flows();
        Ok(t)
    }

    /// Take over the flows an earlier daemon left in `dp`'s maps (pinned,
    /// or found through its programs): they keep forwarding, at the same
    /// generation, until [`KernelTable::revalidate_adopted`] checks them.
    /// Flows of an older generation are deleted.
    pub fn adopt(dp: Arc<TcDatapath>, inv: Arc<Invalidations>) -> Result<KernelTable, BpfError> {
        let mut config = dp.config()?;
        config.flags &= !abi::CFG_TEST;
        let mut t = KernelTable::empty(dp.clone(), config, inv);
        for slot in 0..MAX_MASKS {
            if config.mask_used & (1 << slot) != 0 {
                t.masks[slot] = Some((
                    FlowMask {
                        w: dp.mask(slot as u32)?,
                    },
                    0,
                ));
            }
        }
        let mut used = std::collections::BTreeSet::new();
        for lk in dp.flow_keys() {
            let Some(f) = dp.flow(&lk)? else { continue };
            let slot = lk.mask as usize;
            let live = f.gen == config.gen
                && t.masks
                    .get(slot)
                    .is_some_and(|m| m.as_ref().is_some_and(|(m, _)| m.w == f.mask))
                && (f.id as usize) < MAX_FLOWS
                && used.insert(f.id);
            if !live {
                let _ = dp.delete_flow(&lk);
                continue;
            }
            if let Some(Some((_, n))) = t.masks.get_mut(slot) {
                *n += 1;
            }
            let acts = f.act[..(f.n_actions as usize).min(f.act.len())].to_vec();
            let mut encaps = Vec::new();
            for a in acts.iter().filter(|a| a.ty == abi::action::TUNNEL_OUTPUT) {
                let e = dp.encap(a.u16a as u32)?;
                let i = a.u16a as usize;
                if t.encaps.slots.len() <= i {
                    t.encaps.slots.resize(i + 1, None);
                }
                match &mut t.encaps.slots[i] {
                    Some((_, n)) => *n += 1,
                    s => *s = Some((e, 1)),
                }
                encaps.push(a.u16a);
            }
            let mask = FlowMask { w: f.mask };
            let key = FlowKey { w: lk.w };
            let flow = Arc::new(DpFlow::new(
                &key,
                mask,
                Box::default(),
                config.gen,
                monotonic_ms(),
            ));
            t.flows.insert(
                lk,
                Entry {
                    id: f.id,
                    slot: slot as u32,
                    flow,
                    encaps,
                    acts,
                },
            );
            t.adopted.push(lk);
        }
        t.next_id = used.iter().next_back().map_or(0, |m| m + 1);
        t.free_ids = (0..t.next_id).filter(|i| !used.contains(i)).collect();
        // Mask slots no adopted flow uses are free again.
        for slot in 0..MAX_MASKS {
            if matches!(t.masks[slot], Some((_, 0))) {
                t.masks[slot] = None;
                t.config.mask_used &= !(1 << slot);
            }
        }
        dp.set_config(&t.config)?;
        Ok(t)
    }

    /// Check every adopted flow against `translate` (this daemon's
    /// translation of the flow's masked key: actions, mask, dependencies,
    /// tag; `None` when it may not be cached): a flow whose translation has
    /// the same mask and the same kernel actions is kept (now with its
    /// dependencies, so later changes reach it), any other is deleted.
    /// Returns (kept, deleted).
    pub fn revalidate_adopted(
        &mut self,
        translate: &mut dyn FnMut(&FlowKey, &FlowMask) -> Option<Revalidated>,
    ) -> (usize, usize) {
        let (mut kept, mut deleted) = (0, 0);
        // A first pass lets translation relearn what the flows imply (NORMAL
        // learns each flow's source MAC), so the second does not flood what
        // the kernel sends straight to a port.
        for lk in &self.adopted {
            if let Some(e) = self.flows.get(lk) {
                let (key, mask) = (e.flow.key, e.flow.mask);
                translate(&key, &mask);
            }
        }
        for lk in std::mem::take(&mut self.adopted) {
            let Some(e) = self.flows.get(&lk) else { continue };
            let mask = e.flow.mask;
            let key = e.flow.key;
            let fresh = translate(&key, &mask);
            let why = match &fresh {
                None => "translation is not cacheable now",
                Some(r) if r.mask != mask => "translation depends on other bits now",
                Some(_) => "translation gives other actions now",
            };
            let same = fresh.filter(|r| r.mask == mask).and_then(|r| {
                self.encaps.taken.clear();
                let acts = encode(&r.actions, &mut self.encaps).ok();
                let taken = std::mem::take(&mut self.encaps.taken);
                self.encaps.release(&taken);
                (acts.as_ref() == self.flows.get(&lk).map(|e| &e.acts)).then_some(r)
            });
            match same {
                Some(r) => {
                    let t = Install {
                        key: &key,
                        mask: &mask,
                        actions: &r.actions,
                        deps: &r.deps,
                        tag: r.tag,
                        at: self.inv.now(),
                    };
                    self.reindex(&lk, &t, monotonic_ms());
                    kept += 1;
                }
                None => {
                    tracing::debug!(flow = %DisplayKey(&key, &mask), why, "adopted kernel flow deleted");
                    if self.remove(&lk).unwrap_or(false) {
                        deleted += 1;
                    }
                }
            }
        }
        (kept, deleted)
    }

    /// The tunnel next hops the adopted flows' encapsulations hold: (local
    /// address, remote address, next-hop MAC), so a restarted daemon's
    /// VTEP knows them at once (their flows then revalidate, and new flows to
    /// them need no ARP first).
    pub fn adopted_neighbors(&self) -> Vec<(std::net::Ipv4Addr, std::net::Ipv4Addr, [u8; 6])> {
        let mut out: Vec<_> = self
            .encaps
            .slots
            .iter()
            .flatten()
            .filter(|(e, _)| e.len >= 34)
            .map(|(e, _)| {
                let h = &e.hdr;
                let ip = |o: usize| std::net::Ipv4Addr::new(h[o], h[o + 1], h[o + 2], h[o + 3]);
                (ip(26), ip(30), [h[0], h[1], h[2], h[3], h[4], h[5]])
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The datapath object.
    pub fn dp(&self) -> &Arc<TcDatapath> {
        &self.dp
    }

    /// Installed flows.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// True when none is installed.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Set the Geneve option map the kernel's decapsulation uses.
    pub fn set_optmap(&mut self, opt: [abi::OptMap; abi::OPT_SLOTS]) -> Result<(), BpfError> {
        if self.config.opt != opt {
            self.config.opt = opt;
            self.dp.set_config(&self.config)?;
        }
        Ok(())
    }

    fn delete_all_kernel_flows(&mut self) {
        for k in self.dp.flow_keys() {
            let _ = self.dp.delete_flow(&k);
        }
    }

    /// Follow the slow path's changes made since the last call: flush on an
    /// epoch change (or when the tag log moved past us), else delete the
    /// flows of each invalidated tag.
    pub fn apply(&mut self) -> Result<(), BpfError> {
        let now = self.inv.now();
        if now == self.seen {
            return Ok(());
        }
        if now.epoch == self.seen.epoch {
            if let Some(seq) = self.inv.tags_since(self.seen.seq, &mut self.tags) {
                self.seen.seq = seq;
                let tags = std::mem::take(&mut self.tags);
                for t in &tags {
                    for k in self.by_tag.remove(t).unwrap_or_default() {
                        if self.remove(&k)? {
                            self.invalidated += 1;
                        }
                    }
                }
                self.tags = tags;
                return Ok(());
            }
        }
        self.seen = now;
        self.flush()
    }

    /// Drop every flow: the generation first (no packet matches any old flow
    /// from then on), then the entries.
    pub fn flush(&mut self) -> Result<(), BpfError> {
        self.config.gen += 1;
        self.config.mask_used = 0;
        self.dp.set_config(&self.config)?;
        self.flushes += 1;
        for (k, e) in std::mem::take(&mut self.flows) {
            let _ = self.dp.delete_flow(&k);
            self.free_ids.push(e.id);
            e.flow.kill();
        }
        self.by_tag.clear();
        self.masks = vec![None; MAX_MASKS];
        self.encaps = Encaps::default();
        Ok(())
    }

    /// Where the slow path's changes stand.
    pub fn seen_now(&self) -> Seen {
        self.inv.now()
    }

    /// Was a translation made at `at`, depending on `deps`, still right now?
    fn still_valid(&mut self, at: Seen, deps: &[u64]) -> bool {
        let now = self.inv.now();
        if at.epoch != now.epoch {
            return false;
        }
        if at.seq == now.seq {
            return true;
        }
        match self.inv.tags_since(at.seq, &mut self.tags) {
            Some(_) => !self.tags.iter().any(|t| deps.contains(t)),
            None => false,
        }
    }

    /// Install a translation (replacing a flow of the same mask and masked
    /// key), unless something it depended on changed since it was made.
    pub fn install(&mut self, t: &Install<'_>) -> Result<(), InstallError> {
        let now_ms = monotonic_ms();
        let Install {
            key,
            mask,
            actions,
            deps,
            tag,
            at,
        } = *t;
        self.apply()?;
        if !self.still_valid(at, deps) {
            return Err(InstallError::Stale);
        }
        // The kernel cannot encapsulate a frame it decapsulated (the skb
        // stays marked as tunnelled: the helper refuses): transit between
        // tunnels stays with userspace.
        let decapsulated = key.get(crate::flow::Field::TunDst) != 0;
        if decapsulated
            && actions
                .iter()
                .any(|a| matches!(a, Action::TunnelOutput(..) | Action::TunnelPush(_)))
        {
            return Err(InstallError::NotOffloaded(NotOffloaded::Action(
                "tunnel output of a decapsulated frame",
            )));
        }
        self.encaps.taken.clear();
        let acts = match encode(actions, &mut self.encaps) {
            Ok(a) => a,
            Err(e) => {
                let taken = std::mem::take(&mut self.encaps.taken);
                self.encaps.release(&taken);
                return Err(InstallError::NotOffloaded(e));
            }
        };
        let taken = std::mem::take(&mut self.encaps.taken);
        let fail = |t: &mut Self, e: InstallError| {
            t.encaps.release(&taken);
            Err(e)
        };
        let Some(slot) = self.mask_slot(mask) else {
            return fail(self, InstallError::MasksFull);
        };
        let lk = lookup_key(slot as u32, key, mask);
        if self.flows.get(&lk).is_some_and(|e| e.acts == acts) {
            // The kernel has this very flow (a packet that was already on its
            // way up when it was installed): only what it depends on and
            // whom it credits are new.
            self.encaps.release(&taken);
            self.unref_mask(slot);
            self.reindex(&lk, t, now_ms);
            return Ok(());
        }
        // A replaced flow gives its slots back first.
        if self.flows.contains_key(&lk) {
            self.remove(&lk)?;
        }
        let Some(id) = self.alloc_id() else {
            self.unref_mask(slot);
            return fail(self, InstallError::Full);
        };
        for s in &taken {
            if let Some(Some((e, _))) = self.encaps.slots.get(*s as usize) {
                self.dp.set_encap(*s as u32, e)?;
            }
        }
        self.dp.clear_flow_stats(id)?;
        let flow = super::encode::kernel_flow(self.config.gen, id, &mask.w, &acts);
        if self.config.mask_used & (1 << slot) == 0 {
            self.dp.set_mask(slot as u32, &mask.w)?;
            self.config.mask_used |= 1 << slot;
            self.dp.set_config(&self.config)?;
        }
        self.dp.insert_flow(&lk, &flow)?;
        let dp_flow =
            Arc::new(DpFlow::new(key, *mask, actions.into(), self.config.gen, now_ms).with_deps(deps));
        dp_flow.set_tag(tag);
        for d in deps {
            self.by_tag.entry(*d).or_default().insert(lk);
        }
        self.flows.insert(
            lk,
            Entry {
                id,
                slot: slot as u32,
                flow: dp_flow,
                encaps: taken,
                acts,
            },
        );
        Ok(())
    }

    /// Give the flow under `lk` a new userspace record (deps, tag), keeping
    /// its kernel entry and counters.
    fn reindex(&mut self, lk: &LookupKey, t: &Install<'_>, now_ms: u64) {
        let Some(e) = self.flows.get_mut(lk) else { return };
        let (deps, tag) = (t.deps, t.tag);
        for d in e.flow.deps() {
            if let Some(v) = self.by_tag.get_mut(d) {
                v.remove(lk);
                if v.is_empty() {
                    self.by_tag.remove(d);
                }
            }
        }
        let f = DpFlow::new(t.key, *t.mask, t.actions.into(), self.config.gen, now_ms).with_deps(deps);
        f.set_stats(
            e.flow.stats.packets(),
            e.flow.stats.bytes(),
            e.flow.stats.used_ms(),
        );
        f.set_tag(tag);
        e.flow.kill();
        e.flow = Arc::new(f);
        for d in deps {
            self.by_tag.entry(*d).or_default().insert(*lk);
        }
    }

    fn alloc_id(&mut self) -> Option<u32> {
        if let Some(id) = self.free_ids.pop() {
            return Some(id);
        }
        if (self.next_id as usize) < MAX_FLOWS {
            self.next_id += 1;
            return Some(self.next_id - 1);
        }
        None
    }

    /// The slot of `mask` (one more flow on it), or a free one.
    fn mask_slot(&mut self, mask: &FlowMask) -> Option<usize> {
        let i = match self
            .masks
            .iter()
            .position(|m| m.as_ref().is_some_and(|(x, _)| x == mask))
        {
            Some(i) => i,
            None => {
                let i = self.masks.iter().position(Option::is_none)?;
                self.masks[i] = Some((*mask, 0));
                i
            }
        };
        if let Some((_, n)) = &mut self.masks[i] {
            *n += 1;
        }
        Some(i)
    }

    fn unref_mask(&mut self, slot: usize) {
        if let Some((_, n)) = &mut self.masks[slot] {
            *n -= 1;
            if *n == 0 {
                self.masks[slot] = None;
                self.config.mask_used &= !(1 << slot);
                let _ = self.dp.set_config(&self.config);
            }
        }
    }

    /// Remove one flow (kernel first); false when it was not installed.
    fn remove(&mut self, lk: &LookupKey) -> Result<bool, BpfError> {
        let Some(e) = self.flows.remove(lk) else {
            return Ok(false);
        };
        self.dp.delete_flow(lk)?;
        e.flow.kill();
        self.free_ids.push(e.id);
        self.unref_mask(e.slot as usize);
        self.encaps.release(&e.encaps);
        for d in e.flow.deps() {
            if let Some(v) = self.by_tag.get_mut(d) {
                v.remove(lk);
                if v.is_empty() {
                    self.by_tag.remove(d);
                }
            }
        }
        Ok(true)
    }

    /// Read every flow's counters from the kernel into its [`DpFlow`] (for
    /// crediting rules and `dpctl dump-flows`) and remove flows idle longer
    /// than `max_idle_ms` (0: never). `now_ms` is CLOCK_MONOTONIC's, the
    /// kernel's clock for last use.
    pub fn refresh(&mut self, now_ms: u64, max_idle_ms: u64) -> Result<(), BpfError> {
        let mut idle = Vec::new();
        for (k, e) in &self.flows {
            let s = self.dp.flow_stats(e.id)?;
            let used_ms = if s.used_ns == 0 {
                e.flow.created_ms
            } else {
                s.used_ns / 1_000_000
            };
            e.flow.set_stats(s.packets, s.bytes, used_ms);
            if max_idle_ms > 0 && now_ms.saturating_sub(used_ms) > max_idle_ms {
                idle.push(*k);
            }
        }
        for k in idle {
            if self.remove(&k)? {
                self.expired += 1;
            }
        }
        Ok(())
    }

    /// The installed flows (counters as of the last [`KernelTable::refresh`]).
    pub fn flows(&self) -> Vec<Arc<DpFlow>> {
        self.flows.values().map(|e| e.flow.clone()).collect()
    }

    /// The encoded actions of the flow filed under `lk` (tests).
    pub fn encoded(&self, key: &FlowKey, mask: &FlowMask) -> Option<Vec<abi::Action>> {
        let slot = self
            .masks
            .iter()
            .position(|m| m.as_ref().is_some_and(|(x, _)| x == mask))?;
        self.flows
            .get(&lookup_key(slot as u32, key, mask))
            .map(|e| e.acts.clone())
    }
}
