//! A datapath that answers `ct()` itself for established connections (the
//! eBPF datapath's kernel table, as the kernel's flowtable takes established
//! connections off conntrack's slow path). The tracker stays the authority:
//! it hands over a TCP connection once both ends are established, a UDP
//! flow once committed (only its originating direction, as `+new`, until
//! the tracker has seen a reply), and takes it back when its state can
//! change (a FIN, RST or SYN: the datapath sends those up), when it leaves
//! the table, or when its mark changes. Packets the datapath handled
//! never reach the tracker, so a handed-over TCP connection's windows are
//! no longer checked (the kernel's flowtable does the same: "be liberal").

use super::Tuple;

/// A connection handed to the datapath.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffloadedConn {
    /// Zone.
    pub zone: u16,
    /// The originating direction (the other is its reverse).
    pub orig: Tuple,
    /// `ct_mark`.
    pub mark: u32,
    /// `ct_label` bits 0..31 (what the flow key holds).
    pub label: u32,
    /// It has seen a reply (else only its originating direction is handed
    /// over, as `+new`: the first reply must reach the tracker).
    pub replied: bool,
    /// Unused this long, the datapath must ask the tracker again.
    pub timeout_ms: u64,
}

/// The datapath side.
pub trait CtOffload: Send {
    /// Answer for `c` (both directions) from now on; false when it cannot
    /// (its table is full): the tracker keeps answering.
    fn offload(&mut self, c: &OffloadedConn) -> bool;
    /// Stop answering for the connection (before the call returns).
    fn withdraw(&mut self, zone: u16, orig: &Tuple);
    /// When the datapath last saw a packet of the connection, on the
    /// tracker's clock (`now_ms` is that clock's now); `None` if never.
    fn last_used_ms(&mut self, zone: u16, orig: &Tuple, now_ms: u64) -> Option<u64>;
}
