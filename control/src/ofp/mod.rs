//! The OpenFlow-like model: match fields, matches, actions, rules.

mod action;
pub(crate) mod action_set;
mod controller;
mod field;
mod format;
mod matches;
mod parse;
mod rule;
mod xkey;

pub use action::{
    CtSpec, CtZone, LearnSpec, LearnSpecItem, OfAction, SubField, OFPP_ALL, OFPP_CONTROLLER, OFPP_FLOOD,
    OFPP_IN_PORT, OFPP_LOCAL, OFPP_MAX, OFPP_NONE, OFPP_NORMAL, OFPP_TABLE, OFPP_UNSET,
};
pub use controller::{ControllerSpec, PinReason, MAX_LEN_ALL};
pub use field::{OfField, CT_STATE_FLAGS};
pub use format::{fmt_actions, fmt_actions_named, fmt_ct_state, fmt_match_named, nxm_name, PortNameMap};
pub use matches::Match;
pub(crate) use parse::keyword_action as action_keyword;
pub use parse::{
    parse_actions, parse_flow, parse_flows, parse_match, parse_tlv_map, FlowParseError, FlowsParseError,
    PortNames, TlvMapping,
};
pub use rule::{Rule, DEFAULT_PRIORITY};
pub use xkey::{XKey, XMask, ACTSET_WORD, METADATA_WORD, REG_WORD, XWORDS};
