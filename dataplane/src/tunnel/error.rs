//! Errors of Geneve parsing, encapsulation and decapsulation.

use crate::drop::DropReason;
use thiserror::Error;

/// What is wrong with a Geneve packet (or the outer headers around it).
#[derive(Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneveError {
    /// Outer Ethernet/IPv4/UDP missing, truncated, fragmented or not to port 6081.
    #[error("not a well-formed Geneve/UDP/IPv4 frame: {0}")]
    Outer(&'static str),
    /// Shorter than the 8-byte Geneve header.
    #[error("Geneve header truncated")]
    Truncated,
    /// Version is not 0.
    #[error("unsupported Geneve version {0}")]
    Version(u8),
    /// The option length or an option's length runs past its bounds.
    #[error("Geneve option length past the end of the header or packet")]
    OptLen,
    /// An option with the critical bit that the option map does not know.
    #[error("unknown critical Geneve option class {class:#06x} type {typ:#04x}")]
    CriticalOption {
        /// Option class.
        class: u16,
        /// Option type (with the critical bit).
        typ: u8,
    },
    /// The O bit is set: a control message for the tunnel endpoint, which must
    /// never reach a tenant (RFC 8926 3.4).
    #[error("Geneve OAM frame")]
    Oam,
    /// Protocol type is not Transparent Ethernet Bridging.
    #[error("Geneve protocol type {0:#06x} is not Ethernet (0x6558)")]
    Protocol(u16),
    /// Options would exceed 252 bytes, or an option's data is not a multiple of 4 bytes.
    #[error("Geneve options too long or not 4-byte aligned")]
    OptionsTooLong,
    /// The packet has no headroom for the outer headers.
    #[error("no headroom for the outer headers")]
    NoHeadroom,
}

impl GeneveError {
    /// The drop counter this error is counted under.
    pub fn drop_reason(self) -> DropReason {
        match self {
            GeneveError::Outer(_) | GeneveError::Truncated | GeneveError::OptionsTooLong => {
                DropReason::GeneveMalformed
            }
            GeneveError::Version(_) => DropReason::GeneveVersion,
            GeneveError::OptLen => DropReason::GeneveOptLen,
            GeneveError::CriticalOption { .. } => DropReason::GeneveCritOpt,
            GeneveError::Protocol(_) => DropReason::GeneveProtocol,
            GeneveError::Oam => DropReason::GeneveOam,
            GeneveError::NoHeadroom => DropReason::NoHeadroom,
        }
    }
}
