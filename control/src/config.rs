//! The desired state of the switch (bridges, ports and their options, flows,
//! TLV maps, MAC-table settings), saved atomically as JSON and re-applied on
//! restart. Runtime state (learned MACs, learned rules with timeouts, caches)
//! is not saved, as in OVS.

use crate::bridge::{GeneveOptions, PortType, TunnelKey};
use crate::ofp::{parse_flow, OFPP_LOCAL};
use crate::switch::{BridgePortNames, Switch, SwitchError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Format version written into the file. Version 1 (no saved port numbers) is
/// read and migrated: its ports get the numbers the rvs that wrote it gave
/// them on a restart (1, 2, ... in file order).
pub const CONFIG_VERSION: u32 = 2;

/// A port as configured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortConfig {
    /// Name.
    pub name: String,
    /// OpenFlow port number, kept for the port's life (`ofport` in OVS's
    /// database): rules say `output:3`, and 3 must stay this port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ofport: Option<u32>,
    /// `internal`, `patch`, `geneve`, or a device type (`afxdp`, `afpacket`, `memory`, ...).
    #[serde(rename = "type")]
    pub ty: String,
    /// Type options (`peer`, `remote_ip`, `local_ip`, `key`, `queues`, `csum`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Access VLAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<u16>,
    /// VLANs of a trunk (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trunks: Vec<u16>,
    /// Datapath port number of a device port, kept across restarts (the
    /// eBPF datapath's kernel flows, which outlive a daemon, name ports by
    /// it). Absent in files written before it was saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp_port: Option<u32>,
}

/// A bridge as configured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeConfig {
    /// Name.
    pub name: String,
    /// Ports (the bridge's own LOCAL port is implied).
    #[serde(default)]
    pub ports: Vec<PortConfig>,
    /// Rules, in add-flow syntax.
    #[serde(default)]
    pub flows: Vec<String>,
    /// NORMAL's MAC aging (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_aging_s: Option<u64>,
    /// NORMAL's MAC table bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_max: Option<usize>,
    /// Where the next port number search starts (numbers of deleted ports
    /// are not handed out again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_ofport: Option<u32>,
    /// Datapath port number of the bridge's LOCAL port (see
    /// [`PortConfig::dp_port`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_dp_port: Option<u32>,
    /// Fixed tunnel neighbours (`tnl-arp-set`): remote IP -> MAC. Absent in
    /// files written before they existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tnl_neigh: BTreeMap<String, String>,
    /// OpenFlow controller targets (`set-controller`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controllers: Vec<String>,
    /// `set-fail-mode` (absent: standalone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_mode: Option<String>,
}

/// The whole desired state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// File format version.
    pub version: u32,
    /// Bridges.
    #[serde(default)]
    pub bridges: Vec<BridgeConfig>,
    /// Geneve TLV mappings, `{class=..,type=..,len=..}->tun_metadataN`.
    #[serde(default)]
    pub tlv_maps: Vec<String>,
    /// Static tunnel routes (`tnl-route-add`). Absent in files written
    /// before they existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tnl_routes: Vec<RouteConfig>,
}

/// A static tunnel route as saved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteConfig {
    /// `IP/LEN`.
    pub prefix: String,
    /// The bridge whose VTEP sends.
    pub bridge: String,
    /// Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: CONFIG_VERSION,
            bridges: Vec::new(),
            tlv_maps: Vec::new(),
            tnl_routes: Vec::new(),
        }
    }
}

/// Why a configuration could not be read, written or applied.
#[derive(Error, Debug)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid configuration JSON.
    #[error("{path}: not a valid rvs configuration: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// serde_json's message (with line and column).
        message: String,
    },
    /// The configuration does not apply (bad port options, bad flow, ...).
    #[error("{what}: {source}")]
    Apply {
        /// Which bridge/port/flow.
        what: String,
        /// Cause.
        source: SwitchError,
    },
}

fn apply_err(what: String) -> impl FnOnce(SwitchError) -> ConfigError {
    move |source| ConfigError::Apply { what, source }
}

