//! TCP state and window tracking, after pf's algorithm (Guido van Rooij's
//! "Real Stateful TCP Packet Filtering") as OVS's `conntrack-tcp.c` uses it:
//! each peer's highest sequence sent and the highest the other end has
//! acknowledged plus its window; a segment outside both is invalid.

use super::packet::TcpSegment;
use super::timeouts::Timeout;

const FIN: u16 = 0x01;
const SYN: u16 = 0x02;
const RST: u16 = 0x04;
const PSH: u16 = 0x08;
const ACK: u16 = 0x10;
const URG: u16 = 0x20;
/// Flags that change a connection's state.
pub(crate) const FIN_SYN_RST: u16 = FIN | SYN | RST;

const MAX_WSCALE: u8 = 14;
/// "Window scale option seen" in [`Peer::wscale`].
const WSCALE_SEEN: u8 = 0x80;
/// "Picked up mid-stream: scale unknown, be liberal".
const WSCALE_UNKNOWN: u8 = 0x40;
const WSCALE_MASK: u8 = 0x0f;
/// One window plus an MTU of slack for acknowledgements (pf's MAXACKWINDOW).
const MAX_ACK_WINDOW: i64 = 0xffff + 1500;

/// A peer's TCP state, in pf's order (comparisons rely on it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum TcpState {
    /// Nothing seen from this peer.
    #[default]
    Closed = 0,
    /// It sent its SYN (or its first segment).
    SynSent = 2,
    /// Its SYN was acknowledged.
    Established = 4,
    /// It sent a FIN.
    Closing = 7,
    /// Its FIN was acknowledged.
    FinWait2 = 9,
    /// Reset.
    TimeWait = 10,
}

impl TcpState {
    /// The name `dump-conntrack` shows (OVS's).
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::Established => "ESTABLISHED",
            TcpState::Closing => "CLOSING",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::TimeWait => "TIME_WAIT",
        }
    }
}

/// One end of a tracked connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    /// Highest sequence number sent.
    pub seqlo: u32,
    /// Highest sequence number the other end allows (its ack + window).
    pub seqhi: u32,
    /// Largest window seen (unscaled).
    pub max_win: u16,
    /// Window scale (`WSCALE_*` flags and the shift).
    pub wscale: u8,
    /// State.
    pub state: TcpState,
}

/// Both ends: `[originator, responder]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpConn {
    /// The peers.
    pub peer: [Peer; 2],
    /// Windows are not checked: segments went past the tracker (its
    /// datapath answered for the connection), so the edges it knows are
    /// stale (the kernel's IP_CT_TCP_FLAG_BE_LIBERAL).
    pub liberal: bool,
}

/// What a segment did to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// In window: state advanced; the connection's timeout is now this.
    Valid(Timeout),
    /// Accepted loosely (pf's second case: a SYN shotgun, state picked up
    /// after a flush, stray segments after close); timeout unchanged.
    Loose,
    /// Outside the window or impossible flags.
    Invalid,
    /// A new SYN on a closed connection: the old one ends, a new one may start.
    Reopen,
}

/// What an accepted segment (in the window, or pf's second chance) does to
/// both ends: the sender's largest window and highest sequence sent, how far
/// the receiver may send, and the FIN and RST states. (An ACK's and a SYN's
/// own transitions come first, for in-window segments only; RST ends both
/// ends in any order.)
struct Accepted {
    win: u32,
    end: u32,
    ack: u32,
    scaled_win: u32,
    flags: u16,
}

impl Accepted {
    fn apply(&self, src: &mut Peer, dst: &mut Peer) {
        src.max_win = src.max_win.max(self.win.min(0xffff) as u16);
        if seq_gt(self.end, src.seqlo) {
            src.seqlo = self.end;
        }
        if seq_geq(self.ack.wrapping_add(self.scaled_win), dst.seqhi) {
            dst.seqhi = self.ack.wrapping_add(self.scaled_win.max(1));
        }
        if self.flags & FIN != 0 && src.state < TcpState::Closing {
            src.state = TcpState::Closing;
        }
        if self.flags & RST != 0 {
            src.state = TcpState::TimeWait;
            dst.state = TcpState::TimeWait;
        }
    }
}

fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
fn seq_geq(a: u32, b: u32) -> bool {
    !seq_lt(a, b)
}
fn seq_gt(a: u32, b: u32) -> bool {
    seq_lt(b, a)
}

/// Flag combinations no TCP sends (pf's normalisation checks).
pub fn invalid_flags(flags: u16) -> bool {
    if flags & SYN != 0 {
        if flags & (RST | FIN) != 0 {
            return true;
        }
    } else if flags & (ACK | RST) == 0 {
        return true;
    }
    flags & ACK == 0 && flags & (FIN | PSH | URG) != 0
}

/// May this segment start a connection? Not with bad flags, and not a
/// SYN+ACK (a half-open connection is not created from its middle).
pub fn valid_new(seg: &TcpSegment) -> bool {
    !invalid_flags(seg.flags) && seg.flags & (SYN | ACK) != (SYN | ACK)
}

fn wscale_of(seg: &TcpSegment) -> u8 {
    match seg.wscale {
        Some(w) => w.min(MAX_WSCALE) | WSCALE_SEEN,
        None => 0,
    }
}

impl TcpConn {
    /// The connection `seg` (from the originator) starts.
    pub fn new(seg: &TcpSegment) -> TcpConn {
        let mut c = TcpConn::default();
        let (src, dst) = c.peer.split_at_mut(1);
        let (src, dst) = (&mut src[0], &mut dst[0]);
        src.seqlo = seg.seq;
        src.seqhi = seg.seq.wrapping_add(seg.len).wrapping_add(1);
        if seg.flags & SYN != 0 {
            src.seqhi = src.seqhi.wrapping_add(1);
            src.wscale = wscale_of(seg);
        } else {
            // Picked up mid-stream: scaling unknown on both sides.
            src.wscale = WSCALE_UNKNOWN;
            dst.wscale = WSCALE_UNKNOWN;
        }
        src.max_win = seg.win.max(1);
        if src.wscale & WSCALE_MASK != 0 {
            let sws = src.wscale & WSCALE_MASK;
            src.max_win = ((src.max_win as u32).div_ceil(1 << sws)) as u16;
        }
        if seg.flags & FIN != 0 {
            src.seqhi = src.seqhi.wrapping_add(1);
        }
        dst.seqhi = 1;
        dst.max_win = 1;
        src.state = TcpState::SynSent;
        dst.state = TcpState::Closed;
        c
    }

    /// Both ends established.
    pub fn established(&self) -> bool {
        self.peer.iter().all(|p| p.state == TcpState::Established)
    }

    /// An established connection whose edges are unknown (taken over from
    /// a datapath that answered for it).
    pub fn established_liberal() -> TcpConn {
        let p = Peer {
            seqlo: 0,
            seqhi: 0,
            max_win: 0xffff,
            wscale: WSCALE_UNKNOWN,
            state: TcpState::Established,
        };
        TcpConn {
            peer: [p, p],
            liberal: true,
        }
    }

    /// The timeout of a connection just created.
    pub fn first_timeout() -> Timeout {
        Timeout::TcpFirstPacket
    }

