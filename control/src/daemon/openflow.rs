//! The daemon's OpenFlow side: for every controller target of a bridge, a
//! listener (`ptcp:`) or a dialer (`tcp:`, reconnecting with backoff), and
//! one thread per connection running a [`Session`] against the bridge.
//! Fail-open (standalone bridges whose `tcp:` controllers are all down) is
//! decided here too.

use super::commands::State;
use crate::bridge::FailMode;
use crate::config::Config;
use crate::flow_mod::FlowMod;
use crate::group::Group;
use crate::openflow::bridge_ops::PC_PORT_DOWN;
use crate::openflow::bridge_ops::{self, N_TABLES};
use crate::openflow::group::{GroupModMsg, GroupStats};
use crate::openflow::message::{Features, FlowRemoved, Role, PPR_ADD, PPR_DELETE, PPR_MODIFY};
use crate::openflow::multipart::{Desc, FlowFilter, FlowStats, PortDesc, PortStats, TableStats};
use crate::openflow::packet::{PacketOutMsg, PortModMsg};
use crate::openflow::{OfSwitch, OfpError, Roles, Session, Target};
use crate::packet_in::{PacketIn, PacketInSink};
use crate::switch::{device_mac, MAX_REMOVED};
use crate::upcall::{lock, SharedSwitch};
use rvs_dataplane::port::poll_readable;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Most connections a bridge serves at once.
const MAX_CONNECTIONS: usize = 64;
/// How often blocked threads look at their stop flag.
const POLL: Duration = Duration::from_millis(100);
/// Quiet time before an ECHO_REQUEST probe, and again before giving up
/// (OVS's default inactivity probe is 5 s).
const PROBE_AFTER: Duration = Duration::from_secs(5);
/// Longest wait between attempts to reach a `tcp:` controller (OVS's
/// max_backoff default).
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// A peer that takes no output this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Packet-ins waiting for one connection (at most this many; past it the
/// copy is counted under the `controller` drop reason).
const MAX_PINS: usize = 1024;
/// Packet-ins a connection thread encodes per turn of its loop.
const PINS_PER_TURN: usize = 64;

/// What the connections of one bridge share.
#[derive(Default)]
struct BridgeConns {
    roles: Mutex<Roles>,
    /// `tcp:` controllers connected now.
    active_up: AtomicUsize,
    /// FLOW_REMOVED notices waiting for each connection.
    removed: Mutex<BTreeMap<u64, Vec<FlowRemoved>>>,
    /// Packet-ins waiting for each connection.
    pins: Mutex<BTreeMap<u64, Inbox>>,
}

/// One connection's packet-ins, and how to wake its thread for them.
struct Inbox {
    queue: VecDeque<PacketIn>,
    /// A byte written here makes the connection's poll return.
    wake: UnixStream,
}

/// Where the datapath's packet-ins go: the inboxes of the connections of
/// their bridge.
#[derive(Default)]
struct PinHub {
    bridges: Mutex<BTreeMap<String, Arc<BridgeConns>>>,
}

impl PacketInSink for PinHub {
    fn deliver(&self, pins: Vec<PacketIn>) -> usize {
        let bridges = lock_map(&self.bridges);
        let mut lost = 0;
        // A batch's packet-ins are mostly of one bridge: one lock of its
        // inboxes, one wake-up of each connection, per run of them.
        let mut rest = &pins[..];
        while let Some(first) = rest.first() {
            let run = rest.iter().take_while(|p| p.bridge == first.bridge).count();
            let (now, later) = rest.split_at(run);
            rest = later;
            let Some(conns) = bridges.get(&first.bridge) else {
                lost += now.len();
                continue;
            };
            let mut taken = vec![false; now.len()];
            for inbox in lock_pins(conns).values_mut() {
                let was_empty = inbox.queue.is_empty();
                for (p, t) in now.iter().zip(taken.iter_mut()) {
                    if inbox.queue.len() < MAX_PINS {
                        inbox.queue.push_back(p.clone());
                        *t = true;
                    }
                }
                if was_empty && !inbox.queue.is_empty() {
                    // The thread takes the whole queue once awake: one byte will do.
                    let _ = (&inbox.wake).write(&[1]);
                }
            }
            lost += taken.iter().filter(|t| !**t).count();
        }
        lost
    }
}

