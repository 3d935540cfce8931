//! The eBPF datapath's map layouts, mirrored from `src/bpf/rvs_dp.h` (both
//! sides assert the sizes). Plain `#[repr(C)]` data with explicit padding,
//! `bytemuck::Pod`, so map entries are written and read as bytes without
//! `unsafe` here.

use bytemuck::{Pod, Zeroable};

/// Words of a flow key (rvs's `FlowKey`).
pub const KEY_WORDS: usize = 18;
/// Mask slots.
pub const MAX_MASKS: usize = 32;
/// Actions per kernel flow.
pub const MAX_ACTIONS: usize = 16;
/// Kernel flows (and flow stats slots).
pub const MAX_FLOWS: usize = 65536;
/// Datapath port numbers below this have an output entry.
pub const MAX_PORTS: usize = 1024;
/// Encapsulation templates.
pub const MAX_ENCAPS: usize = 4096;
/// Connection entries the kernel holds (two per connection).
pub const MAX_CTS: usize = 262_144;
/// Recirculations of one packet, a tunnel pop included.
pub const MAX_DEPTH: u8 = 6;
/// Bytes of one encapsulation template.
pub const ENCAP_MAX: usize = 128;
/// Geneve option map slots.
pub const OPT_SLOTS: usize = 8;
/// `RVS_ABI`: the version of the maps' layout and meaning; a restarted daemon
/// adopts only maps of its own.
pub const ABI: u32 = 3;
/// Kernel counters.
pub const N_COUNTERS: usize = 16;
/// Largest packet an upcall carries whole.
pub const UPCALL_MAX: u32 = 16384;
/// The skb mark of a frame sent to an underlay's egress to be encapsulated
/// with encap slot `mark & MARK_ID`.
pub const MARK_MAGIC: u32 = 0x7e50_0000;
/// The encap slot bits of such a mark.
pub const MARK_ID: u32 = 0x000f_ffff;

/// Action types.
pub mod action {
    /// Output to a datapath port.
    pub const OUTPUT: u8 = 1;
    /// Push a VLAN tag.
    pub const PUSH_VLAN: u8 = 2;
    /// Pop the outer VLAN tag.
    pub const POP_VLAN: u8 = 3;
    /// Set the Ethernet source.
    pub const SET_ETH_SRC: u8 = 4;
    /// Set the Ethernet destination.
    pub const SET_ETH_DST: u8 = 5;
    /// IPv4 rewrites.
    pub const SET_IPV4: u8 = 6;
    /// TCP/UDP port rewrites.
    pub const SET_L4: u8 = 7;
    /// IPv6 rewrites.
    pub const SET_IPV6: u8 = 8;
    /// ARP rewrites.
    pub const SET_ARP: u8 = 9;
    /// Geneve encapsulation and output to an underlay port.
    pub const TUNNEL_OUTPUT: u8 = 10;
    /// Geneve decapsulation (the inner frame's flow follows).
    pub const TUNNEL_POP: u8 = 11;
    /// Drop, counted under a reason.
    pub const DROP: u8 = 12;
    /// `ct()` in zone `u16a`: the packet takes the flow's connection lookup.
    pub const CT: u8 = 13;
    /// `ct_clear`.
    pub const CT_CLEAR: u8 = 14;
    /// Recirculate with id `u32a` (the last action); past [`super::MAX_DEPTH`]
    /// dropped under reason `u16a`.
    pub const RECIRC: u8 = 15;
    /// `flags2`: the last output (the packet itself, not a clone).
    pub const LAST: u8 = 1;
}

/// Slots of the drops map (rvs's drop reasons, by their number).
pub const N_DROPS: usize = 64;

/// What the kernel counts (index into the counters map). Drops that a
/// flow's actions ask for are counted by drop reason in the drops map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Counter {
    /// Packets a kernel flow handled.
    Hit = 0,
    /// Upcalled: no kernel flow.
    Miss = 1,
    /// Upcalled: the kernel parser leaves them to userspace.
    Unparsed = 2,
    /// An upcall failed (no daemon listening, ring full): dropped.
    UpcallLost = 3,
    /// Upcalled with headers only (too big to carry).
    UpcallBig = 4,
    /// Not for the switch (an underlay's other traffic).
    Passed = 5,
    /// Output to a port with no device: dropped.
    NoPort = 6,
    /// A helper failed while executing: dropped.
    ActionFailed = 7,
    /// Frames encapsulated at an underlay's egress.
    Encap = 8,
    /// Encapsulation failed: dropped.
    EncapFailed = 9,
    /// Frames decapsulated.
    Decap = 10,
    /// Tunnel pop known, inner flow not: the outer packet was upcalled.
    InnerMiss = 11,
    /// A flow with `ct()` whose connection the kernel does not answer for
    /// (new, closing, not TCP or UDP): upcalled.
    CtUpcall = 12,
    /// Recirculations run in the kernel.
    Recirc = 13,
}

