//! How long a connection lives without traffic, by what it has seen: OVS's
//! userspace conntrack defaults (`conntrack-private.h`, milliseconds).

/// A timeout class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timeout {
    /// TCP: only the first segment seen.
    TcpFirstPacket,
    /// TCP: handshake under way.
    TcpOpening,
    /// TCP: both ends established.
    TcpEstablished,
    /// TCP: one end closing.
    TcpClosing,
    /// TCP: both ends sent FIN.
    TcpFinWait,
    /// TCP: closed or reset.
    TcpClosed,
    /// UDP and others: one packet seen.
    OtherFirst,
    /// UDP and others: several packets, one direction.
    OtherMultiple,
    /// UDP and others: both directions.
    OtherBidir,
    /// ICMP: the request seen.
    IcmpFirst,
    /// ICMP: answered.
    IcmpReply,
}

impl Timeout {
    /// Every class.
    pub const ALL: [Timeout; 11] = [
        Timeout::TcpFirstPacket,
        Timeout::TcpOpening,
        Timeout::TcpEstablished,
        Timeout::TcpClosing,
        Timeout::TcpFinWait,
        Timeout::TcpClosed,
        Timeout::OtherFirst,
        Timeout::OtherMultiple,
        Timeout::OtherBidir,
        Timeout::IcmpFirst,
        Timeout::IcmpReply,
    ];

    /// OVS's default, in milliseconds.
    pub fn default_ms(self) -> u64 {
        match self {
            Timeout::TcpFirstPacket | Timeout::TcpOpening | Timeout::TcpClosed => 30_000,
            Timeout::TcpEstablished => 24 * 60 * 60 * 1000,
            Timeout::TcpClosing => 15 * 60 * 1000,
            Timeout::TcpFinWait => 45_000,
            Timeout::OtherFirst | Timeout::OtherMultiple | Timeout::IcmpFirst => 60_000,
            Timeout::OtherBidir | Timeout::IcmpReply => 30_000,
        }
    }
}

/// The timeout of every class (defaults: OVS's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts([u64; 11]);

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts(Timeout::ALL.map(Timeout::default_ms))
    }
}

impl Timeouts {
    /// The timeout of `t` in milliseconds.
    pub fn ms(&self, t: Timeout) -> u64 {
        self.0[t as usize]
    }

    /// Set the timeout of `t`.
    pub fn set(&mut self, t: Timeout, ms: u64) {
        self.0[t as usize] = ms;
    }
}
