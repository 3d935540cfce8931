//! rvs's datapath actions as the eBPF datapath's action entries. A flow is
//! offloaded only when every action has a kernel form; the others (learning,
//! the VTEP's ARP and ping, ND rewrites, `ct()` that sets a mark or label,
//! a recirculation that is not the last action) stay with userspace, whose
//! caches then handle those packets.

use crate::action::Action;
use crate::tunnel::TunnelHeader;
use crate::DropReason;
use rvs_bpf::dp::abi::{self, Encap, ENCAP_MAX, MAX_ACTIONS, MAX_PORTS};

/// Why a flow stays in userspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotOffloaded {
    /// An action with no kernel form (named).
    Action(&'static str),
    /// More actions than a kernel flow holds.
    TooManyActions,
    /// A port number beyond the kernel's port table.
    PortRange,
    /// A tunnel header the kernel cannot push (too long, IPv4 options).
    TunnelHeader,
    /// The encapsulation table is full.
    EncapsFull,
}

/// Gives each distinct tunnel header an encap slot.
pub trait EncapSlots {
    /// The slot of `e` (added if new), or `None` when the table is full.
    fn slot(&mut self, e: &Encap) -> Option<u16>;
}

/// The kernel form of a tunnel header.
pub fn encap_of(h: &TunnelHeader) -> Option<Encap> {
    let b = h.as_bytes();
    // Outer Ethernet, a 20-byte IPv4 header (the kernel fills in lengths and
    // the checksum at fixed offsets), UDP, Geneve.
    if b.len() > ENCAP_MAX || b.len() < 50 || b[14] != 0x45 {
        return None;
    }
    let mut e = Encap {
        len: b.len() as u16,
        base_csum: h.base_csum(),
        ..Encap::default()
    };
    e.hdr[..b.len()].copy_from_slice(b);
    Some(e)
}

fn port(p: u32) -> Result<u32, NotOffloaded> {
    if (p as usize) < MAX_PORTS {
        Ok(p)
    } else {
        Err(NotOffloaded::PortRange)
    }
}