/// The port type of a `type` and its options, as `add-port ... type=T options:k=v` gives them.
pub fn port_type(ty: &str, options: &BTreeMap<String, String>) -> Result<PortType, String> {
    let opt = |k: &str| options.get(k).map(String::as_str);
    let ip = |k: &str| -> Result<Option<std::net::Ipv4Addr>, String> {
        opt(k)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("options:{k}={v:?} is not an IPv4 address"))
            })
            .transpose()
    };
    Ok(match ty {
        "internal" => PortType::Internal,
        "patch" => PortType::Patch {
            peer: opt("peer")
                .ok_or("a patch port needs options:peer=PORT")?
                .to_string(),
        },
        "geneve" => {
            let remote_ip = ip("remote_ip")?.ok_or("a geneve port needs options:remote_ip=IP")?;
            let key = match opt("key") {
                None | Some("flow") => TunnelKey::Flow,
                Some(k) => TunnelKey::Fixed(
                    crate::ofp::OfField::TunId
                        .parse_value(k)
                        .map_err(|_| format!("options:key={k:?} is not a VNI or \"flow\""))?
                        as u64,
                ),
            };
            PortType::Geneve(GeneveOptions {
                remote_ip,
                local_ip: ip("local_ip")?,
                key,
            })
        }
        "" => return Err("a port needs a type".into()),
        kind => PortType::System {
            kind: kind.to_string(),
        },
    })
}

fn options_of(ty: &PortType, dev: &BTreeMap<String, String>) -> (String, BTreeMap<String, String>) {
    let mut o = dev.clone();
    let t = match ty {
        PortType::Internal => "internal".to_string(),
        PortType::System { kind } => kind.clone(),
        PortType::Patch { peer } => {
            o.insert("peer".into(), peer.clone());
            "patch".into()
        }
        PortType::Geneve(g) => {
            o.insert("remote_ip".into(), g.remote_ip.to_string());
            if let Some(l) = g.local_ip {
                o.insert("local_ip".into(), l.to_string());
            }
            o.insert(
                "key".into(),
                match g.key {
                    TunnelKey::Flow => "flow".into(),
                    TunnelKey::Fixed(k) => k.to_string(),
                },
            );
            "geneve".into()
        }
    };
    (t, o)
}

impl Config {
    /// A port's type name and options (as `show` and the file spell them).
    pub fn port_options(p: &crate::bridge::BridgePort) -> (String, BTreeMap<String, String>) {
        options_of(&p.ty, &p.options)
    }

    /// The desired state of a running switch. Rules with a timeout (learned,
    /// or temporary by design) and rules from an OpenFlow controller are
    /// runtime state and are not included.
    pub fn from_switch(sw: &Switch) -> Config {
        let bridges = sw
            .bridges
            .values()
            .map(|b| BridgeConfig {
                name: b.name.clone(),
                ports: b
                    .ports
                    .values()
                    .filter(|p| p.ofport != OFPP_LOCAL)
                    .map(|p| {
                        let (ty, options) = options_of(&p.ty, &p.options);
                        PortConfig {
                            name: p.name.clone(),
                            ofport: Some(p.ofport),
                            ty,
                            options,
                            tag: p.tag,
                            trunks: p.trunks.clone(),
                            dp_port: p.dp_port,
                        }
                    })
                    .collect(),
                flows: b
                    .rules()
                    .into_iter()
                    .filter(|e| e.rule.hard_timeout == 0 && e.rule.idle_timeout == 0 && !e.from_controller)
                    .map(|e| e.rule.to_string())
                    .collect(),
                mac_aging_s: Some(b.macs.aging_ms / 1000),
                mac_max: Some(b.macs.max_entries),
                next_ofport: Some(b.next_ofport),
                local_dp_port: b.ports.get(&OFPP_LOCAL).and_then(|p| p.dp_port),
                tnl_neigh: sw
                    .fixed_neigh
                    .get(&b.name)
                    .into_iter()
                    .flatten()
                    .map(|(ip, m)| (ip.to_string(), crate::switch::format_mac(m)))
                    .collect(),
                controllers: b.controllers.iter().map(|t| t.to_string()).collect(),
                fail_mode: (b.fail_mode != crate::bridge::FailMode::default())
                    .then(|| b.fail_mode.name().into()),
            })
            .collect();
        let tlv_maps = sw
            .optmap
            .iter()
            .map(|m| {
                format!(
                    "{{class={:#06x},type={:#04x},len={}}}->tun_metadata{}",
                    m.class, m.typ, m.len, m.slot
                )
            })
            .collect();
        let tnl_routes = sw
            .static_routes
            .iter()
            .map(|((p, l), r)| RouteConfig {
                prefix: format!("{p}/{l}"),
                bridge: r.bridge.clone(),
                gw: r.gw.map(|g| g.to_string()),
            })
            .collect();
        Config {
            version: CONFIG_VERSION,
            bridges,
            tlv_maps,
            tnl_routes,
        }
    }

