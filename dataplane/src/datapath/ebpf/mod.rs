//! [`EbpfDatapath`]: the switch's flows run in the kernel. rvs's TC programs
//! (`rvs_bpf::dp`) sit at the ingress of every port's device (the egress of
//! an internal tap: what the host sends into the switch), parse each packet
//! into rvs's flow key, look it up in a megaflow table that userspace fills,
//! and run the actions there: outputs by `bpf_redirect`, VLAN and field
//! rewrites with checksum updates, Geneve encapsulation at the underlay's
//! egress and decapsulation at its ingress, keeping GSO super-frames whole.
//! A miss goes up, with the packet, to one PMD thread: it translates (the
//! same slow path as the AF_XDP datapath's), installs the flow in the kernel
//! and sends that packet itself through a send-only socket of the output
//! device (a tap for an internal port).
//!
//! With a pin directory, the maps live in a bpffs and the TC filters are
//! netlink ones: when the daemon dies, established flows keep forwarding in
//! the kernel (misses are dropped and counted); the next daemon loads its
//! programs over the same maps and replaces the filters in place.

pub mod conntrack;
pub mod encode;
pub mod table;
pub mod upcall;

use super::{Datapath, DatapathKind, PortSpec, SyncReport, KERNEL_SNAPSHOT};
use crate::cache::Invalidations;
use crate::flow::{FlowKey, FlowMask};
use crate::pmd::{FlowDump, PmdCommand, PmdConfig, PmdSnapshot, PmdStats, PmdThread, PollMode, Upcall};
use crate::port::{lock_port, share, AfPacketPort, Port, PortNo, SharedPort, TapPort};
use crate::tunnel::GeneveOptMap;
use crate::DropReason;
use rvs_bpf::dp::abi::{self, Counter, OutEntry, PortEntry};
use rvs_bpf::dp::{Hook, TcDatapath};
use rvs_bpf::BpfError;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use table::{monotonic_ms, KernelTable, Revalidated};
use upcall::{lock_table, OffloadUpcall, UpcallPort, UPCALL_PORT};

/// How the eBPF datapath runs.
#[derive(Clone, Debug)]
pub struct EbpfOptions {
    /// A directory inside a bpffs (its parent is made one with
    /// [`rvs_bpf::dp::ensure_bpffs`] when it is not) for the maps, so a
    /// restarted daemon finds them; `None`: unpinned (the TC filters still
    /// keep the programs and their maps alive until detached).
    pub pin_dir: Option<PathBuf>,
    /// Remove kernel flows idle this long (ms; 0: never).
    pub max_idle_ms: u64,
    /// The slow-path PMD's caches (for flows the kernel cannot run).
    pub pmd: PmdConfig,
    /// How the slow-path PMD waits for upcalls.
    pub poll: PollMode,
    /// Devices whose rvs programs an earlier daemon may have left running
    /// (their maps are taken over when none are pinned).
    pub adopt_from: Vec<String>,
}

/// A port's device as the kernel datapath holds it.
struct Attached {
    ifindex: u32,
    hooks: Vec<Hook>,
    tx: SharedPort,
}

/// The eBPF datapath.
pub struct EbpfDatapath {
    /// The tracker (established connections handed to the kernel).
    conntrack: crate::conntrack::SharedConntrack,
    dp: Arc<TcDatapath>,
    table: Arc<Mutex<KernelTable>>,
    pmd: PmdThread,
    attached: BTreeMap<PortNo, Attached>,
    optmap: GeneveOptMap,
    max_idle_ms: u64,
    /// The bpffs this daemon mounted for its pins (unmounted on a clean stop;
    /// one found mounted is left as it was).
    mounted: Option<PathBuf>,
}

