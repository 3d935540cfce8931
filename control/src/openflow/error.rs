//! [`OfpError`]: an OpenFlow ERROR's type and code, what every refused
//! message is answered with.

use std::fmt;

/// An OpenFlow 1.3 error (type, code), as sent in an ERROR message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub struct OfpError {
    /// `ofp_error_type`.
    pub typ: u16,
    /// The code within the type.
    pub code: u16,
}

const fn e(typ: u16, code: u16) -> OfpError {
    OfpError { typ, code }
}

#[allow(missing_docs)]
impl OfpError {
    pub const HELLO_INCOMPATIBLE: OfpError = e(0, 0);
    pub const BAD_REQUEST_VERSION: OfpError = e(1, 0);
    pub const BAD_REQUEST_TYPE: OfpError = e(1, 1);
    pub const BAD_MULTIPART: OfpError = e(1, 2);
    pub const BAD_REQUEST_EXPERIMENTER: OfpError = e(1, 3);
    pub const BAD_REQUEST_EXP_TYPE: OfpError = e(1, 4);
    pub const BAD_REQUEST_LEN: OfpError = e(1, 6);
    pub const BUFFER_UNKNOWN: OfpError = e(1, 8);
    pub const BAD_REQUEST_TABLE_ID: OfpError = e(1, 9);
    pub const IS_SLAVE: OfpError = e(1, 10);
    pub const BAD_REQUEST_PORT: OfpError = e(1, 11);
    pub const BAD_PACKET: OfpError = e(1, 12);
    pub const BAD_ACTION_TYPE: OfpError = e(2, 0);
    pub const BAD_ACTION_LEN: OfpError = e(2, 1);
    pub const BAD_ACTION_EXPERIMENTER: OfpError = e(2, 2);
    pub const BAD_ACTION_EXP_TYPE: OfpError = e(2, 3);
    pub const BAD_OUT_PORT: OfpError = e(2, 4);
    pub const BAD_ACTION_ARGUMENT: OfpError = e(2, 5);
    pub const BAD_OUT_GROUP: OfpError = e(2, 9);
    pub const BAD_SET_TYPE: OfpError = e(2, 13);
    pub const BAD_SET_LEN: OfpError = e(2, 14);
    pub const BAD_SET_ARGUMENT: OfpError = e(2, 15);
    pub const UNKNOWN_INST: OfpError = e(3, 0);
    pub const UNSUP_INST: OfpError = e(3, 1);
    pub const BAD_INST_TABLE_ID: OfpError = e(3, 2);
    pub const BAD_INST_EXPERIMENTER: OfpError = e(3, 5);
    pub const BAD_INST_LEN: OfpError = e(3, 7);
    pub const BAD_MATCH_TYPE: OfpError = e(4, 0);
    pub const BAD_MATCH_LEN: OfpError = e(4, 1);
    pub const BAD_MATCH_FIELD: OfpError = e(4, 6);
    pub const BAD_MATCH_VALUE: OfpError = e(4, 7);
    pub const BAD_MATCH_MASK: OfpError = e(4, 8);
    pub const BAD_MATCH_PREREQ: OfpError = e(4, 9);
    pub const DUP_FIELD: OfpError = e(4, 10);
    pub const FLOW_MOD_UNKNOWN: OfpError = e(5, 0);
    pub const FLOW_MOD_TABLE_FULL: OfpError = e(5, 1);
    pub const FLOW_MOD_BAD_TABLE_ID: OfpError = e(5, 2);
    pub const FLOW_MOD_OVERLAP: OfpError = e(5, 3);
    pub const FLOW_MOD_BAD_COMMAND: OfpError = e(5, 6);
    pub const FLOW_MOD_BAD_FLAGS: OfpError = e(5, 7);
    pub const GROUP_MOD_BAD_TYPE: OfpError = e(6, 10);
    pub const PORT_MOD_BAD_PORT: OfpError = e(7, 0);
    pub const PORT_MOD_BAD_HW_ADDR: OfpError = e(7, 1);
    pub const PORT_MOD_BAD_CONFIG: OfpError = e(7, 2);
    pub const TABLE_MOD_BAD_TABLE: OfpError = e(8, 0);
    pub const SWITCH_CONFIG_BAD_FLAGS: OfpError = e(10, 0);
    pub const ROLE_STALE: OfpError = e(11, 0);
    pub const ROLE_BAD_ROLE: OfpError = e(11, 2);
    pub const METER_MOD_UNKNOWN: OfpError = e(12, 0);
    pub const TABLE_FEATURES_BAD_TABLE: OfpError = e(13, 0);
    pub const TABLE_FEATURES_EPERM: OfpError = e(13, 5);
}

