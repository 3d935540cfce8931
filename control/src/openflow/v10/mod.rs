//! OpenFlow 1.0 (what `ovs-ofctl` speaks when not told `-O`) with the
//! Nicira extensions OVS added to it: `nx_match` flow formats
//! (NXT_SET_FLOW_FORMAT, NXT_FLOW_MOD, NXST_FLOW), table ids in flow mods
//! (NXT_FLOW_MOD_TABLE_ID), NXT_PACKET_IN and NXT_FLOW_REMOVED, and OVS's
//! 1.0 encoding of errors 1.0 has no code for. Requests decode into the
//! version-neutral [`Message`](super::Message)s the session answers;
//! replies and asynchronous messages encode from them.

pub mod actions;
pub mod errors;
pub mod groups;
pub mod matches;
pub mod messages;
#[cfg(test)]
mod proptests;
pub mod stats;

pub use messages::{decode, encode, Formats, In10};

/// OpenFlow 1.0's version byte.
pub const OFP10: u8 = 0x01;

/// OpenFlow 1.0 message types (where they differ from 1.3's, or only 1.0
/// has them).
#[allow(missing_docs)]
pub mod msg_type {
    pub const VENDOR: u8 = 4;
    pub const PACKET_IN: u8 = 10;
    pub const FLOW_REMOVED: u8 = 11;
    pub const PORT_STATUS: u8 = 12;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    pub const PORT_MOD: u8 = 15;
    pub const STATS_REQUEST: u8 = 16;
    pub const STATS_REPLY: u8 = 17;
    pub const BARRIER_REQUEST: u8 = 18;
    pub const BARRIER_REPLY: u8 = 19;
    pub const QUEUE_GET_CONFIG_REQUEST: u8 = 20;
    pub const QUEUE_GET_CONFIG_REPLY: u8 = 21;
}

/// Nicira message subtypes (NXT_*) rvs knows.
#[allow(missing_docs)]
pub mod nxt {
    pub const ROLE_REQUEST: u32 = 10;
    pub const ROLE_REPLY: u32 = 11;
    pub const SET_FLOW_FORMAT: u32 = 12;
    pub const FLOW_MOD: u32 = 13;
    pub const FLOW_REMOVED: u32 = 14;
    pub const FLOW_MOD_TABLE_ID: u32 = 15;
    pub const SET_PACKET_IN_FORMAT: u32 = 16;
    pub const PACKET_IN: u32 = 17;
    pub const SET_ASYNC_CONFIG: u32 = 19;
    pub const GROUP_MOD: u32 = 31;
}

/// "No port" in 1.0's 16-bit numbering (also "any" in filters).
pub const OFPP10_NONE: u16 = 0xffff;
