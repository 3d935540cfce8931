//! Connection tracking, in the spirit of OVS's userspace `lib/conntrack.c`:
//! one table of connections keyed by zone and tuple in both directions, TCP
//! window tracking (pf's), UDP/other and ICMP (echo and the like; errors
//! are `related` to the connection they quote), OVS's default timeouts, a
//! bounded size with per-zone limits, expiry in bounded sweeps, counters.
//!
//! The tracker knows no OpenFlow and does no I/O: a packet goes in as a
//! [`CtPacket`] with the zone and commit of a `ct()` action, and comes out
//! with its `ct_state`, `ct_mark` and `ct_label` (or refused when a commit
//! finds the table or zone full). Time is a millisecond clock the caller
//! passes, so tests drive it.

mod nat;
mod offload;
mod packet;
mod tcp;
mod timeouts;

pub use nat::{flags as nat_flags, NatAction, NatKind, NatParseError, NatRange, Rewrite};
pub use offload::{CtOffload, OffloadedConn};
pub use packet::{CtPacket, TcpSegment, Tuple, Untrackable, L4};
pub use tcp::{TcpConn, TcpState, Update};
pub use timeouts::{Timeout, Timeouts};

use crate::drop::DropReason;
use crate::flow::FlowKey;
use crate::packet::{CtMeta, PacketBuf};
use hashbrown::HashMap;
use slab::Slab;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use thiserror::Error;

/// The tracker shared by the threads of a datapath: both directions of a
/// connection may arrive on different PMDs. One lock per tracked packet
/// (uncontended it costs ~20 ns; sharding by a symmetric tuple hash is the
/// next step if PMDs contend).
pub type SharedConntrack = Arc<Mutex<Conntrack>>;

/// Lock a shared tracker (a thread that panicked holding it left it usable).
pub fn lock(ct: &SharedConntrack) -> MutexGuard<'_, Conntrack> {
    ct.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run `pkt` through `ct()` at `now_ms`: read it as it is now (earlier
/// actions may have rewritten it), track it, and set its `ct_*` metadata.
/// A refused commit is a drop.
pub fn track(ct: &mut Conntrack, pkt: &mut PacketBuf, act: &CtAction, now_ms: u64) -> Result<(), DropReason> {
    let (parsed, layers) = match FlowKey::extract(pkt.data(), &pkt.meta) {
        Ok((k, layers)) => (CtPacket::parse(pkt.data(), &k, layers), layers),
        Err(_) => (Err(Untrackable::L4), Default::default()),
    };
    // A packet this zone translated already (an earlier pass) is looked up
    // as translated and not translated again.
    let prior_nat = if pkt.meta.ct.zone == act.zone {
        pkt.meta.ct.state & (state::SNAT | state::DNAT)
    } else {
        0
    };
    let r = ct
        .execute_after(parsed.as_ref().map_err(|e| *e), act, prior_nat, now_ms)
        .map_err(|_| DropReason::CtRefused)?;
    if let Some(rw) = &r.rewrite {
        nat::rewrite(pkt.data_mut(), layers, rw).map_err(|_| DropReason::MalformedL4)?;
    }
    pkt.meta.ct = CtMeta {
        state: r.state,
        zone: r.zone,
        mark: r.mark,
        label: r.label as u32,
    };
    Ok(())
}

/// `ct_state` bits, OVS's values (`+new` 0x01 ... `+dnat` 0x80).
pub mod state {
    /// Starts a connection (or one not yet answered).
    pub const NEW: u8 = 0x01;
    /// Part of a connection that has seen both directions.
    pub const EST: u8 = 0x02;
    /// Related to a connection (an ICMP error quoting it).
    pub const REL: u8 = 0x04;
    /// In the reply direction.
    pub const RPL: u8 = 0x08;
    /// Invalid: untrackable, or outside the connection's window.
    pub const INV: u8 = 0x10;
    /// Tracked (went through `ct()`).
    pub const TRK: u8 = 0x20;
    /// Its source address (or port) was translated, or its destination
    /// translated back (a reply of a destination-translated connection).
    pub const SNAT: u8 = 0x40;
    /// Its destination was translated, or translated back.
    pub const DNAT: u8 = 0x80;
}

/// OVS's default for the whole table (`dpctl/ct-set-maxconns`).
pub const DEFAULT_MAX_CONNS: usize = 3_000_000;

/// Sizes and timeouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtConfig {
    /// Connections in all zones together.
    pub max_conns: usize,
    /// Connections per zone where `zone_limits` says nothing (0: no limit),
    /// as `dpctl/ct-set-limits default=N`.
    pub default_zone_limit: u32,
    /// Connections allowed in a zone (0: no limit).
    pub zone_limits: std::collections::BTreeMap<u16, u32>,
    /// Timeouts by class.
    pub timeouts: Timeouts,
}

