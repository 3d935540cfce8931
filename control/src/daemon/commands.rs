//! What the daemon does with each request: OVS-like commands over the switch
//! and the datapath. Changes are saved to the configuration file before the
//! reply; read commands answer in text (like ovs-vsctl / ovs-ofctl) or JSON.

use super::datapath::Datapath;
use super::port_args::PortArgs;
use super::proto::{Reply, Request};
use crate::bridge::PortType;
use crate::config::{port_type, Config};
use crate::ofp::{
    fmt_actions_named, fmt_match_named, parse_match, Match, OfAction, OfField, PortNameMap, Rule, OFPP_LOCAL,
};
use crate::switch::{BridgePortNames, Switch};
use crate::upcall::{lock, render, render_json, trace_flow_ct, SharedSwitch};
use rvs_dataplane::pmd::PmdCommand;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

/// The daemon's state.
pub struct State {
    /// The switch.
    pub sw: SharedSwitch,
    /// PMD threads and devices.
    pub dp: Datapath,
    /// Configuration file.
    pub db: PathBuf,
    /// OpenFlow controller connections.
    pub of: super::openflow::Controllers,
}

type CmdResult = Result<String, String>;

const ADD_PORT_USAGE: &str =
    "add-port BRIDGE PORT [type=T] [tag=N] [trunks=A,B] [ofport_request=N] [options:K=V ...] [-- set interface|port PORT KEY=VALUE ...]";

fn need<'a>(args: &'a [String], n: usize, usage: &str) -> Result<&'a [String], String> {
    if args.len() < n {
        Err(format!("usage: {usage}"))
    } else {
        Ok(args)
    }
}

