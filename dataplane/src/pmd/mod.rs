//! The poll-mode loop: rx batch -> extract -> EMC -> megaflow -> upcall ->
//! execute -> tx batch, over a set of ports, with per-thread caches and counters.

mod sink;
mod stats;
mod thread;
mod upcall;

pub use stats::PmdStats;
pub use thread::{FlowDump, PmdCommand, PmdSnapshot, PmdThread, PollMode};
pub use upcall::{Frames, Upcall, UpcallError, UpcallReply};

use crate::action::{execute, Action};
use crate::cache::{
    DpFlow, Emc, Invalidations, MegaflowCache, Revalidate, Seen, DEFAULT_EMC_ENTRIES, DEFAULT_MAX_FLOWS,
};
use crate::conntrack::SharedConntrack;
use crate::flow::{Field, FlowKey};
use crate::packet::{Batch, BATCH_SIZE};
use crate::port::{lock_port, share, Port, PortInfo, PortNo, PortStats, SharedPort};
use crate::tunnel::GeneveOptMap;
use sink::{PmdSink, PortSlot};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// How often (in polls) the megaflow subtables are re-ranked.
const MAINTENANCE_POLLS: u64 = 4096;
/// Idle megaflows are looked for at most this often (ms), also on a PMD
/// that polls rarely.
const EXPIRY_INTERVAL_MS: u64 = 1000;
/// OVS's default `max-idle`: a megaflow unused this long is removed.
pub const DEFAULT_MAX_IDLE_MS: u64 = 10_000;
/// OVS's default `emc-insert-inv-prob`: a megaflow hit goes into the EMC
/// with probability 1/100, so that a burst of many parallel flows does not
/// churn the EMC (each flow that stays gets there soon enough).
pub const DEFAULT_EMC_INSERT_INV_PROB: u32 = 100;

/// Default share of a PMD's time one input port's upcalls may take (%).
pub const DEFAULT_UPCALL_BUDGET_PCT: u32 = 10;

/// Upcall time a port may bank while it has no misses (ns): a burst of new
/// flows (a cold cache after a restart) runs at full speed for this long.
pub const UPCALL_BURST_NS: i64 = 20_000_000;

/// Sizes of a PMD's caches and batches.
#[derive(Clone, Copy, Debug)]
pub struct PmdConfig {
    /// EMC entries.
    pub emc_entries: usize,
    /// Megaflow cache bound.
    pub max_flows: usize,
    /// Packets taken per rx call.
    pub batch_size: usize,
    /// Insert into the EMC with probability 1/N (1: always, 0: never).
    pub emc_insert_inv_prob: u32,
    /// Remove megaflows idle this long (ms; 0: never).
    pub max_idle_ms: u64,
    /// Share of the PMD's time (%) the upcalls of one input port may take,
    /// over a window of [`UPCALL_BURST_NS`]; its misses beyond that are
    /// dropped as `upcall_limit` (0 or 100: no limit).
    pub upcall_budget_pct: u32,
}

impl Default for PmdConfig {
    fn default() -> Self {
        PmdConfig {
            emc_entries: DEFAULT_EMC_ENTRIES,
            max_flows: DEFAULT_MAX_FLOWS,
            batch_size: BATCH_SIZE,
            emc_insert_inv_prob: DEFAULT_EMC_INSERT_INV_PROB,
            max_idle_ms: DEFAULT_MAX_IDLE_MS,
            upcall_budget_pct: DEFAULT_UPCALL_BUDGET_PCT,
        }
    }
}

/// Input ports with a budget of their own.
const BUDGET_SLOTS: usize = 1024;

/// Each input port's upcall time left (ns), refilled with a share of the
/// time that passes: a port flooding new flows spends its own share and
/// cannot take the PMD from the flows already cached, nor from other ports'
/// new flows (OVS gives each port its own upcall socket for the same fairness).
struct UpcallBudget {
    /// Per mille of elapsed time credited (0: no limit).
    per_mille: i64,
    /// Credit per input port number.
    credit: Vec<i64>,
    last_ns: u64,
}

impl UpcallBudget {
    fn new(pct: u32) -> Self {
        UpcallBudget {
            per_mille: if pct == 0 || pct >= 100 {
                0
            } else {
                pct as i64 * 10
            },
            credit: Vec::new(),
            last_ns: 0,
        }
    }

