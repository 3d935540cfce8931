//! OpenFlow 1.3 (and 1.0, see [`v10`]) on the wire: the codec (messages, OXM/NXM matches,
//! instructions, actions incl. OVS's Nicira extensions) and a socket-free
//! [`Session`] that answers a controller or `ovs-ofctl` against a bridge.
//!
//! Hand-written over `std` (a bounds-checked [`wire::Reader`], big-endian
//! writes): no maintained Rust crate decodes the switch side of OpenFlow 1.3
//! with OVS's extensions, and the wire forms here are small and fixed.

pub mod actions;
pub mod bridge_ops;
pub mod error;
pub mod group;
pub mod instructions;
pub mod message;
pub mod multipart;
pub mod oxm;
pub mod packet;
#[cfg(test)]
mod proptests;
pub mod session;
pub mod table_features;
pub mod target;
pub mod v10;
pub mod wire;

pub use error::OfpError;
pub use message::{decode, Message};
pub use session::{OfSwitch, Roles, Session};
pub use target::Target;
