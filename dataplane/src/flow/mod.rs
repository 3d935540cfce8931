//! Flow keys: what the caches match on.
//!
//! A [`FlowKey`] is a fixed array of 64-bit words (like OVS's `struct flow` seen as
//! a miniflow): every field lives at a fixed word, shift and width, so masking,
//! hashing and comparing are plain word loops. [`FlowMask`] has the same shape.

mod extract;
mod field;
mod hash;
mod key;
mod mask;

pub use extract::{nd_fields, ExtractError, Layers, NdFields};
pub use field::{Field, ARP_SHA, ARP_THA};
pub use hash::hash_words;
pub use key::{
    FlowKey, MacAddr, FRAG_ANY, FRAG_LATER, KEY_WORDS, TUN_FLAG_CSUM, TUN_FLAG_KEY, TUN_FLAG_OAM, VLAN_CFI,
};
pub use mask::FlowMask;
