//! TC hooks: the datapath's programs attached as netlink filters on a clsact
//! qdisc. Filters stay when the process dies (the kernel keeps forwarding);
//! rvs's own are known by a fixed handle and priority, so a restarted daemon
//! replaces them in place (no moment without a program) and removal takes
//! exactly them.

use super::Prog;
use crate::error::BpfError;
use libbpf_rs::{TcHook, TcHookBuilder, TC_EGRESS, TC_INGRESS};
use std::os::fd::{AsFd, BorrowedFd};

/// rvs's filter handle and priority ("rv").
const HANDLE: u32 = 0x7276;
const PRIORITY: u32 = 0x7276;

/// Where a program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// Ingress of a port's device: packets entering the switch.
    Ingress,
    /// Egress of an internal tap: the host sending into the switch.
    FromHost,
    /// Egress of an underlay: Geneve encapsulation.
    Encap,
}

impl Hook {
    /// The program that runs there.
    pub fn prog(self) -> Prog {
        match self {
            Hook::Ingress => Prog::Ingress,
            Hook::FromHost => Prog::Ingress,
            Hook::Encap => Prog::Encap,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Hook::Ingress => "ingress",
            Hook::FromHost => "egress (from host)",
            Hook::Encap => "egress (encap)",
        }
    }

    fn hook(self, fd: BorrowedFd<'_>, ifindex: u32) -> TcHook {
        let mut b = TcHookBuilder::new(fd);
        b.ifindex(ifindex as i32)
            .replace(true)
            .handle(HANDLE)
            .priority(PRIORITY);
        b.hook(match self {
            Hook::Ingress => TC_INGRESS,
            Hook::FromHost | Hook::Encap => TC_EGRESS,
        })
    }
}

/// Attach `prog` at `hook` of `ifindex` (creating the clsact qdisc if needed;
/// replacing rvs's filter there if one is).
pub(super) fn attach(prog: BorrowedFd<'_>, ifindex: u32, hook: Hook) -> Result<(), BpfError> {
    let err = |source| BpfError::Tc {
        hook: hook.name(),
        ifindex,
        source,
    };
    let mut h = hook.hook(prog, ifindex);
    h.create().map_err(err)?;
    h.attach().map_err(err)?;
    Ok(())
}

/// The id of the program in rvs's filter at `hook` of `ifindex`, if one is
/// there and it is rvs's datapath.
pub(super) fn attached_prog_id(ifindex: u32, hook: Hook) -> Option<u32> {
    // A query takes no program: any fd stands in (stdin's), unused.
    let stdin = std::io::stdin();
    let id = hook.hook(stdin.as_fd(), ifindex).query().ok()?;
    let name = libbpf_rs::query::ProgInfoIter::default()
        .find(|p| p.id == id)?
        .name
        .to_string_lossy()
        .into_owned();
    (name == hook.prog().name()).then_some(id)
}

/// Remove rvs's filter at `hook` of `ifindex`; no filter there is no error.
pub fn detach(prog: BorrowedFd<'_>, ifindex: u32, hook: Hook) -> Result<(), BpfError> {
    match hook.hook(prog, ifindex).detach() {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.kind(), libbpf_rs::ErrorKind::NotFound) => Ok(()),
        Err(e) if e.to_string().contains("No such device") => Ok(()),
        Err(source) => Err(BpfError::Tc {
            hook: hook.name(),
            ifindex,
            source,
        }),
    }
}
