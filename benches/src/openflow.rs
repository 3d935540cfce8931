//! Fixtures of the OpenFlow benchmarks: a bridge behind a sans-IO
//! [`Session`], pre-encoded FLOW_MOD batches as a controller sends them, and
//! a switch whose table-miss rule sends packets to the controller.

use rvs_control::bridge::PortType;
use rvs_control::flow_mod::FlowMod;
use rvs_control::group::Group;
use rvs_control::ofp::{parse_flow, Rule};
use rvs_control::openflow::bridge_ops;
use rvs_control::openflow::group::GroupModMsg;
use rvs_control::openflow::message::{add_flow, Features, Message, Role};
use rvs_control::openflow::multipart::{Desc, FlowFilter, FlowStats, PortDesc, PortStats, TableStats};
use rvs_control::openflow::packet::{PacketOutMsg, PortModMsg};
use rvs_control::openflow::{OfSwitch, OfpError, Session};
use rvs_control::packet_in::{PacketIn, PacketInSink};
use rvs_control::switch::Switch;
use rvs_control::upcall::SwitchUpcall;
use rvs_control::xlate::translate;
use rvs_dataplane::action::Action;
use rvs_dataplane::flow::FlowKey;
use rvs_dataplane::packet::{PacketBuf, PacketMeta};
use rvs_dataplane::pmd::Upcall;
use rvs_dataplane::testing::{udp4, IP_A, IP_B, MAC_A, MAC_B};
use std::sync::{Arc, Mutex};

/// One bridge (`br0`) of a switch, as a session sees it (the daemon's view
/// without the datapath: ports and counters are empty).
pub struct BenchBridge {
    /// The switch.
    pub sw: Switch,
}

impl BenchBridge {
    /// A switch with an empty `br0`.
    pub fn new() -> BenchBridge {
        let mut sw = Switch::new();
        sw.add_bridge("br0").expect("a new switch has no br0");
        BenchBridge { sw }
    }

    /// Rules in `br0`.
    pub fn n_rules(&self) -> usize {
        self.sw.bridge("br0").map_or(0, |b| b.n_rules())
    }
}

impl Default for BenchBridge {
    fn default() -> Self {
        BenchBridge::new()
    }
}

impl OfSwitch for BenchBridge {
    fn features(&self) -> Features {
        Features {
            datapath_id: 1,
            n_buffers: 0,
            n_tables: bridge_ops::N_TABLES,
            capabilities: 7,
        }
    }
    fn desc(&self) -> Desc {
        Desc {
            mfr: "rvs".into(),
            hw: "bench".into(),
            sw: "bench".into(),
            serial: "None".into(),
            dp: "br0".into(),
        }
    }
    fn ports(&self) -> Vec<PortDesc> {
        Vec::new()
    }
    fn port_stats(&self, _: Option<u32>) -> Result<Vec<PortStats>, OfpError> {
        Ok(Vec::new())
    }
    fn flow_mod(&mut self, fm: &FlowMod) -> Result<(), OfpError> {
        bridge_ops::flow_mod(&mut self.sw, "br0", fm).map(|_| ())
    }
    fn flows(&self, f: &FlowFilter) -> Vec<FlowStats> {
        bridge_ops::flows(&self.sw, "br0", f)
    }
    fn tables(&self) -> Vec<TableStats> {
        bridge_ops::tables(&self.sw, "br0")
    }
    fn role(&self, _: u64) -> u32 {
        1
    }
    fn role_request(&mut self, _: u64, r: Role) -> Result<Role, OfpError> {
        Ok(r)
    }
    fn group_mod(&mut self, gm: &GroupModMsg) -> Result<(), OfpError> {
        bridge_ops::group_mod(&mut self.sw, "br0", gm).map(|_| ())
    }
    fn groups(&self) -> Vec<(Group, rvs_control::openflow::group::GroupStats)> {
        bridge_ops::groups(&self.sw, "br0")
    }
    fn port_mod(&mut self, pm: &PortModMsg) -> Result<(), OfpError> {
        bridge_ops::port_mod(&mut self.sw, "br0", pm, None).map(|_| ())
    }
    fn packet_out(&mut self, po: &PacketOutMsg) -> Result<(), OfpError> {
        // Translated, not sent: there is no datapath here.
        bridge_ops::packet_out(&mut self.sw, "br0", po).map(|_| ())
    }
}

/// Packet-ins a [`PinBridge`]'s switch hands over.
#[derive(Default)]
pub struct PinQueue(pub Mutex<Vec<PacketIn>>);

impl PacketInSink for PinQueue {
    fn deliver(&self, pins: Vec<PacketIn>) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend(pins);
        0
    }
}

/// A switch (`br0`, memory ports p1, p2) whose only rule is the table-miss
/// rule `priority=0,actions=CONTROLLER:128`, a UDP frame from p1, and the
/// datapath action its translation gives: what a PMD holds when such a
/// packet hits the cached flow.
pub struct PinBridge {
    /// The slow path, as a PMD calls it.
    pub upcall: SwitchUpcall,
    /// Where the packet-ins go.
    pub queue: Arc<PinQueue>,
    /// The frame.
    pub frame: PacketBuf,
    /// Its key.
    pub key: FlowKey,
    /// The `userspace` cookie of its flow.
    pub cookie: u32,
}