    /// Build a switch from this state: bridges, then all ports (patch peers may
    /// be on later bridges), then rules (their port names must exist), all or
    /// nothing.
    pub fn apply(&self) -> Result<Switch, ConfigError> {
        let mut sw = Switch::new();
        for b in &self.bridges {
            sw.add_bridge_with(&b.name, b.local_dp_port)
                .map_err(apply_err(format!("bridge {}", b.name)))?;
            let br = sw.bridges.get_mut(&b.name).expect("just added");
            if let Some(a) = b.mac_aging_s {
                br.macs.aging_ms = a * 1000;
            }
            if let Some(m) = b.mac_max {
                br.macs.max_entries = m;
            }
            if let Some(n) = b.next_ofport {
                br.next_ofport = n;
            }
            sw.set_controllers(&b.name, &b.controllers)
                .map_err(apply_err(format!("bridge {} controllers", b.name)))?;
            if let Some(m) = &b.fail_mode {
                sw.set_fail_mode(&b.name, m)
                    .map_err(apply_err(format!("bridge {} fail mode", b.name)))?;
            }
        }
        for b in &self.bridges {
            for p in &b.ports {
                let what = format!("bridge {} port {}", b.name, p.name);
                let ty = port_type(&p.ty, &p.options).map_err(|reason| ConfigError::Apply {
                    what: what.clone(),
                    source: SwitchError::BadPort {
                        port: p.name.clone(),
                        reason,
                    },
                })?;
                // As add-port does: the options of a device port are its
                // device options (queues, csum, vtep_ip, ...).
                let device = matches!(ty, PortType::System { .. } | PortType::Internal);
                sw.add_port_with(&b.name, &p.name, ty, p.tag, p.ofport, p.dp_port)
                    .map_err(apply_err(what.clone()))?;
                if device && !p.options.is_empty() {
                    sw.set_port_options(&p.name, p.options.clone())
                        .map_err(apply_err(what.clone()))?;
                }
                if !p.trunks.is_empty() {
                    sw.set_trunks(&p.name, p.trunks.clone())
                        .map_err(apply_err(what))?;
                }
            }
        }
        for b in &self.bridges {
            for (ip, mac) in &b.tnl_neigh {
                let what = format!("bridge {} tunnel neighbour {ip}", b.name);
                let bad = |reason: &str| ConfigError::Apply {
                    what: what.clone(),
                    source: SwitchError::BadPort {
                        port: b.name.clone(),
                        reason: reason.into(),
                    },
                };
                let ip4 = ip.parse().map_err(|_| bad("not an IPv4 address"))?;
                let m = crate::switch::parse_mac(mac).ok_or_else(|| bad("not a MAC address"))?;
                sw.set_tunnel_neighbor(&b.name, ip4, m)
                    .map_err(apply_err(what.clone()))?;
            }
        }
        for b in &self.bridges {
            // Each flow line is parsed alone so an error names it.
            let br = sw
                .bridge(&b.name)
                .map_err(apply_err(format!("bridge {}", b.name)))?;
            for (i, f) in b.flows.iter().enumerate() {
                parse_flow(f, &BridgePortNames(br)).map_err(|e| ConfigError::Apply {
                    what: format!("bridge {} flow {}", b.name, i + 1),
                    source: SwitchError::Flow(e.to_string()),
                })?;
            }
            sw.load_flows(&b.name, &b.flows.join("\n"))
                .map_err(apply_err(format!("bridge {} flows", b.name)))?;
        }
        for t in &self.tlv_maps {
            sw.add_tlv_map_text(t)
                .map_err(apply_err(format!("tlv map {t}")))?;
        }
        for r in &self.tnl_routes {
            let what = format!("tunnel route {}", r.prefix);
            let bad = |reason: String| ConfigError::Apply {
                what: what.clone(),
                source: SwitchError::Route(reason),
            };
            let (p, l) = crate::switch::parse_prefix(&r.prefix).map_err(bad)?;
            let gw = match &r.gw {
                None => None,
                Some(g) => Some(g.parse().map_err(|_| bad(format!("gateway {g:?} is not IPv4")))?),
            };
            sw.add_tunnel_route(p, l, &r.bridge, gw)
                .map_err(apply_err(what.clone()))?;
        }
        Ok(sw)
    }

