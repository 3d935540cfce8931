//! PMD threads: a [`Pmd`] running in its own thread, polling its ports, and
//! taking commands (ports, cache flushes, stats) over a crossbeam channel
//! between batches, so the packet path never takes a lock.

use super::{Pmd, PmdConfig, PmdStats, Upcall};
use crate::cache::{DpFlow, Invalidations};
use crate::port::{lock_port, wait_readable, Port, PortNo, PortStats, SharedPort};
use crate::tunnel::GeneveOptMap;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How an idle PMD waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollMode {
    /// Spin on the ports: lowest latency, one core at 100% even when idle.
    Busy,
    /// Spin while there is traffic and for `spin_us` after the last packet,
    /// then sleep in `poll()` on the ports' descriptors for up to `sleep_ms`
    /// (OVS users know this trade-off as pmd vs. non-pmd). While spinning
    /// idle, the thread yields the CPU at each empty poll: the kernel work our
    /// own transmits start (veth, XDP, the receiver's stack) may be queued
    /// for the CPU we spin on, and waits until we let go. Measured in the
    /// two-node lab (ping avg): spinning without yielding costs the whole spin
    /// (0.2 ms spin: 0.4 ms; 1000 polls: 2 ms); yielding, 0.12-0.14 ms.
    Adaptive {
        /// How long to keep spinning after the last packet (microseconds).
        spin_us: u32,
        /// Longest sleep while a polled port cannot wake the thread (a
        /// memory port) or frames wait to be sent again.
        sleep_ms: i32,
        /// Longest sleep otherwise: a packet on any port or a command ends
        /// it at once; only timed work (idle expiry) needs the thread then.
        idle_ms: i32,
    },
}

impl PollMode {
    /// The default adaptive mode of a PMD that forwards: spin 200 us after
    /// the last packet, then sleep 1 ms at a time (a packet ends the sleep at
    /// once; waking every millisecond keeps the thread's caches warm).
    pub const ADAPTIVE: PollMode = PollMode::Adaptive {
        spin_us: 200,
        sleep_ms: 1,
        idle_ms: 1,
    };

    /// A thread that serves only a slow path (the eBPF datapath's misses):
    /// it sleeps until a miss or a command arrives, [`IDLE_WAIT_MS`] at most.
    pub const SLOW_PATH: PollMode = PollMode::Adaptive {
        spin_us: 200,
        sleep_ms: 1,
        idle_ms: IDLE_WAIT_MS,
    };
}

/// One datapath flow as `dpctl dump-flows` shows it: a handle on the cached
/// flow, formatted by whoever reads it (never by the PMD thread).
#[derive(Clone, Debug)]
pub struct FlowDump {
    flow: Arc<DpFlow>,
    now_ms: u64,
}

impl FlowDump {
    /// A dump of `flow` as of `now_ms` (the clock of its last use).
    pub fn new(flow: Arc<DpFlow>, now_ms: u64) -> Self {
        FlowDump { flow, now_ms }
    }

    /// `key(...)` fields under the mask.
    pub fn matches(&self) -> String {
        let mut m = String::new();
        let _ = self.flow.key.fmt_masked(Some(&self.flow.mask), &mut m);
        m
    }
    /// Actions, in datapath syntax.
    pub fn actions(&self) -> String {
        if self.flow.actions.is_empty() {
            return "drop".to_string();
        }
        let a: Vec<String> = self.flow.actions.iter().map(|a| a.to_string()).collect();
        a.join(",")
    }
    /// Packets.
    pub fn packets(&self) -> u64 {
        self.flow.stats.packets()
    }
    /// Bytes.
    pub fn bytes(&self) -> u64 {
        self.flow.stats.bytes()
    }
    /// Milliseconds since the last hit (when the snapshot was taken).
    pub fn idle_ms(&self) -> u64 {
        self.now_ms.saturating_sub(self.flow.stats.used_ms())
    }
    /// The slow path's tag (see [`super::UpcallReply::tag`]).
    pub fn tag(&self) -> u64 {
        self.flow.tag()
    }
}

/// What a PMD reports when asked. Taking it costs the PMD a copy of its
/// counters and one reference per flow and port: no formatting, no syscall.
#[derive(Clone, Default)]
pub struct PmdSnapshot {
    /// Thread id (0..N).
    pub id: usize,
    /// Counters.
    pub stats: PmdStats,
    /// Time spent in polls that found packets.
    pub busy: Duration,
    /// Time spent in empty polls and sleeping.
    pub idle: Duration,
    /// The ports this PMD polls (read their counters with [`Self::port_stats`]).
    pub ports: Vec<(PortNo, SharedPort)>,
    /// Valid megaflows.
    pub flows: Vec<FlowDump>,
    /// EMC entries in use.
    pub emc_entries: usize,
}