/// Handle one request.
pub fn handle(st: &mut State, req: &Request) -> Reply {
    let json = req.format.as_deref() == Some("json");
    // ovs-vsctl's --may-exist / --if-exists, wherever they stand.
    let flag = |f: &str| req.args.iter().any(|w| w == f);
    let (may_exist, if_exists) = (flag("--may-exist"), flag("--if-exists"));
    let words: Vec<String> = req
        .args
        .iter()
        .filter(|w| *w != "--may-exist" && *w != "--if-exists")
        .cloned()
        .collect();
    let a = &words;
    let has_bridge = |name: &str| lock(&st.sw).bridges.contains_key(name);
    let port_bridge = |name: &str| lock(&st.sw).find_port(name).map(|(b, _)| b.name.clone());
    let r = match req.cmd.as_str() {
        "add-br" if may_exist && a.len() == 1 && has_bridge(&a[0]) => Ok(String::new()),
        "del-br" if if_exists && a.len() == 1 && !has_bridge(&a[0]) => Ok(String::new()),
        "add-port" if may_exist && a.len() >= 2 && port_bridge(&a[1]).is_some() => match port_bridge(&a[1]) {
            Some(b) if b == a[0] => Ok(String::new()),
            b => Err(format!(
                "port {:?} exists on bridge {:?}, not {:?}",
                a[1],
                b.unwrap_or_default(),
                a[0]
            )),
        },
        "del-port" if if_exists && !a.is_empty() && port_bridge(a.last().expect("checked")).is_none() => {
            Ok(String::new())
        }
        "show" => Ok(show(&lock(&st.sw), st.dp.kind().name(), json)),
        // As `ovs-appctl version`; the PID tells a starting daemon's waiter
        // that it reached this daemon, not a killed predecessor's socket.
        "version" => Ok(if json {
            json!({"version": env!("CARGO_PKG_VERSION"), "pid": std::process::id()}).to_string()
        } else {
            format!("rvs {} (pid {})\n", env!("CARGO_PKG_VERSION"), std::process::id())
        }),
        "list-br" => {
            let sw = lock(&st.sw);
            let names: Vec<&String> = sw.bridges.keys().collect();
            Ok(if json {
                json!(names).to_string()
            } else {
                names.iter().map(|n| format!("{n}\n")).collect()
            })
        }
        "list-ports" => need(a, 1, "list-ports BRIDGE").and_then(|a| {
            let sw = lock(&st.sw);
            let br = sw.bridge(&a[0]).map_err(|e| e.to_string())?;
            let names: Vec<&String> = br
                .ports
                .values()
                .filter(|p| p.ofport != OFPP_LOCAL)
                .map(|p| &p.name)
                .collect();
            Ok(if json {
                json!(names).to_string()
            } else {
                names.iter().map(|n| format!("{n}\n")).collect()
            })
        }),
        "add-br" => need(a, 1, "add-br BRIDGE")
            .and_then(|a| change(st, |sw| sw.add_bridge(&a[0]).map_err(|e| e.to_string()))),
        "del-br" => need(a, 1, "del-br BRIDGE")
            .and_then(|a| change(st, |sw| sw.del_bridge(&a[0]).map_err(|e| e.to_string()))),
        "add-port" => need(a, 2, ADD_PORT_USAGE).and_then(|a| {
            let args = PortArgs::parse(&a[1], &a[2..])?;
            let pt = port_type(&args.ty, &args.options)?;
            let device = matches!(pt, PortType::System { .. } | PortType::Internal);
            change(st, |sw| {
                sw.add_port_numbered(&a[0], &a[1], pt, args.tag, args.ofport_request)
                    .map_err(|e| e.to_string())?;
                // All or nothing: a refused option or trunk list takes the port away again.
                let rest = (|| {
                    if device && !args.options.is_empty() {
                        sw.set_port_options(&a[1], args.options)?;
                    }
                    if !args.trunks.is_empty() {
                        sw.set_trunks(&a[1], args.trunks)?;
                    }
                    Ok(())
                })();
                rest.map_err(|e: crate::switch::SwitchError| {
                    let _ = sw.del_port(&a[1]);
                    e.to_string()
                })
            })
        }),
        "del-port" => need(a, 1, "del-port PORT").and_then(|a| {
            let name = a.last().expect("checked");
            change(st, |sw| sw.del_port(name).map_err(|e| e.to_string()))
        }),
        "add-flow" | "add-flows" => need(a, 2, "add-flow BRIDGE FLOW").and_then(|a| {
            change(st, |sw| {
                sw.add_flows(&a[0], &a[1..].join("\n"))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        }),
        "replace-flows" => need(a, 2, "replace-flows BRIDGE FLOWS").and_then(|a| {
            change(st, |sw| {
                sw.replace_flows(&a[0], &a[1])
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        }),
        "del-flows" => need(a, 1, "del-flows BRIDGE [MATCH]").and_then(|a| {
            let (table, m) = {
                let sw = lock(&st.sw);
                let br = sw.bridge(&a[0]).map_err(|e| e.to_string())?;
                table_and_match(a.get(1).map(String::as_str).unwrap_or(""), &BridgePortNames(br))?
            };
            change(st, |sw| {
                sw.del_flows(&a[0], table, &m)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        }),
        "set-controller" => need(
            a,
            2,
            "set-controller BRIDGE TARGET... (tcp:IP[:PORT], ptcp:[PORT][:IP])",
        )
        .and_then(|a| {
            change(st, |sw| {
                sw.set_controllers(&a[0], &a[1..]).map_err(|e| e.to_string())
            })
        }),
        "del-controller" => need(a, 1, "del-controller BRIDGE")
            .and_then(|a| change(st, |sw| sw.set_controllers(&a[0], &[]).map_err(|e| e.to_string()))),
        "get-controller" => need(a, 1, "get-controller BRIDGE").and_then(|a| {
            let sw = lock(&st.sw);
            let br = sw.bridge(&a[0]).map_err(|e| e.to_string())?;
            Ok(br.controllers.iter().map(|t| format!("{t}\n")).collect())
        }),
        "set-fail-mode" => need(a, 2, "set-fail-mode BRIDGE standalone|secure")
            .and_then(|a| change(st, |sw| sw.set_fail_mode(&a[0], &a[1]).map_err(|e| e.to_string()))),
        "del-fail-mode" => need(a, 1, "del-fail-mode BRIDGE").and_then(|a| {
            change(st, |sw| {
                sw.set_fail_mode(&a[0], "standalone").map_err(|e| e.to_string())
            })
        }),
        "get-fail-mode" => need(a, 1, "get-fail-mode BRIDGE").and_then(|a| {
            let sw = lock(&st.sw);
            let br = sw.bridge(&a[0]).map_err(|e| e.to_string())?;
            Ok(format!("{}\n", br.fail_mode.name()))
        }),
        "add-tlv-map" => need(
            a,
            2,
            "add-tlv-map BRIDGE {class=..,type=..,len=..}->tun_metadataN",
        )
        .and_then(|a| change(st, |sw| sw.add_tlv_map_text(&a[1]).map_err(|e| e.to_string()))),
        "dump-flows" => need(a, 1, "dump-flows BRIDGE [--table N] [--names|--no-names]").and_then(|a| {
            let names = a.iter().any(|x| x == "--names");
            // ovs-ofctl's --sort[=FIELD] / --rsort[=FIELD], as many as given
            // (the first decides first); FIELD is priority or a match field.
            let mut order: Vec<SortKey> = Vec::new();
            for w in a
                .iter()
                .filter(|w| w.starts_with("--sort") || w.starts_with("--rsort"))
            {
                let (flag, field) = w.split_once('=').unwrap_or((w, "priority"));
                if flag != "--sort" && flag != "--rsort" {
                    return Err(format!("dump-flows: unknown option {w:?}"));
                }
                let field = match field {
                    "priority" => None,
                    f => Some(OfField::from_name(f).ok_or_else(|| {
                        format!("{flag}={f}: not a match field (priority, in_port, dl_src, nw_dst, ...)")
                    })?),
                };
                order.push(SortKey {
                    field,
                    descending: flag == "--rsort",
                });
            }
            st.dp.credit(&st.sw);
            let table = match a.iter().position(|x| x == "--table") {
                Some(i) => Some(
                    a.get(i + 1)
                        .and_then(|t| t.parse::<u8>().ok())
                        .ok_or("--table needs 0..254")?,
                ),
                None => None,
            };
            dump_flows(&lock(&st.sw), &a[0], table, names, &order, json)
        }),
        "trace" => need(a, 2, "trace BRIDGE FLOW [--generate] [--ct-next FLAGS]...").and_then(|a| {
            let mut generate = false;
            let mut ct_next = Vec::new();
            let mut opts = a[2..].iter();
            while let Some(w) = opts.next() {
                match w.as_str() {
                    "--generate" => generate = true,
                    "--ct-next" => {
                        let flags = opts.next().ok_or("--ct-next needs flags, e.g. trk,est")?;
                        ct_next.push(crate::upcall::parse_ct_next(flags)?);
                    }
                    _ => {
                        return Err(format!(
                            "trace: unknown option {w:?} (--generate, --ct-next FLAGS)"
                        ))
                    }
                }
            }
            let mut t = None;
            let mut run = |sw: &mut Switch| {
                // With --generate, learning invalidates what it changes, as
                // an upcall does.
                t = Some(trace_flow_ct(sw, &a[0], &a[1], generate, &ct_next).map_err(|e| e.to_string())?);
                Ok(())
            };
            if generate {
                // Learned rules are saved like any change.
                change(st, run)?;
            } else {
                run(&mut lock(&st.sw))?;
            }
            let t = t.expect("set by run");
            Ok(if json {
                render_json(&t).to_string()
            } else {
                render(&t)
            })
        }),
        "fdb-show" => need(a, 1, "fdb-show BRIDGE").and_then(|a| fdb_show(&lock(&st.sw), &a[0], json)),
        "dump-groups" => need(a, 1, "dump-groups BRIDGE").and_then(|a| {
            let sw = lock(&st.sw);
            let br = sw.bridge(&a[0]).map_err(|e| e.to_string())?;
            if json {
                let v: Vec<String> = br.groups.iter().map(|g| g.to_string()).collect();
                return Ok(serde_json::json!({ "groups": v }).to_string());
            }
            // As ovs-ofctl dump-groups prints them.
            let mut out = String::from("OFPST_GROUP_DESC reply (OF1.3):\n");
            for g in br.groups.iter() {
                out.push_str(&format!(" {g}\n"));
            }
            Ok(out.trim_end().to_string())
        }),
        "tnl-neigh" | "tnl/neigh/show" | "tnl/arp/show" => Ok(tnl_neigh(&lock(&st.sw), json)),
        "tnl-arp-set" | "tnl/arp/set" | "tnl/neigh/set" => {
            need(a, 3, "tnl-arp-set BRIDGE IP MAC").and_then(|a| {
                let ip = a[1]
                    .parse()
                    .map_err(|_| format!("{:?} is not an IPv4 address", a[1]))?;
                let mac = crate::switch::parse_mac(&a[2])
                    .ok_or_else(|| format!("{:?} is not a MAC address", a[2]))?;
                change(st, |sw| {
                    sw.set_tunnel_neighbor(&a[0], ip, mac).map_err(|e| e.to_string())
                })
            })
        }
        "tnl-arp-del" => need(a, 2, "tnl-arp-del BRIDGE IP").and_then(|a| {
            let ip = a[1]
                .parse()
                .map_err(|_| format!("{:?} is not an IPv4 address", a[1]))?;
            change(st, |sw| {
                sw.del_tunnel_neighbor(&a[0], ip).map_err(|e| e.to_string())
            })
        }),
        "tnl-route-add" | "ovs/route/add" | "tnl/route/add" => need(a, 2, "tnl-route-add IP/LEN BRIDGE [GW]")
            .and_then(|a| {
                let (p, l) = crate::switch::parse_prefix(&a[0])?;
                let gw = match a.get(2) {
                    None => None,
                    Some(g) => Some(
                        g.parse()
                            .map_err(|_| format!("gateway {g:?} is not an IPv4 address"))?,
                    ),
                };
                change(st, |sw| {
                    sw.add_tunnel_route(p, l, &a[1], gw).map_err(|e| e.to_string())
                })
            }),
        "tnl-route-del" | "ovs/route/del" | "tnl/route/del" => {
            need(a, 1, "tnl-route-del IP/LEN").and_then(|a| {
                let (p, l) = crate::switch::parse_prefix(&a[0])?;
                change(st, |sw| sw.del_tunnel_route(p, l).map_err(|e| e.to_string()))
            })
        }
        "tnl-route-show" | "ovs/route/show" | "tnl/route/show" => Ok(tnl_route_show(&lock(&st.sw), json)),
        "dpctl-dump-flows" | "dpctl/dump-flows" => Ok(dpctl_dump_flows(&st.dp, json)),
        "dpctl" if a.first().map(String::as_str) == Some("dump-flows") => Ok(dpctl_dump_flows(&st.dp, json)),
        "dpctl-show" | "dpctl/show" => Ok(dpctl_show(&lock(&st.sw), &st.dp, json)),
        "dpctl" if a.first().map(String::as_str) == Some("show") => {
            Ok(dpctl_show(&lock(&st.sw), &st.dp, json))
        }
        "dpctl" => Err("usage: dpctl dump-flows | dpctl show".into()),
        "set-mac-aging" => need(a, 2, "set-mac-aging BRIDGE SECONDS").and_then(|a| {
            let secs: u64 = a[1]
                .parse()
                .map_err(|_| format!("{:?} is not a number of seconds", a[1]))?;
            change(st, |sw| {
                let br = sw
                    .bridges
                    .get_mut(&a[0])
                    .ok_or_else(|| format!("no bridge named {:?}", a[0]))?;
                br.macs.aging_ms = secs * 1000;
                sw.bump();
                Ok(())
            })
        }),
        "pmd-stats" => {
            let out = pmd_stats(&st.dp, json);
            if a.iter().any(|x| x == "--clear") {
                st.dp.broadcast(|| PmdCommand::ClearStats);
            }
            Ok(out)
        }
        "port-stats" => Ok(port_stats(&st.dp, json)),
        "cache-flush" => {
            st.dp.flush();
            Ok(String::new())
        }
        other => match super::conntrack_cmds::handle(&st.dp.conntrack(), other, a, json) {
            Some(r) => r,
            None => Err(format!("unknown command {other:?}")),
        },
    };
    // Controller targets and fail modes: connections follow the bridges.
    let r = match r {
        Ok(mut out)
            if matches!(
                req.cmd.as_str(),
                "set-controller" | "del-controller" | "set-fail-mode" | "del-fail-mode" | "del-br"
            ) =>
        {
            for w in st.of.reconcile(&st.sw) {
                let _ = writeln!(out, "warning: {w}");
            }
            Ok(out)
        }
        r => r,
    };
    // Whatever the command changed (rules, MACs a trace learned, ports)
    // takes effect before the reply: no cached flow it made stale forwards
    // the next packet (PMDs check before every batch; kernel flows go now).
    st.dp.settle();
    match r {
        Ok(out) => Reply::ok(out),
        Err(e) => Reply::err(e),
    }
}

/// Apply a change, save the configuration, bring the datapath in step.
fn change(st: &mut State, f: impl FnOnce(&mut Switch) -> Result<(), String>) -> CmdResult {
    // Commands are serialised by the daemon's state lock; the switch lock
    // (which PMD upcalls take) is held only for the change itself, not across
    // the fsyncs of the save or device set-up.
    let config = {
        let mut sw = lock(&st.sw);
        f(&mut sw)?;
        Config::from_switch(&sw)
    };
    // Before the save's fsyncs: kernel flows the change made stale go now.
    st.dp.settle();
    config
        .save(&st.db)
        .map_err(|e| format!("applied, but not saved: {e}"))?;
    let warnings = st.dp.sync(&st.sw);
    Ok(warnings.into_iter().map(|w| format!("warning: {w}\n")).collect())
}

/// `table=N,MATCH` as del-flows takes it.
fn table_and_match(text: &str, ports: &BridgePortNames<'_>) -> Result<(Option<u8>, Match), String> {
    let mut table = None;
    let rest: Vec<&str> = text
        .split(',')
        .filter(|t| match t.trim().strip_prefix("table=") {
            Some(n) => {
                table = n.parse().ok();
                false
            }
            None => !t.trim().is_empty(),
        })
        .collect();
    let m = parse_match(&rest.join(","), ports).map_err(|e| e.to_string())?;
    Ok((table, m))
}

/// As `ovs-vsctl show`, each bridge with its `datapath_type` (`afxdp`:
/// userspace PMD threads, OVS's netdev; `ebpf`: rvs's kernel datapath).
fn show(sw: &Switch, datapath: &str, json: bool) -> String {
    if json {
        let v: Vec<_> = sw
            .bridges
            .values()
            .map(|b| {
                let ports: Vec<_> = b
                    .ports
                    .values()
                    .map(|p| {
                        let (ty, options) = crate::config::Config::port_options(p);
                        json!({"name": p.name, "ofport": p.ofport, "type": ty, "options": options, "tag": p.tag, "trunks": p.trunks, "dp_port": p.dp_port})
                    })
                    .collect();
                json!({"name": b.name, "datapath_type": datapath, "ports": ports})
            })
            .collect();
        return json!({"datapath_type": datapath, "bridges": v}).to_string();
    }
    let mut s = String::new();
    for b in sw.bridges.values() {
        let _ = writeln!(s, "Bridge {}", b.name);
        let _ = writeln!(s, "    datapath_type: {datapath}");
        let mut ports: Vec<_> = b.ports.values().collect();
        ports.sort_by(|a, b| a.name.cmp(&b.name));
        for p in ports {
            let _ = writeln!(s, "    Port {}", p.name);
            if let Some(t) = p.tag {
                let _ = writeln!(s, "        tag: {t}");
            }
            if !p.trunks.is_empty() {
                let _ = writeln!(s, "        trunks: {:?}", p.trunks);
            }
            let _ = writeln!(s, "        Interface {}", p.name);
            let (ty, options) = crate::config::Config::port_options(p);
            if ty != "system" {
                let _ = writeln!(s, "            type: {ty}");
            }
            if !options.is_empty() {
                let o: Vec<String> = options.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(s, "            options: {{{}}}", o.join(", "));
            }
        }
    }
    s
}

/// One `--sort`/`--rsort` criterion: priority (`None`) or a match field.
#[derive(Clone, Copy, Debug)]
struct SortKey {
    field: Option<OfField>,
    descending: bool,
}

/// ovs-ofctl's order of two rules under `keys`: by each key in turn; a rule
/// that does not match on a key's field goes after those that do, whichever
/// the direction; ties keep table order (the sort is stable).
fn compare_rules(a: &Rule, b: &Rule, keys: &[SortKey]) -> std::cmp::Ordering {
    for k in keys {
        let ord = match k.field {
            None => a.priority.cmp(&b.priority),
            Some(f) => match (a.matches.has(f), b.matches.has(f)) {
                (true, false) => return std::cmp::Ordering::Less,
                (false, true) => return std::cmp::Ordering::Greater,
                _ => a.matches.get(f).0.cmp(&b.matches.get(f).0),
            },
        };
        let ord = if k.descending { ord.reverse() } else { ord };
        if ord.is_ne() {
            return ord;
        }
    }
    std::cmp::Ordering::Equal
}

/// `order`: the `--sort`/`--rsort` keys (none: table order).
fn dump_flows(
    sw: &Switch,
    bridge: &str,
    table: Option<u8>,
    names: bool,
    order: &[SortKey],
    json: bool,
) -> CmdResult {
    let br = sw.bridge(bridge).map_err(|e| e.to_string())?;
    let now = sw.now_ms();
    // --names: ports by name in matches and actions, as ovs-ofctl prints them.
    let map: PortNameMap = if names {
        br.ports.values().map(|p| (p.ofport, p.name.clone())).collect()
    } else {
        PortNameMap::new()
    };
    let fmt_m = |m: &Match| fmt_match_named(m, &map);
    let fmt_a = |a: &[OfAction]| fmt_actions_named(a, &map);
    let rules: Vec<_> = br
        .rules()
        .into_iter()
        .filter(|e| table.is_none_or(|t| t == e.rule.table))
        .collect();
    let mut rules = rules;
    if !order.is_empty() {
        rules.sort_by(|x, y| compare_rules(&x.rule, &y.rule, order));
    }
    if json {
        let v: Vec<_> = rules
            .iter()
            .map(|e| {
                json!({"table": e.rule.table, "priority": e.rule.priority, "cookie": e.rule.cookie,
                "match": fmt_m(&e.rule.matches), "actions": fmt_a(&e.rule.actions),
                "n_packets": e.n_packets, "n_bytes": e.n_bytes,
                "duration_s": now.saturating_sub(e.added_ms) as f64 / 1000.0})
            })
            .collect();
        return Ok(json!(v).to_string());
    }
    let mut s = String::new();
    for e in rules {
        let r = &e.rule;
        let m = fmt_m(&r.matches);
        let _ = writeln!(
            s,
            " cookie={:#x}, duration={:.3}s, table={}, n_packets={}, n_bytes={}, {}{}priority={}{}{} actions={}",
            r.cookie,
            now.saturating_sub(e.added_ms) as f64 / 1000.0,
            r.table,
            e.n_packets,
            e.n_bytes,
            if r.idle_timeout > 0 { format!("idle_timeout={}, ", r.idle_timeout) } else { String::new() },
            if r.hard_timeout > 0 { format!("hard_timeout={}, ", r.hard_timeout) } else { String::new() },
            r.priority,
            if m.is_empty() { "" } else { "," },
            m,
            fmt_a(&r.actions)
        );
    }
    Ok(s)
}

fn fdb_show(sw: &Switch, bridge: &str, json: bool) -> CmdResult {
    let br = sw.bridge(bridge).map_err(|e| e.to_string())?;
    let now = sw.now_ms();
    let entries = br.macs.entries();
    let name = |p: u32| br.ports.get(&p).map_or(p.to_string(), |x| x.name.clone());
    let mac = |m: u64| crate::ofp::OfField::DlSrc.fmt_value(m as u128);
    if json {
        let v: Vec<_> = entries
            .iter()
            .map(|e| json!({"port": name(e.port), "vlan": e.vlan, "mac": mac(e.mac), "age_s": now.saturating_sub(e.seen_ms) / 1000}))
            .collect();
        return Ok(json!(v).to_string());
    }
    let mut s = String::from(" port  VLAN  MAC                Age\n");
    for e in entries {
        let _ = writeln!(
            s,
            "{:>5}  {:>4}  {}  {:>3}",
            name(e.port),
            e.vlan,
            mac(e.mac),
            now.saturating_sub(e.seen_ms) / 1000
        );
    }
    Ok(s)
}

fn tnl_neigh(sw: &Switch, json: bool) -> String {
    let mut rows = Vec::new();
    for (port, v) in &sw.vteps {
        for n in v.neighbors() {
            let mac = match n.state {
                rvs_dataplane::vtep::NeighState::Reachable(m) => crate::ofp::OfField::DlSrc
                    .fmt_value(u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]]) as u128),
                rvs_dataplane::vtep::NeighState::Incomplete => "(incomplete)".into(),
            };
            let how = if n.fixed { "static" } else { "arp" };
            rows.push((v.ip, *port, n.ip, mac, how));
        }
    }
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(l, p, ip, m, how)| {
                json!({"local_ip": l.to_string(), "port": p, "ip": ip.to_string(), "mac": m, "source": how})
            })
            .collect();
        return json!(v).to_string();
    }
    let mut s = String::from("IP               MAC                 source  via (local IP, dp port)\n");
    for (l, p, ip, m, how) in rows {
        let _ = writeln!(s, "{ip:<16} {m:<19} {how:<7} {l}, {p}");
    }
    s
}

/// The routes tunnel output uses, as `ovs-appctl ovs/route/show` lists them:
/// static ones ("User") and each VTEP's own link ("Cached").
fn tnl_route_show(sw: &Switch, json: bool) -> String {
    let bridge_of = |dp: &u32| sw.dp_ports.get(dp).map_or("?", |(b, _)| b.as_str());
    let mut rows: Vec<(String, String, String, Option<String>, String)> = Vec::new();
    for (port, v) in &sw.vteps {
        let b = bridge_of(port);
        rows.push((
            "Cached".into(),
            "on-link".into(),
            b.to_string(),
            None,
            v.ip.to_string(),
        ));
    }
    for ((p, l), r) in &sw.static_routes {
        let src = sw
            .route_to(*p, None)
            .map_or_else(|| "(no VTEP)".to_string(), |t| t.local_ip.to_string());
        rows.push((
            "User".into(),
            format!("{p}/{l}"),
            r.bridge.clone(),
            r.gw.map(|g| g.to_string()),
            src,
        ));
    }
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(k, p, b, g, s)| json!({"kind": k, "prefix": p, "bridge": b, "gw": g, "src": s}))
            .collect();
        return json!(v).to_string();
    }
    let mut s = String::from("Route Table:\n");
    for (k, p, b, g, src) in rows {
        let gw = g.map(|g| format!(" GW {g}")).unwrap_or_default();
        let _ = writeln!(s, "{k}: {p} dev {b}{gw} SRC {src}");
    }
    s
}

