//! The switch's side of the datapath: which ports have devices (from the
//! switch's configuration), the tunnel next hops to ask for, and rule
//! counters credited from the cached flows. The datapath itself (AF_XDP
//! PMD threads, or the eBPF kernel datapath) is `rvs_dataplane`'s, behind
//! its [`Datapath`](rvs_dataplane::datapath::Datapath) trait.

use crate::bridge::PortType;
use crate::switch::Switch;
use crate::upcall::{lock, SharedSwitch, SwitchUpcall};
use rvs_dataplane::datapath::afxdp::AfxdpDatapath;
use rvs_dataplane::datapath::ebpf::{EbpfDatapath, EbpfOptions};
use rvs_dataplane::datapath::{Datapath as Dp, DatapathKind, PortSpec};
use rvs_dataplane::pmd::{PmdCommand, PmdConfig, PmdSnapshot, PollMode};
use rvs_dataplane::port::PortNo;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How to run the datapath.
#[derive(Clone, Debug)]
pub struct DatapathOptions {
    /// Which datapath.
    pub kind: DatapathKind,
    /// AF_XDP: PMD threads.
    pub threads: usize,
    /// How PMD threads wait.
    pub mode: PollMode,
    /// PMD cache sizes and policies.
    pub pmd: PmdConfig,
    /// AF_XDP: pin PMD thread i to CPU `cpu + i`.
    pub cpu: Option<usize>,
    /// eBPF: where its maps are pinned (in a bpffs; one is mounted on the
    /// parent when it is not one).
    pub pin_dir: Option<PathBuf>,
}

/// The devices of the switch's ports (where an earlier daemon's kernel
/// datapath may still run).
fn devices(sw: &Switch) -> Vec<String> {
    Datapath::wanted(sw).into_values().map(|p| p.name).collect()
}

/// The datapath, in step with the switch.
pub struct Datapath {
    dp: Box<dyn Dp>,
}

/// Seconds a sweep of the whole connection table takes (well under the
/// shortest timeout, 30 s: an expired connection lingers 10 s at most).
const SWEEP_TURN_S: usize = 10;
/// Slots swept per hold of the tracker's lock (~tens of microseconds).
const SWEEP_CHUNK: usize = 1024;

impl Datapath {
    /// Start the datapath, translating misses through `sw`.
    pub fn start(sw: &SharedSwitch, o: &DatapathOptions) -> std::io::Result<Datapath> {
        let inv = lock(sw).invalidations();
        let dp: Box<dyn Dp> = match o.kind {
            DatapathKind::Afxdp => Box::new(AfxdpDatapath::start(
                |_| SwitchUpcall::new(sw.clone()),
                Some(inv),
                o.threads,
                o.mode,
                o.pmd,
                o.cpu,
            )?),
            DatapathKind::Ebpf => {
                let opts = EbpfOptions {
                    adopt_from: devices(&lock(sw)),
                    pin_dir: o.pin_dir.clone(),
                    max_idle_ms: o.pmd.max_idle_ms,
                    pmd: o.pmd,
                    poll: o.mode,
                };
                Box::new(
                    EbpfDatapath::start(SwitchUpcall::new(sw.clone()), inv, &opts).map_err(|e| {
                        // SAFETY: geteuid has no preconditions and cannot fail.
                        let root = unsafe { libc::geteuid() } == 0;
                        std::io::Error::other(if root {
                            e.to_string()
                        } else {
                            format!(
                                "{e} (the ebpf datapath loads BPF programs and attaches them to devices: \
                                 it needs root; without root, --datapath afxdp runs memory ports)"
                            )
                        })
                    })?,
                )
            }
        };
        Ok(Datapath { dp })
    }

    /// Which datapath runs.
    pub fn kind(&self) -> DatapathKind {
        self.dp.kind()
    }

    /// Open devices for new ports, detach removed ones, push the option map,
    /// and ask for tunnel next hops not known yet. Returns warnings (ports
    /// whose device could not be opened stay configured, without a device,
    /// and are retried on the next sync). The switch is locked only to read
    /// what is wanted and to ask for next hops, never while devices open, so
    /// upcalls do not wait for device set-up.
    pub fn sync(&mut self, sw: &SharedSwitch) -> Vec<String> {
        self.sync_once(sw).0
    }

