//! Datapath actions and their executor.

mod arp;
pub(crate) mod checksum;
mod execute;
mod ipv6;
mod l2;
mod l3;
mod l4;
mod nd;

pub use arp::{set_arp, SetArp};
pub use checksum::{checksum_update16, checksum_update32, complete_l4_checksum};
pub use execute::{execute, ActionSink, MAX_RECIRC_DEPTH};
pub use ipv6::{set_ipv6, SetIpv6};
pub use l2::{pop_vlan, push_vlan, set_eth_dst, set_eth_src};
pub use l3::{set_ipv4, SetIpv4};
pub use l4::{set_transport, SetTransport};
pub use nd::{set_nd, SetNd};

use crate::conntrack::CtAction;
use crate::drop::DropReason;
use crate::port::PortNo;
use crate::tunnel::TunnelHeader;
use std::fmt;

/// Offset of the L3 header after up to two VLAN tags, and the ethertype there.
#[inline]
pub(crate) fn l3_offset(d: &[u8]) -> Option<(usize, u16)> {
    let mut off = 12;
    for _ in 0..3 {
        let ty = u16::from_be_bytes([*d.get(off)?, *d.get(off + 1)?]);
        if matches!(ty, 0x8100 | 0x88a8 | 0x9100) {
            off += 4;
        } else {
            return Some((off + 2, ty));
        }
    }
    None
}

/// Offset of the L3 header of a frame that must carry `ethertype` there:
/// `truncated_eth` when the tags run off the frame, `action_mismatch` when it
/// carries another protocol (a rewrite for a protocol the frame lacks).
#[inline]
pub(crate) fn l3_of(d: &[u8], ethertype: u16) -> Result<usize, DropReason> {
    match l3_offset(d) {
        None => Err(DropReason::TruncatedEth),
        Some((l3, ty)) if ty == ethertype => Ok(l3),
        Some(_) => Err(DropReason::ActionMismatch),
    }
}

/// One datapath action. A flow's actions run in order on each packet; an empty
/// list drops the packet.
#[derive(Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a copy of the packet (or the packet itself, when last) to a port.
    Output(PortNo),
    /// Push an 802.1Q/802.1ad tag. `tci` is PCP|VID (the CFI/"present" bit is not sent).
    PushVlan {
        /// 0x8100 or 0x88a8.
        tpid: u16,
        /// Tag control information.
        tci: u16,
    },
    /// Remove the outer VLAN tag.
    PopVlan,
    /// Rewrite the Ethernet source.
    SetEthSrc([u8; 6]),
    /// Rewrite the Ethernet destination.
    SetEthDst([u8; 6]),
    /// Rewrite IPv4 fields, updating the IPv4 and TCP/UDP checksums.
    SetIpv4(SetIpv4),
    /// Rewrite IPv6 traffic class / hop limit.
    SetIpv6(SetIpv6),
    /// Rewrite ARP opcode and addresses.
    SetArp(SetArp),
    /// Rewrite neighbour discovery target / link-layer addresses.
    SetNd(SetNd),
    /// Prepend a Geneve outer header (built once, copied per packet).
    TunnelPush(Box<TunnelHeader>),
    /// Encapsulate a copy of the packet and send it to a port; the packet itself
    /// stays as it was (a flood to several tunnels needs this).
    TunnelOutput(Box<TunnelHeader>, PortNo),
    /// Rewrite TCP/UDP ports, updating the L4 checksum.
    SetTransport(SetTransport),
    /// Strip and validate the Geneve outer header, then recirculate the inner
    /// frame as if it had arrived on the given tunnel port.
    TunnelPop(PortNo),
    /// Look the packet up again with this recirculation id.
    Recirculate(u32),
    /// Send the packet through the connection tracker (its `ct_*` metadata
    /// is set; with `commit`, a new connection is created). Boxed: its
    /// 128-bit label would make every action twice as aligned and a third
    /// bigger, which the hit path pays for.
    Ct(Box<CtAction>),
    /// Forget the packet's connection tracking metadata.
    CtClear,
    /// Drop, counted under the reason.
    Drop(DropReason),
    /// Hand a copy of the packet, as the actions so far left it, to the
    /// upcall handler with this cookie (OVS's `userspace(userdata)`):
    /// 0 for the slow path's own business (the VTEP's ARP and ping), else
    /// what the slow path froze when it translated (a packet-in for a
    /// controller). Execution continues.
    Userspace(u32),
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The datapath-flow text of an action, as `rvs dpctl dump-flows` shows it.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mac = |m: &[u8; 6]| crate::flow::MacAddr(*m);
        match self {
            Action::Output(p) => write!(f, "{p}"),
            // As OVS prints it: the TPID only when it is not 802.1Q's.
            Action::PushVlan { tpid: 0x8100, tci } => {
                write!(f, "push_vlan(vid={},pcp={})", tci & 0xfff, tci >> 13)
            }
            Action::PushVlan { tpid, tci } => write!(
                f,
                "push_vlan(tpid={tpid:#06x},vid={},pcp={})",
                tci & 0xfff,
                tci >> 13
            ),
            Action::PopVlan => f.write_str("pop_vlan"),
            Action::SetEthSrc(m) => write!(f, "set(eth(src={}))", mac(m)),
            Action::SetEthDst(m) => write!(f, "set(eth(dst={}))", mac(m)),
            Action::SetIpv4(s) => write!(f, "set(ipv4({s}))"),
            Action::SetIpv6(s) => write!(f, "set(ipv6({s}))"),
            Action::SetArp(s) => write!(f, "set(arp({s}))"),
            Action::SetNd(s) => write!(f, "set(nd({s}))"),
            Action::TunnelPush(h) => write!(f, "tnl_push({h:?})"),
            Action::TunnelOutput(h, p) => write!(f, "tnl_push({h:?}),{p}"),
            Action::SetTransport(t) => write!(f, "set(l4({t}))"),
            Action::TunnelPop(p) => write!(f, "tnl_pop({p})"),
            Action::Recirculate(id) => write!(f, "recirc({id:#x})"),
            Action::Ct(c) => {
                f.write_str("ct(")?;
                let mut parts = Vec::new();
                if c.commit {
                    parts.push("commit".to_string());
                }
                if c.zone != 0 {
                    parts.push(format!("zone={}", c.zone));
                }
                if let Some((v, m)) = c.mark {
                    parts.push(format!("mark={v:#x}/{m:#x}"));
                }
                if let Some((v, m)) = c.label {
                    parts.push(format!("label={v:#x}/{m:#x}"));
                }
                if let Some(n) = c.nat {
                    parts.push(n.to_string());
                }
                write!(f, "{})", parts.join(","))
            }
            Action::CtClear => f.write_str("ct_clear"),
            Action::Drop(r) => write!(f, "drop({r})"),
            Action::Userspace(0) => f.write_str("userspace"),
            Action::Userspace(c) => write!(f, "userspace(cookie={c:#x})"),
        }
    }
}