impl EbpfDatapath {
    /// Load the programs (maps pinned under `opts.pin_dir`), and start the
    /// slow-path PMD translating misses with `upcall` and following `inv`.
    pub fn start<U: Upcall + 'static>(
        upcall: U,
        inv: Arc<Invalidations>,
        opts: &EbpfOptions,
    ) -> Result<EbpfDatapath, BpfError> {
        let mut mounted = None;
        if let Some(dir) = &opts.pin_dir {
            let fs = dir.parent().unwrap_or(dir);
            if rvs_bpf::dp::ensure_bpffs(fs)? {
                mounted = Some(fs.to_path_buf());
            }
        }
        let ifindexes: Vec<u32> = opts
            .adopt_from
            .iter()
            .filter_map(|n| nix::net::if_::if_nametoindex(n.as_str()).ok())
            .collect();
        let dp = Arc::new(TcDatapath::load(opts.pin_dir.as_deref(), &ifindexes)?);
        // An earlier daemon's flows keep forwarding while this one starts;
        // they are checked against its translation once it has its switch.
        let table = if dp.adopted() {
            let t = KernelTable::adopt(dp.clone(), inv.clone())?;
            tracing::info!(
                flows = t.len(),
                "took over the kernel datapath an earlier daemon left"
            );
            t
        } else {
            KernelTable::new(dp.clone(), inv.clone())?
        };
        let table = Arc::new(Mutex::new(table));
        let events = dp.events(64)?;
        // The thread serves misses only (established flows run in the
        // kernel): it may sleep until one, or a command, arrives.
        let poll = match opts.poll {
            PollMode::Adaptive { .. } => PollMode::SLOW_PATH,
            busy => busy,
        };
        let pmd = PmdThread::spawn(
            0,
            OffloadUpcall::new(upcall, table.clone()),
            opts.pmd,
            poll,
            Some(inv),
            None,
        )
        .map_err(|e| BpfError::Pin {
            path: PathBuf::from("(slow-path thread)"),
            source: e,
        })?;
        // The tracker: this thread runs what the kernel sends up (new and
        // closing connections, ICMP); it hands established ones to the
        // kernel and takes over those an earlier daemon handed there.
        let conntrack = crate::conntrack::SharedConntrack::default();
        {
            let mut ct = crate::conntrack::lock(&conntrack);
            let now = crate::pmd::clock_ms();
            let left = if dp.adopted() {
                conntrack::leftover(&dp)
            } else {
                Vec::new()
            };
            for (c, age_ms) in &left {
                ct.adopt(c, now.saturating_sub(*age_ms));
            }
            if !left.is_empty() {
                tracing::info!(
                    connections = left.len(),
                    "took over the kernel's established connections"
                );
            }
            ct.set_offload(Some(Box::new(conntrack::KernelCt::new(dp.clone()))));
        }
        pmd.send(PmdCommand::ShareConntrack(conntrack.clone()));
        pmd.send(PmdCommand::AddPort(
            UPCALL_PORT,
            Box::new(UpcallPort::new(events)),
        ));
        Ok(EbpfDatapath {
            conntrack,
            dp,
            table,
            pmd,
            attached: BTreeMap::new(),
            optmap: GeneveOptMap::default(),
            max_idle_ms: opts.max_idle_ms,
            mounted,
        })
    }

    /// Attach port `no`'s device.
    fn attach(&mut self, no: PortNo, spec: &PortSpec) -> std::io::Result<()> {
        let internal = matches!(spec.kind.as_str(), "internal" | "tap");
        let vtep: Option<std::net::Ipv4Addr> = spec.options.get("vtep_ip").and_then(|v| v.parse().ok());
        let (tx, hooks): (Box<dyn Port>, Vec<Hook>) = if internal {
            // The host's side of the port: what it sends leaves the tap, so
            // the datapath runs at its egress; output to it is a receive.
            let mut tap = TapPort::open(&spec.name)?;
            tap.persist()?;
            (Box::new(tap), vec![Hook::FromHost])
        } else {
            // Tunnel output goes through a VTEP's port only (tunnel routes
            // name VTEPs), so only those get the encapsulating program: every
            // program on a path costs a packet that finds it cold (ping
            // spaced 10 ms apart) microseconds, not nanoseconds.
            let hooks = if vtep.is_some() {
                vec![Hook::Ingress, Hook::Encap]
            } else {
                vec![Hook::Ingress]
            };
            (Box::new(AfPacketPort::open_tx_only(&spec.name)?), hooks)
        };
        // (after the tap is made: an internal port's device may be new)
        let ifindex = nix::net::if_::if_nametoindex(spec.name.as_str())?;
        let entry = PortEntry {
            dp_port: no,
            // The VTEP filter is for frames from a wire; a tap's egress
            // carries the host's own frames, all of them for the switch.
            flags: if vtep.is_some() && !internal {
                abi::port_flags::VTEP
            } else {
                0
            },
            vtep_ip: vtep
                .filter(|_| !internal)
                .map_or(0, |a| u32::from_ne_bytes(a.octets())),
            pad: 0,
        };
        let out = OutEntry {
            ifindex,
            flags: if internal { abi::port_flags::INGRESS } else { 0 },
        };
        let e = |e: BpfError| std::io::Error::other(e.to_string());
        self.dp.set_port(ifindex, &entry).map_err(e)?;
        self.dp.set_out(no, &out).map_err(e)?;
        for h in &hooks {
            self.dp.attach(ifindex, *h).map_err(e)?;
        }
        let tx = share(tx);
        self.pmd.send(PmdCommand::AttachPort(no, tx.clone(), false));
        self.attached.insert(no, Attached { ifindex, hooks, tx });
        Ok(())
    }

    /// Take port `no`'s device out of the datapath.
    fn detach(&mut self, no: PortNo, retire: bool) {
        let Some(a) = self.attached.remove(&no) else {
            return;
        };
        for h in &a.hooks {
            if let Err(e) = rvs_bpf::dp::detach(self.dp.prog_fd(h.prog()), a.ifindex, *h) {
                tracing::warn!(%e, "detaching");
            }
        }
        let _ = self.dp.del_port(a.ifindex);
        let _ = self.dp.set_out(no, &OutEntry::default());
        self.pmd.send(PmdCommand::RemovePort(no));
        if retire {
            lock_port(&a.tx).retire();
        }
    }

    /// The kernel's own snapshot: its flows and counters.
    fn kernel_snapshot(&self) -> PmdSnapshot {
        let now = monotonic_ms();
        let flows = {
            let mut t = lock_table(&self.table);
            if let Err(e) = t.refresh(now, 0) {
                tracing::debug!(%e, "reading kernel flow counters");
            }
            t.flows()
        };
        let c = self.dp.counters().unwrap_or([0; abi::N_COUNTERS]);
        let d = self.dp.drops().unwrap_or([0; abi::N_DROPS]);
        let t = lock_table(&self.table);
        let mut stats = PmdStats {
            megaflow_hits: c[Counter::Hit as usize],
            upcalls: c[Counter::Miss as usize]
                + c[Counter::Unparsed as usize]
                + c[Counter::InnerMiss as usize],
            flushes: t.flushes,
            flows_invalidated: t.invalidated,
            flows_expired: t.expired,
            ..PmdStats::default()
        };
        stats.rx_packets = stats.megaflow_hits + stats.upcalls;
        for r in DropReason::ALL {
            stats.drops.add(*r, d.get(*r as usize).copied().unwrap_or(0));
        }
        stats
            .drops
            .add(DropReason::UpcallLost, c[Counter::UpcallLost as usize]);
        stats.drops.add(DropReason::NoPort, c[Counter::NoPort as usize]);
        stats
            .drops
            .add(DropReason::ActionMismatch, c[Counter::ActionFailed as usize]);
        stats
            .drops
            .add(DropReason::TxError, c[Counter::EncapFailed as usize]);
        PmdSnapshot {
            id: KERNEL_SNAPSHOT,
            stats,
            flows: flows.into_iter().map(|f| FlowDump::new(f, now)).collect(),
            ..PmdSnapshot::default()
        }
    }

    /// The kernel's counters by name (for `pmd-stats` and metrics).
    pub fn kernel_counters(&self) -> Vec<(&'static str, u64)> {
        let c = self.dp.counters().unwrap_or([0; abi::N_COUNTERS]);
        Counter::ALL.iter().map(|k| (k.name(), c[*k as usize])).collect()
    }
}