impl Default for CtConfig {
    fn default() -> Self {
        CtConfig {
            max_conns: DEFAULT_MAX_CONNS,
            default_zone_limit: 0,
            zone_limits: Default::default(),
            timeouts: Timeouts::default(),
        }
    }
}

/// What a `ct()` action asks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtAction {
    /// The zone.
    pub zone: u16,
    /// Create the connection if there is none (and keep `mark`/`label`).
    pub commit: bool,
    /// `exec(set_field:V/M->ct_mark)` (with commit only, as in OVS).
    pub mark: Option<(u32, u32)>,
    /// `exec(set_field:V/M->ct_label)`.
    pub label: Option<(u128, u128)>,
    /// `nat` or `nat(src=...|dst=...)`.
    pub nat: Option<NatAction>,
}

/// What a `ct()` action gives the packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtResult {
    /// `ct_state` ([`state`] bits).
    pub state: u8,
    /// `ct_zone`.
    pub zone: u16,
    /// `ct_mark`.
    pub mark: u32,
    /// `ct_label`.
    pub label: u128,
    /// What `ct(nat)` makes of the packet (the caller rewrites it).
    pub rewrite: Option<Rewrite>,
}

/// A commit that could not create its connection (the packet is dropped and
/// counted, as the kernel does when its table is full).
#[derive(Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtRefused {
    /// The table holds `max_conns` connections.
    #[error("connection table full ({0} connections)")]
    Full(usize),
    /// The zone holds its limit.
    #[error("zone {zone} at its limit of {limit} connections")]
    ZoneLimit {
        /// The zone.
        zone: u16,
        /// Its limit.
        limit: u32,
    },
    /// Every translation the NAT range offers (among the first
    /// [`nat::MAX_TRIES`]) is taken.
    #[error("no free address and port in the NAT range")]
    NatExhausted,
}

/// Counters since start (`ct-stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtCounters {
    /// Connections created.
    pub inserted: u64,
    /// Connections removed because they expired.
    pub expired: u64,
    /// Connections ended by a new SYN after they closed.
    pub reopened: u64,
    /// Packets marked invalid.
    pub invalid: u64,
    /// Unanswered connections removed to make room in a full table (the
    /// kernel's early drop).
    pub evicted: u64,
    /// Commits refused: table full.
    pub refused_full: u64,
    /// Commits refused: zone limit.
    pub refused_zone_limit: u64,
    /// Commits refused: no free translation in the NAT range.
    pub refused_nat: u64,
}

/// What a connection is, beyond TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Tcp(TcpConn),
    /// UDP and others; ICMP queries.
    Other,
}

#[derive(Clone, Debug)]
struct Conn {
    zone: u16,
    /// The originating direction.
    orig: Tuple,
    /// The reply direction as it arrives: `orig` reversed, or, when the
    /// connection is translated, the translated originating tuple reversed.
    reply: Tuple,
    /// How the originating direction is translated (`ct(nat)`).
    nat: Option<NatKind>,
    proto: Proto,
    /// A packet in the reply direction has been seen.
    replied: bool,
    timeout: Timeout,
    expires_ms: u64,
    mark: u32,
    label: u128,
    /// The datapath answers for it ([`CtOffload`]): `Some(replied)` as it
    /// was handed over.
    offloaded: Option<bool>,
    /// When it was last handed over.
    handed_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    zone: u16,
    t: Tuple,
}

/// The connection table.
pub struct Conntrack {
    cfg: CtConfig,
    conns: Slab<Conn>,
    /// Both directions of every connection -> (slot, is the reply direction).
    index: HashMap<Key, (usize, bool)>,
    per_zone: HashMap<u16, u32>,
    counters: CtCounters,
    sweep_at: usize,
    offload: Option<Box<dyn CtOffload>>,
}

/// How many slots a full table's commit sweeps for expired connections
/// before it refuses (bounded: a PMD never stalls on a sweep).
const SWEEP_ON_FULL: usize = 256;