impl Counter {
    /// Every counter, in index order.
    pub const ALL: [Counter; 14] = [
        Counter::Hit,
        Counter::Miss,
        Counter::Unparsed,
        Counter::UpcallLost,
        Counter::UpcallBig,
        Counter::Passed,
        Counter::NoPort,
        Counter::ActionFailed,
        Counter::Encap,
        Counter::EncapFailed,
        Counter::Decap,
        Counter::InnerMiss,
        Counter::CtUpcall,
        Counter::Recirc,
    ];

    /// Name, as metrics and `pmd-stats` show it.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Hit => "hit",
            Counter::Miss => "miss",
            Counter::Unparsed => "unparsed",
            Counter::UpcallLost => "upcall_lost",
            Counter::UpcallBig => "upcall_big",
            Counter::Passed => "passed",
            Counter::NoPort => "no_port",
            Counter::ActionFailed => "action_failed",
            Counter::Encap => "encap",
            Counter::EncapFailed => "encap_failed",
            Counter::Decap => "decap",
            Counter::InnerMiss => "inner_miss",
            Counter::CtUpcall => "ct_upcall",
            Counter::Recirc => "recirc",
        }
    }
}

/// Port flags.
pub mod port_flags {
    /// Only frames for the port's VTEP address enter the switch.
    pub const VTEP: u32 = 1;
    /// Output means "receive on it" (an internal tap).
    pub const INGRESS: u32 = 2;
}

/// Config flag: record outputs as events instead of sending (tests).
pub const CFG_TEST: u32 = 1;

/// Event types.
pub mod event {
    /// No kernel flow.
    pub const MISS: u32 = 1;
    /// The kernel parser left it to userspace.
    pub const UNPARSED: u32 = 2;
    /// A tunnel pop's inner flow is unknown: the outer packet.
    pub const INNER_MISS: u32 = 3;
    /// Test mode: an output.
    pub const OUTPUT: u32 = 4;
    /// A recirculated packet's miss, with its pass state.
    pub const PASS: u32 = 6;
}

/// Flow flags.
pub mod flow_flags {
    /// The flow has a `ct()` (zone `ct_zone`): the connection is looked up
    /// before any action runs.
    pub const CT: u16 = 1;
}

/// `struct rvs_lookup_key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Pod, Zeroable)]
#[repr(C)]
pub struct LookupKey {
    /// Mask slot.
    pub mask: u32,
    /// Zero.
    pub pad: u32,
    /// Key & mask.
    pub w: [u64; KEY_WORDS],
}

/// `struct rvs_action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Action {
    /// Type (see [`action`]).
    pub ty: u8,
    /// Which fields a set action writes.
    pub flags: u8,
    /// Small argument (TCI, encap id, drop reason).
    pub u16a: u16,
    /// Port argument.
    pub u32a: u32,
    /// [`action::LAST`].
    pub flags2: u8,
    /// Zero.
    pub pad: [u8; 7],
    /// Field values.
    pub data: [u8; 40],
}

/// `struct rvs_flow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Flow {
    /// Generation it was installed in.
    pub gen: u64,
    /// Its flow stats slot.
    pub id: u32,
    /// Actions in use.
    pub n_actions: u16,
    /// [`flow_flags`].
    pub flags: u16,
    /// The zone of its `ct()`.
    pub ct_zone: u16,
    /// Zero.
    pub pad: [u16; 3],
    /// The mask (checked on every hit).
    pub mask: [u64; KEY_WORDS],
    /// Actions.
    pub act: [Action; MAX_ACTIONS],
}

impl Default for Action {
    fn default() -> Self {
        Action::zeroed()
    }
}

impl Default for Flow {
    fn default() -> Self {
        Flow::zeroed()
    }
}

/// `struct rvs_flow_stats` (one CPU's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Pod, Zeroable)]
#[repr(C)]
pub struct FlowStats {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Last use (CLOCK_MONOTONIC ns).
    pub used_ns: u64,
}

/// `struct rvs_port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Pod, Zeroable)]
#[repr(C)]
pub struct PortEntry {
    /// Datapath port number.
    pub dp_port: u32,
    /// [`port_flags`].
    pub flags: u32,
    /// VTEP address (network order bytes as a u32).
    pub vtep_ip: u32,
    /// Zero.
    pub pad: u32,
}

/// `struct rvs_out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Pod, Zeroable)]
#[repr(C)]
pub struct OutEntry {
    /// Interface index (0: none).
    pub ifindex: u32,
    /// [`port_flags::INGRESS`].
    pub flags: u32,
}

