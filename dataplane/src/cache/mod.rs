//! The two flow caches of the packet path.
//!
//! - [`Emc`]: exact-match cache, direct-mapped (2 ways), per PMD thread.
//! - [`MegaflowCache`]: masked cache, tuple-space search with one hash subtable
//!   per distinct mask, subtables ranked by hits.
//!
//! Both hold [`DpFlow`]s. A flow is valid only while its generation equals the
//! cache's: bumping the generation invalidates every entry in O(1) (a flush), and
//! [`MegaflowCache::revalidate`] re-checks each entry and carries the good ones
//! into the new generation. Either way a rule change never lets a stale entry
//! forward the next packet. Changes of narrow reach (a learned MAC, one rule
//! table) remove only the flows tagged with what changed ([`Invalidations`]).

mod emc;
mod flow;
mod invalidate;
mod megaflow;
mod stats;

pub use emc::{Emc, DEFAULT_EMC_ENTRIES};
pub use flow::{DpFlow, FlowStats};
pub use invalidate::{Invalidations, Seen};
pub use megaflow::{MegaflowCache, Revalidate, DEFAULT_MAX_FLOWS};
pub use stats::{CacheCounters, CacheStats};
