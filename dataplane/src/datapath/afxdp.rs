//! [`AfxdpDatapath`]: PMD threads and the devices behind the switch's
//! ports (AF_XDP, AF_PACKET, tap). Each device is polled by one PMD
//! (round-robin) and can be sent to by all of them; every PMD caches flows
//! (EMC, megaflows) and runs their actions in userspace.

use super::devices::{open_device, Programs};
use super::{Datapath, DatapathKind, PortSpec, SyncReport};
use crate::cache::Invalidations;
use crate::conntrack::SharedConntrack;
use crate::pmd::{PmdCommand, PmdConfig, PmdSnapshot, PmdThread, PollMode, Upcall};
use crate::port::{lock_port, share, PortNo, SharedPort};
use crate::tunnel::GeneveOptMap;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// PMD threads and attached devices.
pub struct AfxdpDatapath {
    pmds: Vec<PmdThread>,
    attached: BTreeMap<PortNo, SharedPort>,
    progs: Programs,
    next_pmd: usize,
    optmap: GeneveOptMap,
    conntrack: SharedConntrack,
}

impl AfxdpDatapath {
    /// Start `threads` PMD threads, thread `i` translating misses with
    /// `upcall(i)` and following `inv`; `cpu` pins thread `i` to `cpu + i`.
    pub fn start<U: Upcall + 'static>(
        upcall: impl Fn(usize) -> U,
        inv: Option<Arc<Invalidations>>,
        threads: usize,
        mode: PollMode,
        config: PmdConfig,
        cpu: Option<usize>,
    ) -> std::io::Result<AfxdpDatapath> {
        let mut pmds = Vec::new();
        let conntrack = SharedConntrack::default();
        for i in 0..threads.max(1) {
            let p = PmdThread::spawn(i, upcall(i), config, mode, inv.clone(), cpu.map(|c| c + i))?;
            // Before any port: no packet sees another tracker.
            p.send(PmdCommand::ShareConntrack(conntrack.clone()));
            pmds.push(p);
        }
        Ok(AfxdpDatapath {
            pmds,
            attached: BTreeMap::new(),
            progs: Programs::new(),
            next_pmd: 0,
            optmap: GeneveOptMap::default(),
            conntrack,
        })
    }
}

impl Datapath for AfxdpDatapath {
    fn kind(&self) -> DatapathKind {
        DatapathKind::Afxdp
    }

    fn conntrack(&self) -> SharedConntrack {
        self.conntrack.clone()
    }

    fn sync(&mut self, wanted: &BTreeMap<PortNo, PortSpec>, optmap: GeneveOptMap) -> SyncReport {
        let mut report = SyncReport::default();
        let gone = crate::datapath::ports_gone(&self.attached, wanted);
        for dp in gone {
            for p in &self.pmds {
                p.send(PmdCommand::RemovePort(dp));
            }
            if let Some(dev) = self.attached.remove(&dp) {
                // Deleted from the switch: nothing of it may outlive us.
                lock_port(&dev).retire();
            }
        }
        for (dp, spec) in wanted {
            if self.attached.contains_key(dp) || spec.kind == "memory" {
                continue;
            }
            match open_device(&spec.kind, &spec.name, &spec.options, &mut self.progs, true) {
                Ok(dev) => {
                    let shared = share(dev);
                    let owner = self.next_pmd % self.pmds.len();
                    self.next_pmd += 1;
                    for (i, p) in self.pmds.iter().enumerate() {
                        p.send(PmdCommand::AttachPort(*dp, shared.clone(), i == owner));
                    }
                    self.attached.insert(*dp, shared);
                }
                Err(e) => {
                    report.busy += usize::from(e.kind() == std::io::ErrorKind::ResourceBusy);
                    report
                        .warnings
                        .push(format!("port {}: no device yet: {e}", spec.name))
                }
            }
        }
        if optmap != self.optmap {
            self.optmap = optmap;
            for p in &self.pmds {
                p.send(PmdCommand::SetOptMap(self.optmap));
            }
        }
        report
    }

    fn attached(&self) -> BTreeSet<PortNo> {
        self.attached.keys().copied().collect()
    }

    fn transmit(&self, port: PortNo, frame: Vec<u8>) {
        self.pmds[0].send(PmdCommand::Transmit(port, frame));
    }

    fn execute(&self, in_port: PortNo, frame: Vec<u8>, actions: Vec<crate::action::Action>) {
        // PMD 0 can send to every port (the others' are attached send-only).
        self.pmds[0].send(PmdCommand::Execute {
            in_port,
            frame,
            actions,
        });
    }

    fn snapshots(&self) -> Vec<PmdSnapshot> {
        self.pmds.iter().filter_map(|p| p.snapshot()).collect()
    }

    fn broadcast(&self, cmd: &dyn Fn() -> PmdCommand) {
        for p in &self.pmds {
            p.send(cmd());
        }
    }

    fn stop(self: Box<Self>, _clean: bool) {
        // Devices close and XDP programs detach with the threads.
        for p in self.pmds {
            p.stop();
        }
    }
}
