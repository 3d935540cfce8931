//! Metadata that travels with a packet but is not in its bytes: where it came
//! from, its recirculation id and, after a tunnel pop, the outer header's facts.

/// Number of tunnel metadata slots (Geneve options mapped by the option map).
/// Six: the key word of slots 6 and 7 holds `ct_mark` and `ct_label` (a
/// key word more costs every packet; OVN uses one slot, neutron none).
pub const TUN_MD_SLOTS: usize = 6;

/// What a tunnel pop learned from the outer headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunnelMeta {
    /// Tunnel id (Geneve VNI).
    pub tun_id: u64,
    /// Outer IPv4 source (host order).
    pub src: u32,
    /// Outer IPv4 destination (host order); 0 means "no tunnel".
    pub dst: u32,
    /// `TUN_FLAG_*` bits.
    pub flags: u16,
    /// Outer TOS.
    pub tos: u8,
    /// Outer TTL.
    pub ttl: u8,
    /// Bit i set when slot i holds an option value.
    pub md_present: u8,
    /// Option values, one 32-bit word per slot.
    pub md: [u32; TUN_MD_SLOTS],
}

impl TunnelMeta {
    /// True when the packet came from a tunnel.
    #[inline]
    pub fn is_set(&self) -> bool {
        self.dst != 0 || self.flags != 0
    }
}

/// What the last `ct()` said of the packet (all zero before one, and after
/// `ct_clear`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtMeta {
    /// `ct_state` bits (`conntrack::state`).
    pub state: u8,
    /// `ct_zone`.
    pub zone: u16,
    /// `ct_mark`.
    pub mark: u32,
    /// `ct_label` bits 0..31 (what the flow key keeps).
    pub label: u32,
}

/// Per-packet metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketMeta {
    /// Datapath port the packet arrived on.
    pub in_port: u32,
    /// Recirculation id (0 for a fresh packet).
    pub recirc_id: u32,
    /// Tunnel metadata after a pop.
    pub tunnel: TunnelMeta,
    /// How many times this packet has been recirculated.
    pub recirc_depth: u8,
    /// The packet's mark as it arrived (the skb mark on datapaths that have
    /// one; AF_XDP and AF_PACKET frames arrive with 0).
    pub mark: u32,
    /// Connection tracking results (set by `ct()`).
    pub ct: CtMeta,
    /// Only the packet's headers are here (a kernel datapath upcalled a
    /// packet too big for the slow path): translate it, send nothing.
    pub head_only: bool,
}