/// Every thread of one target.
struct Running {
    stop: Arc<AtomicBool>,
    /// A listener's address: connecting to it wakes its blocked `accept`.
    wake: Option<SocketAddr>,
}

impl Running {
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(mut a) = self.wake {
            if a.ip().is_unspecified() {
                a.set_ip(match a {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let _ = TcpStream::connect_timeout(&a, POLL);
        }
    }
}

/// The controller connections of every bridge, kept in step with the
/// bridges' targets by [`Controllers::reconcile`].
pub struct Controllers {
    state: Weak<Mutex<State>>,
    running: BTreeMap<(String, Target), Running>,
    /// Each bridge's connections.
    hub: Arc<PinHub>,
    next_conn: Arc<AtomicU64>,
}

impl Controllers {
    /// No connections yet; threads reach the daemon's state through `state`.
    pub fn new(state: Weak<Mutex<State>>) -> Controllers {
        Controllers {
            state,
            running: BTreeMap::new(),
            hub: Arc::default(),
            next_conn: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Where the switch should send packet-ins.
    pub fn pin_sink(&self) -> Arc<dyn PacketInSink> {
        self.hub.clone()
    }

    /// Start what the bridges' targets ask for and stop the rest; decide
    /// fail-open. Returns warnings (a `ptcp:` address that cannot be bound
    /// is tried again at the next call).
    pub fn reconcile(&mut self, sw: &SharedSwitch) -> Vec<String> {
        let wanted: BTreeSet<(String, Target)> = lock(sw)
            .bridges
            .values()
            .flat_map(|b| b.controllers.iter().map(|t| (b.name.clone(), *t)))
            .collect();
        self.running.retain(|k, r| {
            let keep = wanted.contains(k);
            if !keep {
                r.stop();
                tracing::info!("bridge {}: controller {} removed", k.0, k.1);
            }
            keep
        });
        lock_map(&self.hub.bridges).retain(|b, _| wanted.iter().any(|(wb, _)| wb == b));
        let mut warnings = Vec::new();
        for (bridge, target) in wanted {
            if self.running.contains_key(&(bridge.clone(), target)) {
                continue;
            }
            let conns = lock_map(&self.hub.bridges)
                .entry(bridge.clone())
                .or_default()
                .clone();
            let ctx = ConnCtx {
                state: self.state.clone(),
                bridge: bridge.clone(),
                conns,
                next_conn: self.next_conn.clone(),
                stop: Arc::new(AtomicBool::new(false)),
            };
            let stop = ctx.stop.clone();
            let mut wake = None;
            match target {
                Target::Ptcp(addr) => match TcpListener::bind(addr) {
                    Ok(l) => {
                        wake = l.local_addr().ok();
                        tracing::info!(
                            "bridge {bridge}: listening for OpenFlow on {}",
                            wake.unwrap_or(addr)
                        );
                        std::thread::spawn(move || listen(l, ctx));
                    }
                    Err(e) => {
                        warnings.push(format!("bridge {bridge}: {target}: {e}"));
                        continue;
                    }
                },
                Target::Tcp(addr) => {
                    std::thread::spawn(move || dial(addr, ctx));
                }
            }
            self.running.insert((bridge, target), Running { stop, wake });
        }
        self.fail_open(sw);
        warnings
    }

    /// Fail-open, as OVS's standalone mode: a bridge with `tcp:`
    /// controllers, none of them connected, forwards as NORMAL. Listening
    /// targets do not count (OVS's passive connections do not either).
    fn fail_open(&self, sw: &SharedSwitch) {
        let bridges = lock_map(&self.hub.bridges).clone();
        let mut sw = lock(sw);
        let decisions: Vec<(String, bool)> = sw
            .bridges
            .values()
            .map(|b| {
                let dials = b.has_dialed_controllers();
                let up = bridges
                    .get(&b.name)
                    .is_some_and(|c| c.active_up.load(Ordering::Relaxed) > 0);
                (
                    b.name.clone(),
                    b.fail_mode == FailMode::Standalone && dials && !up,
                )
            })
            .collect();
        for (b, on) in decisions {
            sw.set_fail_open(&b, on);
        }
    }

    /// Hand the rules that went (and asked for FLOW_REMOVED) to the
    /// connections of their bridges.
    pub fn dispatch_removed(&self, sw: &SharedSwitch) {
        let gone = lock(sw).take_removed();
        let bridges = lock_map(&self.hub.bridges).clone();
        for r in gone {
            let Some(conns) = bridges.get(&r.bridge) else {
                continue;
            };
            let fr = bridge_ops::flow_removed(&r);
            for q in lock_removed(conns).values_mut() {
                if q.len() < MAX_REMOVED {
                    q.push(fr.clone());
                }
            }
        }
    }

    /// Stop every thread (the daemon is leaving).
    pub fn stop_all(&mut self) {
        for r in self.running.values() {
            r.stop();
        }
        self.running.clear();
    }
}

/// What a connection thread needs.
#[derive(Clone)]
struct ConnCtx {
    state: Weak<Mutex<State>>,
    bridge: String,
    conns: Arc<BridgeConns>,
    next_conn: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl ConnCtx {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.state.strong_count() == 0
    }

    /// Re-decide fail-open after a `tcp:` controller came or went.
    fn fail_open_changed(&self) {
        if let Some(st) = self.state.upgrade() {
            let st = st.lock().unwrap_or_else(|e| e.into_inner());
            st.of.fail_open(&st.sw);
            st.dp.settle();
        }
    }
}

/// Accept connections until stopped (a stop wakes `accept` by connecting).
fn listen(l: TcpListener, ctx: ConnCtx) {
    loop {
        let r = l.accept();
        if ctx.stopped() {
            return;
        }
        match r {
            Ok((s, peer)) => {
                if lock_roles(&ctx.conns).len() >= MAX_CONNECTIONS {
                    // A thread per connection: a flood of them must not
                    // exhaust the daemon.
                    tracing::warn!(
                        "bridge {}: refusing OpenFlow connection from {peer}: {MAX_CONNECTIONS} already",
                        ctx.bridge
                    );
                    continue;
                }
                tracing::info!("bridge {}: OpenFlow connection from {peer}", ctx.bridge);
                // Counted before the thread runs, so a burst cannot pass the cap.
                let conn = ctx.next_conn.fetch_add(1, Ordering::Relaxed);
                lock_roles(&ctx.conns).connect(conn);
                let c = ctx.clone();
                std::thread::spawn(move || serve(s, &c, conn, Session::service(conn)));
            }
            Err(e) => {
                tracing::warn!("bridge {}: accept: {e}", ctx.bridge);
                std::thread::sleep(POLL);
            }
        }
    }
}

/// Keep a connection to a controller: connect, serve, back off, again.
fn dial(addr: SocketAddr, ctx: ConnCtx) {
    let mut backoff = Duration::from_secs(1);
    while !ctx.stopped() {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => {
                tracing::info!("bridge {}: connected to controller {addr}", ctx.bridge);
                backoff = Duration::from_secs(1);
                ctx.conns.active_up.fetch_add(1, Ordering::Relaxed);
                ctx.fail_open_changed();
                let conn = ctx.next_conn.fetch_add(1, Ordering::Relaxed);
                lock_roles(&ctx.conns).connect(conn);
                serve(s, &ctx, conn, Session::new(conn));
                ctx.conns.active_up.fetch_sub(1, Ordering::Relaxed);
                ctx.fail_open_changed();
                tracing::info!("bridge {}: controller {addr} disconnected", ctx.bridge);
            }
            Err(e) => tracing::debug!("bridge {}: controller {addr}: {e}", ctx.bridge),
        }
        let until = Instant::now() + backoff;
        while Instant::now() < until && !ctx.stopped() {
            std::thread::sleep(POLL);
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Run connection `conn` (already counted in the bridge's roles) until it
/// closes, fails, goes quiet or is stopped.
fn serve(mut s: TcpStream, ctx: &ConnCtx, conn: u64, mut session: Session) {
    let _ = s.set_nodelay(true);
    if s.set_read_timeout(Some(POLL)).is_err() || s.set_write_timeout(Some(WRITE_TIMEOUT)).is_err() {
        lock_roles(&ctx.conns).disconnect(conn);
        return;
    }
    let Ok((wake_rx, wake_tx)) = UnixStream::pair() else {
        lock_roles(&ctx.conns).disconnect(conn);
        return;
    };
    let _ = wake_rx.set_nonblocking(true);
    let _ = wake_tx.set_nonblocking(true);
    lock_removed(&ctx.conns).insert(conn, Vec::new());
    lock_pins(&ctx.conns).insert(
        conn,
        Inbox {
            queue: VecDeque::new(),
            wake: wake_tx,
        },
    );
    let fds = [s.as_raw_fd(), wake_rx.as_raw_fd()];

    let mut view = BridgeView {
        ctx: ctx.clone(),
        conn,
        dirty: false,
        save: false,
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_rx = Instant::now();
    let mut probed = false;
    let mut ports = view.port_map();
    let mut ports_checked = Instant::now();
    loop {
        if ports_checked.elapsed() >= POLL {
            ports_checked = Instant::now();
            let now = view.port_map();
            for (reason, desc) in port_changes(&ports, &now) {
                session.port_status(reason, desc, &view);
            }
            ports = now;
        }
        let gone = lock_removed(&ctx.conns)
            .get_mut(&conn)
            .map(std::mem::take)
            .unwrap_or_default();
        for fr in gone {
            session.flow_removed(fr, &view);
        }
        take_packet_ins(&ctx.conns, conn, &mut session, &view, &wake_rx);
        let out = session.take_output();
        if !out.is_empty() && s.write_all(&out).is_err() {
            break;
        }
        if session.closing() || ctx.stopped() {
            break;
        }
        if session.backlog() {
            // Requests held back while the output was full.
            session.receive(&[], &mut view);
            view.settle();
            continue;
        }
        // Until the peer sends, a packet-in arrives, or it is time to look
        // at ports, probes and the stop flag; not at all while packet-ins
        // wait (the output was full), but the peer is still read.
        let more = lock_pins(&ctx.conns)
            .get(&conn)
            .is_some_and(|i| !i.queue.is_empty());
        let wait = if more { 0 } else { POLL.as_millis() as i32 };
        let ready = poll_readable(&fds, wait).unwrap_or(0);
        let read = if ready & 1 != 0 {
            s.read(&mut buf)
        } else {
            Err(ErrorKind::WouldBlock.into())
        };
        match read {
            Ok(0) => break,
            Ok(n) => {
                last_rx = Instant::now();
                probed = false;
                session.receive(&buf[..n], &mut view);
                // Before any reply (a BARRIER's above all) goes out, the
                // changes are in force.
                view.settle();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                let quiet = last_rx.elapsed();
                if quiet >= PROBE_AFTER * 2 {
                    tracing::info!(
                        "bridge {}: OpenFlow peer silent for {quiet:?}: closing",
                        ctx.bridge
                    );
                    break;
                }
                if quiet >= PROBE_AFTER && !probed {
                    session.probe();
                    probed = true;
                }
            }
            Err(_) => break,
        }
    }
    view.settle();
    let _ = s.shutdown(Shutdown::Both);
    lock_roles(&ctx.conns).disconnect(conn);
    lock_removed(&ctx.conns).remove(&conn);
    lock_pins(&ctx.conns).remove(&conn);
}

/// Encode the packet-ins waiting for `conn` while its output has room (the
/// rest wait in the inbox, which bounds them).
fn take_packet_ins(
    conns: &BridgeConns,
    conn: u64,
    session: &mut Session,
    view: &BridgeView,
    wake: &UnixStream,
) {
    // Empty the wake-up bytes first: a packet-in queued after this wakes again.
    let mut sink = [0u8; 64];
    while matches!((&*wake).read(&mut sink), Ok(n) if n > 0) {}
    while !session.pending_output() {
        let batch: Vec<PacketIn> = match lock_pins(conns).get_mut(&conn) {
            Some(inbox) => {
                let n = inbox.queue.len().min(PINS_PER_TURN);
                inbox.queue.drain(..n).collect()
            }
            None => return,
        };
        if batch.is_empty() {
            return;
        }
        for p in &batch {
            session.packet_in(p, view);
        }
    }
}

fn lock_pins(c: &BridgeConns) -> std::sync::MutexGuard<'_, BTreeMap<u64, Inbox>> {
    c.pins.lock().unwrap_or_else(|e| e.into_inner())
}

fn lock_map<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn lock_removed(c: &BridgeConns) -> std::sync::MutexGuard<'_, BTreeMap<u64, Vec<FlowRemoved>>> {
    c.removed.lock().unwrap_or_else(|e| e.into_inner())
}

fn lock_roles(c: &BridgeConns) -> std::sync::MutexGuard<'_, Roles> {
    c.roles.lock().unwrap_or_else(|e| e.into_inner())
}

/// One bridge as a connection sees it.
struct BridgeView {
    ctx: ConnCtx,
    conn: u64,
    /// Rules changed since the last settle.
    dirty: bool,
    /// A rule the configuration keeps changed: save it.
    save: bool,
}

impl BridgeView {
    fn with<R>(&self, default: R, f: impl FnOnce(&State) -> R) -> R {
        match self.ctx.state.upgrade() {
            Some(st) => f(&st.lock().unwrap_or_else(|e| e.into_inner())),
            None => default,
        }
    }

    /// Make the rule changes take effect (and save, when the CLI's rules
    /// changed).
    fn settle(&mut self) {
        if !std::mem::take(&mut self.dirty) {
            return;
        }
        let save = std::mem::take(&mut self.save);
        self.with((), |st| {
            st.dp.settle();
            if save {
                let config = Config::from_switch(&lock(&st.sw));
                if let Err(e) = config.save(&st.db) {
                    tracing::error!(
                        "bridge {}: flow change applied but not saved: {e}",
                        self.ctx.bridge
                    );
                }
            }
        });
    }
}

/// PORT_STATUS messages that take a controller from `old` ports to `new`.
fn port_changes(old: &BTreeMap<u32, PortDesc>, new: &BTreeMap<u32, PortDesc>) -> Vec<(u8, PortDesc)> {
    let gone = old
        .iter()
        .filter(|(n, _)| !new.contains_key(n))
        .map(|(_, p)| (PPR_DELETE, p.clone()));
    let came_or_changed = new.iter().filter_map(|(n, p)| match old.get(n) {
        None => Some((PPR_ADD, p.clone())),
        Some(o) if o != p => Some((PPR_MODIFY, p.clone())),
        Some(_) => None,
    });
    gone.chain(came_or_changed).collect()
}

impl BridgeView {
    fn port_map(&self) -> BTreeMap<u32, PortDesc> {
        self.ports().into_iter().map(|p| (p.port_no, p)).collect()
    }
}

/// A datapath id from the LOCAL port's MAC, as OVS derives it (or from the
/// bridge's name when the device has none).
fn datapath_id(bridge: &str) -> u64 {
    match device_mac(bridge) {
        Some(m) => m.iter().fold(0u64, |a, b| a << 8 | *b as u64),
        None => {
            // FNV-1a: stable across runs and builds.
            let h = bridge.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
            });
            h & 0xffff_ffff_ffff
        }
    }
}

impl OfSwitch for BridgeView {
    fn features(&self) -> Features {
        Features {
            datapath_id: datapath_id(&self.ctx.bridge),
            n_buffers: 0,
            n_tables: N_TABLES,
            // FLOW_STATS | TABLE_STATS | PORT_STATS.
            capabilities: 0x7,
        }
    }

    fn desc(&self) -> Desc {
        Desc {
            mfr: "rvs".into(),
            hw: "rvs userspace/eBPF switch".into(),
            sw: env!("CARGO_PKG_VERSION").into(),
            serial: "None".into(),
            dp: format!("bridge {}", self.ctx.bridge),
        }
    }

    fn ports(&self) -> Vec<PortDesc> {
        self.with(Vec::new(), |st| {
            let attached = st.dp.attached();
            let sw = lock(&st.sw);
            let Ok(br) = sw.bridge(&self.ctx.bridge) else {
                return Vec::new();
            };
            br.ports
                .values()
                .map(|p| PortDesc {
                    port_no: p.ofport,
                    hw_addr: device_mac(&p.name).unwrap_or_default(),
                    name: p.name.clone(),
                    config: p.of_config,
                    // OFPPS_LINK_DOWN for a device port without its device,
                    // or one a controller took down.
                    state: u32::from(
                        p.dp_port.is_some_and(|d| !attached.contains(&d)) || p.of_config & PC_PORT_DOWN != 0,
                    ),
                    curr_speed: 10_000_000,
                })
                .collect()
        })
    }

    fn port_stats(&self, port: Option<u32>) -> Result<Vec<PortStats>, OfpError> {
        Ok(self.with(Vec::new(), |st| {
            let by_dp: BTreeMap<u32, rvs_dataplane::port::PortStats> = st
                .dp
                .snapshots()
                .iter()
                .flat_map(|s| s.port_stats())
                .map(|(no, _, p)| (no, p))
                .collect();
            let sw = lock(&st.sw);
            let Ok(br) = sw.bridge(&self.ctx.bridge) else {
                return Vec::new();
            };
            // An unknown port gets an empty reply, as from OVS.
            br.ports
                .values()
                .filter(|p| port.is_none_or(|n| n == p.ofport))
                .map(|p| {
                    let c = p.dp_port.and_then(|d| by_dp.get(&d)).copied().unwrap_or_default();
                    PortStats {
                        port_no: p.ofport,
                        counters: [
                            c.rx_packets,
                            c.tx_packets,
                            c.rx_bytes,
                            c.tx_bytes,
                            c.rx_dropped,
                            c.tx_dropped,
                            c.rx_errors,
                            c.tx_errors,
                        ],
                        duration_ms: sw.now_ms(),
                    }
                })
                .collect()
        }))
    }

    fn flow_mod(&mut self, fm: &FlowMod) -> Result<(), OfpError> {
        let r = self.with(Err(OfpError::FLOW_MOD_UNKNOWN), |st| {
            bridge_ops::flow_mod(&mut lock(&st.sw), &self.ctx.bridge, fm)
        })?;
        self.dirty = true;
        self.save |= r.persistent;
        Ok(())
    }

    fn flows(&self, f: &FlowFilter) -> Vec<FlowStats> {
        self.with(Vec::new(), |st| {
            st.dp.credit(&st.sw);
            bridge_ops::flows(&lock(&st.sw), &self.ctx.bridge, f)
        })
    }

    fn tables(&self) -> Vec<TableStats> {
        self.with(Vec::new(), |st| {
            bridge_ops::tables(&lock(&st.sw), &self.ctx.bridge)
        })
    }

    fn role(&self, conn: u64) -> u32 {
        lock_roles(&self.ctx.conns).role(conn)
    }

    fn role_request(&mut self, conn: u64, req: Role) -> Result<Role, OfpError> {
        debug_assert_eq!(conn, self.conn);
        lock_roles(&self.ctx.conns).request(conn, req)
    }

    fn group_mod(&mut self, gm: &GroupModMsg) -> Result<(), OfpError> {
        let gone = self.with(Err(OfpError { typ: 6, code: 1 }), |st| {
            bridge_ops::group_mod(&mut lock(&st.sw), &self.ctx.bridge, gm)
        })?;
        self.dirty = true;
        // A deleted group takes the CLI's rules that sent to it too.
        self.save |= gone.iter().any(|e| !e.from_controller);
        Ok(())
    }

    fn groups(&self) -> Vec<(Group, GroupStats)> {
        self.with(Vec::new(), |st| {
            bridge_ops::groups(&lock(&st.sw), &self.ctx.bridge)
        })
    }

    fn port_mod(&mut self, pm: &PortModMsg) -> Result<(), OfpError> {
        let changed = self.with(Err(OfpError::PORT_MOD_BAD_PORT), |st| {
            let mut sw = lock(&st.sw);
            let mac = sw
                .bridge(&self.ctx.bridge)
                .ok()
                .and_then(|b| b.ports.get(&pm.port_no))
                .and_then(|p| device_mac(&p.name));
            bridge_ops::port_mod(&mut sw, &self.ctx.bridge, pm, mac)
        })?;
        // Before a reply leaves, no cached flow forwards by the old setting.
        self.dirty |= changed;
        Ok(())
    }

    fn packet_out(&mut self, po: &PacketOutMsg) -> Result<(), OfpError> {
        self.with(Err(OfpError::BAD_REQUEST_PORT), |st| {
            let e = bridge_ops::packet_out(&mut lock(&st.sw), &self.ctx.bridge, po)?;
            st.dp.execute(e);
            Ok(())
        })
    }
}
