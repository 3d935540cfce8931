//! The connection tracker's commands, as `ovs-appctl dpctl/...` names them:
//! `dump-conntrack`, `flush-conntrack`, `ct-stats-show`, `ct-set-maxconns`,
//! `ct-get-maxconns`, `ct-set-limits`, `ct-get-limits`. Like OVS's, the
//! limits are runtime settings (not saved; a restarted daemon starts with
//! the defaults).

use rvs_dataplane::conntrack::{self, ConnEntry, SharedConntrack};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write;

type CmdResult = Result<String, String>;

/// Handle `cmd` if it is a conntrack command.
pub fn handle(ct: &SharedConntrack, cmd: &str, args: &[String], json: bool) -> Option<CmdResult> {
    let name = cmd.strip_prefix("dpctl/").unwrap_or(cmd);
    Some(match name {
        "dump-conntrack" => zone_arg(args).map(|z| dump(ct, z, json)),
        "flush-conntrack" => zone_arg(args).map(|z| {
            let n = conntrack::lock(ct).flush(z);
            if json {
                json!({ "flushed": n }).to_string()
            } else {
                String::new()
            }
        }),
        "ct-stats-show" => Ok(stats(ct, json)),
        "ct-set-maxconns" => match args.first().map(|a| a.parse::<usize>()) {
            Some(Ok(n)) if n > 0 => {
                let mut t = conntrack::lock(ct);
                let mut c = t.config().clone();
                c.max_conns = n;
                t.set_config(c);
                Ok(String::new())
            }
            _ => Err("usage: ct-set-maxconns N (N > 0)".into()),
        },
        "ct-get-maxconns" => Ok(format!("{}\n", conntrack::lock(ct).config().max_conns)),
        "ct-set-limits" => set_limits(ct, args),
        "ct-get-limits" => Ok(limits(ct, json)),
        _ => return None,
    })
}

/// `zone=N`, or nothing (every zone).
fn zone_arg(args: &[String]) -> Result<Option<u16>, String> {
    match args {
        [] => Ok(None),
        [z] => z
            .strip_prefix("zone=")
            .and_then(|n| n.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("{z:?}: expected zone=N (0..65535)")),
        _ => Err("expected at most one zone=N".into()),
    }
}

fn dump(ct: &SharedConntrack, zone: Option<u16>, json: bool) -> String {
    let now = rvs_dataplane::pmd::clock_ms();
    let mut entries: Vec<ConnEntry> = conntrack::lock(ct)
        .dump(now)
        .into_iter()
        .filter(|e| zone.is_none_or(|z| e.zone == z))
        .collect();
    let mut lines: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
    if json {
        entries.sort_by_key(|e| e.to_string());
        let v: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({
                    "entry": e.to_string(),
                    "zone": e.zone,
                    "mark": e.mark,
                    "state_orig": e.tcp_state.map(|s| s.0.name()),
                    "state_reply": e.tcp_state.map(|s| s.1.name()),
                    "replied": e.replied,
                    "expires_in_ms": e.expires_in_ms,
                })
            })
            .collect();
        return serde_json::Value::Array(v).to_string();
    }
    lines.sort();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn proto_name(e: &ConnEntry) -> &'static str {
    match e.orig.proto {
        6 => "TCP",
        17 => "UDP",
        1 | 58 => "ICMP",
        _ => "other",
    }
}

