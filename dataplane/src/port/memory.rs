//! In-memory ports for tests and benchmarks.
//!
//! - [`MemoryPort::new`]: a port plus a [`MemoryPortHandle`] through which a test
//!   injects received frames and collects sent ones (from any thread; one lock per
//!   batch, frames copied into `Bytes`).
//! - [`MemoryPort::pair`]: two ports wired back to back.
//! - [`MemoryPort::generator`]: replays a fixed set of frames forever and discards
//!   what it is given to send; no allocation or lock, for benchmarks.
//! - [`MemoryPort::sink`]: receives nothing and discards (and counts) what it sends.

use super::{Port, PortStats};
use crate::packet::{Batch, PacketMeta};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

type Queue = Arc<Mutex<VecDeque<Bytes>>>;

fn lock(q: &Queue) -> MutexGuard<'_, VecDeque<Bytes>> {
    // A panicking test thread must not wedge the others: take the data anyway.
    q.lock().unwrap_or_else(|e| e.into_inner())
}

enum Mode {
    Queues { rx: Queue, tx: Queue, tx_limit: usize },
    Generator { frames: Vec<Vec<u8>>, next: usize },
    Sink,
}

/// An in-memory port.
pub struct MemoryPort {
    name: String,
    mode: Mode,
    stats: PortStats,
}

/// The far end of a [`MemoryPort::new`] port.
#[derive(Clone)]
pub struct MemoryPortHandle {
    rx: Queue,
    tx: Queue,
}

impl MemoryPortHandle {
    /// Queue a frame for the port to receive.
    pub fn inject(&self, frame: &[u8]) {
        lock(&self.rx).push_back(Bytes::copy_from_slice(frame));
    }

    /// Take every frame the port has sent so far.
    pub fn take_sent(&self) -> Vec<Bytes> {
        lock(&self.tx).drain(..).collect()
    }

    /// Frames waiting to be received.
    pub fn pending_rx(&self) -> usize {
        lock(&self.rx).len()
    }
}

/// Frames a queue port holds before `tx` pushes back.
const DEFAULT_TX_LIMIT: usize = 1 << 16;

impl MemoryPort {
    /// A queue port and the handle that feeds and drains it.
    pub fn new(name: &str) -> (MemoryPort, MemoryPortHandle) {
        let rx: Queue = Default::default();
        let tx: Queue = Default::default();
        let port = MemoryPort::with_queues(name, rx.clone(), tx.clone());
        (port, MemoryPortHandle { rx, tx })
    }

    /// Two ports wired back to back: what one sends, the other receives.
    pub fn pair(a: &str, b: &str) -> (MemoryPort, MemoryPort) {
        let q1: Queue = Default::default();
        let q2: Queue = Default::default();
        (
            MemoryPort::with_queues(a, q1.clone(), q2.clone()),
            MemoryPort::with_queues(b, q2, q1),
        )
    }

    fn with_queues(name: &str, rx: Queue, tx: Queue) -> MemoryPort {
        MemoryPort {
            name: name.to_string(),
            mode: Mode::Queues {
                rx,
                tx,
                tx_limit: DEFAULT_TX_LIMIT,
            },
            stats: PortStats::default(),
        }
    }

    /// Limit how many frames the tx queue holds before `tx` applies backpressure.
    pub fn set_tx_limit(&mut self, limit: usize) {
        if let Mode::Queues { tx_limit, .. } = &mut self.mode {
            *tx_limit = limit;
        }
    }

    /// A port that receives `frames` round-robin forever and discards what it sends.
    ///
    /// # Panics
    /// When `frames` is empty.
    pub fn generator(name: &str, frames: Vec<Vec<u8>>) -> MemoryPort {
        assert!(!frames.is_empty(), "a generator needs at least one frame");
        MemoryPort {
            name: name.to_string(),
            mode: Mode::Generator { frames, next: 0 },
            stats: PortStats::default(),
        }
    }