/// As `ovs-dpctl show`: the datapath, its lookups (hit, missed, lost),
/// cached flows, and its ports by datapath number.
fn dpctl_show(sw: &Switch, dp: &Datapath, json: bool) -> String {
    let snaps = dp.snapshots();
    let kernel = snaps
        .iter()
        .find(|s| s.id == rvs_dataplane::datapath::KERNEL_SNAPSHOT);
    // Where lookups happen: the kernel (ebpf), else the PMD threads.
    let (hit, missed, lost, flows) = match kernel {
        Some(k) => (
            k.stats.megaflow_hits,
            k.stats.upcalls,
            k.stats.drops.get(rvs_dataplane::DropReason::UpcallLost),
            k.flows.len(),
        ),
        None => snaps.iter().fold((0, 0, 0, 0), |(h, m, l, f), s| {
            (
                h + s.stats.emc_hits + s.stats.megaflow_hits,
                m + s.stats.upcalls,
                l + s.stats.drops.get(rvs_dataplane::DropReason::UpcallFailed),
                f + s.flows.len(),
            )
        }),
    };
    let mut ports: Vec<(u32, String, String)> = sw
        .bridges
        .values()
        .flat_map(|b| b.ports.values())
        .filter_map(|p| {
            let (ty, _) = crate::config::Config::port_options(p);
            p.dp_port.map(|d| (d, p.name.clone(), ty))
        })
        .collect();
    ports.sort();
    let attached = dp.attached();
    let kind = dp.kind().name();
    if json {
        let ports: Vec<_> = ports
            .iter()
            .map(|(d, n, t)| json!({"port": d, "name": n, "type": t, "device": attached.contains(d)}))
            .collect();
        return json!({"datapath": format!("{kind}@rvs"), "hit": hit, "missed": missed, "lost": lost, "flows": flows, "ports": ports}).to_string();
    }
    let mut s = format!("{kind}@rvs:\n  lookups: hit:{hit} missed:{missed} lost:{lost}\n  flows: {flows}\n");
    for (d, n, t) in ports {
        let dev = if attached.contains(&d) || t == "memory" {
            ""
        } else {
            ", no device"
        };
        let _ = writeln!(s, "  port {d}: {n} ({t}{dev})");
    }
    s
}