    /// Apply `seg`, sent by the responder if `reply`.
    pub fn update(&mut self, seg: &TcpSegment, reply: bool) -> Update {
        let flags = seg.flags;
        if invalid_flags(flags) {
            return Update::Invalid;
        }
        let liberal = self.liberal;
        let (a, b) = self.peer.split_at_mut(1);
        let (src, dst) = if reply {
            (&mut b[0], &mut a[0])
        } else {
            (&mut a[0], &mut b[0])
        };
        if flags & (SYN | ACK) == SYN && dst.state >= TcpState::FinWait2 && src.state >= TcpState::FinWait2 {
            return Update::Reopen;
        }
        let (mut sws, mut dws) = (0u8, 0u8);
        if src.wscale & WSCALE_SEEN != 0 && dst.wscale & WSCALE_SEEN != 0 && flags & SYN == 0 {
            sws = src.wscale & WSCALE_MASK;
            dws = dst.wscale & WSCALE_MASK;
        } else if src.wscale & WSCALE_UNKNOWN != 0 && dst.wscale & WSCALE_UNKNOWN != 0 && flags & SYN == 0 {
            sws = MAX_WSCALE;
            dws = MAX_WSCALE;
        }
        let mut win = seg.win as u32;
        let orig_seq = seg.seq;
        let mut seq = seg.seq;
        let mut ack = seg.ack;
        let mut end = seq.wrapping_add(seg.len);
        if flags & SYN != 0 {
            end = end.wrapping_add(1);
        }
        if flags & FIN != 0 {
            end = end.wrapping_add(1);
        }
        let mut check_ackskew = true;
        if src.state < TcpState::SynSent {
            // The first segment from this end.
            if flags & SYN != 0 && dst.wscale & WSCALE_SEEN != 0 {
                src.wscale = wscale_of(seg);
                if src.wscale & WSCALE_SEEN != 0 {
                    sws = src.wscale & WSCALE_MASK;
                    win = win.div_ceil(1 << sws);
                    dws = dst.wscale & WSCALE_MASK;
                } else {
                    // The other end's window was scaled for nothing.
                    dst.max_win = ((dst.max_win as u32) << (dst.wscale & WSCALE_MASK)).min(0xffff) as u16;
                    dst.wscale = 0;
                }
            }
            src.seqlo = seq;
            src.state = TcpState::SynSent;
            let reach = end.wrapping_add(((dst.max_win as u32) << dws).max(1));
            if src.seqhi == 1 || seq_geq(reach, src.seqhi) {
                src.seqhi = reach;
                // A new connection, or one picked up after it started:
                // acknowledgements are not checked yet.
                check_ackskew = false;
            }
            if win > src.max_win as u32 {
                src.max_win = win.min(0xffff) as u16;
            }
        }
        if flags & ACK == 0 || (ack == 0 && flags & (ACK | RST) == (ACK | RST)) {
            // No acknowledgement to check (or a stack that sends none with RST).
            ack = dst.seqlo;
        }
        if seq == end {
            // No data: ease the sequence checks.
            seq = src.seqlo;
            end = seq;
        }
        let ackskew: i64 = if check_ackskew {
            dst.seqlo.wrapping_sub(ack) as i32 as i64
        } else {
            0
        };
        let dst_win = ((dst.max_win as u64) << dws) as u32;
        let src_scaled_win = ((win as u64) << sws).min(u32::MAX as u64) as u32;
        let in_window = liberal
            || seq_geq(src.seqhi, end)
                && seq_geq(seq, src.seqlo.wrapping_sub(dst_win))
                && ackskew >= -MAX_ACK_WINDOW
                && ackskew <= MAX_ACK_WINDOW << sws
                && (flags & RST == 0
                    || orig_seq == src.seqlo
                    || orig_seq == src.seqlo.wrapping_add(1)
                    || orig_seq.wrapping_add(1) == src.seqlo);
        let accepted = Accepted {
            win,
            end,
            ack,
            scaled_win: src_scaled_win,
            flags,
        };
        if in_window {
            if flags & SYN != 0 && src.state < TcpState::SynSent {
                src.state = TcpState::SynSent;
            }
            if flags & ACK != 0 {
                if dst.state == TcpState::SynSent {
                    dst.state = TcpState::Established;
                } else if dst.state == TcpState::Closing {
                    dst.state = TcpState::FinWait2;
                }
            }
            accepted.apply(src, dst);
            let (s, d) = (src.state, dst.state);
            let t = if s >= TcpState::FinWait2 && d >= TcpState::FinWait2 {
                Timeout::TcpClosed
            } else if s >= TcpState::Closing && d >= TcpState::Closing {
                Timeout::TcpFinWait
            } else if s < TcpState::Established || d < TcpState::Established {
                Timeout::TcpOpening
            } else if s >= TcpState::Closing || d >= TcpState::Closing {
                Timeout::TcpClosing
            } else {
                Timeout::TcpEstablished
            };
            return Update::Valid(t);
        }
        let loose = (dst.state < TcpState::SynSent
            || dst.state >= TcpState::FinWait2
            || src.state >= TcpState::FinWait2)
            && seq_geq(src.seqhi.wrapping_add(MAX_ACK_WINDOW as u32), end)
            && seq_geq(seq, src.seqlo.wrapping_sub(MAX_ACK_WINDOW as u32));
        if loose {
            // pf's second chance; the timeout is not refreshed, so a flood
            // of such segments cannot keep a connection alive.
            accepted.apply(src, dst);
            return Update::Loose;
        }
        Update::Invalid
    }
}
