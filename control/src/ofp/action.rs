//! OpenFlow-like actions, in the ovs-ofctl subset rvs supports.

use super::field::OfField;
use rvs_dataplane::conntrack::NatAction;
use std::net::Ipv4Addr;

/// A bit range of a field, as in `NXM_OF_VLAN_TCI[0..11]` (`field[]` is the
/// whole field). Bounds are inclusive, bit 0 is the least significant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubField {
    /// The field.
    pub field: OfField,
    /// First bit.
    pub start: u32,
    /// Last bit (inclusive).
    pub end: u32,
}

impl SubField {
    /// The whole field.
    pub fn whole(field: OfField) -> SubField {
        SubField {
            field,
            start: 0,
            end: field.width() - 1,
        }
    }

    /// Number of bits.
    pub fn width(&self) -> u32 {
        self.end - self.start + 1
    }

    /// True when it covers the whole field.
    pub fn is_whole(&self) -> bool {
        self.start == 0 && self.end + 1 == self.field.width()
    }

    /// Mask of the range within the field.
    pub fn mask(&self) -> u128 {
        let w = self.width();
        let ones = if w >= 128 { u128::MAX } else { (1u128 << w) - 1 };
        ones << self.start
    }
}

/// One element of a `learn(...)` action.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LearnSpecItem {
    /// `FIELD[a..b]`: the learned rule matches this range on the value it has now.
    MatchSame(SubField),
    /// `DST[]=SRC[]`: the learned rule matches DST on the current value of SRC.
    MatchField {
        /// Matched in the learned rule.
        dst: SubField,
        /// Read now.
        src: SubField,
    },
    /// `DST[]=VALUE` / `field=VALUE`: the learned rule matches a constant.
    MatchValue {
        /// Matched in the learned rule.
        dst: SubField,
        /// Constant.
        value: u128,
    },
    /// `load:VALUE->DST[]`: the learned rule loads a constant.
    LoadValue {
        /// Constant.
        value: u128,
        /// Written by the learned rule.
        dst: SubField,
    },
    /// `load:SRC[]->DST[]`: the learned rule loads the current value of SRC.
    LoadField {
        /// Read now.
        src: SubField,
        /// Written by the learned rule.
        dst: SubField,
    },
    /// `output:SRC[]`: the learned rule outputs to the port held in SRC now.
    Output(SubField),
}

/// The parameters and body of a `learn(...)` action.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LearnSpec {
    /// Table of the learned rule.
    pub table: u8,
    /// Its priority.
    pub priority: u16,
    /// Its idle timeout (s, 0 = none).
    pub idle_timeout: u16,
    /// Its hard timeout (s, 0 = none).
    pub hard_timeout: u16,
    /// Its cookie.
    pub cookie: u64,
    /// What it matches and does.
    pub items: Vec<LearnSpecItem>,
}

/// OpenFlow's OFPP_MAX: port numbers of real ports are below it (1..=0xfeff).
pub const OFPP_MAX: u32 = 0xff00;
/// Reserved OpenFlow port: the input port.
pub const OFPP_IN_PORT: u32 = 0xfff8;
/// Reserved OpenFlow port: the bridge's own (LOCAL) port.
pub const OFPP_LOCAL: u32 = 0xfffe;
/// "No port" (resubmit's default).
pub const OFPP_NONE: u32 = 0xffff;
/// Reserved OpenFlow port: `actset_output` of an action set with no output.
pub const OFPP_UNSET: u32 = 0xfff7;
/// Reserved OpenFlow port: NORMAL.
pub const OFPP_NORMAL: u32 = 0xfffa;
/// Reserved OpenFlow port: FLOOD.
pub const OFPP_FLOOD: u32 = 0xfffb;
/// Reserved OpenFlow port: ALL.
pub const OFPP_ALL: u32 = 0xfffc;
/// Reserved OpenFlow port: CONTROLLER.
pub const OFPP_CONTROLLER: u32 = 0xfffd;
/// Reserved OpenFlow port: TABLE (a packet-out's "run the tables").
pub const OFPP_TABLE: u32 = 0xfff9;