impl Default for Conntrack {
    fn default() -> Self {
        Conntrack::new(CtConfig::default())
    }
}

impl Conntrack {
    /// An empty table.
    pub fn new(cfg: CtConfig) -> Self {
        Conntrack {
            cfg,
            conns: Slab::new(),
            index: HashMap::new(),
            per_zone: HashMap::new(),
            counters: CtCounters::default(),
            sweep_at: 0,
            offload: None,
        }
    }

    /// Hand established connections to `o` (a datapath that answers for
    /// them itself); `None`: answer for all of them here.
    pub fn set_offload(&mut self, o: Option<Box<dyn CtOffload>>) {
        self.offload = o;
    }

    /// Connections the datapath answers for.
    pub fn offloaded(&self) -> usize {
        self.conns.iter().filter(|(_, c)| c.offloaded.is_some()).count()
    }

    /// Take over a connection an earlier process handed to the datapath
    /// (found there at start), as it was handed over, its TCP windows
    /// unchecked. Nothing happens if the tuple is known already.
    pub fn adopt(&mut self, c: &OffloadedConn, now_ms: u64) {
        let known = |t: Tuple| self.index.contains_key(&Key { zone: c.zone, t });
        if known(c.orig) || known(c.orig.reverse()) {
            return;
        }
        let (proto, timeout) = match (c.orig.proto, c.replied) {
            (packet::PROTO_TCP, _) => (
                Proto::Tcp(TcpConn::established_liberal()),
                Timeout::TcpEstablished,
            ),
            (_, true) => (Proto::Other, Timeout::OtherBidir),
            (_, false) => (Proto::Other, Timeout::OtherMultiple),
        };
        let slot = self.conns.insert(Conn {
            zone: c.zone,
            orig: c.orig,
            reply: c.orig.reverse(),
            nat: None,
            proto,
            replied: c.replied,
            timeout,
            expires_ms: now_ms.saturating_add(self.cfg.timeouts.ms(timeout)),
            mark: c.mark,
            label: c.label as u128,
            offloaded: Some(c.replied),
            handed_ms: now_ms,
        });
        self.index_both_ways(slot);
    }

    /// Index the connection in `slot` by both directions, and count it.
    fn index_both_ways(&mut self, slot: usize) {
        let (zone, orig, reply) = (
            self.conns[slot].zone,
            self.conns[slot].orig,
            self.conns[slot].reply,
        );
        self.index.insert(Key { zone, t: orig }, (slot, false));
        // A tuple that is its own reverse (same address and port both ways)
        // keeps the originating entry.
        self.index.entry(Key { zone, t: reply }).or_insert((slot, true));
        *self.per_zone.entry(zone).or_insert(0) += 1;
    }

    /// Is the connection in `slot` still alive at `now_ms`? One the datapath
    /// answers for lives on while the datapath sees its packets.
    fn alive(&mut self, slot: usize, now_ms: u64) -> bool {
        let c = &self.conns[slot];
        if c.expires_ms > now_ms {
            return true;
        }
        if c.offloaded.is_none() {
            return false;
        }
        let (zone, orig, t) = (c.zone, c.orig, self.cfg.timeouts.ms(c.timeout));
        let used = self
            .offload
            .as_mut()
            .and_then(|o| o.last_used_ms(zone, &orig, now_ms));
        match used {
            Some(u) if u.saturating_add(t) > now_ms => {
                self.conns[slot].expires_ms = u.saturating_add(t);
                true
            }
            _ => false,
        }
    }

