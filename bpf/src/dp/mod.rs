//! The eBPF datapath's loader: [`TcDatapath`] loads `rvs_dp.bpf.c` (maps
//! pinned in a bpffs directory when asked, and reused from there by the next
//! daemon, so a restart adopts what a killed one left running), attaches its
//! programs at TC hooks of interfaces (netlink filters: they outlive the
//! process), and reads and writes its maps as the typed entries of [`abi`].
//!
//! This crate knows no flow semantics: keys are words, actions are
//! [`abi::Action`]s. `rvs_dataplane` encodes rvs's flows into them.

pub mod abi;
mod events;
mod pin;
mod tc;

pub use events::{EventReader, RawEvent};
pub use pin::{ensure_bpffs, unmount_bpffs, BPFFS_MAGIC};
pub use tc::{detach, Hook};

use crate::error::BpfError;
use abi::{
    Config, CtEntry, CtKey, Encap, Flow, FlowStats, LookupKey, OutEntry, PortEntry, KEY_WORDS, N_COUNTERS,
};
use bytemuck::{bytes_of, pod_read_unaligned, Pod, Zeroable};
use libbpf_rs::{MapCore, MapFlags, MapHandle, Object, ObjectBuilder, ProgramInput};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The compiled datapath object, embedded at build time.
const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rvs_dp.bpf.o"));

/// Names of the maps (pinned under these names).
///
/// `recirc_progs` (the program a recirculation continues in) must be pinned
/// too: the kernel empties a program array when the last process holding
/// it closes it, and recirculation would stop with the daemon. A reused one
/// gets this object's program at load.
const MAPS: [&str; 14] = [
    "flows",
    "cts",
    "recirc_progs",
    "drops",
    "masks",
    "flow_stats",
    "ports",
    "outs",
    "encaps",
    "config",
    "counters",
    "events",
    "scratch_map",
    "encap_scratch",
];

/// The programs of the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prog {
    /// TC ingress of a port's device, and TC egress of an internal tap
    /// (the host sends into the switch there).
    Ingress,
    /// TC egress of an underlay: Geneve encapsulation.
    Encap,
    /// Tests: the flow key of a packet.
    Extract,
}

impl Prog {
    /// Every program.
    pub const ALL: [Prog; 3] = [Prog::Ingress, Prog::Encap, Prog::Extract];

    fn name(self) -> &'static str {
        match self {
            Prog::Ingress => "rvs_ingress",
            Prog::Encap => "rvs_encap",
            Prog::Extract => "rvs_extract",
        }
    }
}

/// The loaded datapath object.
pub struct TcDatapath {
    object: Object,
    maps: Vec<MapHandle>,
    /// The programs' fds, in [`Prog::ALL`] order (duplicates the object's,
    /// so a borrow of one can be handed out).
    progs: Vec<OwnedFd>,
    pin_dir: Option<PathBuf>,
    adopted: bool,
}

impl std::fmt::Debug for TcDatapath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcDatapath")
            .field("pin_dir", &self.pin_dir)
            .field("adopted", &self.adopted)
            .finish()
    }
}

/// `o` itself, unless it holds adopted maps another ABI wrote.
fn same_abi(o: Object, adopted: bool) -> Result<Object, BpfError> {
    if !adopted {
        return Ok(o);
    }
    let m = o
        .maps()
        .find(|m| m.name() == "config")
        .ok_or_else(|| BpfError::Load(std::io::Error::other("map config missing").into()))?;
    let c: Option<Config> = m
        .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(map_err("config"))?
        .map(|v| pod_read_unaligned(&v[..std::mem::size_of::<Config>()]));
    match c {
        Some(c) if c.abi != abi::ABI => Err(BpfError::Load(
            std::io::Error::other(format!("maps of ABI {}, this is ABI {}", c.abi, abi::ABI)).into(),
        )),
        _ => Ok(o),
    }
}

/// Open and load the object, reusing `running`'s maps and the maps pinned
/// in `pin_dir` (pinning the others there).
fn open_object(pin_dir: Option<&Path>, running: &[(String, MapHandle)]) -> Result<Object, BpfError> {
    let mut open = ObjectBuilder::default()
        .open_memory(OBJECT)
        .map_err(BpfError::Load)?;
    for mut m in open.maps_mut() {
        let name = m.name().to_string_lossy().into_owned();
        if !MAPS.contains(&name.as_str()) {
            continue;
        }
        if let Some((_, h)) = running.iter().find(|(n, _)| *n == name) {
            m.reuse_fd(h.as_fd()).map_err(BpfError::Load)?;
        }
        if let Some(dir) = pin_dir {
            // libbpf reuses a pinned map of the same shape, and pins the
            // map (new or reused) otherwise.
            m.set_pin_path(dir.join(&name)).map_err(BpfError::Load)?;
        }
    }
    open.load().map_err(BpfError::Load)
}