    /// Credit every port its share of the time since the last refill.
    fn refill(&mut self, now_ns: u64) {
        if self.per_mille == 0 {
            return;
        }
        let gained = (now_ns.saturating_sub(self.last_ns) as i64).saturating_mul(self.per_mille) / 1000;
        self.last_ns = now_ns;
        for c in &mut self.credit {
            *c = (*c + gained).min(UPCALL_BURST_NS);
        }
    }

    /// The slot of `port`: ports numbered past the table share its last
    /// one (datapath port numbers are small; this bounds the table).
    #[inline]
    fn slot(port: PortNo) -> usize {
        (port as usize).min(BUDGET_SLOTS - 1)
    }

    /// May a miss from `port` go up?
    #[inline]
    fn allows(&mut self, port: PortNo) -> bool {
        if self.per_mille == 0 {
            return true;
        }
        let i = Self::slot(port);
        if i >= self.credit.len() {
            // A port seen for the first time starts with a full burst.
            self.credit.resize(i + 1, UPCALL_BURST_NS);
        }
        self.credit[i] > 0
    }

    /// Charge `port` for an upcall that took `ns`.
    #[inline]
    fn charge(&mut self, port: PortNo, ns: u64) {
        if let Some(c) = self.credit.get_mut(Self::slot(port)) {
            *c -= ns as i64;
        }
    }
}

/// The slow path's change counters and what this PMD has applied of them.
struct Watch {
    inv: Arc<Invalidations>,
    seen: Seen,
    /// Scratch for the tags of one sync (kept to spare an allocation).
    tags: Vec<u64>,
}

/// What one [`Watch::sync`] did.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Synced {
    /// Nothing had changed.
    Nothing,
    /// The flows holding the tags now in `Watch::tags` were removed.
    Tags,
    /// Every flow was dropped.
    Flushed,
}

impl Watch {
    /// Apply the slow path's changes since the last call to `megaflow`.
    #[inline]
    fn sync(&mut self, megaflow: &mut MegaflowCache, stats: &mut PmdStats) -> Synced {
        let now = self.inv.now();
        if now == self.seen {
            return Synced::Nothing;
        }
        if now.epoch == self.seen.epoch {
            if let Some(seq) = self.inv.tags_since(self.seen.seq, &mut self.tags) {
                self.seen.seq = seq;
                stats.flows_invalidated += megaflow.invalidate_tags(&self.tags) as u64;
                return Synced::Tags;
            }
            // Fell behind the tag log: only a flush is sure to be right.
        }
        self.seen = now;
        megaflow.bump_generation();
        stats.flushes += 1;
        Synced::Flushed
    }

    /// May a reply translated at `at` (with dependencies `deps`) be cached,
    /// given what the last sync applied? Not when a full flush came after the
    /// translation, or a tag it depended on was invalidated after it.
    fn still_valid(&self, synced: Synced, at: Seen, deps: &[u64]) -> bool {
        if at.epoch != self.seen.epoch {
            return false;
        }
        if at.seq == self.seen.seq {
            return true;
        }
        // Tags came after the translation. The last sync started before it
        // (at the poll's start) and ended after it, so its tags cover them.
        synced == Synced::Tags && !deps.iter().any(|d| self.tags.binary_search(d).is_ok())
    }
}

/// xorshift64: the EMC's coin, cheap and good enough for sampling.
#[inline(always)]
fn coin(state: &mut u64, inv_prob: u32) -> bool {
    match inv_prob {
        0 => false,
        1 => true,
        n => {
            let mut x = *state;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *state = x;
            x.is_multiple_of(n as u64)
        }
    }
}

/// One poll-mode thread's datapath: its ports, caches, counters and slow path.
pub struct Pmd<U: Upcall> {
    ports: Vec<Option<PortSlot>>,
    emc: Emc,
    megaflow: MegaflowCache,
    upcall: U,
    optmap: GeneveOptMap,
    rx: Batch,
    /// Recirculated packets being looked up again...
    recirc_in: Batch,
    /// ...and the ones their actions recirculate in turn.
    recirc: Batch,
    stats: PmdStats,
    clock: Instant,
    now_ms: u64,
    polls: u64,
    batch_size: usize,
    emc_insert_inv_prob: u32,
    max_idle_ms: u64,
    last_expiry_ms: u64,
    rng: u64,
    /// The slow path's change counters (see `watch`).
    watch: Option<Watch>,
    /// The connection tracker `ct()` uses (shared with the datapath's
    /// other threads, see [`Pmd::share_conntrack`]).
    conntrack: SharedConntrack,
    /// Each input port's share of upcall time.
    budget: UpcallBudget,
}