fn stats(ct: &SharedConntrack, json: bool) -> String {
    let now = rvs_dataplane::pmd::clock_ms();
    let t = conntrack::lock(ct);
    let entries = t.dump(now);
    let c = t.counters();
    let max = t.config().max_conns;
    drop(t);
    let offloaded = entries.iter().filter(|e| e.offloaded).count();
    let mut by_proto: BTreeMap<&str, (usize, BTreeMap<&str, usize>)> = BTreeMap::new();
    let mut by_zone: BTreeMap<u16, usize> = BTreeMap::new();
    for e in &entries {
        let p = by_proto.entry(proto_name(e)).or_default();
        p.0 += 1;
        // By the originator's state (SYN_SENT until answered).
        if let Some((s, _)) = e.tcp_state {
            *p.1.entry(s.name()).or_default() += 1;
        }
        *by_zone.entry(e.zone).or_default() += 1;
    }
    if json {
        return json!({
            "total": entries.len(),
            "max": max,
            "offloaded": offloaded,
            "by_protocol": by_proto.iter().map(|(k, v)| (k.to_string(), json!({"total": v.0, "states": v.1}))).collect::<serde_json::Map<_, _>>(),
            "by_zone": by_zone.iter().map(|(z, n)| (z.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "inserted": c.inserted,
            "expired": c.expired,
            "reopened": c.reopened,
            "invalid": c.invalid,
            "evicted": c.evicted,
            "refused_full": c.refused_full,
            "refused_zone_limit": c.refused_zone_limit,
            "refused_nat": c.refused_nat,
        })
        .to_string();
    }
    let mut s = format!("Connections Stats:\n    Total: {} (max {max})\n", entries.len());
    for (p, (n, states)) in &by_proto {
        let _ = writeln!(s, "    {p}: {n}");
        for (st, k) in states {
            let _ = writeln!(s, "      {st}: {k}");
        }
    }
    for (z, n) in &by_zone {
        let _ = writeln!(s, "    zone {z}: {n}");
    }
    if offloaded > 0 {
        let _ = writeln!(s, "    answered in the kernel (established): {offloaded}");
    }
    let _ = writeln!(
        s,
        "Counters: inserted={} expired={} reopened={} invalid={} evicted={} refused_full={} refused_zone_limit={} refused_nat={}",
        c.inserted, c.expired, c.reopened, c.invalid, c.evicted, c.refused_full, c.refused_zone_limit, c.refused_nat
    );
    s
}

/// `[default=N] [zone=Z,limit=L]...` (OVS's syntax; limit 0 = none).
fn set_limits(ct: &SharedConntrack, args: &[String]) -> CmdResult {
    let usage = "usage: ct-set-limits [default=N] [zone=Z,limit=L]...";
    if args.is_empty() {
        return Err(usage.into());
    }
    let mut t = conntrack::lock(ct);
    let mut c = t.config().clone();
    for a in args {
        if let Some(n) = a.strip_prefix("default=") {
            c.default_zone_limit = n.parse().map_err(|_| format!("{a:?}: {usage}"))?;
            continue;
        }
        let (z, l) = a
            .split_once(',')
            .and_then(|(z, l)| Some((z.strip_prefix("zone=")?, l.strip_prefix("limit=")?)))
            .ok_or_else(|| format!("{a:?}: {usage}"))?;
        let zone: u16 = z.parse().map_err(|_| format!("{a:?}: zone is 0..65535"))?;
        let limit: u32 = l.parse().map_err(|_| format!("{a:?}: limit is a number"))?;
        c.zone_limits.insert(zone, limit);
    }
    // Nothing is half-applied: the whole line parsed before this.
    t.set_config(c);
    Ok(String::new())
}

fn limits(ct: &SharedConntrack, json: bool) -> String {
    let t = conntrack::lock(ct);
    let c = t.config();
    if json {
        return json!({
            "default": c.default_zone_limit,
            "zones": c.zone_limits.iter().map(|(z, l)| json!({"zone": z, "limit": l, "count": t.zone_len(*z)})).collect::<Vec<_>>(),
        })
        .to_string();
    }
    let mut s = format!("default limit={}\n", c.default_zone_limit);
    for (z, l) in &c.zone_limits {
        let _ = writeln!(s, "zone={z},limit={l},count={}", t.zone_len(*z));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ct: &SharedConntrack, cmd: &str, args: &[&str]) -> CmdResult {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        handle(ct, cmd, &args, false).expect("a conntrack command")
    }

    #[test]
    fn limits_are_set_whole_or_not_at_all() {
        let ct = SharedConntrack::default();
        run(&ct, "dpctl/ct-set-limits", &["default=10", "zone=3,limit=2"]).unwrap();
        assert_eq!(
            run(&ct, "ct-get-limits", &[]).unwrap(),
            "default limit=10\nzone=3,limit=2,count=0\n"
        );
        assert!(run(&ct, "ct-set-limits", &["zone=4,limit=1", "zone=x,limit=1"]).is_err());
        assert!(!run(&ct, "ct-get-limits", &[]).unwrap().contains("zone=4"));
        run(&ct, "ct-set-maxconns", &["5"]).unwrap();
        assert_eq!(run(&ct, "ct-get-maxconns", &[]).unwrap(), "5\n");
        assert!(run(&ct, "ct-set-maxconns", &["0"]).is_err());
        assert!(run(&ct, "dump-conntrack", &["zone=x"]).is_err());
        assert!(handle(&ct, "show", &[], false).is_none());
    }
}
