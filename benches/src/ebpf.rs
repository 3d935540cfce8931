//! Fixtures of the eBPF datapath benchmark: a loaded datapath (loopback,
//! ifindex 1, is datapath port 1; outputs go to port 2, never sent: the
//! benchmark runs the programs with BPF_PROG_TEST_RUN, where a redirect is a
//! verdict only) with one flow per measured path, and the frames that hit
//! them; and the slow path, a miss translated by a NORMAL switch and
//! installed in the kernel.

use crate::geneve_header;
use rvs_bpf::dp::abi::{OutEntry, PortEntry, MARK_MAGIC};
use rvs_bpf::dp::{Prog, TcDatapath};
use rvs_control::bridge::PortType;
use rvs_control::switch::Switch;
use rvs_control::upcall::SwitchUpcall;
use rvs_dataplane::action::Action;
use rvs_dataplane::datapath::ebpf::table::{Install, KernelTable};
use rvs_dataplane::datapath::ebpf::upcall::OffloadUpcall;
use rvs_dataplane::flow::{Field, FlowKey, FlowMask, VLAN_CFI};
use rvs_dataplane::packet::{PacketBuf, PacketMeta};
use rvs_dataplane::pmd::Upcall;
use rvs_dataplane::testing::{udp4, MAC_A};
use std::sync::{Arc, Mutex};

/// The measured paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// A flow that outputs to one port.
    L2Output,
    /// Push a VLAN tag, output.
    VlanPush,
    /// Output into a Geneve tunnel (the ingress side: mark and redirect).
    TunnelOutput,
    /// The underlay's egress: Geneve encapsulation of a marked frame.
    Encap,
    /// A Geneve frame to our VTEP: pop, the inner flow, output.
    Decap,
}

impl Path {
    /// Every path.
    pub const ALL: [Path; 5] = [
        Path::L2Output,
        Path::VlanPush,
        Path::TunnelOutput,
        Path::Encap,
        Path::Decap,
    ];

    /// The benchmark's name.
    pub fn name(self) -> &'static str {
        match self {
            Path::L2Output => "l2_output",
            Path::VlanPush => "vlan_push_output",
            Path::TunnelOutput => "tunnel_output",
            Path::Encap => "geneve_encap",
            Path::Decap => "geneve_decap_inner_flow",
        }
    }
}

/// Destination MAC of each path's frame.
fn dst(i: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x10, i]
}

const VTEP: [u8; 4] = [198, 18, 0, 1];

/// A loaded datapath with a flow per path.
pub struct KernelBench {
    /// The datapath.
    pub dp: Arc<TcDatapath>,
    table: KernelTable,
    slow: OffloadUpcall<SwitchUpcall>,
    slow_table: Arc<Mutex<KernelTable>>,
    next: u32,
}