impl PmdSnapshot {
    /// (number, name, counters) of each polled port, read in the caller's
    /// thread (a device's counters may take a syscall).
    pub fn port_stats(&self) -> Vec<(PortNo, String, PortStats)> {
        self.ports
            .iter()
            .map(|(no, p)| {
                let p = lock_port(p);
                (*no, p.name().to_string(), p.stats())
            })
            .collect()
    }
}

/// Commands a PMD applies between batches.
pub enum PmdCommand {
    /// Attach a port this PMD polls.
    AddPort(PortNo, Box<dyn Port>),
    /// Attach a shared port: polled by this PMD when the flag is set, else
    /// only sent to.
    AttachPort(PortNo, SharedPort, bool),
    /// Detach a port.
    RemovePort(PortNo),
    /// Drop every cached flow.
    FlushCaches,
    /// Send a frame out of a port (the slow path's own traffic, e.g. ARP).
    Transmit(PortNo, Vec<u8>),
    /// Run actions on a frame given as coming in on a port (a packet-out).
    Execute {
        /// Datapath port it comes in on ([`crate::port::NO_PORT`]: none).
        in_port: PortNo,
        /// The frame.
        frame: Vec<u8>,
        /// What to do with it.
        actions: Vec<crate::action::Action>,
    },
    /// Install a Geneve option map.
    SetOptMap(GeneveOptMap),
    /// Report counters, ports and flows.
    Snapshot(Sender<PmdSnapshot>),
    /// Zero the counters.
    ClearStats,
    /// Use this connection tracker (the datapath's threads share one).
    ShareConntrack(crate::conntrack::SharedConntrack),
    /// Stop the thread.
    Stop,
}

/// Longest sleep of an idle [`PollMode::SLOW_PATH`] thread whose every port
/// can wake it (a packet on any port, or a command through the wake-up
/// eventfd, ends the sleep at once): it still has timed work, idle flows
/// expire once a second. The eBPF datapath's idle upcall thread used 3.6% of
/// a CPU with 1 ms sleeps (18 ticks in 5 s, /proc/PID/task/TID/stat), 0 with
/// these. AF_XDP PMDs keep 1 ms: with 100 ms their ping through the lab rose
/// from 0.218 to 0.287 ms (median of 3 interleaved `rvs-lab compare` rounds).
pub const IDLE_WAIT_MS: i32 = 100;

/// A running PMD thread.
pub struct PmdThread {
    id: usize,
    tx: Sender<PmdCommand>,
    /// Written after each command, so a sleeping thread wakes for it.
    wake: Arc<EventFd>,
    join: Option<JoinHandle<()>>,
}

