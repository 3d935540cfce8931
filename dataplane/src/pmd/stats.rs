//! Per-PMD-thread counters.

use crate::drop::DropCounters;

/// What one PMD thread has done. Plain integers: written by the thread only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PmdStats {
    /// Packets received from ports.
    pub rx_packets: u64,
    /// Lookups answered by the EMC.
    pub emc_hits: u64,
    /// Lookups answered by the megaflow cache.
    pub megaflow_hits: u64,
    /// Lookups that went to the upcall handler.
    pub upcalls: u64,
    /// Packets re-injected by `Recirculate` / `TunnelPop`.
    pub recirculations: u64,
    /// Packets handed to ports for sending.
    pub tx_packets: u64,
    /// Polls of all ports that found work.
    pub busy_polls: u64,
    /// Polls of all ports that found nothing.
    pub idle_polls: u64,
    /// Rx batches processed.
    pub batches: u64,
    /// Full cache flushes the slow path asked for (rule, port, option changes).
    pub flushes: u64,
    /// Cached flows removed because a tag they depended on was invalidated
    /// (a MAC learned, moved or forgotten).
    pub flows_invalidated: u64,
    /// Megaflows removed for being idle longer than `max-idle`.
    pub flows_expired: u64,
    /// Upcall replies not cached because the slow path changed something
    /// they depended on while they were being translated.
    pub upcalls_stale: u64,
    /// Drops, by reason.
    pub drops: DropCounters,
}

impl PmdStats {
    /// Packets that went through a lookup (rx + recirculated).
    pub fn lookups(&self) -> u64 {
        self.emc_hits + self.megaflow_hits + self.upcalls
    }
}
