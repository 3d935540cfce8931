//! Datapaths: what runs the cached flows. `ebpf` holds them in the kernel
//! (TC programs rvs loads), with misses upcalled to a PMD thread.

pub mod ebpf;