impl Datapath for EbpfDatapath {
    fn kind(&self) -> DatapathKind {
        DatapathKind::Ebpf
    }

    fn conntrack(&self) -> crate::conntrack::SharedConntrack {
        self.conntrack.clone()
    }

    fn sync(&mut self, wanted: &BTreeMap<PortNo, PortSpec>, optmap: GeneveOptMap) -> SyncReport {
        let mut report = SyncReport::default();
        let gone = crate::datapath::ports_gone(&self.attached, wanted);
        for no in gone {
            self.detach(no, true);
        }
        for (no, spec) in wanted {
            if self.attached.contains_key(no) || spec.kind == "memory" {
                continue;
            }
            if let Err(e) = self.attach(*no, spec) {
                report
                    .warnings
                    .push(format!("port {}: no device yet: {e}", spec.name));
            }
        }
        if optmap != self.optmap {
            self.optmap = optmap;
            let mut opt = [abi::OptMap::default(); abi::OPT_SLOTS];
            for m in optmap.iter() {
                opt[m.slot as usize] = abi::OptMap {
                    class: m.class,
                    ty: m.typ,
                    slot1: m.slot + 1,
                };
            }
            if let Err(e) = lock_table(&self.table).set_optmap(opt) {
                report.warnings.push(format!("Geneve option map: {e}"));
            }
            self.pmd.send(PmdCommand::SetOptMap(optmap));
        }
        report
    }

