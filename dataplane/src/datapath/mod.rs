//! Datapaths: what runs the flows the slow path translates, behind one
//! [`Datapath`] trait, so the switch (control) talks to a datapath, not to
//! the BPF programs or the devices directly.
//!
//! - [`afxdp::AfxdpDatapath`]: XDP steers frames to AF_XDP sockets; PMD
//!   threads run the EMC and megaflow caches and the actions in userspace
//!   (OVS-DPDK / netdev analogue).
//! - [`ebpf::EbpfDatapath`]: TC programs run the megaflows in the kernel;
//!   misses come up to one PMD thread that translates, installs and sends
//!   that packet (OVS kernel-datapath analogue, with no kernel module).

pub mod afxdp;
pub mod devices;
pub mod ebpf;

pub use ebpf::table::Revalidated;

use crate::flow::{FlowKey, FlowMask};
use crate::pmd::{PmdCommand, PmdSnapshot};
use crate::port::PortNo;
use crate::tunnel::GeneveOptMap;
use std::collections::{BTreeMap, BTreeSet};

/// A switch port that has a device, as the datapath needs to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// Interface name.
    pub name: String,
    /// Device kind: `afxdp`, `afpacket`, `system`, `internal`, `tap`, `memory`.
    pub kind: String,
    /// Device options (`queues`, `csum`, `vtep_ip`, ...).
    pub options: BTreeMap<String, String>,
}

/// The ports in `attached` that `wanted` no longer has (what a
/// [`Datapath::sync`] takes out first).
pub fn ports_gone<T>(attached: &BTreeMap<PortNo, T>, wanted: &BTreeMap<PortNo, PortSpec>) -> Vec<PortNo> {
    attached
        .keys()
        .filter(|p| !wanted.contains_key(p))
        .copied()
        .collect()
}

/// What one [`Datapath::sync`] did.
#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    /// Ports whose device could not be opened (retried on the next sync).
    pub warnings: Vec<String>,
    /// How many of them another process still holds (a killed predecessor).
    pub busy: usize,
}

/// The datapath kinds, as `rvs daemon --datapath` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatapathKind {
    /// AF_XDP and userspace PMD threads.
    Afxdp,
    /// Megaflows in the kernel's TC programs.
    Ebpf,
}

impl DatapathKind {
    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            DatapathKind::Afxdp => "afxdp",
            DatapathKind::Ebpf => "ebpf",
        }
    }
}

impl std::str::FromStr for DatapathKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "afxdp" | "netdev" => Ok(DatapathKind::Afxdp),
            "ebpf" | "system" => Ok(DatapathKind::Ebpf),
            _ => Err(format!("no datapath {s:?} (afxdp or ebpf)")),
        }
    }
}

/// A datapath.
pub trait Datapath: Send {
    /// Which kind.
    fn kind(&self) -> DatapathKind;

    /// Bring the devices in line with `wanted` (datapath port -> port):
    /// open new ones, close removed ones; install the Geneve option map.
    fn sync(&mut self, wanted: &BTreeMap<PortNo, PortSpec>, optmap: GeneveOptMap) -> SyncReport;

    /// Ports with a device.
    fn attached(&self) -> BTreeSet<PortNo>;

    /// Send a frame the slow path built (an ARP request) out of `port`.
    fn transmit(&self, port: PortNo, frame: Vec<u8>);

    /// Run `actions` (datapath actions the slow path translated) on `frame`
    /// as coming in on `in_port` ([`crate::port::NO_PORT`]: on none): a
    /// controller's packet-out.
    fn execute(&self, in_port: PortNo, frame: Vec<u8>, actions: Vec<crate::action::Action>);

    /// Counters, ports and cached flows of every thread (and, for a kernel
    /// datapath, one snapshot of the kernel's own; see
    /// [`KERNEL_SNAPSHOT`]).
    fn snapshots(&self) -> Vec<PmdSnapshot>;

    /// Send a command to every PMD thread.
    fn broadcast(&self, cmd: &dyn Fn() -> PmdCommand);

    /// Make every change the slow path has made so far take effect before
    /// the next packet (a kernel datapath deletes the flows it invalidated;
    /// PMD threads do this themselves before every batch).
    fn settle(&self) {}

    /// Check the flows a kernel datapath took over from an earlier daemon
    /// against `translate` (this daemon's translation of a flow's masked
    /// key), keeping those it still gives and deleting the rest.
    fn revalidate(&self, _translate: &mut dyn FnMut(&FlowKey, &FlowMask) -> Option<Revalidated>) {}

    /// Tunnel next hops (local address, remote address, MAC) that flows a
    /// kernel datapath took over were sending to.
    fn adopted_neighbors(&self) -> Vec<(std::net::Ipv4Addr, std::net::Ipv4Addr, [u8; 6])> {
        Vec::new()
    }

    /// Housekeeping, once a second (a kernel datapath reads its flows'
    /// counters and expires idle ones).
    fn tick(&mut self) {}

    /// The connection tracker the datapath's threads share.
    fn conntrack(&self) -> crate::conntrack::SharedConntrack;

    /// Drop every cached flow.
    fn flush(&self) {
        self.broadcast(&|| PmdCommand::FlushCaches);
    }

    /// Stop. `clean`: the daemon leaves for good (a kernel datapath removes
    /// its programs and pinned maps; else they stay and keep forwarding).
    fn stop(self: Box<Self>, clean: bool);
}

/// The id of the snapshot a kernel datapath reports for the kernel itself
/// (its flows and counters), next to its PMD thread's.
pub const KERNEL_SNAPSHOT: usize = 1000;