fn map_err(map: &'static str) -> impl Fn(libbpf_rs::Error) -> BpfError {
    move |source| BpfError::Map { map, source }
}

/// The maps of rvs's datapath program attached at a TC hook of one of
/// `ifindexes` (a daemon that died left it running), by name.
fn running_maps(ifindexes: &[u32]) -> Vec<(String, MapHandle)> {
    use libbpf_rs::query::{ProgInfoIter, ProgInfoQueryOptions};
    let ids: Vec<u32> = ifindexes
        .iter()
        .flat_map(|i| [Hook::Ingress, Hook::FromHost].map(|h| tc::attached_prog_id(*i, h)))
        .flatten()
        .collect();
    let Some(id) = ids.first() else {
        return Vec::new();
    };
    let opts = ProgInfoQueryOptions::default().include_map_ids(true);
    let Some(info) = ProgInfoIter::with_query_opts(opts).find(|p| p.id == *id) else {
        return Vec::new();
    };
    info.map_ids
        .iter()
        .filter_map(|m| MapHandle::from_map_id(*m).ok())
        .filter_map(|h| {
            let n = h.name().to_string_lossy().into_owned();
            MAPS.contains(&n.as_str()).then_some((n, h))
        })
        .collect()
}

/// libbpf's messages go to the log rather than stderr. Creating a clsact
/// qdisc that is there already is not a problem (libbpf takes it and the
/// kernel says so): that one is debug.
fn route_libbpf_logs() {
    fn print(level: libbpf_rs::PrintLevel, msg: String) {
        let msg = msg.trim_end();
        match level {
            libbpf_rs::PrintLevel::Warn if !msg.contains("Exclusivity flag on") => {
                tracing::warn!("libbpf: {msg}")
            }
            libbpf_rs::PrintLevel::Warn | libbpf_rs::PrintLevel::Info => tracing::debug!("libbpf: {msg}"),
            libbpf_rs::PrintLevel::Debug => tracing::trace!("libbpf: {msg}"),
        }
    }
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, print)));
}

