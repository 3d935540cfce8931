//! Tunnels: Geneve (RFC 8926) over IPv4.
//!
//! [`geneve`] holds the wire format (a zero-copy [`GenevePacket`] view and a plain
//! [`GeneveRepr`], in the style of smoltcp's `wire`); [`TunnelHeader`] is the
//! precomputed outer header that a `TunnelPush` action prepends; [`decap`] strips
//! and validates the outer headers and fills the packet's tunnel metadata;
//! [`GeneveOptMap`] says which options become flow-key metadata slots.

mod decap;
mod encap;
mod error;
pub mod geneve;
mod optmap;

pub use decap::decap;
pub use encap::{GeneveEncap, TunnelHeader, MAX_TUNNEL_HEADER};
pub use error::GeneveError;
pub use geneve::{GeneveOption, GenevePacket, GeneveRepr, GENEVE_PORT, PROTO_ETHERNET};
pub use optmap::{GeneveOptMap, OptMapError, OptMapping};