/// Apply the slow path's changes, if a slow path is watched.
#[inline]
fn sync(watch: &mut Option<Watch>, megaflow: &mut MegaflowCache, stats: &mut PmdStats) -> Synced {
    match watch {
        Some(w) => w.sync(megaflow, stats),
        None => Synced::Nothing,
    }
}

/// The instant every PMD's millisecond clock counts from: one for the
/// process, so the threads that share a connection tracker agree on when a
/// connection expires (and the daemon sweeps on the same clock).
pub fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since [`epoch`].
pub fn clock_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

impl<U: Upcall> Pmd<U> {
    /// A PMD with no ports, sending misses to `upcall`.
    pub fn new(upcall: U, config: PmdConfig) -> Self {
        let batch_size = config.batch_size.clamp(1, 1024);
        Pmd {
            ports: Vec::new(),
            emc: Emc::new(config.emc_entries),
            megaflow: MegaflowCache::new(config.max_flows),
            upcall,
            optmap: GeneveOptMap::default(),
            rx: Batch::new(batch_size),
            // Each rx packet may recirculate (and flood) a few times per pass.
            recirc_in: Batch::new(batch_size * 4),
            recirc: Batch::new(batch_size * 4),
            stats: PmdStats::default(),
            clock: epoch(),
            now_ms: 0,
            polls: 0,
            batch_size,
            emc_insert_inv_prob: config.emc_insert_inv_prob,
            max_idle_ms: config.max_idle_ms,
            last_expiry_ms: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
            watch: None,
            conntrack: Default::default(),
            budget: UpcallBudget::new(config.upcall_budget_pct),
        }
    }

    /// Attach `port` as datapath port `no`, polled by this PMD; returns the
    /// port it replaced. Cached flows are flushed, since they may name the old port.
    pub fn add_port(&mut self, no: PortNo, port: Box<dyn Port>) -> Option<SharedPort> {
        self.attach_port(no, share(port), true)
    }

    /// Attach a port shared with other PMDs: `poll_rx` when this PMD receives
    /// from it, else it only sends to it.
    pub fn attach_port(&mut self, no: PortNo, port: SharedPort, poll_rx: bool) -> Option<SharedPort> {
        let i = no as usize;
        if self.ports.len() <= i {
            self.ports.resize_with(i + 1, || None);
        }
        let txq = Batch::new(self.batch_size * 2);
        let own_in_port = lock_port(&port).sets_in_port();
        let old = self.ports[i].replace(PortSlot {
            port,
            txq,
            poll_rx,
            own_in_port,
        });
        self.flush_caches();
        old.map(|s| s.port)
    }

    /// Detach port `no` (its unsent frames are discarded) and flush the caches.
    pub fn remove_port(&mut self, no: PortNo) -> Option<SharedPort> {
        let old = self.ports.get_mut(no as usize).and_then(Option::take);
        self.flush_caches();
        old.map(|s| s.port)
    }

    /// (tag, packets, bytes) of every valid cached flow the slow path tagged.
    pub fn flow_counters(&self) -> Vec<(u64, u64, u64)> {
        let gen = self.megaflow.generation();
        self.megaflow
            .iter()
            .filter(|f| f.is_valid(gen) && f.tag() != 0)
            .map(|f| (f.tag(), f.stats.packets(), f.stats.bytes()))
            .collect()
    }

    /// Counters of port `no`.
    pub fn port_stats(&self, no: PortNo) -> Option<PortStats> {
        self.ports
            .get(no as usize)
            .and_then(|s| s.as_ref())
            .map(|s| lock_port(&s.port).stats())
    }