impl PmdThread {
    /// Start a PMD thread `id` with slow path `upcall`. `inv`, when given, is
    /// the slow path's change counters (see [`Pmd::watch`]); `cpu` pins the
    /// thread.
    pub fn spawn<U: Upcall + 'static>(
        id: usize,
        upcall: U,
        config: PmdConfig,
        mode: PollMode,
        inv: Option<Arc<Invalidations>>,
        cpu: Option<usize>,
    ) -> std::io::Result<PmdThread> {
        let (tx, rx) = unbounded();
        let wake = Arc::new(EventFd::from_value_and_flags(
            0,
            EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC,
        )?);
        let thread_wake = wake.clone();
        let join = std::thread::Builder::new()
            .name(format!("pmd{id}"))
            .spawn(move || {
                if let Some(c) = cpu {
                    pin_to_cpu(c);
                }
                let mut pmd = Pmd::new(upcall, config);
                if let Some(i) = inv {
                    pmd.watch(i);
                }
                run(id, pmd, rx, mode, &thread_wake);
            })?;
        Ok(PmdThread {
            id,
            tx,
            wake,
            join: Some(join),
        })
    }

    /// The thread's id.
    pub fn id(&self) -> usize {
        self.id
    }

    /// Send a command (applied before the next batch; a sleeping thread
    /// wakes for it).
    pub fn send(&self, cmd: PmdCommand) -> bool {
        let sent = self.tx.send(cmd).is_ok();
        // Full (2^64 - 2 wake-ups unread) or closed: the thread wakes anyway.
        let _ = self.wake.write(1);
        sent
    }

    /// Ask for a snapshot; `None` if the thread is gone or does not answer in 2 s.
    pub fn snapshot(&self) -> Option<PmdSnapshot> {
        let (stx, srx) = bounded(1);
        self.send(PmdCommand::Snapshot(stx));
        srx.recv_timeout(Duration::from_secs(2)).ok()
    }

    /// Stop and join the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.send(PmdCommand::Stop);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for PmdThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain old data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set` (cpu is bounded by the set size).
    unsafe { libc::CPU_SET(cpu % (8 * std::mem::size_of::<libc::cpu_set_t>()), &mut set) };
    // SAFETY: pid 0 = this thread; `set` is a valid cpu_set_t of the given size.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        tracing::warn!(
            cpu,
            "could not pin PMD thread: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn snapshot<U: Upcall>(id: usize, pmd: &Pmd<U>, busy: Duration, idle: Duration) -> PmdSnapshot {
    let gen = pmd.megaflow().generation();
    let now_ms = pmd.now_ms();
    let flows = pmd
        .megaflow()
        .iter()
        .filter(|f| f.is_valid(gen))
        .map(|f| FlowDump {
            flow: f.clone(),
            now_ms,
        })
        .collect();
    PmdSnapshot {
        id,
        stats: pmd.stats().clone(),
        busy,
        idle,
        ports: pmd.polled_ports(),
        flows,
        emc_entries: pmd.emc().len(gen),
    }
}