/// An action of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OfAction {
    /// `output:PORT`.
    Output(u32),
    /// `output:FIELD[]`: to the port number held in a field.
    OutputField(SubField),
    /// `NORMAL`: MAC-learning switch.
    Normal,
    /// `FLOOD`: every port but the input.
    Flood,
    /// `ALL`: every port but the input.
    All,
    /// `IN_PORT`: back where it came from.
    InPort,
    /// `LOCAL`: the bridge's internal port.
    Local,
    /// `drop` (explicit; an empty action list also drops).
    Drop,
    /// `resubmit(PORT,TABLE)`: look up again with in_port and/or table changed.
    Resubmit {
        /// New in_port for the lookup (`None`: unchanged).
        port: Option<u32>,
        /// Table (`None`: the current one).
        table: Option<u8>,
    },
    /// `goto_table:T`.
    GotoTable(u8),
    /// `mod_vlan_vid:VID` (pushes a tag if there is none).
    ModVlanVid(u16),
    /// `mod_vlan_pcp:PCP`.
    ModVlanPcp(u8),
    /// `strip_vlan` / `pop_vlan`.
    StripVlan,
    /// `push_vlan:TPID`.
    PushVlan(u16),
    /// `mod_dl_src:MAC`.
    ModDlSrc(u64),
    /// `mod_dl_dst:MAC`.
    ModDlDst(u64),
    /// `mod_nw_src:IP`.
    ModNwSrc(Ipv4Addr),
    /// `mod_nw_dst:IP`.
    ModNwDst(Ipv4Addr),
    /// `mod_nw_tos:TOS`.
    ModNwTos(u8),
    /// `mod_tp_src:PORT`.
    ModTpSrc(u16),
    /// `mod_tp_dst:PORT`.
    ModTpDst(u16),
    /// `set_field:VALUE->FIELD`.
    SetField {
        /// Field written.
        field: OfField,
        /// Value.
        value: u128,
    },
    /// `load:VALUE->DST[range]`.
    Load {
        /// Value (right-aligned).
        value: u128,
        /// Destination bits.
        dst: SubField,
    },
    /// `move:SRC[range]->DST[range]`.
    Move {
        /// Source bits.
        src: SubField,
        /// Destination bits.
        dst: SubField,
    },
    /// `set_tunnel:ID` / `set_tunnel64:ID`.
    SetTunnel(u64),
    /// `learn(...)`.
    Learn(LearnSpec),
    /// `note:hex.bytes`.
    Note(Vec<u8>),
    /// `dec_ttl`: decrement the IPv4 TTL / IPv6 hop limit; at 0 or 1 the
    /// packet goes no further in this action list (OVS: to the controller).
    DecTtl,
    /// `mod_nw_ttl:TTL`.
    ModNwTtl(u8),
    /// `mod_nw_ecn:ECN` (the low 2 bits of the TOS byte).
    ModNwEcn(u8),
    /// `write_metadata:VALUE[/MASK]`.
    WriteMetadata {
        /// Bits written.
        value: u64,
        /// Which bits (all when not given).
        mask: u64,
    },
    /// `controller[:MAX_LEN]` / `controller(k=v,...)`: a copy of the packet
    /// to the bridge's controllers (PACKET_IN). With no connection to take
    /// it, the copy is counted under the `controller` drop reason.
    Controller(super::ControllerSpec),
    /// `group:N`: hand the packet to group N (see `group.rs`); the packet
    /// after it is as before it.
    Group(u32),
    /// `write_actions(...)`: add to the action set, which runs when the
    /// pipeline ends (an OpenFlow 1.1+ instruction; see `action_set.rs`).
    WriteActions(Vec<OfAction>),
    /// `clear_actions`: empty the action set.
    ClearActions,
    /// `ct(...)`: send the packet through the connection tracker.
    Ct(CtSpec),
    /// `ct_clear`: forget the packet's connection tracking state.
    CtClear,
}

/// Where `ct(zone=...)` takes its zone from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtZone {
    /// A constant.
    Imm(u16),
    /// A field's bits (`zone=NXM_NX_REG6[0..15]`, as neutron writes it).
    Field(SubField),
}

/// The arguments of `ct(...)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CtSpec {
    /// Create the connection (and keep `exec`'s mark and label).
    pub commit: bool,
    /// The zone.
    pub zone: CtZone,
    /// Recirculate to this table with the `ct_*` fields set (`None`: the
    /// packet continues with this action list, untracked as before).
    pub table: Option<u8>,
    /// `exec(...)`: `set_field`/`load` of `ct_mark` and `ct_label` (only).
    pub exec: Vec<OfAction>,
    /// `nat` or `nat(src=...|dst=...)`.
    pub nat: Option<NatAction>,
}