    /// Hand the connection in `slot` to the datapath if it is one the
    /// datapath may answer for (again, if it was answered since, or if it
    /// was handed over half a timeout ago and a packet still came here: the
    /// datapath's entry for that direction went stale while the other kept
    /// the connection alive); take it back if `seg_flags` (a TCP segment's)
    /// can change its state.
    fn follow_offload(&mut self, slot: usize, seg_flags: Option<u16>, now_ms: u64) {
        let Some(o) = self.offload.as_mut() else { return };
        let c = &mut self.conns[slot];
        let state_change = seg_flags.is_some_and(|f| f & tcp::FIN_SYN_RST != 0);
        if c.offloaded.is_some() && state_change {
            o.withdraw(c.zone, &c.orig);
            c.offloaded = None;
            return;
        }
        // The datapath does not translate: a translated connection's
        // packets all come here.
        let eligible = !state_change
            && c.nat.is_none()
            && match &c.proto {
                Proto::Tcp(t) => c.replied && t.established(),
                Proto::Other => c.orig.proto == packet::PROTO_UDP,
            };
        let timeout_ms = self.cfg.timeouts.ms(c.timeout);
        let fresh = now_ms < c.handed_ms.saturating_add(timeout_ms / 2);
        if !eligible || (c.offloaded == Some(c.replied) && fresh) {
            return;
        }
        let oc = OffloadedConn {
            zone: c.zone,
            orig: c.orig,
            mark: c.mark,
            label: c.label as u32,
            replied: c.replied,
            timeout_ms,
        };
        if o.offload(&oc) {
            c.offloaded = Some(c.replied);
            c.handed_ms = now_ms;
            if let Proto::Tcp(t) = &mut c.proto {
                t.liberal = true;
            }
        } else {
            c.offloaded = None;
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CtConfig {
        &self.cfg
    }

    /// Change limits and timeouts (existing connections keep their expiry
    /// until their next packet; nothing is evicted by a lower limit).
    pub fn set_config(&mut self, cfg: CtConfig) {
        self.cfg = cfg;
    }

    /// Slots the table has (a sweep's full turn visits them all).
    pub fn capacity(&self) -> usize {
        self.conns.capacity()
    }

    /// Connections in the table.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// True when the table is empty.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Counters since start.
    pub fn counters(&self) -> CtCounters {
        self.counters
    }

    /// Connections in `zone`.
    pub fn zone_len(&self, zone: u16) -> u32 {
        self.per_zone.get(&zone).copied().unwrap_or(0)
    }

    fn zone_limit(&self, zone: u16) -> u32 {
        self.cfg
            .zone_limits
            .get(&zone)
            .copied()
            .unwrap_or(self.cfg.default_zone_limit)
    }

    /// Run `packet` (or the reason it cannot be tracked) through `ct()`
    /// at `now_ms`.
    pub fn execute(
        &mut self,
        packet: Result<&CtPacket, Untrackable>,
        act: &CtAction,
        now_ms: u64,
    ) -> Result<CtResult, CtRefused> {
        self.execute_after(packet, act, 0, now_ms)
    }

    /// [`Conntrack::execute`] for a packet that this zone's `ct(nat)` has
    /// translated already in an earlier pass (`prior_nat`: the `+snat`/
    /// `+dnat` bits it got): it is looked up as translated, keeps its bits
    /// and is not translated again (OVS's userspace tracker does the same).
    pub fn execute_after(
        &mut self,
        packet: Result<&CtPacket, Untrackable>,
        act: &CtAction,
        prior_nat: u8,
        now_ms: u64,
    ) -> Result<CtResult, CtRefused> {
        let mut r = CtResult {
            state: state::TRK,
            zone: act.zone,
            ..CtResult::default()
        };
        let Ok(pkt) = packet else {
            return Ok(self.invalid(r));
        };
        let key = Key {
            zone: act.zone,
            t: pkt.tuple,
        };
        let translated = |t: Tuple| Key { zone: act.zone, t };
        let found = match prior_nat {
            0 => self.index.get(&key).copied(),
            // Translated: its reverse is the other direction as it arrives.
            _ => (self.index.get(&translated(pkt.tuple.reverse())))
                .map(|&(slot, reply)| (slot, !reply))
                .or_else(|| self.index.get(&key).copied()),
        };
        if let Some((slot, reply)) = found {
            match self.update(slot, pkt, reply, now_ms) {
                Some(Update::Valid(_) | Update::Loose) => {
                    let c = &mut self.conns[slot];
                    r.state |= if c.replied { state::EST } else { state::NEW };
                    if reply {
                        r.state |= state::RPL;
                    }
                    r.state |= prior_nat;
                    if let (Some(kind), Some(_), 0) = (c.nat, act.nat, prior_nat) {
                        let (rw, bit) = nat::plan(&c.orig, &c.reply.reverse(), kind, reply, false);
                        r.rewrite = Some(rw);
                        r.state |= bit;
                    }
                    let (mark, label) = (c.mark, c.label);
                    if act.commit {
                        apply(&mut c.mark, &mut c.label, act);
                    }
                    r.mark = c.mark;
                    r.label = c.label;
                    if c.offloaded.is_some() && (c.mark, c.label) != (mark, label) {
                        // The datapath's copy would answer with the old ones.
                        if let Some(o) = self.offload.as_mut() {
                            o.withdraw(c.zone, &c.orig);
                        }
                        c.offloaded = None;
                    }
                    let flags = match &pkt.l4 {
                        L4::Tcp(seg) => Some(seg.flags),
                        _ => None,
                    };
                    self.follow_offload(slot, flags, now_ms);
                    return Ok(r);
                }
                Some(Update::Invalid) => return Ok(self.invalid(r)),
                // Expired or closed and reopened: it is gone; start again.
                Some(Update::Reopen) | None => {}
            }
        }
        if let L4::IcmpError(quoted) = pkt.l4 {
            // The error travels against the quoted packet: the quoted
            // tuple reversed is the error's direction as it arrives (the
            // quoted tuple itself, once the error has been translated).
            let found = (self.index.get(&translated(quoted.reverse())).copied())
                .or_else(|| self.index.get(&translated(quoted)).map(|&(slot, q)| (slot, !q)));
            return match found {
                Some((slot, reply)) if self.conns[slot].expires_ms > now_ms => {
                    let c = &self.conns[slot];
                    r.state |= state::REL | if reply { state::RPL } else { 0 } | prior_nat;
                    r.mark = c.mark;
                    r.label = c.label;
                    if let (Some(kind), Some(_), 0) = (c.nat, act.nat, prior_nat) {
                        let (rw, bit) = nat::plan(&c.orig, &c.reply.reverse(), kind, reply, true);
                        r.rewrite = Some(rw);
                        r.state |= bit;
                    }
                    Ok(r)
                }
                _ => Ok(self.invalid(r)),
            };
        }
        let may_start = match &pkt.l4 {
            L4::Tcp(seg) => tcp::valid_new(seg),
            L4::IcmpQuery { request } => *request,
            L4::Other => true,
            L4::IcmpError(_) => false,
        };
        if !may_start {
            return Ok(self.invalid(r));
        }
        r.state |= state::NEW;
        if act.commit {
            let slot = self.insert(pkt, act, now_ms)?;
            let c = &self.conns[slot];
            r.mark = c.mark;
            r.label = c.label;
            if let Some(kind) = c.nat {
                let (rw, bit) = nat::plan(&c.orig, &c.reply.reverse(), kind, false, false);
                r.rewrite = Some(rw);
                r.state |= bit;
            }
            self.follow_offload(slot, None, now_ms);
        }
        Ok(r)
    }

    fn invalid(&mut self, mut r: CtResult) -> CtResult {
        self.counters.invalid += 1;
        r.state |= state::INV;
        r
    }

    /// Apply a packet to the connection in `slot`; `None` if it had expired
    /// (then it is removed).
    fn update(&mut self, slot: usize, pkt: &CtPacket, reply: bool, now_ms: u64) -> Option<Update> {
        if !self.alive(slot, now_ms) {
            self.remove(slot);
            self.counters.expired += 1;
            return None;
        }
        let c = &mut self.conns[slot];
        let u = match (&mut c.proto, &pkt.l4) {
            (Proto::Tcp(t), L4::Tcp(seg)) => t.update(seg, reply),
            (Proto::Tcp(_), _) => Update::Invalid,
            (Proto::Other, _) => {
                let icmp = matches!(pkt.l4, L4::IcmpQuery { .. });
                let t = if reply || c.replied {
                    if icmp {
                        Timeout::IcmpReply
                    } else {
                        Timeout::OtherBidir
                    }
                } else if icmp {
                    Timeout::IcmpFirst
                } else {
                    Timeout::OtherMultiple
                };
                Update::Valid(t)
            }
        };
        match u {
            Update::Valid(t) => {
                c.replied |= reply;
                c.timeout = t;
                c.expires_ms = now_ms.saturating_add(self.cfg.timeouts.ms(t));
            }
            Update::Loose => c.replied |= reply,
            Update::Invalid => {}
            Update::Reopen => {
                self.remove(slot);
                self.counters.reopened += 1;
            }
        }
        Some(u)
    }

    fn insert(&mut self, pkt: &CtPacket, act: &CtAction, now_ms: u64) -> Result<usize, CtRefused> {
        if self.conns.len() >= self.cfg.max_conns {
            self.sweep(now_ms, SWEEP_ON_FULL);
            if self.conns.len() >= self.cfg.max_conns && !self.early_drop() {
                self.counters.refused_full += 1;
                return Err(CtRefused::Full(self.cfg.max_conns));
            }
        }
        let limit = self.zone_limit(act.zone);
        if limit != 0 && self.zone_len(act.zone) >= limit {
            self.counters.refused_zone_limit += 1;
            return Err(CtRefused::ZoneLimit {
                zone: act.zone,
                limit,
            });
        }
        let (reply, nat) = match act.nat {
            Some(NatAction::Range(range)) => {
                let x = self.translation(act.zone, &pkt.tuple, &range).ok_or_else(|| {
                    self.counters.refused_nat += 1;
                    CtRefused::NatExhausted
                })?;
                (x.reverse(), (x != pkt.tuple).then_some(range.kind))
            }
            _ => (pkt.tuple.reverse(), None),
        };
        let (proto, timeout) = match &pkt.l4 {
            L4::Tcp(seg) => (Proto::Tcp(TcpConn::new(seg)), TcpConn::first_timeout()),
            L4::IcmpQuery { .. } => (Proto::Other, Timeout::IcmpFirst),
            _ => (Proto::Other, Timeout::OtherFirst),
        };
        let mut c = Conn {
            zone: act.zone,
            orig: pkt.tuple,
            reply,
            nat,
            proto,
            replied: false,
            timeout,
            expires_ms: now_ms.saturating_add(self.cfg.timeouts.ms(timeout)),
            mark: 0,
            label: 0,
            offloaded: None,
            handed_ms: 0,
        };
        apply(&mut c.mark, &mut c.label, act);
        let slot = self.conns.insert(c);
        self.index_both_ways(slot);
        self.counters.inserted += 1;
        Ok(slot)
    }

    /// The translated originating tuple a new connection from `orig` gets
    /// under `range`: the first of [`nat::choices`] whose reply direction no
    /// connection of the zone uses.
    fn translation(&self, zone: u16, orig: &Tuple, range: &NatRange) -> Option<Tuple> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (zone, orig.src, orig.dst, orig.sport, orig.dport, orig.proto).hash(&mut h);
        let free = |t: &Tuple| {
            !self.index.contains_key(&Key { zone, t: t.reverse() })
                && (t == orig || !self.index.contains_key(&Key { zone, t: *t }))
        };
        nat::choices(orig, range, h.finish()).find(free)
    }

    fn remove(&mut self, slot: usize) {
        let c = self.conns.remove(slot);
        if c.offloaded.is_some() {
            if let Some(o) = self.offload.as_mut() {
                o.withdraw(c.zone, &c.orig);
            }
        }
        for t in [c.orig, c.reply] {
            let k = Key { zone: c.zone, t };
            if self.index.get(&k).is_some_and(|(s, _)| *s == slot) {
                self.index.remove(&k);
            }
        }
        if let Some(n) = self.per_zone.get_mut(&c.zone) {
            *n -= 1;
            if *n == 0 {
                self.per_zone.remove(&c.zone);
            }
        }
    }

    /// Make room in a full table as the kernel's `early_drop` does: remove
    /// a connection that has never been answered (a half-open one: what a
    /// SYN flood fills a table with), looked for among the next
    /// [`SWEEP_ON_FULL`] slots. Answered connections are never removed to
    /// make room. False when none was found.
    fn early_drop(&mut self) -> bool {
        let cap = self.conns.capacity();
        for _ in 0..SWEEP_ON_FULL.min(cap) {
            let i = self.sweep_at % cap;
            self.sweep_at = (i + 1) % cap;
            if self.conns.get(i).is_some_and(|c| !c.replied) {
                self.remove(i);
                self.counters.evicted += 1;
                return true;
            }
        }
        false
    }

    /// Remove expired connections among the next `budget` slots (a clock
    /// hand over the table: each call is bounded, a full turn visits all).
    /// Returns how many were removed.
    pub fn sweep(&mut self, now_ms: u64, budget: usize) -> usize {
        let cap = self.conns.capacity();
        let mut n = 0;
        for _ in 0..budget.min(cap) {
            let i = self.sweep_at % cap;
            self.sweep_at = (i + 1) % cap;
            if self.conns.contains(i) && !self.alive(i, now_ms) {
                self.remove(i);
                n += 1;
            }
        }
        self.counters.expired += n as u64;
        n
    }

    /// Remove every connection (of `zone` only, if given); returns how many.
    pub fn flush(&mut self, zone: Option<u16>) -> usize {
        let slots: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| zone.is_none_or(|z| c.zone == z))
            .map(|(i, _)| i)
            .collect();
        for &s in &slots {
            self.remove(s);
        }
        slots.len()
    }

