//! Packet buffers, their metadata, and batches.

mod batch;
mod buf;
mod meta;

pub use batch::{Batch, BATCH_SIZE};
pub use buf::{PacketBuf, BUF_SIZE, HEADROOM};
pub use meta::{CtMeta, PacketMeta, TunnelMeta, TUN_MD_SLOTS};
