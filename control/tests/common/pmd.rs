//! A bridge of memory ports run by a real PMD (EMC, megaflows, upcalls,
//! recirculation, the connection tracker), for tests that send frames
//! through rule sets and look at what leaves which port.

use rvs_control::bridge::PortType;
use rvs_control::switch::Switch;
use rvs_control::upcall::{SharedSwitch, SwitchUpcall};
use rvs_dataplane::pmd::{Pmd, PmdConfig};
use rvs_dataplane::port::{MemoryPort, MemoryPortHandle};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Bridge `br-int` with one memory port per name, `flows` loaded.
pub fn switch_with(flows: &str, ports: &[&str]) -> Switch {
    let tagged: Vec<(&str, Option<u16>)> = ports.iter().map(|p| (*p, None)).collect();
    switch_tagged(flows, &tagged)
}

/// [`switch_with`] whose ports may be access ports of a VLAN (`tag=`).
pub fn switch_tagged(flows: &str, ports: &[(&str, Option<u16>)]) -> Switch {
    let mut sw = Switch::new();
    sw.add_bridge("br-int").unwrap();
    for (p, tag) in ports {
        let ty = PortType::System {
            kind: "memory".into(),
        };
        sw.add_port("br-int", p, ty, *tag).unwrap();
    }
    sw.replace_flows("br-int", flows).expect("the rules parse");
    sw
}

/// The PMD and its ports.
pub struct FlowsPmd {
    /// The PMD (its counters, its tracker).
    pub pmd: Pmd<SwitchUpcall>,
    /// The switch it translates with.
    pub sw: SharedSwitch,
    ports: BTreeMap<String, MemoryPortHandle>,
}

impl FlowsPmd {
    /// A PMD over [`switch_with`]`(flows, ports)` (EMC insertion on every
    /// hit, so the EMC is exercised too).
    pub fn new(flows: &str, ports: &[&str]) -> FlowsPmd {
        let tagged: Vec<(&str, Option<u16>)> = ports.iter().map(|p| (*p, None)).collect();
        FlowsPmd::tagged(flows, &tagged)
    }

    /// [`FlowsPmd::new`] over [`switch_tagged`].
    pub fn tagged(flows: &str, ports: &[(&str, Option<u16>)]) -> FlowsPmd {
        let sw = switch_tagged(flows, ports);
        let inv = sw.invalidations();
        let dps: Vec<(String, u32)> = ports
            .iter()
            .map(|(p, _)| (p.to_string(), sw.find_port(p).unwrap().1.dp_port.unwrap()))
            .collect();
        let sw: SharedSwitch = Arc::new(Mutex::new(sw));
        let mut pmd = Pmd::new(
            SwitchUpcall::new(sw.clone()),
            PmdConfig {
                emc_insert_inv_prob: 1,
                ..PmdConfig::default()
            },
        );
        pmd.watch(inv);
        let mut handles = BTreeMap::new();
        for (name, dp) in dps {
            let (p, h) = MemoryPort::new(&name);
            pmd.add_port(dp, Box::new(p));
            handles.insert(name, h);
        }
        FlowsPmd {
            pmd,
            sw,
            ports: handles,
        }
    }

    /// Send `frame` in on port `from`; what each port sent (ports that
    /// sent nothing are absent).
    pub fn send(&mut self, from: &str, frame: &[u8]) -> BTreeMap<String, Vec<Vec<u8>>> {
        self.ports[from].inject(frame);
        self.pmd.poll_once();
        self.pmd.poll_once();
        self.ports
            .iter()
            .filter_map(|(n, h)| {
                let sent: Vec<Vec<u8>> = h.take_sent().iter().map(|b| b.to_vec()).collect();
                (!sent.is_empty()).then(|| (n.clone(), sent))
            })
            .collect()
    }
}
