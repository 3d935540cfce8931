//! The words after `add-port BRIDGE PORT`, in rvs's short form and in the
//! `ovs-vsctl` form OVS users paste:
//!
//! ```text
//! add-port br-int vm1 type=afxdp tag=1 ofport_request=5 options:csum=true
//! add-port br-int patch-tun -- set interface patch-tun type=patch options:peer=patch-int
//! add-port br-int eth1 -- set port eth1 tag=10 trunks=10,20 -- set interface eth1 ofport_request=7
//! ```

use std::collections::BTreeMap;

/// What `add-port` was asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortArgs {
    /// `type=T` (`internal` when absent, as in OVS).
    pub ty: String,
    /// `tag=N`.
    pub tag: Option<u16>,
    /// `trunks=A,B,...`.
    pub trunks: Vec<u16>,
    /// `ofport_request=N`.
    pub ofport_request: Option<u32>,
    /// `options:K=V`.
    pub options: BTreeMap<String, String>,
}

fn vlan(v: &str, what: &str) -> Result<u16, String> {
    v.trim()
        .parse::<u16>()
        .ok()
        .filter(|n| (1..=4094).contains(n))
        .ok_or_else(|| format!("{what}={v:?} is not a VLAN id in 1..=4094"))
}

impl PortArgs {
    /// Parse the words after `add-port BRIDGE PORT` for port `port`.
    pub fn parse(port: &str, words: &[String]) -> Result<PortArgs, String> {
        let mut a = PortArgs {
            ty: "internal".into(),
            ..PortArgs::default()
        };
        // Segments between `--`: the first is KEY=VALUE words, the others
        // `set interface|port NAME KEY=VALUE...` about this same port.
        for (i, seg) in words.split(|w| w == "--").enumerate() {
            let mut kv = seg;
            if i > 0 {
                match seg {
                    [] => continue,
                    [set, table, name, rest @ ..] if set == "set" => {
                        let table = table.to_ascii_lowercase();
                        if table != "interface" && table != "port" {
                            return Err(format!(
                                "set {table}: only `set interface` and `set port` go with add-port"
                            ));
                        }
                        if name != port {
                            return Err(format!(
                                "set {table} {name}: this add-port adds {port:?}, not {name:?}"
                            ));
                        }
                        kv = rest;
                    }
                    _ => {
                        return Err(format!(
                            "-- {}: expected `-- set interface|port {port} KEY=VALUE...`",
                            seg.join(" ")
                        ))
                    }
                }
            }
            for w in kv {
                a.set(w)?;
            }
        }
        Ok(a)
    }

    fn set(&mut self, word: &str) -> Result<(), String> {
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| format!("{word:?}: expected KEY=VALUE"))?;
        match k {
            "type" => self.ty = v.to_string(),
            "tag" => self.tag = Some(vlan(v, "tag")?),
            "trunks" => {
                self.trunks = v
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .filter(|t| !t.trim().is_empty())
                    .map(|t| vlan(t, "trunks"))
                    .collect::<Result<_, _>>()?
            }
            "ofport_request" => {
                self.ofport_request = Some(
                    v.parse()
                        .map_err(|_| format!("ofport_request={v:?} is not a port number"))?,
                )
            }
            _ => match k.strip_prefix("options:") {
                Some(o) if !o.is_empty() => {
                    self.options.insert(o.to_string(), v.to_string());
                }
                _ => {
                    return Err(format!(
                        "{word:?}: use type=T, tag=N, trunks=A,B, ofport_request=N or options:KEY=VALUE"
                    ))
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(port: &str, s: &str) -> Result<PortArgs, String> {
        let words: Vec<String> = s.split_whitespace().map(String::from).collect();
        PortArgs::parse(port, &words)
    }

    #[test]
    fn short_form() {
        let a = p("vm1", "type=afxdp tag=1 ofport_request=5 options:csum=true").unwrap();
        assert_eq!(a.ty, "afxdp");
        assert_eq!(a.tag, Some(1));
        assert_eq!(a.ofport_request, Some(5));
        assert_eq!(a.options["csum"], "true");
        assert_eq!(p("vm1", "").unwrap().ty, "internal");
    }

    #[test]
    fn ovs_vsctl_form() {
        let a = p(
            "patch-tun",
            "-- set interface patch-tun type=patch options:peer=patch-int",
        )
        .unwrap();
        assert_eq!(
            (a.ty.as_str(), a.options["peer"].as_str()),
            ("patch", "patch-int")
        );
        let a = p(
            "eth1",
            "-- set port eth1 tag=10 trunks=10,20 -- set Interface eth1 type=afxdp ofport_request=7",
        )
        .unwrap();
        assert_eq!(
            (a.tag, a.trunks.clone(), a.ofport_request),
            (Some(10), vec![10, 20], Some(7))
        );
        assert_eq!(p("x", "trunks=[1,2]").unwrap().trunks, vec![1, 2]);
    }

    #[test]
    fn errors_say_what() {
        for (s, want) in [
            ("tag=0", "tag"),
            ("tag=5000", "tag"),
            ("trunks=1,x", "trunks"),
            ("ofport_request=-1", "ofport_request"),
            ("colour=red", "use type=T"),
            ("interface", "KEY=VALUE"),
            ("-- set interface other type=patch", "not \"other\""),
            ("-- set bridge x a=b", "set bridge"),
            ("-- del-port x", "expected"),
        ] {
            let e = p("x", s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
    }
}
