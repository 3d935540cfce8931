//! The `controller` action's arguments ([`ControllerSpec`]) and the reasons
//! a packet goes to a controller ([`PinReason`]), in ovs-ofctl's syntax:
//! `controller`, `controller:MAX_LEN`, `controller(reason=R,max_len=N,id=N)`.

use std::fmt;

/// Why a packet went to the controller (OpenFlow's `ofp_packet_in_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PinReason {
    /// A table-miss rule sent it (OFPR_NO_MATCH).
    NoMatch = 0,
    /// An explicit `output:CONTROLLER` (OFPR_ACTION).
    Action = 1,
    /// `dec_ttl` found the TTL expired (OFPR_INVALID_TTL).
    InvalidTtl = 2,
    /// An action set's output (OpenFlow 1.4's OFPR_ACTION_SET).
    ActionSet = 3,
    /// A group bucket (OFPR_GROUP).
    Group = 4,
    /// A packet-out's own actions (OFPR_PACKET_OUT).
    PacketOut = 5,
}

impl PinReason {
    /// Every reason, in wire order.
    pub const ALL: [PinReason; 6] = [
        PinReason::NoMatch,
        PinReason::Action,
        PinReason::InvalidTtl,
        PinReason::ActionSet,
        PinReason::Group,
        PinReason::PacketOut,
    ];

    /// OVS's name (`reason=` of the action, `ovs-ofctl monitor`).
    pub fn name(self) -> &'static str {
        match self {
            PinReason::NoMatch => "no_match",
            PinReason::Action => "action",
            PinReason::InvalidTtl => "invalid_ttl",
            PinReason::ActionSet => "action_set",
            PinReason::Group => "group",
            PinReason::PacketOut => "packet_out",
        }
    }

    /// The reason named `s`.
    pub fn from_name(s: &str) -> Option<PinReason> {
        PinReason::ALL.into_iter().find(|r| r.name() == s)
    }

    /// The reason with wire value `v`.
    pub fn from_wire(v: u8) -> Option<PinReason> {
        PinReason::ALL.get(v as usize).copied()
    }

    /// As OpenFlow 1.3 says it (it has no reasons past INVALID_TTL; OVS
    /// sends those as ACTION).
    pub fn wire13(self) -> u8 {
        match self {
            PinReason::NoMatch | PinReason::Action | PinReason::InvalidTtl => self as u8,
            _ => PinReason::Action as u8,
        }
    }
}

/// "The whole packet" (OFPCML_NO_BUFFER).
pub const MAX_LEN_ALL: u16 = 0xffff;

/// The `controller` action: a copy of the packet to the bridge's
/// controllers as a PACKET_IN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ControllerSpec {
    /// Bytes of the packet the PACKET_IN carries ([`MAX_LEN_ALL`]: all).
    pub max_len: u16,
    /// The reason it gives.
    pub reason: PinReason,
    /// Only connections with this controller id get it (all have 0).
    pub id: u16,
}

impl Default for ControllerSpec {
    fn default() -> Self {
        ControllerSpec {
            max_len: MAX_LEN_ALL,
            reason: PinReason::Action,
            id: 0,
        }
    }
}

impl ControllerSpec {
    /// `output:CONTROLLER` with a `max_len`.
    pub fn output(max_len: u16) -> ControllerSpec {
        ControllerSpec {
            max_len,
            ..Default::default()
        }
    }

    /// The arguments of `controller(...)` or `controller:N` (`arg` without
    /// the parentheses). Errors name what is wrong.
    pub fn parse(arg: &str) -> Result<ControllerSpec, String> {
        let arg = arg.trim();
        let mut c = ControllerSpec::default();
        let num = |v: &str, what: &str| {
            super::field::parse_int(v)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| format!("controller: {what} needs a number 0..65535, not {v:?}"))
        };
        if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
            c.max_len = num(arg, "max_len")?;
            return Ok(c);
        }
        for kv in arg.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k.trim() {
                "max_len" => c.max_len = num(v.trim(), "max_len")?,
                "id" => c.id = num(v.trim(), "id")?,
                "reason" => {
                    c.reason = PinReason::from_name(v.trim())
                        .ok_or_else(|| format!("controller: unknown reason {:?}", v.trim()))?
                }
                k @ ("userdata" | "pause" | "meter_id") => {
                    return Err(format!(
                        "controller: {k} (continuations, metered packet-ins) is not supported"
                    ))
                }
                k => return Err(format!("controller: unknown key {k:?} (max_len, reason, id)")),
            }
        }
        Ok(c)
    }
}

/// As `ovs-ofctl dump-flows` prints it: `CONTROLLER:65535` for a plain
/// output to the controller, else `controller(reason=..,max_len=..,id=..)`.
impl fmt::Display for ControllerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason == PinReason::Action && self.id == 0 {
            return write!(f, "CONTROLLER:{}", self.max_len);
        }
        let mut parts = Vec::new();
        if self.reason != PinReason::Action {
            parts.push(format!("reason={}", self.reason.name()));
        }
        if self.max_len != MAX_LEN_ALL {
            parts.push(format!("max_len={}", self.max_len));
        }
        if self.id != 0 {
            parts.push(format!("id={}", self.id));
        }
        write!(f, "controller({})", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_as_ovs_ofctl() {
        for (text, shown) in [
            ("", "CONTROLLER:65535"),
            ("128", "CONTROLLER:128"),
            ("max_len=96", "CONTROLLER:96"),
            (
                "reason=no_match,max_len=128",
                "controller(reason=no_match,max_len=128)",
            ),
            ("id=3", "controller(id=3)"),
            ("reason=invalid_ttl", "controller(reason=invalid_ttl)"),
        ] {
            let c = ControllerSpec::parse(text).unwrap();
            assert_eq!(c.to_string(), shown, "{text}");
        }
        assert!(ControllerSpec::parse("reason=bogus")
            .unwrap_err()
            .contains("bogus"));
        assert!(ControllerSpec::parse("max_len=70000").is_err());
        assert!(ControllerSpec::parse("pause")
            .unwrap_err()
            .contains("not supported"));
        assert!(ControllerSpec::parse("colour=red")
            .unwrap_err()
            .contains("colour"));
    }

    #[test]
    fn reasons_round_trip_and_fold_into_openflow13() {
        for r in PinReason::ALL {
            assert_eq!(PinReason::from_wire(r as u8), Some(r));
            assert_eq!(PinReason::from_name(r.name()), Some(r));
        }
        assert_eq!(PinReason::PacketOut.wire13(), 1);
        assert_eq!(PinReason::NoMatch.wire13(), 0);
    }
}