impl KernelBench {
    /// Load the datapath and install the flows (needs root).
    pub fn new() -> KernelBench {
        let dp = Arc::new(TcDatapath::load(None, &[]).expect("load the datapath (root?)"));
        dp.set_port(
            1,
            &PortEntry {
                dp_port: 1,
                ..PortEntry::default()
            },
        )
        .unwrap();
        for p in [2, 3] {
            dp.set_out(p, &OutEntry { ifindex: 1, flags: 0 }).unwrap();
        }
        let inv = Arc::new(rvs_dataplane::cache::Invalidations::new());
        let mut table = KernelTable::new(dp.clone(), inv.clone()).expect("table");
        let mut l2 = FlowMask::default();
        l2.set_exact(Field::InPort);
        l2.set_exact(Field::RecircId);
        l2.set_exact(Field::EthDst);
        let mut install = |key: &FlowKey, mask: &FlowMask, actions: &[Action]| {
            let at = table.seen_now();
            table
                .install(&Install {
                    key,
                    mask,
                    actions,
                    deps: &[],
                    tag: 0,
                    at,
                })
                .expect("install");
        };
        let key_to = |i: u8| {
            let mut k = FlowKey::default();
            k.set(Field::InPort, 1);
            k.set(Field::EthDst, u64::from_be_bytes([0, 0, 0x02, 0, 0, 0, 0x10, i]));
            k
        };
        install(&key_to(1), &l2, &[Action::Output(2)]);
        install(
            &key_to(2),
            &l2,
            &[
                Action::PushVlan {
                    tpid: 0x8100,
                    tci: 5 | VLAN_CFI,
                },
                Action::Output(2),
            ],
        );
        install(
            &key_to(3),
            &l2,
            &[Action::TunnelOutput(Box::new(geneve_header(5001)), 3)],
        );
        // Tunnel pop: the outer flow (as xlate's tunnel termination builds
        // it) and the inner frame's flow, keyed on the tunnel it came from.
        let mut outer = FlowKey::default();
        outer.set(Field::InPort, 1);
        outer.set(Field::EthType, 0x0800);
        outer.set(Field::NwProto, 17);
        outer.set(Field::NwDst, u32::from_be_bytes(VTEP) as u64);
        outer.set(Field::TpDst, 6081);
        let mut om = FlowMask::default();
        for f in [
            Field::InPort,
            Field::RecircId,
            Field::EthType,
            Field::NwProto,
            Field::NwDst,
            Field::NwFrag,
            Field::TpDst,
        ] {
            om.set_exact(f);
        }
        install(&outer, &om, &[Action::TunnelPop(0)]);
        let mut inner = FlowKey::default();
        inner.set(Field::TunId, 1);
        inner.set(Field::TunSrc, u32::from_be_bytes([198, 18, 0, 2]) as u64);
        inner.set(Field::TunDst, u32::from_be_bytes(VTEP) as u64);
        inner.set(Field::EthDst, u64::from_be_bytes([0, 0, 0x02, 0, 0, 0, 0x10, 4]));
        let mut im = l2;
        for f in [Field::TunId, Field::TunSrc, Field::TunDst] {
            im.set_exact(f);
        }
        install(&inner, &im, &[Action::Output(2)]);
        // The slow path: NORMAL over two ports that are datapath ports 2, 3.
        let mut sw = Switch::new();
        sw.add_bridge("br").expect("bridge");
        let memory = || PortType::System {
            kind: "memory".into(),
        };
        sw.add_port("br", "p1", memory(), None).expect("port");
        sw.add_port("br", "p2", memory(), None).expect("port");
        // Its own maps: a table owns its datapath's generation and slots.
        let slow_dp = Arc::new(TcDatapath::load(None, &[]).expect("load the datapath"));
        let slow_table = Arc::new(Mutex::new(
            KernelTable::new(slow_dp, sw.invalidations()).expect("table"),
        ));
        let slow = OffloadUpcall::new(SwitchUpcall::new(Arc::new(Mutex::new(sw))), slow_table.clone());
        KernelBench {
            dp,
            table,
            slow,
            slow_table,
            next: 0,
        }
    }

    /// The program, frame and mark that take `path`.
    pub fn case(&self, path: Path) -> (Prog, Vec<u8>, u32) {
        let frame = |i: u8| udp4(MAC_A, dst(i), [198, 19, 0, 1], [198, 19, 0, 2], 1000, 2000, 18);
        match path {
            Path::L2Output => (Prog::Ingress, frame(1), 0),
            Path::VlanPush => (Prog::Ingress, frame(2), 0),
            Path::TunnelOutput => (Prog::Ingress, frame(3), 0),
            Path::Encap => (Prog::Encap, frame(3), MARK_MAGIC),
            Path::Decap => {
                let mut e = rvs_dataplane::tunnel::GeneveEncap::new(
                    [2, 0, 0, 0, 0, 0x22],
                    [2, 0, 0, 0, 0, 0x11],
                    [198, 18, 0, 2].into(),
                    VTEP.into(),
                    1,
                );
                e.ttl = 64;
                let h = rvs_dataplane::tunnel::TunnelHeader::geneve(&e);
                let mut p = PacketBuf::from_slice(&frame(4));
                h.push(&mut p, 7).expect("headroom");
                (Prog::Ingress, p.data().to_vec(), 0)
            }
        }
    }