impl PinBridge {
    /// Build it.
    pub fn new() -> PinBridge {
        let mut sw = Switch::new();
        sw.add_bridge("br0").expect("a new switch has no br0");
        for p in ["p1", "p2"] {
            let ty = PortType::System {
                kind: "memory".into(),
            };
            sw.add_port("br0", p, ty, None).expect("a new port");
        }
        sw.replace_flows("br0", "priority=0,actions=CONTROLLER:128")
            .expect("a valid rule");
        let queue = Arc::new(PinQueue::default());
        sw.pin_sink = Some(queue.clone());
        let dp = sw
            .find_port("p1")
            .and_then(|(_, p)| p.dp_port)
            .expect("p1 has a datapath port");
        let bytes = udp4(MAC_A, MAC_B, IP_A, IP_B, 1000, 2000, 64);
        let meta = PacketMeta {
            in_port: dp,
            ..Default::default()
        };
        let (key, _) = FlowKey::extract(&bytes, &meta).expect("a valid frame");
        let t = translate(&mut sw, &key);
        let cookie = match t.actions[..] {
            [Action::Userspace(c)] => c,
            ref a => panic!("expected userspace(cookie), got {a:?}"),
        };
        let mut frame = PacketBuf::from_slice(&bytes);
        frame.meta = meta;
        PinBridge {
            upcall: SwitchUpcall::new(Arc::new(Mutex::new(sw))),
            queue,
            frame,
            key,
            cookie,
        }
    }

    /// `n` packets hit the flow: each becomes a PACKET_IN, and `session`
    /// encodes them; returns the bytes it would send.
    pub fn packet_ins(&mut self, n: usize, session: &mut Session, sw: &BenchBridge) -> usize {
        let mut frames = Vec::new();
        let mut drops = rvs_dataplane::drop::DropCounters::default();
        for i in 0..n {
            let r = self
                .upcall
                .userspace(&self.key, &self.frame, self.cookie, &mut frames);
            debug_assert!(r.is_ok());
            // As a PMD: the batch's packet-ins go at its end.
            if (i + 1) % rvs_dataplane::packet::BATCH_SIZE == 0 {
                self.upcall.end_batch(&mut drops);
            }
        }
        self.upcall.end_batch(&mut drops);
        let pins = std::mem::take(&mut *self.queue.0.lock().unwrap_or_else(|e| e.into_inner()));
        for p in &pins {
            session.packet_in(p, sw);
        }
        session.take_output().len()
    }
}

impl Default for PinBridge {
    fn default() -> Self {
        PinBridge::new()
    }
}

/// A session past its HELLO exchange.
pub fn session(sw: &mut BenchBridge) -> Session {
    let mut s = Session::new(1);
    let mut hello = Vec::new();
    Message::Hello { bitmap: Some(1 << 4) }
        .encode(1, &mut hello)
        .expect("HELLO encodes");
    s.receive(&hello, sw);
    s.take_output();
    s
}

/// Rule `i` of a batch: a /32 route in table 0, as a controller programs
/// host routes (distinct matches, one subtable).
pub fn route(i: u32) -> Rule {
    let text = format!(
        "table=0,priority=100,ip,nw_dst=198.18.{}.{},actions=dec_ttl,output:1",
        i / 256 % 256,
        i % 256
    );
    parse_flow(&text, &()).expect("a valid rule")
}

/// `n` FLOW_MOD adds with a BARRIER after every `barrier_every`, encoded.
pub fn flow_mod_batch(n: u32, barrier_every: u32) -> Vec<u8> {
    let mut b = Vec::new();
    for i in 0..n {
        add_flow(route(i)).encode(i, &mut b).expect("FLOW_MOD encodes");
        if (i + 1) % barrier_every == 0 {
            Message::BarrierRequest
                .encode(i, &mut b)
                .expect("BARRIER encodes");
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_adds_every_rule_and_answers_every_barrier() {
        let mut sw = BenchBridge::new();
        let mut s = session(&mut sw);
        let batch = flow_mod_batch(2000, 1000);
        // As a socket delivers it: in 64 KiB reads.
        for chunk in batch.chunks(65536) {
            s.receive(chunk, &mut sw);
        }
        // 2000 routes and the bridge's own NORMAL rule.
        assert_eq!(sw.n_rules(), 2001);
        let out = s.take_output();
        // Two BARRIER_REPLYs (8 bytes each) and no error.
        assert_eq!(out.len(), 16, "{out:02x?}");
        assert!(out.chunks(8).all(|m| m[1] == 21));
    }

    #[test]
    fn every_packet_becomes_a_packet_in_message() {
        let mut pb = PinBridge::new();
        let sw = BenchBridge::new();
        let mut s = session(&mut BenchBridge::new());
        let bytes = pb.packet_ins(10, &mut s, &sw);
        // Header 8 + fixed 16 + match (in_port: 16) + pad 2 + 106 bytes (the
        // frame is shorter than max_len 128), ten times.
        assert_eq!(bytes, 10 * (8 + 16 + 16 + 2 + pb.frame.len()));
    }
}
