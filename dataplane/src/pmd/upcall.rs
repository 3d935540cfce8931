//! The [`Upcall`] trait: how the datapath asks the slow path what to do with a
//! packet no cache knows. The control crate implements it by translating the
//! packet through its rule tables.

use crate::action::Action;
use crate::cache::Seen;
use crate::drop::DropReason;
use crate::flow::{FlowKey, FlowMask};
use crate::packet::PacketBuf;
use crate::port::PortNo;
use thiserror::Error;

/// Frames the slow path wants sent, as (port, frame).
pub type Frames = Vec<(PortNo, Vec<u8>)>;

/// The answer to an upcall: what to do with this packet and every packet that
/// agrees with it on the bits of `mask`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpcallReply {
    /// Datapath actions.
    pub actions: Vec<Action>,
    /// Every key bit the decision depended on. The PMD always adds `in_port`
    /// and `recirc_id`.
    pub mask: FlowMask,
    /// False when the reply must not be cached (e.g. it depended on something
    /// the mask cannot express); the actions still run on this packet.
    pub cacheable: bool,
    /// Frames the slow path wants sent (e.g. an ARP request for a tunnel's next
    /// hop), as (port, frame).
    pub packets_out: Vec<(PortNo, Vec<u8>)>,
    /// Opaque number stored with the cached flow, so the slow path can later
    /// credit the flow's packet counts to what produced it (0 = none).
    pub tag: u64,
    /// Tags of what the decision depended on (see
    /// [`crate::cache::Invalidations`]); invalidating one removes the flow.
    pub deps: Vec<u64>,
    /// The slow path's change counters right after the translation (read
    /// under its lock). The PMD caches the reply only if nothing it depended
    /// on changed since, as OVS checks `reval_seq` before installing.
    pub seen: Option<Seen>,
}

impl UpcallReply {
    /// A cacheable reply.
    pub fn new(actions: Vec<Action>, mask: FlowMask) -> Self {
        UpcallReply {
            actions,
            mask,
            cacheable: true,
            packets_out: Vec::new(),
            tag: 0,
            deps: Vec::new(),
            seen: None,
        }
    }
}

/// Why an upcall failed (the packet is dropped and counted).
#[derive(Error, Debug, Clone, PartialEq, Eq)]
#[error("upcall failed: {0}")]
pub struct UpcallError(pub String);

/// The slow path, called by a PMD thread on a cache miss.
pub trait Upcall: Send {
    /// Decide what to do with `pkt`, whose key is `key`.
    fn upcall(&mut self, key: &FlowKey, pkt: &PacketBuf) -> Result<UpcallReply, UpcallError>;

    /// A `Userspace(cookie)` action handed this packet over (ARP for the
    /// tunnel endpoint, a packet for a controller, ...). Frames to send go
    /// to `out`; an error counts the copy as dropped under its reason.
    fn userspace(
        &mut self,
        _key: &FlowKey,
        _pkt: &PacketBuf,
        _cookie: u32,
        _out: &mut Frames,
    ) -> Result<(), DropReason> {
        Ok(())
    }

    /// The batch's actions ran: hand over what `userspace` queued (one
    /// wake-up of its readers per batch, not per packet), counting in
    /// `drops` the copies nobody took.
    fn end_batch(&mut self, _drops: &mut crate::drop::DropCounters) {}
}