    /// Every connection, as `dump-conntrack` shows it.
    pub fn dump(&self, now_ms: u64) -> Vec<ConnEntry> {
        self.conns
            .iter()
            // (one the datapath answers for may have been used there since)
            .filter(|(_, c)| c.expires_ms > now_ms || c.offloaded.is_some())
            .map(|(_, c)| ConnEntry {
                zone: c.zone,
                orig: c.orig,
                reply: c.reply,
                tcp_state: match c.proto {
                    Proto::Tcp(t) => Some((t.peer[0].state, t.peer[1].state)),
                    Proto::Other => None,
                },
                replied: c.replied,
                mark: c.mark,
                label: c.label,
                expires_in_ms: c.expires_ms.saturating_sub(now_ms),
                offloaded: c.offloaded.is_some(),
            })
            .collect()
    }
}

fn apply(mark: &mut u32, label: &mut u128, act: &CtAction) {
    if let Some((v, m)) = act.mark {
        *mark = (*mark & !m) | (v & m);
    }
    if let Some((v, m)) = act.label {
        *label = (*label & !m) | (v & m);
    }
}

/// One connection as `dump-conntrack` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnEntry {
    /// Zone.
    pub zone: u16,
    /// The originating direction.
    pub orig: Tuple,
    /// The reply direction as it arrives (translated, under NAT).
    pub reply: Tuple,
    /// TCP: the originator's and the responder's state.
    pub tcp_state: Option<(TcpState, TcpState)>,
    /// A reply has been seen.
    pub replied: bool,
    /// `ct_mark`.
    pub mark: u32,
    /// `ct_label`.
    pub label: u128,
    /// Until it expires without traffic (seen here: the datapath may have
    /// seen some since, if it answers for the connection).
    pub expires_in_ms: u64,
    /// The datapath answers for it.
    pub offloaded: bool,
}