fn run<U: Upcall>(id: usize, mut pmd: Pmd<U>, rx: Receiver<PmdCommand>, mode: PollMode, wake: &EventFd) {
    let (mut busy, mut idle) = (Duration::ZERO, Duration::ZERO);
    let mut last_packet = Instant::now();
    let mut fds: Vec<RawFd> = Vec::new();
    // Every polled port has a descriptor that wakes a sleep: sleep long.
    let mut all_wake = false;
    loop {
        while let Ok(cmd) = rx.try_recv() {
            match cmd {
                PmdCommand::AddPort(no, p) => {
                    pmd.add_port(no, p);
                }
                PmdCommand::AttachPort(no, p, poll) => {
                    pmd.attach_port(no, p, poll);
                }
                PmdCommand::RemovePort(no) => {
                    pmd.remove_port(no);
                }
                PmdCommand::FlushCaches => pmd.flush_caches(),
                PmdCommand::ShareConntrack(ct) => pmd.share_conntrack(ct),
                PmdCommand::Transmit(port, frame) => pmd.transmit(port, &frame),
                PmdCommand::Execute {
                    in_port,
                    frame,
                    actions,
                } => pmd.execute_packet(in_port, &frame, &actions),
                PmdCommand::SetOptMap(m) => pmd.set_optmap(m),
                PmdCommand::Snapshot(reply) => {
                    let _ = reply.send(snapshot(id, &pmd, busy, idle));
                }
                PmdCommand::ClearStats => {
                    pmd.clear_stats();
                    busy = Duration::ZERO;
                    idle = Duration::ZERO;
                }
                PmdCommand::Stop => return,
            }
            fds = pmd.poll_fds();
            all_wake = pmd.all_ports_wake();
        }
        let t0 = Instant::now();
        let n = pmd.poll_once();
        let t1 = Instant::now();
        if n > 0 {
            busy += t1 - t0;
            last_packet = t1;
            continue;
        }
        idle += t1 - t0;
        match mode {
            PollMode::Adaptive {
                spin_us,
                sleep_ms,
                idle_ms,
            } if t1 - last_packet >= Duration::from_micros(spin_us as u64) => {
                if all_wake && !pmd.tx_pending() {
                    // Until a packet, a command or the timed work (frames
                    // still queued for sending keep the short sleep).
                    let mut with_wake = fds.clone();
                    with_wake.push(wake.as_raw_fd());
                    let _ = wait_readable(&with_wake, idle_ms.max(sleep_ms));
                    // Drain the count (EAGAIN when nothing was written).
                    let _ = wake.read();
                } else if fds.is_empty() {
                    std::thread::sleep(Duration::from_millis(sleep_ms.max(0) as u64));
                } else {
                    let _ = wait_readable(&fds, sleep_ms);
                }
                idle += t1.elapsed();
            }
            PollMode::Adaptive { .. } => std::thread::yield_now(),
            PollMode::Busy => std::hint::spin_loop(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Action;
    use crate::flow::{Field, FlowKey, FlowMask};
    use crate::packet::PacketBuf;
    use crate::pmd::{UpcallError, UpcallReply};
    use crate::port::MemoryPort;
    use crate::testing::udp4_min;
    use std::os::fd::AsFd;

    struct ToPort1;
    impl Upcall for ToPort1 {
        fn upcall(&mut self, _k: &FlowKey, _p: &PacketBuf) -> Result<UpcallReply, UpcallError> {
            let mut m = FlowMask::default();
            m.set_exact(Field::InPort);
            Ok(UpcallReply::new(vec![Action::Output(1)], m))
        }
    }

    /// A memory port with a descriptor that is readable while a frame waits,
    /// as a device's is.
    struct FdPort {
        inner: MemoryPort,
        ready: EventFd,
    }

    impl Port for FdPort {
        fn name(&self) -> &str {
            self.inner.name()
        }
        fn rx(&mut self, batch: &mut crate::packet::Batch) -> usize {
            let n = self.inner.rx(batch);
            if n == 0 {
                let _ = self.ready.read();
            }
            n
        }
        fn tx(&mut self, batch: &mut crate::packet::Batch) -> usize {
            self.inner.tx(batch)
        }
        fn stats(&self) -> PortStats {
            self.inner.stats()
        }
        fn poll_fd(&self) -> Option<RawFd> {
            Some(self.ready.as_raw_fd())
        }
    }

    /// An idle thread whose ports can all wake it sleeps (here for up to a
    /// minute) and still answers a command and forwards the next packet.
    #[test]
    fn an_idle_thread_sleeps_until_a_packet_or_a_command() {
        let mode = PollMode::Adaptive {
            spin_us: 0,
            sleep_ms: 1,
            idle_ms: 60_000,
        };
        let t = PmdThread::spawn(0, ToPort1, PmdConfig::default(), mode, None, None).unwrap();
        let (a, ha) = MemoryPort::new("a");
        let ready = EventFd::from_value_and_flags(0, EfdFlags::EFD_NONBLOCK).unwrap();
        let ready_w = ready.as_fd().try_clone_to_owned().unwrap();
        let a = FdPort { inner: a, ready };
        let (b, hb) = MemoryPort::new("b");
        t.send(PmdCommand::AttachPort(0, crate::port::share(Box::new(a)), true));
        // Port 1 only sends: it need not wake the thread.
        t.send(PmdCommand::AttachPort(1, crate::port::share(Box::new(b)), false));
        std::thread::sleep(Duration::from_millis(300));
        let idle = t.snapshot().expect("a command wakes the thread").stats.idle_polls;
        assert!(idle < 30, "{idle} polls in 300 ms: it did not sleep");
        ha.inject(&udp4_min());
        nix::unistd::write(&ready_w, &1u64.to_ne_bytes()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while hb.take_sent().is_empty() {
            assert!(Instant::now() < deadline, "the packet did not wake the thread");
            std::thread::sleep(Duration::from_millis(2));
        }
        t.stop();
    }

    #[test]
    fn a_thread_forwards_reports_and_stops() {
        for mode in [PollMode::Busy, PollMode::ADAPTIVE] {
            let t = PmdThread::spawn(0, ToPort1, PmdConfig::default(), mode, None, None).unwrap();
            let (a, ha) = MemoryPort::new("a");
            let (b, hb) = MemoryPort::new("b");
            t.send(PmdCommand::AddPort(0, Box::new(a)));
            t.send(PmdCommand::AddPort(1, Box::new(b)));
            for _ in 0..100 {
                ha.inject(&udp4_min());
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut got = 0;
            while got < 100 && Instant::now() < deadline {
                got += hb.take_sent().len();
                std::thread::sleep(Duration::from_millis(2));
            }
            assert_eq!(got, 100);
            let s = t.snapshot().unwrap();
            assert_eq!(s.stats.rx_packets, 100);
            assert_eq!(s.stats.upcalls, 1);
            assert_eq!(s.flows.len(), 1);
            assert_eq!(s.flows[0].packets(), 100);
            assert!(
                s.flows[0].matches().contains("in_port(0x0)"),
                "{}",
                s.flows[0].matches()
            );
            assert_eq!(s.ports.len(), 2);
            t.send(PmdCommand::FlushCaches);
            assert!(t.snapshot().unwrap().flows.is_empty());
            t.stop();
        }
    }
}