/// How a snapshot is named: a PMD thread, or the kernel (ebpf).
fn who(id: usize) -> String {
    if id == rvs_dataplane::datapath::KERNEL_SNAPSHOT {
        "kernel".to_string()
    } else {
        format!("pmd{id}")
    }
}

fn dpctl_dump_flows(dp: &Datapath, json: bool) -> String {
    let snaps = dp.snapshots();
    if json {
        let v: Vec<_> = snaps
            .iter()
            .flat_map(|s| s.flows.iter().map(move |f| json!({"pmd": s.id, "where": who(s.id), "match": f.matches(), "actions": f.actions(), "packets": f.packets(), "bytes": f.bytes(), "used_ms": f.idle_ms()})))
            .collect();
        return json!(v).to_string();
    }
    let mut s = String::new();
    for snap in snaps {
        let _ = writeln!(s, "{}:", who(snap.id));
        for f in &snap.flows {
            let _ = writeln!(
                s,
                "  {}, packets:{}, bytes:{}, used:{:.3}s, actions:{}",
                f.matches(),
                f.packets(),
                f.bytes(),
                f.idle_ms() as f64 / 1000.0,
                f.actions()
            );
        }
    }
    s
}

fn pmd_stats(dp: &Datapath, json: bool) -> String {
    let snaps = dp.snapshots();
    if json {
        let v: Vec<_> = snaps
            .iter()
            .map(|s| {
                let drops: BTreeMap<String, u64> = s.stats.drops.nonzero().map(|(r, n)| (r.name().to_string(), n)).collect();
                json!({"pmd": s.id, "where": who(s.id), "rx_packets": s.stats.rx_packets, "emc_hits": s.stats.emc_hits,
                "megaflow_hits": s.stats.megaflow_hits, "upcalls": s.stats.upcalls, "recirculations": s.stats.recirculations,
                "tx_packets": s.stats.tx_packets, "drops": drops, "busy_s": s.busy.as_secs_f64(), "idle_s": s.idle.as_secs_f64(),
                "emc_entries": s.emc_entries, "megaflows": s.flows.len(),
                "flushes": s.stats.flushes, "flows_invalidated": s.stats.flows_invalidated,
                "flows_expired": s.stats.flows_expired, "upcalls_stale": s.stats.upcalls_stale})
            })
            .collect();
        return json!(v).to_string();
    }
    let mut out = String::new();
    for s in snaps {
        let st = &s.stats;
        let total = (s.busy + s.idle).as_secs_f64().max(1e-9);
        if s.id == rvs_dataplane::datapath::KERNEL_SNAPSHOT {
            let _ = writeln!(out, "kernel datapath:");
            let _ = writeln!(out, "  packets looked up: {}", st.rx_packets);
            let _ = writeln!(out, "  megaflow hits: {}", st.megaflow_hits);
            let _ = writeln!(out, "  misses sent to userspace: {}", st.upcalls);
            let _ = writeln!(out, "  cached flows: {} megaflows", s.flows.len());
            let _ = writeln!(
                out,
                "  cache flushes: {}, flows invalidated: {}, flows expired: {}",
                st.flushes, st.flows_invalidated, st.flows_expired
            );
            for (r, n) in st.drops.nonzero() {
                let _ = writeln!(out, "  dropped ({r}): {n}");
            }
            continue;
        }
        let _ = writeln!(out, "pmd thread {}:", s.id);
        let _ = writeln!(out, "  packets received: {}", st.rx_packets);
        let _ = writeln!(out, "  packet recirculations: {}", st.recirculations);
        let _ = writeln!(out, "  exact match hits: {}", st.emc_hits);
        let _ = writeln!(out, "  megaflow hits: {}", st.megaflow_hits);
        let _ = writeln!(out, "  miss with success upcall: {}", st.upcalls);
        let _ = writeln!(out, "  packets sent: {}", st.tx_packets);
        let _ = writeln!(
            out,
            "  busy: {:.1}%, idle: {:.1}%",
            100.0 * s.busy.as_secs_f64() / total,
            100.0 * s.idle.as_secs_f64() / total
        );
        let _ = writeln!(
            out,
            "  cached flows: {} megaflows, {} EMC entries",
            s.flows.len(),
            s.emc_entries
        );
        let _ = writeln!(
            out,
            "  cache flushes: {}, flows invalidated: {}, flows expired: {}, stale upcalls not cached: {}",
            st.flushes, st.flows_invalidated, st.flows_expired, st.upcalls_stale
        );
        for (r, n) in st.drops.nonzero() {
            let _ = writeln!(out, "  dropped ({r}): {n}");
        }
    }
    out
}

fn port_stats(dp: &Datapath, json: bool) -> String {
    let ports: Vec<_> = dp.snapshots().iter().flat_map(|s| s.port_stats()).collect();
    if json {
        let v: Vec<_> = ports
            .iter()
            .map(|(no, n, p)| json!({"port": no, "name": n, "rx_packets": p.rx_packets, "rx_bytes": p.rx_bytes, "rx_dropped": p.rx_dropped, "rx_errors": p.rx_errors, "tx_packets": p.tx_packets, "tx_bytes": p.tx_bytes, "tx_dropped": p.tx_dropped, "tx_errors": p.tx_errors}))
            .collect();
        return json!(v).to_string();
    }
    let mut s = String::new();
    for (no, n, p) in ports {
        let _ = writeln!(s, "  port {no}: {n}");
        let _ = writeln!(
            s,
            "    RX packets:{} bytes:{} dropped:{} errors:{}",
            p.rx_packets, p.rx_bytes, p.rx_dropped, p.rx_errors
        );
        let _ = writeln!(
            s,
            "    TX packets:{} bytes:{} dropped:{} errors:{}",
            p.tx_packets, p.tx_bytes, p.tx_dropped, p.tx_errors
        );
    }
    s
}
