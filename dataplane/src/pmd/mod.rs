//! The poll-mode loop: rx batch -> extract -> EMC -> megaflow -> upcall ->
//! execute -> tx batch, over a set of ports, with per-thread caches and counters.

mod sink;
mod stats;
mod thread;
mod upcall;

pub use stats::PmdStats;
pub use thread::{FlowDump, PmdCommand, PmdSnapshot, PmdThread, PollMode};
pub use upcall::{Upcall, UpcallError, UpcallReply};

use crate::action::{execute, Action};
use crate::cache::{DpFlow, Emc, MegaflowCache, Revalidate, DEFAULT_EMC_ENTRIES, DEFAULT_MAX_FLOWS};
use crate::flow::{Field, FlowKey};
use crate::packet::{Batch, BATCH_SIZE};
use crate::port::{lock_port, share, Port, PortInfo, PortNo, PortStats, SharedPort};
use crate::tunnel::GeneveOptMap;
use sink::{PmdSink, PortSlot};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// How often (in polls) the megaflow subtables are re-ranked and stale flows purged.
const MAINTENANCE_POLLS: u64 = 4096;

/// Sizes of a PMD's caches and batches.
#[derive(Clone, Copy, Debug)]
pub struct PmdConfig {
    /// EMC entries.
    pub emc_entries: usize,
    /// Megaflow cache bound.
    pub max_flows: usize,
    /// Packets taken per rx call.
    pub batch_size: usize,
}

impl Default for PmdConfig {
    fn default() -> Self {
        PmdConfig {
            emc_entries: DEFAULT_EMC_ENTRIES,
            max_flows: DEFAULT_MAX_FLOWS,
            batch_size: BATCH_SIZE,
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
    /// The slow path's change counter and the value last seen (see `watch_epoch`).
    epoch: Option<(Arc<AtomicU64>, u64)>,
}

/// Flush the megaflow generation when the slow path's epoch moved.
#[inline]
fn sync_epoch(epoch: &mut Option<(Arc<AtomicU64>, u64)>, megaflow: &mut MegaflowCache) {
    if let Some((e, seen)) = epoch {
        let now = e.load(Ordering::Acquire);
        if now != *seen {
            *seen = now;
            megaflow.bump_generation();
        }
    }
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
            clock: Instant::now(),
            now_ms: 0,
            polls: 0,
            batch_size,
            epoch: None,
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
        let old = self.ports[i].replace(PortSlot { port, txq, poll_rx });
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

    /// Follow the slow path's change counter: whenever it moves (rules, ports
    /// or MAC table changed), every cached flow is invalidated before the next
    /// lookup, and after an upcall before its flow is installed. So the packet
    /// after a change always sees the new state.
    pub fn watch_epoch(&mut self, epoch: Arc<AtomicU64>) {
        let v = epoch.load(Ordering::Acquire);
        self.epoch = Some((epoch, v));
    }

    /// Send a frame the slow path built (an ARP request, say) out of `port`;
    /// it leaves with the next batch.
    pub fn transmit(&mut self, port: PortNo, frame: &[u8]) {
        sink::send_frame(&mut self.ports, &mut self.stats, port, frame);
        if let Some(slot) = self.ports.get_mut(port as usize).and_then(Option::as_mut) {
            slot.flush();
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

    /// Milliseconds since the PMD started (the clock flows are stamped with).
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Poll every port once: receive a batch from each, process it, send.
    /// Returns the number of packets received.
    pub fn poll_once(&mut self) -> usize {
        self.now_ms = self.clock.elapsed().as_millis() as u64;
        self.polls += 1;
        sync_epoch(&mut self.epoch, &mut self.megaflow);
        if self.polls % MAINTENANCE_POLLS == 0 {
            self.megaflow.rank_subtables();
            self.megaflow.purge_stale();
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
            for p in self.rx.packets_mut() {
                p.meta.in_port = i as PortNo;
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
            epoch,
            ..
        } = self;
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
                emc.insert(key, hash, f.clone(), gen);
                &f.actions
            } else {
                stats.upcalls += 1;
                let reply = upcall.upcall(&key, pkt);
                // The upcall may have changed slow-path state (MAC learning, learn
                // actions): drop what was cached under the old state first.
                sync_epoch(epoch, megaflow);
                match reply {
                    Err(e) => {
                        tracing::debug!(%e, "upcall failed");
                        stats.drops.inc(crate::DropReason::UpcallFailed);
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
                        installed = megaflow.insert(&key, reply.mask, reply.actions.into(), now);
                        installed.set_tag(reply.tag);
                        installed.record(1, len, now);
                        emc.insert(key, hash, installed.clone(), megaflow.generation());
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
            let mut sink = PmdSink {
                ports: &mut ports[..],
                recirc,
                stats: &mut *stats,
                upcall: &mut *upcall,
            };
            execute(actions, pkt, &key, hash, optmap, &mut sink);
        }
    }
}

#[cfg(test)]
mod tests;
