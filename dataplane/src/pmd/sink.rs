//! Where the executor's outputs go inside a PMD: port tx queues, the
//! recirculation batch, the upcall handler, the drop counters.

use super::stats::PmdStats;
use super::upcall::Upcall;
use crate::action::ActionSink;
use crate::conntrack::{self, CtAction, SharedConntrack};
use crate::drop::DropReason;
use crate::flow::FlowKey;
use crate::packet::{Batch, PacketBuf};
use crate::port::{lock_port, PortNo, SharedPort};

/// An attached port and this PMD's queue of frames waiting to be sent to it.
pub(super) struct PortSlot {
    pub port: SharedPort,
    pub txq: Batch,
    /// This PMD polls the port for rx.
    pub poll_rx: bool,
    /// Its packets say which port they came in on.
    pub own_in_port: bool,
}

impl PortSlot {
    /// Send what is queued (one lock for the batch).
    #[inline]
    pub fn flush(&mut self) -> usize {
        lock_port(&self.port).tx(&mut self.txq)
    }
}

pub(super) struct PmdSink<'a, U: Upcall> {
    pub ports: &'a mut [Option<PortSlot>],
    pub recirc: &'a mut Batch,
    pub stats: &'a mut PmdStats,
    pub upcall: &'a mut U,
    pub conntrack: &'a SharedConntrack,
    pub now_ms: u64,
}

/// Append `pkt` to `batch`: move its buffer when allowed, else copy.
#[inline(always)]
fn enqueue(batch: &mut Batch, pkt: &mut PacketBuf, movable: bool) -> bool {
    if movable {
        batch.push_swap(pkt)
    } else {
        batch.push_copy(pkt.data(), pkt.meta)
    }
}

/// Queue a copy of a frame the slow path built.
pub(super) fn send_frame(ports: &mut [Option<PortSlot>], stats: &mut PmdStats, port: PortNo, frame: &[u8]) {
    let Some(slot) = ports.get_mut(port as usize).and_then(Option::as_mut) else {
        stats.drops.inc(DropReason::NoPort);
        return;
    };
    if slot.txq.is_full() {
        slot.flush();
    }
    if slot.txq.push_copy(frame, Default::default()) {
        stats.tx_packets += 1;
    } else {
        stats.drops.inc(DropReason::TxError);
    }
}

impl<U: Upcall> ActionSink for PmdSink<'_, U> {
    #[inline]
    fn output(&mut self, port: PortNo, pkt: &mut PacketBuf, movable: bool) {
        let Some(slot) = self.ports.get_mut(port as usize).and_then(Option::as_mut) else {
            self.stats.drops.inc(DropReason::NoPort);
            return;
        };
        if slot.txq.is_full() {
            slot.flush();
        }
        if enqueue(&mut slot.txq, pkt, movable) {
            self.stats.tx_packets += 1;
        } else {
            self.stats.drops.inc(DropReason::TxError);
        }
    }

    #[inline]
    fn recirculate(&mut self, pkt: &mut PacketBuf, movable: bool) {
        if !enqueue(self.recirc, pkt, movable) {
            self.stats.drops.inc(DropReason::RecircDepth);
        }
    }

    fn userspace(&mut self, key: &FlowKey, pkt: &PacketBuf, cookie: u32) -> Result<(), DropReason> {
        let mut out = Vec::new();
        let r = self.upcall.userspace(key, pkt, cookie, &mut out);
        for (port, frame) in out {
            send_frame(self.ports, self.stats, port, &frame);
        }
        r
    }

    #[inline]
    fn drop_packet(&mut self, reason: DropReason) {
        self.stats.drops.inc(reason);
    }

    #[inline]
    fn conntrack(&mut self, pkt: &mut PacketBuf, act: &CtAction) -> Result<(), DropReason> {
        conntrack::track(&mut conntrack::lock(self.conntrack), pkt, act, self.now_ms)
    }
}