    /// The ports this PMD receives from (shared handles, nothing read).
    pub fn polled_ports(&self) -> Vec<(PortNo, SharedPort)> {
        self.ports
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .filter(|s| s.poll_rx)
                    .map(|s| (i as PortNo, s.port.clone()))
            })
            .collect()
    }

    /// Wake-up descriptors of the ports this PMD receives from.
    pub fn poll_fds(&self) -> Vec<std::os::fd::RawFd> {
        self.ports
            .iter()
            .flatten()
            .filter(|s| s.poll_rx)
            .filter_map(|s| lock_port(&s.port).poll_fd())
            .collect()
    }

    /// True when every polled port has a descriptor that turns readable when
    /// a packet waits (a memory port has none): a sleep on them cannot miss
    /// a packet.
    pub fn all_ports_wake(&self) -> bool {
        self.ports
            .iter()
            .flatten()
            .filter(|s| s.poll_rx)
            .all(|s| lock_port(&s.port).poll_fd().is_some())
    }

    /// True while a port holds frames that a full ring sent back (they are
    /// retried at the next poll).
    pub fn tx_pending(&self) -> bool {
        self.ports.iter().flatten().any(|s| !s.txq.is_empty())
    }

    /// The attached ports.
    pub fn port_info(&self) -> Vec<PortInfo> {
        self.ports
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref().map(|s| {
                    let p = lock_port(&s.port);
                    PortInfo {
                        no: i as PortNo,
                        name: p.name().to_string(),
                        stats: p.stats(),
                        poll_fd: p.poll_fd(),
                        polled: s.poll_rx,
                    }
                })
            })
            .collect()
    }

    /// Install the Geneve option map used by `TunnelPop`; flushes the caches.
    pub fn set_optmap(&mut self, map: GeneveOptMap) {
        self.optmap = map;
        self.flush_caches();
    }

    /// Follow the slow path's changes: a full flush drops every cached flow,
    /// an invalidated tag the flows that carry it, before the next lookup and,
    /// after an upcall, before its flow is installed (which is skipped when
    /// something the translation depended on changed since). So the packet
    /// after a change always sees the new state.
    pub fn watch(&mut self, inv: Arc<Invalidations>) {
        let seen = inv.now();
        self.watch = Some(Watch {
            inv,
            seen,
            tags: Vec::new(),
        });
    }

    /// Send a frame the slow path built (an ARP request, say) out of `port`;
    /// it leaves with the next batch.
    pub fn transmit(&mut self, port: PortNo, frame: &[u8]) {
        sink::send_frame(&mut self.ports, &mut self.stats, port, frame);
        if let Some(slot) = self.ports.get_mut(port as usize).and_then(Option::as_mut) {
            slot.flush();
        }
    }

    /// Run `actions` on `frame` as if it had come in on `in_port` (an
    /// OpenFlow PACKET_OUT: the slow path translated its actions), then
    /// what it recirculates, as received packets are; send at once.
    pub fn execute_packet(&mut self, in_port: PortNo, frame: &[u8], actions: &[Action]) {
        self.rx.clear();
        let meta = crate::packet::PacketMeta {
            in_port,
            ..Default::default()
        };
        if !self.rx.push_copy(frame, meta) {
            self.stats.drops.inc(crate::DropReason::Oversize);
            return;
        }
        let Pmd {
            ports,
            upcall,
            optmap,
            rx,
            recirc,
            stats,
            now_ms,
            conntrack,
            ..
        } = self;
        let pkt = &mut rx.packets_mut()[0];
        // A frame no key describes still goes where the actions say (OVS
        // executes a packet-out's actions on any bytes).
        let key = FlowKey::extract(pkt.data(), &pkt.meta)
            .map(|(k, _)| k)
            .unwrap_or_default();
        let mut sink = PmdSink {
            ports: &mut ports[..],
            recirc,
            stats: &mut *stats,
            upcall: &mut *upcall,
            conntrack: &*conntrack,
            now_ms: *now_ms,
        };
        execute(actions, pkt, &key, key.hash(), optmap, &mut sink);
        self.upcall.end_batch(&mut self.stats.drops);
        self.rx.clear();
        self.process_recirculated();
        for slot in self.ports.iter_mut().flatten() {
            if !slot.txq.is_empty() {
                slot.flush();
            }
        }
    }

    /// Invalidate every cached flow at once (a new rule generation).
    pub fn flush_caches(&mut self) {
        self.megaflow.bump_generation();
        self.megaflow.purge_stale();
    }

    /// Re-check every megaflow with `check` and move to a new generation that
    /// holds only the flows kept or replaced; EMC entries follow their megaflow.
    pub fn revalidate(&mut self, check: impl FnMut(&DpFlow) -> Revalidate) -> (usize, usize, usize) {
        self.megaflow.revalidate(check)
    }

    /// Counters.
    pub fn stats(&self) -> &PmdStats {
        &self.stats
    }

    /// Zero the counters.
    pub fn clear_stats(&mut self) {
        self.stats = PmdStats::default();
    }

    /// The exact-match cache.
    pub fn emc(&self) -> &Emc {
        &self.emc
    }

    /// The megaflow cache.
    pub fn megaflow(&self) -> &MegaflowCache {
        &self.megaflow
    }

    /// The megaflow cache, writable (expiry, tests).
    pub fn megaflow_mut(&mut self) -> &mut MegaflowCache {
        &mut self.megaflow
    }

    /// The slow path.
    pub fn upcall_mut(&mut self) -> &mut U {
        &mut self.upcall
    }

    /// Use `ct` for `ct()` (the datapath's threads share one tracker).
    pub fn share_conntrack(&mut self, ct: SharedConntrack) {
        self.conntrack = ct;
    }

    /// The tracker `ct()` uses.
    pub fn conntrack(&self) -> &SharedConntrack {
        &self.conntrack
    }

    /// Milliseconds since the PMD started (the clock flows are stamped with).
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Poll every port once: receive a batch from each, process it, send.
    /// Returns the number of packets received.
    pub fn poll_once(&mut self) -> usize {
        let now = self.clock.elapsed();
        self.now_ms = now.as_millis() as u64;
        self.budget.refill(now.as_nanos() as u64);
        self.polls += 1;
        sync(&mut self.watch, &mut self.megaflow, &mut self.stats);
        if self.polls.is_multiple_of(MAINTENANCE_POLLS) {
            self.megaflow.rank_subtables();
        }
        // What scans the whole cache runs by the clock, not by polls: a busy
        // PMD polls a million times a second, and a cache a flood filled
        // with thousands of flows made each scan cost its packets.
        if self.now_ms >= self.last_expiry_ms + EXPIRY_INTERVAL_MS {
            self.last_expiry_ms = self.now_ms;
            if self.max_idle_ms > 0 {
                self.stats.flows_expired += self.megaflow.expire(self.now_ms, self.max_idle_ms) as u64;
            }
            self.megaflow.purge_stale();
            self.megaflow.compact();
        }
        // Backpressure: while any port still holds unsent frames from earlier
        // batches, retry those first and take no more than fits.
        let mut room = usize::MAX;
        for slot in self.ports.iter_mut().flatten() {
            if !slot.txq.is_empty() {
                slot.flush();
            }
            room = room.min(slot.txq.capacity() - slot.txq.len());
        }
        let mut total = 0;
        for i in 0..self.ports.len() {
            let Some(slot) = self.ports[i].as_mut().filter(|s| s.poll_rx) else {
                continue;
            };
            self.rx.clear();
            if room < self.batch_size {
                break;
            }
            let n = lock_port(&slot.port).rx(&mut self.rx);
            let big = self.rx.take_oversize();
            if big > 0 {
                self.stats.drops.add(crate::DropReason::Oversize, big as u64);
            }
            if n == 0 {
                continue;
            }
            if !slot.own_in_port {
                for p in self.rx.packets_mut() {
                    p.meta.in_port = i as PortNo;
                }
            }
            total += n;
            self.stats.rx_packets += n as u64;
            self.stats.batches += 1;
            self.process_rx();
        }
        for slot in self.ports.iter_mut().flatten() {
            if !slot.txq.is_empty() {
                slot.flush();
            }
        }
        if total == 0 {
            self.stats.idle_polls += 1;
        } else {
            self.stats.busy_polls += 1;
        }
        total
    }

    /// Poll until `stop` is set (busy polling).
    pub fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            if self.poll_once() == 0 {
                std::hint::spin_loop();
            }
        }
    }

    /// Process `self.rx`, then whatever it recirculated, until nothing is left.
    fn process_rx(&mut self) {
        self.process_batch(false);
        self.rx.clear();
        self.process_recirculated();
    }

    /// Look up what the last actions recirculated, until nothing is left.
    fn process_recirculated(&mut self) {
        while !self.recirc.is_empty() {
            self.stats.recirculations += self.recirc.len() as u64;
            std::mem::swap(&mut self.recirc_in, &mut self.recirc);
            self.recirc.clear();
            self.process_batch(true);
            self.recirc_in.clear();
        }
    }

    /// Look up and execute every packet of `rx` (or of `recirc_in`).
    fn process_batch(&mut self, recirculated: bool) {
        let Pmd {
            ports,
            emc,
            megaflow,
            upcall,
            optmap,
            rx,
            recirc_in,
            recirc,
            stats,
            now_ms,
            watch,
            rng,
            emc_insert_inv_prob,
            conntrack,
            budget,
            ..
        } = self;
        let inv_prob = *emc_insert_inv_prob;
        let now = *now_ms;
        let input = if recirculated { recirc_in } else { rx };
        let mut key = FlowKey::default();
        for pkt in input.packets_mut() {
            if let Err(e) = key.extract_into(pkt.data(), &pkt.meta) {
                stats.drops.inc(e.drop_reason());
                continue;
            }
            let hash = key.hash();
            let gen = megaflow.generation();
            let len = pkt.len() as u64;
            // A miss is charged to its port from the upcall to the end of
            // its actions (translation, install, and what it sends).
            let mut miss: Option<(PortNo, Instant)> = None;
            // The fresh flow of an upcall lives here while its actions run.
            let installed: Arc<DpFlow>;
            let uncached: Vec<Action>;
            let actions: &[Action] = if let Some(f) = emc.lookup(&key, hash, gen) {
                stats.emc_hits += 1;
                f.record(1, len, now);
                &f.actions
            } else if let Some(f) = megaflow.lookup(&key) {
                stats.megaflow_hits += 1;
                f.record(1, len, now);
                if coin(rng, inv_prob) {
                    emc.insert(key, hash, f.clone(), gen);
                }
                &f.actions
            } else {
                let from = pkt.meta.in_port;
                if !budget.allows(from) {
                    stats.drops.inc(crate::DropReason::UpcallLimit);
                    continue;
                }
                stats.upcalls += 1;
                let started = Instant::now();
                miss = Some((from, started));
                let reply = upcall.upcall(&key, pkt);
                // The upcall (or another thread meanwhile) may have changed
                // slow-path state: drop what was cached under the old state
                // first, and cache this reply only if it is still right.
                let synced = sync(watch, megaflow, stats);
                let reply = reply.map(|mut r| {
                    if let (Some(w), Some(at)) = (watch.as_ref(), r.seen) {
                        if r.cacheable && !w.still_valid(synced, at, &r.deps) {
                            r.cacheable = false;
                            stats.upcalls_stale += 1;
                        }
                    }
                    r
                });
                match reply {
                    Err(e) => {
                        tracing::debug!(%e, "upcall failed");
                        stats.drops.inc(crate::DropReason::UpcallFailed);
                        budget.charge(from, started.elapsed().as_nanos() as u64);
                        continue;
                    }
                    Ok(mut reply) if reply.cacheable => {
                        for (port, frame) in std::mem::take(&mut reply.packets_out) {
                            sink::send_frame(ports, stats, port, &frame);
                        }
                        // Datapath invariant (as in OVS): flows always match
                        // exactly on in_port and recirc_id.
                        reply.mask.set_exact(Field::InPort);
                        reply.mask.set_exact(Field::RecircId);
                        installed = megaflow.insert_with_deps(
                            &key,
                            reply.mask,
                            reply.actions.into(),
                            &reply.deps,
                            now,
                        );
                        installed.set_tag(reply.tag);
                        installed.record(1, len, now);
                        if coin(rng, inv_prob) {
                            emc.insert(key, hash, installed.clone(), megaflow.generation());
                        }
                        &installed.actions
                    }
                    Ok(reply) => {
                        for (port, frame) in &reply.packets_out {
                            sink::send_frame(ports, stats, *port, frame);
                        }
                        uncached = reply.actions;
                        &uncached
                    }
                }
            };
            if pkt.meta.head_only {
                // Only its headers came up: translated (and its flow
                // installed), but there is no whole packet to send.
                stats.drops.inc(crate::DropReason::HeadOnly);
                if let Some((from, started)) = miss {
                    budget.charge(from, started.elapsed().as_nanos() as u64);
                }
                continue;
            }
            let mut sink = PmdSink {
                ports: &mut ports[..],
                recirc,
                stats: &mut *stats,
                upcall: &mut *upcall,
                conntrack: &*conntrack,
                now_ms: now,
            };
            execute(actions, pkt, &key, hash, optmap, &mut sink);
            if let Some((from, started)) = miss {
                budget.charge(from, started.elapsed().as_nanos() as u64);
            }
        }
        upcall.end_batch(&mut stats.drops);
    }
}

#[cfg(test)]
mod tests;