    /// Version 1 saved no port numbers; the rvs that wrote it numbered the
    /// ports of each bridge 1, 2, ... in file order on every start, and its
    /// saved rules name those numbers. Keep exactly them.
    fn migrate_v1(&mut self) {
        for b in &mut self.bridges {
            for (i, p) in b.ports.iter_mut().enumerate() {
                p.ofport.get_or_insert(i as u32 + 1);
            }
        }
        self.version = CONFIG_VERSION;
    }

    /// Read a configuration file; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Config>, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ConfigError::Io {
                    path: path.into(),
                    source,
                })
            }
        };
        let c: Config = serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        let mut c = c;
        match c.version {
            CONFIG_VERSION => {}
            1 => {
                c.migrate_v1();
                tracing::info!(
                    path = %path.display(),
                    "configuration version 1 migrated to version {CONFIG_VERSION}: \
                     ports keep the numbers they had (1, 2, ... in file order); \
                     it is written as version {CONFIG_VERSION} on the next change"
                );
            }
            v => {
                return Err(ConfigError::Parse {
                    path: path.into(),
                    message: format!("version {v} (this rvs reads versions 1 and {CONFIG_VERSION})"),
                })
            }
        }
        Ok(Some(c))
    }

    /// Write the file atomically: a temporary file in the same directory,
    /// fsync, rename over the old one, fsync the directory. A crash leaves
    /// either the old or the new file, never a torn one.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let io = |source| ConfigError::Io {
            path: path.into(),
            source,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
        let text = serde_json::to_string_pretty(self).expect("configuration serialises");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neutron::{build_node, NodeConfig, Remote, TenantNet};

    fn neutron() -> Switch {
        let mut sw = Switch::new();
        let cfg = NodeConfig {
            underlay_port: "eth-ul".into(),
            underlay_kind: "afxdp".into(),
            local_ip: [198, 18, 0, 1].into(),
            local_mac: [2, 0xee, 0, 0, 0, 1],
            remotes: vec![
                Remote {
                    port: "gnv1".into(),
                    ip: [198, 18, 0, 2].into(),
                    mac: None,
                },
                Remote {
                    port: "gnv2".into(),
                    ip: [198, 18, 0, 3].into(),
                    mac: None,
                },
            ],
            nets: vec![TenantNet { vni: 5001, vlan: 1 }],
        };
        build_node(&mut sw, &cfg).unwrap();
        sw.add_port(
            "br-int",
            "vm1",
            PortType::System { kind: "afxdp".into() },
            Some(1),
        )
        .unwrap();
        let opts = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        sw.set_port_options("vm1", opts(&[("queues", "2"), ("csum", "true")]))
            .unwrap();
        sw.set_port_options(
            "eth-ul",
            opts(&[("vtep_ip", "198.18.0.21"), ("vtep_mac", "02:ee:00:00:00:01")]),
        )
        .unwrap();
        sw.add_tlv_map_text("{class=0x0102,type=0x80,len=4}->tun_metadata0")
            .unwrap();
        sw
    }

    #[test]
    fn save_load_apply_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rvs.json");
        let c = Config::from_switch(&neutron());
        assert!(Config::load(&path).unwrap().is_none(), "no file yet");
        c.save(&path).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left behind"
        );
        let back = Config::load(&path).unwrap().unwrap();
        assert_eq!(back, c);
        let sw = back.apply().unwrap();
        assert_eq!(
            Config::from_switch(&sw),
            c,
            "applying and reading back gives the same state"
        );
        let br = sw.bridge("br-tun").unwrap();
        assert_eq!(br.n_rules(), neutron().bridge("br-tun").unwrap().n_rules());
        assert!(br.n_rules() > 10);
        assert!(sw.find_port("gnv2").is_some());
        assert_eq!(sw.optmap.iter().count(), 1);
        // Device options come back, and with them the VTEP they define.
        assert_eq!(
            sw.find_port("vm1")
                .unwrap()
                .1
                .options
                .get("queues")
                .map(String::as_str),
            Some("2")
        );
        let ul = sw.find_port("eth-ul").unwrap().1.dp_port.unwrap();
        assert_eq!(sw.vteps[&ul].ip, std::net::Ipv4Addr::new(198, 18, 0, 21));
    }

    /// Datapath port numbers survive a save and an apply, whatever order
    /// the bridges were made in (the saved file lists them by name).
    #[test]
    fn datapath_port_numbers_are_kept() {
        let mut sw = Switch::new();
        for b in ["br-tun", "br-int", "br-ex"] {
            sw.add_bridge(b).unwrap();
        }
        let sys = || PortType::System {
            kind: "memory".into(),
        };
        sw.add_port("br-int", "vm1", sys(), None).unwrap();
        sw.add_port("br-ex", "eth1", sys(), None).unwrap();
        sw.add_port("br-int", "gone", sys(), None).unwrap();
        sw.del_port("gone").unwrap();
        sw.add_port("br-int", "vm2", sys(), None).unwrap();
        let dps = |sw: &Switch| -> Vec<(String, u32)> {
            let mut v: Vec<_> = sw
                .bridges
                .values()
                .flat_map(|b| b.ports.values())
                .filter_map(|p| p.dp_port.map(|d| (p.name.clone(), d)))
                .collect();
            v.sort();
            v
        };
        let back = Config::from_switch(&sw).apply().unwrap();
        assert_eq!(dps(&back), dps(&sw));
        assert_eq!(back.find_port("br-tun").unwrap().1.dp_port, Some(1));
    }

    #[test]
    fn learned_rules_are_not_saved() {
        let mut sw = neutron();
        sw.add_flows(
            "br-tun",
            "table=20,priority=1,hard_timeout=300,dl_dst=02:00:00:00:00:09,actions=output:gnv1",
        )
        .unwrap();
        let c = Config::from_switch(&sw);
        let tun = c.bridges.iter().find(|b| b.name == "br-tun").unwrap();
        assert_eq!(
            tun.flows.len() + 1,
            sw.bridge("br-tun").unwrap().n_rules(),
            "all but the learned one"
        );
    }

    #[test]
    fn corrupt_or_wrong_files_are_errors_that_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rvs.json");
        std::fs::write(&path, "{ \"version\": 1, \"bridges\": [ { \"name\": ").unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(e.contains("rvs.json") && e.contains("line"), "{e}");
        std::fs::write(&path, "{ \"version\": 9 }").unwrap();
        assert!(Config::load(&path).unwrap_err().to_string().contains("version 9"));
        let mut c = Config::from_switch(&neutron());
        c.bridges[0].flows.push("in_port=nosuch,actions=drop".into());
        let e = c.apply().err().expect("bad flow refused").to_string();
        assert!(e.contains("flow") && e.contains("nosuch"), "{e}");
        let mut c = Config::from_switch(&neutron());
        c.bridges[0].ports.push(PortConfig {
            name: "p".into(),
            ofport: None,
            ty: "geneve".into(),
            options: BTreeMap::new(),
            tag: None,
            trunks: vec![],
            dp_port: None,
        });
        assert!(c
            .apply()
            .err()
            .expect("bad port refused")
            .to_string()
            .contains("remote_ip"));
    }
}