    fn attached(&self) -> BTreeSet<PortNo> {
        self.attached.keys().copied().collect()
    }

    fn transmit(&self, port: PortNo, frame: Vec<u8>) {
        self.pmd.send(PmdCommand::Transmit(port, frame));
    }

    fn execute(&self, in_port: PortNo, frame: Vec<u8>, actions: Vec<crate::action::Action>) {
        self.pmd.send(PmdCommand::Execute {
            in_port,
            frame,
            actions,
        });
    }

    fn snapshots(&self) -> Vec<PmdSnapshot> {
        let mut s: Vec<PmdSnapshot> = self.pmd.snapshot().into_iter().collect();
        s.push(self.kernel_snapshot());
        s
    }

    fn broadcast(&self, cmd: &dyn Fn() -> PmdCommand) {
        self.pmd.send(cmd());
    }

    fn settle(&self) {
        if let Err(e) = lock_table(&self.table).apply() {
            tracing::warn!(%e, "applying changes to the kernel flows");
        }
    }

    fn adopted_neighbors(&self) -> Vec<(std::net::Ipv4Addr, std::net::Ipv4Addr, [u8; 6])> {
        lock_table(&self.table).adopted_neighbors()
    }

    fn revalidate(&self, translate: &mut dyn FnMut(&FlowKey, &FlowMask) -> Option<Revalidated>) {
        let (kept, deleted) = lock_table(&self.table).revalidate_adopted(translate);
        if kept + deleted > 0 {
            tracing::info!(kept, deleted, "revalidated the kernel flows taken over");
        }
    }

    fn tick(&mut self) {
        let mut t = lock_table(&self.table);
        if let Err(e) = t
            .apply()
            .and_then(|_| t.refresh(monotonic_ms(), self.max_idle_ms))
        {
            tracing::warn!(%e, "kernel flow housekeeping");
        }
    }

    fn flush(&self) {
        if let Err(e) = lock_table(&self.table).flush() {
            tracing::warn!(%e, "flushing kernel flows");
        }
        self.pmd.send(PmdCommand::FlushCaches);
    }

    fn stop(mut self: Box<Self>, clean: bool) {
        if clean {
            // Leaving for good: nothing of ours stays in the kernel.
            let ports: Vec<PortNo> = self.attached.keys().copied().collect();
            for no in ports {
                self.detach(no, false);
            }
            if let Err(e) = self.dp.unpin() {
                tracing::warn!(%e, "unpinning the datapath's maps");
            }
            if let Some(fs) = &self.mounted {
                if let Err(e) = rvs_bpf::dp::unmount_bpffs(fs) {
                    tracing::warn!(%e, "unmounting the bpffs");
                }
            }
        }
        let EbpfDatapath { pmd, .. } = *self;
        pmd.stop();
    }
}

#[cfg(test)]
mod tests;