    /// Run `path`'s case once and check it took that path: a redirect to
    /// the output port's device for the ingress paths (the inner flow's, for
    /// the decap; its frame the inner one), a grown frame for the encap.
    pub fn check(&self, path: Path) -> Result<(), String> {
        const TC_ACT_OK: u32 = 0;
        const TC_ACT_REDIRECT: u32 = 7;
        let (prog, frame, mark) = self.case(path);
        let before = self.dp.counters().map_err(|e| e.to_string())?;
        let (verdict, out, _) = self
            .dp
            .test_run_repeat(prog, &frame, 0, mark, 1)
            .map_err(|e| e.to_string())?;
        let after = self.dp.counters().map_err(|e| e.to_string())?;
        let hits = after[0] - before[0];
        match path {
            Path::Encap if verdict == TC_ACT_OK && out.len() == frame.len() + 50 + 8 => Ok(()),
            Path::Decap if verdict == TC_ACT_REDIRECT && hits == 1 && out.len() == frame.len() - 50 => Ok(()),
            Path::L2Output | Path::VlanPush | Path::TunnelOutput
                if verdict == TC_ACT_REDIRECT && hits == 1 =>
            {
                Ok(())
            }
            _ => Err(format!(
                "{path:?}: verdict {verdict}, {hits} hits, {} -> {} bytes",
                frame.len(),
                out.len()
            )),
        }
    }

    /// Kernel flows the slow path installed so far.
    pub fn slow_flows(&self) -> usize {
        self.slow_table.lock().map_or(0, |t| t.len())
    }

    /// Drop the slow path's kernel flows (between measurements: the table
    /// is bounded).
    pub fn reset_slow(&mut self) {
        if let Ok(mut t) = self.slow_table.lock() {
            t.flush().expect("flush");
        }
    }

    /// One miss through the slow path: a frame from a source MAC never seen
    /// before, translated (NORMAL learns it, floods) and installed.
    pub fn upcall_new_flow(&mut self) {
        self.next = self.next.wrapping_add(1);
        let n = self.next.to_be_bytes();
        let f = udp4(
            [2, 9, n[0], n[1], n[2], n[3]],
            dst(9),
            [198, 19, 0, 1],
            [198, 19, 0, 2],
            1,
            2,
            18,
        );
        let meta = PacketMeta {
            in_port: 2,
            ..PacketMeta::default()
        };
        let (key, _) = FlowKey::extract(&f, &meta).expect("frame");
        let mut p = PacketBuf::from_slice(&f);
        p.meta = meta;
        let before = self.slow_table.lock().map_or(0, |t| t.len());
        let r = self.slow.upcall(&key, &p).expect("translation");
        let after = self.slow_table.lock().map_or(0, |t| t.len());
        assert!(after > before, "installed in the kernel");
        assert!(r.cacheable, "and cached by the slow path's PMD");
    }
}

impl Default for KernelBench {
    fn default() -> Self {
        Self::new()
    }
}

/// Keep `table` in use (the flows it installed live as long as it).
impl Drop for KernelBench {
    fn drop(&mut self) {
        let _ = self.table.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every benchmark case takes the path it is named for (root: BPF).
    #[test]
    fn root_each_case_takes_its_path() {
        if !rvs_dataplane::testing::netns::root_or_skip("ebpf benchmark cases") {
            return;
        }
        let mut kb = KernelBench::new();
        for p in Path::ALL {
            kb.check(p).unwrap();
        }
        kb.upcall_new_flow();
        assert_eq!(kb.slow_flows(), 1);
        kb.reset_slow();
        assert_eq!(kb.slow_flows(), 0);
    }
}
