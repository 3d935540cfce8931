//! Opening the device behind a port: AF_XDP (falling back to AF_PACKET with a
//! warning), AF_PACKET, or tap, with the port's options (`queues=N`, `csum`).

use crate::port::{AfPacketPort, AfXdpConfig, AfXdpPort, CompleteChecksums, MultiQueue, Port, TapPort};
use rvs_bpf::XskRedirect;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::Arc;

/// XDP programs already attached, by interface (shared by its queues).
pub type Programs = HashMap<String, Arc<XskRedirect>>;

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Open device `ifname` of type `kind` (`afxdp` or `system`, `afpacket`,
/// `tap`, `internal`) for the AF_XDP datapath.
/// Options: `queues` (AF_XDP sockets, 1..=64), `csum` (`true`: complete L4
/// checksums of received frames in software), `vtep_ip` (AF_XDP: the XDP
/// program steers only that address's frames to rvs, the kernel keeps the rest).
/// `persist`: tap devices outlive the process (as OVS's internal ports), until
/// [`Port::retire`]. An interface another rvs still holds (a killed
/// predecessor still exiting) is [`io::ErrorKind::ResourceBusy`], never a
/// fall-back to AF_PACKET.
pub fn open_device(
    kind: &str,
    ifname: &str,
    options: &BTreeMap<String, String>,
    progs: &mut Programs,
    persist: bool,
) -> io::Result<Box<dyn Port>> {
    let queues: u32 = match options.get("queues") {
        None => 1,
        Some(q) => q
            .parse()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .ok_or_else(|| bad(format!("queues={q:?}: 1..=64")))?,
    };
    let csum = match options.get("csum").map(String::as_str) {
        None | Some("false") | Some("off") => false,
        Some("true") | Some("on") | Some("") => true,
        Some(v) => return Err(bad(format!("csum={v:?}: true or false"))),
    };
    let port: Box<dyn Port> = match kind {
        "afxdp" | "system" => {
            let mut qs: Vec<Box<dyn Port>> = Vec::new();
            for q in 0..queues {
                let mut cfg = AfXdpConfig::for_interface(ifname);
                cfg.queue = q;
                match AfXdpPort::open(&cfg, progs.get(ifname).cloned()) {
                    Ok(p) => {
                        if let Some(ip) = options.get("vtep_ip").and_then(|v| v.parse().ok()) {
                            p.program().steer_only(Some(ip)).map_err(io::Error::other)?;
                        }
                        progs.insert(ifname.to_string(), p.program());
                        qs.push(Box::new(p));
                    }
                    Err(e) if q == 0 && e.kind() != io::ErrorKind::ResourceBusy => {
                        // As OVS does for netdevs without XDP: keep working, slower.
                        tracing::warn!("AF_XDP on {ifname} failed ({e}); falling back to AF_PACKET");
                        qs.push(Box::new(AfPacketPort::open(ifname)?));
                        break;
                    }
                    Err(e) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("AF_XDP on {ifname} queue {q}: {e}"),
                        ))
                    }
                }
            }
            if qs.len() == 1 {
                qs.pop().expect("one queue")
            } else {
                Box::new(MultiQueue::new(qs))
            }
        }
        "afpacket" => Box::new(AfPacketPort::open(ifname)?),
        "tap" | "internal" => {
            let mut tap = TapPort::open(ifname)?;
            if persist {
                tap.persist()?;
            }
            Box::new(tap)
        }
        other => {
            return Err(bad(format!(
                "no device type {other:?} (afxdp, system, afpacket, tap, internal)"
            )))
        }
    };
    Ok(if csum {
        Box::new(CompleteChecksums(port))
    } else {
        port
    })
}

/// Parse `TYPE:IFNAME[,queues=N][,csum]` (the `--port` syntax of `rvs forward`).
pub fn parse_port_spec(spec: &str) -> io::Result<(String, String, BTreeMap<String, String>)> {
    let (ty, rest) = spec
        .split_once(':')
        .ok_or_else(|| bad(format!("--port {spec:?}: use TYPE:IFNAME[,queues=N][,csum]")))?;
    let mut parts = rest.split(',');
    let ifname = parts.next().unwrap_or_default().to_string();
    let mut options = BTreeMap::new();
    for opt in parts {
        match opt.split_once('=') {
            Some((k @ ("queues" | "csum"), v)) => {
                options.insert(k.to_string(), v.to_string());
            }
            None if opt == "csum" => {
                options.insert("csum".into(), "true".into());
            }
            _ => {
                return Err(bad(format!(
                    "--port {spec:?}: unknown option {opt:?} (queues=N, csum)"
                )))
            }
        }
    }
    if ifname.is_empty() {
        return Err(bad(format!("--port {spec:?}: no interface name")));
    }
    Ok((ty.to_string(), ifname, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        let (t, i, o) = parse_port_spec("afxdp:veth0,queues=2,csum").unwrap();
        assert_eq!((t.as_str(), i.as_str()), ("afxdp", "veth0"));
        assert_eq!(o.get("queues").map(String::as_str), Some("2"));
        assert_eq!(o.get("csum").map(String::as_str), Some("true"));
        assert!(parse_port_spec("veth0").is_err());
        assert!(parse_port_spec("afxdp:veth0,bogus").is_err());
        let mut p = Programs::new();
        let e = open_device(
            "afxdp",
            "x",
            &[("queues".to_string(), "0".to_string())].into(),
            &mut p,
            false,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("1..=64"));
        assert!(open_device("warp", "x", &BTreeMap::new(), &mut p, false).is_err());
    }
}