/// Encode `actions`; the result has at least one entry (no actions: an
/// explicit drop, counted as `action` like userspace counts it).
pub fn encode(actions: &[Action], encaps: &mut impl EncapSlots) -> Result<Vec<abi::Action>, NotOffloaded> {
    if let [Action::TunnelPop(p)] = actions {
        return Ok(vec![abi::Action {
            ty: abi::action::TUNNEL_POP,
            u32a: port(*p)?,
            ..abi::Action::default()
        }]);
    }
    if actions.is_empty() {
        return encode(&[Action::Drop(DropReason::Action)], encaps);
    }
    if actions.len() > MAX_ACTIONS {
        return Err(NotOffloaded::TooManyActions);
    }
    let mut out = Vec::with_capacity(actions.len());
    // The kernel looks a flow's connection up before any action runs, by
    // the packet's key: one ct() per flow, after no address or port rewrite.
    let mut tuple_rewritten = false;
    let mut has_ct = false;
    for (i, act) in actions.iter().enumerate() {
        let mut a = abi::Action::default();
        match act {
            Action::Output(p) => {
                a.ty = abi::action::OUTPUT;
                a.u32a = port(*p)?;
            }
            Action::TunnelOutput(h, p) => {
                a.ty = abi::action::TUNNEL_OUTPUT;
                a.u32a = port(*p)?;
                let e = encap_of(h).ok_or(NotOffloaded::TunnelHeader)?;
                a.u16a = encaps.slot(&e).ok_or(NotOffloaded::EncapsFull)?;
            }
            Action::PushVlan { tpid, tci } => {
                a.ty = abi::action::PUSH_VLAN;
                // As userspace sends it: the CFI ("present") bit is not sent.
                a.u16a = *tci & !crate::flow::VLAN_CFI;
                a.data[..2].copy_from_slice(&tpid.to_be_bytes());
            }
            Action::PopVlan => a.ty = abi::action::POP_VLAN,
            Action::SetEthSrc(m) => {
                a.ty = abi::action::SET_ETH_SRC;
                a.data[..6].copy_from_slice(m);
            }
            Action::SetEthDst(m) => {
                a.ty = abi::action::SET_ETH_DST;
                a.data[..6].copy_from_slice(m);
            }
            Action::SetIpv4(s) => {
                tuple_rewritten |= s.src.is_some() || s.dst.is_some();
                a.ty = abi::action::SET_IPV4;
                for (i, v) in [s.src, s.dst].iter().enumerate() {
                    if let Some(ip) = v {
                        a.flags |= 1 << i;
                        a.data[4 * i..4 * i + 4].copy_from_slice(&ip.octets());
                    }
                }
                if let Some(t) = s.tos {
                    a.flags |= 4;
                    a.data[8] = t;
                }
                if let Some(t) = s.ttl {
                    a.flags |= 8;
                    a.data[9] = t;
                }
            }
            Action::SetTransport(t) => {
                tuple_rewritten = true;
                a.ty = abi::action::SET_L4;
                for (i, v) in [t.src, t.dst].iter().enumerate() {
                    if let Some(p) = v {
                        a.flags |= 1 << i;
                        a.data[2 * i..2 * i + 2].copy_from_slice(&p.to_be_bytes());
                    }
                }
            }
            Action::SetIpv6(s) => {
                tuple_rewritten |= s.src.is_some() || s.dst.is_some();
                a.ty = abi::action::SET_IPV6;
                for (i, v) in [s.src, s.dst].iter().enumerate() {
                    if let Some(ip) = v {
                        a.flags |= 1 << i;
                        a.data[16 * i..16 * i + 16].copy_from_slice(&ip.octets());
                    }
                }
                if let Some(l) = s.label {
                    a.flags |= 4;
                    a.data[32..36].copy_from_slice(&(l & 0xf_ffff).to_be_bytes());
                }
                if let Some(t) = s.tclass {
                    a.flags |= 8;
                    a.data[36] = t;
                }
                if let Some(h) = s.hlimit {
                    a.flags |= 16;
                    a.data[37] = h;
                }
            }
            Action::SetArp(s) => {
                a.ty = abi::action::SET_ARP;
                if let Some(op) = s.op {
                    a.flags |= 1;
                    a.data[0..2].copy_from_slice(&op.to_be_bytes());
                }
                if let Some(m) = s.sha {
                    a.flags |= 2;
                    a.data[2..8].copy_from_slice(&m);
                }
                if let Some(ip) = s.spa {
                    a.flags |= 4;
                    a.data[8..12].copy_from_slice(&ip.octets());
                }
                if let Some(m) = s.tha {
                    a.flags |= 8;
                    a.data[12..18].copy_from_slice(&m);
                }
                if let Some(ip) = s.tpa {
                    a.flags |= 16;
                    a.data[18..22].copy_from_slice(&ip.octets());
                }
            }
            Action::Drop(r) => {
                a.ty = abi::action::DROP;
                a.u16a = *r as u16;
            }
            Action::SetNd(_) => return Err(NotOffloaded::Action("set(nd)")),
            Action::TunnelPush(_) => return Err(NotOffloaded::Action("tnl_push")),
            Action::TunnelPop(_) => return Err(NotOffloaded::Action("tnl_pop among other actions")),
            Action::Recirculate(id) => {
                if i + 1 != actions.len() {
                    return Err(NotOffloaded::Action("recirc before other actions"));
                }
                a.ty = abi::action::RECIRC;
                a.u32a = *id;
                a.u16a = DropReason::RecircDepth as u16;
            }
            Action::Ct(c) => {
                if c.mark.is_some() || c.label.is_some() {
                    return Err(NotOffloaded::Action("ct(exec(...))"));
                }
                // The kernel program does not translate: such flows (and
                // the connections they translate) stay in userspace.
                if c.nat.is_some() {
                    return Err(NotOffloaded::Action("ct(nat)"));
                }
                if has_ct {
                    return Err(NotOffloaded::Action("two ct() in a flow"));
                }
                if tuple_rewritten {
                    return Err(NotOffloaded::Action("ct() after an address or port rewrite"));
                }
                has_ct = true;
                a.ty = abi::action::CT;
                a.u16a = c.zone;
            }
            Action::CtClear => a.ty = abi::action::CT_CLEAR,
            Action::Userspace(_) => return Err(NotOffloaded::Action("userspace")),
        }
        out.push(a);
    }
    // The final action, when an output, sends the packet itself.
    if let Some(last) = out.last_mut() {
        if matches!(last.ty, abi::action::OUTPUT | abi::action::TUNNEL_OUTPUT) {
            last.flags2 |= abi::action::LAST;
        }
    }
    Ok(out)
}

