//! Reading the datapath's events (upcalls; outputs in test mode) from its
//! perf event array: one ring per CPU, polled through one epoll fd.

use super::abi::Event;
use crate::error::BpfError;
use bytemuck::pod_read_unaligned;
use libbpf_rs::{MapHandle, PerfBuffer, PerfBufferBuilder};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One event: its header and the packet bytes that came with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    /// Header.
    pub ev: Event,
    /// The packet's first `ev.cap` bytes.
    pub data: Vec<u8>,
}

/// Events waiting to be taken, bounded (a reader that falls behind loses
/// the newest, counted).
#[derive(Default)]
struct Queue {
    events: VecDeque<RawEvent>,
    dropped: u64,
    lost: u64,
}

/// Most events held between two reads.
const QUEUE_MAX: usize = 4096;

/// The reader.
pub struct EventReader {
    perf: PerfBuffer<'static>,
    q: Arc<Mutex<Queue>>,
}

impl std::fmt::Debug for EventReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReader").finish_non_exhaustive()
    }
}

impl EventReader {
    pub(super) fn new(map: &MapHandle, pages: usize) -> Result<EventReader, BpfError> {
        let q = Arc::new(Mutex::new(Queue::default()));
        let (qs, ql) = (q.clone(), q.clone());
        let perf = PerfBufferBuilder::new(map)
            .pages(pages)
            .sample_cb(move |_cpu, data: &[u8]| {
                let hdr = std::mem::size_of::<Event>();
                let Some(h) = data.get(..hdr) else { return };
                let ev: Event = pod_read_unaligned(h);
                let end = (hdr + ev.cap as usize).min(data.len());
                let mut q = qs.lock().unwrap_or_else(|e| e.into_inner());
                if q.events.len() >= QUEUE_MAX {
                    q.dropped += 1;
                    return;
                }
                q.events.push_back(RawEvent {
                    ev,
                    data: data[hdr..end].to_vec(),
                });
            })
            .lost_cb(move |_cpu, n| {
                ql.lock().unwrap_or_else(|e| e.into_inner()).lost += n;
            })
            .build()
            .map_err(BpfError::Events)?;
        Ok(EventReader { perf, q })
    }

    /// Move what the rings hold into the queue (no waiting).
    pub fn consume(&self) -> Result<(), BpfError> {
        self.perf.consume().map_err(BpfError::Events)
    }

    /// Wait up to `timeout` for events, then move them into the queue.
    pub fn poll(&self, timeout: Duration) -> Result<(), BpfError> {
        self.perf.poll(timeout).map_err(BpfError::Events)
    }

    /// The next queued event.
    pub fn pop(&self) -> Option<RawEvent> {
        self.q
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .pop_front()
    }

    /// Events lost: dropped by the kernel (ring full) and by the queue.
    pub fn lost(&self) -> u64 {
        let q = self.q.lock().unwrap_or_else(|e| e.into_inner());
        q.lost + q.dropped
    }

    /// A descriptor that becomes readable when events wait (for `poll()`).
    pub fn fd(&self) -> i32 {
        self.perf.epoll_fd()
    }
}