    /// [`Datapath::sync`] at start-up: a device another rvs still holds (the
    /// predecessor of a restart after `kill -9`, whose exit releases its
    /// AF_XDP sockets and links one RCU grace period at a time) is tried
    /// again every 2 ms for up to `patience`, each as soon as it is free,
    /// instead of on the next 1-second tick.
    pub fn sync_patiently(&mut self, sw: &SharedSwitch, patience: Duration) -> Vec<String> {
        let deadline = Instant::now() + patience;
        loop {
            let (warnings, busy) = self.sync_once(sw);
            if busy == 0 || Instant::now() >= deadline {
                return warnings;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn sync_once(&mut self, sw: &SharedSwitch) -> (Vec<String>, usize) {
        let (wanted, optmap) = {
            let g = lock(sw);
            (Self::wanted(&g), g.optmap)
        };
        let r = self.dp.sync(&wanted, optmap);
        self.resolve(sw);
        (r.warnings, r.busy)
    }

    /// Ask for tunnel next hops not known yet, on the underlay ports that have
    /// a device (each unanswered one re-asked on its backoff, see
    /// [`rvs_dataplane::vtep::Neighbor::retry_ms`]). Cheap when all are known;
    /// the daemon calls it on every turn of its loop so that a lost request
    /// is repeated within tens of milliseconds even when no packet waits.
    pub fn resolve(&self, sw: &SharedSwitch) {
        let attached = self.dp.attached();
        for (port, frame) in lock(sw).resolve_tunnels(|p| attached.contains(&p)) {
            self.dp.transmit(port, frame);
        }
    }

    /// Datapath port -> port, of every port with a device.
    fn wanted(sw: &Switch) -> BTreeMap<PortNo, PortSpec> {
        sw.bridges
            .values()
            .flat_map(|b| b.ports.values())
            .filter_map(|p| {
                let kind = match &p.ty {
                    PortType::Internal => "internal".to_string(),
                    PortType::System { kind } => kind.clone(),
                    _ => return None,
                };
                p.dp_port.map(|dp| {
                    (
                        dp,
                        PortSpec {
                            name: p.name.clone(),
                            kind,
                            options: p.options.clone(),
                        },
                    )
                })
            })
            .collect()
    }

    /// Check the kernel flows an earlier daemon left against this one's
    /// translation (after the first sync: ports are attached).
    pub fn revalidate(&self, sw: &SharedSwitch) {
        // The next hops those flows were sending to are known: the VTEPs
        // start with them (as learned, aging, refreshed by ARP), so the
        // flows re-translate the same and new ones need no ARP first.
        {
            let mut g = lock(sw);
            let now = g.now_ms();
            for (local, remote, mac) in self.dp.adopted_neighbors() {
                if let Some(v) = g.vteps.values_mut().find(|v| v.ip == local) {
                    if v.lookup(remote, now).is_none() {
                        v.set_neighbor(remote, mac, now);
                    }
                }
            }
        }
        self.dp
            .revalidate(&mut |key, _mask| crate::upcall::retranslate(sw, key));
    }

    /// Every thread's counters, ports and flows (and the kernel's).
    pub fn snapshots(&self) -> Vec<PmdSnapshot> {
        self.dp.snapshots()
    }

    /// Credit cached-flow counters to rules, and forget what removed flows
    /// came from.
    pub fn credit(&self, sw: &SharedSwitch) {
        let since = lock(sw).next_tag();
        let mut live = std::collections::HashSet::new();
        for s in self.snapshots() {
            let counters: Vec<(u64, u64, u64)> = s
                .flows
                .iter()
                .map(|f| (f.tag(), f.packets(), f.bytes()))
                .collect();
            live.extend(counters.iter().map(|c| c.0));
            lock(sw).credit(s.id, &counters);
        }
        lock(sw).forget_flows(&live, since);
    }

    /// Run a controller's packet-out (its actions already translated).
    pub fn execute(&self, e: crate::openflow::bridge_ops::Execute) {
        if !e.actions.is_empty() {
            self.dp.execute(e.in_port, e.frame, e.actions);
        }
    }

    /// Send a command to every PMD thread.
    pub fn broadcast(&self, cmd: impl Fn() -> PmdCommand) {
        self.dp.broadcast(&cmd);
    }

    /// Drop every cached flow (kernel flows too).
    pub fn flush(&self) {
        self.dp.flush();
    }

    /// Make the slow path's changes so far take effect before the next
    /// packet (called before a command's reply).
    pub fn settle(&self) {
        self.dp.settle();
    }

    /// Once-a-second housekeeping.
    pub fn tick(&mut self) {
        self.dp.tick();
        self.sweep_conntrack();
    }

    /// The connection tracker of the datapath's threads.
    pub fn conntrack(&self) -> rvs_dataplane::conntrack::SharedConntrack {
        self.dp.conntrack()
    }

    /// Remove expired connections: a full turn of the table every
    /// [`SWEEP_TURN_S`] ticks, in chunks that hold the tracker's lock
    /// briefly (a PMD waits for one chunk at most, never for the whole).
    fn sweep_conntrack(&self) {
        let ct = self.dp.conntrack();
        let slots = rvs_dataplane::conntrack::lock(&ct).capacity();
        let mut left = slots.div_ceil(SWEEP_TURN_S);
        let now = rvs_dataplane::pmd::clock_ms();
        while left > 0 {
            let n = left.min(SWEEP_CHUNK);
            rvs_dataplane::conntrack::lock(&ct).sweep(now, n);
            left -= n;
        }
    }

    /// Datapath ports with a device attached.
    pub fn attached(&self) -> BTreeSet<PortNo> {
        self.dp.attached()
    }

    /// Stop: `clean` when the daemon leaves for good (the eBPF datapath
    /// then removes its programs and pinned maps).
    pub fn stop(self, clean: bool) {
        self.dp.stop(clean);
    }
}