impl TcDatapath {
    /// Load the object. With `pin_dir` (a directory in a bpffs), every map is
    /// pinned there by name, and maps already pinned there by an earlier
    /// daemon are reused with what they hold. When none are pinned there (an
    /// earlier daemon's bpffs went with its mount namespace, as under `ip
    /// netns exec`), the maps of rvs's program still attached at the TC
    /// ingress (or host egress) of one of `adopt_from`'s interfaces are
    /// reused instead. Either way [`TcDatapath::adopted`] says so.
    pub fn load(pin_dir: Option<&Path>, adopt_from: &[u32]) -> Result<TcDatapath, BpfError> {
        route_libbpf_logs();
        let mut adopted = false;
        if let Some(dir) = pin_dir {
            std::fs::create_dir_all(dir).map_err(|e| BpfError::Pin {
                path: dir.to_path_buf(),
                source: e,
            })?;
            adopted = dir.join("flows").exists();
        }
        let running = if adopted {
            Vec::new()
        } else {
            running_maps(adopt_from)
        };
        adopted |= !running.is_empty();
        let object = match open_object(pin_dir, &running).and_then(|o| same_abi(o, adopted)) {
            Ok(o) => o,
            Err(e) if adopted => {
                // Maps of another shape: an earlier rvs version's datapath.
                // It is replaced (its flows with it), not adopted.
                tracing::warn!(%e, "the earlier datapath's maps do not fit this version: starting afresh");
                if let Some(dir) = pin_dir {
                    for name in MAPS {
                        let _ = std::fs::remove_file(dir.join(name));
                    }
                }
                adopted = false;
                open_object(pin_dir, &[])?
            }
            Err(e) => return Err(e),
        };
        let mut maps = Vec::new();
        for name in MAPS {
            let m = object.maps().find(|m| m.name() == name).ok_or_else(|| {
                BpfError::Load(libbpf_rs::Error::from(std::io::Error::other(format!(
                    "map {name} missing"
                ))))
            })?;
            maps.push(MapHandle::try_from(&m).map_err(map_err(name))?);
        }
        let mut progs = Vec::new();
        for p in Prog::ALL {
            let prog = object.progs().find(|x| x.name() == p.name()).ok_or_else(|| {
                BpfError::Load(libbpf_rs::Error::from(std::io::Error::other(format!(
                    "program {} missing",
                    p.name()
                ))))
            })?;
            progs.push(
                prog.as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| BpfError::Load(e.into()))?,
            );
        }
        Ok(TcDatapath {
            object,
            maps,
            progs,
            pin_dir: pin_dir.map(Path::to_path_buf),
            adopted,
        })
    }

    /// True when the maps were an earlier daemon's (pinned), with its flows.
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    fn map(&self, name: &'static str) -> &MapHandle {
        let i = MAPS.iter().position(|n| *n == name).expect("a known map");
        &self.maps[i]
    }

    /// A program's fd (to attach it).
    pub fn prog_fd(&self, prog: Prog) -> BorrowedFd<'_> {
        let i = Prog::ALL
            .iter()
            .position(|p| *p == prog)
            .expect("every program is loaded");
        self.progs[i].as_fd()
    }

    fn get<T: Pod>(&self, map: &'static str, key: &[u8]) -> Result<Option<T>, BpfError> {
        Ok(self
            .map(map)
            .lookup(key, MapFlags::ANY)
            .map_err(map_err(map))?
            .map(|v| pod_read_unaligned(&v[..std::mem::size_of::<T>()])))
    }

    /// Remove `key` from `map`; false when it was not there.
    fn delete(&self, map: &'static str, key: &[u8]) -> Result<bool, BpfError> {
        match self.map(map).delete(key) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(BpfError::Map { map, source }),
        }
    }

    fn put<T: Pod>(&self, map: &'static str, key: &[u8], v: &T) -> Result<(), BpfError> {
        self.map(map)
            .update(key, bytes_of(v), MapFlags::ANY)
            .map_err(map_err(map))
    }

    /// The configuration (generation, masks in use, option map, flags).
    pub fn config(&self) -> Result<Config, BpfError> {
        Ok(self.get("config", &0u32.to_ne_bytes())?.unwrap_or_default())
    }

    /// Replace the configuration (stamped with this build's [`abi::ABI`]).
    pub fn set_config(&self, c: &Config) -> Result<(), BpfError> {
        let c = Config { abi: abi::ABI, ..*c };
        self.put("config", &0u32.to_ne_bytes(), &c)
    }

    /// Set mask slot `slot`.
    pub fn set_mask(&self, slot: u32, w: &[u64; KEY_WORDS]) -> Result<(), BpfError> {
        self.put("masks", &slot.to_ne_bytes(), w)
    }

    /// The mask in slot `slot`.
    pub fn mask(&self, slot: u32) -> Result<[u64; KEY_WORDS], BpfError> {
        Ok(self.get("masks", &slot.to_ne_bytes())?.unwrap_or([0; KEY_WORDS]))
    }

    /// Add or replace a flow.
    pub fn insert_flow(&self, key: &LookupKey, flow: &Flow) -> Result<(), BpfError> {
        self.put("flows", bytes_of(key), flow)
    }

    /// Remove a flow; false when there was none.
    pub fn delete_flow(&self, key: &LookupKey) -> Result<bool, BpfError> {
        self.delete("flows", bytes_of(key))
    }

    /// A flow.
    pub fn flow(&self, key: &LookupKey) -> Result<Option<Flow>, BpfError> {
        self.get("flows", bytes_of(key))
    }

    /// Add or replace a connection entry.
    pub fn set_ct(&self, key: &CtKey, e: &CtEntry) -> Result<(), BpfError> {
        self.put("cts", bytes_of(key), e)
    }

    /// Remove a connection entry; false when there was none.
    pub fn delete_ct(&self, key: &CtKey) -> Result<bool, BpfError> {
        self.delete("cts", bytes_of(key))
    }

    /// A connection entry.
    pub fn ct(&self, key: &CtKey) -> Result<Option<CtEntry>, BpfError> {
        self.get("cts", bytes_of(key))
    }

    /// Every connection entry (an earlier daemon's, after adoption).
    pub fn cts(&self) -> Vec<(CtKey, CtEntry)> {
        let m = self.map("cts");
        m.keys()
            .filter_map(|k| {
                let v = m.lookup(&k, MapFlags::ANY).ok().flatten()?;
                Some((
                    pod_read_unaligned(&k[..std::mem::size_of::<CtKey>()]),
                    pod_read_unaligned(&v[..std::mem::size_of::<CtEntry>()]),
                ))
            })
            .collect()
    }

    /// The keys of every flow (an earlier daemon's too, after adoption).
    pub fn flow_keys(&self) -> Vec<LookupKey> {
        self.map("flows")
            .keys()
            .map(|k| pod_read_unaligned(&k[..std::mem::size_of::<LookupKey>()]))
            .collect()
    }

    /// A flow's counters, summed over CPUs (`used_ns`: the latest).
    pub fn flow_stats(&self, id: u32) -> Result<FlowStats, BpfError> {
        let per_cpu = self
            .map("flow_stats")
            .lookup_percpu(&id.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_err("flow_stats"))?
            .unwrap_or_default();
        let mut s = FlowStats::zeroed();
        for v in per_cpu {
            let c: FlowStats = pod_read_unaligned(&v[..std::mem::size_of::<FlowStats>()]);
            s.packets += c.packets;
            s.bytes += c.bytes;
            s.used_ns = s.used_ns.max(c.used_ns);
        }
        Ok(s)
    }

    /// Zero a flow's counters (a new flow in a reused slot).
    pub fn clear_flow_stats(&self, id: u32) -> Result<(), BpfError> {
        let cpus = libbpf_rs::num_possible_cpus().map_err(map_err("flow_stats"))?;
        let zero = vec![vec![0u8; std::mem::size_of::<FlowStats>()]; cpus];
        self.map("flow_stats")
            .update_percpu(&id.to_ne_bytes(), &zero, MapFlags::ANY)
            .map_err(map_err("flow_stats"))
    }

    /// Make interface `ifindex` switch port `p`.
    pub fn set_port(&self, ifindex: u32, p: &PortEntry) -> Result<(), BpfError> {
        self.put("ports", &ifindex.to_ne_bytes(), p)
    }

    /// Interface `ifindex` is no switch port any more.
    pub fn del_port(&self, ifindex: u32) -> Result<(), BpfError> {
        match self.map("ports").delete(&ifindex.to_ne_bytes()) {
            Err(e) if e.kind() != libbpf_rs::ErrorKind::NotFound => Err(BpfError::Map {
                map: "ports",
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// The interfaces that are switch ports.
    pub fn ports(&self) -> Vec<(u32, PortEntry)> {
        self.map("ports")
            .keys()
            .filter_map(|k| {
                let ifindex = u32::from_ne_bytes(k.get(..4)?.try_into().ok()?);
                Some((ifindex, self.get("ports", &k).ok()??))
            })
            .collect()
    }

    /// Where output to datapath port `dp` goes.
    pub fn set_out(&self, dp: u32, o: &OutEntry) -> Result<(), BpfError> {
        self.put("outs", &dp.to_ne_bytes(), o)
    }

    /// Encapsulation template `id`.
    pub fn set_encap(&self, id: u32, e: &Encap) -> Result<(), BpfError> {
        self.put("encaps", &id.to_ne_bytes(), e)
    }

    /// Encapsulation template `id`, as it is.
    pub fn encap(&self, id: u32) -> Result<Encap, BpfError> {
        Ok(self.get("encaps", &id.to_ne_bytes())?.unwrap_or_default())
    }

    /// The kernel's counters, summed over CPUs.
    pub fn counters(&self) -> Result<[u64; N_COUNTERS], BpfError> {
        let mut out = [0u64; N_COUNTERS];
        self.sum_percpu("counters", &mut out)?;
        Ok(out)
    }

    /// Drops the flows' actions asked for, by drop reason number, summed over CPUs.
    pub fn drops(&self) -> Result<[u64; abi::N_DROPS], BpfError> {
        let mut out = [0u64; abi::N_DROPS];
        self.sum_percpu("drops", &mut out)?;
        Ok(out)
    }

    fn sum_percpu(&self, map: &'static str, out: &mut [u64]) -> Result<(), BpfError> {
        for (i, o) in out.iter_mut().enumerate() {
            let per_cpu = self
                .map(map)
                .lookup_percpu(&(i as u32).to_ne_bytes(), MapFlags::ANY)
                .map_err(map_err(map))?
                .unwrap_or_default();
            *o = per_cpu
                .iter()
                .map(|v| {
                    v.get(..8)
                        .map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
                })
                .sum();
        }
        Ok(())
    }

    /// A reader of the datapath's events (upcalls; outputs in test mode).
    pub fn events(&self, pages: usize) -> Result<EventReader, BpfError> {
        EventReader::new(self.map("events"), pages)
    }

    /// Attach a program at a TC hook of `ifindex` (replacing rvs's earlier
    /// one there, without a gap).
    pub fn attach(&self, ifindex: u32, hook: Hook) -> Result<(), BpfError> {
        tc::attach(self.prog_fd(hook.prog()), ifindex, hook)
    }

    /// Run a program on `frame` (BPF_PROG_TEST_RUN). `ifindex`: the device
    /// the skb claims to come from (0: loopback). Returns the program's
    /// verdict and the frame as the program left it.
    pub fn test_run(
        &self,
        prog: Prog,
        frame: &[u8],
        ifindex: u32,
        mark: u32,
    ) -> Result<(u32, Vec<u8>), BpfError> {
        self.test_run_repeat(prog, frame, ifindex, mark, 1)
            .map(|(v, f, _)| (v, f))
    }

    /// [`TcDatapath::test_run`] `repeat` times in the kernel (benchmarks);
    /// also the mean time of one run, as the kernel measured it.
    pub fn test_run_repeat(
        &self,
        prog: Prog,
        frame: &[u8],
        ifindex: u32,
        mark: u32,
        repeat: u32,
    ) -> Result<(u32, Vec<u8>, std::time::Duration), BpfError> {
        let p = self
            .object
            .progs_mut()
            .find(|p| p.name() == prog.name())
            .ok_or_else(|| {
                BpfError::Load(libbpf_rs::Error::from(std::io::Error::other("program missing")))
            })?;
        // __sk_buff as the test run takes it: ifindex (offset 40) and mark (8).
        let mut ctx = [0u8; SKB_CTX_LEN];
        ctx[8..12].copy_from_slice(&mark.to_ne_bytes());
        ctx[40..44].copy_from_slice(&ifindex.to_ne_bytes());
        let mut out = vec![0u8; frame.len() + 512];
        let input = ProgramInput {
            data_in: Some(frame),
            data_out: Some(&mut out),
            context_in: Some(&mut ctx),
            repeat,
            ..ProgramInput::default()
        };
        let r = p.test_run(input).map_err(|e| BpfError::TestRun(prog.name(), e))?;
        let (verdict, duration) = (r.return_value, r.duration);
        let len = r.data.map_or(0, |d| d.len());
        out.truncate(len);
        Ok((verdict, out, duration))
    }

    /// The flow key the datapath's parser gives `frame` (tests), and whether
    /// it left the frame to userspace.
    pub fn test_extract(&self, frame: &[u8]) -> Result<(bool, [u64; KEY_WORDS]), BpfError> {
        self.test_run(Prog::Extract, frame, 0, 0)?;
        #[derive(Clone, Copy, Pod, Zeroable)]
        #[repr(C)]
        struct TestKey {
            rc: u32,
            pad: u32,
            key: [u64; KEY_WORDS],
        }
        let t: TestKey = self.get_test_key()?;
        Ok((t.rc != 0, t.key))
    }

    fn get_test_key<T: Pod>(&self) -> Result<T, BpfError> {
        let m = self
            .object
            .maps()
            .find(|m| m.name() == "test_key")
            .ok_or_else(|| {
                BpfError::Load(libbpf_rs::Error::from(std::io::Error::other(
                    "map test_key missing",
                )))
            })?;
        let v = m
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_err("test_key"))?
            .unwrap_or_default();
        Ok(pod_read_unaligned(&v[..std::mem::size_of::<T>()]))
    }

    /// Remove the pinned maps (the daemon leaves for good, or the bridge
    /// goes): the kernel frees them with the last program that uses them.
    pub fn unpin(&self) -> Result<(), BpfError> {
        let Some(dir) = &self.pin_dir else {
            return Ok(());
        };
        for name in MAPS {
            let p = dir.join(name);
            if p.exists() {
                std::fs::remove_file(&p).map_err(|e| BpfError::Pin {
                    path: p.clone(),
                    source: e,
                })?;
            }
        }
        let _ = std::fs::remove_dir(dir);
        Ok(())
    }
}

/// Bytes of `struct __sk_buff` a test run takes as context (up to and
/// including `hwtstamp`).
const SKB_CTX_LEN: usize = 192;
