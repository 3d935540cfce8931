//! Errors of loading and attaching the BPF programs (XDP and the eBPF datapath).

use thiserror::Error;

/// What went wrong with a BPF program or its maps.
#[derive(Error, Debug)]
pub enum BpfError {
    /// The interface does not exist (in this network namespace).
    #[error("no network interface named {0:?}")]
    NoSuchInterface(String),
    /// libbpf could not open or load the object (verifier, permissions).
    #[error("loading the BPF program failed (are you root?): {0}")]
    Load(#[source] libbpf_rs::Error),
    /// Neither native nor generic attach worked.
    #[error("attaching XDP to {ifname} failed: {reason}")]
    Attach {
        /// Interface.
        ifname: String,
        /// Why.
        reason: String,
    },
    /// Another live process holds an XDP program on the interface.
    #[error("{ifname} already has XDP program {prog:?} attached by a running process")]
    InUse {
        /// Interface.
        ifname: String,
        /// Name of the program found there.
        prog: String,
    },
    /// A pin directory or pinned object could not be made or removed.
    #[error("bpffs {path}: {source}")]
    Pin {
        /// Path.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Attaching or detaching a TC filter failed.
    #[error("TC {hook} on ifindex {ifindex}: {source}")]
    Tc {
        /// Which hook.
        hook: &'static str,
        /// Interface.
        ifindex: u32,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// BPF_PROG_TEST_RUN failed.
    #[error("test run of {0}: {1}")]
    TestRun(&'static str, #[source] libbpf_rs::Error),
    /// The event reader could not be set up.
    #[error("perf event buffer: {0}")]
    Events(#[source] libbpf_rs::Error),
    /// A map operation failed.
    #[error("BPF map {map}: {source}")]
    Map {
        /// Map name.
        map: &'static str,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
}