impl OfpError {
    /// The spec's name of the type and code, for logs and tests.
    pub fn name(&self) -> &'static str {
        match (self.typ, self.code) {
            (0, 0) => "OFPHFC_INCOMPATIBLE",
            (1, 0) => "OFPBRC_BAD_VERSION",
            (1, 1) => "OFPBRC_BAD_TYPE",
            (1, 2) => "OFPBRC_BAD_MULTIPART",
            (1, 3) => "OFPBRC_BAD_EXPERIMENTER",
            (1, 4) => "OFPBRC_BAD_EXP_TYPE",
            (1, 6) => "OFPBRC_BAD_LEN",
            (1, 8) => "OFPBRC_BUFFER_UNKNOWN",
            (1, 9) => "OFPBRC_BAD_TABLE_ID",
            (1, 10) => "OFPBRC_IS_SLAVE",
            (1, 11) => "OFPBRC_BAD_PORT",
            (2, 0) => "OFPBAC_BAD_TYPE",
            (2, 1) => "OFPBAC_BAD_LEN",
            (2, 2) => "OFPBAC_BAD_EXPERIMENTER",
            (2, 3) => "OFPBAC_BAD_EXP_TYPE",
            (2, 4) => "OFPBAC_BAD_OUT_PORT",
            (2, 5) => "OFPBAC_BAD_ARGUMENT",
            (2, 9) => "OFPBAC_BAD_OUT_GROUP",
            (2, 13) => "OFPBAC_BAD_SET_TYPE",
            (2, 14) => "OFPBAC_BAD_SET_LEN",
            (2, 15) => "OFPBAC_BAD_SET_ARGUMENT",
            (3, 0) => "OFPBIC_UNKNOWN_INST",
            (3, 1) => "OFPBIC_UNSUP_INST",
            (3, 2) => "OFPBIC_BAD_TABLE_ID",
            (3, 5) => "OFPBIC_BAD_EXPERIMENTER",
            (3, 7) => "OFPBIC_BAD_LEN",
            (4, 0) => "OFPBMC_BAD_TYPE",
            (4, 1) => "OFPBMC_BAD_LEN",
            (4, 6) => "OFPBMC_BAD_FIELD",
            (4, 7) => "OFPBMC_BAD_VALUE",
            (4, 8) => "OFPBMC_BAD_MASK",
            (4, 9) => "OFPBMC_BAD_PREREQ",
            (4, 10) => "OFPBMC_DUP_FIELD",
            (5, 0) => "OFPFMFC_UNKNOWN",
            (5, 1) => "OFPFMFC_TABLE_FULL",
            (5, 2) => "OFPFMFC_BAD_TABLE_ID",
            (5, 3) => "OFPFMFC_OVERLAP",
            (5, 6) => "OFPFMFC_BAD_COMMAND",
            (5, 7) => "OFPFMFC_BAD_FLAGS",
            (6, 10) => "OFPGMFC_BAD_TYPE",
            (7, 0) => "OFPPMFC_BAD_PORT",
            (7, 2) => "OFPPMFC_BAD_CONFIG",
            (8, 0) => "OFPTMFC_BAD_TABLE",
            (10, 0) => "OFPSCFC_BAD_FLAGS",
            (11, 0) => "OFPRRFC_STALE",
            (11, 2) => "OFPRRFC_BAD_ROLE",
            (12, 0) => "OFPMMFC_UNKNOWN",
            (13, 0) => "OFPTFFC_BAD_TABLE",
            (13, 5) => "OFPTFFC_EPERM",
            _ => "unknown",
        }
    }
}

impl fmt::Display for OfpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (type {}, code {})", self.name(), self.typ, self.code)
    }
}