    /// A port that never receives and discards (counting) what it sends.
    pub fn sink(name: &str) -> MemoryPort {
        MemoryPort {
            name: name.to_string(),
            mode: Mode::Sink,
            stats: PortStats::default(),
        }
    }
}

impl Port for MemoryPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx(&mut self, batch: &mut Batch) -> usize {
        let start = batch.len();
        match &mut self.mode {
            Mode::Queues { rx, .. } => {
                let mut q = lock(rx);
                while !batch.is_full() {
                    let Some(f) = q.pop_front() else { break };
                    if !batch.push_copy(&f, PacketMeta::default()) {
                        // Not full (checked above): too big for a buffer.
                        self.stats.rx_dropped += 1;
                        batch.note_oversize();
                        continue;
                    }
                    self.stats.rx_bytes += f.len() as u64;
                }
            }
            Mode::Generator { frames, next } => {
                while !batch.is_full() {
                    let f = &frames[*next];
                    *next = (*next + 1) % frames.len();
                    batch.push_copy(f, PacketMeta::default());
                    self.stats.rx_bytes += f.len() as u64;
                }
            }
            Mode::Sink => {}
        }
        let n = batch.len() - start;
        self.stats.rx_packets += n as u64;
        n
    }

    fn tx(&mut self, batch: &mut Batch) -> usize {
        let n = match &mut self.mode {
            Mode::Queues { tx, tx_limit, .. } => {
                let mut q = lock(tx);
                let n = batch.len().min(tx_limit.saturating_sub(q.len()));
                for p in &batch.packets()[..n] {
                    self.stats.tx_bytes += p.len() as u64;
                    q.push_back(Bytes::copy_from_slice(p.data()));
                }
                n
            }
            Mode::Generator { .. } | Mode::Sink => {
                for p in batch.packets() {
                    self.stats.tx_bytes += p.len() as u64;
                }
                batch.len()
            }
        };
        // Unsent frames stay in the batch for the next call (backpressure).
        batch.remove_front(n);
        self.stats.tx_packets += n as u64;
        n
    }

    fn stats(&self) -> PortStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_carries_frames_both_ways() {
        let (mut a, mut b) = MemoryPort::pair("a", "b");
        let mut batch = Batch::new(4);
        batch.push_copy(&[1, 2, 3], PacketMeta::default());
        assert_eq!(a.tx(&mut batch), 1);
        assert!(batch.is_empty());
        assert_eq!(b.rx(&mut batch), 1);
        assert_eq!(batch.packets()[0].data(), &[1, 2, 3]);
        assert_eq!(a.stats().tx_packets, 1);
        assert_eq!(b.stats().rx_bytes, 3);
    }

    #[test]
    fn full_tx_queue_pushes_back_without_dropping() {
        let (mut p, h) = MemoryPort::new("p");
        p.set_tx_limit(2);
        let mut batch = Batch::new(4);
        for i in 0..3u8 {
            batch.push_copy(&[i], PacketMeta::default());
        }
        assert_eq!(p.tx(&mut batch), 2);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.packets()[0].data(), &[2]);
        assert_eq!(batch.capacity(), 4);
        assert_eq!(h.take_sent().len(), 2);
        assert_eq!(p.tx(&mut batch), 1);
        assert_eq!(p.stats().tx_dropped, 0);
    }

    #[test]
    fn generator_replays_round_robin() {
        let mut g = MemoryPort::generator("g", vec![vec![1], vec![2]]);
        let mut batch = Batch::new(3);
        assert_eq!(g.rx(&mut batch), 3);
        let got: Vec<u8> = batch.packets().iter().map(|p| p.data()[0]).collect();
        assert_eq!(got, vec![1, 2, 1]);
        assert_eq!(g.tx(&mut batch), 3);
        let mut s = MemoryPort::sink("s");
        assert_eq!(s.rx(&mut batch), 0);
        g.rx(&mut batch);
        assert_eq!(s.tx(&mut batch), 3);
        assert_eq!(s.stats().tx_packets, 3);
    }
}