/// `struct rvs_encap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Encap {
    /// Header bytes in `hdr`.
    pub len: u16,
    /// IPv4 header checksum with total length 0.
    pub base_csum: u16,
    /// Zero.
    pub pad: u32,
    /// Outer Ethernet, IPv4, UDP, Geneve and options.
    pub hdr: [u8; ENCAP_MAX],
}

impl Default for Encap {
    fn default() -> Self {
        Encap::zeroed()
    }
}

/// `struct rvs_optmap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Pod, Zeroable)]
#[repr(C)]
pub struct OptMap {
    /// Option class.
    pub class: u16,
    /// Option type.
    pub ty: u8,
    /// Slot + 1 (0: unused).
    pub slot1: u8,
}

/// `struct rvs_config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Pod, Zeroable)]
#[repr(C)]
pub struct Config {
    /// Generation: flows of another are misses.
    pub gen: u64,
    /// Mask slots in use.
    pub mask_used: u32,
    /// [`CFG_TEST`].
    pub flags: u32,
    /// The Geneve option map.
    pub opt: [OptMap; OPT_SLOTS],
    /// [`ABI`] of the daemon that wrote it ([`crate::dp::TcDatapath::set_config`] sets it).
    pub abi: u32,
    /// (padding)
    pub pad: u32,
}

/// `struct rvs_event` (the packet's bytes follow it in the sample).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Pod, Zeroable)]
#[repr(C)]
pub struct Event {
    /// [`event`] type.
    pub ty: u32,
    /// Datapath port it came in on.
    pub in_port: u32,
    /// Interface it was seen on.
    pub ifindex: u32,
    /// Its length.
    pub len: u32,
    /// Bytes of it that follow.
    pub cap: u32,
    /// skb mark.
    pub mark: u32,
    /// Accelerated VLAN tag (PCP|DEI|VID).
    pub vlan_tci: u16,
    /// Its TPID, network order.
    pub vlan_proto: u16,
    /// 1 when the tag is present.
    pub vlan_present: u8,
    /// Zero.
    pub pad1: u8,
    /// Zero.
    pub pad2: u16,
    /// Output events: the port.
    pub port: u32,
    /// Output events: encap id + 1 (0: none).
    pub encap: u32,
    /// [`event::PASS`]: recirculations so far.
    pub depth: u32,
    /// Zero.
    pub pad3: u32,
    /// [`event::PASS`]: key words 0..7 (in_port, recirc_id, tunnel, ct_*).
    pub meta: [u64; 8],
}

/// `struct rvs_ct_key`: one direction of a connection, as key words hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Pod, Zeroable)]
#[repr(C)]
pub struct CtKey {
    /// Zone.
    pub zone: u16,
    /// IP protocol (TCP or UDP).
    pub proto: u8,
    /// 1: IPv6.
    pub v6: u8,
    /// tp_src | tp_dst << 16.
    pub ports: u32,
    /// IPv4: the key's nw word (nw_src | nw_dst << 32); IPv6: src hi, lo,
    /// dst hi, lo.
    pub a: [u64; 4],
}

/// `struct rvs_ct`: what the kernel answers for that direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Pod, Zeroable)]
#[repr(C)]
pub struct CtEntry {
    /// The `ct_state` bits (but `+trk`) of this direction's packets.
    pub state: u8,
    /// Zero.
    pub pad: [u8; 3],
    /// `ct_mark`.
    pub mark: u32,
    /// `ct_label` bits 0..31.
    pub label: u32,
    /// Zero.
    pub pad2: u32,
    /// Last use (CLOCK_MONOTONIC ns): the kernel refreshes it on each hit.
    pub used_ns: u64,
    /// Unused this long, the entry is a miss.
    pub timeout_ns: u64,
}

const _: () = assert!(std::mem::size_of::<LookupKey>() == 152);
const _: () = assert!(std::mem::size_of::<Action>() == 56);
const _: () = assert!(std::mem::size_of::<Flow>() == 1064);
const _: () = assert!(std::mem::size_of::<CtKey>() == 40);
const _: () = assert!(std::mem::size_of::<CtEntry>() == 32);
const _: () = assert!(std::mem::size_of::<FlowStats>() == 24);
const _: () = assert!(std::mem::size_of::<PortEntry>() == 16);
const _: () = assert!(std::mem::size_of::<OutEntry>() == 8);
const _: () = assert!(std::mem::size_of::<Encap>() == 136);
const _: () = assert!(std::mem::size_of::<Config>() == 56);
const _: () = assert!(std::mem::size_of::<Event>() == 112);
