//! Prometheus metrics, built at scrape time from the switch and the PMD
//! threads' snapshots (a fresh registry per scrape: the values are the totals
//! the datapath already keeps), and a tiny HTTP endpoint on 127.0.0.1.

use crate::switch::Switch;
use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use rvs_dataplane::pmd::PmdSnapshot;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};

fn counter(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

/// The metrics in Prometheus text format.
pub fn render(sw: &Switch, snaps: &[PmdSnapshot]) -> prometheus::Result<String> {
    let reg = Registry::new();
    let port = |n: &str, h: &str| counter(&reg, n, h, &["bridge", "port"]);
    let rx_p = port("rvs_port_rx_packets_total", "Frames received by a port.")?;
    let rx_b = port("rvs_port_rx_bytes_total", "Bytes received by a port.")?;
    let rx_d = port("rvs_port_rx_dropped_total", "Frames a port dropped on receive.")?;
    let tx_p = port("rvs_port_tx_packets_total", "Frames sent by a port.")?;
    let tx_b = port("rvs_port_tx_bytes_total", "Bytes sent by a port.")?;
    let tx_d = port("rvs_port_tx_dropped_total", "Frames a port dropped on send.")?;
    let hits = counter(
        &reg,
        "rvs_pmd_cache_hits_total",
        "Lookups answered by a cache level.",
        &["pmd", "level"],
    )?;
    let upcalls = counter(
        &reg,
        "rvs_pmd_upcalls_total",
        "Cache misses sent to the slow path.",
        &["pmd"],
    )?;
    let flushes = counter(
        &reg,
        "rvs_pmd_cache_flushes_total",
        "Times every cached flow was dropped (a rule, port or option changed).",
        &["pmd"],
    )?;
    let removed = counter(
        &reg,
        "rvs_pmd_flows_removed_total",
        "Cached flows removed one by one, by cause: invalidated (a MAC they used changed), expired (idle).",
        &["pmd", "cause"],
    )?;
    let rx = counter(
        &reg,
        "rvs_pmd_rx_packets_total",
        "Packets a PMD thread received.",
        &["pmd"],
    )?;
    let drops = counter(
        &reg,
        "rvs_pmd_drops_total",
        "Packets dropped, by reason.",
        &["pmd", "reason"],
    )?;
    let busy = counter(
        &reg,
        "rvs_pmd_busy_microseconds_total",
        "Time in polls that found packets.",
        &["pmd"],
    )?;
    let idle = counter(
        &reg,
        "rvs_pmd_idle_microseconds_total",
        "Time in empty polls and sleeping.",
        &["pmd"],
    )?;
    let flows = gauge(&reg, "rvs_pmd_megaflows", "Cached datapath flows.", &["pmd"])?;
    let macs = gauge(
        &reg,
        "rvs_mac_table_entries",
        "NORMAL's learned MAC addresses.",
        &["bridge"],
    )?;
    let rules = gauge(
        &reg,
        "rvs_rules",
        "Rules per bridge and table.",
        &["bridge", "table"],
    )?;
    for s in snaps {
        // The eBPF datapath's kernel reports as pmd="kernel".
        let id = if s.id == rvs_dataplane::datapath::KERNEL_SNAPSHOT {
            "kernel".to_string()
        } else {
            s.id.to_string()
        };
        for (no, name, p) in &s.port_stats() {
            let bridge = sw.dp_ports.get(no).map_or("", |(b, _)| b.as_str());
            let l = [bridge, name.as_str()];
            rx_p.with_label_values(&l).inc_by(p.rx_packets);
            rx_b.with_label_values(&l).inc_by(p.rx_bytes);
            rx_d.with_label_values(&l).inc_by(p.rx_dropped);
            tx_p.with_label_values(&l).inc_by(p.tx_packets);
            tx_b.with_label_values(&l).inc_by(p.tx_bytes);
            tx_d.with_label_values(&l).inc_by(p.tx_dropped);
        }
        hits.with_label_values(&[id.as_str(), "emc"])
            .inc_by(s.stats.emc_hits);
        hits.with_label_values(&[id.as_str(), "megaflow"])
            .inc_by(s.stats.megaflow_hits);
        upcalls.with_label_values(&[id.as_str()]).inc_by(s.stats.upcalls);
        flushes.with_label_values(&[id.as_str()]).inc_by(s.stats.flushes);
        for (cause, n) in [
            ("invalidated", s.stats.flows_invalidated),
            ("expired", s.stats.flows_expired),
        ] {
            removed.with_label_values(&[id.as_str(), cause]).inc_by(n);
        }
        rx.with_label_values(&[id.as_str()]).inc_by(s.stats.rx_packets);
        for (r, n) in s.stats.drops.nonzero() {
            drops.with_label_values(&[id.as_str(), r.name()]).inc_by(n);
        }
        busy.with_label_values(&[id.as_str()])
            .inc_by(s.busy.as_micros() as u64);
        idle.with_label_values(&[id.as_str()])
            .inc_by(s.idle.as_micros() as u64);
        flows.with_label_values(&[id.as_str()]).set(s.flows.len() as i64);
    }
    for b in sw.bridges.values() {
        macs.with_label_values(&[b.name.as_str()])
            .set(b.macs.len() as i64);
        for (t, cls) in &b.tables {
            rules
                .with_label_values(&[b.name.as_str(), t.to_string().as_str()])
                .set(cls.len() as i64);
        }
    }
    let mut buf = Vec::new();
    TextEncoder::new().encode(&reg.gather(), &mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Serve `GET /metrics` on `addr` until the process ends, with `render`
/// producing the body. Returns the bound address.
pub fn serve(addr: SocketAddr, render: impl Fn() -> String + Send + 'static) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new().name("metrics".into()).spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut line = String::new();
            if BufReader::new(&conn).read_line(&mut line).is_err() {
                continue;
            }
            let (status, body) = if line.starts_with("GET /metrics") {
                ("200 OK", render())
            } else {
                ("404 Not Found", "try /metrics\n".to_string())
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    })?;
    Ok(bound)
}
