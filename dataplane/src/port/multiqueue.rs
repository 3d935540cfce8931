//! [`MultiQueue`]: several rx/tx queues of one interface (one AF_XDP socket
//! each) seen by the datapath as one port, as OVS maps a port's rxqs.

use super::{Port, PortStats};
use crate::packet::Batch;
use std::os::fd::RawFd;

/// The queues of one interface as a single port.
pub struct MultiQueue {
    queues: Vec<Box<dyn Port>>,
    next: usize,
}

impl MultiQueue {
    /// Wrap the queues (at least one).
    ///
    /// # Panics
    /// When `queues` is empty.
    pub fn new(queues: Vec<Box<dyn Port>>) -> MultiQueue {
        assert!(!queues.is_empty(), "a port needs at least one queue");
        MultiQueue { queues, next: 0 }
    }

    /// Number of queues.
    pub fn len(&self) -> usize {
        self.queues.len()
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl Port for MultiQueue {
    fn name(&self) -> &str {
        self.queues[0].name()
    }

    fn rx(&mut self, batch: &mut Batch) -> usize {
        // Start at a different queue each time, so none starves.
        let n = self.queues.len();
        let mut got = 0;
        for i in 0..n {
            if batch.is_full() {
                break;
            }
            got += self.queues[(self.next + i) % n].rx(batch);
        }
        self.next = (self.next + 1) % n;
        got
    }

    fn tx(&mut self, batch: &mut Batch) -> usize {
        // Spread batches over the queues; a queue that pushes back leaves the
        // rest for the next one.
        let n = self.queues.len();
        let mut sent = 0;
        for i in 0..n {
            if batch.is_empty() {
                break;
            }
            sent += self.queues[(self.next + i) % n].tx(batch);
        }
        sent
    }

    fn stats(&self) -> PortStats {
        self.queues
            .iter()
            .map(|q| q.stats())
            .fold(PortStats::default(), |a, b| PortStats {
                rx_packets: a.rx_packets + b.rx_packets,
                rx_bytes: a.rx_bytes + b.rx_bytes,
                rx_dropped: a.rx_dropped + b.rx_dropped,
                rx_errors: a.rx_errors + b.rx_errors,
                tx_packets: a.tx_packets + b.tx_packets,
                tx_bytes: a.tx_bytes + b.tx_bytes,
                tx_dropped: a.tx_dropped + b.tx_dropped,
                tx_errors: a.tx_errors + b.tx_errors,
            })
    }

    fn poll_fd(&self) -> Option<RawFd> {
        self.queues[0].poll_fd()
    }
    fn retire(&mut self) {
        self.queues.iter_mut().for_each(|q| q.retire())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PacketMeta;
    use crate::port::MemoryPort;

    #[test]
    fn queues_are_one_port() {
        let (q0, h0) = MemoryPort::new("eth0");
        let (q1, h1) = MemoryPort::new("eth0");
        let mut mq = MultiQueue::new(vec![Box::new(q0), Box::new(q1)]);
        h0.inject(&[1]);
        h1.inject(&[2]);
        let mut b = Batch::new(8);
        assert_eq!(mq.rx(&mut b), 2);
        assert_eq!(mq.stats().rx_packets, 2);
        b.clear();
        b.push_copy(&[3], PacketMeta::default());
        assert_eq!(mq.tx(&mut b), 1);
        assert_eq!(h0.take_sent().len() + h1.take_sent().len(), 1);
        assert_eq!(mq.name(), "eth0");
        assert_eq!(mq.len(), 2);
    }
}
