//! New TCP connections per second between two VMs: what a connection
//! tracker costs per connection (each one is a table insert, a few state
//! changes and, in a userspace switch, an upcall per new flow). `rvs-lab
//! conn-rate serve` runs in the server VM (accept, close at once: the server
//! closes first, so the client's ports do not sit in TIME_WAIT);
//! `rvs-lab conn-rate connect` in the client VM (threads that connect, wait
//! for the server's FIN, close, and count).

use anyhow::{Context, Result};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Accept connections on `port` for `secs` seconds, closing each at once;
/// prints `listening` once it does.
pub fn serve(port: u16, secs: f64) -> Result<()> {
    let l = TcpListener::bind(("0.0.0.0", port)).with_context(|| format!("listening on port {port}"))?;
    l.set_nonblocking(true)?;
    println!("listening");
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        match l.accept() {
            Ok((s, _)) => drop(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(100))
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// What the client counted.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counted {
    /// Connections set up and closed.
    pub done: u64,
    /// Connects that failed or timed out.
    pub failed: u64,
}

/// Connect to `to` over and over from `threads` threads for `secs` seconds.
pub fn connect(to: SocketAddr, secs: f64, threads: usize) -> Counted {
    let (done, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs_f64(secs);
    std::thread::scope(|sc| {
        for _ in 0..threads.max(1) {
            sc.spawn(|| {
                let mut buf = [0u8; 64];
                while Instant::now() < end {
                    let ok = TcpStream::connect_timeout(&to, Duration::from_secs(1)).is_ok_and(|mut s| {
                        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                        // The server's FIN: the connection went all the way.
                        matches!(s.read(&mut buf), Ok(0))
                    });
                    let c = if ok { &done } else { &failed };
                    c.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    Counted {
        done: done.into_inner(),
        failed: failed.into_inner(),
    }
}

/// `connect`'s output line: `connections N failed M`.
pub fn format(c: Counted) -> String {
    format!("connections {} failed {}", c.done, c.failed)
}

/// Read [`format`]'s line back.
pub fn parse(out: &str) -> Option<Counted> {
    let w: Vec<&str> = out.split_whitespace().collect();
    match w[..] {
        ["connections", d, "failed", f] => Some(Counted {
            done: d.parse().ok()?,
            failed: f.parse().ok()?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_round_trip_and_a_loopback_run_counts_connections() {
        let c = Counted { done: 12, failed: 3 };
        assert_eq!(parse(&format(c)), Some(c));
        assert_eq!(parse("garbage"), None);
        // On loopback (allowed by the network rules): a real count.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let srv = std::thread::spawn(move || {
            for s in l.incoming().take(20) {
                drop(s);
            }
        });
        let c = connect(addr, 0.3, 1);
        assert_eq!(c.done, 20, "every accepted connection, no more: {c:?}");
        srv.join().unwrap();
    }
}
