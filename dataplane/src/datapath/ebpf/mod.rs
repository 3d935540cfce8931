//! The eBPF datapath: megaflows in the kernel's TC programs (`rvs_bpf::dp`),
//! misses to userspace.

pub mod encode;

#[cfg(test)]
mod tests;
