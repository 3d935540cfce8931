//! Errors of loading and attaching the XDP program.

use thiserror::Error;

/// What went wrong with the XDP program.
#[derive(Error, Debug)]
pub enum BpfError {
    /// The interface does not exist (in this network namespace).
    #[error("no network interface named {0:?}")]
    NoSuchInterface(String),
    /// libbpf could not open or load the object (verifier, permissions).
    #[error("loading the XDP program failed (are you root?): {0}")]
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
    /// A map operation failed.
    #[error("XDP map {map}: {source}")]
    Map {
        /// Map name.
        map: &'static str,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
}
