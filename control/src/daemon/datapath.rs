//! [`Datapath`]: the PMD threads and the devices behind the switch's ports,
//! kept in step with the switch's configuration. Each device is polled by one
//! PMD (round-robin) and can be sent to by all of them.

use super::devices::{open_device, Programs};
use crate::bridge::PortType;
use crate::switch::Switch;
use crate::upcall::{lock, SharedSwitch, SwitchUpcall};
use rvs_dataplane::pmd::{PmdCommand, PmdConfig, PmdSnapshot, PmdThread, PollMode};
use rvs_dataplane::port::{lock_port, share, PortNo, SharedPort};
use rvs_dataplane::tunnel::GeneveOptMap;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// PMD threads and attached devices.
pub struct Datapath {
    pmds: Vec<PmdThread>,
    attached: BTreeMap<PortNo, SharedPort>,
    progs: Programs,
    next_pmd: usize,
    optmap: GeneveOptMap,
}

impl Datapath {
    /// Start `threads` PMD threads translating misses through `sw`.
    pub fn start(
        sw: &SharedSwitch,
        threads: usize,
        mode: PollMode,
        config: PmdConfig,
        cpu: Option<usize>,
    ) -> std::io::Result<Datapath> {
        let inv = lock(sw).invalidations();
        let mut pmds = Vec::new();
        for i in 0..threads.max(1) {
            let up = SwitchUpcall::new(sw.clone());
            pmds.push(PmdThread::spawn(
                i,
                up,
                config,
                mode,
                Some(inv.clone()),
                cpu.map(|c| c + i),
            )?);
        }
        Ok(Datapath {
            pmds,
            attached: BTreeMap::new(),
            progs: Programs::new(),
            next_pmd: 0,
            optmap: GeneveOptMap::default(),
        })
    }

    /// Open devices for new ports, detach removed ones, push the option map,
    /// and ask for tunnel next hops not known yet. Returns warnings (ports
    /// whose device could not be opened stay configured, without a device,
    /// and are retried on the next sync). The switch is locked only to read
    /// what is wanted and to ask for next hops, never while devices open, so
    /// upcalls of the PMDs do not wait for device set-up.
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

    /// One pass; also how many devices were busy.
    fn sync_once(&mut self, sw: &SharedSwitch) -> (Vec<String>, usize) {
        let mut warnings = Vec::new();
        let mut busy = 0;
        let (wanted, optmap) = {
            let g = lock(sw);
            (Self::wanted(&g), g.optmap)
        };
        let gone: Vec<PortNo> = self
            .attached
            .keys()
            .filter(|p| !wanted.contains_key(p))
            .copied()
            .collect();
        for dp in gone {
            for p in &self.pmds {
                p.send(PmdCommand::RemovePort(dp));
            }
            if let Some(dev) = self.attached.remove(&dp) {
                // Deleted from the switch: nothing of it may outlive us.
                lock_port(&dev).retire();
            }
        }
        for (dp, (name, kind, opts)) in &wanted {
            if self.attached.contains_key(dp) || kind == "memory" {
                continue;
            }
            match open_device(kind, name, opts, &mut self.progs, true) {
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
                    busy += usize::from(e.kind() == std::io::ErrorKind::ResourceBusy);
                    warnings.push(format!("port {name}: no device yet: {e}"))
                }
            }
        }
        if optmap != self.optmap {
            self.optmap = optmap;
            for p in &self.pmds {
                p.send(PmdCommand::SetOptMap(self.optmap));
            }
        }
        self.resolve(sw);
        (warnings, busy)
    }

    /// Ask for tunnel next hops not known yet, on the underlay ports that have
    /// a device (each unanswered one re-asked on its backoff, see
    /// [`rvs_dataplane::vtep::Neighbor::retry_ms`]). Cheap when all are known;
    /// the daemon calls it on every turn of its loop so that a lost request
    /// is repeated within tens of milliseconds even when no packet waits.
    pub fn resolve(&self, sw: &SharedSwitch) {
        let attached = &self.attached;
        for (port, frame) in lock(sw).resolve_tunnels(|p| attached.contains_key(&p)) {
            self.pmds[0].send(PmdCommand::Transmit(port, frame));
        }
    }

    /// Datapath port -> (name, device kind, options) of every port with a device.
    fn wanted(sw: &Switch) -> BTreeMap<PortNo, (String, String, BTreeMap<String, String>)> {
        sw.bridges
            .values()
            .flat_map(|b| b.ports.values())
            .filter_map(|p| {
                let kind = match &p.ty {
                    PortType::Internal => "internal".to_string(),
                    PortType::System { kind } => kind.clone(),
                    _ => return None,
                };
                p.dp_port
                    .map(|dp| (dp, (p.name.clone(), kind, p.options.clone())))
            })
            .collect()
    }

    /// Every PMD's counters, ports and flows.
    pub fn snapshots(&self) -> Vec<PmdSnapshot> {
        self.pmds.iter().filter_map(|p| p.snapshot()).collect()
    }

    /// Credit cached-flow counters to rules.
    pub fn credit(&self, sw: &SharedSwitch) {
        for s in self.snapshots() {
            let counters: Vec<(u64, u64, u64)> = s
                .flows
                .iter()
                .map(|f| (f.tag(), f.packets(), f.bytes()))
                .collect();
            lock(sw).credit(s.id, &counters);
        }
    }

    /// Send a command to every PMD.
    pub fn broadcast(&self, cmd: impl Fn() -> PmdCommand) {
        for p in &self.pmds {
            p.send(cmd());
        }
    }

    /// Datapath ports with a device attached.
    pub fn attached(&self) -> BTreeSet<PortNo> {
        self.attached.keys().copied().collect()
    }

    /// Stop every PMD thread (devices close, XDP programs detach).
    pub fn stop(self) {
        for p in self.pmds {
            p.stop();
        }
    }
}
