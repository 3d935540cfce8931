//! [`Target`]: where a bridge meets its OpenFlow controllers, in
//! `ovs-vsctl set-controller` syntax: `tcp:IP[:PORT]` (the switch dials the
//! controller) and `ptcp:[PORT][:IP]` (the switch listens; 127.0.0.1 unless
//! an address is given). The port defaults to 6653, as in OVS.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use thiserror::Error;

/// OpenFlow's IANA port.
pub const OFP_PORT: u16 = 6653;

/// A controller connection target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Dial a controller (reconnecting with backoff).
    Tcp(SocketAddr),
    /// Listen for controllers and `ovs-ofctl`.
    Ptcp(SocketAddr),
}

/// A target that does not parse.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
#[error("{text:?}: {why} (tcp:IP[:PORT] or ptcp:[PORT][:IP])")]
pub struct TargetError {
    text: String,
    why: &'static str,
}

fn port(s: &str) -> Result<u16, &'static str> {
    if s.is_empty() {
        return Ok(OFP_PORT);
    }
    s.parse().map_err(|_| "bad port")
}

/// `IP` or `[IPv6]`.
fn ip(s: &str) -> Result<IpAddr, &'static str> {
    let s = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(s);
    s.parse().map_err(|_| "bad IP address")
}

/// Split `A:B` where A may be a bracketed IPv6 address.
fn split_last(s: &str) -> (&str, Option<&str>) {
    match s.rfind(':') {
        Some(i) if !s[..i].contains('[') || s[..i].contains(']') => (&s[..i], Some(&s[i + 1..])),
        _ => (s, None),
    }
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(text: &str) -> Result<Target, TargetError> {
        let err = |why| TargetError {
            text: text.into(),
            why,
        };
        if let Some(rest) = text.strip_prefix("tcp:") {
            let (a, p) = if rest.starts_with('[') || rest.matches(':').count() <= 1 {
                split_last(rest)
            } else {
                (rest, None)
            };
            let addr = ip(a).map_err(err)?;
            let p = port(p.unwrap_or("")).map_err(err)?;
            if p == 0 {
                return Err(err("port 0"));
            }
            Ok(Target::Tcp(SocketAddr::new(addr, p)))
        } else if let Some(rest) = text.strip_prefix("ptcp:") {
            let (p, a) = match rest.split_once(':') {
                Some((p, a)) => (p, Some(a)),
                None => (rest, None),
            };
            let p = port(p).map_err(err)?;
            let addr = match a {
                Some(a) => ip(a).map_err(err)?,
                None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            };
            Ok(Target::Ptcp(SocketAddr::new(addr, p)))
        } else {
            Err(err("unknown connection method"))
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp(a) => write!(f, "tcp:{a}"),
            Target::Ptcp(a) => match a.ip() {
                IpAddr::V6(ip) => write!(f, "ptcp:{}:[{ip}]", a.port()),
                IpAddr::V4(ip) => write!(f, "ptcp:{}:{ip}", a.port()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_as_ovs_vsctl_takes_them() {
        let t = |s: &str| s.parse::<Target>().map(|t| t.to_string());
        assert_eq!(t("tcp:127.0.0.1:6633").unwrap(), "tcp:127.0.0.1:6633");
        assert_eq!(t("tcp:127.0.0.1").unwrap(), "tcp:127.0.0.1:6653");
        assert_eq!(t("tcp:[::1]:7000").unwrap(), "tcp:[::1]:7000");
        assert_eq!(t("ptcp:6653").unwrap(), "ptcp:6653:127.0.0.1");
        assert_eq!(t("ptcp:").unwrap(), "ptcp:6653:127.0.0.1");
        assert_eq!(t("ptcp:0:0.0.0.0").unwrap(), "ptcp:0:0.0.0.0");
        assert_eq!(t("ptcp:6653:[::1]").unwrap(), "ptcp:6653:[::1]");
        // Every printed form parses back to itself.
        for s in ["tcp:[::1]:7000", "ptcp:6653:[::1]", "ptcp:1:10.0.0.1"] {
            assert_eq!(t(&t(s).unwrap()).unwrap(), t(s).unwrap());
        }
        for bad in [
            "unix:/x",
            "tcp:",
            "tcp:host:1",
            "tcp:1.2.3.4:0",
            "ptcp:x",
            "ptcp:1:nope",
            "tcp:1.2.3.4:99999",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }
}