/// The kernel flow of encoded actions `acts` (its flags say whether the
/// connection is looked up first, and in which zone).
pub fn kernel_flow(gen: u64, id: u32, mask: &[u64; abi::KEY_WORDS], acts: &[abi::Action]) -> abi::Flow {
    let mut flow = abi::Flow {
        gen,
        id,
        n_actions: acts.len() as u16,
        mask: *mask,
        ..abi::Flow::default()
    };
    flow.act[..acts.len()].copy_from_slice(acts);
    if let Some(ct) = acts.iter().find(|a| a.ty == abi::action::CT) {
        flow.flags |= abi::flow_flags::CT;
        flow.ct_zone = ct.u16a;
    }
    flow
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{SetIpv4, SetTransport};
    use crate::tunnel::GeneveEncap;

    #[derive(Default)]
    struct Slots(Vec<Encap>);
    impl EncapSlots for Slots {
        fn slot(&mut self, e: &Encap) -> Option<u16> {
            let i = self.0.iter().position(|x| x == e).unwrap_or_else(|| {
                self.0.push(*e);
                self.0.len() - 1
            });
            Some(i as u16)
        }
    }

    #[test]
    fn offloadable_actions_encode_and_others_stay_in_userspace() {
        let h = TunnelHeader::geneve(&GeneveEncap::new(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            "198.18.0.1".parse().unwrap(),
            "198.18.0.2".parse().unwrap(),
            5001,
        ));
        let mut slots = Slots::default();
        let acts = vec![
            Action::PopVlan,
            Action::SetIpv4(SetIpv4 {
                ttl: Some(9),
                ..Default::default()
            }),
            Action::TunnelOutput(Box::new(h.clone()), 4),
            Action::TunnelOutput(Box::new(h), 4),
            Action::SetTransport(SetTransport {
                src: None,
                dst: Some(53),
            }),
            Action::Output(2),
        ];
        let e = encode(&acts, &mut slots).unwrap();
        assert_eq!(e.len(), 6);
        assert_eq!(slots.0.len(), 1, "one slot for one distinct header");
        assert_eq!(
            (e[2].ty, e[2].u32a, e[2].u16a),
            (abi::action::TUNNEL_OUTPUT, 4, 0)
        );
        assert_eq!(e[2].flags2, 0, "a clone: more follows");
        assert_eq!(e[5].flags2, abi::action::LAST);
        assert_eq!((e[1].flags, e[1].data[9]), (8, 9));
        assert_eq!((e[4].flags, &e[4].data[2..4]), (2, &[0, 53][..]));
        let none = encode(&[], &mut slots).unwrap();
        assert_eq!(
            (none[0].ty, none[0].u16a),
            (abi::action::DROP, DropReason::Action as u16)
        );
        assert_eq!(
            encode(&[Action::Userspace(0)], &mut slots),
            Err(NotOffloaded::Action("userspace"))
        );
        assert_eq!(
            encode(&[Action::Output(5000)], &mut slots),
            Err(NotOffloaded::PortRange)
        );
        // ct(): the kernel looks the connection up first, so one per flow,
        // before any address or port rewrite, no exec; recirc ends a flow.
        let ct = |zone| {
            Action::Ct(Box::new(crate::conntrack::CtAction {
                zone,
                ..Default::default()
            }))
        };
        let e = encode(&[Action::CtClear, ct(513), Action::Recirculate(9)], &mut slots).unwrap();
        assert_eq!(
            e.iter().map(|a| (a.ty, a.u16a, a.u32a)).collect::<Vec<_>>(),
            [
                (abi::action::CT_CLEAR, 0, 0),
                (abi::action::CT, 513, 0),
                (abi::action::RECIRC, DropReason::RecircDepth as u16, 9)
            ]
        );
        let exec = Action::Ct(Box::new(crate::conntrack::CtAction {
            commit: true,
            mark: Some((1, 1)),
            ..Default::default()
        }));
        let port_rewrite = Action::SetTransport(SetTransport {
            src: Some(1),
            dst: None,
        });
        for bad in [
            vec![exec],
            vec![ct(1), ct(2)],
            vec![port_rewrite, ct(1)],
            vec![Action::Recirculate(1), Action::Output(2)],
        ] {
            assert!(
                matches!(encode(&bad, &mut slots), Err(NotOffloaded::Action(_))),
                "{bad:?}"
            );
        }
        // (a TTL rewrite keeps the tuple: a router's hop before the next zone)
        let ttl = Action::SetIpv4(SetIpv4 {
            ttl: Some(63),
            ..Default::default()
        });
        assert!(encode(&[ttl, ct(2), Action::Recirculate(3)], &mut slots).is_ok());
        assert_eq!(
            encode(&[Action::TunnelPop(0)], &mut slots).unwrap()[0].ty,
            abi::action::TUNNEL_POP
        );
    }
}