fn fmt_addr(a: &[u8; 16], v6: bool) -> String {
    if v6 {
        std::net::Ipv6Addr::from(*a).to_string()
    } else {
        std::net::Ipv4Addr::new(a[12], a[13], a[14], a[15]).to_string()
    }
}

fn fmt_dir(f: &mut fmt::Formatter<'_>, t: &Tuple) -> fmt::Result {
    write!(f, "src={},dst={}", fmt_addr(&t.src, t.v6), fmt_addr(&t.dst, t.v6))?;
    match t.proto {
        packet::PROTO_ICMP | packet::PROTO_ICMPV6 => {
            write!(f, ",id={},type={},code=0", t.sport, t.stype)
        }
        packet::PROTO_TCP | packet::PROTO_UDP => write!(f, ",sport={},dport={}", t.sport, t.dport),
        _ => Ok(()),
    }
}

/// OVS's `dpctl/dump-conntrack` line:
/// `tcp,orig=(src=..,dst=..,sport=..,dport=..),reply=(..),zone=1,mark=..,labels=..,protoinfo=(state=ESTABLISHED)`.
impl fmt::Display for ConnEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match (self.orig.proto, self.orig.v6) {
            (packet::PROTO_TCP, _) => "tcp".to_string(),
            (packet::PROTO_UDP, _) => "udp".to_string(),
            (packet::PROTO_ICMP, false) => "icmp".to_string(),
            (packet::PROTO_ICMPV6, true) => "icmpv6".to_string(),
            (p, _) => format!("proto={p}"),
        };
        write!(f, "{name},orig=(")?;
        fmt_dir(f, &self.orig)?;
        write!(f, "),reply=(")?;
        fmt_dir(f, &self.reply)?;
        write!(f, ")")?;
        if self.zone != 0 {
            write!(f, ",zone={}", self.zone)?;
        }
        if self.mark != 0 {
            write!(f, ",mark={}", self.mark)?;
        }
        if self.label != 0 {
            write!(f, ",labels=0x{:x}", self.label)?;
        }
        // As OVS prints its userspace tracker's: one state when both ends
        // agree, else each end's.
        match self.tcp_state {
            Some((o, r)) if o == r => write!(f, ",protoinfo=(state={})", o.name())?,
            Some((o, r)) => write!(f, ",protoinfo=(state_orig={},state_reply={})", o.name(), r.name())?,
            None => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod nat_tests;
#[cfg(test)]
mod tests;
